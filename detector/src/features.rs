//! A record's contribution to each detector's feature: the enriched record's event time, and
//! what it adds to its interval (1 for a count, the field's value for a sum or a rate, nothing
//! when the feature's filter excludes it), and its entity for a category detector. Pure: no IO,
//! no clock, and no panic on any input, because the loop feeds it whatever arrives on
//! `enriched`; a record it cannot read comes back with the reason, for the caller to
//! dead-letter.
//!
//! The hot path: a [`Plan`], compiled once from the detectors, is the set of dotted paths any of
//! them reads (feature fields, filter fields, category fields, `@timestamp`, `event_id`), as a
//! tree of keys. [`Plan::read`] walks the payload with `serde_json`'s streaming deserializer and
//! keeps only those paths' values (strings borrowed from the payload when they have no escape),
//! skipping everything else with `IgnoredAny`: no `serde_json::Value` per record. Skipped parts
//! are still parsed and the payload is checked to be UTF-8, so a payload that is not valid JSON
//! is rejected as `NotJson` with the text `serde_json::from_slice` gives. Two things valid by
//! RFC 8259 that a whole `Value` refused are now accepted when no detector reads them: a number
//! beyond `f64`'s range (`1e400`) and an escaped lone surrogate (`"\ud800"`).
//!
//! A path's value is what a lookup in the parsed record would give: a repeated key keeps its
//! last value, a path through a non-object is missing, and an object or array is kept whole
//! ([`Field::Composite`], for a filter on one).

use std::borrow::Cow;
use std::fmt;

use pipeline::wire::{DeadLetterReason, EVENT_ID_FIELD};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::spec::{Aggregation, DetectorSpec, Feature};

/// Why a record cannot be read: the dead-letter reason and its detail.
pub type Unreadable = (DeadLetterReason, String);

/// The event-time field of an enriched record.
const TIMESTAMP_FIELD: &str = "@timestamp";

/// The paths the detectors read, compiled once; and, per detector, where its fields are.
#[derive(Debug, Clone)]
pub struct Plan {
    root: Node,
    slots: usize,
    timestamp: usize,
    event_id: usize,
    detectors: Vec<Wanted>,
}

/// Where one detector's fields are in a [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    field: Option<usize>,
    filter: Option<usize>,
    category: Option<usize>,
}

/// One key of a path: its value's slot if a path ends here, the keys below it, and the slots of
/// its subtree (numbered depth first, so they are one range, cleared when a key repeats).
#[derive(Debug, Clone, Default)]
struct Node {
    slot: Option<usize>,
    children: Vec<(Box<str>, Node)>,
    /// An open-addressing table over `children`: (the key's [`tag`], its index + 1; 0 empty),
    /// a power of two at least twice their number, so a lookup is a multiply, an integer
    /// compare or two and the key's bytes once (cheaper than hashing every byte of every key,
    /// or a binary search's mispredicted branches).
    index: Vec<(u64, u32)>,
    first: usize,
    end: usize,
}

/// A wanted path's value in a record, borrowed from the payload where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'p> {
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'p, str>),
    /// An object or array, kept whole.
    Composite(Value),
}

/// An enriched record as the detectors see it: its event time and its wanted paths' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'p> {
    /// `@timestamp`, epoch milliseconds.
    pub time: i64,
    fields: Vec<Option<Field<'p>>>,
}

impl Plan {
    /// The plan for `detectors`, in their order (see [`Plan::wanted`]).
    pub fn new<'s>(detectors: impl IntoIterator<Item = &'s DetectorSpec>) -> Self {
        let detectors: Vec<&DetectorSpec> = detectors.into_iter().collect();
        let mut paths: Vec<&str> = vec![TIMESTAMP_FIELD, EVENT_ID_FIELD];
        for detector in &detectors {
            paths.extend(field_path(&detector.feature));
            paths.extend(detector.feature.filter.as_ref().map(|f| f.field.as_str()));
            paths.extend(detector.category.as_ref().map(|c| c.field.as_str()));
        }
        let mut plan = Self::of_paths(&paths);
        plan.detectors = detectors
            .iter()
            .map(|detector| Wanted {
                field: field_path(&detector.feature).and_then(|p| plan.slot(p)),
                filter: (detector.feature.filter.as_ref()).and_then(|f| plan.slot(&f.field)),
                category: (detector.category.as_ref()).and_then(|c| plan.slot(&c.field)),
            })
            .collect();
        plan
    }

    /// A plan reading `paths` (and `@timestamp` and `event_id`), for no detector.
    fn of_paths(paths: &[&str]) -> Self {
        let mut root = Node::default();
        for path in [TIMESTAMP_FIELD, EVENT_ID_FIELD].iter().chain(paths) {
            let node = path.split('.').fold(&mut root, |node, key| {
                let at = match node.children.iter().position(|(k, _)| **k == *key) {
                    Some(at) => at,
                    None => {
                        node.children.push((key.into(), Node::default()));
                        node.children.len() - 1
                    }
                };
                &mut node.children[at].1
            });
            node.slot = Some(0);
        }
        let slots = root.number(0);
        let mut plan = Self {
            root,
            slots,
            timestamp: 0,
            event_id: 0,
            detectors: Vec::new(),
        };
        plan.timestamp = plan.slot(TIMESTAMP_FIELD).unwrap_or_default();
        plan.event_id = plan.slot(EVENT_ID_FIELD).unwrap_or_default();
        plan
    }

    /// The slot of a compiled path.
    fn slot(&self, path: &str) -> Option<usize> {
        path.split('.')
            .try_fold(&self.root, |node, key| node.child(key))?
            .slot
    }

    /// Where the `index`th detector given to [`Plan::new`] finds its fields.
    pub fn wanted(&self, index: usize) -> Wanted {
        self.detectors.get(index).copied().unwrap_or(Wanted {
            field: None,
            filter: None,
            category: None,
        })
    }

    /// The detectors' wanted fields, in their order.
    pub fn detectors(&self) -> &[Wanted] {
        &self.detectors
    }

    /// Reads an enriched record: its event time and the wanted paths' values; the dead-letter
    /// reason and detail when the payload is not a JSON object or carries no RFC 3339
    /// `@timestamp` string.
    pub fn read<'p>(&self, payload: &'p [u8]) -> Result<Record<'p>, Unreadable> {
        let mut fields = vec![None; self.slots];
        // JSON is UTF-8 (skipped strings are not checked one by one): checked at once, then
        // read as text. Not UTF-8: parsed as before, for serde_json's own error text.
        let Ok(text) = std::str::from_utf8(payload) else {
            let err = serde_json::from_slice::<Value>(payload).err().map_or_else(
                || "the record is not UTF-8".to_owned(),
                |err| err.to_string(),
            );
            return Err((DeadLetterReason::NotJson, err));
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let object = Top {
            root: &self.root,
            fields: &mut fields,
        }
        .deserialize(&mut de)
        .and_then(|object| de.end().map(|()| object))
        .map_err(|err| (DeadLetterReason::NotJson, err.to_string()))?;
        if !object {
            return Err((
                DeadLetterReason::NotObject,
                "an enriched record is a JSON object".to_owned(),
            ));
        }
        let time = match &fields[self.timestamp] {
            None => {
                return Err((
                    DeadLetterReason::MissingField,
                    "@timestamp is missing".into(),
                ));
            }
            Some(Field::Text(text)) => crate::rfc3339::millis(text)
                .map_err(|err| (DeadLetterReason::BadTimestamp, format!("@timestamp: {err}")))?,
            Some(_) => {
                return Err((
                    DeadLetterReason::WrongType,
                    "@timestamp is not an RFC 3339 string".into(),
                ));
            }
        };
        Ok(Record { time, fields })
    }

    /// The record's event id (its document `_id`), when it carries one as a string.
    pub fn event_id<'r>(&self, record: &'r Record<'_>) -> Option<&'r str> {
        match record.field(self.event_id)? {
            Field::Text(id) => Some(id),
            _ => None,
        }
    }
}

/// The field a feature's value comes from: none for a count, which ignores it.
fn field_path(feature: &Feature) -> Option<&str> {
    match feature.aggregation {
        Aggregation::Count => None,
        _ => feature.field.as_deref(),
    }
}

impl Node {
    /// Numbers the slots of this subtree from `next`, depth first; the next free number.
    fn number(&mut self, mut next: usize) -> usize {
        self.first = next;
        if self.slot.is_some() {
            self.slot = Some(next);
            next += 1;
        }
        self.index = vec![(0, 0); (self.children.len() * 2).next_power_of_two()];
        let mask = self.index.len().wrapping_sub(1);
        for (at, (key, _)) in self.children.iter().enumerate() {
            let tag = tag(key);
            let mut i = bucket(tag, mask);
            while self.index[i].1 != 0 {
                i = (i + 1) & mask;
            }
            self.index[i] = (tag, at as u32 + 1);
        }
        for (_, child) in &mut self.children {
            next = child.number(next);
        }
        self.end = next;
        next
    }
}

/// A key's length, first four and last three bytes as one integer: most keys differ in it.
fn tag(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let head = (bytes.iter().take(4)).fold(0, |tag, &b| tag << 8 | u64::from(b));
    let tail = (bytes.iter().rev().take(3)).fold(0, |tag, &b| tag << 8 | u64::from(b));
    (bytes.len() as u64) << 56 ^ head << 24 ^ tail
}

/// A tag's first bucket in a table of `mask + 1` (Fibonacci hashing).
fn bucket(tag: u64, mask: usize) -> usize {
    (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

impl Node {
    /// The node of `key` below this one.
    fn child(&self, key: &str) -> Option<&Node> {
        let mask = self.index.len().checked_sub(1)?;
        let tag = tag(key);
        let mut i = bucket(tag, mask);
        loop {
            let (t, at) = self.index[i];
            if at == 0 {
                return None;
            }
            if t == tag {
                let (k, node) = &self.children[at as usize - 1];
                if **k == *key {
                    return Some(node);
                }
            }
            i = (i + 1) & mask;
        }
    }
}

impl<'p> Record<'p> {
    fn field(&self, slot: usize) -> Option<&Field<'p>> {
        self.fields.get(slot)?.as_ref()
    }
}

impl Field<'_> {
    /// Whether this is `value`: the same JSON type and value.
    pub fn is(&self, value: &Value) -> bool {
        match (self, value) {
            (Field::Null, Value::Null) => true,
            (Field::Bool(a), Value::Bool(b)) => a == b,
            (Field::Number(a), Value::Number(b)) => a == b,
            (Field::Text(a), Value::String(b)) => a == b,
            (Field::Composite(a), b) => a == b,
            _ => false,
        }
    }

    /// The entity a record belongs to: a string as is, a number or boolean printed; `None` for
    /// null, an object or an array.
    pub fn entity(&self) -> Option<Cow<'_, str>> {
        match self {
            Field::Text(text) => Some(Cow::Borrowed(text)),
            Field::Number(n) => Some(Cow::Owned(n.to_string())),
            Field::Bool(b) => Some(Cow::Owned(b.to_string())),
            Field::Null | Field::Composite(_) => None,
        }
    }

    fn from_value(value: Value) -> Field<'static> {
        match value {
            Value::Null => Field::Null,
            Value::Bool(b) => Field::Bool(b),
            Value::Number(n) => Field::Number(n),
            Value::String(text) => Field::Text(Cow::Owned(text)),
            composite => Field::Composite(composite),
        }
    }
}

/// A record's contribution to a detector's feature (`wanted` its fields, from the same
/// [`Plan`] that read `record`): `None` when a filter excludes it.
pub fn contribution(feature: &Feature, wanted: Wanted, record: &Record<'_>) -> Option<f64> {
    if let Some(filter) = &feature.filter {
        let found = wanted.filter.and_then(|slot| record.field(slot));
        if !found.is_some_and(|field| field.is(&filter.value)) {
            return None;
        }
    }
    Some(match wanted.field.and_then(|slot| record.field(slot)) {
        _ if feature.aggregation == Aggregation::Count || feature.field.is_none() => 1.0,
        Some(Field::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Field::Bool(b)) => f64::from(u8::from(*b)),
        _ => 0.0,
    })
}

/// The entity of a category detector's record (`wanted` its fields): the category field's
/// scalar as text, `None` when the record has none.
pub fn entity<'r>(wanted: Wanted, record: &'r Record<'_>) -> Option<Cow<'r, str>> {
    record.field(wanted.category?)?.entity()
}

/// The feature field's scalar as text (what a new-values detector remembers), `None` when the
/// record has none.
pub fn field_text<'r>(wanted: Wanted, record: &'r Record<'_>) -> Option<Cow<'r, str>> {
    record.field(wanted.field?)?.entity()
}

/// The top-level value: `true` for an object (its wanted paths kept), `false` for anything else
/// (parsed and dropped, so invalid JSON is still an error).
struct Top<'a, 'p> {
    root: &'a Node,
    fields: &'a mut [Option<Field<'p>>],
}

impl<'de> DeserializeSeed<'de> for Top<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        walk(self.root, self.fields, map).map(|()| true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain(seq).map(|()| false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Walks an object at `node`: wanted keys' values are kept (or walked), the rest skipped.
fn walk<'de, A: MapAccess<'de>>(
    node: &Node,
    fields: &mut [Option<Field<'de>>],
    mut map: A,
) -> Result<(), A::Error> {
    while let Some(Key(key)) = map.next_key()? {
        match node.child(&key) {
            None => {
                map.next_value::<IgnoredAny>()?;
            }
            Some(child) => {
                // A repeated key: its last value wins, as in a parsed `Value`.
                fields[child.first..child.end].fill(None);
                map.next_value_seed(At {
                    node: child,
                    fields: &mut *fields,
                })?;
            }
        }
    }
    Ok(())
}

fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// An object key, borrowed from the payload unless it has an escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_str(TextVisitor).map(Key)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text))
    }
}

/// The value at a wanted key: kept if a path ends here, walked if paths go on below it.
struct At<'a, 'p> {
    node: &'a Node,
    fields: &'a mut [Option<Field<'p>>],
}

impl<'de> DeserializeSeed<'de> for At<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        match self.node.slot {
            None => de.deserialize_any(self),
            Some(slot) if self.node.children.is_empty() => {
                self.fields[slot] = Some(de.deserialize_any(FieldVisitor)?);
                Ok(())
            }
            // A path ends here and others go on below (rare): keep the whole value and look the
            // deeper paths up in it.
            Some(slot) => {
                let value = Value::deserialize(de)?;
                fill(self.node, &value, self.fields);
                self.fields[slot] = Some(Field::from_value(value));
                Ok(())
            }
        }
    }
}

/// Fills the slots below `node` from its parsed `value`.
fn fill(node: &Node, value: &Value, fields: &mut [Option<Field<'_>>]) {
    for (key, child) in &node.children {
        if let Some(value) = value.get(&**key) {
            fill(child, value, fields);
            if let Some(slot) = child.slot {
                fields[slot] = Some(Field::from_value(value.clone()));
            }
        }
    }
}

impl<'de> Visitor<'de> for At<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        walk(self.node, self.fields, map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain(seq)
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A wanted path's value.
struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Field::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Field::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Field::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // As `Value` does: a float JSON cannot hold is null.
        Ok(Number::from_f64(n).map_or(Field::Null, Field::Number))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(text)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Field::Composite)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Field::Composite)
    }
}

#[cfg(test)]
mod tests;
