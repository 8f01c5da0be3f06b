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
        let (empty, open, close) = match shape {
            Shape::Object { empty, open, close } => (empty, open, close),
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
            // The object without its surrounding whitespace and closing brace: `{"a":1`.
            match input.get(open..close) {
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
                    Rejection::new(
                        DeadLetterReason::WrongType,
                        format!(
                            "{parent} is {}, not an object, so {} cannot be read",
                            kind.with_article(),
                            field.path
                        ),
                    )
                })?,
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
        let suffix = self.suffix.get(skip..).unwrap_or_default();
        out.reserve(suffix.len() + TAIL_CAPACITY + source.topic.len());
        let base = out.len();
        out.extend_from_slice(suffix);
        let written = out.get_mut(base..).unwrap_or_default();
        for (offsets, finding) in self.digit_offsets.iter().zip(state.slots.as_slice()) {
            let offset = match finding {
                Finding::Class(Class::Good) => offsets[0],
                Finding::Class(Class::Bad) => offsets[1],
                _ => None,
            };
            if let Some(digit) = offset.and_then(|at| written.get_mut(at.wrapping_sub(skip))) {
                *digit = b'1';
            }
        }
        write_tail(millis, source, out);
    }
}

/// The most [`write_tail`] assembles on the stack: the timestamp, `","event_id":"`, a topic
/// of up to 64 bytes, two signed 64-bit numbers with their dashes, and `"}`.
const TAIL_CAPACITY: usize = timestamp::RFC3339_MILLIS_LEN + 14 + 64 + 2 * 21 + 2;

/// Appends the `@timestamp` value (its key is the template's end), the `event_id` member
/// and the closing brace: `2023-11-14T22:13:20.000Z","event_id":"raw-3-1234567"}`. The event
/// id is the text of [`pipeline::wire::event_id`] (`{topic}-{partition}-{offset}`, which a test
/// pins), written in place to spare the allocation that function makes for every record; all
/// of it is usually assembled on the stack and appended at once.
#[inline(always)]
fn write_tail(millis: i64, source: &SourcePosition, out: &mut Vec<u8>) {
    let mut tail = [0u8; TAIL_CAPACITY];
    let mut len = put(&mut tail, 0, &timestamp::rfc3339_millis(millis));
    len = put(&mut tail, len, b"\",\"event_id\":\"");
    let topic = source.topic.as_bytes();
    if topic.len() <= 64 && is_plain(topic) {
        len = put(&mut tail, len, topic);
    } else {
        // Without the opening quote, which `write_json_string` writes.
        out.extend_from_slice(tail.get(..len - 1).unwrap_or_default());
        write_json_string(&source.topic, out);
        out.pop(); // reopen the string after the topic
        len = 0;
    }
    // `-{partition}-{offset}"}`
    for value in [i64::from(source.partition), source.offset] {
        len = put(&mut tail, len, b"-");
        if value < 0 {
            len = put(&mut tail, len, b"-");
        }
        len = put_decimal(&mut tail, len, value.unsigned_abs());
    }
    len = put(&mut tail, len, b"\"}");
    out.extend_from_slice(tail.get(..len).unwrap_or_default());
}

/// Whether `bytes` can stand in a JSON string as they are.
fn is_plain(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
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
    if is_plain(bytes) {
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

/// Copies `bytes` into `buf` at `at` if they fit; returns the new end.
#[inline(always)]
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    match buf.get_mut(at..at + bytes.len()) {
        Some(slot) => {
            slot.copy_from_slice(bytes);
            at + bytes.len()
        }
        None => at,
    }
}

/// Writes `value` in decimal into `buf` at `at` if it fits; returns the new end.
fn put_decimal(buf: &mut [u8], at: usize, mut value: u64) -> usize {
    const PAIRS: &[u8; 200] = crate::timestamp::DIGIT_PAIRS;
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let Some(digits) = buf.get_mut(at..at + len) else {
        return at;
    };
    // From the last digit back, two at a time.
    let mut end = len;
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        end = end.saturating_sub(2);
        if let (Some(slot), Some(pair)) = (digits.get_mut(end..end + 2), PAIRS.get(pair..pair + 2))
        {
            slot.copy_from_slice(pair);
        }
    }
    if value >= 10 {
        let pair = value as usize * 2;
        if let (Some(slot), Some(pair)) = (digits.get_mut(..2), PAIRS.get(pair..pair + 2)) {
            slot.copy_from_slice(pair);
        }
    } else if let Some(slot) = digits.first_mut() {
        *slot = b'0' + value as u8;
    }
    at + len
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
        let bytes = text.as_bytes();
        let (open, byte) = json::space(bytes, 0);
        if byte != b'{' {
            return Err(json::error(open, "expected `{`"));
        }
        out.push(b'{');
        let mut kept = 0usize;
        let (mut pos, mut byte) = json::space(bytes, open + 1);
        if byte == b'}' {
            return Ok(true);
        }
        loop {
            let (key, (value, first)) = json::member_key(bytes, pos, byte)?;
            let (_, end) = json::skip(bytes, value, first, 1)?;
            let name = json::unescape(key.text(text));
            if !output_keys.iter().any(|k| **k == *name) {
                if kept > 0 {
                    out.push(b',');
                }
                let member = text.get(key.start..end).unwrap_or_default();
                out.extend_from_slice(member.as_bytes());
                kept += 1;
            }
            (pos, byte) = match json::next_member(bytes, end)? {
                (next, Some(first)) => (next, first),
                (_, None) => return Ok(kept == 0),
            };
        }
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
    Through { depth: u32, kind: JsonKind },
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
    /// An object: whether it has no member, and the offsets of its `{` and `}`.
    Object {
        empty: bool,
        open: usize,
        close: usize,
    },
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
#[inline(always)]
fn scan(
    text: &str,
    root: &Node,
    fields: &[CompiledField],
    state: &mut State,
) -> Result<Shape, json::Error> {
    let bytes = text.as_bytes();
    let (start, byte) = json::space(bytes, 0);
    let (shape, end) = if byte == b'{' {
        let (empty, end) = scan_object(text, start, root, fields, state, 1)?;
        let object = Shape::Object {
            empty,
            open: start,
            close: end - 1,
        };
        (object, end)
    } else {
        let (kind, end) = json::skip(bytes, start, byte, 0)?;
        (Shape::NotObject(kind), end)
    };
    match json::space(bytes, end) {
        (end, _) if end == bytes.len() => Ok(shape),
        (at, _) => Err(json::error(at, "trailing characters")),
    }
}

/// Scans the object whose `{` is at `open`, which lies on the way to the monitored fields of
/// `node`: reads those, skips everything else. Returns whether the object is empty and the
/// offset after its `}`.
fn scan_object(
    text: &str,
    open: usize,
    node: &Node,
    fields: &[CompiledField],
    state: &mut State,
    depth: usize,
) -> Result<(bool, usize), json::Error> {
    let bytes = text.as_bytes();
    if depth > json::MAX_DEPTH {
        return Err(json::too_deep(open));
    }
    // A repeated object key starts over: the last occurrence is the one read. (The record
    // itself is scanned once, into fresh findings.)
    if depth > 1 {
        let slots = state.slots.as_mut_slice();
        for &field in &node.leaves {
            if let Some(slot) = slots.get_mut(field) {
                *slot = Finding::Absent;
            }
        }
    }
    let (mut pos, mut byte) = json::space(bytes, open + 1);
    if byte == b'}' {
        return Ok((true, pos + 1));
    }
    loop {
        let (key, (value, first)) = json::member_key(bytes, pos, byte)?;
        let target = if key.escaped {
            node.find(json::unescape(key.text(text)).as_bytes())
        } else {
            node.find(key.raw_bytes(bytes)?)
        };
        let end = match target {
            // Most members are of no interest: skipped here, strings and numbers inline.
            None => match first {
                b'"' => json::string(bytes, value)?.end + 1,
                b'-' | b'0'..=b'9' => json::number(bytes, value)?,
                _ => json::skip(bytes, value, first, depth)?.1,
            },
            Some(target) => scan_target(text, value, first, target, fields, state, depth)?,
        };
        (pos, byte) = match json::next_member(bytes, end)? {
            (next, Some(first)) => (next, first),
            (after, None) => return Ok((false, after)),
        };
    }
}

/// Reads the value (whose first byte `first` is at `at`) of a key of interest, `target`, in an
/// object at `depth`; returns the offset after the value.
#[inline(always)]
fn scan_target(
    text: &str,
    at: usize,
    first: u8,
    target: &Target,
    fields: &[CompiledField],
    state: &mut State,
    depth: usize,
) -> Result<usize, json::Error> {
    let bytes = text.as_bytes();
    Ok(match target {
        Target::Field(index) => match fields.get(*index) {
            Some(field) => {
                let (finding, end) = scan_field(text, at, first, field, depth)?;
                state.slots.set(*index, finding);
                end
            }
            None => json::skip(bytes, at, first, depth)?.1,
        },
        Target::Object(child) => match first {
            b'{' => scan_object(text, at, child, fields, state, depth + 1)?.1,
            b'n' => {
                // A null object on the path: the fields below are missing, as a null field is.
                let end = json::literal(bytes, at, b"null")?;
                for &field in &child.leaves {
                    state.slots.set(field, Finding::Absent);
                }
                end
            }
            _ => {
                let (kind, end) = json::skip(bytes, at, first, depth)?;
                let through = Finding::Through {
                    depth: u32::try_from(child.depth).unwrap_or(u32::MAX),
                    kind,
                };
                for &field in &child.leaves {
                    state.slots.set(field, through);
                }
                end
            }
        },
        Target::Timestamp => {
            let (seen, end) = scan_timestamp(bytes, at, first, depth)?;
            state.timestamp = seen;
            end
        }
        Target::Output => {
            state.conflict = true;
            json::skip(bytes, at, first, depth)?.1
        }
    })
}

/// Reads a monitored field's value (whose first byte `first` is at `at`) and classifies it;
/// returns the finding and the offset after the value. Out of line (the classes' code is
/// large), so the loop over an object's members stays small.
#[inline(never)]
fn scan_field(
    text: &str,
    at: usize,
    first: u8,
    field: &CompiledField,
    depth: usize,
) -> Result<(Finding, usize), json::Error> {
    let bytes = text.as_bytes();
    let classify = |value| Finding::Class(field.classify(value));
    Ok(match first {
        b'"' => {
            let string = json::string(bytes, at)?;
            let raw = string.text(text);
            let finding = if string.escaped {
                classify(Value::Str(&json::unescape(raw)))
            } else {
                classify(Value::Str(raw))
            };
            (finding, string.end + 1)
        }
        b'-' | b'0'..=b'9' => {
            let (number, end) = read_number(bytes, at)?;
            let finding = match number {
                EpochNumber::Int(int) => classify(Value::Int(int)),
                EpochNumber::Float(float) => classify(Value::Float(float)),
            };
            (finding, end)
        }
        b't' => (
            classify(Value::Bool(true)),
            json::literal(bytes, at, b"true")?,
        ),
        b'f' => (
            classify(Value::Bool(false)),
            json::literal(bytes, at, b"false")?,
        ),
        b'n' => (Finding::Null, json::literal(bytes, at, b"null")?),
        _ => {
            let (kind, end) = json::skip(bytes, at, first, depth)?;
            (Finding::WrongType(kind), end)
        }
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

/// Reads the number at `at`: its value, as [`parse_number`] gives it, and the offset after it.
/// A plain integer, such as the usual timestamp, is read eight digits at a time as it is
/// scanned.
#[inline(always)]
fn read_number(bytes: &[u8], at: usize) -> Result<(EpochNumber, usize), json::Error> {
    let negative = bytes.get(at) == Some(&b'-');
    let start = at + usize::from(negative);
    let (count, value) = match json::leading_digits(bytes, start) {
        Some(digits) => digits,
        None => {
            // Near the end of the text, or 16 digits or more: one digit at a time.
            let mut pos = start;
            let mut value = 0u64;
            while let Some(&byte) = bytes.get(pos) {
                let digit = byte.wrapping_sub(b'0');
                if digit > 9 {
                    break;
                }
                value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
                pos += 1;
            }
            (pos - start, value)
        }
    };
    let pos = start + count;
    // Up to 19 digits cannot overflow a u64; a leading zero must stand alone.
    let plain = (1..=19).contains(&count)
        && (count == 1 || bytes.get(start) != Some(&b'0'))
        && !matches!(bytes.get(pos), Some(b'.' | b'e' | b'E'));
    if plain {
        let value = i128::from(value);
        return Ok((EpochNumber::Int(if negative { -value } else { value }), pos));
    }
    let end = json::number(bytes, at)?;
    Ok((parse_number(bytes.get(at..end).unwrap_or_default()), end))
}

/// Reads `timestamp` (whose first byte `first` is at `at`); returns what it is and the offset
/// after it.
#[inline(always)]
fn scan_timestamp(
    bytes: &[u8],
    at: usize,
    first: u8,
    depth: usize,
) -> Result<(Seen, usize), json::Error> {
    if let b'-' | b'0'..=b'9' = first {
        let (number, end) = read_number(bytes, at)?;
        return Ok((Seen::Number(number), end));
    }
    let (kind, end) = json::skip(bytes, at, first, depth)?;
    let seen = match kind {
        JsonKind::Null => Seen::Null,
        other => Seen::Other(other),
    };
    Ok((seen, end))
}

/// A validating JSON scanner over a UTF-8 text's bytes: it checks RFC 8259 syntax exactly as
/// serde_json does (the tests compare the two on generated input), reads the few values asked
/// for, and skips the rest without building anything.
///
/// It exists because serde_json, even deserializing into nothing, spent more time per record
/// than the whole transform may take. It is a set of functions from an offset to the offset
/// after what they read, so the position stays in a register. Strings, most of a WAF record, are
/// scanned eight bytes at a time for a quote, a backslash or a control character; nothing else
/// inside them needs a look, as the text is already known to be UTF-8. Containers are skipped
/// iteratively with a bit stack, so no input can exhaust the call stack. Nesting deeper than
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

    /// The error `what` at byte `at`.
    #[cold]
    pub(super) fn error(at: usize, what: &'static str) -> Error {
        Error { at, what }
    }

    /// The error for a container opened at `at` beyond [`MAX_DEPTH`].
    #[cold]
    pub(super) fn too_deep(at: usize) -> Error {
        error(at, "nesting deeper than 128 levels")
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
        /// The bytes between the quotes, escapes as written (`bytes` must be the text the
        /// string was read from).
        #[inline(always)]
        pub(super) fn raw_bytes<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
            bytes
                .get(self.start + 1..self.end)
                .ok_or_else(|| error(self.start, "string out of bounds"))
        }

        /// The text between the quotes, escapes as written (quotes are ASCII, so these are
        /// char boundaries).
        #[inline]
        pub(super) fn text<'a>(&self, text: &'a str) -> &'a str {
            text.get(self.start + 1..self.end).unwrap_or_default()
        }
    }

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// The high bit of each byte of `word` that is a quote, a backslash or below 0x20 (exact
    /// for the lowest such byte, which is all that is used: a borrow only runs upwards from a
    /// byte that is one of these). XOR with 2 maps the quote and the control characters, and
    /// only them, below 0x21; the tests share the `!word` mask, as a byte with its high bit set
    /// is none of these and XOR with an ASCII byte keeps that bit.
    #[inline(always)]
    fn specials(word: u64) -> u64 {
        let quote_or_control = (word ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
        let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        (quote_or_control | backslash) & !word & HIGHS
    }

    /// JSON whitespace as a bit set over bytes up to the space.
    const SPACES: u64 = 1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r';

    /// The first byte at or after `pos` that is not JSON whitespace, with its offset; the byte
    /// is 0 at the end of the text (a 0 byte is not JSON there either).
    #[inline(always)]
    pub(super) fn space(bytes: &[u8], pos: usize) -> (usize, u8) {
        match bytes.get(pos) {
            // One comparison rules out every byte above the space, the usual case.
            Some(&byte) if byte > b' ' => (pos, byte),
            _ => space_slow(bytes, pos),
        }
    }

    #[inline(never)]
    fn space_slow(bytes: &[u8], mut pos: usize) -> (usize, u8) {
        while let Some(&byte) = bytes.get(pos) {
            if byte > b' ' || SPACES >> byte & 1 == 0 {
                return (pos, byte);
            }
            pos += 1;
        }
        (pos, 0)
    }

    /// The string whose opening quote is at `start`.
    #[inline(always)]
    pub(super) fn string(bytes: &[u8], start: usize) -> Result<Str, Error> {
        let mut pos = start + 1;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while none is special.
            if let Some(last) = bytes.len().checked_sub(8) {
                while pos <= last {
                    let chunk = bytes.get(pos..pos + 8).unwrap_or_default();
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    let found = specials(word);
                    if found != 0 {
                        let bit = found.trailing_zeros();
                        pos += (bit / 8) as usize;
                        // The special byte itself, without another load.
                        if (word >> (bit - 7)) as u8 == b'"' {
                            return Ok(Str {
                                start,
                                end: pos,
                                escaped,
                            });
                        }
                        break;
                    }
                    pos += 8;
                }
            }
            match bytes.get(pos) {
                Some(b'"') => {
                    return Ok(Str {
                        start,
                        end: pos,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    pos = escape(bytes, pos + 1)?;
                }
                Some(0..=0x1f) => return Err(error(pos, "control character in a string")),
                Some(_) => pos += 1,
                None => return Err(error(pos, "unterminated string")),
            }
        }
    }

    /// Checks the escape after a backslash, at `pos`; returns the offset after it.
    #[inline(never)]
    fn escape(bytes: &[u8], pos: usize) -> Result<usize, Error> {
        match bytes.get(pos) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 1),
            Some(b'u') => {
                let hex = bytes.get(pos + 1..pos + 5);
                if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    Ok(pos + 5)
                } else {
                    Err(error(pos, "invalid \\u escape"))
                }
            }
            _ => Err(error(pos, "invalid escape")),
        }
    }

    /// The count and value of the decimal digits at `pos`, read eight at a time; `None` for 16
    /// digits or more, or where fewer than eight bytes are left to read.
    #[inline(always)]
    pub(super) fn leading_digits(bytes: &[u8], pos: usize) -> Option<(usize, u64)> {
        const POWERS: [u64; 8] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];
        let (count, value) = digits8(bytes, pos)?;
        if count < 8 {
            return Some((count, value));
        }
        let (more, low) = digits8(bytes, pos + 8)?;
        let scale = POWERS.get(more)?;
        Some((8 + more, value * scale + low))
    }

    /// The count and value of the decimal digits that start the eight bytes at `pos`.
    #[inline(always)]
    fn digits8(bytes: &[u8], pos: usize) -> Option<(usize, u64)> {
        let chunk = bytes.get(pos..pos + 8)?;
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        // Digits become 0 to 9; the high bit marks every byte that is not a digit (above 9),
        // with no carry between bytes.
        let values = word ^ (ONES * u64::from(b'0'));
        let not_digit = (((values & !HIGHS) + ONES * 0x76) | values) & HIGHS;
        let count = not_digit.trailing_zeros() / 8;
        if count == 0 {
            return Some((0, 0));
        }
        // The digits at the top, the first the most significant, after zeros.
        let digits = values << (64 - 8 * count);
        // Pairs, then fours, then all eight, by multiplications.
        let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
        const LOW: u64 = 0x0000_00ff_0000_00ff;
        let value = ((pairs & LOW).wrapping_mul(100 + (1_000_000 << 32))
            + ((pairs >> 16) & LOW).wrapping_mul(1 + (10_000 << 32)))
            >> 32;
        Some((count as usize, value))
    }

    /// The offset after the number that starts at `start`.
    #[inline]
    pub(super) fn number(bytes: &[u8], start: usize) -> Result<usize, Error> {
        let mut pos = start;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        match bytes.get(pos) {
            Some(b'0') => {
                pos += 1;
                if let Some(b'0'..=b'9') = bytes.get(pos) {
                    return Err(error(pos, "invalid number: leading zero"));
                }
            }
            Some(b'1'..=b'9') => pos = digits(bytes, pos + 1),
            _ => return Err(error(pos, "invalid number")),
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            if !matches!(bytes.get(pos), Some(b'0'..=b'9')) {
                return Err(error(pos, "invalid number: no digit after `.`"));
            }
            pos = digits(bytes, pos);
        }
        if let Some(b'e' | b'E') = bytes.get(pos) {
            pos += 1;
            if let Some(b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            if !matches!(bytes.get(pos), Some(b'0'..=b'9')) {
                return Err(error(pos, "invalid number: no digit in the exponent"));
            }
            pos = digits(bytes, pos);
        }
        Ok(pos)
    }

    #[inline(always)]
    fn digits(bytes: &[u8], mut pos: usize) -> usize {
        while let Some(b'0'..=b'9') = bytes.get(pos) {
            pos += 1;
        }
        pos
    }

    /// The offset after `word` (`true`, `false` or `null`), which must be at `pos`.
    #[inline(always)]
    pub(super) fn literal(bytes: &[u8], pos: usize, word: &'static [u8]) -> Result<usize, Error> {
        if bytes.get(pos..pos + word.len()) == Some(word) {
            Ok(pos + word.len())
        } else {
            Err(error(pos, "expected a value"))
        }
    }

    /// Skips the scalar whose first byte `first` is at `pos`; returns its kind and the offset
    /// after it.
    #[inline(always)]
    fn scalar(bytes: &[u8], pos: usize, first: u8) -> Result<(JsonKind, usize), Error> {
        match first {
            b'"' => string(bytes, pos).map(|s| (JsonKind::String, s.end + 1)),
            b'-' | b'0'..=b'9' => number(bytes, pos).map(|end| (JsonKind::Number, end)),
            b't' => literal(bytes, pos, b"true").map(|end| (JsonKind::Bool, end)),
            b'f' => literal(bytes, pos, b"false").map(|end| (JsonKind::Bool, end)),
            b'n' => literal(bytes, pos, b"null").map(|end| (JsonKind::Null, end)),
            _ if pos >= bytes.len() => Err(error(pos, "unexpected end while parsing a value")),
            _ => Err(error(pos, "expected a value")),
        }
    }

    /// Reads `"key" :` at `pos` (whose byte is `first`) inside an object; returns the key and
    /// the offset and first byte of the member's value (after whitespace).
    #[inline(always)]
    pub(super) fn member_key(
        bytes: &[u8],
        pos: usize,
        first: u8,
    ) -> Result<(Str, (usize, u8)), Error> {
        if first != b'"' {
            return Err(error(pos, "expected a string key"));
        }
        let key = string(bytes, pos)?;
        // Compact JSON, the usual case, has a string value right after the colon.
        if pair_at(bytes, key.end + 1) == Some(b":\"".as_slice()) {
            return Ok((key, (key.end + 2, b'"')));
        }
        match space(bytes, key.end + 1) {
            (colon, b':') => Ok((key, space(bytes, colon + 1))),
            (at, _) => Err(error(at, "expected `:`")),
        }
    }

    /// The two bytes at `pos`, if there are two.
    #[inline(always)]
    fn pair_at(bytes: &[u8], pos: usize) -> Option<&[u8]> {
        bytes.get(pos..pos + 2)
    }

    /// After a member's value, which ends before `pos`: the offset and first byte of the next
    /// member (after the comma and whitespace), or `None` with the offset after the closing
    /// brace.
    #[inline(always)]
    pub(super) fn next_member(bytes: &[u8], pos: usize) -> Result<(usize, Option<u8>), Error> {
        // Compact JSON, the usual case, has the next key right after the comma.
        if pair_at(bytes, pos) == Some(b",\"".as_slice()) {
            return Ok((pos + 1, Some(b'"')));
        }
        match space(bytes, pos) {
            (comma, b',') => {
                let (next, first) = space(bytes, comma + 1);
                Ok((next, Some(first)))
            }
            (close, b'}') => Ok((close + 1, None)),
            (at, _) => Err(error(at, "expected `,` or `}`")),
        }
    }

    /// Validates and skips the value whose first byte `first` (not whitespace) is at `pos`,
    /// nested in `depth` containers already; returns its kind and the offset after it.
    /// Iterative: containers are tracked in a bit stack, so depth costs no call stack. The bit
    /// stack is one word while nesting is shallow (always, in logs); a value nested deeper, or
    /// one that is not JSON, is read again with a stack as deep as [`MAX_DEPTH`].
    pub(super) fn skip(
        bytes: &[u8],
        pos: usize,
        first: u8,
        depth: usize,
    ) -> Result<(JsonKind, usize), Error> {
        let shallow = if depth <= MAX_DEPTH - Shallow::LEVELS {
            skip_in(bytes, pos, first, Shallow::EMPTY)
        } else {
            Err(too_deep(pos))
        };
        shallow.or_else(|_| {
            let deep = Deep {
                bits: 0,
                level: 0,
                room: MAX_DEPTH.saturating_sub(depth),
            };
            skip_in(bytes, pos, first, deep)
        })
    }

    /// The containers open around a value being skipped, innermost last.
    trait Nesting: Copy {
        /// With one more container, an object or an array; `None` if there is no room.
        fn open(self, object: bool) -> Option<Self>;
        /// Without the innermost container.
        fn close(self) -> Self;
        /// Whether the innermost container is an object.
        fn in_object(self) -> bool;
        /// Whether no container is open.
        fn outside(self) -> bool;
    }

    /// Up to [`Shallow::LEVELS`] containers as bits (1 for an object) below a marker bit.
    #[derive(Debug, Clone, Copy)]
    struct Shallow(u64);

    impl Shallow {
        const LEVELS: usize = 63;
        const EMPTY: Self = Self(1);
    }

    impl Nesting for Shallow {
        #[inline(always)]
        fn open(self, object: bool) -> Option<Self> {
            (self.0 >> Self::LEVELS == 0).then_some(Self(self.0 << 1 | u64::from(object)))
        }
        #[inline(always)]
        fn close(self) -> Self {
            Self(self.0 >> 1)
        }
        #[inline(always)]
        fn in_object(self) -> bool {
            self.0 & 1 == 1
        }
        #[inline(always)]
        fn outside(self) -> bool {
            self.0 == 1
        }
    }

    /// Up to `room` containers (at most [`MAX_DEPTH`]) as bits, 1 for an object.
    #[derive(Debug, Clone, Copy)]
    struct Deep {
        bits: u128,
        level: usize,
        room: usize,
    }

    impl Nesting for Deep {
        fn open(self, object: bool) -> Option<Self> {
            (self.level < self.room).then_some(Self {
                bits: self.bits << 1 | u128::from(object),
                level: self.level + 1,
                room: self.room,
            })
        }
        fn close(self) -> Self {
            Self {
                bits: self.bits >> 1,
                level: self.level.saturating_sub(1),
                room: self.room,
            }
        }
        fn in_object(self) -> bool {
            self.bits & 1 == 1
        }
        fn outside(self) -> bool {
            self.level == 0
        }
    }

    /// [`skip`] with the bit stack `N`, empty at the start; fails for a value nested deeper
    /// than `N` holds.
    #[inline(always)]
    fn skip_in<N: Nesting>(
        bytes: &[u8],
        pos: usize,
        first: u8,
        mut stack: N,
    ) -> Result<(JsonKind, usize), Error> {
        let kind = match first {
            b'{' => JsonKind::Object,
            b'[' => JsonKind::Array,
            _ => return scalar(bytes, pos, first),
        };
        let (mut pos, mut byte) = (pos, first);
        loop {
            // `byte`, at `pos`, starts a value.
            match byte {
                b'"' => pos = string(bytes, pos)?.end + 1,
                b'{' | b'[' => {
                    let is_object = byte == b'{';
                    stack = stack.open(is_object).ok_or_else(|| too_deep(pos))?;
                    let close = byte + 2; // `}` or `]`
                    let (next, inner) = space(bytes, pos + 1);
                    if inner == close {
                        pos = next + 1;
                        stack = stack.close();
                    } else {
                        (pos, byte) = if is_object {
                            member_key(bytes, next, inner)?.1
                        } else {
                            (next, inner)
                        };
                        continue;
                    }
                }
                _ => pos = scalar(bytes, pos, byte)?.1,
            }
            // After a value: a comma, or the end of the innermost container.
            loop {
                if stack.outside() {
                    return Ok((kind, pos));
                }
                let in_object = stack.in_object();
                if in_object && pair_at(bytes, pos) == Some(b",\"".as_slice()) {
                    (pos, byte) = member_key(bytes, pos + 1, b'"')?.1;
                    break;
                }
                let (next, separator) = space(bytes, pos);
                if separator == b',' {
                    let (next, first) = space(bytes, next + 1);
                    (pos, byte) = if in_object {
                        member_key(bytes, next, first)?.1
                    } else {
                        (next, first)
                    };
                    break;
                }
                let close = if in_object { b'}' } else { b']' };
                if separator != close {
                    let what = if in_object {
                        "expected `,` or `}`"
                    } else {
                        "expected `,` or `]`"
                    };
                    return Err(error(next, what));
                }
                pos = next + 1;
                stack = stack.close();
            }
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
        let bytes = text.as_bytes();
        let (pos, first) = space(bytes, 0);
        let (kind, end) = skip(bytes, pos, first, 0)?;
        match space(bytes, end) {
            (end, _) if end == bytes.len() => Ok(kind),
            (at, _) => Err(error(at, "trailing characters")),
        }
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
    fn numbers_read_while_scanning_agree_with_parse_number() {
        let numbers = "0 -0 7 -7 12 1234567 12345678 123456789 1700000000000 -1700000000000 \
                       999999999999999 1000000000000000 9999999999999999 12345678901234567 \
                       9999999999999999999 18446744073709551615 18446744073709551616 1.5 \
                       -2.5e-3 1E9 1e300 0.1 10 100000000";
        for number in numbers.split_whitespace() {
            for after in [
                "",
                ",",
                "}",
                ",\"next\":1}",
                "                 ",
                "]]]]]]]]]]]]]]]]",
            ] {
                let text = format!("{number}{after}");
                let (value, end) = read_number(text.as_bytes(), 0).expect("a number");
                assert_eq!(end, number.len(), "{text:?}");
                assert_eq!(value, parse_number(number.as_bytes()), "{text:?}");
            }
        }
        for bad in ["-", "-x", "01", "00", "-01", "1.", "1e", "1e+"] {
            for after in ["", ",", ",\"next\":1}              "] {
                let text = format!("{bad}{after}");
                assert!(read_number(text.as_bytes(), 0).is_err(), "{text:?}");
            }
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
            let mut buf = *b"[........................]";
            let end = put_decimal(&mut buf, 1, value);
            assert_eq!(&buf[1..end], value.to_string().as_bytes());
            assert_eq!(&buf[end..], &b"........................]"[end - 1..]);
            let late = buf.len() + 1 - (end - 1);
            assert_eq!(put_decimal(&mut buf, late, value), late, "does not fit");
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
