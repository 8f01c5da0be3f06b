//! One detector at work: its spec, its model and its open intervals. Start-up makes it (restored
//! from a checkpoint or trained on history), the loop adds records to its window, scoring closes
//! and scores its intervals, and checkpoints save it. It has a module of its own so that each of
//! those parts takes it from one place instead of from one another.

use crate::entities::Entities;
use crate::model::Model;
use crate::novelty::Novelty;
use crate::spec::DetectorSpec;
use crate::window::Window;

/// A detector at work.
pub(super) struct Live {
    /// What it detects, as declared; its fingerprint stamps its checkpoints.
    pub(super) spec: DetectorSpec,
    /// The forest and thresholding layer that scores each closed interval.
    pub(super) model: Model,
    /// The open intervals, by event time.
    pub(super) window: Window,
    /// A category detector's entities (their open totals and models); `None` otherwise.
    pub(super) entities: Option<Entities>,
    /// A `new_values` detector's known values; `None` otherwise.
    pub(super) novelty: Option<Novelty>,
    /// Its extra features, each with its own model and window (closed with the main one).
    pub(super) extra: Vec<Extra>,
}

/// An extra feature at work: the detector as that feature sees it
/// ([`DetectorSpec::extra_view`]), its model and its open intervals.
pub(crate) struct Extra {
    pub(crate) view: DetectorSpec,
    pub(crate) model: Model,
    pub(crate) window: Window,
}

impl Extra {
    /// Fresh extra features of `spec` (models seeded after the main one's `seed`), their
    /// windows resuming at `resume`.
    pub(crate) fn fresh(
        spec: &DetectorSpec,
        seed: u64,
        resume: Option<i64>,
    ) -> Result<Vec<Self>, crate::model::ModelError> {
        (0..spec.extra_features.len())
            .filter_map(|i| spec.extra_view(i))
            .enumerate()
            .map(|(i, view)| {
                Ok(Self {
                    model: Model::new(
                        &view.model,
                        view.min_rise(),
                        seed.wrapping_add(1 + i as u64),
                    )?,
                    window: Window::new(
                        super::clock::millis(view.interval),
                        super::clock::millis(view.window_delay),
                        resume,
                    ),
                    view,
                })
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Detectors for the service's unit tests.

    use std::time::Duration;

    use super::Live;
    use crate::model::{Model, ModelError};
    use crate::service::clock::millis;
    use crate::spec::{Aggregation, DetectorSpec, Feature, ModelSpec};
    use crate::window::Window;

    /// A `sum` of `UNK_country` per minute, closed 10 s after each minute ends.
    pub(crate) fn spec(name: &str) -> DetectorSpec {
        DetectorSpec {
            name: name.to_owned(),
            feature: Feature {
                field: Some("UNK_country".to_owned()),
                aggregation: Aggregation::Sum,
                filter: None,
                min_count: None,
            },
            extra_features: Vec::new(),
            category: None,
            interval: Duration::from_secs(60),
            window_delay: Duration::from_secs(10),
            model: ModelSpec::default(),
            ground_truth: None,
            no_data_after: crate::spec::DEFAULT_NO_DATA_AFTER,
        }
    }

    /// `spec` at work with a fresh model, scoring from `resume`.
    pub(in crate::service) fn live(
        spec: DetectorSpec,
        resume: Option<i64>,
    ) -> Result<Live, ModelError> {
        let window = Window::new(millis(spec.interval), millis(spec.window_delay), resume);
        Ok(Live {
            model: Model::new(&spec.model, spec.min_rise(), 1)?,
            entities: spec
                .category
                .as_ref()
                .map(|_| crate::entities::Entities::new()),
            extra: super::Extra::fresh(&spec, 1, resume)?,
            novelty: (spec.feature.aggregation == crate::spec::Aggregation::NewValues)
                .then(crate::novelty::Novelty::new),
            spec,
            window,
        })
    }
}
