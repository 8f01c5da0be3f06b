//! Pure: a HEC request body into `raw` records. No IO, no panics on input.
//!
//! `/services/collector/event` takes one or more JSON envelopes, concatenated with or without
//! whitespace between them: `{"time":..,"host":..,"source":..,"sourcetype":..,"index":..,
//! "fields":{..},"event":..}`. Each envelope becomes one record, its bytes exactly as sent. A
//! batch is all or nothing: the first invalid envelope refuses the request with its (0-based)
//! number, as HEC's `invalid-event-number`, and nothing of it is written.
//!
//! `/services/collector/raw` takes lines of text; each non-blank line becomes an envelope
//! built here, with the request's `host`, `source`, `sourcetype` and `index` and the receipt
//! time (HEC stamps raw events the same way).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::refusal::{Reason, Refusal};

/// The envelope fields checked; others pass through untouched.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    fields: Option<&'a RawValue>,
}

/// The envelopes of an `/event` body, each as sent; every one at most `max_event` bytes.
pub fn events(body: &[u8], max_event: usize) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut records = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope<'_>>();
    loop {
        let start = stream.byte_offset();
        let index = records.len();
        let envelope = match stream.next() {
            None => break,
            Some(Ok(envelope)) => envelope,
            Some(Err(err)) => {
                return Err(Refusal::at(
                    Reason::InvalidData,
                    index,
                    format!("event {index} is not a JSON object: {err}"),
                ));
            }
        };
        let end = stream.byte_offset();
        let bytes = body.get(start..end).unwrap_or_default().trim_ascii();
        if !bytes.starts_with(b"{") {
            return Err(Refusal::at(
                Reason::InvalidData,
                index,
                format!("event {index} is not a JSON object"),
            ));
        }
        match envelope.event.map(RawValue::get) {
            None | Some("null") => {
                return Err(Refusal::at(
                    Reason::EventRequired,
                    index,
                    format!("event {index} has no `event` field"),
                ));
            }
            Some("\"\"") => {
                return Err(Refusal::at(
                    Reason::EventBlank,
                    index,
                    format!("event {index} has an empty `event`"),
                ));
            }
            Some(_) => {}
        }
        if let Some(fields) = envelope.fields {
            check_fields(fields).map_err(|detail| {
                Refusal::at(
                    Reason::IndexedFields,
                    index,
                    format!("event {index}: {detail}"),
                )
            })?;
        }
        if bytes.len() > max_event {
            return Err(Refusal::at(
                Reason::EventTooLarge,
                index,
                format!("event {index} is {} bytes, over {max_event}", bytes.len()),
            ));
        }
        records.push(bytes.to_vec());
    }
    if records.is_empty() {
        return Err(Refusal::new(Reason::NoData, "the body holds no event"));
    }
    Ok(records)
}

/// HEC's indexed fields: an object of strings, numbers or arrays of them, no nested objects.
fn check_fields(fields: &RawValue) -> Result<(), String> {
    let map: std::collections::BTreeMap<&str, &RawValue> =
        serde_json::from_str(fields.get()).map_err(|_| "`fields` is not an object".to_owned())?;
    match map.iter().find(|(_, v)| v.get().starts_with('{')) {
        Some((name, _)) => Err(format!("indexed field `{name}` is an object")),
        None => Ok(()),
    }
}

/// The request's metadata for `/raw` lines (its query string).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawMeta {
    /// `host`.
    pub host: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// `sourcetype`.
    pub sourcetype: Option<String>,
    /// `index`.
    pub index: Option<String>,
}

#[derive(Serialize)]
struct RawEnvelope<'a> {
    time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sourcetype: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: &'a str,
}

/// The non-blank lines of a `/raw` body as envelopes stamped `time` (epoch seconds). Bytes that
/// are not UTF-8 become U+FFFD: the line is kept, not refused.
pub fn raw_events(
    body: &[u8],
    meta: &RawMeta,
    time: f64,
    max_event: usize,
) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut records = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let index = records.len();
        let text = String::from_utf8_lossy(line);
        let envelope = RawEnvelope {
            time,
            host: meta.host.as_deref(),
            source: meta.source.as_deref(),
            sourcetype: meta.sourcetype.as_deref(),
            index: meta.index.as_deref(),
            event: &text,
        };
        // Strings and a finite number only: serializing cannot fail.
        let record = serde_json::to_vec(&envelope).unwrap_or_default();
        if record.len() > max_event {
            return Err(Refusal::at(
                Reason::EventTooLarge,
                index,
                format!("line {index} is {} bytes, over {max_event}", record.len()),
            ));
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(Refusal::new(Reason::NoData, "the body holds no line"));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal's reason and event number.
    type Outcome = (Reason, Option<usize>);

    fn reason(result: Result<Vec<Vec<u8>>, Refusal>) -> Outcome {
        let refusal = result.expect_err("refused");
        (refusal.reason, refusal.event)
    }

    #[test]
    fn concatenated_envelopes_are_kept_as_sent() {
        let body = br#"{"time":1700000000.5,"host":"h1","event":"hello"}
{"event":{"level":"error","msg":"x"},"sourcetype":"app","fields":{"team":"a","tags":["x","y"]}}{"event":1}"#;
        let records = events(body, 1000).expect("valid");
        let texts: Vec<&str> = records
            .iter()
            .map(|r| std::str::from_utf8(r).expect("utf-8"))
            .collect();
        assert_eq!(
            texts,
            [
                r#"{"time":1700000000.5,"host":"h1","event":"hello"}"#,
                r#"{"event":{"level":"error","msg":"x"},"sourcetype":"app","fields":{"team":"a","tags":["x","y"]}}"#,
                r#"{"event":1}"#,
            ]
        );
    }

    #[test]
    fn invalid_envelopes_name_their_number() {
        let cases: [(&[u8], Outcome); 8] = [
            (b"", (Reason::NoData, None)),
            (b"  \n ", (Reason::NoData, None)),
            (
                br#"{"event":"a"} {"event":"#,
                (Reason::InvalidData, Some(1)),
            ),
            (br#"{"event":"a"} [1]"#, (Reason::InvalidData, Some(1))),
            (br#"{"host":"h"}"#, (Reason::EventRequired, Some(0))),
            (
                br#"{"event":"a"}{"event":null}"#,
                (Reason::EventRequired, Some(1)),
            ),
            (br#"{"event":""}"#, (Reason::EventBlank, Some(0))),
            (
                br#"{"event":"a","fields":{"n":{"x":1}}}"#,
                (Reason::IndexedFields, Some(0)),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                reason(events(body, 1000)),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            reason(events(br#"{"event":"a"}{"event":"0123456789"}"#, 20)),
            (Reason::EventTooLarge, Some(1))
        );
    }

    #[test]
    fn raw_lines_become_envelopes() {
        let meta = RawMeta {
            host: Some("web-1".into()),
            sourcetype: Some("nginx".into()),
            ..RawMeta::default()
        };
        let records = raw_events(
            b"first line\r\n\n second \"quoted\"\n\xff\n",
            &meta,
            1.5,
            1000,
        )
        .expect("valid");
        let values: Vec<serde_json::Value> = records
            .iter()
            .map(|r| serde_json::from_slice(r).expect("json"))
            .collect();
        assert_eq!(
            values,
            [
                serde_json::json!({"time": 1.5, "host": "web-1", "sourcetype": "nginx", "event": "first line"}),
                serde_json::json!({"time": 1.5, "host": "web-1", "sourcetype": "nginx", "event": " second \"quoted\""}),
                serde_json::json!({"time": 1.5, "host": "web-1", "sourcetype": "nginx", "event": "\u{fffd}"}),
            ]
        );
        assert_eq!(
            reason(raw_events(b"\n\n", &meta, 1.0, 1000)),
            (Reason::NoData, None)
        );
    }
}
