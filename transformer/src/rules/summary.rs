//! What a set of rules monitors and decides, in words: the output of
//! `logwarden-transformer check` and of the service's start-up log, one section per source.

use std::fmt;

use pipeline::wire::Source;

use super::matcher::CompiledClass;
use super::{CompiledRules, Policy, Section};

impl CompiledRules {
    /// What these rules monitor and decide, for `logwarden-transformer check` and start-up logs.
    pub fn summary(&self) -> RulesSummary {
        let sections = std::iter::once(None)
            .chain(Source::ALL.into_iter().map(Some))
            .filter_map(|source| self.section(source))
            .map(Section::summary)
            .collect();
        RulesSummary {
            sections,
            without_rules: Source::ALL
                .into_iter()
                .filter(|source| !self.has_rules_for(Some(*source)))
                .collect(),
            max_record_bytes: self.max_record_bytes,
        }
    }
}

impl Section {
    fn summary(&self) -> SectionSummary {
        let class = |class: &Option<CompiledClass>| {
            class.as_ref().map(|c| ClassSummary {
                indicator: c.indicator.as_deref().map(str::to_owned),
                matchers: c.description.clone(),
            })
        };
        SectionSummary {
            source: self.source,
            timestamp_fields: self
                .timestamp_fields
                .iter()
                .map(|f| f.to_string())
                .collect(),
            timestamp_strings: self.timestamp_strings,
            fields: self
                .fields
                .iter()
                // Hidden `when` fields have no indicator of either class and policies all
                // `neither`: they are shown with the field they guard.
                .filter(|f| f.indicators().next().is_some())
                .map(|f| FieldSummary {
                    path: f.path.to_string(),
                    when: f.when.and_then(|hidden| self.fields.get(hidden)).map(|w| {
                        let matchers = w.good.as_ref().map_or("", |c| c.description.as_str());
                        format!("{} {matchers}", w.path)
                    }),
                    good: class(&f.good),
                    bad: class(&f.bad),
                    unknown: f.unknown,
                    missing: f.missing,
                    wrong_type: f.wrong_type,
                })
                .collect(),
            indicators: self
                .output_keys
                .iter()
                .take(self.indicator_count)
                .map(|k| k.to_string())
                .collect(),
        }
    }
}

/// What a set of rules monitors, as `check` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesSummary {
    /// The sections: records without a source header first (if they have rules), then the
    /// sources in [`Source::ALL`] order.
    pub sections: Vec<SectionSummary>,
    /// The sources whose records are dead letters (`no_rules`).
    pub without_rules: Vec<Source>,
    /// Records larger than this are dead letters.
    pub max_record_bytes: usize,
}

/// One section of a [`RulesSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SectionSummary {
    /// The source, `None` for records without a source header.
    pub source: Option<Source>,
    /// Where the event time is read, in order of preference.
    pub timestamp_fields: Vec<String>,
    /// Whether string timestamps are read.
    pub timestamp_strings: bool,
    /// The monitored fields, in order.
    pub fields: Vec<FieldSummary>,
    /// The distinct indicators, in output order.
    pub indicators: Vec<String>,
}

/// One monitored field in a [`RulesSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSummary {
    /// Dotted path.
    pub path: String,
    /// Its `when` condition, in words.
    pub when: Option<String>,
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
    /// The indicator it sets (a good class may set none).
    pub indicator: Option<String>,
    /// Its matchers, e.g. `values ALLOW, CAPTCHA; regex ^C`.
    pub matchers: String,
}

impl RulesSummary {
    /// The section of `source` (`None`: records without a source header), if it has rules.
    pub fn section(&self, source: Option<Source>) -> Option<&SectionSummary> {
        self.sections.iter().find(|s| s.source == source)
    }
}

impl SectionSummary {
    /// Every indicator, in output order.
    pub fn indicators(&self) -> Vec<&str> {
        self.indicators.iter().map(String::as_str).collect()
    }
}

impl fmt::Display for SectionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            None => write!(f, "records without a source header: ")?,
            Some(source) => write!(f, "source {source}: ")?,
        }
        let strings = if self.timestamp_strings {
            " (numbers or RFC 3339 strings)"
        } else {
            ""
        };
        writeln!(
            f,
            "{} monitored fields, {} indicators; event time from {}{strings}; also writes {}@timestamp and event_id",
            self.fields.len(),
            self.indicators.len(),
            self.timestamp_fields.join(" or "),
            if self.source.is_some() {
                "logwarden_source, "
            } else {
                ""
            }
        )?;
        for field in &self.fields {
            writeln!(f, "  {}", field.path)?;
            if let Some(when) = &field.when {
                writeln!(f, "    when {when}")?;
            }
            for (label, class) in [("good", &field.good), ("bad", &field.bad)] {
                if let Some(class) = class {
                    let indicator = class.indicator.as_deref().unwrap_or("(none)");
                    writeln!(f, "    {label:<5}{indicator:<26}{}", class.matchers)?;
                }
            }
            writeln!(
                f,
                "    unknown value: {}, missing: {}, wrong type: {}",
                field.unknown, field.missing, field.wrong_type
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for RulesSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for section in &self.sections {
            write!(f, "{section}")?;
        }
        if self.section(None).is_none() {
            writeln!(
                f,
                "records without a source header: no rules (dead letters, reason no_rules)"
            )?;
        }
        if !self.without_rules.is_empty() {
            let names: Vec<&str> = self.without_rules.iter().map(|s| s.as_str()).collect();
            writeln!(
                f,
                "sources without rules (dead letters, reason no_rules): {}",
                names.join(", ")
            )?;
        }
        writeln!(
            f,
            "records over {} bytes are dead letters",
            self.max_record_bytes
        )
    }
}
