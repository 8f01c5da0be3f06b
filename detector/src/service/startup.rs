//! Start-up, once the lease is held: the checkpoint is fenced (taken over, so that no earlier
//! holder can save again) and read, then each detector is restored from it when its state was
//! saved for the same spec (a fingerprint match), or else cold-started: a fresh model trained on
//! the last `history` intervals in the events index, scoring from the first interval after them.
//!
//! Every OpenSearch call here waits out an unreachable or overloaded cluster ([`patiently`]) and
//! gives up only on shutdown or a refusal, because a detector that starts without its state would
//! score from nothing. The decisions (restore or not, which history) are pure functions.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use opensearch::OpenSearch;
use pipeline::backoff::{Backoff, Retries};
use pipeline::search::SearchError;
use pipeline::telemetry::Health;
use tokio_util::sync::CancellationToken;

use crate::checkpoints::{self, Version};
use crate::entities::Entities;
use crate::model::{Model, ModelError};
use crate::novelty::Novelty;
use crate::settings::Settings;
use crate::spec::{Aggregation, DetectorSpec, Spec};
use crate::store;
use crate::window::{Interval, Window};

use super::checkpoint::{self as saved_state, DetectorState, Restored};
use super::clock::millis;
use super::error::ServiceError;
use super::live::{Extra, Live};
use super::readiness::OPENSEARCH_CHECK;

/// Retries `step` while OpenSearch is unreachable or overloaded, waiting 200 ms doubling to 5 s
/// (jittered); `None` if shut down first.
pub(super) async fn patiently<T, F, Fut>(
    what: &str,
    health: &Health,
    shutdown: &CancellationToken,
    mut step: F,
) -> Result<Option<T>, SearchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SearchError>>,
{
    let mut retries = Retries::new(Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(5),
    ));
    loop {
        match step().await {
            Ok(value) => {
                health.ready(OPENSEARCH_CHECK);
                return Ok(Some(value));
            }
            Err(err) if err.is_transient() => {
                health.not_ready(OPENSEARCH_CHECK, &err.to_string());
                let delay = retries.next_delay();
                tracing::warn!(%err, retry_in = ?delay, "{what}: waiting for OpenSearch.");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(err) => return Err(err),
        }
    }
}

/// Creates the results template and the checkpoints index unless they exist; `None` if shut
/// down first.
pub(super) async fn prepare_indices(
    client: &OpenSearch,
    spec: &Spec,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<()>, SearchError> {
    patiently("preparing indices", health, shutdown, || async {
        store::put_results_template(client, &spec.results).await?;
        store::ensure_checkpoints_index(client, &spec.checkpoints).await
    })
    .await
}

/// Takes the checkpoint over for this holder (see [`checkpoints::fence`]) and reads it: the
/// saved state (`None` when there is none or it cannot be read) and the version the next save
/// is conditional on; `None` if shut down first.
pub(super) async fn take_over(
    client: &OpenSearch,
    settings: &Settings,
    writer: saved_state::Writer<'_>,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<(Option<Restored>, Version)>, SearchError> {
    let id = settings.part.checkpoint_id();
    let fenced = patiently("taking the checkpoint over", health, shutdown, || {
        checkpoints::fence(
            client,
            (&settings.spec.checkpoints, &id),
            writer.holder,
            writer.generation,
        )
    })
    .await?;
    Ok(fenced.map(|(doc, version)| {
        if doc.saved_at > 0 {
            tracing::info!(saved_at = doc.saved_at, by = %doc.holder, "Checkpoint taken over.");
        }
        (saved_state::restore(&doc), version)
    }))
}

/// Restores a detector from its checkpoint, or trains a fresh one on the index's history;
/// `None` if shut down first. `index` is the detector's place in the spec (it seeds the forest).
pub(super) async fn start_detector(
    client: &OpenSearch,
    settings: &Settings,
    (detector, index): (&DetectorSpec, usize),
    saved: Option<&Restored>,
    now: i64,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<Live>, ServiceError> {
    let spec = &settings.spec;
    let state = saved.and_then(|saved| saved.detector(detector));
    if let Some(live) = restore(state, detector, now, millis(settings.future_tolerance)) {
        return Ok(Some(live));
    }
    let range = history_range(detector, now);
    let history = patiently("reading history", health, shutdown, || {
        store::history(client, &spec.events, detector, range.start, range.end)
    })
    .await?;
    let Some(history) = history else {
        return Ok(None);
    };
    let mut live = train(detector, index, &history, range.end)?;
    for extra in &mut live.extra {
        let view = &extra.view;
        let history = patiently("reading history", health, shutdown, || {
            store::history(client, &spec.events, view, range.start, range.end)
        })
        .await?;
        let Some(history) = history else {
            return Ok(None);
        };
        for interval in &history {
            crate::measure::judge(view, &mut extra.model, interval)?;
        }
    }
    if let Some(novelty) = &mut live.novelty {
        let values = patiently("reading the field's values", health, shutdown, || {
            store::distinct_values(client, &spec.events, detector, range.start, range.end)
        })
        .await?;
        let Some(values) = values else {
            return Ok(None);
        };
        tracing::info!(detector = %detector.name, values = values.len(), "Cold start: the field's usual values learned from the history.");
        novelty.learn(values, range.end);
    }
    tracing::info!(detector = %detector.name, intervals = history.len(), "Cold start: trained on the index's history.");
    Ok(Some(live))
}

/// The detector restored from its saved `state` (one saved for its spec). An open interval
/// beyond `now` plus the future tolerance restarts the window at `now`.
fn restore(
    state: Option<DetectorState>,
    detector: &DetectorSpec,
    now: i64,
    future_tolerance_ms: i64,
) -> Option<Live> {
    let state = state?;
    if state.extra.len() != detector.extra_features.len() {
        return None;
    }
    tracing::info!(detector = %detector.name, seen = state.model.seen(), "Model restored from its checkpoint.");
    let mut window = state.window;
    let mut extra: Vec<Extra> = state
        .extra
        .into_iter()
        .enumerate()
        .filter_map(|(i, saved)| {
            Some(Extra {
                view: detector.extra_view(i)?,
                model: saved.model,
                window: saved.window,
            })
        })
        .collect();
    // A window saved past the trusted horizon (by a version that let a future record move
    // the watermark) would keep the detector blind until that date: start it again now.
    if window
        .next()
        .is_some_and(|next| next > now + future_tolerance_ms)
    {
        tracing::warn!(detector = %detector.name, next = ?window.next(), "The checkpoint's open interval lies in the future; scoring resumes from now.");
        window = Window::new(
            millis(detector.interval),
            millis(detector.window_delay),
            Some(now),
        );
        for extra in &mut extra {
            extra.window = window.clone();
        }
    }
    // A category detector's entities come back with it (a checkpoint from before it had a
    // category has none: they start empty).
    let entities = detector
        .category
        .as_ref()
        .map(|_| state.entities.unwrap_or_default());
    let novelty = (detector.feature.aggregation == Aggregation::NewValues)
        .then(|| state.novelty.unwrap_or_default());
    Some(Live {
        spec: detector.clone(),
        model: state.model,
        window,
        entities,
        novelty,
        extra,
    })
}

/// The intervals a cold start trains on: the last `history` whole intervals that have closed
/// (ended at least `window_delay` before `now`).
fn history_range(detector: &DetectorSpec, now: i64) -> Range<i64> {
    let interval = millis(detector.interval);
    let delay = millis(detector.window_delay);
    let to = Window::new(interval, delay, None).align(now - delay);
    let from = to - interval * i64::try_from(detector.model.history).unwrap_or(0);
    from..to
}

/// A fresh model trained on `history`, scoring from `to` (the end of the history).
fn train(
    detector: &DetectorSpec,
    index: usize,
    history: &[Interval],
    to: i64,
) -> Result<Live, ModelError> {
    let seed = 0x5eed ^ index as u64;
    let mut model = Model::new(&detector.model, detector.min_rise(), seed)?;
    for interval in history {
        crate::measure::judge(detector, &mut model, interval)?;
    }
    Ok(Live {
        spec: detector.clone(),
        extra: Extra::fresh(detector, seed, Some(to))?,
        entities: detector.category.as_ref().map(|_| Entities::new()),
        novelty: (detector.feature.aggregation == Aggregation::NewValues).then(Novelty::new),
        model,
        window: Window::new(
            millis(detector.interval),
            millis(detector.window_delay),
            Some(to),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::live::testing;

    #[test]
    fn a_saved_window_in_the_future_restarts_at_now() -> Result<(), Box<dyn std::error::Error>> {
        let detector = testing::spec("d");
        let state = || -> Result<DetectorState, ModelError> {
            let mut saved = testing::live(detector.clone(), Some(120_000))?;
            saved.model.observe(4.0, None)?;
            saved.model.observe(5.0, None)?;
            Ok(DetectorState {
                model: saved.model,
                window: saved.window,
                entities: None,
                novelty: None,
                extra: Vec::new(),
            })
        };
        let tolerance = 60_000;
        // (state, now): what is restored (seen, next), if anything.
        let cases = [
            (None, 100_000, None),
            (Some(state()?), 100_000, Some((2, Some(120_000)))),
            // At the horizon exactly: still trusted.
            (Some(state()?), 60_000, Some((2, Some(120_000)))),
            // Beyond it: the window starts again at now (aligned), the model is kept.
            (Some(state()?), 59_999, Some((2, Some(0)))),
        ];
        for (state, now, expected) in cases {
            let restored = restore(state, &detector, now, tolerance);
            assert_eq!(
                restored
                    .as_ref()
                    .map(|live| (live.model.seen(), live.window.next())),
                expected,
                "at {now}"
            );
            if let Some(live) = restored {
                assert_eq!(live.spec, detector);
            }
        }
        Ok(())
    }

    #[test]
    fn a_cold_start_trains_on_the_last_closed_intervals() {
        const MINUTE: i64 = 60_000;
        let at = |minute: i64, ms: i64| minute * MINUTE + ms;
        let mut five_seconds = testing::spec("d");
        five_seconds.interval = Duration::from_secs(5);
        five_seconds.window_delay = Duration::ZERO;
        five_seconds.model.history = 12;
        let mut no_history = testing::spec("d");
        no_history.model.history = 0;
        // 1-minute intervals, 10 s delay, 120 intervals of history.
        let default = testing::spec("d");
        let cases = [
            (&default, at(200, 10_000), at(80, 0)..at(200, 0)),
            (&default, at(200, 9_999), at(79, 0)..at(199, 0)),
            (&default, at(200, 59_999), at(80, 0)..at(200, 0)),
            (
                &five_seconds,
                at(200, 7_000),
                at(199, 5_000)..at(200, 5_000),
            ),
            (&no_history, at(200, 30_000), at(200, 0)..at(200, 0)),
        ];
        for (detector, now, expected) in cases {
            assert_eq!(
                history_range(detector, now),
                expected,
                "{detector:?} at {now}"
            );
        }
    }

    #[test]
    fn a_cold_start_scores_from_the_end_of_its_history() -> Result<(), ModelError> {
        let detector = testing::spec("d");
        let history: Vec<Interval> = (0..3)
            .map(|i| Interval {
                start: i * 60_000,
                end: (i + 1) * 60_000,
                value: 1.0,
                events: 1,
            })
            .collect();
        let live = train(&detector, 2, &history, 180_000)?;
        assert_eq!(live.model.seen(), 3);
        assert_eq!(live.window.next(), Some(180_000));
        assert_eq!(live.spec, detector);
        let untrained = train(&detector, 0, &[], 180_000)?;
        assert_eq!(
            (untrained.model.seen(), untrained.window.next()),
            (0, Some(180_000))
        );
        Ok(())
    }
}
