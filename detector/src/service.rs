//! The detector as a service: reads `enriched`, aggregates each detector's feature per interval
//! by event time, scores each closed interval, writes every result to the results index and the
//! anomalous ones to `anomalies`, and hands monitors' notifications to the delivery task.
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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opensearch::OpenSearch;
use pipeline::search::{self, SearchError};
use pipeline::service::Service;
use pipeline::telemetry::Health;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::alert::{self, DeliveryMetrics, Monitors};
use crate::event_time::{Admission, EventClock};
use crate::lease::{Attempt, Lease};
use crate::model::{Model, ModelError};
use crate::settings::Settings;
use crate::spec::{Aggregation, DetectorSpec, Feature};
use crate::store::{self, Checkpoint, ResultDoc};
use crate::window::{Interval, Window};

/// The readiness check for OpenSearch.
pub const OPENSEARCH_CHECK: &str = "opensearch";
/// The readiness check for the lease: not ready while on standby.
pub const LEASE_CHECK: &str = "lease";
/// The checkpoint document holding stream positions and monitor episodes.
const STREAM_CHECKPOINT: &str = "_stream";

/// The detector's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Intervals scored, by detector.
    pub intervals: IntCounterVec,
    /// Anomalous intervals, by detector.
    pub anomalies: IntCounterVec,
    /// Events too late for their interval, by detector.
    pub late: IntCounterVec,
    /// Records that were not enriched events (no JSON or no `@timestamp`).
    pub unreadable: prometheus::IntCounter,
    /// Records stamped beyond the future tolerance: kept out of the model.
    pub future: prometheus::IntCounter,
    /// Seconds since the last saved checkpoint.
    pub checkpoint_age: IntGauge,
    /// Alerts delivered, failed, waiting.
    pub delivery: DeliveryMetrics,
    /// Each detector's last scored interval end, epoch seconds.
    pub scored_until: IntGaugeVec,
    /// 1 while this replica holds the lease and scores, 0 on standby.
    pub active: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let by = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
        };
        let metrics = Self {
            intervals: by(
                "detector_intervals_scored_total",
                "Intervals scored.",
                "detector",
            )?,
            anomalies: by(
                "detector_anomalies_total",
                "Anomalous intervals.",
                "detector",
            )?,
            late: by(
                "detector_late_events_total",
                "Events too late for their interval.",
                "detector",
            )?,
            unreadable: prometheus::IntCounter::new(
                "detector_unreadable_records_total",
                "Records without JSON or @timestamp.",
            )?,
            future: prometheus::IntCounter::new(
                "detector_future_events_total",
                "Records stamped further ahead of the clock than detector.future_tolerance_ms allows; not scored.",
            )?,
            checkpoint_age: IntGauge::new(
                "detector_checkpoint_age_seconds",
                "Seconds since the last saved checkpoint.",
            )?,
            delivery: DeliveryMetrics {
                sent: by("detector_alerts_sent_total", "Alerts delivered.", "channel")?,
                failed: by(
                    "detector_alerts_failed_total",
                    "Alert deliveries that failed (each is retried).",
                    "channel",
                )?,
                pending: IntGauge::new(
                    "detector_alerts_pending",
                    "Alerts waiting to be delivered.",
                )?,
            },
            scored_until: IntGaugeVec::new(
                Opts::new(
                    "detector_scored_until_seconds",
                    "End of the last scored interval (epoch seconds).",
                ),
                &["detector"],
            )?,
            active: IntGauge::new(
                "detector_active",
                "1 while this replica holds the lease and scores, 0 on standby.",
            )?,
        };
        pipeline::register_metrics!(
            registry,
            metrics.intervals,
            metrics.anomalies,
            metrics.late,
            metrics.unreadable,
            metrics.future,
            metrics.checkpoint_age,
            metrics.delivery.sent,
            metrics.delivery.failed,
            metrics.delivery.pending,
            metrics.scored_until,
            metrics.active
        )?;
        Ok(metrics)
    }
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A Kafka client could not be created or assigned.
    #[error("Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// OpenSearch refused something for good.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// A model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Another replica took the lease over (this one could not renew it in time).
    #[error("lost the lease to another replica; stopping so only one scores")]
    LeaseLost,
    /// A channel cannot be used (its secret is missing).
    #[error("alert channels: {0}")]
    Channels(String),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A detector at work.
struct Live {
    spec: DetectorSpec,
    model: Model,
    window: Window,
}

#[derive(Serialize, Deserialize)]
struct DetectorState {
    model: Model,
    window: Window,
}

#[derive(Serialize, Deserialize)]
struct StreamState {
    positions: BTreeMap<i32, i64>,
    monitors: Value,
}

/// A stable fingerprint of a detector's spec: a checkpoint of another spec is not restored.
fn fingerprint(spec: &DetectorSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Retries `step` while OpenSearch is unreachable or overloaded, waiting 200 ms doubling to 5 s
/// (jittered); `None` if shut down first.
async fn patiently<T, F, Fut>(
    what: &str,
    health: &Health,
    shutdown: &CancellationToken,
    mut step: F,
) -> Result<Option<T>, SearchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SearchError>>,
{
    let mut retries = pipeline::backoff::Retries::new(pipeline::backoff::Backoff::new(
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

/// Runs the detector until the shutdown token is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    health.register(OPENSEARCH_CHECK, "connecting");
    let shutdown = service.shutdown.clone();
    let spec = &settings.spec;
    let targets = alert::targets(&spec.channels).map_err(ServiceError::Channels)?;
    let client = search::client(&settings.opensearch, Duration::from_secs(30))?;
    let prepared = patiently("preparing indices", &health, &shutdown, || async {
        store::put_results_template(&client, &spec.results).await?;
        store::ensure_checkpoints_index(&client, &spec.checkpoints).await
    })
    .await?;
    if prepared.is_none() {
        return Ok(());
    }
    let Some(mut lease) = acquire(&client, &settings, &health, &shutdown).await? else {
        return Ok(());
    };
    metrics.active.set(1);

    let now = now_ms();
    let mut detectors = Vec::with_capacity(spec.detectors.len());
    for (i, detector) in spec.detectors.iter().enumerate() {
        let Some(live) =
            start_detector(&client, &settings, detector, i, now, &health, &shutdown).await?
        else {
            return Ok(());
        };
        detectors.push(live);
    }
    let stream_state = patiently("loading positions", &health, &shutdown, || {
        store::load_checkpoint(&client, &spec.checkpoints, STREAM_CHECKPOINT)
    })
    .await?
    .flatten()
    .and_then(|c| serde_json::from_str::<StreamState>(&c.state).ok());
    let mut monitors = Monitors::new(spec);
    if let Some(state) = &stream_state {
        monitors.restore(&state.monitors);
    }

    let (consumer, partitions) = assign(&settings, stream_state.as_ref(), &detectors)?;
    let producer: FutureProducer = settings
        .kafka
        .producer_config("logwarden-detector")
        .create()
        .map_err(ServiceError::Client)?;
    let (outbox, inbox) = tokio::sync::mpsc::unbounded_channel();
    let delivery_shutdown = CancellationToken::new();
    let delivery = tokio::spawn(alert::deliver(
        inbox,
        targets,
        metrics.delivery.clone(),
        delivery_shutdown.clone(),
    ));
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
        monitors,
        outbox,
        clock: EventClock::new(partitions, millis(settings.future_tolerance)),
        last_future_report: None,
        unwritten: Vec::new(),
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
                    delivery_shutdown.cancel();
                    return Err(ServiceError::LeaseLost);
                }
                Err(err) => tracing::warn!(%err, "Renewing the lease failed; retrying."),
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
                if stage.last_checkpoint.elapsed() >= settings.checkpoint_every {
                    stage.checkpoint(&consumer).await;
                }
                metrics.checkpoint_age.set(i64::try_from(stage.last_checkpoint.elapsed().as_secs()).unwrap_or(i64::MAX));
            }
        }
    }
    stage.close_intervals(None).await;
    stage.checkpoint(&consumer).await;
    // Give pending alerts a moment to go out.
    drop(stage.outbox);
    let _ = tokio::time::timeout(Duration::from_secs(5), delivery).await;
    delivery_shutdown.cancel();
    // A standby takes over at once.
    lease.release(&client).await;
    metrics.active.set(0);
    Ok(())
}

/// Waits on standby until this replica holds the lease; `None` if shut down first.
async fn acquire(
    client: &OpenSearch,
    settings: &Settings,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<Lease>, ServiceError> {
    health.register(LEASE_CHECK, "standby: waiting for the lease");
    let mut told = false;
    loop {
        match Lease::try_acquire(
            client,
            &settings.spec.checkpoints,
            &settings.instance_id,
            settings.lease_ttl,
        )
        .await
        {
            Ok(Ok(lease)) => {
                health.ready(LEASE_CHECK);
                tracing::info!(instance = %settings.instance_id, "Holding the lease: this replica scores and alerts.");
                return Ok(Some(lease));
            }
            Ok(Err(Attempt::HeldBy(holder, until))) => {
                if !told {
                    tracing::info!(%holder, until, "Standby: another replica holds the lease.");
                    told = true;
                }
                health.not_ready(LEASE_CHECK, &format!("standby: {holder} holds the lease"));
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(%err, "Taking the lease: waiting for OpenSearch.");
            }
            Err(err) => return Err(err.into()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(settings.lease_ttl / 3) => {}
        }
    }
}

/// Restores a detector from its checkpoint, or trains a fresh one on the index's history.
async fn start_detector(
    client: &OpenSearch,
    settings: &Settings,
    detector: &DetectorSpec,
    index: usize,
    now: i64,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<Live>, ServiceError> {
    let spec = &settings.spec;
    let saved = patiently("loading a checkpoint", health, shutdown, || {
        store::load_checkpoint(client, &spec.checkpoints, &detector.name)
    })
    .await?;
    let Some(saved) = saved else { return Ok(None) };
    if let Some(checkpoint) = saved.filter(|c| c.spec == fingerprint(detector))
        && let Ok(state) = serde_json::from_str::<DetectorState>(&checkpoint.state)
    {
        tracing::info!(detector = %detector.name, seen = state.model.seen(), saved_at = checkpoint.saved_at, "Model restored from its checkpoint.");
        let mut window = state.window;
        // A window saved past the trusted horizon (by a version that let a future record move
        // the watermark) would keep the detector blind until that date: start it again now.
        if window
            .next()
            .is_some_and(|next| next > now + millis(settings.future_tolerance))
        {
            tracing::warn!(detector = %detector.name, next = ?window.next(), "The checkpoint's open interval lies in the future; scoring resumes from now.");
            window = Window::new(
                millis(detector.interval),
                millis(detector.window_delay),
                Some(now),
            );
        }
        return Ok(Some(Live {
            spec: detector.clone(),
            model: state.model,
            window,
        }));
    }
    let interval = millis(detector.interval);
    let delay = millis(detector.window_delay);
    let mut window = Window::new(interval, delay, None);
    let to = window.align(now - delay);
    let from = to - interval * i64::try_from(detector.model.history).unwrap_or(0);
    let history = patiently("reading history", health, shutdown, || {
        store::history(client, &spec.events, detector, from, to)
    })
    .await?;
    let Some(history) = history else {
        return Ok(None);
    };
    let mut model = Model::new(&detector.model, 0x5eed ^ index as u64)?;
    // History comes per interval already aggregated (a rate already per second).
    for interval in &history {
        model.observe(interval.value)?;
    }
    window = Window::new(interval, delay, Some(to));
    tracing::info!(detector = %detector.name, intervals = history.len(), "Cold start: trained on the index's history.");
    Ok(Some(Live {
        spec: detector.clone(),
        model,
        window,
    }))
}

/// The interval's feature value (a rate is per second).
fn value_of(detector: &DetectorSpec, interval: &Interval) -> f64 {
    match detector.feature.aggregation {
        Aggregation::Rate => interval.value / detector.interval.as_secs_f64().max(0.001),
        _ => interval.value,
    }
}

/// Assigns every partition of `enriched`: at the checkpointed positions, or (cold start, or a
/// partition the checkpoint does not know) at the records written since shortly before the first
/// interval to score. Returns the consumer and the partitions it reads.
fn assign(
    settings: &Settings,
    state: Option<&StreamState>,
    detectors: &[Live],
) -> Result<(StreamConsumer, Vec<i32>), ServiceError> {
    let topic = &settings.kafka.topics.enriched;
    let mut config = settings.kafka.client_config("logwarden-detector");
    config
        .set("group.id", "logwarden-detector")
        .set("enable.auto.commit", "false")
        // Reaching a partition's end is how the event clock knows it is caught up.
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: StreamConsumer = config.create().map_err(ServiceError::Client)?;
    let metadata_client: BaseConsumer = settings
        .kafka
        .client_config("logwarden-detector-metadata")
        .create()
        .map_err(ServiceError::Client)?;
    let metadata = metadata_client
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(ServiceError::Client)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let first = detectors
        .iter()
        .filter_map(|d| d.window.next())
        .min()
        .unwrap_or_else(now_ms);
    let mut list = TopicPartitionList::new();
    // Partitions without a saved position start from a time, looked up as an offset.
    let mut by_time = TopicPartitionList::new();
    for &partition in &partitions {
        match state.and_then(|s| s.positions.get(&partition)) {
            Some(&offset) => list.add_partition_offset(topic, partition, Offset::Offset(offset)),
            // Record timestamps are write times, never before the events' own times.
            None => by_time.add_partition_offset(topic, partition, Offset::Offset(first - 60_000)),
        }
        .map_err(ServiceError::Client)?;
    }
    if by_time.count() > 0 {
        let found = consumer
            .offsets_for_times(by_time, Duration::from_secs(30))
            .map_err(ServiceError::Client)?;
        for element in found.elements() {
            let offset = match element.offset() {
                Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                // No record written since then: only new ones.
                _ => Offset::End,
            };
            list.add_partition_offset(topic, element.partition(), offset)
                .map_err(ServiceError::Client)?;
        }
    }
    consumer.assign(&list).map_err(ServiceError::Client)?;
    Ok((consumer, partitions))
}

/// The loop's state.
struct Stage<'a> {
    settings: &'a Settings,
    client: &'a OpenSearch,
    health: &'a Health,
    metrics: &'a Metrics,
    producer: FutureProducer,
    detectors: Vec<Live>,
    monitors: Monitors,
    outbox: tokio::sync::mpsc::UnboundedSender<alert::Notification>,
    /// Per-partition event time: which records are scored, and the watermark.
    clock: EventClock,
    /// When a future record was last logged (they are counted always, logged at most every 10 s).
    last_future_report: Option<Instant>,
    /// Results not yet written (OpenSearch was unavailable).
    unwritten: Vec<ResultDoc>,
    last_checkpoint: Instant,
}

/// Looks up a dotted path.
fn lookup<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(record, |value, key| value.get(key))
}

/// A record's contribution to a feature: `None` when a filter excludes it.
fn contribution(feature: &Feature, record: &Value) -> Option<f64> {
    if let Some(filter) = &feature.filter
        && lookup(record, &filter.field) != Some(&filter.value)
    {
        return None;
    }
    Some(match (feature.aggregation, &feature.field) {
        (Aggregation::Count, _) | (_, None) => 1.0,
        (_, Some(field)) => match lookup(record, field) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            _ => 0.0,
        },
    })
}

impl Stage<'_> {
    /// Adds one enriched record of `partition` to every detector's open interval.
    fn take(&mut self, partition: i32, offset: i64, payload: &[u8]) {
        let Ok(record) = serde_json::from_slice::<Value>(payload) else {
            self.metrics.unreadable.inc();
            return;
        };
        let Some(time) = record["@timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
        else {
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
            if let Some(value) = contribution(&live.spec.feature, &record)
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
            for interval in live.window.close(watermark) {
                let value = value_of(&live.spec, &interval);
                let scored = match live.model.observe(value) {
                    Ok(scored) => scored,
                    Err(err) => {
                        tracing::error!(detector = %live.spec.name, %err, "Scoring failed.");
                        continue;
                    }
                };
                let scored_interval = Interval { value, ..interval };
                let result = store::result(&live.spec, &scored_interval, &scored, started, None);
                self.metrics
                    .intervals
                    .with_label_values(&[&live.spec.name])
                    .inc();
                self.metrics
                    .scored_until
                    .with_label_values(&[&live.spec.name])
                    .set(interval.end / 1_000);
                if result.anomaly_grade > 0.0 {
                    self.metrics
                        .anomalies
                        .with_label_values(&[&live.spec.name])
                        .inc();
                    tracing::info!(detector = %live.spec.name, value, expected = scored.expected, grade = scored.grade, confidence = scored.confidence, rule = ?scored.rule, start = interval.start, "Anomaly.");
                }
                results.push(result);
            }
        }
        if results.is_empty() && self.unwritten.is_empty() {
            return;
        }
        for result in &results {
            for notification in self.monitors.evaluate(result) {
                let _ = self.outbox.send(notification);
            }
            if result.anomaly_grade > 0.0 {
                self.publish(result).await;
            }
        }
        self.unwritten.extend(results);
        match store::write_results(self.client, &self.settings.spec.results, &self.unwritten).await
        {
            Ok(()) => {
                self.unwritten.clear();
                self.health.ready(OPENSEARCH_CHECK);
            }
            Err(err) => {
                self.health.not_ready(OPENSEARCH_CHECK, &err.to_string());
                tracing::warn!(%err, pending = self.unwritten.len(), "Writing results failed; retrying with the next ones.");
            }
        }
    }

    /// Publishes an anomalous result to the `anomalies` topic.
    async fn publish(&self, result: &ResultDoc) {
        let payload = serde_json::to_vec(result).unwrap_or_default();
        let record = FutureRecord::to(&self.settings.kafka.topics.anomalies)
            .key(&result.detector_name)
            .payload(&payload);
        if let Err((err, _)) = self.producer.send(record, Duration::from_secs(30)).await {
            tracing::warn!(%err, "Publishing an anomaly failed.");
        }
    }

    /// Saves every detector's model and window, then the stream positions and monitor episodes.
    async fn checkpoint(&mut self, consumer: &StreamConsumer) {
        let spec = &self.settings.spec;
        let saved_at = now_ms();
        let positions: BTreeMap<i32, i64> = consumer
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
            .unwrap_or_default();
        let mut checkpoints: Vec<Checkpoint> = self
            .detectors
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
                    monitors: self.monitors.state(),
                })
                .unwrap_or_default(),
            });
        }
        for checkpoint in &checkpoints {
            if let Err(err) =
                store::save_checkpoint(self.client, &spec.checkpoints, checkpoint).await
            {
                tracing::warn!(%err, detector = %checkpoint.detector, "Saving a checkpoint failed; the next one retries.");
                return;
            }
        }
        self.last_checkpoint = Instant::now();
        tracing::debug!(detectors = self.detectors.len(), "Checkpoint saved.");
    }
}

#[derive(Serialize)]
struct DetectorStateRef<'a> {
    model: &'a Model,
    window: &'a Window,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contributions_follow_the_feature() {
        let record = json!({"UNK_country": 1, "httpRequest": {"country": "XX"}, "flag": true});
        let sum = Feature {
            field: Some("UNK_country".into()),
            aggregation: Aggregation::Sum,
            filter: None,
        };
        assert_eq!(contribution(&sum, &record), Some(1.0));
        let missing = Feature {
            field: Some("B_action".into()),
            ..sum.clone()
        };
        assert_eq!(contribution(&missing, &record), Some(0.0));
        let count_xx = Feature {
            field: None,
            aggregation: Aggregation::Count,
            filter: Some(crate::spec::Filter {
                field: "httpRequest.country".into(),
                value: json!("XX"),
            }),
        };
        assert_eq!(contribution(&count_xx, &record), Some(1.0));
        let count_us = Feature {
            filter: Some(crate::spec::Filter {
                field: "httpRequest.country".into(),
                value: json!("US"),
            }),
            ..count_xx
        };
        assert_eq!(contribution(&count_us, &record), None);
    }
}
