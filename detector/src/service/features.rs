//! A record's contribution to a detector's feature: the enriched record's event time, and what it
//! adds to its interval (1 for a count, the field's value for a sum or a rate, nothing when the
//! feature's filter excludes it). Pure: no IO, no clock, and no panic on any input, because the
//! loop feeds it whatever arrives on `enriched`; a record it cannot read comes back with the
//! reason, for the caller to dead-letter.

use pipeline::wire::{DeadLetterReason, EVENT_ID_FIELD};
use serde_json::Value;

use crate::spec::{Aggregation, Feature};

/// An enriched record and its event time (`@timestamp`, epoch ms); the dead-letter reason and
/// detail when the payload is not a JSON object or carries no RFC 3339 `@timestamp` string.
pub(super) fn read(payload: &[u8]) -> Result<(Value, i64), (DeadLetterReason, String)> {
    let record = serde_json::from_slice::<Value>(payload)
        .map_err(|err| (DeadLetterReason::NotJson, err.to_string()))?;
    if !record.is_object() {
        return Err((
            DeadLetterReason::NotObject,
            "an enriched record is a JSON object".to_owned(),
        ));
    }
    let time = match record.get("@timestamp") {
        None => {
            return Err((
                DeadLetterReason::MissingField,
                "@timestamp is missing".into(),
            ));
        }
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|err| (DeadLetterReason::BadTimestamp, format!("@timestamp: {err}")))?
            .timestamp_millis(),
        Some(_) => {
            return Err((
                DeadLetterReason::WrongType,
                "@timestamp is not an RFC 3339 string".into(),
            ));
        }
    };
    Ok((record, time))
}

/// The record's event id (its document `_id`), when it carries one.
pub(super) fn event_id(record: &Value) -> Option<&str> {
    record.get(EVENT_ID_FIELD).and_then(Value::as_str)
}

/// Looks up a dotted path.
pub(super) fn lookup<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(record, |value, key| value.get(key))
}

/// A record's contribution to a feature: `None` when a filter excludes it.
pub(super) fn contribution(feature: &Feature, record: &Value) -> Option<f64> {
    if let Some(filter) = &feature.filter
        && lookup(record, &filter.field) != Some(&filter.value)
    {
        return None;
    }
    Some(match (feature.aggregation, &feature.field) {
        (Aggregation::Count, _) | (_, None) => 1.0,
        (_, Some(field)) => match lookup(record, field) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            _ => 0.0,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::Filter;

    #[test]
    fn a_record_is_read_with_its_event_time_or_the_reason_it_cannot_be() {
        use DeadLetterReason::*;
        type Read<'a> = Result<i64, (DeadLetterReason, &'a str)>;
        let cases: [(&[u8], Read); 8] = [
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
        ];
        for (payload, expected) in cases {
            let read = read(payload);
            assert_eq!(
                read.as_ref()
                    .map(|(_, time)| *time)
                    .map_err(|(reason, detail)| (*reason, detail.as_str())),
                expected,
                "{}",
                String::from_utf8_lossy(payload)
            );
            if let Ok((record, _)) = read {
                assert_eq!(Some(record), serde_json::from_slice::<Value>(payload).ok());
            }
        }
        let record = serde_json::json!({"event_id": "enriched-0-7", "n": 1});
        assert_eq!(event_id(&record), Some("enriched-0-7"));
        assert_eq!(event_id(&serde_json::json!({"event_id": 7})), None);
    }

    #[test]
    fn dotted_paths_are_looked_up() {
        let record = json!({"a": {"b": {"c": 3}}, "n": 1, "list": [1, 2], "a.b": "literal"});
        let cases = [
            ("n", Some(json!(1))),
            ("a.b.c", Some(json!(3))),
            ("a.b", Some(json!({"c": 3}))),
            ("a.x", None),
            ("a.b.c.d", None),
            ("n.x", None),
            ("list.0", None),
            ("", None),
            ("missing", None),
        ];
        for (path, expected) in cases {
            assert_eq!(lookup(&record, path).cloned(), expected, "{path}");
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
        let record = json!({
            "UNK_country": 1,
            "bytes": 2.5,
            "flag": true,
            "off": false,
            "text": "7",
            "status": 403,
            "httpRequest": {"country": "XX"},
        });
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
                feature(Aggregation::Count, None, Some(("status", json!("403")))),
                None,
            ),
            (
                feature(Aggregation::Count, None, Some(("absent", json!(null)))),
                None,
            ),
        ];
        for (feature, expected) in cases {
            assert_eq!(contribution(&feature, &record), expected, "{feature:?}");
        }
    }
}
