//! What a checkpoint holds and how it is read back: the consumer's positions, the monitors'
//! state, the ids seen in open intervals, and every detector's model and window (stamped with a
//! fingerprint of its spec, so the state of another spec is never restored), all in one
//! document ([`crate::checkpoints`]) written in one request. A restore therefore takes every
//! part from the same moment, never positions from one checkpoint and models from another.
//! Building and reading are pure; saving is the loop's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::Monitors;
use crate::checkpoints::CheckpointDoc;
use crate::dedupe::Seen;
use crate::entities::Entities;
use crate::model::Model;
use crate::novelty::Novelty;
use crate::spec::DetectorSpec;
use crate::window::Window;

use super::live::Live;

/// A detector's saved state, as restored.
#[derive(Serialize, Deserialize)]
pub(super) struct DetectorState {
    pub(super) model: Model,
    pub(super) window: Window,
    /// A category detector's entities.
    #[serde(default)]
    pub(super) entities: Option<Entities>,
    /// A `new_values` detector's known values.
    #[serde(default)]
    pub(super) novelty: Option<Novelty>,
    /// Its extra features' models and windows, in the spec's order.
    #[serde(default)]
    pub(super) extra: Vec<ExtraState>,
}

/// An extra feature's saved state.
#[derive(Serialize, Deserialize)]
pub(super) struct ExtraState {
    pub(super) model: Model,
    pub(super) window: Window,
}

/// An extra feature's state, as saved.
#[derive(Serialize)]
struct ExtraStateRef<'a> {
    model: &'a Model,
    window: &'a Window,
}

/// A detector's state, as saved (borrowed: saving copies nothing but the JSON).
#[derive(Serialize)]
struct DetectorStateRef<'a> {
    model: &'a Model,
    window: &'a Window,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<&'a Entities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    novelty: Option<&'a Novelty>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra: Vec<ExtraStateRef<'a>>,
}

/// A detector in the checkpoint: its spec's fingerprint and its state.
#[derive(Serialize, Deserialize)]
struct SavedDetector<S> {
    spec: String,
    state: S,
}

/// Everything saved, as written.
#[derive(Serialize)]
struct StateRef<'a> {
    topic: &'a str,
    positions: &'a BTreeMap<i32, i64>,
    monitors: Value,
    seen: &'a Seen,
    detectors: BTreeMap<&'a str, SavedDetector<DetectorStateRef<'a>>>,
}

/// Everything saved, as restored. A detector's state is read when it is restored, so one that
/// cannot be read (or was saved for another spec) is cold-started alone.
#[derive(Deserialize)]
pub(super) struct Restored {
    /// The topic `positions` are in (`enriched` when a checkpoint does not say: it was saved
    /// before `projected` existed).
    #[serde(default)]
    pub(super) topic: Option<String>,
    /// The next offset to read per partition.
    pub(super) positions: BTreeMap<i32, i64>,
    /// The monitors' state ([`Monitors::state`]).
    pub(super) monitors: Value,
    /// Ids seen in open intervals.
    pub(super) seen: Seen,
    detectors: BTreeMap<String, SavedDetector<Value>>,
}

impl Restored {
    /// The saved state of `detector`, if it was saved for the same spec and can be read.
    pub(super) fn detector(&self, detector: &DetectorSpec) -> Option<DetectorState> {
        let saved = self.detectors.get(&detector.name)?;
        if saved.spec != fingerprint(detector) {
            return None;
        }
        serde_json::from_value(saved.state.clone()).ok()
    }
}

/// A stable fingerprint of a detector's spec: a checkpoint of another spec is not restored.
pub(super) fn fingerprint(spec: &DetectorSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

/// Who writes a checkpoint: the lease holder's name and generation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Writer<'a> {
    pub(super) holder: &'a str,
    pub(super) generation: i64,
}

/// The checkpoint document of this moment.
pub(super) fn build(
    writer: Writer<'_>,
    detectors: &[Live],
    (topic, positions): (&str, &BTreeMap<i32, i64>),
    monitors: &Monitors,
    seen: &Seen,
    saved_at: i64,
) -> Result<CheckpointDoc, serde_json::Error> {
    let state = StateRef {
        topic,
        positions,
        monitors: monitors.state(),
        seen,
        detectors: detectors
            .iter()
            .map(|live| {
                let saved = SavedDetector {
                    spec: fingerprint(&live.spec),
                    state: DetectorStateRef {
                        model: &live.model,
                        window: &live.window,
                        entities: live.entities.as_ref(),
                        novelty: live.novelty.as_ref(),
                        extra: live
                            .extra
                            .iter()
                            .map(|e| ExtraStateRef {
                                model: &e.model,
                                window: &e.window,
                            })
                            .collect(),
                    },
                };
                (live.spec.name.as_str(), saved)
            })
            .collect(),
    };
    Ok(CheckpointDoc {
        holder: writer.holder.to_owned(),
        generation: writer.generation,
        saved_at,
        state: Some(serde_json::to_string(&state)?),
    })
}

/// The state in `doc`; `None` when there is none yet or it cannot be read (then every detector
/// starts cold and every partition by time: nothing is taken from a half-readable checkpoint).
pub(super) fn restore(doc: &CheckpointDoc) -> Option<Restored> {
    let text = doc.state.as_deref()?;
    match serde_json::from_str(text) {
        Ok(restored) => Some(restored),
        Err(err) => {
            tracing::warn!(%err, saved_at = doc.saved_at, "The checkpoint cannot be read; starting cold.");
            None
        }
    }
}

#[cfg(test)]
mod tests;
