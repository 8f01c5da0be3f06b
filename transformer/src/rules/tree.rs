//! The monitored paths as a tree of the objects on the way to them, so the transform descends
//! only into objects that hold a monitored field and rules out most keys with one load (keys
//! are indexed by length, then compared by fingerprint).

use super::matcher::{Short, same};

/// A node of the path tree: one object on the way to monitored fields.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// How many path segments lead here (0 for the record itself).
    pub(crate) depth: usize,
    /// The keys of interest in this object.
    pub(crate) children: Vec<Child>,
    /// Every field whose path goes through this node.
    pub(crate) leaves: Vec<usize>,
    /// For each key length (lengths from 31 up share the last entry), the children with that
    /// length as a bit set, so most keys are ruled out with one load. Unused (zero) when there
    /// are more than 64 children.
    by_length: [u64; 32],
}

impl Node {
    pub(super) fn new(depth: usize) -> Self {
        Self {
            depth,
            children: Vec::new(),
            leaves: Vec::new(),
            by_length: [0; 32],
        }
    }

    /// Builds `by_length`, here and below.
    pub(super) fn index_lengths(&mut self) {
        self.by_length = [0; 32];
        if self.children.len() <= 64 {
            for (bit, child) in self.children.iter().enumerate() {
                if let Some(set) = self.by_length.get_mut(child.name.len().min(31)) {
                    *set |= 1 << bit;
                }
            }
        }
        for child in &mut self.children {
            if let Target::Object(node) | Target::Array(node) = &mut child.target {
                node.index_lengths();
            }
        }
    }

    /// The target of the child named `key` (unescaped), if any.
    #[inline(always)]
    pub(crate) fn find(&self, key: &[u8]) -> Option<&Target> {
        if self.children.len() > 64 {
            return self
                .children
                .iter()
                .find(|c| same(c.name.as_bytes(), key))
                .map(|c| &c.target);
        }
        let mut candidates = self.by_length.get(key.len().min(31)).copied().unwrap_or(0);
        if candidates == 0 {
            return None;
        }
        let short = Short::of(key);
        while candidates != 0 {
            let bit = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let Some(child) = self.children.get(bit) else {
                continue;
            };
            let equal = match (short, child.short) {
                (Some(key), Some(name)) => key == name,
                _ => same(child.name.as_bytes(), key),
            };
            if equal {
                return Some(&child.target);
            }
        }
        None
    }
}

/// A key of interest in an object.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// The key, unescaped.
    pub(crate) name: Box<str>,
    /// The key's fingerprint, if it is short.
    pub(crate) short: Option<Short>,
    /// What the key's value is to the transform.
    pub(crate) target: Target,
}

impl Child {
    pub(super) fn new(name: Box<str>, target: Target) -> Self {
        Self {
            short: Short::of(name.as_bytes()),
            name,
            target,
        }
    }
}

/// What a key's value is to the transform.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The monitored field with this index.
    Field(usize),
    /// Several monitored fields at the same path, each classifying the value.
    Fields(Box<[usize]>),
    /// An object on the way to monitored fields.
    Object(Box<Node>),
    /// An array (`name[]` in a path) whose objects lead to monitored fields; any element's
    /// value counts.
    Array(Box<Node>),
    /// A field the event time may be read from (top level only), by rank: the first of the
    /// section's `timestamp.fields` present wins.
    Timestamp(u8),
    /// A key the transformer writes (top level only): the record must be rebuilt without it.
    Output,
}

/// Two paths that cannot both be monitored.
pub(super) enum PathClash {
    /// Field `.0`'s path is a prefix of this one (it reads a value where this needs an object).
    Through(usize),
    /// This path is a prefix of field `.0`'s.
    PrefixOf(usize),
    /// Field `.0` reads this key as an object where this path reads an array, or the reverse.
    ArrayOrObject(usize),
}

/// Adds the path `segments` (as written: `labels[]` marks an array) of field `field` below
/// `node`, or says which field's path it clashes with.
pub(super) fn insert_path(
    node: &mut Node,
    segments: &[Box<str>],
    field: usize,
) -> Result<(), PathClash> {
    let Some((written, rest)) = segments.split_first() else {
        return Ok(());
    };
    let (head, array) = match written.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (&**written, false),
    };
    node.leaves.push(field);
    let depth = node.depth + 1;
    let existing = node.children.iter_mut().find(|c| &*c.name == head);
    match existing {
        Some(child) => match &mut child.target {
            Target::Field(other) if rest.is_empty() => {
                child.target = Target::Fields(vec![*other, field].into_boxed_slice());
                Ok(())
            }
            Target::Fields(others) if rest.is_empty() => {
                let mut all = others.to_vec();
                all.push(field);
                *others = all.into_boxed_slice();
                Ok(())
            }
            Target::Field(other) => Err(PathClash::Through(*other)),
            Target::Fields(others) => Err(PathClash::Through(others.first().copied().unwrap_or(0))),
            Target::Object(next) | Target::Array(next) if rest.is_empty() => Err(
                PathClash::PrefixOf(next.leaves.first().copied().unwrap_or(0)),
            ),
            Target::Object(next) if array => Err(PathClash::ArrayOrObject(
                next.leaves.first().copied().unwrap_or(0),
            )),
            Target::Array(next) if !array => Err(PathClash::ArrayOrObject(
                next.leaves.first().copied().unwrap_or(0),
            )),
            Target::Object(next) | Target::Array(next) => insert_path(next, rest, field),
            // Only fields, objects and arrays are inserted here.
            Target::Timestamp(_) | Target::Output => Ok(()),
        },
        None if rest.is_empty() => {
            node.children
                .push(Child::new(head.into(), Target::Field(field)));
            Ok(())
        }
        None => {
            let mut child = Node::new(depth);
            let result = insert_path(&mut child, rest, field);
            let child = Box::new(child);
            let target = if array {
                Target::Array(child)
            } else {
                Target::Object(child)
            };
            node.children.push(Child::new(head.into(), target));
            result
        }
    }
}
