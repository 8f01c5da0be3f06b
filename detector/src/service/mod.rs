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
//! One active instance: the detector reads every partition of `enriched` itself (assigned, not
//! through a consumer group), because each interval needs all of its events; its positions are
//! part of the checkpoint, so a restart resumes exactly where the saved state left off. Replicas
//! beyond the first wait on standby for the lease ([`crate::lease`]); the one holding it restores
//! the latest checkpoint and scores, and a standby takes over when it stops.
//!
//! This module is the loop and what ties the parts together; each job has its own module:
//! `standby` (taking the lease), `startup` (restore or cold start), `assign` (partitions),
//! `features` (a record's contribution, pure), `scoring` (closed intervals to results),
//! `publish` (`anomalies`), `results` (the results index), `checkpoint` and `metrics`.
//! The watermark is [`crate::event_time::EventClock`]'s: the loop feeds it records and partition
//! ends, and asks it when to close intervals.

mod assign;
mod checkpoint;
mod clock;
mod error;
mod features;
mod live;
mod metrics;
mod publish;
mod readiness;
mod results;
mod scoring;
mod standby;
mod startup;

use std::time::{Duration, Instant};

use opensearch::OpenSearch;
use pipeline::search;
use pipeline::service::Service;
use pipeline::telemetry::Health;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;

use crate::alert::{self, Alerting};
use crate::event_time::{Admission, EventClock};
use crate::settings::Settings;

pub use error::ServiceError;
pub use metrics::Metrics;
pub use readiness::{LEASE_CHECK, OPENSEARCH_CHECK};

use clock::{millis, now_ms};
use live::Live;
use results::Unwritten;

/// Runs the detector until the shutdown token is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    health.register(OPENSEARCH_CHECK, "connecting");
    let shutdown = service.shutdown.clone();
    let spec = &settings.spec;
    let targets = alert::targets(&spec.channels).map_err(ServiceError::Channels)?;
    let client = search::client(&settings.opensearch, Duration::from_secs(30))?;
    if startup::prepare_indices(&client, spec, &health, &shutdown)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let Some(mut lease) = standby::acquire(&client, &settings, &health, &shutdown).await? else {
        return Ok(());
    };
    metrics.active.set(1);

    let now = now_ms();
    let mut detectors = Vec::with_capacity(spec.detectors.len());
    for (i, detector) in spec.detectors.iter().enumerate() {
        let Some(live) =
            startup::start_detector(&client, &settings, detector, i, now, &health, &shutdown)
                .await?
        else {
            return Ok(());
        };
        detectors.push(live);
    }
    let stream_state = startup::stream_state(&client, spec, &health, &shutdown).await?;
    // Restores episodes and the outbox; the channel workers re-send what is pending.
    let alerts = Alerting::start(
        spec,
        stream_state.as_ref().map(|s| &s.monitors),
        targets,
        metrics.delivery.clone(),
    );

    let (consumer, partitions) = assign::assign(&settings, stream_state.as_ref(), &detectors)?;
    let producer: FutureProducer = settings
        .kafka
        .producer_config("logwarden-detector")
        .create()
        .map_err(ServiceError::Client)?;
    tracing::info!(
        detectors = detectors.len(),
        monitors = spec.monitors.len(),
        input = %settings.kafka.topics.enriched,
        results = %spec.results,
        "Detecting."
    );

    let mut stage = Stage {
        settings: &settings,
        client: &client,
        health: &health,
        metrics: &metrics,
        producer,
        detectors,
        alerts,
        checkpoint_soon: false,
        clock: EventClock::new(partitions, millis(settings.future_tolerance)),
        last_future_report: None,
        unwritten: Unwritten::default(),
        last_checkpoint: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renew = tokio::time::interval(lease.renew_every());
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_message = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = renew.tick() => match lease.renew(&client).await {
                Ok(true) => {}
                Ok(false) => {
                    metrics.active.set(0);
                    health.not_ready(LEASE_CHECK, "lost the lease");
                    stage.alerts.stop().await;
                    return Err(ServiceError::LeaseLost);
                }
                Err(err) => tracing::warn!(%err, "Renewing the lease failed; retrying."),
            },
            Some(outcome) = stage.alerts.outcome() => {
                // A delivery is checkpointed at the next tick: a crash re-sends less.
                stage.checkpoint_soon |= stage.alerts.settle(outcome);
            },
            message = consumer.recv() => match message {
                Ok(message) => {
                    last_message = Instant::now();
                    stage.take(message.partition(), message.offset(), message.payload().unwrap_or_default());
                }
                Err(KafkaError::PartitionEOF(partition)) => stage.clock.caught_up(partition),
                Err(err) => tracing::warn!(%err, "Consuming failed; librdkafka retries."),
            },
            _ = tick.tick() => {
                // An idle stream: time moves on by the clock, so quiet intervals close too.
                let idle = (last_message.elapsed() > Duration::from_secs(1)).then(now_ms);
                stage.close_intervals(idle).await;
                if stage.checkpoint_soon || stage.last_checkpoint.elapsed() >= settings.checkpoint_every {
                    stage.checkpoint(&consumer).await;
                }
                metrics.checkpoint_age.set(i64::try_from(stage.last_checkpoint.elapsed().as_secs()).unwrap_or(i64::MAX));
            }
        }
    }
    stage.close_intervals(None).await;
    // Pending alerts get a moment to go out; what does not stays pending in the checkpoint.
    stage.alerts.drain(alert::SHUTDOWN_DRAIN).await;
    stage.checkpoint(&consumer).await;
    stage.alerts.stop().await;
    // A standby takes over at once.
    lease.release(&client).await;
    metrics.active.set(0);
    Ok(())
}

/// The loop's state.
struct Stage<'a> {
    settings: &'a Settings,
    client: &'a OpenSearch,
    health: &'a Health,
    metrics: &'a Metrics,
    producer: FutureProducer,
    detectors: Vec<Live>,
    /// Monitors, their outbox (checkpointed with the stream) and the channel workers.
    alerts: Alerting,
    /// A delivery was settled since the last checkpoint: save one at the next tick.
    checkpoint_soon: bool,
    /// Per-partition event time: which records are scored, and the watermark.
    clock: EventClock,
    /// When a future record was last logged (they are counted always, logged at most every 10 s).
    last_future_report: Option<Instant>,
    /// Results not yet written (OpenSearch was unavailable).
    unwritten: Unwritten,
    last_checkpoint: Instant,
}

impl Stage<'_> {
    /// Adds one enriched record of `partition` to every detector's open interval.
    fn take(&mut self, partition: i32, offset: i64, payload: &[u8]) {
        let Some((record, time)) = features::read(payload) else {
            self.metrics.unreadable.inc();
            return;
        };
        let now = now_ms();
        if self.clock.admit(partition, time, now) == Admission::Future {
            self.metrics.future.inc();
            if self
                .last_future_report
                .is_none_or(|last| last.elapsed() >= Duration::from_secs(10))
            {
                self.last_future_report = Some(Instant::now());
                tracing::warn!(
                    partition,
                    offset,
                    event_time = time,
                    horizon = self.clock.horizon(now),
                    total = self.metrics.future.get(),
                    "A record is stamped further in the future than detector.future_tolerance_ms allows: not scored (check the sender's clock)."
                );
            }
            return;
        }
        for live in &mut self.detectors {
            if let Some(value) = features::contribution(&live.spec.feature, &record)
                && !live.window.add(time, value)
            {
                self.metrics
                    .late
                    .with_label_values(&[&live.spec.name])
                    .inc();
            }
        }
    }

    /// Scores every interval the watermark closed; writes results, publishes anomalies, and
    /// hands notifications to the delivery task. `idle_now` is the clock when the stream is idle.
    async fn close_intervals(&mut self, idle_now: Option<i64>) {
        let Some(watermark) = self.clock.watermark(idle_now) else {
            return;
        };
        let started = now_ms();
        let mut results = Vec::new();
        for live in &mut self.detectors {
            results.extend(scoring::score(live, watermark, started, self.metrics));
        }
        if results.is_empty() && self.unwritten.is_empty() {
            return;
        }
        for result in &results {
            self.alerts.evaluate(result);
            if result.anomaly_grade > 0.0 {
                publish::publish(
                    &self.producer,
                    &self.settings.kafka.topics.anomalies,
                    result,
                )
                .await;
            }
        }
        self.unwritten
            .write(
                results,
                self.client,
                &self.settings.spec.results,
                self.health,
            )
            .await;
    }

    /// Saves every detector's model and window, then the stream positions and monitor episodes.
    async fn checkpoint(&mut self, consumer: &assign::DetectorConsumer) {
        // Brought forward once per delivery; a failed save is retried on the usual schedule.
        self.checkpoint_soon = false;
        let saved_at = now_ms();
        let positions = checkpoint::positions(consumer);
        let checkpoints =
            checkpoint::build(&self.detectors, positions, self.alerts.monitors(), saved_at);
        if checkpoint::save(self.client, &self.settings.spec.checkpoints, &checkpoints).await {
            self.last_checkpoint = Instant::now();
            tracing::debug!(detectors = self.detectors.len(), "Checkpoint saved.");
        }
    }
}
