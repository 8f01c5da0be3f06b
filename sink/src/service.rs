//! The sink as a Kafka service: a consumer group on `enriched` that bulk-loads OpenSearch.
//!
//! Records are gathered into batches (closed on count, bytes or time); each batch is one bulk
//! request of `index` operations with the record's event id as `_id`, so a record loaded twice
//! (after a crash, a rebalance, a retry) is overwritten, never duplicated. Up to `max_requests`
//! batches are in flight. A batch is settled when every record in it is indexed or, for records
//! that cannot be indexed, acknowledged on `dead-letter`; offsets are stored for settled batches
//! only, oldest batch first, so offsets move in order per partition.
//!
//! Failures: items OpenSearch asks to retry (429, 5xx, blocks) are sent again, alone, with
//! exponential backoff and jitter; a request with no answer is retried whole. While anything is
//! being retried the sink is in back-pressure: it sends no new batch, stops consuming once the
//! open batch is full, reports `/readyz` not ready (`opensearch`) and sets
//! `logwarden_sink_backpressure` to 1; it recovers by itself when OpenSearch answers again.
//! Nothing is dropped: retries end only at shutdown, and what is unsettled then is consumed
//! again after the restart (and overwritten by id).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opensearch::{BulkParts, OpenSearch};
use pipeline::delivery::{Deliveries, DeliveryError, Event, Outgoing};
use pipeline::kafka::{HealthContext, KAFKA_CHECK};
use pipeline::search::{self, SearchError};
use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::telemetry::Health;
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bulk::{self, Document, FILTER_PATH, Outcome, Preparer, Verdict};
use crate::settings::{Backoff, Settings};

/// The stage name written into dead letters.
pub const STAGE: &str = "sink";

/// The readiness check for OpenSearch.
pub const OPENSEARCH_CHECK: &str = "opensearch";

/// The sink's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records consumed from `enriched`.
    pub records_in: IntCounter,
    /// Records per bulk request.
    pub batch_records: Histogram,
    /// Bytes per bulk request body.
    pub batch_bytes: Histogram,
    /// Time from sending a bulk request to its response.
    pub bulk_seconds: Histogram,
    /// Documents by outcome of a bulk request: `indexed`, `retried`, `rejected`.
    pub items: IntCounterVec,
    /// Bulk requests by result: `ok` (every item judged), `retry` (no usable answer), `split`.
    pub requests: IntCounterVec,
    /// Records written to `dead-letter`, by reason.
    pub dead_letters: IntCounterVec,
    /// 1 while something is being retried (OpenSearch unreachable or overloaded), else 0.
    pub backpressure: IntGauge,
    /// Bulk requests in flight or waiting to be retried.
    pub requests_in_flight: IntGauge,
    /// Records consumed but not yet settled.
    pub records_in_flight: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counts = vec![1.0, 10.0, 100.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0];
        let metrics = Self {
            records_in: IntCounter::new(
                "sink_records_in_total",
                "Records consumed from enriched.",
            )?,
            batch_records: Histogram::with_opts(
                HistogramOpts::new("sink_batch_records", "Documents per bulk request.")
                    .buckets(counts),
            )?,
            batch_bytes: Histogram::with_opts(
                HistogramOpts::new("sink_batch_bytes", "Bytes per bulk request body.")
                    .buckets(vec![1e3, 1e4, 1e5, 5e5, 1e6, 2e6, 5e6, 1e7, 5e7]),
            )?,
            bulk_seconds: Histogram::with_opts(
                HistogramOpts::new("sink_bulk_seconds", "Bulk request latency.").buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
                ]),
            )?,
            items: IntCounterVec::new(
                Opts::new("sink_items_total", "Documents by bulk outcome."),
                &["outcome"],
            )?,
            requests: IntCounterVec::new(
                Opts::new("sink_bulk_requests_total", "Bulk requests by result."),
                &["result"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "sink_dead_letters_total",
                    "Records written to dead-letter, by reason.",
                ),
                &["reason"],
            )?,
            backpressure: IntGauge::new(
                "sink_backpressure",
                "1 while OpenSearch is unreachable or overloaded and the sink retries.",
            )?,
            requests_in_flight: IntGauge::new(
                "sink_requests_in_flight",
                "Bulk requests in flight or waiting to be retried.",
            )?,
            records_in_flight: IntGauge::new(
                "sink_records_in_flight",
                "Records consumed and not yet settled.",
            )?,
        };
        for outcome in ["indexed", "retried", "rejected"] {
            metrics.items.with_label_values(&[outcome]);
        }
        for result in ["ok", "retry", "split"] {
            metrics.requests.with_label_values(&[result]);
        }
        for reason in DeadLetterReason::ALL {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        pipeline::register_metrics!(
            registry,
            metrics.records_in,
            metrics.batch_records,
            metrics.batch_bytes,
            metrics.bulk_seconds,
            metrics.items,
            metrics.requests,
            metrics.dead_letters,
            metrics.backpressure,
            metrics.requests_in_flight,
            metrics.records_in_flight
        )?;
        Ok(metrics)
    }
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// A dead letter could not be delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// OpenSearch refused the index template (a permanent error) or the client cannot be built.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Draining did not finish in time; unsettled records are consumed again after a restart.
    #[error("shutdown: {0} records not settled within {DRAIN_DEADLINE:?}")]
    DrainTimeout(usize),
}

/// Runs the sink until the shutdown token is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    health.register(OPENSEARCH_CHECK, "connecting");
    let client = search::client(&settings.opensearch, settings.request_timeout)?;
    if !apply_template(&settings, &client, &health, &service.shutdown).await? {
        return Ok(());
    }
    let stage = Stage::new(&settings, client, metrics, health, service.shutdown.clone())?;
    tracing::info!(
        group = %settings.group_id,
        instance = %settings.instance_id,
        input = %settings.kafka.topics.enriched,
        alias = %settings.index.alias(),
        "Loading OpenSearch."
    );
    stage.run().await
}

/// Puts the index template, waiting for OpenSearch while it is unreachable or overloaded.
/// `Ok(false)` when shut down first; an error when OpenSearch refuses the template for good.
async fn apply_template(
    settings: &Settings,
    client: &OpenSearch,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<bool, ServiceError> {
    let mut attempt = 0;
    loop {
        match settings.index.ensure_template(client).await {
            Ok(()) => {
                health.ready(OPENSEARCH_CHECK);
                tracing::info!(template = settings.index.template_name(), pattern = %settings.index.pattern(), "Index template in place (created if it was missing).");
                return Ok(true);
            }
            Err(err) if err.is_transient() => {
                attempt += 1;
                health.not_ready(OPENSEARCH_CHECK, &err.to_string());
                let delay = settings.backoff.delay(attempt, &mut rand::rng());
                tracing::warn!(%err, retry_in = ?delay, "Waiting for OpenSearch.");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(false),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A batch: consecutive records, the documents among them, and what is still to do.
#[derive(Debug)]
struct Batch {
    seq: u64,
    /// Still taking records.
    open: bool,
    first_at: tokio::time::Instant,
    records: usize,
    bytes: usize,
    /// The highest offset consumed per partition: stored when the batch settles.
    offsets: BTreeMap<i32, i64>,
    /// The source position of each document, for its dead letter.
    positions: Vec<(i32, i64)>,
    documents: Vec<Document>,
    /// Documents (by index) waiting to be sent.
    pending: Vec<usize>,
    /// Documents not yet indexed and dead letters not yet acknowledged.
    unsettled: usize,
    /// A request (or its backoff) is under way.
    requesting: bool,
    /// Consecutive attempts that had something to retry.
    attempt: u32,
    /// Most documents per request (halved when OpenSearch refuses a request as a whole).
    request_limit: usize,
}

impl Batch {
    fn new(seq: u64) -> Self {
        Self {
            seq,
            open: true,
            first_at: tokio::time::Instant::now(),
            records: 0,
            bytes: 0,
            offsets: BTreeMap::new(),
            positions: Vec::new(),
            documents: Vec::new(),
            pending: Vec::new(),
            unsettled: 0,
            requesting: false,
            attempt: 0,
            request_limit: usize::MAX,
        }
    }

    fn is_settled(&self) -> bool {
        !self.open && self.unsettled == 0 && self.pending.is_empty() && !self.requesting
    }
}

/// A consumed record, detached from the consumer.
#[derive(Debug)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl From<&BorrowedMessage<'_>> for Record {
    fn from(message: &BorrowedMessage<'_>) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }
}

/// The answer to one bulk request.
#[derive(Debug)]
struct Reply {
    seq: u64,
    /// The documents sent, by index into the batch, in request order.
    sent: Vec<usize>,
    verdict: Verdict,
    elapsed: Duration,
}

struct Stage {
    settings: Settings,
    client: OpenSearch,
    consumer: StreamConsumer<HealthContext>,
    context: HealthContext,
    dead_letters: Deliveries<u64, HealthContext>,
    preparer: Preparer,
    batches: VecDeque<Batch>,
    next_seq: u64,
    requests: JoinSet<Reply>,
    metrics: Metrics,
    health: Arc<Health>,
    shutdown: CancellationToken,
    /// The last reason something is being retried, while it is.
    trouble: Option<String>,
}

/// One turn of the loop.
enum Step<'a> {
    Stop,
    Reply(Reply),
    DeadLetter(Result<Option<u64>, DeliveryError>),
    Linger,
    Message(Result<BorrowedMessage<'a>, KafkaError>),
}

impl Stage {
    fn new(
        settings: &Settings,
        client: OpenSearch,
        metrics: Metrics,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServiceError> {
        let kafka = &settings.kafka;
        let client_id = format!("logwarden-sink-{}", settings.instance_id);
        let context = HealthContext::new(health.clone());
        let mut consumer_config = kafka.consumer_config(&client_id, &settings.group_id);
        consumer_config.set("group.instance.id", &settings.instance_id);
        let consumer: StreamConsumer<HealthContext> = consumer_config
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        consumer
            .subscribe(&[&kafka.topics.enriched])
            .map_err(ServiceError::Client)?;
        let producer: FutureProducer<HealthContext> = kafka
            .producer_config(&client_id)
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        let kafka_health = health.clone();
        let dead_letters =
            Deliveries::new(producer, 10_000, shutdown.clone(), move |event, reason| {
                if event == Event::Retried {
                    kafka_health.not_ready(KAFKA_CHECK, reason);
                }
            });
        Ok(Self {
            settings: settings.clone(),
            client,
            consumer,
            context,
            dead_letters,
            preparer: Preparer::new(settings.index.clone()),
            batches: VecDeque::new(),
            next_seq: 0,
            requests: JoinSet::new(),
            metrics,
            health,
            shutdown,
            trouble: None,
        })
    }

    async fn run(mut self) -> Result<(), ServiceError> {
        loop {
            let can_take = self.can_take();
            let linger = self.linger_deadline();
            let step = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Step::Stop,
                Some(joined) = self.requests.join_next() => match joined {
                    Ok(reply) => Step::Reply(reply),
                    // A request task cannot panic (it only awaits the client), and the set is
                    // never aborted; treat it as a lost answer all the same.
                    Err(err) => {
                        tracing::error!(%err, "A bulk request task failed.");
                        continue;
                    }
                },
                settled = self.dead_letters.settle_next(), if !self.dead_letters.is_empty() => Step::DeadLetter(settled),
                () = sleep_until(linger), if linger.is_some() => Step::Linger,
                message = self.consumer.recv(), if can_take => Step::Message(message),
            };
            match step {
                Step::Stop => break,
                Step::Reply(reply) => self.on_reply(reply).await?,
                Step::DeadLetter(settled) => {
                    if let Some(seq) = settled? {
                        self.dead_letter_settled(seq);
                        self.context.reachable();
                    }
                }
                Step::Linger => self.close_open_batch(),
                Step::Message(Err(err)) => {
                    tracing::warn!(%err, "Consuming failed; librdkafka retries.");
                }
                Step::Message(Ok(message)) => {
                    let record = Record::from(&message);
                    drop(message);
                    self.context.reachable();
                    self.take(record).await?;
                }
            }
            self.dispatch();
            self.store_settled();
            self.update_gauges();
        }
        self.drain().await
    }

    /// Whether to read another record: the open batch has room (or a new one may open: at most
    /// `max_requests` closed batches wait behind it), and dead letters are flowing.
    fn can_take(&self) -> bool {
        let room = match self.batches.back() {
            Some(batch) if batch.open => !self.is_full(batch),
            _ => self.batches.len() <= self.settings.max_requests,
        };
        room && !self.dead_letters.is_full() && !self.dead_letters.is_retrying()
    }

    fn is_full(&self, batch: &Batch) -> bool {
        batch.records >= self.settings.batch.records || batch.bytes >= self.settings.batch.bytes
    }

    /// When the open batch must close, if there is one with records in it.
    fn linger_deadline(&self) -> Option<tokio::time::Instant> {
        self.batches
            .back()
            .filter(|batch| batch.open && batch.records > 0)
            .map(|batch| batch.first_at + self.settings.batch.time)
    }

    fn open_batch(&mut self) -> &mut Batch {
        if !self.batches.back().is_some_and(|batch| batch.open) {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.batches.push_back(Batch::new(seq));
        }
        // Just ensured.
        self.batches.back_mut().expect("an open batch")
    }

    /// Adds one record to the open batch, as a document or a dead letter.
    async fn take(&mut self, record: Record) -> Result<(), ServiceError> {
        self.metrics.records_in.inc();
        let Record {
            partition,
            offset,
            key,
            payload,
        } = record;
        let prepared = self.preparer.prepare_owned(payload);
        let batch = self.open_batch();
        if batch.records == 0 {
            batch.first_at = tokio::time::Instant::now();
        }
        batch.records += 1;
        batch.offsets.insert(partition, offset);
        let seq = batch.seq;
        match prepared {
            Ok(document) => {
                batch.bytes += document.source.len() + document.id.len() + 64;
                batch.pending.push(batch.documents.len());
                batch.positions.push((partition, offset));
                batch.documents.push(document);
                batch.unsettled += 1;
                Ok(())
            }
            Err((unusable, payload)) => {
                batch.unsettled += 1;
                let dead = DeadLetter {
                    reason: unusable.reason,
                    detail: unusable.detail,
                    stage: STAGE.to_owned(),
                    source: SourcePosition {
                        topic: self.settings.kafka.topics.enriched.clone(),
                        partition,
                        offset,
                    },
                };
                let outgoing = Outgoing {
                    topic: self.settings.kafka.topics.dead_letter.clone(),
                    key,
                    payload,
                    headers: None,
                };
                self.send_dead_letter(dead, outgoing, seq).await
            }
        }
    }

    async fn send_dead_letter(
        &mut self,
        dead: DeadLetter,
        mut outgoing: Outgoing,
        seq: u64,
    ) -> Result<(), ServiceError> {
        self.metrics
            .dead_letters
            .with_label_values(&[dead.reason.as_str()])
            .inc();
        tracing::debug!(reason = %dead.reason, detail = %dead.detail, partition = dead.source.partition, offset = dead.source.offset, "Dead letter.");
        outgoing.headers = Some(dead.to_headers());
        for settled in self.dead_letters.send(outgoing, seq).await? {
            self.dead_letter_settled(settled);
        }
        Ok(())
    }

    fn dead_letter_settled(&mut self, seq: u64) {
        if let Some(batch) = self.batch_mut(seq) {
            batch.unsettled = batch.unsettled.saturating_sub(1);
        }
    }

    fn batch_mut(&mut self, seq: u64) -> Option<&mut Batch> {
        let front = self.batches.front()?.seq;
        let index = usize::try_from(seq.checked_sub(front)?).ok()?;
        self.batches.get_mut(index)
    }

    fn close_open_batch(&mut self) {
        if let Some(batch) = self.batches.back_mut()
            && batch.open
        {
            batch.open = false;
        }
    }

    /// Sends what can be sent: closes a full open batch, then starts requests for closed batches
    /// with pending documents, up to `max_requests`, unless in back-pressure (then only batches
    /// already retrying go on, by their own backoff).
    fn dispatch(&mut self) {
        let full = self
            .batches
            .back()
            .is_some_and(|batch| batch.open && self.is_full(batch));
        if full {
            self.close_open_batch();
        }
        if self.trouble.is_some() {
            return;
        }
        let in_flight = self.batches.iter().filter(|b| b.requesting).count();
        let ready: Vec<u64> = self
            .batches
            .iter()
            .filter(|b| !b.open && !b.requesting && !b.pending.is_empty())
            .map(|b| b.seq)
            .take(self.settings.max_requests.saturating_sub(in_flight))
            .collect();
        for seq in ready {
            self.request(seq, None);
        }
    }

    /// Starts a bulk request for batch `seq`'s pending documents (up to its request limit),
    /// after `delay` if given.
    fn request(&mut self, seq: u64, delay: Option<Duration>) {
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        let Some(batch) = self.batch_mut(seq) else {
            return;
        };
        let take = batch.pending.len().min(batch.request_limit);
        let sent: Vec<usize> = batch.pending.drain(..take).collect();
        let mut body = Vec::with_capacity(batch.bytes.min(64 << 20));
        for &i in &sent {
            if let Some(document) = batch.documents.get(i) {
                bulk::write_operation(document, &mut body);
            }
        }
        batch.requesting = true;
        metrics.batch_records.observe(sent.len() as f64);
        metrics.batch_bytes.observe(body.len() as f64);
        self.requests.spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let started = Instant::now();
            let verdict = send_bulk(&client, body, sent.len()).await;
            let elapsed = started.elapsed();
            metrics.bulk_seconds.observe(elapsed.as_secs_f64());
            Reply {
                seq,
                sent,
                verdict,
                elapsed,
            }
        });
    }

    async fn on_reply(&mut self, reply: Reply) -> Result<(), ServiceError> {
        let Reply {
            seq,
            sent,
            verdict,
            elapsed,
        } = reply;
        let judged = Judged::from_verdict(&sent, verdict);
        let backoff: Backoff = self.settings.backoff;
        let Some(batch) = self.batch_mut(seq) else {
            return Ok(());
        };
        batch.requesting = false;
        batch.unsettled = batch.unsettled.saturating_sub(judged.indexed);
        batch.pending.splice(0..0, judged.again.iter().copied());
        if let Some(limit) = judged.request_limit {
            batch.request_limit = limit;
        }
        let next = if judged.retry_reason.is_some() {
            batch.attempt += 1;
            Some(Some(backoff.delay(batch.attempt, &mut rand::rng())))
        } else {
            batch.attempt = 0;
            // Split, or more documents than one request may carry: on at once.
            (!batch.pending.is_empty()).then_some(None)
        };
        let attempt = batch.attempt;

        let items = &self.metrics.items;
        items
            .with_label_values(&["indexed"])
            .inc_by(judged.indexed as u64);
        items
            .with_label_values(&["rejected"])
            .inc_by(judged.rejected.len() as u64);
        if judged.retry_reason.is_some() {
            items
                .with_label_values(&["retried"])
                .inc_by(judged.again.len() as u64);
        }
        self.metrics
            .requests
            .with_label_values(&[judged.result])
            .inc();
        match &judged.retry_reason {
            Some(reason) => {
                if self.trouble.is_none() {
                    tracing::warn!(%reason, attempt, "OpenSearch cannot take the batch now; retrying (back-pressure on).");
                } else {
                    tracing::debug!(%reason, attempt, "Still retrying.");
                }
                self.health.not_ready(OPENSEARCH_CHECK, reason);
                self.trouble = Some(reason.clone());
            }
            None => {
                if !self.batches.iter().any(|b| b.attempt > 0) {
                    if self.trouble.take().is_some() {
                        tracing::info!(
                            latency = ?elapsed,
                            "OpenSearch takes batches again (back-pressure off)."
                        );
                    }
                    self.health.ready(OPENSEARCH_CHECK);
                }
            }
        }
        for (i, reason) in judged.rejected {
            self.reject(seq, i, reason).await?;
        }
        if let Some(delay) = next {
            self.request(seq, delay);
        }
        Ok(())
    }

    /// Sends document `i` of batch `seq` to `dead-letter` with OpenSearch's reason.
    async fn reject(&mut self, seq: u64, i: usize, reason: String) -> Result<(), ServiceError> {
        let topic = self.settings.kafka.topics.enriched.clone();
        let Some(batch) = self.batch_mut(seq) else {
            return Ok(());
        };
        let (Some(document), Some(&(partition, offset))) =
            (batch.documents.get(i), batch.positions.get(i))
        else {
            return Ok(());
        };
        let payload = document.source.to_vec();
        // The document's own place in `unsettled` passes to its dead letter.
        tracing::debug!(%reason, partition, offset, "OpenSearch rejected a document.");
        let dead = DeadLetter {
            reason: DeadLetterReason::Rejected,
            detail: reason,
            stage: STAGE.to_owned(),
            source: SourcePosition {
                topic,
                partition,
                offset,
            },
        };
        let outgoing = Outgoing {
            topic: self.settings.kafka.topics.dead_letter.clone(),
            key: None,
            payload,
            headers: None,
        };
        self.send_dead_letter(dead, outgoing, seq).await
    }

    /// Stores the offsets of settled batches, oldest first, stopping at the first unsettled one.
    fn store_settled(&mut self) {
        while self.batches.front().is_some_and(Batch::is_settled) {
            let Some(batch) = self.batches.pop_front() else {
                break;
            };
            for (partition, offset) in batch.offsets {
                // Fails only for a partition revoked meanwhile: its new owner loads from the
                // last commit, and the ids make that an overwrite.
                if let Err(err) = self.consumer.store_offset(
                    &self.settings.kafka.topics.enriched,
                    partition,
                    offset,
                ) {
                    tracing::debug!(%err, partition, offset, "Offset not stored (partition revoked).");
                }
            }
        }
    }

    fn update_gauges(&self) {
        self.metrics
            .backpressure
            .set(i64::from(self.trouble.is_some()));
        self.metrics
            .requests_in_flight
            .set(self.requests.len() as i64);
        self.metrics
            .records_in_flight
            .set(self.batches.iter().map(|b| b.records as i64).sum());
    }

    fn unsettled_records(&self) -> usize {
        self.batches.iter().map(|b| b.records).sum()
    }

    /// Sends the open batch, settles everything in flight within the deadline, and commits.
    async fn drain(mut self) -> Result<(), ServiceError> {
        self.close_open_batch();
        tracing::info!(records = self.unsettled_records(), "Draining.");
        let drained = drain(
            async {
                // Send everything now: the deadline bounds the drain, not back-pressure.
                self.trouble = None;
                loop {
                    self.dispatch();
                    self.store_settled();
                    if self.batches.is_empty() {
                        return Ok::<(), ServiceError>(());
                    }
                    tokio::select! {
                        Some(joined) = self.requests.join_next() => {
                            if let Ok(reply) = joined {
                                self.on_reply(reply).await?;
                            }
                        }
                        settled = self.dead_letters.settle_next(), if !self.dead_letters.is_empty() => {
                            if let Some(seq) = settled? {
                                self.dead_letter_settled(seq);
                            }
                        }
                    }
                }
            },
            DRAIN_DEADLINE,
        )
        .await;
        let left = self.unsettled_records();
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(err)
                if err.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {
            }
            Err(err) => {
                tracing::warn!(%err, "Final commit failed; the last records will be loaded again (overwriting).")
            }
        }
        match drained {
            Ok(result) => result,
            Err(_) => Err(ServiceError::DrainTimeout(left)),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends one bulk request and judges the answer.
async fn send_bulk(client: &OpenSearch, body: Vec<u8>, documents: usize) -> Verdict {
    let response = client
        .bulk(BulkParts::None)
        .filter_path(FILTER_PATH)
        .body(vec![bytes::Bytes::from(body)])
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => return Verdict::RetryAll(format!("OpenSearch is unreachable: {err}")),
    };
    let status = response.status_code().as_u16();
    match response.bytes().await {
        Ok(body) => bulk::classify(status, &body, documents),
        Err(err) => Verdict::RetryAll(format!("reading the bulk response: {err}")),
    }
}

/// A bulk answer sorted into what happens to each document sent.
#[derive(Debug)]
struct Judged {
    /// How many were indexed.
    indexed: usize,
    /// Those to send again (retried, or split into smaller requests).
    again: Vec<usize>,
    /// Those refused for good, with OpenSearch's reason.
    rejected: Vec<(usize, String)>,
    /// Set when `again` waits for a backoff (OpenSearch in trouble), not for a split.
    retry_reason: Option<String>,
    /// The batch's new request size, after a split.
    request_limit: Option<usize>,
    /// The request's result, for the metric.
    result: &'static str,
}

impl Judged {
    fn from_verdict(sent: &[usize], verdict: Verdict) -> Self {
        let mut judged = Self {
            indexed: 0,
            again: Vec::new(),
            rejected: Vec::new(),
            retry_reason: None,
            request_limit: None,
            result: "ok",
        };
        match verdict {
            Verdict::Items(outcomes) => {
                for (&i, outcome) in sent.iter().zip(outcomes) {
                    match outcome {
                        Outcome::Indexed => judged.indexed += 1,
                        Outcome::Retry(reason) => {
                            judged.again.push(i);
                            judged.retry_reason = Some(reason);
                        }
                        Outcome::Rejected(reason) => judged.rejected.push((i, reason)),
                    }
                }
            }
            Verdict::RetryAll(reason) => {
                judged.again = sent.to_vec();
                judged.retry_reason = Some(reason);
                judged.result = "retry";
            }
            Verdict::Split(reason) => {
                judged.result = "split";
                match sent {
                    [only] => judged.rejected.push((*only, reason)),
                    _ => {
                        judged.again = sent.to_vec();
                        judged.request_limit = Some((sent.len() / 2).max(1));
                    }
                }
            }
        }
        judged
    }
}
