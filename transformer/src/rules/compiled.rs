//! [`CompiledRules`]: the rules in the form the transform runs, a [`Section`] per source, built
//! once by [`Rules::compile`] and shared read-only by every record. The per-record logic that uses it
//! lives in `crate::transform`; what it monitors, in words, in `summary`.

use std::path::Path;

use pipeline::wire::Source;

use super::matcher::CompiledField;
use super::tree::Node;
use super::{DEFAULT_ORIGIN, Rules, RulesError};

/// Rules ready to apply to records: built once by [`Rules::compile`], then shared read-only (it
/// is `Send + Sync`) by every record the transformer handles. One [`Section`] per source that
/// has rules, and one for records without a source header (the seed's). See `transform` for
/// [`CompiledRules::apply`] and [`CompiledRules::apply_source`].
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// The rules for records without a source header, if the file has top-level `fields`.
    pub(crate) seed: Option<Section>,
    /// The rules per source, indexed like [`Source::ALL`].
    pub(crate) sources: Vec<Option<Section>>,
    /// Records larger than this are dead letters (`oversized`).
    pub(crate) max_record_bytes: usize,
}

/// The compiled rules of one source (or of records without a source header).
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// The source, `None` for records without a source header.
    pub(crate) source: Option<Source>,
    /// The monitored fields, in file order (the order their indicators are written), then the
    /// hidden fields of `when` conditions.
    pub(crate) fields: Vec<CompiledField>,
    /// The monitored paths as a tree; the root also names the timestamp fields and the output
    /// keys.
    pub(crate) root: Node,
    /// The top-level fields the event time is read from, in order of preference.
    pub(crate) timestamp_fields: Vec<Box<str>>,
    /// Whether string timestamps are read (RFC 3339, or an epoch number as text).
    pub(crate) timestamp_strings: bool,
    /// Every key the transformer writes: indicators first, then `logwarden_source` (for a
    /// source's section), `@timestamp`, `event_id`.
    pub(crate) output_keys: Vec<Box<str>>,
    /// The number of distinct indicators (at the start of `output_keys`).
    pub(crate) indicator_count: usize,
    /// What every enriched record ends with up to the timestamp's value, indicators at 0:
    /// `,"K_action":0,"B_action":0,...,"@timestamp":"`. Copied in one go, then the digits of
    /// the indicators that are 1 are patched.
    pub(crate) suffix: Box<[u8]>,
    /// For each field, the offsets in `suffix` of its good and bad indicators' digits (fields
    /// that share an indicator share its offset, so any of them sets it).
    pub(crate) digit_offsets: Vec<[Option<usize>; 2]>,
}

/// Where a source's section sits in [`CompiledRules::sources`].
pub(crate) fn source_index(source: Source) -> usize {
    Source::ALL
        .iter()
        .position(|s| *s == source)
        .unwrap_or_default()
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

    /// The embedded default rules (the seed's ten indicators and every source's preset),
    /// compiled.
    pub fn default_rules() -> Result<Self, RulesError> {
        Rules::default_rules()?
            .compile()
            .map_err(|e| e.with_origin(DEFAULT_ORIGIN))
    }

    /// These rules with records over `max` bytes dead-lettered as `oversized` (the default is
    /// [`DEFAULT_MAX_RECORD_BYTES`](super::DEFAULT_MAX_RECORD_BYTES)).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// The size above which a record is a dead letter.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The section for records of `source` (`None`: without a source header), if any.
    pub(crate) fn section(&self, source: Option<Source>) -> Option<&Section> {
        match source {
            None => self.seed.as_ref(),
            Some(source) => self
                .sources
                .get(source_index(source))
                .and_then(Option::as_ref),
        }
    }

    /// Whether records of `source` (`None`: without a source header) have rules.
    pub fn has_rules_for(&self, source: Option<Source>) -> bool {
        self.section(source).is_some()
    }

    /// The sources with a section, in [`Source::ALL`] order.
    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        Source::ALL
            .into_iter()
            .filter(|source| self.has_rules_for(Some(*source)))
    }

    /// The indicator names of records of `source` (`None`: without a source header), in the
    /// order they are written; none if that source has no rules.
    pub fn indicators_of(&self, source: Option<Source>) -> impl Iterator<Item = &str> {
        self.section(source)
            .into_iter()
            .flat_map(|section| section.output_keys.iter().take(section.indicator_count))
            .map(|key| &**key)
    }

    /// Every field the transformer adds to a record of `source`: the indicators,
    /// `logwarden_source` (for a source), `@timestamp`, `event_id`.
    pub fn output_fields_of(&self, source: Option<Source>) -> impl Iterator<Item = &str> {
        self.section(source)
            .into_iter()
            .flat_map(|section| section.output_keys.iter())
            .map(|key| &**key)
    }

    /// The indicator names of records without a source header, in the order they are written.
    pub fn indicators(&self) -> impl Iterator<Item = &str> {
        self.indicators_of(None)
    }

    /// Every field the transformer adds to a record without a source header: the indicators,
    /// `@timestamp`, `event_id`.
    pub fn output_fields(&self) -> impl Iterator<Item = &str> {
        self.output_fields_of(None)
    }
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
}
