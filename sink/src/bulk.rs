//! The pure half of the sink: an enriched record made into a bulk `index` operation, and a bulk
//! response read back, item by item, into what to do with each document. No IO here.
//!
//! Classification (see [`classify`]): a response is judged item by item even when its HTTP status
//! is 200, because `_bulk` reports per-document failures inside a successful response.
//! - **indexed**: the item's status is 2xx;
//! - **retry**: the cluster is overloaded or failing (429, 5xx, a cluster block such as the
//!   flood-stage read-only block, which OpenSearch lifts by itself, a version conflict): the
//!   same document will succeed later;
//! - **rejected**: anything else (mapping conflicts, bad ids): retrying cannot help, so the
//!   document goes to `dead-letter` with OpenSearch's reason. A daily index that is closed or
//!   write-blocked by an operator (`index.blocks.write`, `index.blocks.read_only`) is such a
//!   case too (`index_blocked`): one late event must not hold the whole sink in back-pressure
//!   until someone reopens that day.
//!
//! The [`Preparer`] also refuses a record whose day is outside the days the sink accepts
//! ([`AcceptedDays`]: `day_out_of_range`), so a wrong clock cannot create daily indices without
//! bound.
//!
//! A response that is not a bulk response at all is judged as a whole: 429 and 5xx, or no answer,
//! mean retry everything; 400 and 413 mean the request as a whole was refused, so it is split
//! (down to single documents, where the reason then belongs to the document).

use std::sync::Arc;

use pipeline::search::EventsIndex;
use pipeline::wire::{DeadLetterReason, SOURCE_FIELD, Source};
use serde::Deserialize;
use serde_json::Value;

mod classify;

pub use classify::{Outcome, Verdict, classify, classify_item};

/// The response filter the sink asks for: only what [`classify`] reads.
pub const FILTER_PATH: &[&str] = &["errors", "items.*.status", "items.*.error"];

/// One document to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The daily index.
    pub index: Arc<str>,
    /// `_id`: the record's event id, so a replay overwrites.
    pub id: Box<str>,
    /// The record, on one line.
    pub source: Box<[u8]>,
}

/// Why a record cannot be indexed: a dead letter's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Unusable {
    /// Reason code.
    pub reason: DeadLetterReason,
    /// What exactly is wrong.
    pub detail: String,
}

impl Unusable {
    /// Why: `reason`, explained by `detail`.
    pub fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The members the sink reads; every other member is skipped unread.
#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(rename = "@timestamp", borrow, default)]
    timestamp: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    event_id: Option<&'a serde_json::value::RawValue>,
    /// The record's source ([`SOURCE_FIELD`]): absent in the seed's records.
    #[serde(rename = "logwarden_source", borrow, default)]
    source: Option<&'a serde_json::value::RawValue>,
}

/// The days a record may be dated, around today (UTC): a daily index is created only for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedDays {
    /// Days before today (the events' retention: older indices are deleted anyway).
    pub past: u32,
    /// Days after today (clock skew).
    pub future: u32,
}

/// Days since 1970-01-01 of a UTC calendar day.
pub type EpochDay = i64;

/// Today (UTC), in days since 1970-01-01.
pub fn today() -> EpochDay {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    (seconds / 86_400) as EpochDay
}

/// The day of a `YYYY-MM-DD` date, in days since 1970-01-01.
fn epoch_day(date: &str) -> Option<EpochDay> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(
        day.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
}

/// Turns enriched records into documents, remembering the last daily index name (records arrive
/// mostly in time order, so most share it).
#[derive(Debug)]
pub struct Preparer {
    index: EventsIndex,
    /// The accepted days, and today: set by the caller (this module reads no clock).
    accepted: Option<(AcceptedDays, EpochDay)>,
    /// The last source and day seen, its index and its day number.
    last: Option<(Option<Source>, String, Arc<str>, EpochDay)>,
}

impl Preparer {
    /// A preparer for the events index `index`, accepting every day.
    pub fn new(index: EventsIndex) -> Self {
        Self {
            index,
            accepted: None,
            last: None,
        }
    }

    /// Refuses records dated outside `days` around `today` (see [`Self::set_today`]).
    pub fn accepting(mut self, days: AcceptedDays, today: EpochDay) -> Self {
        self.accepted = Some((days, today));
        self
    }

    /// Moves "today" on (the service calls it with [`today`] before each record).
    pub fn set_today(&mut self, today: EpochDay) {
        if let Some((_, day)) = &mut self.accepted {
            *day = today;
        }
    }

    /// The document for an enriched record, or why there cannot be one. Never panics.
    pub fn prepare(&mut self, payload: &[u8]) -> Result<Document, Unusable> {
        self.prepare_owned(payload.to_vec())
            .map_err(|(unusable, _)| unusable)
    }

    /// As [`Preparer::prepare`], taking the record's bytes (kept as the document's source
    /// without a copy), and giving them back with the reason when unusable.
    pub fn prepare_owned(&mut self, payload: Vec<u8>) -> Result<Document, (Unusable, Vec<u8>)> {
        match self.keys(&payload) {
            Ok((index, id)) => {
                // `_bulk` is one JSON document per line: a record pretty-printed over several
                // lines is put on one (a newline can only be whitespace between tokens in
                // valid JSON).
                let mut source = payload;
                for byte in &mut source {
                    if *byte == b'\n' {
                        *byte = b' ';
                    }
                }
                Ok(Document {
                    index,
                    id: id.into(),
                    source: source.into_boxed_slice(),
                })
            }
            Err(unusable) => Err((unusable, payload)),
        }
    }

    /// The daily index and the event id of a record.
    fn keys(&mut self, payload: &[u8]) -> Result<(Arc<str>, String), Unusable> {
        let text = std::str::from_utf8(payload).map_err(|err| {
            Unusable::new(
                DeadLetterReason::NotUtf8,
                format!("the record is not UTF-8: {err}"),
            )
        })?;
        // serde would read an array as a struct too: anything not opening with `{` is judged
        // as a whole.
        if !text.trim_start().starts_with('{') {
            return Err(not_an_object(text));
        }
        let keys: Keys<'_> = serde_json::from_str(text).map_err(|err| shape_error(text, &err))?;
        let timestamp = string_member(keys.timestamp, "@timestamp")
            .map_err(|(reason, detail)| Unusable::new(reason, detail))?;
        let id = string_member(keys.event_id, "event_id")
            .map_err(|(reason, detail)| Unusable::new(reason, detail))?;
        if id.is_empty() {
            return Err(Unusable::new(
                DeadLetterReason::MissingField,
                "event_id is empty",
            ));
        }
        let source = record_source(keys.source)?;
        let (index, day) = self.daily_index(source, &timestamp).ok_or_else(|| {
            Unusable::new(
                DeadLetterReason::BadTimestamp,
                format!("@timestamp `{timestamp}` does not start with a date (YYYY-MM-DD)"),
            )
        })?;
        if let Some((days, today)) = self.accepted {
            let from = today - EpochDay::from(days.past);
            let to = today + EpochDay::from(days.future);
            if !(from..=to).contains(&day) {
                return Err(Unusable::new(
                    DeadLetterReason::DayOutOfRange,
                    format!(
                        "@timestamp `{timestamp}` is {}; the sink accepts {} days before today and {} after \
                         (sink.accept_days_past, sink.accept_days_future)",
                        describe_distance(day - today),
                        days.past,
                        days.future
                    ),
                ));
            }
        }
        Ok((index, id))
    }

    fn daily_index(
        &mut self,
        source: Option<Source>,
        timestamp: &str,
    ) -> Option<(Arc<str>, EpochDay)> {
        let day = timestamp.get(..10)?;
        if let Some((last_source, last_day, name, number)) = &self.last
            && *last_source == source
            && last_day == day
        {
            return Some((name.clone(), *number));
        }
        let name: Arc<str> = self.index.daily_index_of(source, timestamp)?.into();
        let number = epoch_day(day)?;
        self.last = Some((source, day.to_owned(), name.clone(), number));
        Some((name, number))
    }
}

/// The source a record names in [`SOURCE_FIELD`] (`None` without one: the seed's records), or
/// why it cannot be indexed by it.
fn record_source(raw: Option<&serde_json::value::RawValue>) -> Result<Option<Source>, Unusable> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let name = string_member(Some(raw), SOURCE_FIELD)
        .map_err(|(reason, detail)| Unusable::new(reason, detail))?;
    Source::parse(&name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        Unusable::new(
            DeadLetterReason::WrongType,
            format!(
                "{SOURCE_FIELD} `{name}` is not a source ({}): its daily index cannot be named",
                names.join(", ")
            ),
        )
    })
}

/// `days` from today, in words.
fn describe_distance(days: EpochDay) -> String {
    match days {
        0 => "today".to_owned(),
        d if d > 0 => format!("{d} days after today"),
        d => format!("{} days before today", -d),
    }
}

/// Why the record did not deserialize: not JSON, or a member given twice.
fn shape_error(text: &str, err: &serde_json::Error) -> Unusable {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => Unusable::new(
            DeadLetterReason::WrongType,
            format!("the record is not a usable object: {err}"),
        ),
        Category::Io | Category::Syntax | Category::Eof => not_an_object(text),
    }
}

/// A record that is not a JSON object: not JSON at all, or JSON of another kind.
fn not_an_object(text: &str) -> Unusable {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Unusable::new(
            DeadLetterReason::NotObject,
            format!("the record is {}, not a JSON object", kind(&value)),
        ),
        Err(err) => Unusable::new(
            DeadLetterReason::NotJson,
            format!("the record is not JSON: {err}"),
        ),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A member that must be a string: its value, or the dead letter's reason and detail.
fn string_member(
    raw: Option<&serde_json::value::RawValue>,
    name: &str,
) -> Result<String, (DeadLetterReason, String)> {
    let Some(raw) = raw else {
        return Err((
            DeadLetterReason::MissingField,
            format!("{name} is missing (the record was not enriched by the transformer)"),
        ));
    };
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(text)) => Ok(text),
        Ok(Value::Null) => Err((DeadLetterReason::MissingField, format!("{name} is null"))),
        Ok(other) => Err((
            DeadLetterReason::WrongType,
            format!("{name} is {}; expected a string", kind(&other)),
        )),
        Err(err) => Err((DeadLetterReason::NotJson, format!("{name}: {err}"))),
    }
}

/// Appends the `index` action line and the document's line to a bulk body.
pub fn write_operation(document: &Document, body: &mut Vec<u8>) {
    body.extend_from_slice(b"{\"index\":{\"_index\":");
    write_string(&document.index, body);
    body.extend_from_slice(b",\"_id\":");
    write_string(&document.id, body);
    body.extend_from_slice(b"}}\n");
    body.extend_from_slice(&document.source);
    body.push(b'\n');
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    serde_json::to_writer(&mut *out, text).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn preparer() -> Preparer {
        Preparer::new(EventsIndex::new("t-events", "sink.index").expect("valid"))
    }

    #[test]
    fn enriched_records_become_documents_in_their_day() {
        let record = br#"{"action":"ALLOW","B_action":0,"@timestamp":"2026-11-23T02:51:26.123Z","event_id":"enriched-0-42"}"#;
        let document = preparer().prepare(record).expect("usable");
        assert_eq!(&*document.index, "t-events-2026.11.23");
        assert_eq!(&*document.id, "enriched-0-42");
        assert_eq!(&*document.source, &record[..]);

        let mut body = Vec::new();
        write_operation(&document, &mut body);
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3, "action, source, and the final newline");
        let action: Value = serde_json::from_slice(lines[0]).expect("json");
        assert_eq!(
            action,
            json!({"index": {"_index": "t-events-2026.11.23", "_id": "enriched-0-42"}})
        );
        assert_eq!(lines[1], &record[..]);
    }

    #[test]
    fn a_sources_records_go_to_its_daily_indices() {
        let mut preparer = preparer();
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"logwarden_source":"syslog","@timestamp":"2026-12-05T06:00:00Z","event_id":"a"}"#,
                "t-events-syslog-2026.12.05",
            ),
            (
                br#"{"@timestamp":"2026-12-05T06:00:01Z","event_id":"b"}"#,
                "t-events-2026.12.05",
            ),
            (
                br#"{"@timestamp":"2026-12-05T06:00:02Z","event_id":"c","logwarden_source":"waf"}"#,
                "t-events-waf-2026.12.05",
            ),
            (
                br#"{"logwarden_source":"waf","@timestamp":"2026-12-06T00:00:00Z","event_id":"d"}"#,
                "t-events-waf-2026.12.06",
            ),
        ];
        for (input, index) in cases {
            let document = preparer
                .prepare(input)
                .unwrap_or_else(|err| panic!("{}: {err:?}", String::from_utf8_lossy(input)));
            assert_eq!(
                &*document.index,
                index,
                "{}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(&*document.source, input, "the record is written as it came");
        }
        for (input, reason, detail) in [
            (
                &br#"{"logwarden_source":"nginx","@timestamp":"2026-12-05T06:00:00Z","event_id":"e"}"#[..],
                DeadLetterReason::WrongType,
                "logwarden_source `nginx` is not a source (waf, cloudtrail, syslog, cloudwatch, splunk, ndjson)",
            ),
            (
                br#"{"logwarden_source":3,"@timestamp":"2026-12-05T06:00:00Z","event_id":"f"}"#,
                DeadLetterReason::WrongType,
                "logwarden_source is a number; expected a string",
            ),
        ] {
            let err = preparer.prepare(input).expect_err("refused");
            assert_eq!(err.reason, reason);
            assert!(err.detail.contains(detail), "{err}");
        }
    }

    #[test]
    fn multi_line_records_are_put_on_one_line() {
        let record =
            b"{\n  \"@timestamp\": \"2026-01-02T00:00:00Z\",\n  \"event_id\": \"a\\nb\"\n}";
        let document = preparer().prepare(record).expect("usable");
        assert!(!document.source.contains(&b'\n'));
        let value: Value = serde_json::from_slice(&document.source).expect("still JSON");
        assert_eq!(value["event_id"], "a\nb");
        assert_eq!(&*document.id, "a\nb");
    }

    #[test]
    fn unusable_records_say_why() {
        use DeadLetterReason::*;
        let cases: [(&[u8], DeadLetterReason, &str); 11] = [
            (b"\xff\xfe", NotUtf8, "not UTF-8"),
            (b"{\"event_id\":", NotJson, "not JSON"),
            (b"hello", NotJson, "not JSON"),
            (b"[1,2]", NotObject, "an array"),
            (b"42", NotObject, "a number"),
            (
                br#"{"@timestamp":"2026-01-01T00:00:00Z"}"#,
                MissingField,
                "event_id is missing",
            ),
            (
                br#"{"event_id":"x"}"#,
                MissingField,
                "@timestamp is missing",
            ),
            (
                br#"{"event_id":7,"@timestamp":"2026-01-01T00:00:00Z"}"#,
                WrongType,
                "event_id is a number",
            ),
            (
                br#"{"event_id":"","@timestamp":"2026-01-01T00:00:00Z"}"#,
                MissingField,
                "event_id is empty",
            ),
            (
                br#"{"event_id":"x","@timestamp":"yesterday"}"#,
                BadTimestamp,
                "yesterday",
            ),
            (
                br#"{"event_id":"x","event_id":"y","@timestamp":"2026-01-01T00:00:00Z"}"#,
                WrongType,
                "duplicate field",
            ),
        ];
        for (input, reason, detail) in cases {
            let err = preparer()
                .prepare(input)
                .expect_err(&String::from_utf8_lossy(input));
            assert_eq!(err.reason, reason, "{}", String::from_utf8_lossy(input));
            assert!(err.detail.contains(detail), "{err}");
        }
    }

    #[test]
    fn only_the_accepted_days_make_documents() {
        let today = epoch_day("2026-12-05").expect("a date");
        let days = AcceptedDays {
            past: 30,
            future: 1,
        };
        let mut preparer = preparer().accepting(days, today);
        let record =
            |day: &str| format!(r#"{{"@timestamp":"{day}T12:00:00Z","event_id":"e-{day}"}}"#);
        for day in ["2026-12-05", "2026-12-06", "2026-11-05", "2026-11-30"] {
            let document = preparer.prepare(record(day).as_bytes()).expect(day);
            assert_eq!(
                &*document.index,
                format!("t-events-{}", day.replace('-', "."))
            );
        }
        for (day, detail) in [
            ("2026-12-07", "2 days after today"),
            ("2090-01-01", "23038 days after today"),
            ("2026-11-04", "31 days before today"),
            ("1999-12-31", "9836 days before today"),
        ] {
            let err = preparer.prepare(record(day).as_bytes()).expect_err(day);
            assert_eq!(err.reason, DeadLetterReason::DayOutOfRange, "{day}");
            assert!(
                err.detail.contains(detail) && err.detail.contains("sink.accept_days_past"),
                "{day}: {err}"
            );
        }
        // Today moves on: yesterday's far end falls out, tomorrow's comes in.
        preparer.set_today(today + 1);
        assert!(preparer.prepare(record("2026-11-05").as_bytes()).is_err());
        assert!(preparer.prepare(record("2026-12-07").as_bytes()).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = preparer().prepare(&bytes);
                let _ = classify(200, &bytes, 3);
                let _ = classify(400, &bytes, 3);
            }

            #[test]
            fn every_usable_record_makes_two_bulk_lines(
                id in "[^\u{0}]{1,40}",
                extra in "[a-z]{0,20}",
            ) {
                let record = json!({"@timestamp": "2026-05-06T07:08:09Z", "event_id": id, "x": extra});
                let document = preparer().prepare(record.to_string().as_bytes()).expect("usable");
                let mut body = Vec::new();
                write_operation(&document, &mut body);
                let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
                prop_assert_eq!(lines.len(), 3);
                let action: Value = serde_json::from_slice(lines[0]).expect("action line");
                prop_assert_eq!(&action["index"]["_id"], &json!(id));
                let source: Value = serde_json::from_slice(lines[1]).expect("source line");
                prop_assert_eq!(source, record);
            }
        }
    }
}
