//! The rules file as written: the serde schema, strict (unknown keys are rejected), and its
//! reading. Only the shape is checked here; `compile` checks the content, so a file that parses
//! can still be refused there with the key path and the fix.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::{DEFAULT_ORIGIN, DEFAULT_RULES_YAML, RulesError, TEXT_ORIGIN};

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
