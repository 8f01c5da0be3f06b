//! The per-record transform: raw bytes in, the enriched record (or a dead-letter reason) out.
//!
//! This runs once per record at the pipeline's full rate (the benchmark asks for a million
//! records a second on one core), so it is built to avoid work. After one UTF-8 check, a small
//! validating scanner (the private `json` module, below) reads the record once: it checks the
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

use std::fmt;

use crate::rules::{Class, CompiledField, CompiledRules, Node, Policy, Target, Value};
use crate::timestamp::{self, EpochNumber, TimestampError};
use pipeline::wire::{DeadLetterReason, SourcePosition};

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
    /// Enriches one raw record: appends to `out` the record with the indicators, `@timestamp`
    /// and `event_id` (derived from `source` by [`pipeline::wire::event_id`]) added, or returns
    /// why it is a dead letter, leaving `out` as it was.
    ///
    /// `out` is meant to be reused from record to record (clear it in between or let records
    /// accumulate): with its capacity warm, a record costs no allocation but its event id.
    /// Never panics, whatever the bytes.
    pub fn apply(
        &self,
        input: &[u8],
        source: &SourcePosition,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        if input.len() > self.max_record_bytes {
            return Err(Rejection::oversized(input.len(), self.max_record_bytes));
        }
        let text = std::str::from_utf8(input).map_err(|error| {
            Rejection::new(
                DeadLetterReason::NotUtf8,
                format!("the record is not UTF-8: {error}"),
            )
        })?;
        let mut state = State::new(self.fields.len());
        let shape = scan(text, &self.root, &self.fields, &mut state)
            .map_err(|error| not_json(input, error))?;
        let empty = match shape {
            Shape::Object { empty } => empty,
            Shape::NotObject(kind) => {
                return Err(Rejection::new(
                    DeadLetterReason::NotObject,
                    format!("the record is {}, not a JSON object", kind.with_article()),
                ));
            }
        };
        self.resolve_fields(input, &mut state)?;
        let millis = match state.timestamp {
            Seen::Absent | Seen::Null => Err(TimestampError::Missing),
            Seen::Number(number) => timestamp::epoch_millis(number),
            Seen::Other(kind) => Err(TimestampError::NotANumber(kind.with_article())),
        }
        .map_err(|error| Rejection::new(DeadLetterReason::BadTimestamp, error.to_string()))?;

        let empty = if state.conflict {
            write_without_outputs(text, &self.output_keys, out)
                .map_err(|error| not_json(input, error))?
        } else {
            match object_body(input) {
                Some(body) => out.extend_from_slice(body),
                None => {
                    return Err(Rejection::new(
                        DeadLetterReason::NotJson,
                        "the record's closing brace was not found",
                    ));
                }
            }
            empty
        };
        self.write_additions(&state, empty, millis, source, out);
        Ok(())
    }

    /// Applies the policies: turns each monitored field's finding into good, bad or neither,
    /// or rejects the record for the first field whose policy says `dead_letter`.
    fn resolve_fields(&self, input: &[u8], state: &mut State) -> Result<(), Rejection> {
        for (field, seen) in self.fields.iter().zip(state.slots.as_mut_slice()) {
            let resolved = match *seen {
                Finding::Class(Class::Good) => Finding::Class(Class::Good),
                Finding::Class(Class::Bad) => Finding::Class(Class::Bad),
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
                    let parent = field.segments.get(..depth).unwrap_or_default().join(".");
                    Rejection::new(
                        DeadLetterReason::WrongType,
                        format!(
                            "{parent} is {}, not an object, so {} cannot be read",
                            kind.with_article(),
                            field.path
                        ),
                    )
                })?,
                Finding::Neither => Finding::Neither,
            };
            *seen = resolved;
        }
        Ok(())
    }

    /// Writes `,"K_action":1,...,"@timestamp":"...","event_id":"..."}` after the record's
    /// members (without the comma if the record had none).
    fn write_additions(
        &self,
        state: &State,
        empty: bool,
        millis: i64,
        source: &SourcePosition,
        out: &mut Vec<u8>,
    ) {
        // Without the template's leading comma if the record has no member to follow.
        let skip = usize::from(empty);
        let base = out.len();
        out.extend_from_slice(self.suffix.get(skip..).unwrap_or_default());
        let written = out.get_mut(base..).unwrap_or_default();
        for (offsets, finding) in self.digit_offsets.iter().zip(state.slots.as_slice()) {
            let one = match finding {
                Finding::Class(Class::Good) => 0,
                Finding::Class(Class::Bad) => 1,
                _ => continue,
            };
            let digit = offsets
                .get(one)
                .copied()
                .flatten()
                .and_then(|offset| written.get_mut(offset.checked_sub(skip)?));
            if let Some(digit) = digit {
                *digit = b'1';
            }
        }
        timestamp::write_rfc3339_millis(millis, out);
        out.extend_from_slice(b"\",\"event_id\":");
        write_event_id(source, out);
        out.push(b'}');
    }
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

/// Appends `text` to `out` as a JSON string, quotes included.
pub(crate) fn write_json_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = text.as_bytes();
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain_from = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(plain_from..index).unwrap_or_default());
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain_from = index + 1;
    }
    out.extend_from_slice(bytes.get(plain_from..).unwrap_or_default());
    out.push(b'"');
}

/// Appends the event id of `source` as a JSON string: the text of [`pipeline::wire::event_id`]
/// (`{topic}-{partition}-{offset}`, which a test pins), written in place to spare the
/// allocation that function makes for every record.
fn write_event_id(source: &SourcePosition, out: &mut Vec<u8>) {
    write_json_string(&source.topic, out);
    out.pop(); // reopen the string after the topic
    // `-{partition}-{offset}"`, assembled on the stack and appended at once.
    let mut tail = [0u8; 48];
    let mut len = 0;
    for (separator, value) in [(b'-', i64::from(source.partition)), (b'-', source.offset)] {
        len = put(&mut tail, len, &[separator]);
        if value < 0 {
            len = put(&mut tail, len, b"-");
        }
        let mut digits = [0u8; 20];
        let start = decimal(value.unsigned_abs(), &mut digits);
        len = put(&mut tail, len, digits.get(start..).unwrap_or_default());
    }
    len = put(&mut tail, len, b"\"");
    out.extend_from_slice(tail.get(..len).unwrap_or_default());
}

/// Copies `bytes` into `buf` at `at` (as far as it fits); returns the new end.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let end = (at + bytes.len()).min(buf.len());
    if let Some(slot) = buf.get_mut(at..end) {
        slot.copy_from_slice(bytes.get(..end - at).unwrap_or_default());
    }
    end
}

/// Writes `value` in decimal at the end of `digits`; returns where the digits start.
fn decimal(mut value: u64, digits: &mut [u8; 20]) -> usize {
    const PAIRS: &[u8; 200] = crate::timestamp::DIGIT_PAIRS;
    let mut at = digits.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        at -= 2;
        if let (Some(slot), Some(pair)) = (digits.get_mut(at..at + 2), PAIRS.get(pair..pair + 2)) {
            slot.copy_from_slice(pair);
        }
    }
    if value >= 10 {
        let pair = value as usize * 2;
        at -= 2;
        if let (Some(slot), Some(pair)) = (digits.get_mut(at..at + 2), PAIRS.get(pair..pair + 2)) {
            slot.copy_from_slice(pair);
        }
    } else {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + value as u8;
        }
    }
    at
}

/// JSON whitespace.
fn is_json_space(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// A validated JSON object without its surrounding whitespace and closing brace: `{"a":1`.
fn object_body(input: &[u8]) -> Option<&[u8]> {
    let start = input.iter().position(|b| !is_json_space(b))?;
    let end = input.iter().rposition(|b| !is_json_space(b))?;
    let object = input.get(start..=end)?;
    object.strip_suffix(b"}")
}

/// The slow path for a record that already has keys the transformer writes: appends the
/// record's opening brace and its members except those keys (each kept byte for byte, joined by
/// commas). Returns whether no member was kept; `out` is left as it was on an error (which the
/// validated JSON this is given cannot cause).
fn write_without_outputs(
    text: &str,
    output_keys: &[Box<str>],
    out: &mut Vec<u8>,
) -> Result<bool, json::Error> {
    let start = out.len();
    let result = (|| {
        let mut scanner = json::Scanner::new(text);
        scanner.skip_space();
        let mut members = scanner.object()?;
        out.push(b'{');
        let mut kept = 0usize;
        while let Some(key) = members.next_key(&mut scanner)? {
            scanner.skip_value(1)?;
            let name = json::unescape(key.text(text));
            if output_keys.iter().any(|k| **k == *name) {
                continue;
            }
            if kept > 0 {
                out.push(b',');
            }
            let member = text.get(key.start..scanner.position()).unwrap_or_default();
            out.extend_from_slice(member.as_bytes());
            kept += 1;
        }
        Ok(kept == 0)
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// A monitored value as it appears at its path, for the rejection's detail: the JSON text,
/// shortened. Only called on the way to a dead letter, so it may parse the record again.
fn describe_value(input: &[u8], segments: &[Box<str>]) -> String {
    const MAX_CHARS: usize = 80;
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(input) else {
        return "(unreadable)".to_owned();
    };
    for segment in segments {
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

/// The kind of a JSON value, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    fn with_article(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.with_article())
    }
}

/// What the scan found for one monitored field, and after [`CompiledRules::resolve_fields`],
/// what it counts as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Finding {
    /// Not in the record.
    Absent,
    /// `null`.
    Null,
    /// A scalar, classified.
    Class(Class),
    /// An object or array.
    WrongType(JsonKind),
    /// The object at `depth` segments along the path is of this other kind.
    Through { depth: usize, kind: JsonKind },
    /// Counted as neither good nor bad (by policy).
    Neither,
}

/// What the scan found for `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Absent,
    Null,
    Number(EpochNumber),
    Other(JsonKind),
}

/// The record's outermost value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object { empty: bool },
    NotObject(JsonKind),
}

/// Field findings up to this many live on the stack; more go to the heap.
const INLINE_FIELDS: usize = 16;

/// The findings of one record, one per monitored field.
#[derive(Debug)]
struct Slots {
    len: usize,
    inline: [Finding; INLINE_FIELDS],
    heap: Vec<Finding>,
}

impl Slots {
    fn new(len: usize) -> Self {
        Self {
            len,
            inline: [Finding::Absent; INLINE_FIELDS],
            heap: if len > INLINE_FIELDS {
                vec![Finding::Absent; len]
            } else {
                Vec::new()
            },
        }
    }

    fn as_slice(&self) -> &[Finding] {
        match self.inline.get(..self.len) {
            Some(inline) => inline,
            None => &self.heap,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Finding] {
        match self.inline.get_mut(..self.len) {
            Some(inline) => inline,
            None => &mut self.heap,
        }
    }

    fn set(&mut self, field: usize, finding: Finding) {
        if let Some(slot) = self.as_mut_slice().get_mut(field) {
            *slot = finding;
        }
    }
}

/// Everything the scan of one record finds.
#[derive(Debug)]
struct State {
    slots: Slots,
    timestamp: Seen,
    /// The record has a top-level key the transformer writes.
    conflict: bool,
}

impl State {
    fn new(fields: usize) -> Self {
        Self {
            slots: Slots::new(fields),
            timestamp: Seen::Absent,
            conflict: false,
        }
    }
}

/// Validates `text` as exactly one JSON value and records what the rules need from it.
fn scan(
    text: &str,
    root: &Node,
    fields: &[CompiledField],
    state: &mut State,
) -> Result<Shape, json::Error> {
    let mut scanner = json::Scanner::new(text);
    scanner.skip_space();
    let shape = if scanner.peek() == Some(b'{') {
        let empty = scan_object(&mut scanner, root, fields, state, 1)?;
        Shape::Object { empty }
    } else {
        Shape::NotObject(scanner.skip_value(0)?)
    };
    scanner.skip_space();
    scanner.end()?;
    Ok(shape)
}

/// Scans the object at the scanner (on its `{`), which lies on the way to the monitored fields
/// of `node`: reads those, skips everything else. Returns whether the object is empty.
fn scan_object(
    scanner: &mut json::Scanner<'_>,
    node: &Node,
    fields: &[CompiledField],
    state: &mut State,
    depth: usize,
) -> Result<bool, json::Error> {
    scanner.check_depth(depth)?;
    // A repeated object key starts over: the last occurrence is the one read.
    for &field in &node.leaves {
        state.slots.set(field, Finding::Absent);
    }
    let mut members = scanner.object()?;
    let mut empty = true;
    while let Some(key) = members.next_key(scanner)? {
        empty = false;
        let target = if key.escaped {
            node.find(json::unescape(key.text(scanner.text())).as_bytes())
        } else {
            node.find(key.raw_bytes(scanner.text()))
        };
        match target {
            None if scanner.peek() == Some(b'"') => {
                scanner.string()?;
            }
            None => {
                scanner.skip_value(depth)?;
            }
            Some(Target::Field(index)) => {
                let finding = match fields.get(*index) {
                    Some(field) => scan_field(scanner, field, depth)?,
                    None => {
                        scanner.skip_value(depth)?;
                        continue;
                    }
                };
                state.slots.set(*index, finding);
            }
            Some(Target::Object(child)) => match scanner.peek() {
                Some(b'{') => {
                    scan_object(scanner, child, fields, state, depth + 1)?;
                }
                Some(b'n') => {
                    // A null object on the path: the fields below are missing, as a null
                    // field is.
                    scanner.skip_value(depth)?;
                    for &field in &child.leaves {
                        state.slots.set(field, Finding::Absent);
                    }
                }
                _ => {
                    let kind = scanner.skip_value(depth)?;
                    let through = Finding::Through {
                        depth: child.depth,
                        kind,
                    };
                    for &field in &child.leaves {
                        state.slots.set(field, through);
                    }
                }
            },
            Some(Target::Timestamp) => state.timestamp = scan_timestamp(scanner, depth)?,
            Some(Target::Output) => {
                state.conflict = true;
                scanner.skip_value(depth)?;
            }
        }
    }
    Ok(empty)
}

/// Reads a monitored field's value and classifies it.
#[inline(always)]
fn scan_field(
    scanner: &mut json::Scanner<'_>,
    field: &CompiledField,
    depth: usize,
) -> Result<Finding, json::Error> {
    let classify = |value| Finding::Class(field.classify(value));
    Ok(match scanner.peek() {
        Some(b'"') => {
            let string = scanner.string()?;
            let raw = string.text(scanner.text());
            if string.escaped {
                classify(Value::Str(&json::unescape(raw)))
            } else {
                classify(Value::Str(raw))
            }
        }
        Some(b'-' | b'0'..=b'9') => match parse_number(scanner.number()?) {
            EpochNumber::Int(int) => classify(Value::Int(int)),
            EpochNumber::Float(float) => classify(Value::Float(float)),
        },
        Some(b't') => {
            scanner.skip_value(depth)?;
            classify(Value::Bool(true))
        }
        Some(b'f') => {
            scanner.skip_value(depth)?;
            classify(Value::Bool(false))
        }
        Some(b'n') => {
            scanner.skip_value(depth)?;
            Finding::Null
        }
        _ => Finding::WrongType(scanner.skip_value(depth)?),
    })
}

/// The value of a JSON number's text: an integer if it has no fraction or exponent and fits 64
/// bits (accumulated digit by digit, the common case), else a float (`inf` beyond f64's range).
fn parse_number(text: &[u8]) -> EpochNumber {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // Up to 19 digits cannot overflow a u64.
    if digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        let value = digits
            .iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        let value = i128::from(value);
        return EpochNumber::Int(if negative { -value } else { value });
    }
    let float = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);
    EpochNumber::Float(float)
}

/// Reads `timestamp`.
#[inline(always)]
fn scan_timestamp(scanner: &mut json::Scanner<'_>, depth: usize) -> Result<Seen, json::Error> {
    if let Some(b'-' | b'0'..=b'9') = scanner.peek() {
        return Ok(Seen::Number(parse_number(scanner.number()?)));
    }
    Ok(match scanner.skip_value(depth)? {
        JsonKind::Null => Seen::Null,
        other => Seen::Other(other),
    })
}

/// A validating JSON scanner over a `&str`: it checks RFC 8259 syntax exactly as serde_json
/// does (the tests compare the two on generated input), reads the few values asked for, and
/// skips the rest without building anything.
///
/// It exists because serde_json, even deserializing into nothing, spent more time per record
/// than the whole transform may take. Strings, most of a WAF record, are scanned eight bytes at
/// a time for a quote, a backslash or a control character; containers are skipped iteratively
/// with a bit stack, so no input can exhaust the call stack. Nesting deeper than
/// [`json::MAX_DEPTH`] is refused (serde_json's own limit when it deserializes).
mod json {
    use std::borrow::Cow;
    use std::fmt;

    use super::JsonKind;

    /// The deepest nesting of arrays and objects accepted.
    pub(super) const MAX_DEPTH: usize = 128;

    /// Where and why the text is not JSON.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Error {
        /// Byte offset of the problem.
        pub(super) at: usize,
        /// What was expected or found.
        pub(super) what: &'static str,
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} at byte {}", self.what, self.at)
        }
    }

    /// A string as it appears in the text, between its quotes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Str {
        /// Byte offset of the opening quote.
        pub(super) start: usize,
        /// Byte offset of the closing quote.
        pub(super) end: usize,
        /// Whether the string holds a backslash escape.
        pub(super) escaped: bool,
    }

    impl Str {
        /// The bytes between the quotes, escapes as written.
        #[inline]
        pub(super) fn raw_bytes<'a>(&self, text: &'a str) -> &'a [u8] {
            text.as_bytes()
                .get(self.start + 1..self.end)
                .unwrap_or_default()
        }

        /// The text between the quotes, escapes as written (quotes are ASCII, so these are
        /// char boundaries).
        #[inline]
        pub(super) fn text<'a>(&self, text: &'a str) -> &'a str {
            text.get(self.start + 1..self.end).unwrap_or_default()
        }
    }

    /// The scanner's position in one JSON text.
    #[derive(Debug)]
    pub(super) struct Scanner<'a> {
        text: &'a str,
        bytes: &'a [u8],
        pos: usize,
    }

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// The high bit of each byte of `word` that is a quote, a backslash or below 0x20 (exact
    /// for the lowest such byte, which is all that is used).
    #[inline]
    fn specials(word: u64) -> u64 {
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS
    }

    impl<'a> Scanner<'a> {
        pub(super) fn new(text: &'a str) -> Self {
            Self {
                text,
                bytes: text.as_bytes(),
                pos: 0,
            }
        }

        fn error(&self, what: &'static str) -> Error {
            Error { at: self.pos, what }
        }

        /// The whole text being scanned.
        pub(super) fn text(&self) -> &'a str {
            self.text
        }

        /// The byte offset of the scanner.
        pub(super) fn position(&self) -> usize {
            self.pos
        }

        #[inline(always)]
        pub(super) fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        #[inline(always)]
        pub(super) fn skip_space(&mut self) {
            // One comparison rules out every byte above the space, the usual case.
            while let Some(byte @ (..=b' ')) = self.peek() {
                if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                self.pos += 1;
            }
        }

        /// Fails unless the whole text has been read.
        pub(super) fn end(&self) -> Result<(), Error> {
            if self.pos == self.bytes.len() {
                Ok(())
            } else {
                Err(self.error("trailing characters"))
            }
        }

        pub(super) fn check_depth(&self, depth: usize) -> Result<(), Error> {
            if depth > MAX_DEPTH {
                Err(self.error("nesting deeper than 128 levels"))
            } else {
                Ok(())
            }
        }

        /// Consumes `byte` (after optional whitespace) or fails with `what`.
        #[inline(always)]
        fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Error> {
            self.skip_space();
            if self.peek() == Some(byte) {
                self.pos += 1;
                Ok(())
            } else {
                Err(self.error(what))
            }
        }

        /// Starts reading the object at the scanner (on its `{`).
        pub(super) fn object(&mut self) -> Result<Members, Error> {
            self.expect(b'{', "expected `{`")?;
            Ok(Members { first: true })
        }

        /// The string at the scanner (on its opening quote).
        #[inline(always)]
        pub(super) fn string(&mut self) -> Result<Str, Error> {
            let start = self.pos;
            let bytes = self.bytes;
            let mut pos = start + 1;
            let mut escaped = false;
            loop {
                // Eight bytes at a time while none is special.
                while let Some(chunk) = bytes.get(pos..pos + 8) {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    let found = specials(word);
                    if found != 0 {
                        pos += (found.trailing_zeros() / 8) as usize;
                        break;
                    }
                    pos += 8;
                }
                match bytes.get(pos) {
                    Some(b'"') => {
                        self.pos = pos + 1;
                        return Ok(Str {
                            start,
                            end: pos,
                            escaped,
                        });
                    }
                    Some(b'\\') => {
                        escaped = true;
                        self.pos = pos + 1;
                        self.escape()?;
                        pos = self.pos;
                    }
                    Some(0..=0x1f) => {
                        self.pos = pos;
                        return Err(self.error("control character in a string"));
                    }
                    Some(_) => pos += 1,
                    None => {
                        self.pos = pos;
                        return Err(self.error("unterminated string"));
                    }
                }
            }
        }

        /// Checks the escape after a backslash.
        fn escape(&mut self) -> Result<(), Error> {
            match self.peek() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                    self.pos += 1;
                    Ok(())
                }
                Some(b'u') => {
                    let hex = self.bytes.get(self.pos + 1..self.pos + 5);
                    if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        self.pos += 5;
                        Ok(())
                    } else {
                        Err(self.error("invalid \\u escape"))
                    }
                }
                _ => Err(self.error("invalid escape")),
            }
        }

        /// The number at the scanner, as written.
        pub(super) fn number(&mut self) -> Result<&'a [u8], Error> {
            let start = self.pos;
            if self.peek() == Some(b'-') {
                self.pos += 1;
            }
            match self.peek() {
                Some(b'0') => {
                    self.pos += 1;
                    if let Some(b'0'..=b'9') = self.peek() {
                        return Err(self.error("invalid number: leading zero"));
                    }
                }
                Some(b'1'..=b'9') => self.digits(),
                _ => return Err(self.error("invalid number")),
            }
            if self.peek() == Some(b'.') {
                self.pos += 1;
                if !matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("invalid number: no digit after `.`"));
                }
                self.digits();
            }
            if let Some(b'e' | b'E') = self.peek() {
                self.pos += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.pos += 1;
                }
                if !matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("invalid number: no digit in the exponent"));
                }
                self.digits();
            }
            Ok(self.bytes.get(start..self.pos).unwrap_or_default())
        }

        fn digits(&mut self) {
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }

        #[inline(always)]
        fn literal(&mut self, word: &'static [u8], kind: JsonKind) -> Result<JsonKind, Error> {
            if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
                self.pos += word.len();
                Ok(kind)
            } else {
                Err(self.error("expected a value"))
            }
        }

        /// Skips one scalar at the scanner.
        #[inline(always)]
        fn scalar(&mut self) -> Result<JsonKind, Error> {
            match self.peek() {
                Some(b'"') => self.string().map(|_| JsonKind::String),
                Some(b'-' | b'0'..=b'9') => self.number().map(|_| JsonKind::Number),
                Some(b't') => self.literal(b"true", JsonKind::Bool),
                Some(b'f') => self.literal(b"false", JsonKind::Bool),
                Some(b'n') => self.literal(b"null", JsonKind::Null),
                Some(_) => Err(self.error("expected a value")),
                None => Err(self.error("unexpected end while parsing a value")),
            }
        }

        /// Validates and skips the value at the scanner (after optional whitespace), nested in
        /// `depth` containers already; returns its kind. Iterative: containers are tracked in a
        /// bit stack (1 for an object), so depth costs no call stack.
        pub(super) fn skip_value(&mut self, depth: usize) -> Result<JsonKind, Error> {
            self.skip_space();
            let kind = match self.peek() {
                Some(b'{') => JsonKind::Object,
                Some(b'[') => JsonKind::Array,
                _ => return self.scalar(),
            };
            let mut stack: u128 = 0;
            let mut level = 0usize;
            // Expecting a value (after `[`, `,` in an array, or `:`), or else a comma or the end
            // of the innermost container.
            let mut want_value = true;
            loop {
                if want_value {
                    self.skip_space();
                    match self.peek() {
                        Some(open @ (b'{' | b'[')) => {
                            level += 1;
                            self.check_depth(depth + level)?;
                            let is_object = open == b'{';
                            stack = (stack << 1) | u128::from(is_object);
                            self.pos += 1;
                            self.skip_space();
                            let close = if is_object { b'}' } else { b']' };
                            if self.peek() == Some(close) {
                                self.pos += 1;
                                level -= 1;
                                stack >>= 1;
                                want_value = false;
                            } else if is_object {
                                self.member_key()?;
                            }
                        }
                        _ => {
                            self.scalar()?;
                            want_value = false;
                        }
                    }
                } else {
                    if level == 0 {
                        return Ok(kind);
                    }
                    self.skip_space();
                    let in_object = stack & 1 == 1;
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            if in_object {
                                self.skip_space();
                                self.member_key()?;
                            }
                            want_value = true;
                        }
                        Some(b'}') if in_object => {
                            self.pos += 1;
                            level -= 1;
                            stack >>= 1;
                        }
                        Some(b']') if !in_object => {
                            self.pos += 1;
                            level -= 1;
                            stack >>= 1;
                        }
                        _ if in_object => return Err(self.error("expected `,` or `}`")),
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
        }

        /// Reads `"key" :` inside an object.
        #[inline(always)]
        fn member_key(&mut self) -> Result<Str, Error> {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected `:`")?;
            self.skip_space();
            Ok(key)
        }
    }

    /// Iterates over an object's members: the caller reads or skips each value.
    #[derive(Debug)]
    pub(super) struct Members {
        first: bool,
    }

    impl Members {
        /// The next member's key, leaving the scanner on its value; `None` after the `}`.
        #[inline(always)]
        pub(super) fn next_key(&mut self, scanner: &mut Scanner<'_>) -> Result<Option<Str>, Error> {
            scanner.skip_space();
            match scanner.peek() {
                Some(b'}') if self.first => {
                    scanner.pos += 1;
                    return Ok(None);
                }
                _ if self.first => self.first = false,
                Some(b',') => {
                    scanner.pos += 1;
                    scanner.skip_space();
                }
                Some(b'}') => {
                    scanner.pos += 1;
                    return Ok(None);
                }
                _ => return Err(scanner.error("expected `,` or `}`")),
            }
            scanner.member_key().map(Some)
        }
    }

    /// The text of a JSON string's contents (escapes as written, already validated), unescaped.
    /// A `\u` escape that is half of a surrogate pair without its other half becomes U+FFFD.
    pub(super) fn unescape(raw: &str) -> Cow<'_, str> {
        if !raw.contains('\\') {
            return Cow::Borrowed(raw);
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let decoded = match chars.next() {
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('u') => {
                    let high = hex4(&mut chars);
                    match high {
                        Some(high @ 0xd800..=0xdbff) => {
                            let rest = chars.as_str();
                            let low = rest.strip_prefix("\\u").and_then(|r| {
                                let mut r = r.chars();
                                hex4(&mut r).filter(|l| (0xdc00..=0xdfff).contains(l))
                            });
                            match low {
                                Some(low) => {
                                    chars = rest.get(6..).unwrap_or_default().chars();
                                    let code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                                    char::from_u32(code).unwrap_or('\u{fffd}')
                                }
                                None => '\u{fffd}',
                            }
                        }
                        Some(code) => char::from_u32(code).unwrap_or('\u{fffd}'),
                        None => '\u{fffd}',
                    }
                }
                Some(other) => other, // `"`, `\`, `/`
                None => break,
            };
            out.push(decoded);
        }
        Cow::Owned(out)
    }

    fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
        let mut code = 0;
        for _ in 0..4 {
            code = code * 16 + chars.next()?.to_digit(16)?;
        }
        Some(code)
    }

    /// Whether `text` is exactly one JSON value, by this scanner.
    #[cfg(test)]
    pub(super) fn validate(text: &str) -> Result<JsonKind, Error> {
        let mut scanner = Scanner::new(text);
        let kind = scanner.skip_value(0)?;
        scanner.skip_space();
        scanner.end()?;
        Ok(kind)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_accepts_json_and_tells_its_kind() {
        let table = [
            ("{}", JsonKind::Object),
            (" [ ] ", JsonKind::Array),
            (
                r#"{"a":[1,-0.5e+3,"x\"\\\/\b\f\n\r\t\u00e9",true,false,null,{}],"b":{"c":{}}}"#,
                JsonKind::Object,
            ),
            ("0", JsonKind::Number),
            ("-0", JsonKind::Number),
            ("1E9", JsonKind::Number),
            (r#""\ud800""#, JsonKind::String), // lone surrogates pass, as in serde_json
            (
                "\"a long string of more than eight bytes é ✓\"",
                JsonKind::String,
            ),
            ("null", JsonKind::Null),
            ("\t\r\n true \n", JsonKind::Bool),
        ];
        for (text, kind) in table {
            assert_eq!(json::validate(text), Ok(kind), "{text}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_scanner_rejects_what_serde_json_rejects() {
        let table = [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{a:1}",
            "{1:2}",
            "[1 2]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "tru",
            "nul",
            "True",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12g4\"",
            "\"\\u12\"",
            "\"tab\there\"",
            "\"nl\nhere\"",
            "{} {}",
            "[]]",
            "[}",
            "{]",
            "\u{feff}{}",
            "NaN",
            "Infinity",
            "[\"a\",]",
            "{\"a\":1 \"b\":2}",
        ];
        for text in table {
            assert!(json::validate(text).is_err(), "accepted {text:?}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "serde_json accepted {text:?}"
            );
        }
    }

    #[test]
    fn nesting_is_limited_without_using_the_call_stack() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(json::validate(&deep(json::MAX_DEPTH)).is_ok());
        let error = json::validate(&deep(json::MAX_DEPTH + 1)).expect_err("too deep");
        assert_eq!(error.what, "nesting deeper than 128 levels");
        assert!(json::validate(&"[{\"a\":".repeat(100_000)).is_err());
    }

    #[test]
    fn strings_unescape_with_surrogate_pairs() {
        let table = [
            ("plain", "plain"),
            (r#"BL\u004fCK"#, "BLOCK"),
            (r#"a\"b\\c\/d\b\f\n\r\t"#, "a\"b\\c/d\u{8}\u{c}\n\r\t"),
            (r#"\ud83d\ude00!"#, "😀!"),
            (r#"\ud83d!"#, "\u{fffd}!"),
            (r#"\ude00"#, "\u{fffd}"),
            (r#"\ud83d\u0041"#, "\u{fffd}A"),
            (r#"\u00E9\u00e9"#, "éé"),
        ];
        for (raw, expected) in table {
            assert_eq!(json::unescape(raw), expected, "{raw}");
            let from_serde: String =
                serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_else(|_| expected.to_owned());
            assert_eq!(from_serde, expected, "{raw}");
        }
    }

    #[test]
    fn members_other_than_the_outputs_are_kept_byte_for_byte() {
        let keys: Vec<Box<str>> = vec!["K".into(), "event_id".into()];
        let mut out = b"prefix".to_vec();
        let text =
            r#" {"a":1, "K" : {"x":[1,"]}"]} ,"d\"e":"x\\" , "event_\u0069d":"old","z" : null } "#;
        let empty = write_without_outputs(text, &keys, &mut out).expect("valid");
        assert!(!empty);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#"prefix{"a":1,"d\"e":"x\\","z" : null"#
        );
        let mut out = Vec::new();
        assert_eq!(
            write_without_outputs(r#"{"K":1}"#, &keys, &mut out),
            Ok(true)
        );
        assert_eq!(out, b"{");
        let mut out = b"kept".to_vec();
        assert!(write_without_outputs(r#"{"a":1,"K"}"#, &keys, &mut out).is_err());
        assert_eq!(out, b"kept");
    }

    #[test]
    fn numbers_parse_as_integers_or_floats_without_overflow() {
        let table = [
            ("1700000000000", EpochNumber::Int(1_700_000_000_000)),
            ("-5", EpochNumber::Int(-5)),
            ("-0", EpochNumber::Int(0)),
            (
                "9999999999999999999",
                EpochNumber::Int(9_999_999_999_999_999_999),
            ),
            (
                "18446744073709551616",
                EpochNumber::Float(18_446_744_073_709_551_616.0),
            ),
            ("-99999999999999999999", EpochNumber::Float(-1e20)),
            ("1.5", EpochNumber::Float(1.5)),
            ("2E3", EpochNumber::Float(2000.0)),
            ("1e400", EpochNumber::Float(f64::INFINITY)),
        ];
        for (text, expected) in table {
            assert_eq!(parse_number(text.as_bytes()), expected, "{text}");
        }
    }

    #[test]
    fn decimals_are_written_exactly() {
        for value in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            1_234_567,
            u64::MAX,
            10u64.pow(19),
        ] {
            let mut digits = [0u8; 20];
            let start = decimal(value, &mut digits);
            assert_eq!(&digits[start..], value.to_string().as_bytes());
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        write_json_string("a\"b\\c\nd\u{1}é", &mut out);
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#.as_bytes());
        let back: String = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn more_fields_than_the_inline_slots_use_the_heap() {
        let mut slots = Slots::new(INLINE_FIELDS + 3);
        slots.set(INLINE_FIELDS + 2, Finding::Neither);
        assert_eq!(slots.as_slice().len(), INLINE_FIELDS + 3);
        assert_eq!(slots.as_slice()[INLINE_FIELDS + 2], Finding::Neither);
        let mut few = Slots::new(2);
        few.set(5, Finding::Neither); // out of range: ignored, no panic
        assert_eq!(few.as_slice(), [Finding::Absent, Finding::Absent]);
    }
}
