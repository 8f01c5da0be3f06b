//! What a set of rules monitors and decides, in words: the output of
//! `logwarden-transformer check` and of the service's start-up log.

use std::fmt;

use super::matcher::CompiledClass;
use super::{CompiledRules, Policy};

impl CompiledRules {
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
