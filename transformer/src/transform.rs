//! The per-record transform: raw bytes in, the enriched record (or a dead-letter reason) out.
//!
//! This runs once per record at the pipeline's full rate (the benchmark asks for a million
//! records a second on one core), so it is built to avoid work. After one UTF-8 check, one pass
//! (`scan`, with the private validating scanner `crate::json`) reads the record: it checks the
//! JSON syntax everywhere, descends only into the objects on a monitored path, classifies each
//! monitored value where it lies (unescaping only strings that hold escapes), and skips
//! everything else.
//! No `serde_json::Value` is built, and serde_json itself turned out too slow even when
//! deserializing into nothing. The output is the record's ORIGINAL bytes with its closing `}`
//! replaced by the indicators, `@timestamp` and `event_id`, so every original field is kept
//! byte for byte; the indicators are a precomputed template whose `1` digits are patched in.
//! Nothing is allocated per record in the steady state.
//!
//! Choices the output depends on:
//! - Whitespace around the object is dropped; whitespace inside is kept.
//! - A record that already has a top-level key the transformer writes (an indicator,
//!   `@timestamp` or `event_id`, e.g. an enriched record fed back in) takes a slower path: the
//!   record is rebuilt without those members, the others still byte for byte, and the computed
//!   values are written. The transformer's values win, so enriching is idempotent and the
//!   output never has duplicate keys (which OpenSearch rejects).
//! - Duplicate keys elsewhere are passed through as they are (the last occurrence of a
//!   monitored field or `timestamp` is the one classified, as most JSON parsers read it).
//! - Problems are reported in this order, the first one found deciding: size, UTF-8, JSON
//!   syntax, not an object, each monitored field in rules order, the timestamp.
//!
//! This file holds the decisions (what a finding means under the rules' policies, and why a
//! record is rejected); `scan` the one pass over the record and `write` the output.

mod scan;
mod write;

use pipeline::wire::{DeadLetterReason, Source, SourcePosition};

use self::scan::{Finding, Seen, Shape, State, scan};
use self::write::write_without_outputs;
use crate::json;
use crate::rules::{Class, CompiledRules, Policy, Section, TIMESTAMP_FIELD};
use crate::timestamp::{self, TimestampError};

/// Why a record was not enriched: the dead letter's reason and a detail a person can act on
/// (e.g. `httpRequest.country is missing`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// The dead letter's reason code.
    pub reason: DeadLetterReason,
    /// What exactly is wrong, naming the field and value where there is one.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason`, explained by `detail`.
    pub fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// The rejection of a record of `len` bytes, over the limit of `max` bytes.
    pub fn oversized(len: usize, max: usize) -> Self {
        Self::new(
            DeadLetterReason::Oversized,
            format!("the record is {len} bytes, over the limit of {max} bytes"),
        )
    }
}

impl CompiledRules {
    /// Enriches one raw record without a source header (the seed's shape): appends to `out` the
    /// record with the indicators, `@timestamp` and `event_id` (derived from `position` by
    /// [`pipeline::wire::event_id`]) added, or returns why it is a dead letter, leaving `out` as
    /// it was.
    ///
    /// `out` is meant to be reused from record to record (clear it in between or let records
    /// accumulate): with its capacity warm, an enriched record costs no allocation (a rejection
    /// allocates its detail). Never panics, whatever the bytes.
    pub fn apply(
        &self,
        input: &[u8],
        position: &SourcePosition,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        self.apply_source(None, input, position, out)
    }

    /// As [`Self::apply`], for a record of `source` (its `logwarden-source` header; `None`
    /// without one): the source's section of the rules applies, and a source's records also
    /// get `logwarden_source`. A source without rules is a `no_rules` dead letter.
    pub fn apply_source(
        &self,
        source: Option<Source>,
        input: &[u8],
        position: &SourcePosition,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        let section = self
            .section(source)
            .ok_or_else(|| Rejection::no_rules(source))?;
        section.apply(input, position, out, self.max_record_bytes)
    }

    /// Whether [`Self::apply`] would enrich `input`: the very same reading, checks and
    /// classification, without writing the output. For dry runs, and for the benchmark that
    /// compares the JSON scanner with the libraries that could replace it.
    pub fn accepts(&self, input: &[u8]) -> Result<(), Rejection> {
        let section = self
            .section(None)
            .ok_or_else(|| Rejection::no_rules(None))?;
        let mut state = State::new(section.fields.len());
        section
            .read(input, &mut state, self.max_record_bytes)
            .map(drop)
    }
}

impl Section {
    /// [`CompiledRules::apply_source`] once the section is chosen.
    #[inline(always)]
    fn apply(
        &self,
        input: &[u8],
        position: &SourcePosition,
        out: &mut Vec<u8>,
        max_record_bytes: usize,
    ) -> Result<(), Rejection> {
        let mut state = State::new(self.fields.len());
        let read = self.read(input, &mut state, max_record_bytes)?;
        let empty = if state.conflict {
            write_without_outputs(read.text, &self.output_keys, out)
                .map_err(|error| not_json(input, error))?
        } else {
            // The object without its surrounding whitespace and closing brace: `{"a":1`.
            match input.get(read.open..read.close) {
                Some(body) => out.extend_from_slice(body),
                None => {
                    return Err(Rejection::new(
                        DeadLetterReason::NotJson,
                        "the record's closing brace was not found",
                    ));
                }
            }
            read.empty
        };
        self.write_additions(&state, empty, read.millis, position, out);
        Ok(())
    }

    /// Everything `apply` learns from a record before writing: checks its size, UTF-8 and JSON
    /// syntax, finds and classifies the monitored fields into `state` (applying the policies)
    /// and reads the event time. (`state` is the caller's, not returned: moving it out cost a
    /// copy per record.)
    #[inline(always)]
    fn read<'a>(
        &self,
        input: &'a [u8],
        state: &mut State,
        max_record_bytes: usize,
    ) -> Result<Read<'a>, Rejection> {
        if input.len() > max_record_bytes {
            return Err(Rejection::oversized(input.len(), max_record_bytes));
        }
        let text = std::str::from_utf8(input).map_err(|error| {
            Rejection::new(
                DeadLetterReason::NotUtf8,
                format!("the record is not UTF-8: {error}"),
            )
        })?;
        let shape = scan(text, self, state).map_err(|error| not_json(input, error))?;
        let (empty, open, close) = match shape {
            Shape::Object { empty, open, close } => (empty, open, close),
            Shape::NotObject(kind) => {
                return Err(Rejection::new(
                    DeadLetterReason::NotObject,
                    format!("the record is {}, not a JSON object", kind.with_article()),
                ));
            }
        };
        self.resolve_fields(input, state)?;
        let millis = self.event_time(text, state)?;
        Ok(Read {
            text,
            empty,
            open,
            close,
            millis,
        })
    }

    /// The event time the scan found, or why there is none.
    #[inline(always)]
    fn event_time(&self, text: &str, state: &State) -> Result<i64, Rejection> {
        let result = match state.timestamp {
            Seen::Number(number) => timestamp::epoch_millis(number),
            Seen::Absent | Seen::Null => Err(TimestampError::Missing),
            Seen::Other(kind) => Err(TimestampError::NotANumber(kind.with_article())),
            Seen::Text {
                start,
                end,
                escaped,
            } => {
                let raw = text.get(start..end).unwrap_or_default();
                let value = if escaped {
                    json::unescape(raw)
                } else {
                    raw.into()
                };
                return timestamp::text_millis(&value).map_err(|problem| {
                    Rejection::new(
                        DeadLetterReason::BadTimestamp,
                        format!("{} {value:?} {problem}", self.timestamp_name(state)),
                    )
                });
            }
        };
        result.map_err(|error| {
            Rejection::new(DeadLetterReason::BadTimestamp, self.describe(error, state))
        })
    }

    /// The timestamp field the scan read.
    fn timestamp_name(&self, state: &State) -> &str {
        self.timestamp_fields
            .get(usize::from(state.timestamp_rank))
            .or_else(|| self.timestamp_fields.first())
            .map_or("timestamp", |name| &**name)
    }

    /// A timestamp error's detail: as [`TimestampError`] says it for the seed's `timestamp`,
    /// naming the section's fields and accepted forms otherwise.
    fn describe(&self, error: TimestampError, state: &State) -> String {
        let message = error.to_string();
        let default = self.timestamp_fields.len() == 1
            && self
                .timestamp_fields
                .first()
                .is_some_and(|f| &**f == TIMESTAMP_FIELD);
        if default && !self.timestamp_strings {
            return message;
        }
        let expected = if self.timestamp_strings {
            "expected epoch milliseconds or seconds, or an RFC 3339 time"
        } else {
            "expected epoch milliseconds or seconds as a JSON number"
        };
        if error == TimestampError::Missing {
            let names: Vec<&str> = self.timestamp_fields.iter().map(|f| &**f).collect();
            let verb = if names.len() == 1 { "is" } else { "are all" };
            return format!("{} {verb} missing; {expected}", names.join(", "));
        }
        let message = message
            .strip_prefix(TIMESTAMP_FIELD)
            .map_or(message.clone(), |rest| {
                format!("{}{rest}", self.timestamp_name(state))
            });
        match message.split_once("; expected") {
            Some((head, _)) => format!("{head}; {expected}"),
            None => message,
        }
    }

    /// Applies the policies: turns each monitored field's finding into good, bad or neither,
    /// or rejects the record for the first field whose policy says `dead_letter`. A field whose
    /// `when` condition does not hold counts as neither.
    fn resolve_fields(&self, input: &[u8], state: &mut State) -> Result<(), Rejection> {
        let slots = state.slots.as_mut_slice();
        for (index, field) in self.fields.iter().enumerate() {
            let Some(seen) = slots.get(index).copied() else {
                break;
            };
            if let Some(when) = field.when
                && slots.get(when) != Some(&Finding::Class(Class::Good))
            {
                if let Some(slot) = slots.get_mut(index) {
                    *slot = Finding::Neither;
                }
                continue;
            }
            let resolved = match seen {
                Finding::Class(Class::Good | Class::Bad) | Finding::Neither => continue,
                Finding::Class(Class::Unknown) => by_policy(field.unknown, || {
                    Rejection::new(
                        DeadLetterReason::UnknownValue,
                        format!(
                            "{} value {} is neither known-good nor known-bad",
                            field.path,
                            describe_value(input, &field.segments)
                        ),
                    )
                })?,
                Finding::Absent => by_policy(field.missing, || {
                    Rejection::new(
                        DeadLetterReason::MissingField,
                        format!("{} is missing", field.path),
                    )
                })?,
                Finding::Null => by_policy(field.missing, || {
                    Rejection::new(
                        DeadLetterReason::MissingField,
                        format!("{} is null", field.path),
                    )
                })?,
                Finding::WrongType(kind) => by_policy(field.wrong_type, || {
                    Rejection::new(
                        DeadLetterReason::WrongType,
                        format!(
                            "{} is {}; expected a string, a number or a boolean",
                            field.path,
                            kind.with_article()
                        ),
                    )
                })?,
                Finding::Through { depth, kind } => by_policy(field.wrong_type, || {
                    let depth = usize::try_from(depth).unwrap_or(usize::MAX);
                    let parent = field.segments.get(..depth).unwrap_or_default().join(".");
                    let expected = if parent.ends_with("[]") {
                        "an array"
                    } else {
                        "an object"
                    };
                    Rejection::new(
                        DeadLetterReason::WrongType,
                        format!(
                            "{parent} is {}, not {expected}, so {} cannot be read",
                            kind.with_article(),
                            field.path
                        ),
                    )
                })?,
            };
            if let Some(slot) = slots.get_mut(index) {
                *slot = resolved;
            }
        }
        Ok(())
    }
}

impl Rejection {
    /// The rejection of a record whose source (`None`: no source header) has no rules.
    pub fn no_rules(source: Option<Source>) -> Self {
        let detail = match source {
            Some(source) => format!(
                "the rules have no section for source `{source}` (the record's logwarden-source \
                 header): add `sources.{source}` to the rules file"
            ),
            None => "the rules have no top-level `fields` for records without a \
                     logwarden-source header: add them to the rules file"
                .to_owned(),
        };
        Self::new(DeadLetterReason::NoRules, detail)
    }

    /// The rejection of a record whose `logwarden-source` header names no known source.
    pub fn unknown_source(value: &str) -> Self {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        Self::new(
            DeadLetterReason::NoRules,
            format!(
                "the logwarden-source header `{value}` names no known source ({})",
                names.join(", ")
            ),
        )
    }
}

/// What `apply` learned from a record it accepts.
struct Read<'a> {
    /// The record, as text.
    text: &'a str,
    /// Whether the object has no member.
    empty: bool,
    /// The offsets of its `{` and `}`.
    open: usize,
    close: usize,
    /// The event time, epoch milliseconds.
    millis: i64,
}

/// The rejection of a record the scanner refused: not UTF-8 if it is not, else not JSON, with
/// serde_json's message (line and column) where it agrees, else the scanner's (byte offset).
fn not_json(input: &[u8], error: json::Error) -> Rejection {
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(utf8) => {
            return Rejection::new(
                DeadLetterReason::NotUtf8,
                format!("the record is not UTF-8: {utf8}"),
            );
        }
    };
    let detail = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Err(serde_error) => format!("the record is not JSON: {serde_error}"),
        Ok(_) => format!("the record is not JSON: {error}"),
    };
    Rejection::new(DeadLetterReason::NotJson, detail)
}

/// What a policy makes of a value the classes do not cover.
fn by_policy(policy: Policy, reject: impl FnOnce() -> Rejection) -> Result<Finding, Rejection> {
    match policy {
        Policy::Bad => Ok(Finding::Class(Class::Bad)),
        Policy::Neither => Ok(Finding::Neither),
        Policy::DeadLetter => Err(reject()),
    }
}

/// A monitored value as it appears at its path, for the rejection's detail: the JSON text,
/// shortened. Only called on the way to a dead letter, so it may parse the record again.
fn describe_value(input: &[u8], segments: &[Box<str>]) -> String {
    const MAX_CHARS: usize = 80;
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(input) else {
        return "(unreadable)".to_owned();
    };
    for segment in segments {
        if segment.ends_with("[]") {
            // Values inside arrays are many: the detail names the path only.
            return "(in an array)".to_owned();
        }
        value = match value {
            serde_json::Value::Object(mut map) => map.remove(&**segment).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
    }
    let shown = value.to_string();
    match shown.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", shown.get(..cut).unwrap_or_default()),
        None => shown,
    }
}
