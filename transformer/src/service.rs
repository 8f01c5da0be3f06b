//! The transformer as a Kafka service: a consumer group on `raw` that writes each record,
//! enriched, to `enriched`, or, when the rules reject it, untouched to `dead-letter` with the
//! reason in headers. Scaled by partitions: every replica joins the same group.
//!
//! Two guarantees, chosen in config:
//! - **At-least-once** (default): outputs are pipelined and settle in send order (as
//!   [`pipeline::delivery::Deliveries`] does for the other stages); an input offset is
//!   stored only when its output is delivered, and librdkafka commits stored offsets. A crash
//!   repeats at most the unsettled window; the event id (topic, partition, offset of the input)
//!   makes the repeat overwrite downstream rather than duplicate.
//! - **Exactly-once**: batches of inputs are processed inside one Kafka transaction that also
//!   carries the consumer offsets (sent with the group's metadata, so the broker fences a
//!   commit from a stale generation); an aborted or crashed transaction is invisible to
//!   `read_committed` readers and its inputs are processed again. A transaction during which
//!   partitions were revoked is aborted, never committed: the revoked partitions' offsets are no
//!   longer ours to send, and their outputs must not appear without them.
//!
//! On shutdown the loop stops taking input, settles what is in flight within the drain
//! deadline, and commits.
//!
//! This file is the loop; `router` turns an input into its output (no IO), `window` keeps the
//! outputs in flight and their reusable buffers (no IO), `outputs` sends them, and `metrics`
//! counts. An enriched record is written straight into a reused buffer and handed to rdkafka as
//! borrowed slices: the stage itself allocates nothing per record. (rdkafka does: its
//! `FutureProducer` makes a completion channel per send, and `store_offset` a C string per
//! stored offset.)

mod metrics;
mod outputs;
mod refusal;
mod router;
mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::delivery::{DeliveryError, Event};
use pipeline::kafka::HealthContext;
use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::telemetry::Health;
use pipeline::wire::DeadLetter;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

pub use self::metrics::Metrics;
use self::outputs::{Outputs, Refusals};
use self::router::Router;
use self::window::Output;
use crate::settings::{Guarantee, Settings};

/// The stage name written into dead letters.
pub const STAGE: &str = "transformer";

/// How long transactional calls may take before the service gives up on the transaction.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

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

struct Stage {
    router: Router,
    input: String,
    consumer: StreamConsumer<HealthContext>,
    /// The outputs in flight; a settled one's tag is the input offset that may be stored.
    outputs: Outputs<Tag, HealthContext>,
    context: HealthContext,
    metrics: Metrics,
    shutdown: CancellationToken,
    /// Exactly-once: inputs whose outputs Kafka refused for good in an aborted transaction, and
    /// why; each becomes a dead letter when processed again, so a refusal is not retried forever.
    refused: HashMap<(i32, i64), DeadLetter>,
}

/// One turn of the at-least-once loop.
enum Step<'a> {
    Stop,
    Settled(Result<Option<Tag>, DeliveryError>),
    Message(Result<BorrowedMessage<'a>, KafkaError>),
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
        let context = HealthContext::new(health).with_lag(metrics.lag.clone());
        let mut consumer_config = kafka.consumer_config(&client_id, &settings.group_id);
        consumer_config.set("group.instance.id", &settings.instance_id);
        // Ready once joined, even on an idle topic; see `pipeline::kafka::HealthContext`.
        HealthContext::follow_group(&mut consumer_config);
        let mut producer_config = kafka.producer_config(&client_id);
        // Every output's value and key are at most `transformer.max_record_bytes` (checked
        // before producing), its headers within `HEADERS_ROOM` (dead letters only), and
        // librdkafka refuses larger ones: one limit, one knob.
        producer_config.set(
            "message.max.bytes",
            (settings.rules.max_record_bytes() + refusal::HEADERS_ROOM).to_string(),
        );
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
        let retried = context.clone();
        let outputs = Outputs::new(
            producer,
            [
                kafka.topics.enriched.clone(),
                kafka.topics.dead_letter.clone(),
            ],
            settings.max_in_flight,
            shutdown.clone(),
            Refusals {
                input: kafka.topics.raw.clone(),
                limit: settings.rules.max_record_bytes(),
                dead_letters: metrics.dead_letters.clone(),
                transactional: settings.guarantee == Guarantee::ExactlyOnce,
                refused: Vec::new(),
            },
            move |event, reason| match event {
                Event::QueueFull => events.with_label_values(&["queue_full"]).inc(),
                Event::Retried => {
                    events.with_label_values(&["retried"]).inc();
                    retried.delivery_failed(reason);
                }
            },
        );
        Ok(Self {
            router: Router::new(settings.rules.clone(), metrics.clone()),
            input: kafka.topics.raw.clone(),
            consumer,
            outputs,
            context,
            metrics,
            shutdown,
            refused: HashMap::new(),
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
            let can_take = !self.outputs.is_full() && !self.outputs.is_retrying();
            let in_flight = !self.outputs.is_empty();
            let step = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Step::Stop,
                settled = self.outputs.settle_next(), if in_flight => Step::Settled(settled),
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
                    let mut output = self.outputs.take();
                    self.router.route(&message, &mut output);
                    drop(message);
                    for done in self.outputs.send(output, tag).await? {
                        self.settled(done);
                    }
                }
            }
            self.metrics.in_flight.set(self.outputs.len() as i64);
        }

        tracing::info!(in_flight = self.outputs.len(), "Draining.");
        let drained = drain(
            async {
                while let Some(tag) = self.outputs.settle_next().await? {
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
        let producer = self.outputs.producer().clone();
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
            // Partitions revoked while the transaction is open (a rebalance, served inside
            // `recv`) take their offsets with them: the transaction could then commit their
            // outputs without their offsets, and their new owner would produce them again.
            let revocations = self.context.revocations();
            let tag = (first.partition(), first.offset(), Instant::now());
            let mut output = self.outputs.take();
            route_transactional(&mut self.refused, &mut self.router, &first, &mut output);
            drop(first);
            let mut count = 1;
            let mut result = self.outputs.send(output, tag).await.map(drop);
            let deadline = tokio::time::Instant::now() + settings.transaction_time;
            while result.is_ok() && count < settings.transaction_records {
                let message = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    () = self.shutdown.cancelled() => break,
                    message = self.consumer.recv() => message,
                };
                let Ok(message) = message else { continue };
                let tag = (message.partition(), message.offset(), Instant::now());
                let mut output = self.outputs.take();
                route_transactional(&mut self.refused, &mut self.router, &message, &mut output);
                drop(message);
                result = self.outputs.send(output, tag).await.map(drop);
                count += 1;
            }
            // Every output of the transaction must be acknowledged before the commit (else the
            // commit waits in 100 ms steps for them).
            if result.is_ok() {
                result = self
                    .outputs
                    .drain(|tag| {
                        self.metrics
                            .delivery_seconds
                            .observe(tag.2.elapsed().as_secs_f64())
                    })
                    .await;
            }
            let committed = match result {
                Ok(()) if self.context.revocations() != revocations => Err(
                    "partitions were revoked during the transaction (a rebalance); its outputs \
                     go with them"
                        .to_owned(),
                ),
                Ok(()) => self.commit_transaction(&producer),
                Err(err) => Err(format!("delivery failed: {err}")),
            };
            match committed {
                Ok(()) => {
                    // Committed with their offsets: those inputs are not processed again.
                    self.refused.clear();
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
                    let refused = self.outputs.aborted().await;
                    self.refused.extend(refused);
                    self.rewind_to_committed()?;
                }
            }
        }
        Ok(())
    }

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

/// Exactly-once routing: an input whose output Kafka refused for good in an aborted transaction
/// becomes its dead letter; any other is routed. (Apart from `Stage`: the consumer is borrowed
/// by the message meanwhile.)
fn route_transactional(
    refused: &mut HashMap<(i32, i64), DeadLetter>,
    router: &mut Router,
    message: &BorrowedMessage<'_>,
    output: &mut Output,
) {
    match refused.get(&(message.partition(), message.offset())) {
        Some(dead) => router.refused(message, output, dead),
        None => router.route(message, output),
    }
}
