//! One pass over a record with the JSON scanner, guided by the rules' path tree: it validates
//! the whole text, descends only into the objects on a monitored path, classifies each
//! monitored value where it lies (unescaping only strings that hold escapes), notes the
//! `timestamp` and any key the transformer writes, and skips everything else. This is where the
//! scanner (`crate::json`) and the rules (`crate::rules`) meet; neither knows the other.

use crate::json::{self, JsonKind, Number};
use crate::rules::{Class, CompiledField, Node, Target, Value};
use crate::timestamp::EpochNumber;

/// What the scan found for one monitored field, and after `CompiledRules::resolve_fields`,
/// what it counts as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Finding {
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
pub(super) enum Seen {
    Absent,
    Null,
    Number(EpochNumber),
    Other(JsonKind),
}

/// The record's outermost value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
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
pub(super) struct Slots {
    len: usize,
    inline: [Finding; INLINE_FIELDS],
    heap: Vec<Finding>,
}

impl Slots {
    pub(super) fn new(len: usize) -> Self {
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

    pub(super) fn as_slice(&self) -> &[Finding] {
        match self.inline.get(..self.len) {
            Some(inline) => inline,
            None => &self.heap,
        }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [Finding] {
        match self.inline.get_mut(..self.len) {
            Some(inline) => inline,
            None => &mut self.heap,
        }
    }

    pub(super) fn set(&mut self, field: usize, finding: Finding) {
        if let Some(slot) = self.as_mut_slice().get_mut(field) {
            *slot = finding;
        }
    }
}

/// Everything the scan of one record finds.
#[derive(Debug)]
pub(super) struct State {
    /// One finding per monitored field.
    pub(super) slots: Slots,
    /// The record's `timestamp`.
    pub(super) timestamp: Seen,
    /// The record has a top-level key the transformer writes.
    pub(super) conflict: bool,
}

impl State {
    pub(super) fn new(fields: usize) -> Self {
        Self {
            slots: Slots::new(fields),
            timestamp: Seen::Absent,
            conflict: false,
        }
    }
}

/// Validates `text` as exactly one JSON value and records what the rules need from it.
#[inline(always)]
pub(super) fn scan(
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
            let (number, end) = json::read_number(bytes, at)?;
            let finding = match number {
                Number::Int(int) => classify(Value::Int(int)),
                Number::Float(float) => classify(Value::Float(float)),
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
        let (number, end) = json::read_number(bytes, at)?;
        let number = match number {
            Number::Int(int) => EpochNumber::Int(int),
            Number::Float(float) => EpochNumber::Float(float),
        };
        return Ok((Seen::Number(number), end));
    }
    let (kind, end) = json::skip(bytes, at, first, depth)?;
    let seen = match kind {
        JsonKind::Null => Seen::Null,
        other => Seen::Other(other),
    };
    Ok((seen, end))
}

#[cfg(test)]
mod tests {
    use super::*;

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
