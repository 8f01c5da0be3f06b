//! The transformer as a Kafka service: a consumer group on `raw` that writes each record,
//! enriched, to `enriched`, or, when the rules reject it, untouched to `dead-letter` with the
//! reason in headers. Scaled by partitions: every replica joins the same group.
//!
//! Two guarantees, chosen in config:
//! - **At-least-once** (default): outputs are pipelined through
//!   [`pipeline::delivery::Deliveries`], which settles them in send order; an input offset is
//!   stored only when its output is delivered, and librdkafka commits stored offsets. A crash
//!   repeats at most the unsettled window; the event id (topic, partition, offset of the input)
//!   makes the repeat overwrite downstream rather than duplicate.
//! - **Exactly-once**: batches of inputs are processed inside one Kafka transaction that also
//!   carries the consumer offsets; an aborted or crashed transaction is invisible to
//!   `read_committed` readers and its inputs are processed again.
//!
//! On shutdown the loop stops taking input, settles what is in flight within the drain
//! deadline, and commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::delivery::{Deliveries, DeliveryError, Event, Outgoing};
use pipeline::kafka::{HealthContext, KAFKA_CHECK};
use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::telemetry::Health;
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::rules::CompiledRules;
use crate::settings::{Guarantee, Settings};

/// The stage name written into dead letters.
pub const STAGE: &str = "transformer";

/// How long transactional calls may take before the service gives up on the transaction.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The transformer's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records consumed from `raw`.
    pub records_in: IntCounter,
    /// Records written to `enriched`.
    pub records_out: IntCounter,
    /// Records written to `dead-letter`, by reason.
    pub dead_letters: IntCounterVec,
    /// Time to apply the rules to one record.
    pub transform_seconds: Histogram,
    /// Time from send to acknowledgement of an output.
    pub delivery_seconds: Histogram,
    /// Outputs awaiting acknowledgement.
    pub in_flight: IntGauge,
    /// Delivery retries and full-queue waits, by kind.
    pub delivery_events: IntCounterVec,
    /// Transactions, by outcome (`committed`, `aborted`).
    pub transactions: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            records_in: IntCounter::new(
                "transformer_records_in_total",
                "Records consumed from raw.",
            )?,
            records_out: IntCounter::new(
                "transformer_records_out_total",
                "Records written to enriched.",
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "transformer_dead_letters_total",
                    "Records written to dead-letter, by reason.",
                ),
                &["reason"],
            )?,
            transform_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "transformer_transform_seconds",
                    "Time to apply the rules to one record.",
                )
                .buckets(vec![1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3]),
            )?,
            delivery_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "transformer_delivery_seconds",
                    "Time from send to acknowledgement of an output.",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            )?,
            in_flight: IntGauge::new("transformer_in_flight", "Outputs awaiting acknowledgement.")?,
            delivery_events: IntCounterVec::new(
                Opts::new(
                    "transformer_delivery_events_total",
                    "Delivery retries and full-queue waits.",
                ),
                &["kind"],
            )?,
            transactions: IntCounterVec::new(
                Opts::new(
                    "transformer_transactions_total",
                    "Transactions by outcome (exactly-once).",
                ),
                &["outcome"],
            )?,
        };
        for reason in DeadLetterReason::ALL {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        pipeline::register_metrics!(
            registry,
            metrics.records_in,
            metrics.records_out,
            metrics.dead_letters,
            metrics.transform_seconds,
            metrics.delivery_seconds,
            metrics.in_flight,
            metrics.delivery_events,
            metrics.transactions
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
    /// An output could not be delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// A transaction could not be completed and not aborted either (e.g. the producer was
    /// fenced by another instance with the same id).
    #[error("transaction: {0}")]
    Transaction(#[source] KafkaError),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Draining did not finish in time; uncommitted inputs will be processed again.
    #[error("shutdown: in-flight outputs not settled within {0:?}")]
    DrainTimeout(Duration),
}

/// Runs the stage until the shutdown token is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let stage = Stage::new(
        &settings,
        metrics,
        service.telemetry.health.clone(),
        service.shutdown.clone(),
    )?;
    tracing::info!(
        group = %settings.group_id,
        instance = %settings.instance_id,
        guarantee = ?settings.guarantee,
        input = %settings.kafka.topics.raw,
        output = %settings.kafka.topics.enriched,
        "Transforming."
    );
    match settings.guarantee {
        Guarantee::AtLeastOnce => stage.at_least_once().await,
        Guarantee::ExactlyOnce => stage.exactly_once(&settings).await,
    }
}

/// The input position of an output, and when it was sent.
type Tag = (i32, i64, Instant);

/// Turns inputs into outputs; apart from the consumer so both can be borrowed at once.
struct Router {
    rules: CompiledRules,
    enriched: String,
    dead_letter: String,
    metrics: Metrics,
    /// Reused for every record's enriched form.
    buffer: Vec<u8>,
}

struct Stage {
    router: Router,
    input: String,
    consumer: StreamConsumer<HealthContext>,
    deliveries: Deliveries<Tag, HealthContext>,
    context: HealthContext,
    metrics: Metrics,
    shutdown: CancellationToken,
}

/// One turn of the at-least-once loop.
enum Step<'a> {
    Stop,
    Settled(Result<Option<Tag>, DeliveryError>),
    Message(Result<BorrowedMessage<'a>, KafkaError>),
}

impl Router {
    /// The output for one input: the enriched record, or the input as a dead letter.
    fn route(&mut self, message: &BorrowedMessage<'_>) -> Outgoing {
        self.metrics.records_in.inc();
        let payload = message.payload().unwrap_or_default();
        let source = SourcePosition {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        self.buffer.clear();
        let started = Instant::now();
        let result = self.rules.apply(payload, &source, &mut self.buffer);
        self.metrics
            .transform_seconds
            .observe(started.elapsed().as_secs_f64());
        let key = message.key().map(<[u8]>::to_vec);
        match result {
            Ok(()) => {
                self.metrics.records_out.inc();
                Outgoing {
                    topic: self.enriched.clone(),
                    key,
                    payload: self.buffer.clone(),
                    headers: None,
                }
            }
            Err(rejection) => {
                self.metrics
                    .dead_letters
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                tracing::debug!(reason = %rejection.reason, detail = %rejection.detail, partition = source.partition, offset = source.offset, "Dead letter.");
                let dead = DeadLetter {
                    reason: rejection.reason,
                    detail: rejection.detail,
                    stage: STAGE.to_owned(),
                    source,
                };
                Outgoing {
                    topic: self.dead_letter.clone(),
                    key,
                    payload: payload.to_vec(),
                    headers: Some(dead.to_headers()),
                }
            }
        }
    }
}

impl Stage {
    fn new(
        settings: &Settings,
        metrics: Metrics,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServiceError> {
        let kafka = &settings.kafka;
        let client_id = format!("logwarden-transformer-{}", settings.instance_id);
        let context = HealthContext::new(health.clone());
        let mut consumer_config = kafka.consumer_config(&client_id, &settings.group_id);
        consumer_config.set("group.instance.id", &settings.instance_id);
        let mut producer_config = kafka.producer_config(&client_id);
        if settings.guarantee == Guarantee::ExactlyOnce {
            consumer_config.set("enable.auto.commit", "false");
            producer_config
                .set(
                    "transactional.id",
                    format!("{}-{}", settings.group_id, settings.instance_id),
                )
                // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
                .set("transaction.timeout.ms", "60000")
                .set("message.timeout.ms", "60000");
        }
        let consumer: StreamConsumer<HealthContext> = consumer_config
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        consumer
            .subscribe(&[&kafka.topics.raw])
            .map_err(ServiceError::Client)?;
        let producer: FutureProducer<HealthContext> = producer_config
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        let events = metrics.delivery_events.clone();
        let deliveries = Deliveries::new(
            producer,
            settings.max_in_flight,
            shutdown.clone(),
            move |event, reason| match event {
                Event::QueueFull => events.with_label_values(&["queue_full"]).inc(),
                Event::Retried => {
                    events.with_label_values(&["retried"]).inc();
                    health.not_ready(KAFKA_CHECK, reason);
                }
            },
        );
        Ok(Self {
            router: Router {
                rules: settings.rules.clone(),
                enriched: kafka.topics.enriched.clone(),
                dead_letter: kafka.topics.dead_letter.clone(),
                metrics: metrics.clone(),
                buffer: Vec::with_capacity(4096),
            },
            input: kafka.topics.raw.clone(),
            consumer,
            deliveries,
            context,
            metrics,
            shutdown,
        })
    }

    /// Marks an input done: its offset may be committed.
    fn settled(&self, (partition, offset, sent): Tag) {
        self.metrics
            .delivery_seconds
            .observe(sent.elapsed().as_secs_f64());
        // Fails only for a partition revoked meanwhile: its new owner reprocesses from the last
        // commit, which at-least-once allows.
        if let Err(err) = self.consumer.store_offset(&self.input, partition, offset) {
            tracing::debug!(%err, partition, offset, "Offset not stored (partition revoked).");
        }
    }

    async fn at_least_once(mut self) -> Result<(), ServiceError> {
        loop {
            let can_take = !self.deliveries.is_full() && !self.deliveries.is_retrying();
            let in_flight = !self.deliveries.is_empty();
            let step = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Step::Stop,
                settled = self.deliveries.settle_next(), if in_flight => Step::Settled(settled),
                message = self.consumer.recv(), if can_take => Step::Message(message),
            };
            match step {
                Step::Stop => break,
                Step::Settled(settled) => {
                    if let Some(tag) = settled? {
                        self.settled(tag);
                        self.context.reachable();
                    }
                }
                Step::Message(Err(err)) => {
                    tracing::warn!(%err, "Consuming failed; librdkafka retries.");
                }
                Step::Message(Ok(message)) => {
                    let tag = (message.partition(), message.offset(), Instant::now());
                    let outgoing = self.router.route(&message);
                    drop(message);
                    for done in self.deliveries.send(outgoing, tag).await? {
                        self.settled(done);
                    }
                }
            }
            self.metrics.in_flight.set(self.deliveries.len() as i64);
        }

        tracing::info!(in_flight = self.deliveries.len(), "Draining.");
        let drained = drain(
            async {
                while let Some(tag) = self.deliveries.settle_next().await? {
                    self.settled(tag);
                }
                Ok::<(), DeliveryError>(())
            },
            DRAIN_DEADLINE,
        )
        .await;
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            // Nothing stored since the last commit: nothing to do.
            Err(err)
                if err.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {
            }
            Err(err) => {
                tracing::warn!(%err, "Final commit failed; the last inputs will be processed again.")
            }
        }
        match drained {
            Ok(result) => result.map_err(ServiceError::from),
            Err(_) => Err(ServiceError::DrainTimeout(DRAIN_DEADLINE)),
        }
    }

    async fn exactly_once(mut self, settings: &Settings) -> Result<(), ServiceError> {
        let producer = self.deliveries.producer().clone();
        producer
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(ServiceError::Transaction)?;
        while !self.shutdown.is_cancelled() {
            // Wait for the first record of a batch without holding a transaction open.
            let first = tokio::select! {
                () = self.shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            let first = match first {
                Ok(message) => message,
                Err(err) => {
                    tracing::warn!(%err, "Consuming failed; librdkafka retries.");
                    continue;
                }
            };
            producer
                .begin_transaction()
                .map_err(ServiceError::Transaction)?;
            let tag = (first.partition(), first.offset(), Instant::now());
            let outgoing = self.router.route(&first);
            drop(first);
            let mut count = 1;
            let mut result = self.deliveries.send(outgoing, tag).await.map(drop);
            let deadline = tokio::time::Instant::now() + settings.transaction_time;
            while result.is_ok() && count < settings.transaction_records {
                let message = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    () = self.shutdown.cancelled() => break,
                    message = self.consumer.recv() => message,
                };
                let Ok(message) = message else { continue };
                let tag = (message.partition(), message.offset(), Instant::now());
                let outgoing = self.router.route(&message);
                drop(message);
                result = self.deliveries.send(outgoing, tag).await.map(drop);
                count += 1;
            }
            // Every output of the transaction must be acknowledged before the commit (else the
            // commit waits in 100 ms steps for them).
            if result.is_ok() {
                result = self
                    .deliveries
                    .drain(|tag| {
                        self.metrics
                            .delivery_seconds
                            .observe(tag.2.elapsed().as_secs_f64())
                    })
                    .await;
            }
            let committed = match result {
                Ok(()) => self.commit_transaction(&producer),
                Err(err) => Err(format!("delivery failed: {err}")),
            };
            match committed {
                Ok(()) => {
                    self.metrics
                        .transactions
                        .with_label_values(&["committed"])
                        .inc();
                    self.context.reachable();
                }
                Err(err) => {
                    self.metrics
                        .transactions
                        .with_label_values(&["aborted"])
                        .inc();
                    tracing::warn!(%err, records = count, "Transaction failed; aborting and processing its inputs again.");
                    producer
                        .abort_transaction(TRANSACTION_TIMEOUT)
                        .map_err(ServiceError::Transaction)?;
                    self.rewind_to_committed()?;
                }
            }
        }
        Ok(())
    }

    /// Sends the consumer's positions into the open transaction and commits it.
    /// Sends the consumer's positions into the open transaction and commits it; the error says
    /// what failed (it is logged, and the transaction aborted).
    fn commit_transaction(&self, producer: &FutureProducer<HealthContext>) -> Result<(), String> {
        let positions = self
            .consumer
            .position()
            .map_err(|e| format!("reading positions: {e}"))?;
        let mut offsets = TopicPartitionList::new();
        for element in positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                offsets
                    .add_partition_offset(
                        element.topic(),
                        element.partition(),
                        Offset::Offset(offset),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or("the consumer has no group metadata yet")?;
        producer
            .send_offsets_to_transaction(&offsets, &metadata, TRANSACTION_TIMEOUT)
            .map_err(|e| format!("sending offsets: {e}"))?;
        producer
            .commit_transaction(TRANSACTION_TIMEOUT)
            .map_err(|e| format!("committing: {e}"))
    }

    /// After an abort: seek every assigned partition back to its committed offset, so the
    /// aborted inputs are processed again.
    fn rewind_to_committed(&self) -> Result<(), ServiceError> {
        let committed = self
            .consumer
            .committed(TRANSACTION_TIMEOUT)
            .map_err(ServiceError::Client)?;
        for element in committed.elements() {
            let offset = match element.offset() {
                Offset::Offset(offset) => Offset::Offset(offset),
                _ => Offset::Beginning,
            };
            self.consumer
                .seek(
                    element.topic(),
                    element.partition(),
                    offset,
                    TRANSACTION_TIMEOUT,
                )
                .map_err(ServiceError::Client)?;
        }
        Ok(())
    }
}
