//! One detector's model: a random cut forest (the algorithm OpenSearch's anomaly-detection plugin
//! uses, from the `krcf` crate, a port of AWS's reference library) with a thresholding layer of
//! our own that turns the forest's raw score into an anomaly grade and a confidence.
//!
//! Why a layer of our own: measured on a seed-like per-minute count series (240 normal minutes at a
//! Poisson mean of 0.3, a 5-minute campaign at 25–40 a minute, an identical campaign 30 minutes
//! later, a one-minute spike of 15; shingle 8, 50 trees, sample 256, 20 seeds), a forest alone
//! (like the plugin) flags only the first interval or two of a sustained shift, never a repeat of
//! an earlier one (its points are still in the sample), and misses single spikes; a rule layer of
//! this shape on top of it flagged every campaign minute, the repeat and the spike, with no false
//! flag over the 20 seeds. So an interval is anomalous when any of these holds, each judged against
//! a **baseline** (mean and spread of the last `baseline` normal intervals, frozen while an episode
//! lasts):
//! - **level**: the value rises above the baseline by at least `max(6σ, 2·min_rise)`;
//! - **forest**: the forest's score is far above its usual scores (mean + 3σ of the baseline's
//!   scores, and above 1) and the value is at least `min_rise` above the baseline (a rise, not a
//!   dip: the features are counts of bad events);
//! - **episode**: an episode is open and the value stays at least `max(3σ, min_rise)` above the
//!   baseline, so a sustained anomaly is flagged for as long as it lasts.
//!
//! Grade: `1 − exp(−rise / max(6σ, 2·min_rise))` for anomalous intervals (0.39 at `min_rise`
//! above a flat baseline, 0.63 at the level threshold, near 1 far above), else 0. Confidence: the
//! share of the baseline window filled with observed intervals (1 once `baseline` intervals were
//! seen, e.g. from history at a cold start), 0 until the forest can score at all.

use std::collections::VecDeque;

use krcf::{RandomCutForest, RandomCutForestOptions};
use serde::{Deserialize, Serialize};

use crate::spec::ModelSpec;

/// What the model says about one interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The forest's raw anomaly score (0 until it can score).
    pub score: f64,
    /// 0 (normal) to 1.
    pub grade: f64,
    /// 0 to 1: how much data the judgement rests on.
    pub confidence: f64,
    /// The baseline mean: what the value was expected to be.
    pub expected: f64,
    /// Which rule flagged it, if any.
    pub rule: Option<Rule>,
}

/// Which rule flagged an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Far above the baseline.
    Level,
    /// The forest found it unusual, and it is a real rise.
    Forest,
    /// An episode goes on.
    Episode,
}

/// Why a model could not be built or used.
#[derive(Debug, thiserror::Error)]
#[error("random cut forest: {0}")]
pub struct ModelError(String);

/// A detector's model; serializable as a whole, for checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    settings: ModelSettings,
    forest: RandomCutForest,
    /// Values of the last `baseline` normal intervals.
    values: VecDeque<f64>,
    /// Forest scores of the same intervals.
    scores: VecDeque<f64>,
    /// Whether an episode is open.
    episode: bool,
    /// Intervals seen.
    seen: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct ModelSettings {
    shingle_size: usize,
    baseline: usize,
    min_rise: f64,
}

/// Mean and standard deviation.
fn spread(values: &VecDeque<f64>) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

impl Model {
    /// A fresh model; `seed` makes the forest reproducible.
    pub fn new(spec: &ModelSpec, seed: u64) -> Result<Self, ModelError> {
        let forest = RandomCutForest::new(RandomCutForestOptions {
            dimensions: 1,
            shingle_size: spec.shingle_size,
            num_trees: Some(spec.trees),
            sample_size: Some(spec.sample_size),
            output_after: Some(spec.shingle_size.max(32).min(spec.sample_size)),
            random_seed: Some(seed),
            internal_shingling: Some(true),
            ..Default::default()
        })
        .map_err(|err| ModelError(format!("{err:?}")))?;
        Ok(Self {
            settings: ModelSettings {
                shingle_size: spec.shingle_size,
                baseline: spec.baseline,
                min_rise: spec.min_rise,
            },
            forest,
            values: VecDeque::with_capacity(spec.baseline + 1),
            scores: VecDeque::with_capacity(spec.baseline + 1),
            episode: false,
            seen: 0,
        })
    }

    /// Intervals seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether an anomaly episode is open.
    pub fn in_episode(&self) -> bool {
        self.episode
    }

    /// Scores the next interval's value, then learns it.
    pub fn observe(&mut self, value: f64) -> Result<Scored, ModelError> {
        let point = [value as f32];
        let score = if self.forest.is_output_ready() {
            self.forest
                .score(&point)
                .map_err(|err| ModelError(format!("{err:?}")))?
        } else {
            0.0
        };
        self.forest
            .update(&point)
            .map_err(|err| ModelError(format!("{err:?}")))?;
        self.seen += 1;

        let (mean, sigma) = spread(&self.values);
        let (score_mean, score_sigma) = spread(&self.scores);
        let min_rise = self.settings.min_rise;
        let rise = value - mean;
        let level_step = (6.0 * sigma).max(2.0 * min_rise);
        let warm = self.values.len() >= self.settings.shingle_size.max(2);
        let rule = if !warm {
            None
        } else if rise >= level_step {
            Some(Rule::Level)
        } else if self.forest.is_output_ready()
            && score > 1.0
            && score > score_mean + 3.0 * score_sigma
            && rise >= min_rise
        {
            Some(Rule::Forest)
        } else if self.episode && rise >= (3.0 * sigma).max(min_rise) {
            Some(Rule::Episode)
        } else {
            None
        };
        let grade = match rule {
            Some(_) => 1.0 - (-rise / level_step).exp(),
            None => 0.0,
        };
        self.episode = rule.is_some();
        if !self.episode {
            // Only normal intervals shape the baseline: an anomaly must not raise the bar for
            // its own repeat.
            self.values.push_back(value);
            self.scores.push_back(score);
            while self.values.len() > self.settings.baseline {
                self.values.pop_front();
                self.scores.pop_front();
            }
        }
        let confidence = if self.forest.is_output_ready() || warm {
            (self.values.len() as f64 / self.settings.baseline as f64).min(1.0)
        } else {
            0.0
        };
        Ok(Scored {
            score,
            grade,
            confidence,
            expected: mean,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A seed-like series: mostly zeros and ones (a rare bad indicator per interval).
    fn quiet(rng: &mut impl Rng) -> f64 {
        f64::from(u8::from(rng.random_bool(0.25)))
    }

    fn model() -> Model {
        Model::new(&ModelSpec::default(), 7).expect("model")
    }

    #[test]
    fn a_sustained_shift_is_flagged_for_its_whole_length_and_its_repeat_too() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut model = model();
        let mut false_flags = 0;
        for _ in 0..240 {
            let scored = model.observe(quiet(&mut rng)).expect("scored");
            if scored.grade > 0.0 {
                false_flags += 1;
            }
        }
        assert!(
            false_flags <= 1,
            "{false_flags} false flags in 240 quiet intervals"
        );
        for campaign in 0..2 {
            for minute in 0..5 {
                let value = 25.0 + f64::from(rng.random_range(0..15));
                let scored = model.observe(value).expect("scored");
                assert!(
                    scored.grade > 0.3,
                    "campaign {campaign} minute {minute}: {scored:?}"
                );
                assert!(scored.confidence > 0.99);
            }
            for _ in 0..30 {
                model.observe(quiet(&mut rng)).expect("scored");
            }
            assert!(
                !model.in_episode(),
                "the episode ends when the campaign does"
            );
        }
        let spike = model.observe(15.0).expect("scored");
        assert!(spike.grade > 0.0, "a one-interval spike: {spike:?}");
    }

    #[test]
    fn confidence_grows_with_data_and_nothing_fires_before_warm_up() {
        let mut model = model();
        let first = model.observe(100.0).expect("scored");
        assert_eq!(first.grade, 0.0);
        assert_eq!(first.confidence, 0.0);
        let mut last = first;
        for _ in 0..30 {
            last = model.observe(1.0).expect("scored");
        }
        assert!(last.confidence > 0.4 && last.confidence < 0.6, "{last:?}");
        for _ in 0..40 {
            last = model.observe(1.0).expect("scored");
        }
        assert_eq!(last.confidence, 1.0);
        assert!((last.expected - 1.0).abs() < 0.5);
    }

    #[test]
    fn a_model_survives_a_checkpoint() {
        let mut model = model();
        for i in 0..100 {
            model.observe(f64::from(i % 3)).expect("scored");
        }
        let saved = serde_json::to_vec(&model).expect("serializes");
        let mut restored: Model = serde_json::from_slice(&saved).expect("deserializes");
        let a = model.observe(40.0).expect("scored");
        let b = restored.observe(40.0).expect("scored");
        assert_eq!(a, b, "the restored model judges exactly as the original");
        assert!(a.grade > 0.5);
    }
}
