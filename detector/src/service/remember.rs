//! The loop's side of [`crate::remembered`]: before intervals close, the stored models of the
//! entities about to be judged without one are looked up and restored; after they closed, the
//! models they evicted are stored; once an hour, models stored more than
//! [`remembered::REMEMBER`] ago are deleted. None of it stops scoring: a failure is logged and
//! the entities concerned start from the population's prior.

use std::time::{Duration, Instant};

use crate::remembered;

use super::checkpoint::fingerprint;
use super::clock::{millis, now_ms};
use super::stage::Stage;

/// The most entities looked up at once (per detector and round of closing).
const MAX_LOOKUP: usize = 10_000;

/// How often stored models are expired.
const FORGET_EVERY: Duration = Duration::from_secs(3_600);

impl Stage<'_> {
    /// Restores the stored models of the entities that the intervals closing at `watermark`
    /// will judge and that have no model.
    pub(super) async fn recall_entities(&mut self, watermark: i64) {
        let index = self.settings.spec.checkpoints.as_str();
        for live in &mut self.detectors {
            let Some(entities) = &mut live.entities else {
                continue;
            };
            let limit = watermark - millis(live.spec.window_delay);
            let mut unknown = entities.unknown(limit, millis(live.spec.interval));
            if unknown.is_empty() {
                continue;
            }
            unknown.truncate(MAX_LOOKUP);
            let spec = remembered::spec_hash(&fingerprint(&live.spec));
            match remembered::load(self.client, index, (&live.spec.name, &spec), &unknown).await {
                Ok(found) => {
                    let seen_at = live.window.next().unwrap_or(limit);
                    if !found.is_empty() {
                        tracing::debug!(detector = %live.spec.name, restored = found.len(), looked_up = unknown.len(), "Entity models restored.");
                    }
                    entities.restore(found, seen_at);
                }
                Err(err) => {
                    tracing::warn!(detector = %live.spec.name, %err, entities = unknown.len(), "Looking up stored entity models failed: these entities start from the population's prior.");
                }
            }
        }
    }

    /// Stores the models the last intervals evicted (while this replica holds the lease).
    pub(super) async fn store_evicted_entities(&mut self) {
        let index = self.settings.spec.checkpoints.as_str();
        for live in &mut self.detectors {
            let Some(entities) = &mut live.entities else {
                continue;
            };
            let evicted = entities.take_evicted();
            if evicted.is_empty() || !self.tenure.held() {
                continue;
            }
            let spec = remembered::spec_hash(&fingerprint(&live.spec));
            if let Err(err) = remembered::store(
                self.client,
                index,
                (&live.spec.name, &spec),
                &evicted,
                now_ms(),
            )
            .await
            {
                tracing::warn!(detector = %live.spec.name, %err, models = evicted.len(), "Storing evicted entity models failed: if these entities come back they start from the population's prior.");
            }
        }
    }

    /// Deletes models stored more than [`remembered::REMEMBER`] ago, at most once an hour.
    pub(super) async fn forget_old_entities(&mut self) {
        let due = self
            .last_forget
            .is_none_or(|last| last.elapsed() >= FORGET_EVERY);
        if !due || !self.detectors.iter().any(|d| d.entities.is_some()) || !self.tenure.held() {
            return;
        }
        self.last_forget = Some(Instant::now());
        let before = now_ms() - millis(remembered::REMEMBER);
        match remembered::forget(self.client, &self.settings.spec.checkpoints, before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                deleted,
                "Entity models stored over a week ago were forgotten."
            ),
            Err(err) => {
                tracing::warn!(%err, "Forgetting old entity models failed; the next hour retries.")
            }
        }
    }
}
