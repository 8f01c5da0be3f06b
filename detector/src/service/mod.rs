//! The detector as a service: reads `enriched`, aggregates each detector's feature per interval
//! by event time, scores each closed interval, writes every result to the results index and the
//! anomalous ones to `anomalies`, and hands each result to the monitors ([`crate::alert::Alerting`]),
//! whose outbox it checkpoints and whose channel workers report deliveries back to this loop.
//!
//! Start-up, per detector: restore its checkpoint (model, open intervals, stream positions) if
//! one was saved for the same detector spec; otherwise a cold start: train a fresh model on the
//! last `history` intervals in the events index (a date histogram), then score from the first
//! interval after them. A checkpoint is saved every `checkpoint_ms` and at shutdown.
//!
//! One active instance per shard: a session reads every partition of `enriched` itself
//! (assigned, not through a consumer group), because each interval needs all of its events; its
//! positions are part of its checkpoint, so a restart resumes exactly where the saved state left
//! off. The spec's detectors are split into `detector.shards` shards ([`crate::shards`], 1 by
//! default), each with its own lease ([`crate::lease`]) and checkpoint; a replica runs a session
//! per shard it holds and takes or hands back shards to hold its fair share of them among the
//! live replicas (`share`). A new holder fences and restores the shard's latest checkpoint and
//! scores; another replica takes over when it stops. A holder that loses a lease (frozen past
//! it, or cut off from OpenSearch) ends that session before anything else goes out.

//! This module is the session and what ties the parts together; each job has its own module:
//! `share` (which shards this replica holds, taking their leases), `tenure` (renewing it, and whether it is still held),
//! `startup` (fence, restore or cold start), `assign` (partitions), `stage` (the loop's steps,
//! reading records through [`crate::features::Plan`]),
//! `scoring` (closed intervals to results),
//! `outputs` (`anomalies` and `dead-letter`), `readers` (with `projected`, when a partition at
//! its end is caught up), `results` (the results index), `checkpoint` (what
//! a checkpoint holds), `remember` (evicted entity models stored and restored), `no_data` (detectors without records, on `/readyz` and a gauge) and
//! `metrics`.
//! The watermark is [`crate::event_time::EventClock`]'s: the loop feeds it records and partition
//! ends, and asks it when to close intervals.

mod assign;
mod checkpoint;
mod clock;
mod error;
pub(crate) mod live;
mod metrics;
mod no_data;
mod outputs;
mod readers;
mod readiness;
mod remember;
mod results;
pub(crate) mod scoring;
mod share;
mod stage;
mod startup;
mod tenure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opensearch::OpenSearch;
use pipeline::search;
use pipeline::service::Service;
use pipeline::telemetry::Health;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::alert::{self, Alerting};
use crate::dedupe::Seen;
use crate::event_time::EventClock;
use crate::features::Plan;
use crate::page::Board;
use crate::projection::Columns;
use crate::settings::{Input, Settings};

pub use error::ServiceError;
pub use metrics::Metrics;
pub use readiness::{LEASE_CHECK, NO_DATA_NOTE, OPENSEARCH_CHECK, no_data_note};

use checkpoint::Writer;
use clock::{millis, now_ms};
use outputs::Outputs;
use outputs::Stopped;
use results::Unwritten;
use stage::Stage;
use tenure::Tenure;

/// What a session's OpenSearch calls wait at most: half the lease (and at most 30 s), so that no
/// single call can outlive it.
fn request_timeout(lease_ttl: Duration) -> Duration {
    (lease_ttl / 2).min(Duration::from_secs(30))
}

/// Runs the detector until the shutdown token is cancelled: scoring the shards whose leases it
/// holds ([`share`]; with one shard, on standby until it holds the lease), each until it is
/// handed back, stops, or loses its lease.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    health.register(OPENSEARCH_CHECK, "connecting");
    health.inform(NO_DATA_NOTE, "none");
    let shutdown = service.shutdown.clone();
    // Refuse unusable channels at start-up, not when the lease is taken.
    alert::targets(&settings.spec.channels).map_err(ServiceError::Channels)?;
    let client = search::client(&settings.opensearch, request_timeout(settings.lease_ttl))?;
    let board = Board::new(
        &settings.spec,
        &settings.instance_id,
        health.clone(),
        metrics.checkpoint_age.clone(),
    );
    service.telemetry.mount(board.routes());
    if startup::prepare_indices(&client, &settings.spec, &health, &shutdown)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let shared = Arc::new(share::Shared {
        client,
        health,
        metrics,
        board,
    });
    share::run(&settings, shared, &shutdown).await
}

/// How a session ended.
enum Ended {
    /// The shutdown token was cancelled (the state is checkpointed and the lease released).
    Shutdown,
    /// Another replica holds the lease now: nothing more was written.
    LeaseLost,
}

/// What every session uses.
struct Context<'a> {
    settings: &'a Settings,
    client: &'a OpenSearch,
    health: &'a Health,
    metrics: &'a Metrics,
    shutdown: &'a CancellationToken,
    /// What the live page shows.
    board: &'a Board,
}

impl Context<'_> {
    /// Scores this shard (`settings.part`, its part of the spec) while `tenure` holds its lease:
    /// fences and restores its checkpoint (or starts cold), assigns the partitions, then runs
    /// the loop. `shutdown` ends it gracefully (a shutdown or a hand-back).
    async fn session(&self, tenure: &Tenure) -> Result<Ended, ServiceError> {
        let Context {
            settings,
            client,
            health,
            metrics,
            shutdown,
            board,
        } = *self;
        let spec = &settings.spec;
        let writer = Writer {
            holder: tenure.holder(),
            generation: tenure.generation(),
        };
        let Some((saved, version)) =
            startup::take_over(client, settings, writer, health, shutdown).await?
        else {
            return Ok(Ended::Shutdown);
        };
        let now = now_ms();
        let mut detectors = Vec::with_capacity(spec.detectors.len());
        for (i, detector) in spec.detectors.iter().enumerate() {
            let Some(live) = startup::start_detector(
                client,
                settings,
                (detector, i),
                saved.as_ref(),
                now,
                health,
                shutdown,
            )
            .await?
            else {
                return Ok(Ended::Shutdown);
            };
            detectors.push(live);
        }
        let bucket = detectors
            .iter()
            .map(|d| d.window.interval_ms())
            .min()
            .unwrap_or(60_000);
        let mut seen = Seen::new(bucket);
        let mut positions = None;
        let mut saved_monitors = None;
        if let Some(saved) = saved {
            saved_monitors = Some(saved.monitors);
            if saved.seen.bucket_ms() == bucket {
                seen = saved.seen;
            }
            let topic = saved.topic.as_deref();
            let topic = topic.unwrap_or(&settings.kafka.topics.enriched);
            if topic == settings.input_topic() {
                positions = Some(saved.positions);
            } else {
                // Offsets in another topic: read by time; the ids of the records counted in
                // open intervals (`seen`) keep them from counting twice.
                tracing::warn!(
                    saved = topic,
                    input = settings.input_topic(),
                    "The checkpoint's positions are in another topic (detector.input changed): every partition starts by time."
                );
            }
        }
        let assigned = assign::assign(
            settings,
            positions.as_ref(),
            &detectors,
            metrics.lag.clone(),
        )?;
        let producer: FutureProducer = settings
            .kafka
            .producer_config("logwarden-detector")
            .create()
            .map_err(ServiceError::Client)?;
        let session = tenure.lost();
        let targets = alert::targets(&spec.channels).map_err(ServiceError::Channels)?;
        // Restores episodes and the outbox; the channel workers re-send what is pending.
        let alerts = Alerting::start(
            spec,
            saved_monitors.as_ref(),
            targets,
            metrics.delivery.clone(),
        )
        // Each delivery is recorded (best-effort) for `evaluate`'s time to delivery.
        .with_log(alert::DeliveryLog::start(
            client.clone(),
            spec.alerts.clone(),
        ));
        tracing::info!(
            shard = %settings.part,
            detectors = detectors.len(),
            monitors = spec.monitors.len(),
            input = %settings.input_topic(),
            results = %spec.results,
            generation = tenure.generation(),
            "Detecting."
        );
        // Each detector, then its extra features seen as detectors (the order `Stage::take`
        // reads them in).
        let views: Vec<_> = (detectors.iter())
            .flat_map(|live| std::iter::once(&live.spec).chain(live.extra.iter().map(|e| &e.view)))
            .cloned()
            .collect();
        let plan = Arc::new(Plan::new(&views));
        let columns = (settings.input == Input::Projected).then(|| Columns::new(&views));
        let mut stage = Stage {
            settings,
            client,
            health,
            metrics,
            board,
            tenure,
            assigned: &assigned,
            outputs: Outputs::new(producer, &settings.kafka.topics, metrics, session.clone()),
            detectors,
            plan,
            columns,
            alerts,
            checkpoint_soon: false,
            clock: EventClock::new(
                assigned.partitions.clone(),
                millis(settings.future_tolerance),
            ),
            seen,
            positions: assigned.starts.clone(),
            version,
            last_future_report: None,
            unwritten: Unwritten::default(),
            last_checkpoint: Instant::now(),
            last_forget: None,
        };
        let stopped = stage.run(&session).await;
        finish(stage, stopped, shutdown, tenure).await
    }
}

/// Ends a session whose loop ended (`stopped`).
async fn finish(
    mut stage: Stage<'_>,
    stopped: Result<(), Stopped>,
    shutdown: &CancellationToken,
    tenure: &Tenure,
) -> Result<Ended, ServiceError> {
    if shutdown.is_cancelled() && tenure.held() {
        // Shutdown or hand-back: score what closed, give pending alerts a moment to go out
        // (what does not stays pending in the checkpoint), save.
        let _ = stage.close_intervals(None).await;
        stage.alerts.drain(alert::SHUTDOWN_DRAIN).await;
        let _ = stage.checkpoint().await;
    }
    // This shard's entities leave this replica's count (whoever takes the shard over counts
    // them).
    for live in &mut stage.detectors {
        if let Some(entities) = live.entities.as_mut() {
            stage.metrics.entities(&live.spec.name, entities.withdraw());
        }
    }
    // Nothing more goes out: not even the alerts in flight (the next holder has them).
    stage.alerts.stop().await;
    if shutdown.is_cancelled() {
        return Ok(Ended::Shutdown);
    }
    if tenure.held() && stopped.is_err() {
        return Err(ServiceError::OutputRefused);
    }
    Ok(Ended::LeaseLost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_request_outlives_the_lease() {
        let cases = [
            (Duration::from_secs(30), Duration::from_secs(15)),
            (Duration::from_secs(120), Duration::from_secs(30)),
            (Duration::from_millis(1_500), Duration::from_millis(750)),
        ];
        for (ttl, expected) in cases {
            assert_eq!(request_timeout(ttl), expected, "{ttl:?}");
        }
    }
}
