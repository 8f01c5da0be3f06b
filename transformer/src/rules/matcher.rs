//! The compiled classes and how a value sorts into them, on the per-record hot path: short
//! texts compare by fingerprint (three integer comparisons, no `memcmp`), integers without
//! formatting, status classes as a bitmap, regexes compiled once. The values come from the
//! transform already read out of the record; nothing here reads JSON.

use std::collections::HashSet;

use regex::Regex;

use super::Policy;

/// Value sets up to this size are searched linearly (faster than hashing for a handful of short
/// strings); larger ones are hashed.
const SMALL_SET: usize = 16;

/// A monitored field, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledField {
    /// The dotted path as written, for messages.
    pub(crate) path: Box<str>,
    /// The path split at dots.
    pub(crate) segments: Vec<Box<str>>,
    pub(crate) good: Option<CompiledClass>,
    pub(crate) bad: Option<CompiledClass>,
    pub(crate) unknown: Policy,
    pub(crate) missing: Policy,
    pub(crate) wrong_type: Policy,
    /// The hidden field holding this field's `when` condition: unless its value is in its
    /// (good) class, this field counts as neither.
    pub(crate) when: Option<usize>,
}

/// A value as the transform reads it, borrowed from the record (strings already unescaped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

/// How a value sorts into a field's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Good,
    Bad,
    Unknown,
}

impl CompiledField {
    /// The class of `value`: bad wins over good, so a broad good class cannot hide an anomaly.
    #[inline(always)]
    pub(crate) fn classify(&self, value: Value<'_>) -> Class {
        // A string's fingerprint is taken once for both classes.
        let short = match value {
            Value::Str(text) => Short::of(text.as_bytes()),
            Value::Bool(true) => Short::of(b"true"),
            Value::Bool(false) => Short::of(b"false"),
            Value::Int(_) | Value::Float(_) => None,
        };
        if self.bad.as_ref().is_some_and(|c| c.matches(value, short)) {
            Class::Bad
        } else if self.good.as_ref().is_some_and(|c| c.matches(value, short)) {
            Class::Good
        } else {
            Class::Unknown
        }
    }

    /// The class of an object or array value: only a `present` matcher takes one; `None`
    /// makes it a wrong type.
    pub(crate) fn classify_container(&self) -> Option<Class> {
        if self.bad.as_ref().is_some_and(|c| c.present) {
            Some(Class::Bad)
        } else if self.good.as_ref().is_some_and(|c| c.present) {
            Some(Class::Good)
        } else {
            None
        }
    }

    /// The indicators this field writes (a good class may have none).
    pub(crate) fn indicators(&self) -> impl Iterator<Item = &str> {
        [&self.good, &self.bad]
            .into_iter()
            .flatten()
            .filter_map(|class| class.indicator.as_deref())
    }
}

/// A class, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledClass {
    /// The indicator this class sets to 1 (a good class may have none).
    pub(crate) indicator: Option<Box<str>>,
    /// The `values` entries' texts (empty with `ignore_case`, which uses `folded`).
    pub(super) texts: TextSet,
    /// Set by `ignore_case`: `values`, `prefix` and `suffix` compare ASCII case-insensitively.
    pub(super) ignore_case: bool,
    /// The `values` entries' texts when `ignore_case` is set.
    pub(super) folded: Vec<Box<str>>,
    /// The `prefix` entries.
    pub(super) prefixes: Vec<Box<str>>,
    /// The `suffix` entries.
    pub(super) suffixes: Vec<Box<str>>,
    /// The `cidr` networks.
    pub(super) networks: Vec<ipnet::IpNet>,
    /// Set by `present: true`: any value that is not `null` matches.
    pub(super) present: bool,
    /// The `values` entries that are integers, to match JSON integers without formatting them.
    pub(super) ints: Vec<i128>,
    /// The `status` entries' codes.
    pub(super) status: Option<StatusSet>,
    /// The `range`, inclusive, open ends infinite.
    pub(super) range: Option<(f64, f64)>,
    /// The `regex`.
    pub(super) regex: Option<Pattern>,
    /// The matchers in words, for the summary.
    pub(super) description: String,
}

impl CompiledClass {
    #[inline(always)]
    fn matches(&self, value: Value<'_>, short: Option<Short>) -> bool {
        if self.present {
            return true;
        }
        match value {
            Value::Str(text) => {
                self.texts.contains(text, short)
                    || self.matches_text(text)
                    || self.status.as_ref().is_some_and(|s| s.contains_text(text))
                    || self.range.is_some_and(|range| {
                        text.parse::<f64>()
                            .is_ok_and(|n| n.is_finite() && in_range(range, n))
                    })
                    || self.regex.as_ref().is_some_and(|re| re.is_match(text))
            }
            Value::Int(int) => {
                self.ints.contains(&int)
                    || self.status.as_ref().is_some_and(|s| s.contains(int))
                    || self.range.is_some_and(|range| in_range(range, int as f64))
            }
            Value::Float(float) => self.range.is_some_and(|range| in_range(range, float)),
            Value::Bool(b) => self.texts.contains(if b { "true" } else { "false" }, short),
        }
    }
}

impl CompiledClass {
    /// The string matchers beyond exact values: case-folded values, prefixes, suffixes and
    /// networks (out of line: the seed's rules use none of them).
    #[inline(never)]
    fn matches_text(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let fold = self.ignore_case;
        let equal = |a: &[u8], b: &[u8]| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        self.folded
            .iter()
            .any(|t| t.as_bytes().eq_ignore_ascii_case(bytes))
            || self.prefixes.iter().any(|p| {
                bytes
                    .get(..p.len())
                    .is_some_and(|head| equal(head, p.as_bytes()))
            })
            || self.suffixes.iter().any(|s| {
                bytes
                    .len()
                    .checked_sub(s.len())
                    .and_then(|at| bytes.get(at..))
                    .is_some_and(|tail| equal(tail, s.as_bytes()))
            })
            || (!self.networks.is_empty()
                && text
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| self.networks.iter().any(|net| net.contains(&ip))))
    }
}

/// A compiled `regex`: the `regex` crate's (linear time) when it takes the pattern, else
/// `fancy_regex`'s for backreferences and look-around (backtracking, with its step limit).
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    Plain(Regex),
    Fancy(Box<fancy_regex::Regex>),
}

impl Pattern {
    #[inline]
    fn is_match(&self, text: &str) -> bool {
        match self {
            Self::Plain(re) => re.is_match(text),
            // A pattern that exceeds the backtracking limit on this text does not match it.
            Self::Fancy(re) => re.is_match(text).unwrap_or(false),
        }
    }
}

fn in_range((min, max): (f64, f64), value: f64) -> bool {
    min <= value && value <= max
}

/// A set of exact texts.
#[derive(Debug, Clone)]
pub(super) enum TextSet {
    /// Few texts: compared one by one, those up to 16 bytes by fingerprint.
    Small {
        short: Vec<Short>,
        long: Vec<Box<str>>,
    },
    /// Many texts: hashed.
    Large(HashSet<Box<str>>),
}

impl TextSet {
    pub(super) fn new(texts: Vec<Box<str>>) -> Self {
        if texts.len() > SMALL_SET {
            return Self::Large(texts.into_iter().collect());
        }
        let (short, long): (Vec<_>, Vec<_>) = texts
            .into_iter()
            .partition(|t| Short::of(t.as_bytes()).is_some());
        Self::Small {
            short: short
                .iter()
                .filter_map(|t| Short::of(t.as_bytes()))
                .collect(),
            long,
        }
    }

    /// Whether `text` (whose fingerprint is `fingerprint`) is in the set.
    #[inline(always)]
    fn contains(&self, text: &str, fingerprint: Option<Short>) -> bool {
        match self {
            Self::Small { short, long } => match fingerprint {
                // No early exit: which entry matches is data, and a branch on it mispredicts.
                Some(fingerprint) => short.iter().fold(false, |hit, s| hit | (*s == fingerprint)),
                None => long.iter().any(|t| **t == *text),
            },
            Self::Large(texts) => texts.contains(text),
        }
    }
}

/// A string of at most 16 bytes as its length and two overlapping little-endian words that
/// together hold every byte, so comparing two such strings is three integer comparisons rather
/// than a call to `memcmp`: keys and values in WAF records are mostly that short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    len: usize,
    head: u64,
    tail: u64,
}

impl Short {
    /// The fingerprint of `bytes`, or `None` if it is longer than 16 bytes.
    #[inline(always)]
    pub(crate) fn of(bytes: &[u8]) -> Option<Self> {
        let len = bytes.len();
        let (head, tail) = match len {
            0 => (0, 0),
            1..=3 => {
                let byte = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
                (byte(0) | byte(len / 2) << 8 | byte(len - 1) << 16, 0)
            }
            4..=7 => (
                u64::from(read_u32(bytes, 0)),
                u64::from(read_u32(bytes, len - 4)),
            ),
            8..=16 => (read_u64(bytes, 0), read_u64(bytes, len - 8)),
            _ => return None,
        };
        Some(Self { len, head, tail })
    }
}

#[inline]
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

#[inline]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Byte equality, ruling out most unequal strings by length and first byte before the full
/// comparison.
#[inline]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

/// HTTP status codes 100..=599 as a bitmap.
#[derive(Debug, Clone, Default)]
pub(super) struct StatusSet([u64; 8]);

impl StatusSet {
    pub(super) fn insert(&mut self, code: u16) {
        let bit = usize::from(code - 100);
        if let Some(word) = self.0.get_mut(bit / 64) {
            *word |= 1 << (bit % 64);
        }
    }

    fn contains(&self, code: i128) -> bool {
        if !(100..=599).contains(&code) {
            return false;
        }
        let bit = (code - 100) as usize;
        self.0
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    /// A string of exactly three ASCII digits, read as a code.
    fn contains_text(&self, text: &str) -> bool {
        match text.as_bytes() {
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                let code = i128::from(a - b'0') * 100 + i128::from(b - b'0') * 10;
                self.contains(code + i128::from(c - b'0'))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_every_short_string_apart() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "acb",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "bbcdefghijklmnop",
            "abcdefghXjklmnop",
            "US",
            "UK",
            "GET",
            "ALLOW",
            "Challenge",
        ];
        for a in words {
            for b in words {
                let (fa, fb) = (Short::of(a.as_bytes()), Short::of(b.as_bytes()));
                assert_eq!(fa == fb, a == b, "{a:?} vs {b:?}");
            }
        }
        assert_eq!(Short::of(&[b'x'; 17]), None);
    }

    #[test]
    fn status_bitmap_covers_exactly_its_codes() {
        let mut set = StatusSet::default();
        (400..=499).for_each(|c| set.insert(c));
        set.insert(599);
        assert!(set.contains(400) && set.contains(499) && set.contains(599));
        assert!(!set.contains(399) && !set.contains(500) && !set.contains(600));
        assert!(!set.contains(-1) && !set.contains(i128::MAX));
        assert!(set.contains_text("404") && !set.contains_text("4040"));
        assert!(!set.contains_text("40a") && !set.contains_text("200"));
    }
}
