//! The transform's contract on whole records: what it adds (`@timestamp` from every timestamp
//! form, `event_id`), that it keeps the original bytes, every dead-letter reason with its
//! detail, the records that already carry output keys, whitespace and empty objects, and
//! property tests that no input panics and every accepted record comes out as complete JSON.

use pipeline::wire::{DeadLetterReason, SourcePosition, event_id};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use transformer::{CompiledRules, Rejection};

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

fn rules() -> CompiledRules {
    CompiledRules::default_rules().expect("the default rules compile")
}

fn source() -> SourcePosition {
    SourcePosition {
        topic: "raw".to_owned(),
        partition: 3,
        offset: 1_234_567,
    }
}

/// A seed record with `timestamp` written as the JSON text `timestamp`.
fn record_with_timestamp(timestamp: &str) -> String {
    format!(
        concat!(
            r#"{{"timestamp":{},"formatVersion":1,"action":"ALLOW","httpSourceName":"ALB","#,
            r#""httpSourceId":"alb","httpStatus":"200","httpRequest":{{"clientIp":"1.1.1.1","#,
            r#""country":"US","headers":[],"uri":"/","args":"","httpVersion":"HTTP/1.1","#,
            r#""httpMethod":"GET","requestId":"null"}}}}"#
        ),
        timestamp
    )
}

fn apply(rules: &CompiledRules, input: &[u8]) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::new();
    rules.apply(input, &source(), &mut out)?;
    Ok(out)
}

fn apply_json(input: &str) -> Result<Value, Rejection> {
    let out = apply(&rules(), input.as_bytes())?;
    Ok(serde_json::from_slice(&out).expect("the output is JSON"))
}

#[test]
fn every_timestamp_form_becomes_rfc3339_utc_milliseconds() {
    let table = [
        ("1700000000000", "2023-11-14T22:13:20.000Z"), // integer milliseconds
        ("1700000000", "2023-11-14T22:13:20.000Z"),    // integer seconds
        ("1669682102.123015", "2022-11-29T00:35:02.123Z"), // the seed's fractional seconds
        ("1669682102.123", "2022-11-29T00:35:02.123Z"), // binary noise does not lose 1 ms
        ("1700000000000.987", "2023-11-14T22:13:20.000Z"), // fractional milliseconds
        ("1.7e12", "2023-11-14T22:13:20.000Z"),        // exponent, milliseconds
        ("1.7E9", "2023-11-14T22:13:20.000Z"),         // exponent, seconds
        ("1795428000123", "2026-11-23T10:00:00.123Z"),
        ("946684800", "2000-01-01T00:00:00.000Z"), // the first accepted instant
        ("4102444799999", "2099-12-31T23:59:59.999Z"), // the last
    ];
    for (timestamp, expected) in table {
        let enriched = apply_json(&record_with_timestamp(timestamp))
            .unwrap_or_else(|r| panic!("{timestamp}: {r}"));
        assert_eq!(enriched["@timestamp"], expected, "{timestamp}");
        // The original timestamp stays as it was written.
        let out = apply(&rules(), record_with_timestamp(timestamp).as_bytes()).expect("ok");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(
            text.starts_with(&format!(r#"{{"timestamp":{timestamp},"#)),
            "{text}"
        );
    }
}

#[test]
fn impossible_timestamps_are_dead_letters_with_the_reason() {
    let table = [
        (
            "0",
            "timestamp 0 is before 2000-01-01 (read as epoch seconds)",
        ),
        (
            "-5",
            "timestamp -5 is before 2000-01-01 (read as epoch seconds)",
        ),
        (
            "1e300",
            "timestamp 1e300 is after 2100-01-01 (read as epoch milliseconds)",
        ),
        (
            "-1e300",
            "timestamp -1e300 is before 2000-01-01 (read as epoch milliseconds)",
        ),
        (
            "99999999999999999999999",
            "timestamp 1e23 is after 2100-01-01 (read as epoch milliseconds)",
        ),
        ("1e400", "timestamp inf is not a finite number"),
        (
            "4102444800000",
            "timestamp 4102444800000 is after 2100-01-01 (read as epoch milliseconds)",
        ),
        (
            "\"1700000000000\"",
            "timestamp is a string; expected epoch milliseconds or seconds as a JSON number",
        ),
        (
            "true",
            "timestamp is a boolean; expected epoch milliseconds or seconds as a JSON number",
        ),
        (
            "[1]",
            "timestamp is an array; expected epoch milliseconds or seconds as a JSON number",
        ),
        (
            "{}",
            "timestamp is an object; expected epoch milliseconds or seconds as a JSON number",
        ),
        (
            "null",
            "timestamp is missing; expected epoch milliseconds or seconds as a JSON number",
        ),
    ];
    for (timestamp, detail) in table {
        let rejection = apply_json(&record_with_timestamp(timestamp)).expect_err(timestamp);
        assert_eq!(
            rejection,
            Rejection::new(DeadLetterReason::BadTimestamp, detail),
            "{timestamp}"
        );
    }
    let mut record: Value = serde_json::from_str(&record_with_timestamp("1")).expect("JSON");
    record.as_object_mut().expect("object").remove("timestamp");
    let rejection = apply_json(&record.to_string()).expect_err("no timestamp");
    assert_eq!(rejection.reason, DeadLetterReason::BadTimestamp);
    assert_eq!(
        rejection.detail,
        "timestamp is missing; expected epoch milliseconds or seconds as a JSON number"
    );
}

#[test]
fn the_event_id_is_the_pipeline_event_id_of_the_source_position() {
    let rules = rules();
    let record = record_with_timestamp("1700000000000");
    for (topic, partition, offset) in [
        ("raw", 0, 0),
        ("raw", 3, 1_234_567),
        ("logwarden.raw", 11, i64::MAX),
        ("stdin", 0, 41),
        ("odd\"topic\\", -1, -7),
    ] {
        let position = SourcePosition {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let mut out = Vec::new();
        rules
            .apply(record.as_bytes(), &position, &mut out)
            .expect("enriched");
        let enriched: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(enriched["event_id"], event_id(topic, partition, offset));
        // Stable however often the record is processed.
        let mut again = Vec::new();
        rules
            .apply(record.as_bytes(), &position, &mut again)
            .expect("enriched");
        assert_eq!(again, out);
    }
}

#[test]
fn the_output_is_the_original_bytes_plus_the_additions() {
    let record = record_with_timestamp("1700000000000");
    let out = String::from_utf8(apply(&rules(), record.as_bytes()).expect("ok")).expect("UTF-8");
    let body = &record[..record.len() - 1];
    assert_eq!(
        out,
        format!(
            "{body},\"K_action\":1,\"B_action\":0,\"K_source\":1,\"UNK_source\":0,\
             \"G_httpstatus\":1,\"B_httpstatus\":0,\"K_country\":1,\"UNK_country\":0,\
             \"common_method\":1,\"uncommon_method\":0,\"@timestamp\":\"2023-11-14T22:13:20.000Z\",\
             \"event_id\":\"raw-3-1234567\"}}"
        )
    );
}

#[test]
fn unusual_but_valid_formatting_is_kept_byte_for_byte() {
    let record = "\r\n\t {\"timestamp\" : 1700000000000 ,\n \"action\":\"BL\\u004fCK\", \"httpSourceName\":\"ALB\",\
                  \"httpStatus\":\"200\",\"httpRequest\":{ \"country\" : \"US\" , \"httpMethod\":\"GET\" } ,\
                  \"extra\":{\"nested\":[1,2.5e-3,\"\\\"}\",null,true,{}]} } \n\r ";
    let out = String::from_utf8(apply(&rules(), record.as_bytes()).expect("ok")).expect("UTF-8");
    let trimmed = record.trim();
    assert!(out.starts_with(&trimmed[..trimmed.len() - 1]), "{out}");
    assert!(out.ends_with("\"event_id\":\"raw-3-1234567\"}"), "{out}");
    let enriched: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(enriched["B_action"], 1);
    assert_eq!(enriched["extra"]["nested"][2], "\"}");
}

#[test]
fn records_with_output_keys_are_rebuilt_with_the_computed_values() {
    let rules = rules();
    let record = concat!(
        r#"{"K_action":7,"timestamp":1700000000000,"action":"BLOCK","event_id":"forged","#,
        r#""httpSourceName":"ALB","httpStatus":"200","@timestamp":"1970-01-01T00:00:00Z","#,
        r#""httpRequest":{"country":"US","httpMethod":"GET","K_action":"nested stays"},"#,
        r#""B_\u0061ction":"escaped key","z":[1]}"#
    );
    let out = apply(&rules, record.as_bytes()).expect("enriched");
    let text = String::from_utf8(out.clone()).expect("UTF-8");
    // Each output key appears once at the top level, with the computed value.
    for key in INDICATORS.iter().chain(&["@timestamp", "event_id"]) {
        let quoted = format!("\"{key}\":");
        let top_level = text.matches(&quoted).count() - usize::from(*key == "K_action");
        assert_eq!(top_level, 1, "{key} in {text}");
    }
    let enriched: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(enriched["K_action"], 0);
    assert_eq!(enriched["B_action"], 1);
    assert_eq!(enriched["event_id"], "raw-3-1234567");
    assert_eq!(enriched["@timestamp"], "2023-11-14T22:13:20.000Z");
    assert_eq!(enriched["httpRequest"]["K_action"], "nested stays");
    assert_eq!(enriched["z"], json!([1]));
    // The other members are kept as written, in order.
    assert!(
        text.starts_with(
            r#"{"timestamp":1700000000000,"action":"BLOCK","httpSourceName":"ALB","httpStatus":"200","httpRequest":{"country":"US","httpMethod":"GET","K_action":"nested stays"},"z":[1],"K_action":0,"#
        ),
        "{text}"
    );
    // Enriching an enriched record changes nothing: the transform is idempotent.
    let again = apply(&rules, &out).expect("enriched again");
    assert_eq!(String::from_utf8(again).expect("UTF-8"), text);
}

#[test]
fn every_dead_letter_reason_has_a_detail() {
    let rules = rules().with_max_record_bytes(600);
    let good = record_with_timestamp("1700000000000");
    let replace = |from: &str, to: &str| good.replacen(from, to, 1);
    let table: Vec<(Vec<u8>, DeadLetterReason, &str)> = vec![
        (
            b"{\"action\":\"\xff\"}".to_vec(),
            DeadLetterReason::NotUtf8,
            "the record is not UTF-8: invalid utf-8 sequence of 1 bytes from index 11",
        ),
        (
            b"{\"action\":".to_vec(),
            DeadLetterReason::NotJson,
            "the record is not JSON: EOF while parsing a value at line 1 column 10",
        ),
        (
            b"".to_vec(),
            DeadLetterReason::NotJson,
            "the record is not JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            format!("{good} trailing").into_bytes(),
            DeadLetterReason::NotJson,
            "the record is not JSON: trailing characters",
        ),
        (
            b"[1,2]".to_vec(),
            DeadLetterReason::NotObject,
            "the record is an array, not a JSON object",
        ),
        (
            b" \"text\" ".to_vec(),
            DeadLetterReason::NotObject,
            "the record is a string, not a JSON object",
        ),
        (
            b"null".to_vec(),
            DeadLetterReason::NotObject,
            "the record is null, not a JSON object",
        ),
        (
            replace(r#""country":"US","#, "").into_bytes(),
            DeadLetterReason::MissingField,
            "httpRequest.country is missing",
        ),
        (
            replace(r#""httpStatus":"200""#, r#""httpStatus":{"code":200}"#).into_bytes(),
            DeadLetterReason::WrongType,
            "httpStatus is an object; expected a string, a number or a boolean",
        ),
        (
            "x".repeat(601).into_bytes(),
            DeadLetterReason::Oversized,
            "the record is 601 bytes, over the limit of 600 bytes",
        ),
        (
            record_with_timestamp("-5").into_bytes(),
            DeadLetterReason::BadTimestamp,
            "timestamp -5 is before 2000-01-01 (read as epoch seconds)",
        ),
    ];
    for (input, reason, detail) in table {
        let mut out = b"untouched".to_vec();
        let rejection = rules
            .apply(&input, &source(), &mut out)
            .expect_err("dead letter");
        assert_eq!(
            rejection.reason,
            reason,
            "{}",
            String::from_utf8_lossy(&input)
        );
        assert!(
            rejection.detail.starts_with(detail),
            "{:?} does not start with {detail:?}",
            rejection.detail
        );
        assert_eq!(out, b"untouched", "a rejection leaves the buffer as it was");
    }
    // unknown_value needs a policy that says so; the default rules never dead-letter a value.
    let strict = CompiledRules::from_yaml(
        "fields:\n  - path: action\n    good: { indicator: K, values: [ALLOW] }\n    unknown: dead_letter\n    missing: neither\n",
    )
    .expect("compiles");
    let rejection = strict
        .apply(
            br#"{"timestamp":1700000000000,"action":"FOO"}"#,
            &source(),
            &mut Vec::new(),
        )
        .expect_err("unknown");
    assert_eq!(
        rejection,
        Rejection::new(
            DeadLetterReason::UnknownValue,
            r#"action value "FOO" is neither known-good nor known-bad"#
        )
    );
}

#[test]
fn problems_are_reported_in_a_fixed_order() {
    // Not UTF-8 beats not JSON; fields (in rules order) beat the timestamp.
    let rejection = apply(&rules(), b"{\xff").expect_err("bad");
    assert_eq!(rejection.reason, DeadLetterReason::NotUtf8);
    let rejection = apply_json(r#"{"timestamp":"bad","httpSourceName":"ALB"}"#).expect_err("bad");
    assert_eq!(rejection.detail, "action is missing");
}

#[test]
fn empty_objects_and_whitespace_only_input() {
    let permissive = CompiledRules::from_yaml(
        "fields:\n  - path: a\n    good: { indicator: a_ok, values: [x] }\n    unknown: neither\n    missing: neither\n",
    )
    .expect("compiles");
    for input in ["{}", " { } ", "\n{\n}\n"] {
        let rejection = permissive
            .apply(input.as_bytes(), &source(), &mut Vec::new())
            .expect_err("no timestamp");
        assert_eq!(
            rejection.reason,
            DeadLetterReason::BadTimestamp,
            "{input:?}"
        );
    }
    // The smallest record that enriches: only a timestamp, so exactly one comma is added.
    let out = apply(&permissive, b" {\"timestamp\":1700000000000}\n").expect("enriched");
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        r#"{"timestamp":1700000000000,"a_ok":0,"@timestamp":"2023-11-14T22:13:20.000Z","event_id":"raw-3-1234567"}"#
    );
    // A record made only of output keys and the timestamp, rebuilt.
    let out = apply(
        &permissive,
        br#"{"a_ok":1,"timestamp":1700000000000,"event_id":"x"}"#,
    )
    .expect("enriched");
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        r#"{"timestamp":1700000000000,"a_ok":0,"@timestamp":"2023-11-14T22:13:20.000Z","event_id":"raw-3-1234567"}"#
    );
    for input in ["", "   ", "\n"] {
        let rejection = apply(&permissive, input.as_bytes()).expect_err("empty");
        assert_eq!(rejection.reason, DeadLetterReason::NotJson, "{input:?}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 200_000;
    let deep = format!(
        r#"{{"timestamp":1700000000000,"x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let rejection = apply(&rules(), deep.as_bytes()).expect_err("too deep");
    assert_eq!(rejection.reason, DeadLetterReason::NotJson);
    assert!(
        rejection.detail.contains("nesting deeper than 128 levels"),
        "{}",
        rejection.detail
    );
}

#[test]
fn a_reused_buffer_accumulates_records() {
    let rules = rules();
    let mut out = Vec::new();
    let record = record_with_timestamp("1700000000000");
    rules
        .apply(record.as_bytes(), &source(), &mut out)
        .expect("first");
    let first_len = out.len();
    assert!(rules.apply(b"nope", &source(), &mut out).is_err());
    assert_eq!(out.len(), first_len);
    rules
        .apply(record.as_bytes(), &source(), &mut out)
        .expect("second");
    assert_eq!(out.len(), 2 * first_len);
}

// Property tests.

/// Rules whose every policy is `neither` or `bad`, so any object with a good timestamp enriches.
const PERMISSIVE: &str = r#"
fields:
  - path: action
    good: { indicator: K_action, values: [ALLOW, CAPTCHA, Challenge, Count] }
    bad: { indicator: B_action, values: [BLOCK] }
    unknown: neither
    missing: neither
    wrong_type: neither
  - path: httpSourceName
    good: { indicator: K_source, values: [ALB, APIGW, APPSYNC, CF] }
    bad: { indicator: UNK_source, values: ["-"] }
    unknown: bad
    missing: bad
    wrong_type: bad
  - path: httpStatus
    good: { indicator: G_httpstatus, status: [2xx, 3xx] }
    bad: { indicator: B_httpstatus, status: [4xx, 5xx] }
    unknown: neither
    missing: neither
    wrong_type: neither
  - path: httpRequest.country
    good: { indicator: K_country, values: [US, UK, IN] }
    bad: { indicator: UNK_country, values: [XX, YY, ZZ, WW] }
    unknown: bad
    missing: neither
    wrong_type: neither
  - path: httpRequest.httpMethod
    good: { indicator: common_method, values: [GET, HEAD, POST] }
    bad: { indicator: uncommon_method, values: [DELETE] }
    unknown: neither
    missing: neither
    wrong_type: neither
"#;

/// Optional JSON whitespace.
fn space() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "\n", "\t", "\r", ""]), 0..3)
        .prop_map(|parts| parts.concat())
}

/// JSON string literals, with escapes of every kind.
fn string_literal() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "ALLOW",
        "BLOCK",
        "US",
        "XX",
        "GET",
        "DELETE",
        "200",
        "404",
        "-",
        "a",
        "é",
        "✓",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\t",
        "\\u0041",
        "\\u00e9",
        "\\ud83d\\ude00",
        " ",
        "}",
        "]",
        ",",
        ":",
        "{",
        "[",
    ]);
    prop::collection::vec(piece, 0..5).prop_map(|parts| format!("\"{}\"", parts.concat()))
}

fn number_literal() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-0",
        "1",
        "-5",
        "200",
        "404",
        "1.5",
        "-2.5e-3",
        "1E9",
        "1700000000000",
        "1669682102.123015",
        "1e300",
        "18446744073709551616",
    ])
    .prop_map(str::to_owned)
}

fn key_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"timestamp\"",
            "\"action\"",
            "\"httpSourceName\"",
            "\"httpStatus\"",
            "\"httpRequest\"",
            "\"country\"",
            "\"httpMethod\"",
            "\"K_action\"",
            "\"UNK_country\"",
            "\"@timestamp\"",
            "\"event_id\"",
            "\"act\\u0069on\"",
            "\"K_\\u0061ction\"",
            "\"headers\"",
            "\"\"",
        ])
        .prop_map(str::to_owned),
        string_literal(),
    ]
}

/// JSON-ish text: valid JSON from a grammar, sometimes with one of its bytes corrupted.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_literal(),
        number_literal(),
        prop::sample::select(vec!["true", "false", "null"]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (prop::collection::vec((space(), inner.clone(), space()), 0..5)).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            object_of(inner),
        ]
    })
}

fn object_of(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec((key_literal(), space(), value, space()), 0..6).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, a, v, b)| format!("{k}{a}:{b}{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// Records: objects with a good timestamp (usually), monitored keys and arbitrary values.
fn record() -> impl Strategy<Value = String> {
    let timestamp = prop_oneof![
        4 => prop::sample::select(vec!["1700000000000", "1700000000", "1669682102.123015"]),
        1 => prop::sample::select(vec!["0", "\"x\"", "null", "1e300"]),
    ];
    (timestamp, space(), object_of(json_value()), space()).prop_map(|(ts, a, object, b)| {
        let rest = object.strip_prefix('{').unwrap_or(&object);
        let comma = if rest == "}" { "" } else { "," };
        format!("{a}{{\"timestamp\":{ts}{comma}{rest}{b}")
    })
}

/// Checks an accepted record's output: JSON, every original top-level key, every output key,
/// indicators 0 or 1, and the non-output members unchanged.
fn check_output(input: &str, out: &[u8], rules: &CompiledRules) -> Result<(), TestCaseError> {
    if serde_json::from_str::<Value>(input).is_err() {
        // Valid JSON that serde_json cannot hold as a Value (a lone surrogate escape such as
        // "\ud800"): check the syntax and the end only.
        prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(out).is_ok());
        let end: &[u8] = b"\"event_id\":\"raw-3-1234567\"}";
        prop_assert!(
            out.ends_with(end),
            "ends {:?}",
            String::from_utf8_lossy(out)
        );
        return Ok(());
    }
    let enriched: Map<String, Value> = serde_json::from_slice(out)
        .map_err(|e| TestCaseError::fail(format!("output is not a JSON object: {e}")))?;
    let original: Map<String, Value> = serde_json::from_str(input)
        .map_err(|e| TestCaseError::fail(format!("accepted input is not a JSON object: {e}")))?;
    let outputs: Vec<&str> = rules.output_fields().collect();
    for (key, value) in &original {
        prop_assert!(enriched.contains_key(key), "lost {key}");
        if !outputs.contains(&key.as_str()) {
            prop_assert_eq!(&enriched[key], value, "changed {}", key);
        }
    }
    for indicator in rules.indicators() {
        let value = enriched.get(indicator).and_then(Value::as_i64);
        prop_assert!(matches!(value, Some(0 | 1)), "{indicator} = {value:?}");
    }
    prop_assert!(enriched.get("@timestamp").and_then(Value::as_str).is_some());
    prop_assert_eq!(
        enriched.get("event_id").and_then(Value::as_str),
        Some("raw-3-1234567")
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
        for rules in [rules(), CompiledRules::from_yaml(PERMISSIVE).expect("compiles")] {
            let mut out = Vec::new();
            if rules.apply(&input, &source(), &mut out).is_ok() {
                let text = std::str::from_utf8(&input).expect("accepted input is UTF-8");
                check_output(text, &out, &rules)?;
            }
        }
    }

    #[test]
    fn json_ish_text_never_panics_and_accepted_records_are_complete(
        input in prop_oneof![record(), json_value()],
        corrupt in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut input = input.into_bytes();
        if let Some((at, byte)) = corrupt
            && !input.is_empty()
        {
            let at = at.index(input.len());
            input[at] = byte;
        }
        let permissive = CompiledRules::from_yaml(PERMISSIVE).expect("compiles");
        for rules in [rules(), permissive] {
            let mut out = Vec::new();
            let result = rules.apply(&input, &source(), &mut out);
            // `accepts` decides exactly as `apply` does.
            prop_assert_eq!(rules.accepts(&input), result.clone());
            let text = std::str::from_utf8(&input);
            let is_object = text.is_ok_and(|t| {
                serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
                    && t.trim_start_matches([' ', '\n', '\r', '\t']).starts_with('{')
            });
            match result {
                Ok(()) => check_output(text.expect("accepted input is UTF-8"), &out, &rules)?,
                Err(rejection) => {
                    prop_assert!(out.is_empty(), "a rejection wrote output");
                    // The scanner agrees with serde_json on what is a JSON object.
                    let syntax = matches!(
                        rejection.reason,
                        pipeline::wire::DeadLetterReason::NotJson
                            | pipeline::wire::DeadLetterReason::NotUtf8
                            | pipeline::wire::DeadLetterReason::NotObject
                    );
                    prop_assert_eq!(syntax, !is_object, "{}: {:?}", rejection, String::from_utf8_lossy(&input));
                }
            }
        }
    }

    #[test]
    fn records_that_parse_enrich_under_permissive_rules(input in record()) {
        let permissive = CompiledRules::from_yaml(PERMISSIVE).expect("compiles");
        let mut out = Vec::new();
        let parsed: Value = serde_json::from_str(&input).expect("the grammar makes JSON");
        // The last `timestamp` counts, which the object's own members may repeat.
        let good_timestamp = parsed["timestamp"]
            .as_f64()
            .is_some_and(|t| [1_700_000_000_000.0, 1_700_000_000.0, 1_669_682_102.123_015].contains(&t));
        match permissive.apply(input.as_bytes(), &source(), &mut out) {
            Ok(()) => check_output(&input, &out, &permissive)?,
            Err(rejection) => {
                prop_assert_eq!(rejection.reason, DeadLetterReason::BadTimestamp, "{}", rejection);
                prop_assert!(!good_timestamp, "{}", rejection);
            }
        }
    }
}
