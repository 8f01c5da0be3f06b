use serde_json::json;

use super::*;
use crate::service::live::testing;
use crate::spec::{Category, Filter};

#[test]
fn a_record_is_read_with_its_event_time_or_the_reason_it_cannot_be() {
    use DeadLetterReason::*;
    type Read<'a> = Result<i64, (DeadLetterReason, &'a str)>;
    let cases: [(&[u8], Read); 14] = [
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z","x":1}"#,
            Ok(1_796_464_800_000),
        ),
        (
            br#"{"@timestamp":"2026-12-05T11:00:00.250+01:00"}"#,
            Ok(1_796_464_800_250),
        ),
        (br#"{"x":1}"#, Err((MissingField, "@timestamp is missing"))),
        (
            br#"{"@timestamp":1796464800000}"#,
            Err((WrongType, "@timestamp is not an RFC 3339 string")),
        ),
        (
            br#"{"@timestamp":"yesterday"}"#,
            Err((BadTimestamp, "@timestamp: premature end of input")),
        ),
        (
            br#"["@timestamp"]"#,
            Err((NotObject, "an enriched record is a JSON object")),
        ),
        (
            b"not json",
            Err((NotJson, "expected ident at line 1 column 2")),
        ),
        (
            b"",
            Err((NotJson, "EOF while parsing a value at line 1 column 0")),
        ),
        // Skipped parts are still parsed: invalid JSON anywhere is not JSON.
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z","skipped":[1,}"#,
            Err((NotJson, "expected value at line 1 column 51")),
        ),
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z"} trailing"#,
            Err((NotJson, "trailing characters at line 1 column 39")),
        ),
        (
            br#"[1, {"a": 2}"#,
            Err((NotJson, "EOF while parsing a list at line 1 column 12")),
        ),
        // Not UTF-8, even in a skipped string: serde_json's text for it.
        (
            b"{\"@timestamp\":\"2026-12-05T10:00:00Z\",\"skipped\":\"\xff\"}",
            Err((NotJson, "invalid unicode code point at line 1 column 49")),
        ),
        // Valid JSON by RFC 8259 that a whole `Value` refuses, in a skipped field: read.
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z","skipped":[1e400,"\ud800"]}"#,
            Ok(1_796_464_800_000),
        ),
        // A repeated key: the last value wins.
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z","@timestamp":"2026-12-05T10:00:01Z"}"#,
            Ok(1_796_464_801_000),
        ),
    ];
    let plan = Plan::of_paths(&[]);
    for (payload, expected) in cases {
        let read = plan.read(payload);
        assert_eq!(
            read.as_ref()
                .map(|record| record.time)
                .map_err(|(reason, detail)| (*reason, detail.as_str())),
            expected,
            "{}",
            String::from_utf8_lossy(payload)
        );
        // The same verdict as parsing the whole record (but for the two RFC cases).
        if !payload.windows(5).any(|w| w == b"1e400") {
            assert_eq!(
                matches!(read, Err((NotJson, _))),
                serde_json::from_slice::<Value>(payload).is_err()
            );
        }
    }
    let event_id = |payload: &[u8]| {
        let record = plan.read(payload).ok()?;
        plan.event_id(&record).map(str::to_owned)
    };
    assert_eq!(
        event_id(br#"{"@timestamp":"2026-12-05T10:00:00Z","event_id":"enriched-0-7"}"#),
        Some("enriched-0-7".to_owned())
    );
    assert_eq!(
        event_id(br#"{"@timestamp":"2026-12-05T10:00:00Z","event_id":"e\u0031"}"#),
        Some("e1".to_owned())
    );
    assert_eq!(
        event_id(br#"{"@timestamp":"2026-12-05T10:00:00Z","event_id":7}"#),
        None
    );
}

#[test]
fn dotted_paths_are_looked_up() {
    let record = json!({
        "@timestamp": "2026-12-05T10:00:00Z",
        "a": {"b": {"c": 3}}, "n": 1, "list": [1, 2], "a.b": "literal",
        "d": {"e": 1}, "d": {"f": 2},
    });
    let cases = [
        ("n", Some(json!(1))),
        ("a.b.c", Some(json!(3))),
        ("a.b", Some(json!({"c": 3}))),
        ("a.x", None),
        ("a.b.c.d", None),
        ("n.x", None),
        ("list.0", None),
        ("list", Some(json!([1, 2]))),
        ("", None),
        ("missing", None),
        // `json!` keeps the last of a repeated key, as a payload read does.
        ("d.e", None),
        ("d.f", Some(json!(2))),
    ];
    let paths: Vec<&str> = cases.iter().map(|(path, _)| *path).collect();
    let plan = Plan::of_paths(&paths);
    let payload = br#"{"@timestamp": "2026-12-05T10:00:00Z",
            "a": {"b": {"c": 3}}, "n": 1, "list": [1, 2], "a.b": "literal",
            "d": {"e": 1}, "d": {"f": 2}}"#;
    let read = plan.read(payload).expect("readable");
    for (path, expected) in cases {
        let found = plan.slot(path).and_then(|slot| read.field(slot)).cloned();
        assert_eq!(
            found,
            expected.clone().map(Field::from_value),
            "{path} in {payload:?}",
            payload = String::from_utf8_lossy(payload)
        );
        let looked_up = path
            .split('.')
            .try_fold(&record, |value, key| value.get(key));
        assert_eq!(looked_up.cloned(), expected, "{path} in {record}");
    }
}

fn feature(
    aggregation: Aggregation,
    field: Option<&str>,
    filter: Option<(&str, Value)>,
) -> Feature {
    Feature {
        field: field.map(str::to_owned),
        aggregation,
        filter: filter.map(|(field, value)| Filter {
            field: field.to_owned(),
            value,
        }),
        min_count: None,
    }
}

#[test]
fn contributions_follow_the_feature() {
    let payload = json!({
        "@timestamp": "2026-12-05T10:00:00Z",
        "UNK_country": 1,
        "bytes": 2.5,
        "flag": true,
        "off": false,
        "text": "7",
        "status": 403,
        "httpRequest": {"country": "XX"},
    })
    .to_string();
    let xx = Some(("httpRequest.country", json!("XX")));
    let us = Some(("httpRequest.country", json!("US")));
    let cases = [
        (
            feature(Aggregation::Sum, Some("UNK_country"), None),
            Some(1.0),
        ),
        (feature(Aggregation::Sum, Some("bytes"), None), Some(2.5)),
        (feature(Aggregation::Rate, Some("bytes"), None), Some(2.5)),
        (feature(Aggregation::Sum, Some("flag"), None), Some(1.0)),
        (feature(Aggregation::Sum, Some("off"), None), Some(0.0)),
        // A missing field, a string, an object: nothing to add, but the record counts.
        (feature(Aggregation::Sum, Some("B_action"), None), Some(0.0)),
        (feature(Aggregation::Sum, Some("text"), None), Some(0.0)),
        (
            feature(Aggregation::Sum, Some("httpRequest"), None),
            Some(0.0),
        ),
        // A count ignores the field's value; a sum without a field counts.
        (feature(Aggregation::Count, Some("bytes"), None), Some(1.0)),
        (feature(Aggregation::Count, None, None), Some(1.0)),
        (feature(Aggregation::Sum, None, None), Some(1.0)),
        // Filters: equal values only, of the same JSON type.
        (feature(Aggregation::Count, None, xx.clone()), Some(1.0)),
        (feature(Aggregation::Count, None, us.clone()), None),
        (feature(Aggregation::Sum, Some("bytes"), xx), Some(2.5)),
        (feature(Aggregation::Sum, Some("bytes"), us), None),
        (
            feature(Aggregation::Count, None, Some(("status", json!(403)))),
            Some(1.0),
        ),
        (
            feature(Aggregation::Count, None, Some(("status", json!(403.0)))),
            None,
        ),
        (
            feature(Aggregation::Count, None, Some(("status", json!("403")))),
            None,
        ),
        (
            feature(Aggregation::Count, None, Some(("absent", json!(null)))),
            None,
        ),
        (
            feature(
                Aggregation::Count,
                None,
                Some(("httpRequest", json!({"country": "XX"}))),
            ),
            Some(1.0),
        ),
    ];
    let specs: Vec<DetectorSpec> = cases
        .iter()
        .map(|(feature, _)| DetectorSpec {
            feature: feature.clone(),
            ..testing::spec("d")
        })
        .collect();
    let plan = Plan::new(&specs);
    let record = plan.read(payload.as_bytes()).expect("readable");
    for (i, (feature, expected)) in cases.iter().enumerate() {
        assert_eq!(
            contribution(feature, plan.wanted(i), &record),
            *expected,
            "{feature:?}"
        );
    }
}

/// The old path's contribution: the whole record parsed, dotted lookups.
fn by_value(feature: &Feature, record: &Value) -> Option<f64> {
    let lookup = |path: &str| path.split('.').try_fold(record, |v, key| v.get(key));
    if let Some(filter) = &feature.filter
        && lookup(&filter.field) != Some(&filter.value)
    {
        return None;
    }
    Some(match (feature.aggregation, &feature.field) {
        (Aggregation::Count, _) | (_, None) => 1.0,
        (_, Some(field)) => match lookup(field) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            _ => 0.0,
        },
    })
}

#[test]
fn the_default_spec_reads_as_a_whole_record_does() {
    let specs = crate::spec::Spec::default_spec()
        .expect("the default spec parses")
        .detectors;
    let plan = Plan::new(&specs);
    let sources = [
        "waf",
        "cloudtrail",
        "syslog",
        "cloudwatch",
        "splunk",
        "other",
    ];
    for i in 0..200_u32 {
        let mut record = serde_json::Map::new();
        record.insert("@timestamp".into(), json!("2026-12-05T10:00:00.123Z"));
        record.insert("event_id".into(), json!(format!("enriched-0-{i}")));
        record.insert("httpRequest".into(), json!({"clientIp": "203.0.113.7"}));
        if i % 7 != 0 {
            record.insert("logwarden_source".into(), json!(sources[i as usize % 6]));
        }
        for (d, spec) in specs.iter().enumerate() {
            let value = match (i as usize + d) % 5 {
                0 => json!(1),
                1 => json!(0),
                2 => json!(true),
                3 => json!("1"),
                _ => continue,
            };
            if let Some(field) = &spec.feature.field {
                record.insert(field.clone(), value);
            }
        }
        let record = Value::Object(record);
        let payload = record.to_string();
        let read = plan.read(payload.as_bytes()).expect("readable");
        assert_eq!(plan.event_id(&read), record["event_id"].as_str());
        for (d, spec) in specs.iter().enumerate() {
            assert_eq!(
                contribution(&spec.feature, plan.wanted(d), &read),
                by_value(&spec.feature, &record),
                "{} on {payload}",
                spec.name
            );
        }
    }
}

#[test]
fn entities_are_scalars_as_text() {
    let cases = [
        (json!("203.0.113.7"), Some("203.0.113.7")),
        (json!(42), Some("42")),
        (json!(-1.5), Some("-1.5")),
        (json!(true), Some("true")),
        (json!(null), None),
        (json!({"a": 1}), None),
        (json!([1]), None),
    ];
    let spec = DetectorSpec {
        category: Some(Category {
            field: "httpRequest.clientIp".into(),
            max_entities: 10,
            idle: std::time::Duration::from_secs(60),
            parts: 1,
            part: None,
        }),
        ..testing::spec("d")
    };
    let plan = Plan::new([&spec]);
    for (value, expected) in cases {
        let payload = json!({
            "@timestamp": "2026-12-05T10:00:00Z",
            "httpRequest": {"clientIp": value},
        })
        .to_string();
        let record = plan.read(payload.as_bytes()).expect("readable");
        assert_eq!(
            entity(plan.wanted(0), &record).as_deref(),
            expected,
            "{value}"
        );
    }
    let record = plan
        .read(br#"{"@timestamp":"2026-12-05T10:00:00Z"}"#)
        .expect("readable");
    assert_eq!(entity(plan.wanted(0), &record), None);
}
