//! The rules, as a user sees them: the seed's ten indicators for every value the seed's generator
//! emits, the three policies for unknown, missing and wrong-typed values, nested paths, and the
//! embedded default rules (the error messages of bad rules files: `rules_file.rs`).
//!
//! Expected indicator values come from tables written here from the seed's own definition (its
//! Firehose Lambda, `X = 1 if value in [...] else X = 0`), not from the rules code or the default
//! rules file: `K_action` is 1 for action ALLOW, CAPTCHA, Challenge or Count and `B_action` for
//! BLOCK; `K_source` for httpSourceName ALB, APIGW, APPSYNC or CF and `UNK_source` for any other;
//! `G_httpstatus` for a 2xx or 3xx httpStatus and `B_httpstatus` for 4xx or 5xx (the seed's slides
//! once call 4xx good; its README's definition, followed here, does not); `K_country` for country
//! US, UK or IN and `UNK_country` for any other; `common_method` for httpMethod GET, HEAD or POST
//! and `uncommon_method` for DELETE. Each is 0 otherwise. A value that is neither known-good nor
//! known-bad (action `FOO`, method `PATCH`) is a policy the rules file states.

use pipeline::wire::{DeadLetterReason, SourcePosition};
use serde_json::{Value, json};
use transformer::{CompiledRules, Rejection, Rules};

/// The ten indicators in output order.
const INDICATORS: [&str; 10] = [
    "K_action",
    "B_action",
    "K_source",
    "UNK_source",
    "G_httpstatus",
    "B_httpstatus",
    "K_country",
    "UNK_country",
    "common_method",
    "uncommon_method",
];

fn source() -> SourcePosition {
    SourcePosition {
        topic: "raw".to_owned(),
        partition: 2,
        offset: 41,
    }
}

fn default_rules() -> CompiledRules {
    CompiledRules::default_rules().expect("the default rules compile")
}

/// Applies `rules` to `record` and parses the output.
fn enrich(rules: &CompiledRules, record: &Value) -> Result<Value, Rejection> {
    let mut out = Vec::new();
    rules.apply(record.to_string().as_bytes(), &source(), &mut out)?;
    Ok(serde_json::from_slice(&out).expect("the output is JSON"))
}

/// A seed-shaped record: every monitored field at a known-good value.
fn seed_record() -> Value {
    json!({
        "timestamp": 1_700_000_000_000_i64,
        "formatVersion": 1,
        "action": "ALLOW",
        "httpSourceName": "ALB",
        "httpSourceId": "alb",
        "httpStatus": "200",
        "httpRequest": {
            "clientIp": "203.0.113.7",
            "country": "US",
            "headers": [{"name": "Host", "value": "www.example.com"}],
            "uri": "/login",
            "args": "",
            "httpVersion": "HTTP/1.1",
            "httpMethod": "GET",
            "requestId": "run/p0/0000000000000001"
        }
    })
}

/// Sets the value at a dotted path.
fn set(record: &mut Value, path: &str, value: Value) {
    let mut target = record;
    for segment in path.split('.') {
        target = &mut target[segment];
    }
    *target = value;
}

/// Removes the value at a dotted path.
fn remove(record: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut target = record;
    for segment in parent.split('.').filter(|s| !s.is_empty()) {
        target = &mut target[segment];
    }
    target.as_object_mut().expect("an object").remove(last);
}

fn indicators(enriched: &Value) -> Vec<i64> {
    INDICATORS
        .iter()
        .map(|name| {
            enriched[name]
                .as_i64()
                .unwrap_or_else(|| panic!("{name} missing in {enriched}"))
        })
        .collect()
}

/// Each value the seed's generator emits for each field (plus the values a policy decides), with
/// the two indicators it must set by the seed's definition (in the module docs; each field's
/// comment repeats its sets).
#[rustfmt::skip]
const SEED_TABLE: &[(&str, &str, [i64; 2])] = &[
    // action: K_action (ALLOW, CAPTCHA, Challenge, Count), B_action (BLOCK)
    ("action", "ALLOW", [1, 0]),
    ("action", "CAPTCHA", [1, 0]),
    ("action", "Challenge", [1, 0]),
    ("action", "Count", [1, 0]),
    ("action", "BLOCK", [0, 1]),
    ("action", "FOO", [0, 0]),     // policy: neither
    ("action", "allow", [0, 0]),   // exact, case-sensitive
    // httpSourceName: K_source (ALB, APIGW, APPSYNC, CF), UNK_source (anything else)
    ("httpSourceName", "ALB", [1, 0]),
    ("httpSourceName", "APIGW", [1, 0]),
    ("httpSourceName", "APPSYNC", [1, 0]),
    ("httpSourceName", "CF", [1, 0]),
    ("httpSourceName", "-", [0, 1]),
    ("httpSourceName", "NLB", [0, 1]), // policy: bad
    ("httpSourceName", "", [0, 1]),
    // httpStatus: G_httpstatus (2xx, 3xx), B_httpstatus (4xx, 5xx)
    ("httpStatus", "200", [1, 0]),
    ("httpStatus", "202", [1, 0]),
    ("httpStatus", "307", [1, 0]),
    ("httpStatus", "308", [1, 0]),
    ("httpStatus", "403", [0, 1]),
    ("httpStatus", "404", [0, 1]),
    ("httpStatus", "502", [0, 1]),
    ("httpStatus", "504", [0, 1]),
    ("httpStatus", "100", [0, 0]), // policy: neither
    ("httpStatus", "abc", [0, 0]),
    ("httpStatus", "2000", [0, 0]),
    // httpRequest.country: K_country (US, UK, IN), UNK_country (anything else)
    ("httpRequest.country", "US", [1, 0]),
    ("httpRequest.country", "UK", [1, 0]),
    ("httpRequest.country", "IN", [1, 0]),
    ("httpRequest.country", "XX", [0, 1]),
    ("httpRequest.country", "YY", [0, 1]),
    ("httpRequest.country", "ZZ", [0, 1]),
    ("httpRequest.country", "WW", [0, 1]),
    ("httpRequest.country", "FR", [0, 1]), // policy: bad
    // httpRequest.httpMethod: common_method (GET, HEAD, POST), uncommon_method (DELETE)
    ("httpRequest.httpMethod", "GET", [1, 0]),
    ("httpRequest.httpMethod", "HEAD", [1, 0]),
    ("httpRequest.httpMethod", "POST", [1, 0]),
    ("httpRequest.httpMethod", "DELETE", [0, 1]),
    ("httpRequest.httpMethod", "PATCH", [0, 0]), // policy: neither
];

/// Where each field's two indicators sit among the ten.
fn pair_index(path: &str) -> usize {
    match path {
        "action" => 0,
        "httpSourceName" => 2,
        "httpStatus" => 4,
        "httpRequest.country" => 6,
        "httpRequest.httpMethod" => 8,
        other => panic!("not a seed field: {other}"),
    }
}

#[test]
fn every_seed_value_sets_the_seed_indicators() {
    let rules = default_rules();
    // The baseline record is all known-good: K_*, G_*, common_* are 1.
    let baseline = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0];
    assert_eq!(
        indicators(&enrich(&rules, &seed_record()).expect("enriched")),
        baseline
    );
    for &(path, value, pair) in SEED_TABLE {
        let mut record = seed_record();
        set(&mut record, path, json!(value));
        let enriched = enrich(&rules, &record).unwrap_or_else(|r| panic!("{path}={value}: {r}"));
        let mut expected = baseline;
        let at = pair_index(path);
        expected[at..at + 2].copy_from_slice(&pair);
        assert_eq!(indicators(&enriched), expected, "{path} = {value:?}");
    }
}

#[test]
fn an_all_anomalous_record_sets_every_bad_indicator() {
    let mut record = seed_record();
    for (path, value) in [
        ("action", "BLOCK"),
        ("httpSourceName", "-"),
        ("httpStatus", "504"),
        ("httpRequest.country", "ZZ"),
        ("httpRequest.httpMethod", "DELETE"),
    ] {
        set(&mut record, path, json!(value));
    }
    let enriched = enrich(&default_rules(), &record).expect("enriched");
    assert_eq!(indicators(&enriched), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
}

#[test]
fn http_status_is_matched_as_a_string_or_an_integer() {
    let rules = default_rules();
    for (status, pair) in [
        (json!(200), [1, 0]),
        (json!(404), [0, 1]),
        (json!(599), [0, 1]),
    ] {
        let mut record = seed_record();
        record["httpStatus"] = status.clone();
        let enriched = enrich(&rules, &record).expect("enriched");
        assert_eq!(indicators(&enriched)[4..6], pair, "{status}");
    }
    let mut record = seed_record();
    record["httpStatus"] = json!(200.5);
    assert_eq!(
        indicators(&enrich(&rules, &record).expect("enriched"))[4..6],
        [0, 0]
    );
}

#[test]
fn the_default_rules_dead_letter_missing_and_wrong_typed_seed_fields() {
    let rules = default_rules();
    for path in [
        "action",
        "httpSourceName",
        "httpStatus",
        "httpRequest.country",
        "httpRequest.httpMethod",
    ] {
        let mut record = seed_record();
        remove(&mut record, path);
        let rejection = enrich(&rules, &record).expect_err("missing");
        assert_eq!(rejection.reason, DeadLetterReason::MissingField, "{path}");
        assert_eq!(rejection.detail, format!("{path} is missing"));

        let mut record = seed_record();
        set(&mut record, path, Value::Null);
        let rejection = enrich(&rules, &record).expect_err("null");
        assert_eq!(rejection.reason, DeadLetterReason::MissingField, "{path}");
        assert_eq!(rejection.detail, format!("{path} is null"));

        let mut record = seed_record();
        set(&mut record, path, json!(["GET"]));
        let rejection = enrich(&rules, &record).expect_err("array");
        assert_eq!(rejection.reason, DeadLetterReason::WrongType, "{path}");
        assert_eq!(
            rejection.detail,
            format!("{path} is an array; expected a string, a number or a boolean")
        );
    }
    let mut record = seed_record();
    record["httpRequest"] = json!("GET /");
    let rejection = enrich(&rules, &record).expect_err("through a string");
    assert_eq!(rejection.reason, DeadLetterReason::WrongType);
    // The first field (in rules order) under httpRequest is country.
    assert_eq!(
        rejection.detail,
        "httpRequest is a string, not an object, so httpRequest.country cannot be read"
    );
}

/// Rules whose three fields each use one policy for everything.
const POLICY_RULES: &str = r#"
fields:
  - path: a
    good: { indicator: a_good, values: [ok] }
    bad: { indicator: a_bad, values: [ko] }
    unknown: bad
    missing: bad
    wrong_type: bad
  - path: b
    good: { indicator: b_good, values: [ok] }
    bad: { indicator: b_bad, values: [ko] }
    unknown: neither
    missing: neither
    wrong_type: neither
  - path: c
    good: { indicator: c_good, values: [ok] }
    bad: { indicator: c_bad, values: [ko] }
    unknown: dead_letter
    missing: dead_letter
    wrong_type: dead_letter
"#;

fn pairs(enriched: &Value, fields: &[&str]) -> Vec<[i64; 2]> {
    fields
        .iter()
        .map(|f| {
            let get = |suffix: &str| enriched[format!("{f}_{suffix}")].as_i64().expect("set");
            [get("good"), get("bad")]
        })
        .collect()
}

#[test]
fn unknown_missing_and_wrong_typed_values_follow_each_policy() {
    let rules = CompiledRules::from_yaml(POLICY_RULES).expect("compiles");
    let ts = 1_700_000_000_000_i64;
    // (value of a and b, their expected pairs): a counts as bad, b as neither.
    let cases: [(Option<Value>, [i64; 2], [i64; 2]); 6] = [
        (Some(json!("ok")), [1, 0], [1, 0]),
        (Some(json!("ko")), [0, 1], [0, 1]),
        (Some(json!("other")), [0, 1], [0, 0]),  // unknown
        (None, [0, 1], [0, 0]),                  // missing
        (Some(Value::Null), [0, 1], [0, 0]),     // null counts as missing
        (Some(json!({"x": 1})), [0, 1], [0, 0]), // wrong type
    ];
    for (value, a, b) in cases {
        let mut record = json!({"timestamp": ts, "c": "ok"});
        if let Some(value) = &value {
            record["a"] = value.clone();
            record["b"] = value.clone();
        }
        let enriched = enrich(&rules, &record).expect("enriched");
        assert_eq!(
            pairs(&enriched, &["a", "b", "c"]),
            [a, b, [1, 0]],
            "{value:?}"
        );
    }

    let dead = |c: Option<Value>| {
        let mut record = json!({"timestamp": ts, "a": "ok", "b": "ok"});
        if let Some(c) = c {
            record["c"] = c;
        }
        enrich(&rules, &record).expect_err("dead letter")
    };
    assert_eq!(
        dead(Some(json!("other"))),
        Rejection::new(
            DeadLetterReason::UnknownValue,
            r#"c value "other" is neither known-good nor known-bad"#
        )
    );
    assert_eq!(
        dead(None),
        Rejection::new(DeadLetterReason::MissingField, "c is missing")
    );
    assert_eq!(
        dead(Some(Value::Null)),
        Rejection::new(DeadLetterReason::MissingField, "c is null")
    );
    assert_eq!(
        dead(Some(json!([1]))),
        Rejection::new(
            DeadLetterReason::WrongType,
            "c is an array; expected a string, a number or a boolean"
        )
    );
    let long = "x".repeat(200);
    let detail = dead(Some(json!(long))).detail;
    assert!(
        detail.starts_with("c value \"xxx") && detail.contains('…'),
        "{detail}"
    );
    assert!(detail.len() < 140, "{detail}");
}

#[test]
fn nested_paths_are_read_at_any_depth_and_through_non_objects_are_wrong_type() {
    let rules = CompiledRules::from_yaml(
        r#"
fields:
  - path: a.b.c
    bad: { indicator: deep_bad, values: [x] }
    unknown: neither
    missing: dead_letter
  - path: a.b.d
    good: { indicator: sibling_good, values: [y] }
    unknown: neither
    missing: neither
  - path: a.e
    good: { indicator: shallow_good, values: [z] }
    unknown: neither
    missing: neither
"#,
    )
    .expect("compiles");
    let ts = 1_700_000_000_000_i64;
    let enriched = enrich(
        &rules,
        &json!({"timestamp": ts, "a": {"e": "z", "b": {"d": "y", "c": "x", "f": [1]}}}),
    )
    .expect("enriched");
    assert_eq!(enriched["deep_bad"], 1);
    assert_eq!(enriched["sibling_good"], 1);
    assert_eq!(enriched["shallow_good"], 1);

    for (a, detail) in [
        (
            json!("text"),
            "a is a string, not an object, so a.b.c cannot be read",
        ),
        (
            json!([{"b": {"c": "x"}}]),
            "a is an array, not an object, so a.b.c cannot be read",
        ),
        (
            json!({"b": 7}),
            "a.b is a number, not an object, so a.b.c cannot be read",
        ),
        (
            json!({"b": true}),
            "a.b is a boolean, not an object, so a.b.c cannot be read",
        ),
    ] {
        let rejection = enrich(&rules, &json!({"timestamp": ts, "a": a})).expect_err("wrong type");
        assert_eq!(
            rejection,
            Rejection::new(DeadLetterReason::WrongType, detail),
            "{a}"
        );
    }
    // A null object on the path means the field is missing.
    let rejection = enrich(&rules, &json!({"timestamp": ts, "a": {"b": null}})).expect_err("null");
    assert_eq!(
        rejection,
        Rejection::new(DeadLetterReason::MissingField, "a.b.c is missing")
    );
    let rejection = enrich(&rules, &json!({"timestamp": ts, "a": {}})).expect_err("missing");
    assert_eq!(
        rejection,
        Rejection::new(DeadLetterReason::MissingField, "a.b.c is missing")
    );
}

#[test]
fn every_matcher_kind_classifies() {
    let rules = CompiledRules::from_yaml(
        r#"
fields:
  - path: status
    good: { indicator: ok, status: [2xx, 304] }
    bad: { indicator: err, status: [5xx, "404"] }
    unknown: neither
    missing: neither
  - path: latency
    good: { indicator: fast, range: { max: 100 } }
    bad: { indicator: slow, range: { min: 1000.5 } }
    unknown: neither
    missing: neither
  - path: uri
    good: { indicator: static, regex: '^/static/' }
    bad: { indicator: admin, regex: 'admin|\.env$' }
    unknown: neither
    missing: neither
  - path: flag
    good: { indicator: flag_true, values: [true, 1] }
    bad: { indicator: flag_false, values: ["false", 0] }
    unknown: neither
    missing: neither
"#,
    )
    .expect("compiles");
    let table: [(&str, Value, [i64; 2]); 24] = [
        ("status", json!(204), [1, 0]),
        ("status", json!("299"), [1, 0]),
        ("status", json!(304), [1, 0]),
        ("status", json!(303), [0, 0]),
        ("status", json!("404"), [0, 1]),
        ("status", json!(403), [0, 0]),
        ("status", json!("500"), [0, 1]),
        ("status", json!(" 500"), [0, 0]),
        ("latency", json!(3), [1, 0]),
        ("latency", json!(100.0), [1, 0]),
        ("latency", json!(-7), [1, 0]),
        ("latency", json!("42"), [1, 0]),
        ("latency", json!(500), [0, 0]),
        ("latency", json!(1000.5), [0, 1]),
        ("latency", json!("2e3"), [0, 1]),
        ("latency", json!("slow"), [0, 0]),
        ("uri", json!("/static/app.js"), [1, 0]),
        ("uri", json!("/static/admin.js"), [0, 1]), // matches both: bad wins
        ("uri", json!("/x/.env"), [0, 1]),
        ("uri", json!(7), [0, 0]),
        ("flag", json!(true), [1, 0]),
        ("flag", json!("1"), [1, 0]),
        ("flag", json!(false), [0, 1]),
        ("flag", json!(0), [0, 1]),
    ];
    let names = |path: &str| match path {
        "status" => ["ok", "err"],
        "latency" => ["fast", "slow"],
        "uri" => ["static", "admin"],
        _ => ["flag_true", "flag_false"],
    };
    for (path, value, expected) in table {
        let record = json!({"timestamp": 1_700_000_000_000_i64, path: value});
        let enriched = enrich(&rules, &record).expect("enriched");
        let [good, bad] = names(path);
        assert_eq!(
            [enriched[good].as_i64(), enriched[bad].as_i64()],
            expected.map(Some),
            "{path} = {value}"
        );
    }
}

#[test]
fn escaped_strings_and_keys_compare_unescaped() {
    let rules = default_rules();
    let record = concat!(
        r#"{"timestamp":1700000000000,"act\u0069on":"BL\u004fCK","httpSourceName":"A\u004cB","#,
        r#""httpStatus":"5\u00304","httpRequest":{"c\u006funtry":"\u0055S","httpMethod":"G\u0045T"}}"#
    );
    let mut out = Vec::new();
    rules
        .apply(record.as_bytes(), &source(), &mut out)
        .expect("enriched");
    let enriched: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(indicators(&enriched), [0, 1, 1, 0, 0, 1, 1, 0, 1, 0]);
    // The original members are kept as written, escapes included.
    assert!(out.starts_with(&record.as_bytes()[..record.len() - 1]));
}

#[test]
fn the_embedded_default_rules_file_is_the_one_in_the_repository() {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo");
    let on_disk =
        std::fs::read_to_string(std::path::Path::new(&manifest).join("rules/default.yaml"))
            .expect("rules/default.yaml");
    assert_eq!(on_disk, transformer::rules::DEFAULT_RULES_YAML);
    let parsed = Rules::from_yaml(&on_disk).expect("parses");
    assert_eq!(parsed, Rules::default_rules().expect("parses"));
    let summary = default_rules().summary();
    let seed = summary.section(None).expect("the seed's section");
    assert_eq!(seed.indicators(), INDICATORS);
    let text = summary.to_string();
    for part in [
        "5 monitored fields, 10 indicators",
        "httpRequest.country",
        "UNK_country",
        "values US, UK, IN",
        "status 4xx, 5xx",
        "unknown value: bad, missing: dead_letter, wrong type: dead_letter",
    ] {
        assert!(text.contains(part), "{text}\nlacks {part}");
    }
}
