//! One pass over a record with the JSON scanner, guided by the rules' path tree: it validates
//! the whole text, descends only into the objects on a monitored path, classifies each
//! monitored value where it lies (unescaping only strings that hold escapes), notes the
//! `timestamp` and any key the transformer writes, and skips everything else. This is where the
//! scanner (`crate::json`) and the rules (`crate::rules`) meet; neither knows the other.

use crate::json::{self, JsonKind, Number};
use crate::rules::{Class, CompiledField, Node, Section, Target, Value};
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

/// What the scan found for the timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Seen {
    Absent,
    Null,
    Number(EpochNumber),
    /// A string (read only when the section reads string timestamps): its text's offsets.
    Text {
        start: usize,
        end: usize,
        escaped: bool,
    },
    Other(JsonKind),
}

impl Finding {
    /// How telling a finding is when several values (an array's elements) are read for one
    /// field: any bad value makes the field bad, else any good one good, and so on.
    fn weight(self) -> u8 {
        match self {
            Self::Absent => 0,
            Self::Null => 1,
            Self::Through { .. } => 2,
            Self::WrongType(_) => 3,
            Self::Neither => 4,
            Self::Class(Class::Unknown) => 5,
            Self::Class(Class::Good) => 6,
            Self::Class(Class::Bad) => 7,
        }
    }
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

    /// Adds the finding of one more value of `field` (inside an array): the more telling one
    /// stays.
    fn merge(&mut self, field: usize, finding: Finding) {
        if let Some(slot) = self.as_mut_slice().get_mut(field)
            && finding.weight() > slot.weight()
        {
            *slot = finding;
        }
    }
}

/// Everything the scan of one record finds.
#[derive(Debug)]
pub(super) struct State {
    /// One finding per monitored field.
    pub(super) slots: Slots,
    /// The record's timestamp: the value of the most preferred timestamp field present.
    pub(super) timestamp: Seen,
    /// The rank of the timestamp field `timestamp` came from (`u8::MAX` before any).
    pub(super) timestamp_rank: u8,
    /// The record has a top-level key the transformer writes.
    pub(super) conflict: bool,
    /// How many arrays the scan is inside: findings then merge (any element counts) instead of
    /// replacing each other.
    merging: u32,
}

impl State {
    pub(super) fn new(fields: usize) -> Self {
        Self {
            slots: Slots::new(fields),
            timestamp: Seen::Absent,
            timestamp_rank: u8::MAX,
            conflict: false,
            merging: 0,
        }
    }

    /// Records `finding` for `field`: replacing the last one, or inside an array, merging.
    #[inline(always)]
    fn found(&mut self, field: usize, finding: Finding) {
        if self.merging == 0 {
            self.slots.set(field, finding);
        } else {
            self.slots.merge(field, finding);
        }
    }
}

/// Validates `text` as exactly one JSON value and records what the rules need from it.
#[inline(always)]
pub(super) fn scan(text: &str, section: &Section, state: &mut State) -> Result<Shape, json::Error> {
    let bytes = text.as_bytes();
    let scanner = Scanner {
        text,
        fields: &section.fields,
        strings: section.timestamp_strings,
    };
    let (start, byte) = json::space(bytes, 0);
    let (shape, end) = if byte == b'{' {
        let (empty, end) = scanner.object(start, &section.root, state, 1)?;
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

/// What every step of the scan of one record reads: the text, the section's fields and whether
/// string timestamps are read.
struct Scanner<'a> {
    text: &'a str,
    fields: &'a [CompiledField],
    strings: bool,
}

impl Scanner<'_> {
    /// Scans the object whose `{` is at `open`, which lies on the way to the monitored fields
    /// of `node`: reads those, skips everything else. Returns whether the object is empty and
    /// the offset after its `}`.
    fn object(
        &self,
        open: usize,
        node: &Node,
        state: &mut State,
        depth: usize,
    ) -> Result<(bool, usize), json::Error> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        if depth > json::MAX_DEPTH {
            return Err(json::too_deep(open));
        }
        // A repeated object key starts over: the last occurrence is the one read. (The record
        // itself is scanned once, into fresh findings; inside arrays, findings merge.)
        if depth > 1 && state.merging == 0 {
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
                Some(target) => self.target(value, first, target, state, depth)?,
            };
            (pos, byte) = match json::next_member(bytes, end)? {
                (next, Some(first)) => (next, first),
                (after, None) => return Ok((false, after)),
            };
        }
    }

    /// Reads the value (whose first byte `first` is at `at`) of a key of interest, `target`,
    /// in an object at `depth`; returns the offset after the value.
    #[inline(always)]
    fn target(
        &self,
        at: usize,
        first: u8,
        target: &Target,
        state: &mut State,
        depth: usize,
    ) -> Result<usize, json::Error> {
        let bytes = self.text.as_bytes();
        Ok(match target {
            Target::Field(index) => match self.fields.get(*index) {
                Some(field) => {
                    let (finding, end) = self.field(at, first, field, depth)?;
                    state.found(*index, finding);
                    end
                }
                None => json::skip(bytes, at, first, depth)?.1,
            },
            Target::Fields(indices) => {
                let mut end = at;
                for &index in indices.iter() {
                    if let Some(field) = self.fields.get(index) {
                        let (finding, after) = self.field(at, first, field, depth)?;
                        state.found(index, finding);
                        end = after;
                    }
                }
                if end == at {
                    end = json::skip(bytes, at, first, depth)?.1;
                }
                end
            }
            Target::Object(child) => match first {
                b'{' => self.object(at, child, state, depth + 1)?.1,
                _ => self.not_container(at, first, child, state, depth)?,
            },
            Target::Array(child) => match first {
                b'[' => self.array(at, child, state, depth + 1)?,
                _ => self.not_container(at, first, child, state, depth)?,
            },
            Target::Timestamp(rank) => {
                let (seen, end) = self.timestamp(at, first, depth)?;
                // The most preferred field present wins; a later duplicate of the same key
                // replaces it, as for monitored fields.
                let better = *rank <= state.timestamp_rank;
                match seen {
                    Seen::Absent | Seen::Null => {
                        if *rank == state.timestamp_rank {
                            state.timestamp = Seen::Null;
                            state.timestamp_rank = u8::MAX;
                        } else if state.timestamp == Seen::Absent {
                            state.timestamp = Seen::Null;
                        }
                    }
                    _ if better => {
                        state.timestamp = seen;
                        state.timestamp_rank = *rank;
                    }
                    _ => {}
                }
                end
            }
            Target::Output => {
                state.conflict = true;
                json::skip(bytes, at, first, depth)?.1
            }
        })
    }

    /// A value that should have been an object (or an array) on the way to the fields of
    /// `child`: `null` makes them missing, as a null field is; anything else is a wrong type.
    fn not_container(
        &self,
        at: usize,
        first: u8,
        child: &Node,
        state: &mut State,
        depth: usize,
    ) -> Result<usize, json::Error> {
        let bytes = self.text.as_bytes();
        if first == b'n' {
            let end = json::literal(bytes, at, b"null")?;
            for &field in &child.leaves {
                state.found(field, Finding::Absent);
            }
            return Ok(end);
        }
        let (kind, end) = json::skip(bytes, at, first, depth)?;
        let through = Finding::Through {
            depth: u32::try_from(child.depth).unwrap_or(u32::MAX),
            kind,
        };
        for &field in &child.leaves {
            state.found(field, through);
        }
        Ok(end)
    }

    /// Scans the array whose `[` is at `open`, whose objects lead to the fields of `node`: each
    /// element's findings merge into the field's (any element counts). An empty array leaves
    /// the fields missing. Returns the offset after the `]`.
    fn array(
        &self,
        open: usize,
        node: &Node,
        state: &mut State,
        depth: usize,
    ) -> Result<usize, json::Error> {
        let bytes = self.text.as_bytes();
        if depth > json::MAX_DEPTH {
            return Err(json::too_deep(open));
        }
        if state.merging == 0 {
            for &field in &node.leaves {
                state.slots.set(field, Finding::Absent);
            }
        }
        state.merging += 1;
        let result = (|| {
            let (mut pos, mut byte) = json::space(bytes, open + 1);
            if byte == b']' {
                return Ok(pos + 1);
            }
            loop {
                let end = match byte {
                    b'{' => self.object(pos, node, state, depth + 1)?.1,
                    _ => self.not_container(pos, byte, node, state, depth)?,
                };
                (pos, byte) = match json::next_element(bytes, end)? {
                    (next, Some(first)) => (next, first),
                    (after, None) => return Ok(after),
                };
            }
        })();
        state.merging -= 1;
        result
    }

    /// Reads a monitored field's value (whose first byte `first` is at `at`) and classifies
    /// it; returns the finding and the offset after the value. Out of line (the classes' code
    /// is large), so the loop over an object's members stays small.
    #[inline(never)]
    fn field(
        &self,
        at: usize,
        first: u8,
        field: &CompiledField,
        depth: usize,
    ) -> Result<(Finding, usize), json::Error> {
        let (text, bytes) = (self.text, self.text.as_bytes());
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
                let finding = field
                    .classify_container()
                    .map_or(Finding::WrongType(kind), Finding::Class);
                (finding, end)
            }
        })
    }

    /// Reads a timestamp field's value (whose first byte `first` is at `at`); returns what it
    /// is and the offset after it.
    #[inline(always)]
    fn timestamp(&self, at: usize, first: u8, depth: usize) -> Result<(Seen, usize), json::Error> {
        let bytes = self.text.as_bytes();
        if let b'-' | b'0'..=b'9' = first {
            let (number, end) = json::read_number(bytes, at)?;
            let number = match number {
                Number::Int(int) => EpochNumber::Int(int),
                Number::Float(float) => EpochNumber::Float(float),
            };
            return Ok((Seen::Number(number), end));
        }
        if first == b'"' && self.strings {
            let string = json::string(bytes, at)?;
            let seen = Seen::Text {
                start: at + 1,
                end: string.end,
                escaped: string.escaped,
            };
            return Ok((seen, string.end + 1));
        }
        let (kind, end) = json::skip(bytes, at, first, depth)?;
        let seen = match kind {
            JsonKind::Null => Seen::Null,
            other => Seen::Other(other),
        };
        Ok((seen, end))
    }
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
