//! The seed's data model as data: for each monitored field, its value set and the two weight
//! vectors the seed's generator drew it with (normal, and anomaly when the field is the target).
//!
//! These tables are the facts the producer must reproduce (the value lists and the weights the
//! seed project's Python generator passed to `random.choices`), so they live here as plain
//! constants in the seed's value order, apart from any sampling code, where a reviewer can
//! compare them line by line with the seed's generator. [`FieldSampler`] turns one table into
//! two pre-built [`WeightedIndex`] distributions, built once per generator and never per record.
//! Weights are `random.choices` weights, not probabilities: they need not sum to 1.

use pipeline::wire::MonitoredField;
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

/// Which weight vector a field is drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The seed's normal weights: known-good values dominate, anomalous ones are rare (0.001).
    Normal,
    /// The seed's anomaly weights, used only for the field that is the anomaly target.
    Anomaly,
}

/// One monitored field as the seed generated it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSpec {
    /// The field.
    pub field: MonitoredField,
    /// Its values, in the seed's order.
    pub values: &'static [&'static str],
    /// Weight of each value in normal mode (same order as `values`).
    pub normal_weights: &'static [f64],
    /// Weight of each value when this field is the anomaly target (same order as `values`).
    pub anomaly_weights: &'static [f64],
    /// The values the seed counts as anomalous (its `B_`/`UNK_`/`uncommon_` indicators).
    pub anomalous: &'static [&'static str],
}

impl FieldSpec {
    /// The weights for `mode`.
    pub fn weights(&self, mode: Mode) -> &'static [f64] {
        match mode {
            Mode::Normal => self.normal_weights,
            Mode::Anomaly => self.anomaly_weights,
        }
    }

    /// The weights for `mode` normalised to probabilities.
    pub fn probabilities(&self, mode: Mode) -> Vec<f64> {
        let weights = self.weights(mode);
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    /// Whether the seed counts `value` as anomalous for this field.
    pub fn is_anomalous(&self, value: &str) -> bool {
        self.anomalous.contains(&value)
    }
}

/// `action`: the WAF's decision; BLOCK is the anomaly.
pub const ACTION: FieldSpec = FieldSpec {
    field: MonitoredField::Action,
    values: &["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"],
    normal_weights: &[0.25, 0.25, 0.25, 0.25, 0.001],
    anomaly_weights: &[0.1, 0.1, 0.1, 0.1, 2.0],
    anomalous: &["BLOCK"],
};

/// `httpSourceName`: the fronting service; `-` (unknown) is the anomaly.
pub const HTTP_SOURCE_NAME: FieldSpec = FieldSpec {
    field: MonitoredField::HttpSourceName,
    values: &["ALB", "APIGW", "APPSYNC", "CF", "-"],
    normal_weights: &[0.25, 0.25, 0.25, 0.25, 0.001],
    anomaly_weights: &[0.1, 0.1, 0.1, 0.1, 2.0],
    anomalous: &["-"],
};

/// `httpStatus`: 4xx and 5xx are the anomaly.
pub const HTTP_STATUS: FieldSpec = FieldSpec {
    field: MonitoredField::HttpStatus,
    values: &["200", "202", "307", "308", "403", "404", "502", "504"],
    normal_weights: &[0.2, 0.2, 0.2, 0.2, 0.001, 0.001, 0.001, 0.001],
    anomaly_weights: &[0.05, 0.05, 0.05, 0.05, 2.0, 2.0, 2.0, 2.0],
    anomalous: &["403", "404", "502", "504"],
};

/// `httpRequest.country`: anything but US, UK, IN is the anomaly.
pub const COUNTRY: FieldSpec = FieldSpec {
    field: MonitoredField::Country,
    values: &["US", "UK", "IN", "XX", "YY", "ZZ", "WW"],
    normal_weights: &[0.33, 0.33, 0.33, 0.001, 0.001, 0.001, 0.001],
    anomaly_weights: &[0.1, 0.05, 0.05, 2.0, 2.0, 2.0, 2.0],
    anomalous: &["XX", "YY", "ZZ", "WW"],
};

/// `httpRequest.httpMethod`: DELETE is the anomaly.
pub const HTTP_METHOD: FieldSpec = FieldSpec {
    field: MonitoredField::HttpMethod,
    values: &["GET", "HEAD", "POST", "DELETE"],
    normal_weights: &[0.33, 0.33, 0.33, 0.001],
    anomaly_weights: &[0.15, 0.15, 0.15, 2.0],
    anomalous: &["DELETE"],
};

/// Every field's spec, in the order of [`MonitoredField::ALL`].
pub const SPECS: [FieldSpec; 5] = [ACTION, HTTP_SOURCE_NAME, HTTP_STATUS, COUNTRY, HTTP_METHOD];

/// The position of `field` in [`MonitoredField::ALL`] and [`SPECS`].
pub const fn position(field: MonitoredField) -> usize {
    match field {
        MonitoredField::Action => 0,
        MonitoredField::HttpSourceName => 1,
        MonitoredField::HttpStatus => 2,
        MonitoredField::Country => 3,
        MonitoredField::HttpMethod => 4,
    }
}

/// The spec of `field`.
pub const fn spec(field: MonitoredField) -> &'static FieldSpec {
    &SPECS[position(field)]
}

/// Builds a [`WeightedIndex`] over weights this crate defines (its constant tables, and the
/// client popularity it computes from constants).
///
/// Never called on input: the weights are non-empty, finite, non-negative and have a positive
/// sum, which the unit tests check by building every one, so the panic is unreachable.
pub(crate) fn constant_weights(weights: &[f64]) -> WeightedIndex<f64> {
    WeightedIndex::new(weights.iter().copied())
        .expect("constant weight tables are valid (checked by model::tests)")
}

/// Draws one field's values with its normal or anomaly weights; both distributions are built
/// once, so a draw is one uniform number and a binary search, whatever the mode. Drawing in
/// either mode consumes the same amount of randomness, so switching one field into anomaly mode
/// leaves every other field's draws unchanged.
#[derive(Debug, Clone)]
pub struct FieldSampler {
    spec: &'static FieldSpec,
    normal: WeightedIndex<f64>,
    anomaly: WeightedIndex<f64>,
}

impl FieldSampler {
    /// The sampler for `field`.
    pub fn new(field: MonitoredField) -> Self {
        let spec = spec(field);
        Self {
            spec,
            normal: constant_weights(spec.normal_weights),
            anomaly: constant_weights(spec.anomaly_weights),
        }
    }

    /// The spec this sampler draws from.
    pub fn spec(&self) -> &'static FieldSpec {
        self.spec
    }

    /// Draws a value with the weights of `mode`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, mode: Mode) -> &'static str {
        let index = match mode {
            Mode::Normal => self.normal.sample(rng),
            Mode::Anomaly => self.anomaly.sample(rng),
        };
        // `WeightedIndex` only returns indices below the number of weights, and every table has
        // as many weights as values (checked by the tests); the fallback is never taken.
        self.spec.values.get(index).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_well_formed() {
        for (spec, field) in SPECS.iter().zip(MonitoredField::ALL) {
            assert_eq!(spec.field, field, "SPECS is in MonitoredField::ALL order");
            assert_eq!(SPECS[position(field)].field, field);
            assert_eq!(spec.values.len(), spec.normal_weights.len(), "{field}");
            assert_eq!(spec.values.len(), spec.anomaly_weights.len(), "{field}");
            for weights in [spec.normal_weights, spec.anomaly_weights] {
                assert!(
                    weights.iter().all(|w| w.is_finite() && *w >= 0.0),
                    "{field}"
                );
                assert!(weights.iter().sum::<f64>() > 0.0, "{field}");
            }
            for bad in spec.anomalous {
                assert!(spec.values.contains(bad), "{field}: {bad}");
            }
            // Building both distributions must not panic.
            let _ = FieldSampler::new(field);
        }
    }

    #[test]
    fn anomalous_values_are_rare_in_normal_mode_and_dominant_in_anomaly_mode() {
        for spec in SPECS {
            let share = |mode| {
                spec.values
                    .iter()
                    .zip(spec.probabilities(mode))
                    .filter(|(value, _)| spec.is_anomalous(value))
                    .map(|(_, p)| p)
                    .sum::<f64>()
            };
            assert!(share(Mode::Normal) < 0.01, "{}", spec.field);
            assert!(share(Mode::Anomaly) > 0.7, "{}", spec.field);
        }
    }
}
