//! The rules file as written: the serde schema, strict (unknown keys are rejected), and its
//! reading. Only the shape is checked here; `compile` checks the content, so a file that parses
//! can still be refused there with the key path and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::{DEFAULT_ORIGIN, DEFAULT_RULES_YAML, RulesError, TEXT_ORIGIN};

/// The rules file as written, before validation (see the module docs for its format).
///
/// The top-level `fields` (and `timestamp`) are the rules for records without a source header
/// (the seed's shape); `sources` holds a section per source header value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Where the event time of records without a source header is read.
    #[serde(default)]
    pub timestamp: Option<TimestampRule>,
    /// The monitored fields of records without a source header, in the order their
    /// indicators are written; none means such records have no rules.
    #[serde(default)]
    pub fields: Vec<FieldRule>,
    /// A section per source (`waf`, `cloudtrail`, ...), for records whose `logwarden-source`
    /// header names it.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceRules>,
}

/// The rules of one source as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRules {
    /// Where the event time is read.
    #[serde(default)]
    pub timestamp: Option<TimestampRule>,
    /// The monitored fields; none passes records through with `@timestamp` and `event_id`.
    pub fields: Vec<FieldRule>,
}

/// Where and how a section reads the event time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampRule {
    /// Top-level fields tried in order; the first present (not `null`) one is read.
    #[serde(default = "TimestampRule::default_fields")]
    pub fields: Vec<String>,
    /// Whether strings are read too: RFC 3339 times, or epoch numbers written as text.
    #[serde(default)]
    pub strings: bool,
}

impl TimestampRule {
    fn default_fields() -> Vec<String> {
        vec![super::TIMESTAMP_FIELD.to_owned()]
    }
}

/// One monitored field as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Dotted path of the field, e.g. `httpRequest.country`; `labels[].name` reads `name` in
    /// every object of the array `labels`.
    pub path: String,
    /// A condition on another field: unless it holds, both indicators are 0 and no policy
    /// applies.
    #[serde(default)]
    pub when: Option<WhenRule>,
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
    /// The indicator field set to 1 for a value in this class, and to 0 otherwise. Optional for
    /// a good class: without one it only marks its values as known.
    #[serde(default)]
    pub indicator: Option<String>,
    /// Exact texts.
    #[serde(default)]
    pub values: Vec<Scalar>,
    /// Texts the value starts with.
    #[serde(default)]
    pub prefix: Vec<String>,
    /// Texts the value ends with.
    #[serde(default)]
    pub suffix: Vec<String>,
    /// IP networks (`10.0.0.0/8`, `2001:db8::/32`) or addresses a string value lies in.
    #[serde(default)]
    pub cidr: Vec<String>,
    /// Matches any value that is present and not `null` (objects and arrays too).
    #[serde(default)]
    pub present: bool,
    /// `values`, `prefix` and `suffix` compare ASCII letters case-insensitively, and so does
    /// `regex`.
    #[serde(default)]
    pub ignore_case: bool,
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

/// The condition of a field rule: another path and the matchers its value must meet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenRule {
    /// Dotted path of the field the condition reads.
    pub path: String,
    /// Exact texts.
    #[serde(default)]
    pub values: Vec<Scalar>,
    /// Texts the value starts with.
    #[serde(default)]
    pub prefix: Vec<String>,
    /// Texts the value ends with.
    #[serde(default)]
    pub suffix: Vec<String>,
    /// IP networks.
    #[serde(default)]
    pub cidr: Vec<String>,
    /// Any value present.
    #[serde(default)]
    pub present: bool,
    /// Case-insensitive texts.
    #[serde(default)]
    pub ignore_case: bool,
    /// HTTP status classes or codes.
    #[serde(default)]
    pub status: Vec<Scalar>,
    /// An inclusive numeric range.
    #[serde(default)]
    pub range: Option<RangeRule>,
    /// A regular expression.
    #[serde(default)]
    pub regex: Option<String>,
}

impl WhenRule {
    /// The condition's matchers as a class without an indicator.
    pub(super) fn as_class(&self) -> ClassRule {
        ClassRule {
            indicator: None,
            values: self.values.clone(),
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            cidr: self.cidr.clone(),
            present: self.present,
            ignore_case: self.ignore_case,
            status: self.status.clone(),
            range: self.range,
            regex: self.regex.clone(),
        }
    }
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
}
