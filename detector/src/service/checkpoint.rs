//! Checkpoints: what a restart needs to resume exactly where this run left off. One document per
//! detector (its model and open intervals, stamped with a fingerprint of its spec so that the
//! state of another spec is never restored) and one for the stream (`_stream`: the consumer's
//! positions and the monitors' episodes). Building them is pure; saving stops at the first
//! failure, and the next checkpoint tries again.

use std::collections::BTreeMap;

use opensearch::OpenSearch;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::Monitors;
use crate::model::Model;
use crate::spec::DetectorSpec;
use crate::store::{self, Checkpoint};
use crate::window::Window;

use super::live::Live;

/// The checkpoint document holding stream positions and monitor episodes.
pub(super) const STREAM_CHECKPOINT: &str = "_stream";

/// A detector's saved state, as restored.
#[derive(Serialize, Deserialize)]
pub(super) struct DetectorState {
    pub(super) model: Model,
    pub(super) window: Window,
}

/// A detector's state, as saved (borrowed: saving copies nothing but the JSON).
#[derive(Serialize)]
struct DetectorStateRef<'a> {
    model: &'a Model,
    window: &'a Window,
}

/// Where the stream was: the next offset to read per partition, and the monitors' episodes.
#[derive(Serialize, Deserialize)]
pub(super) struct StreamState {
    pub(super) positions: BTreeMap<i32, i64>,
    pub(super) monitors: Value,
}

/// A stable fingerprint of a detector's spec: a checkpoint of another spec is not restored.
pub(super) fn fingerprint(spec: &DetectorSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

/// The consumer's next offset per partition (partitions without one yet are left out).
pub(super) fn positions(consumer: &super::assign::DetectorConsumer) -> BTreeMap<i32, i64> {
    consumer
        .position()
        .map(|list| {
            list.elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The checkpoints to save: one per detector, then the stream's when any position is known.
pub(super) fn build(
    detectors: &[Live],
    positions: BTreeMap<i32, i64>,
    monitors: &Monitors,
    saved_at: i64,
) -> Vec<Checkpoint> {
    let mut checkpoints: Vec<Checkpoint> = detectors
        .iter()
        .map(|live| Checkpoint {
            detector: live.spec.name.clone(),
            spec: fingerprint(&live.spec),
            saved_at,
            state: serde_json::to_string(&DetectorStateRef {
                model: &live.model,
                window: &live.window,
            })
            .unwrap_or_default(),
        })
        .collect();
    if !positions.is_empty() {
        checkpoints.push(Checkpoint {
            detector: STREAM_CHECKPOINT.to_owned(),
            spec: String::new(),
            saved_at,
            state: serde_json::to_string(&StreamState {
                positions,
                monitors: monitors.state(),
            })
            .unwrap_or_default(),
        });
    }
    checkpoints
}

/// Saves `checkpoints` in order; `false` (logged) at the first that fails.
pub(super) async fn save(client: &OpenSearch, index: &str, checkpoints: &[Checkpoint]) -> bool {
    for checkpoint in checkpoints {
        if let Err(err) = store::save_checkpoint(client, index, checkpoint).await {
            tracing::warn!(%err, detector = %checkpoint.detector, "Saving a checkpoint failed; the next one retries.");
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::live::testing;
    use crate::spec::{Filter, Spec};

    #[test]
    fn the_fingerprint_changes_with_what_the_model_was_built_for() {
        let base = testing::spec("d");
        let same = fingerprint(&base);
        assert_eq!(fingerprint(&base.clone()), same);
        let mut labelled = base.clone();
        labelled.ground_truth = Some("country".to_owned());
        assert_eq!(
            fingerprint(&labelled),
            same,
            "ground truth is for evaluation only"
        );

        let mut renamed = base.clone();
        renamed.name = "e".to_owned();
        let mut longer = base.clone();
        longer.interval = Duration::from_secs(120);
        let mut later = base.clone();
        later.window_delay = Duration::from_secs(30);
        let mut other_field = base.clone();
        other_field.feature.field = Some("B_action".to_owned());
        let mut filtered = base.clone();
        filtered.feature.filter = Some(Filter {
            field: "httpRequest.country".to_owned(),
            value: serde_json::json!("XX"),
        });
        let mut bigger = base.clone();
        bigger.model.trees = 100;
        for changed in [renamed, longer, later, other_field, filtered, bigger] {
            assert_ne!(fingerprint(&changed), same, "{changed:?}");
        }
    }

    #[test]
    fn each_detector_and_the_stream_are_saved() -> Result<(), Box<dyn std::error::Error>> {
        let mut first = testing::live(testing::spec("first"), Some(60_000))?;
        first.model.observe(3.0)?;
        assert!(first.window.add(61_000, 2.0));
        let second = testing::live(testing::spec("second"), None)?;
        let detectors = [first, second];
        let monitors = Monitors::new(&Spec::default_spec()?);

        let saved = build(&detectors, BTreeMap::new(), &monitors, 42);
        let names: Vec<_> = saved
            .iter()
            .map(|c| (c.detector.as_str(), c.saved_at))
            .collect();
        assert_eq!(
            names,
            [("first", 42), ("second", 42)],
            "no positions, no stream checkpoint"
        );
        for (checkpoint, live) in saved.iter().zip(&detectors) {
            assert_eq!(checkpoint.spec, fingerprint(&live.spec));
            let restored: DetectorState = serde_json::from_str(&checkpoint.state)?;
            assert_eq!(restored.model.seen(), live.model.seen());
            assert_eq!(restored.window.next(), live.window.next());
        }
        let mut restored: DetectorState = serde_json::from_str(&saved[0].state)?;
        let closed = restored.window.close(200_000);
        assert_eq!(
            (closed[0].start, closed[0].value, closed[0].events),
            (60_000, 2.0, 1)
        );

        let positions = BTreeMap::from([(0, 5), (2, 9)]);
        let saved = build(&detectors, positions.clone(), &monitors, 43);
        assert_eq!(saved.len(), 3);
        let stream = &saved[2];
        assert_eq!(
            (
                stream.detector.as_str(),
                stream.spec.as_str(),
                stream.saved_at
            ),
            (STREAM_CHECKPOINT, "", 43)
        );
        let state: StreamState = serde_json::from_str(&stream.state)?;
        assert_eq!(state.positions, positions);
        assert_eq!(state.monitors, monitors.state());
        Ok(())
    }
}
