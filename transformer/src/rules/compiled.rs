//! [`CompiledRules`]: the rules in the form the transform runs, built once by
//! [`Rules::compile`] and shared read-only by every record. The per-record logic that uses it
//! lives in `crate::transform`; what it monitors, in words, in `summary`.

use std::path::Path;

use super::matcher::CompiledField;
use super::tree::Node;
use super::{DEFAULT_ORIGIN, Rules, RulesError};

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
    /// [`DEFAULT_MAX_RECORD_BYTES`](super::DEFAULT_MAX_RECORD_BYTES)).
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
