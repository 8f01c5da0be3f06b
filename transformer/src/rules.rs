//! Declarative indicator rules: the rules file, its validation, and the compiled form the
//! transform runs.
//!
//! The seed hard-coded its five monitored fields in Python; here a YAML file declares them, so
//! "monitor any field in your log file" is a matter of configuration. Input goes through two
//! stages, like the services' config: [`Rules`] is the file as written (serde, unknown keys
//! rejected), and [`Rules::compile`] checks it and builds [`CompiledRules`], once, at start-up.
//! Every mistake is reported as a [`RulesError`] naming the key path (`fields[2].bad.regex`),
//! what is wrong and the fix. The compiled form is shaped for the per-record hot path: paths are
//! split into a tree so the transform descends only into objects that hold a monitored field,
//! keys and short values compare by fingerprint, regexes are compiled, status classes are a
//! bitmap, and the indicators' output is a ready JSON template. This module does no IO except
//! [`CompiledRules::load`] and [`Rules::load`] reading the file.
//!
//! # The rules file
//!
//! ```yaml
//! fields:
//!   - path: httpRequest.country     # dotted path into nested objects
//!     good:                         # optional; at least one of good and bad
//!       indicator: K_country        # set to 1 when the value is in this class, else 0
//!       values: [US, UK, IN]        # exact text of a string, an integer, or true/false
//!     bad:
//!       indicator: UNK_country
//!       values: [XX, YY, ZZ, WW]
//!     unknown: bad                  # a value in neither class: bad | neither | dead_letter
//!     missing: dead_letter          # absent or null:            bad | neither | dead_letter
//!     wrong_type: dead_letter       # optional, this default: an object or array, or a
//!                                   # parent on the path that is not an object
//!   - path: httpStatus
//!     good: { indicator: G_httpstatus, status: [2xx, 3xx] }  # classes or codes like 404
//!     bad: { indicator: B_httpstatus, status: [4xx, 5xx] }
//!     unknown: neither
//!     missing: dead_letter
//!   - path: latencyMs
//!     bad: { indicator: slow, range: { min: 1000 } }          # inclusive bounds
//!     unknown: neither
//!     missing: neither
//!   - path: httpRequest.uri
//!     bad: { indicator: admin_uri, regex: '^/admin(/|$)' }    # unanchored search
//!     unknown: neither
//!     missing: dead_letter
//! ```
//!
//! A class matches a value when any of its matchers does:
//! - `values`: the value's text equals an entry: a JSON string's (unescaped) text, an integer's
//!   decimal digits, or `true`/`false`. So `values: [200]` matches both `200` and `"200"`.
//! - `status`: HTTP status classes `1xx`..`5xx` or codes `100`..`599`; matches an integer or a
//!   string of exactly three digits.
//! - `range`: `min` and/or `max`, both inclusive; matches a number, or a string holding one.
//! - `regex`: the `regex` crate's syntax, searched (not anchored) in string values.
//!
//! A value matching both classes counts as bad, so a broad good class never hides an anomaly.
//! The policies say what a value outside both classes, a missing (or `null`) field, and a value
//! of the wrong type do: `bad` sets the bad class's indicator (the field must have one),
//! `neither` leaves both indicators 0, and `dead_letter` sends the record to the dead-letter
//! topic with reason `unknown_value`, `missing_field` or `wrong_type`.
//!
//! Reserved names: `timestamp` (read for `@timestamp`), `@timestamp` and `event_id` (written by
//! the transformer) cannot be monitored paths or indicator names, and an indicator cannot be
//! named like the first segment of a monitored path. Keys containing a dot cannot be addressed;
//! arrays on a path are a `wrong_type`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use pipeline::wire::EVENT_ID_FIELD;
use regex::Regex;
use serde::Deserialize;

/// The default rules: the seed's ten indicators (`transformer/rules/default.yaml`, embedded).
pub const DEFAULT_RULES_YAML: &str = include_str!("../rules/default.yaml");

/// The largest record accepted unless [`CompiledRules::with_max_record_bytes`] says otherwise:
/// 1 MiB, Kafka's default `message.max.bytes`.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The top-level field the event time is read from.
pub const TIMESTAMP_FIELD: &str = "timestamp";

/// The field the event time is written to, as RFC 3339.
pub const TIMESTAMP_OUTPUT_FIELD: &str = "@timestamp";

/// Where the default rules come from, as error messages name it.
const DEFAULT_ORIGIN: &str = "default rules (transformer/rules/default.yaml)";

/// Where rules given as text come from, as error messages name it.
const TEXT_ORIGIN: &str = "rules";

/// Value sets up to this size are searched linearly (faster than hashing for a handful of short
/// strings); larger ones are hashed.
const SMALL_SET: usize = 16;

/// The rules file as written, before validation (see the module docs for its format).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The monitored fields, in the order their indicators are written.
    pub fields: Vec<FieldRule>,
}

/// One monitored field as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Dotted path of the field, e.g. `httpRequest.country`.
    pub path: String,
    /// The known-good class, if any.
    #[serde(default)]
    pub good: Option<ClassRule>,
    /// The known-bad class, if any.
    #[serde(default)]
    pub bad: Option<ClassRule>,
    /// What a value in neither class does.
    pub unknown: Policy,
    /// What an absent or `null` field does.
    pub missing: Policy,
    /// What an object or array, or a path through a non-object, does.
    #[serde(default = "Policy::default_wrong_type")]
    pub wrong_type: Policy,
}

/// One class of values (good or bad) as written: the indicator it sets and its matchers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRule {
    /// The indicator field set to 1 for a value in this class, and to 0 otherwise.
    pub indicator: String,
    /// Exact texts.
    #[serde(default)]
    pub values: Vec<Scalar>,
    /// HTTP status classes (`2xx`) or codes (`404`).
    #[serde(default)]
    pub status: Vec<Scalar>,
    /// An inclusive numeric range.
    #[serde(default)]
    pub range: Option<RangeRule>,
    /// A regular expression searched in string values.
    #[serde(default)]
    pub regex: Option<String>,
}

/// An inclusive numeric range; at least one bound.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeRule {
    /// Lower bound, inclusive.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound, inclusive.
    #[serde(default)]
    pub max: Option<f64>,
}

/// A YAML scalar in a `values` or `status` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A number with a fraction (rejected by validation: JSON floats have no stable text).
    Float(f64),
    /// A string.
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl serde::de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Text(v) => f.write_str(v),
        }
    }
}

/// What to do with a value the classes do not cover (unknown, missing or of the wrong type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Count it as bad: the bad class's indicator is 1, the good class's 0.
    Bad,
    /// Count it as neither: both indicators are 0.
    Neither,
    /// Send the record to the dead-letter topic.
    DeadLetter,
}

impl Policy {
    fn default_wrong_type() -> Self {
        Self::DeadLetter
    }

    /// The name the rules file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bad => "bad",
            Self::Neither => "neither",
            Self::DeadLetter => "dead_letter",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rules file that cannot be used, with what to do about it. Each message is complete on its
/// own: where (the file), which key (`fields[2].bad.regex`), what is wrong, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// Not YAML, not the rules' shape, or an unknown key (the parser's message names the key
    /// path, the expected keys and the line).
    #[error("{origin}: {message}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A key whose value cannot be used.
    #[error("{origin}: {key}: {problem}; {fix}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// Path of the key, e.g. `fields[2].bad.regex`.
        key: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
}

impl RulesError {
    /// A key whose value is wrong, what is wrong with it, and the fix.
    fn invalid(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Invalid {
            origin: TEXT_ORIGIN.to_owned(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The same error, saying it comes from `new_origin`.
    fn with_origin(self, new_origin: &str) -> Self {
        match self {
            Self::Syntax { message, .. } => Self::Syntax {
                origin: new_origin.to_owned(),
                message,
            },
            Self::Invalid {
                key, problem, fix, ..
            } => Self::Invalid {
                origin: new_origin.to_owned(),
                key,
                problem,
                fix,
            },
            read @ Self::Read { .. } => read,
        }
    }

    /// The offending key path, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}

impl Rules {
    /// Parses rules from YAML text. Only the shape is checked here; [`Rules::compile`] checks the
    /// content.
    pub fn from_yaml(text: &str) -> Result<Self, RulesError> {
        serde_norway::from_str(text).map_err(|error| RulesError::Syntax {
            origin: TEXT_ORIGIN.to_owned(),
            message: error.to_string(),
        })
    }

    /// Reads and parses a rules file (not yet compiled).
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|error| RulesError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_yaml(&text).map_err(|e| e.with_origin(&path.display().to_string()))
    }

    /// The embedded default rules (the seed's ten indicators), parsed.
    pub fn default_rules() -> Result<Self, RulesError> {
        Self::from_yaml(DEFAULT_RULES_YAML).map_err(|e| e.with_origin(DEFAULT_ORIGIN))
    }

    /// Validates the rules and builds the form the transform runs.
    pub fn compile(&self) -> Result<CompiledRules, RulesError> {
        if self.fields.is_empty() {
            return Err(RulesError::invalid(
                "fields",
                "no field is monitored",
                "add at least one entry with a `path`, a `good` or `bad` class, and the \
                 `unknown` and `missing` policies",
            ));
        }
        let mut fields = Vec::with_capacity(self.fields.len());
        for (index, rule) in self.fields.iter().enumerate() {
            fields.push(compile_field(rule, &format!("fields[{index}]"))?);
        }
        check_indicator_names(&fields)?;
        let mut root = Node::new(0);
        for (index, field) in fields.iter().enumerate() {
            insert_path(&mut root, &field.segments, index).map_err(|clash| {
                path_clash(index, &field.path, clash, |other| {
                    fields.get(other).map_or("", |f| &*f.path)
                })
            })?;
        }
        let mut output_keys: Vec<Box<str>> = fields
            .iter()
            .flat_map(|f| [&f.good, &f.bad])
            .flatten()
            .map(|class| class.indicator.clone())
            .collect();
        output_keys.push(TIMESTAMP_OUTPUT_FIELD.into());
        output_keys.push(EVENT_ID_FIELD.into());
        // The root also recognises the timestamp and every key the transformer writes, so one
        // lookup per top-level key finds all of them.
        root.children
            .push(Child::new(TIMESTAMP_FIELD.into(), Target::Timestamp));
        root.children.extend(
            output_keys
                .iter()
                .map(|key| Child::new(key.clone(), Target::Output)),
        );
        root.index_lengths();
        let (suffix, digit_offsets) = suffix_template(&fields);
        Ok(CompiledRules {
            fields,
            root,
            output_keys,
            suffix,
            digit_offsets,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        })
    }
}

/// Rules ready to apply to records: built once by [`Rules::compile`], then shared read-only (it
/// is `Send + Sync`) by every record the transformer handles. See `transform` for
/// [`CompiledRules::apply`].
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// The monitored fields, in file order (the order their indicators are written).
    pub(crate) fields: Vec<CompiledField>,
    /// The monitored paths as a tree; the root also names `timestamp` and the output keys.
    pub(crate) root: Node,
    /// Every key the transformer writes, indicators first, then `@timestamp`, `event_id`.
    pub(crate) output_keys: Vec<Box<str>>,
    /// What every enriched record ends with up to the timestamp's value, indicators at 0:
    /// `,"K_action":0,"B_action":0,...,"@timestamp":"`. Copied in one go, then the digits of
    /// the indicators that are 1 are patched.
    pub(crate) suffix: Box<[u8]>,
    /// For each field, the offsets in `suffix` of its good and bad indicators' digits.
    pub(crate) digit_offsets: Vec<[Option<usize>; 2]>,
    /// Records larger than this are dead letters (`oversized`).
    pub(crate) max_record_bytes: usize,
}

impl CompiledRules {
    /// Parses and compiles rules from YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, RulesError> {
        Rules::from_yaml(text)?.compile()
    }

    /// Reads, parses and compiles a rules file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        Rules::load(path)?
            .compile()
            .map_err(|e| e.with_origin(&path.display().to_string()))
    }

    /// The embedded default rules (the seed's ten indicators), compiled.
    pub fn default_rules() -> Result<Self, RulesError> {
        Rules::default_rules()?
            .compile()
            .map_err(|e| e.with_origin(DEFAULT_ORIGIN))
    }

    /// These rules with records over `max` bytes dead-lettered as `oversized` (the default is
    /// [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// The size above which a record is a dead letter.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The indicator names, in the order they are written.
    pub fn indicators(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .flat_map(|f| [&f.good, &f.bad])
            .flatten()
            .map(|class| &*class.indicator)
    }

    /// Every field the transformer adds to a record: the indicators, `@timestamp`, `event_id`.
    pub fn output_fields(&self) -> impl Iterator<Item = &str> {
        self.output_keys.iter().map(|key| &**key)
    }

    /// What these rules monitor and decide, for `logwarden-transformer check` and start-up logs.
    pub fn summary(&self) -> RulesSummary {
        let class = |class: &Option<CompiledClass>| {
            class.as_ref().map(|c| ClassSummary {
                indicator: c.indicator.to_string(),
                matchers: c.description.clone(),
            })
        };
        RulesSummary {
            fields: self
                .fields
                .iter()
                .map(|f| FieldSummary {
                    path: f.path.to_string(),
                    good: class(&f.good),
                    bad: class(&f.bad),
                    unknown: f.unknown,
                    missing: f.missing,
                    wrong_type: f.wrong_type,
                })
                .collect(),
            max_record_bytes: self.max_record_bytes,
        }
    }
}

/// What a set of rules monitors, as `check` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesSummary {
    /// The monitored fields, in order.
    pub fields: Vec<FieldSummary>,
    /// Records larger than this are dead letters.
    pub max_record_bytes: usize,
}

/// One monitored field in a [`RulesSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSummary {
    /// Dotted path.
    pub path: String,
    /// The good class.
    pub good: Option<ClassSummary>,
    /// The bad class.
    pub bad: Option<ClassSummary>,
    /// Policy for a value in neither class.
    pub unknown: Policy,
    /// Policy for an absent or `null` field.
    pub missing: Policy,
    /// Policy for an object, an array, or a path through a non-object.
    pub wrong_type: Policy,
}

/// One class in a [`RulesSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSummary {
    /// The indicator it sets.
    pub indicator: String,
    /// Its matchers, e.g. `values ALLOW, CAPTCHA; regex ^C`.
    pub matchers: String,
}

impl RulesSummary {
    /// Every indicator, in output order.
    pub fn indicators(&self) -> Vec<&str> {
        self.fields
            .iter()
            .flat_map(|f| [&f.good, &f.bad])
            .flatten()
            .map(|c| c.indicator.as_str())
            .collect()
    }
}

impl fmt::Display for RulesSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indicators = self.indicators();
        writeln!(
            f,
            "{} monitored fields, {} indicators; also writes @timestamp and event_id; \
             records over {} bytes are dead letters",
            self.fields.len(),
            indicators.len(),
            self.max_record_bytes
        )?;
        for field in &self.fields {
            writeln!(f, "{}", field.path)?;
            for (label, class) in [("good", &field.good), ("bad", &field.bad)] {
                if let Some(class) = class {
                    writeln!(f, "  {label:<5}{:<18}{}", class.indicator, class.matchers)?;
                }
            }
            writeln!(
                f,
                "  unknown value: {}, missing: {}, wrong type: {}",
                field.unknown, field.missing, field.wrong_type
            )?;
        }
        Ok(())
    }
}

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
}

/// A class, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledClass {
    pub(crate) indicator: Box<str>,
    texts: TextSet,
    /// The `values` entries that are integers, to match JSON integers without formatting them.
    ints: Vec<i128>,
    status: Option<StatusSet>,
    range: Option<(f64, f64)>,
    regex: Option<Regex>,
    /// The matchers in words, for the summary.
    description: String,
}

impl CompiledClass {
    #[inline(always)]
    fn matches(&self, value: Value<'_>, short: Option<Short>) -> bool {
        match value {
            Value::Str(text) => {
                self.texts.contains(text, short)
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

fn in_range((min, max): (f64, f64), value: f64) -> bool {
    min <= value && value <= max
}

/// A set of exact texts.
#[derive(Debug, Clone)]
enum TextSet {
    /// Few texts: compared one by one, those up to 16 bytes by fingerprint.
    Small {
        short: Vec<Short>,
        long: Vec<Box<str>>,
    },
    /// Many texts: hashed.
    Large(HashSet<Box<str>>),
}

impl TextSet {
    fn new(texts: Vec<Box<str>>) -> Self {
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
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

/// HTTP status codes 100..=599 as a bitmap.
#[derive(Debug, Clone, Default)]
struct StatusSet([u64; 8]);

impl StatusSet {
    fn insert(&mut self, code: u16) {
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
    fn new(depth: usize) -> Self {
        Self {
            depth,
            children: Vec::new(),
            leaves: Vec::new(),
            by_length: [0; 32],
        }
    }

    /// Builds `by_length`, here and below.
    fn index_lengths(&mut self) {
        self.by_length = [0; 32];
        if self.children.len() <= 64 {
            for (bit, child) in self.children.iter().enumerate() {
                if let Some(set) = self.by_length.get_mut(child.name.len().min(31)) {
                    *set |= 1 << bit;
                }
            }
        }
        for child in &mut self.children {
            if let Target::Object(node) = &mut child.target {
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
    fn new(name: Box<str>, target: Target) -> Self {
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
    /// An object on the way to monitored fields.
    Object(Box<Node>),
    /// The record's `timestamp` (top level only).
    Timestamp,
    /// A key the transformer writes (top level only): the record must be rebuilt without it.
    Output,
}

/// Two paths that cannot both be monitored.
enum PathClash {
    /// The same path as field `.0`.
    Same(usize),
    /// Field `.0`'s path is a prefix of this one (it reads a value where this needs an object).
    Through(usize),
    /// This path is a prefix of field `.0`'s.
    PrefixOf(usize),
}

fn insert_path(node: &mut Node, segments: &[Box<str>], field: usize) -> Result<(), PathClash> {
    let Some((head, rest)) = segments.split_first() else {
        return Ok(());
    };
    node.leaves.push(field);
    let depth = node.depth + 1;
    match node.children.iter_mut().find(|c| c.name == *head) {
        Some(Child {
            target: Target::Field(other),
            ..
        }) => Err(if rest.is_empty() {
            PathClash::Same(*other)
        } else {
            PathClash::Through(*other)
        }),
        Some(Child {
            target: Target::Object(child),
            ..
        }) => match child.leaves.first() {
            Some(other) if rest.is_empty() => Err(PathClash::PrefixOf(*other)),
            _ => insert_path(child, rest, field),
        },
        Some(_) => Ok(()), // only fields and objects are inserted here
        None if rest.is_empty() => {
            node.children
                .push(Child::new(head.clone(), Target::Field(field)));
            Ok(())
        }
        None => {
            let mut child = Node::new(depth);
            let result = insert_path(&mut child, rest, field);
            node.children
                .push(Child::new(head.clone(), Target::Object(Box::new(child))));
            result
        }
    }
}

fn path_clash<'a>(
    index: usize,
    path: &str,
    clash: PathClash,
    path_of: impl Fn(usize) -> &'a str,
) -> RulesError {
    let key = format!("fields[{index}].path");
    match clash {
        PathClash::Same(other) => RulesError::invalid(
            key,
            format!("`{path}` is already monitored by fields[{other}]"),
            "monitor each path once: merge the two entries",
        ),
        PathClash::Through(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` goes through `{}`, which fields[{other}] monitors as a value",
                path_of(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
        PathClash::PrefixOf(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` is an object on the way to `{}` (fields[{other}])",
                path_of(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
    }
}

fn compile_field(rule: &FieldRule, at: &str) -> Result<CompiledField, RulesError> {
    let path = rule.path.trim();
    if path.is_empty() {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            "the path is empty",
            "write the field's dotted path, e.g. `action` or `httpRequest.country`",
        ));
    }
    let segments: Vec<Box<str>> = path.split('.').map(Box::from).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            format!("`{path}` has an empty segment"),
            "separate keys with single dots and no leading or trailing dot, e.g. \
             `httpRequest.country`",
        ));
    }
    if let Some(first) = segments.first()
        && [TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD].contains(&&**first)
    {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            format!(
                "`{first}` is reserved: the transformer reads `timestamp` for the event time \
                 and writes `@timestamp` and `event_id`"
            ),
            "monitor another field",
        ));
    }
    if rule.good.is_none() && rule.bad.is_none() {
        return Err(RulesError::invalid(
            at,
            format!("`{path}` has neither a `good` nor a `bad` class"),
            "add at least one class, e.g. `bad: { indicator: B_x, values: [...] }`",
        ));
    }
    for (name, policy) in [
        ("unknown", rule.unknown),
        ("missing", rule.missing),
        ("wrong_type", rule.wrong_type),
    ] {
        if policy == Policy::Bad && rule.bad.is_none() {
            return Err(RulesError::invalid(
                format!("{at}.{name}"),
                "policy `bad` sets the bad class's indicator, but this field has no `bad` class",
                "add a `bad` class or choose `neither` or `dead_letter`",
            ));
        }
    }
    let good = rule
        .good
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.good")))
        .transpose()?;
    let bad = rule
        .bad
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.bad")))
        .transpose()?;
    if let (Some(good_rule), Some(bad_rule)) = (&rule.good, &rule.bad) {
        let good_texts: HashSet<String> = good_rule.values.iter().map(|v| v.to_string()).collect();
        if let Some((index, value)) = bad_rule
            .values
            .iter()
            .enumerate()
            .find(|(_, v)| good_texts.contains(&v.to_string()))
        {
            return Err(RulesError::invalid(
                format!("{at}.bad.values[{index}]"),
                format!("`{value}` is also in {at}.good.values"),
                "put each value in one class only",
            ));
        }
    }
    Ok(CompiledField {
        path: path.into(),
        segments,
        good,
        bad,
        unknown: rule.unknown,
        missing: rule.missing,
        wrong_type: rule.wrong_type,
    })
}

fn compile_class(rule: &ClassRule, at: &str) -> Result<CompiledClass, RulesError> {
    if rule.indicator.trim().is_empty() {
        return Err(RulesError::invalid(
            format!("{at}.indicator"),
            "the indicator name is empty",
            "name the field this class sets to 1, e.g. `B_action`",
        ));
    }
    if rule.values.is_empty()
        && rule.status.is_empty()
        && rule.range.is_none()
        && rule.regex.is_none()
    {
        return Err(RulesError::invalid(
            at,
            "the class has no matcher",
            "add `values`, `status`, `range` or `regex`",
        ));
    }
    let mut description = Vec::new();

    let mut texts = Vec::new();
    let mut ints = Vec::new();
    for (index, value) in rule.values.iter().enumerate() {
        let text = match value {
            Scalar::Float(float) => {
                return Err(RulesError::invalid(
                    format!("{at}.values[{index}]"),
                    format!(
                        "`{float}` is a number with a fraction, which has no exact text to compare"
                    ),
                    "use `range: { min: ..., max: ... }` for non-integer numbers, or quote the \
                     value to match it as a string",
                ));
            }
            Scalar::Int(int) => int.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(text) => text.clone(),
        };
        if let Some(int) = canonical_int(&text) {
            ints.push(int);
        }
        texts.push(Box::<str>::from(text));
    }
    if !texts.is_empty() {
        description.push(format!("values {}", texts.join(", ")));
    }

    let mut status = None;
    if !rule.status.is_empty() {
        let mut set = StatusSet::default();
        for (index, entry) in rule.status.iter().enumerate() {
            let codes = status_codes(entry).ok_or_else(|| {
                RulesError::invalid(
                    format!("{at}.status[{index}]"),
                    format!("`{entry}` is not an HTTP status class or code"),
                    "write a class 1xx to 5xx or a code from 100 to 599, e.g. `4xx` or `404`",
                )
            })?;
            codes.for_each(|code| set.insert(code));
        }
        let entries: Vec<String> = rule.status.iter().map(ToString::to_string).collect();
        description.push(format!("status {}", entries.join(", ")));
        status = Some(set);
    }

    let mut range = None;
    if let Some(RangeRule { min, max }) = rule.range {
        let key = format!("{at}.range");
        if min.is_none() && max.is_none() {
            return Err(RulesError::invalid(
                key,
                "the range has no bound",
                "give `min`, `max` or both (inclusive)",
            ));
        }
        if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
            return Err(RulesError::invalid(
                key,
                "a bound is not a finite number",
                "leave the bound out for an open range instead of using .inf or .nan",
            ));
        }
        let (low, high) = (
            min.unwrap_or(f64::NEG_INFINITY),
            max.unwrap_or(f64::INFINITY),
        );
        if low > high {
            return Err(RulesError::invalid(
                key,
                format!("min {low} is greater than max {high}"),
                "swap the bounds",
            ));
        }
        let show = |b: Option<f64>| b.map(|v| v.to_string()).unwrap_or_default();
        description.push(format!("range {}..={}", show(min), show(max)));
        range = Some((low, high));
    }

    let mut regex = None;
    if let Some(pattern) = &rule.regex {
        let compiled = Regex::new(pattern).map_err(|error| {
            RulesError::invalid(
                format!("{at}.regex"),
                format!("invalid regex {pattern:?}: {}", regex_problem(&error)),
                "fix the pattern (the `regex` crate's syntax: no look-around or backreferences)",
            )
        })?;
        description.push(format!("regex {pattern}"));
        regex = Some(compiled);
    }

    Ok(CompiledClass {
        indicator: rule.indicator.as_str().into(),
        texts: TextSet::new(texts),
        ints,
        status,
        range,
        regex,
        description: description.join("; "),
    })
}

/// The one-line reason of a regex error (the crate's message draws the pattern with a caret).
fn regex_problem(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(message) => message
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .map_or_else(|| message.replace('\n', " "), str::to_owned),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern is larger than {limit} bytes")
        }
        other => other.to_string(),
    }
}

/// The integer a text spells in canonical decimal (no sign but `-`, no leading zeros), as JSON
/// writes integers; `None` otherwise.
fn canonical_int(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if canonical { text.parse().ok() } else { None }
}

/// The codes a `status` entry stands for: `4xx` is 400..=499, `404` is itself.
fn status_codes(entry: &Scalar) -> Option<std::ops::RangeInclusive<u16>> {
    let text = match entry {
        Scalar::Int(int) => int.to_string(),
        Scalar::Text(text) => text.trim().to_ascii_lowercase(),
        Scalar::Bool(_) | Scalar::Float(_) => return None,
    };
    match text.as_bytes() {
        [class @ b'1'..=b'5', b'x', b'x'] => {
            let low = u16::from(class - b'0') * 100;
            Some(low..=low + 99)
        }
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let code: u16 = text.parse().ok()?;
            (100..=599).contains(&code).then_some(code..=code)
        }
        _ => None,
    }
}

/// The suffix template of [`CompiledRules::suffix`] and the offsets of its indicator digits.
fn suffix_template(fields: &[CompiledField]) -> (Box<[u8]>, Vec<[Option<usize>; 2]>) {
    let mut suffix = Vec::new();
    let mut offsets = Vec::with_capacity(fields.len());
    for field in fields {
        let mut digits = [None, None];
        for (slot, class) in digits.iter_mut().zip([&field.good, &field.bad]) {
            if let Some(class) = class {
                suffix.push(b',');
                crate::transform::write_json_string(&class.indicator, &mut suffix);
                suffix.push(b':');
                *slot = Some(suffix.len());
                suffix.push(b'0');
            }
        }
        offsets.push(digits);
    }
    suffix.push(b',');
    crate::transform::write_json_string(TIMESTAMP_OUTPUT_FIELD, &mut suffix);
    suffix.extend_from_slice(b":\"");
    (suffix.into_boxed_slice(), offsets)
}

/// Each indicator is written once per record, so names must be unique, and must not overwrite
/// the fields the transformer reads or writes.
fn check_indicator_names(fields: &[CompiledField]) -> Result<(), RulesError> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        for (class_name, class) in [("good", &field.good), ("bad", &field.bad)] {
            let Some(class) = class else { continue };
            let key = format!("fields[{index}].{class_name}.indicator");
            let name = &*class.indicator;
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(RulesError::invalid(
                    key,
                    format!("indicator `{name}` is already set by {first}"),
                    "give each class its own indicator name",
                ));
            }
            if [TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD].contains(&name) {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "`{name}` is reserved: the transformer reads `timestamp` and writes \
                         `@timestamp` and `event_id`"
                    ),
                    "choose another indicator name",
                ));
            }
            if let Some(other) = fields
                .iter()
                .find(|f| f.segments.first().is_some_and(|s| **s == *name))
            {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "indicator `{name}` would overwrite the monitored field `{}`",
                        other.path
                    ),
                    "choose another indicator name",
                ));
            }
            seen.push((name, format!("fields[{index}].{class_name}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_compile_to_the_seed_indicators_in_order() {
        let rules = CompiledRules::default_rules().expect("default rules compile");
        let indicators: Vec<&str> = rules.indicators().collect();
        assert_eq!(
            indicators,
            [
                "K_action",
                "B_action",
                "K_source",
                "UNK_source",
                "G_httpstatus",
                "B_httpstatus",
                "K_country",
                "UNK_country",
                "common_method",
                "uncommon_method"
            ]
        );
        let outputs: Vec<&str> = rules.output_fields().collect();
        assert_eq!(outputs.len(), 12);
        assert_eq!(outputs[10..], ["@timestamp", "event_id"]);
    }

    #[test]
    fn compiled_rules_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<CompiledRules>();
    }

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
    fn status_entries_parse_as_classes_or_codes() {
        let text = |s: &str| Scalar::Text(s.to_owned());
        assert_eq!(status_codes(&text("2xx")), Some(200..=299));
        assert_eq!(status_codes(&text("5XX")), Some(500..=599));
        assert_eq!(status_codes(&text("404")), Some(404..=404));
        assert_eq!(status_codes(&Scalar::Int(308)), Some(308..=308));
        for bad in ["6xx", "0xx", "099", "600", "20", "2xxx", "abc", ""] {
            assert_eq!(status_codes(&text(bad)), None, "{bad}");
        }
        assert_eq!(status_codes(&Scalar::Int(99)), None);
        assert_eq!(status_codes(&Scalar::Bool(true)), None);
    }

    #[test]
    fn canonical_integers_are_those_json_would_write() {
        assert_eq!(canonical_int("200"), Some(200));
        assert_eq!(canonical_int("-5"), Some(-5));
        assert_eq!(canonical_int("0"), Some(0));
        for not in ["007", "+5", "-0", "", "-", "1e3", "2xx", " 1"] {
            assert_eq!(canonical_int(not), None, "{not}");
        }
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
