//! The Kafka side of every receiver: a batch of records of one source goes to `raw`, each with
//! its source header, and [`Writer::write`] returns only when Kafka acknowledged every one of them
//! (or says why not), so a receiver acknowledges its sender only for what is durable.
//!
//! Unlike the pipeline's stages, which retry a failed delivery forever because their input waits
//! in Kafka, a receiver's input waits in its sender: a failure is handed back (the sender is told
//! to retry: HTTP 503, or a syslog connection whose reads stay paused), bounded by `ack_timeout`.
//! librdkafka's `message.timeout.ms` is set to the same bound, so a record is not delivered long
//! after its sender was told it failed. A retried request may still duplicate records that were
//! delivered just before the failure: delivery is at least once.

use std::time::Duration;

use pipeline::kafka::{HealthContext, KafkaConfig};
use pipeline::telemetry::Health;
use pipeline::wire::Source;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;

use crate::http::refusal::Refusal;
use crate::metrics::Metrics;
use pipeline::backoff::{Backoff, Retries};

/// Why records could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// librdkafka's queue is full: Kafka is slower than the senders.
    #[error("the Kafka producer's queue is full")]
    QueueFull,
    /// Kafka did not acknowledge in time, or is unreachable.
    #[error("Kafka did not acknowledge the records: {0}")]
    Unavailable(String),
    /// A record is larger than the broker accepts.
    #[error("Kafka refused a record as too large: {0}")]
    TooLarge(String),
    /// Kafka refused a record for another reason retrying cannot fix.
    #[error("Kafka refused a record: {0}")]
    Refused(String),
}

/// The producer to `raw`.
#[derive(Clone)]
pub struct Writer {
    producer: FutureProducer<HealthContext>,
    context: HealthContext,
    topic: String,
    metrics: Metrics,
    ack_timeout: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("topic", &self.topic)
            .field("ack_timeout", &self.ack_timeout)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A producer for `kafka`'s `raw` topic reporting to `health`'s `kafka` check.
    pub fn new(
        kafka: &KafkaConfig,
        ack_timeout: Duration,
        metrics: Metrics,
        health: Arc<Health>,
    ) -> Result<Self, KafkaError> {
        let context = HealthContext::new(health);
        let mut config = kafka.producer_config("logwarden-ingest");
        if !kafka.properties.contains_key("message.timeout.ms") {
            config.set("message.timeout.ms", ack_timeout.as_millis().to_string());
        }
        let producer: FutureProducer<HealthContext> =
            config.create_with_context(context.clone())?;
        Ok(Self {
            producer,
            context,
            topic: kafka.topics.raw.clone(),
            metrics,
            ack_timeout,
        })
    }

    /// Asks the brokers for metadata: marks `/readyz` ready when they answer.
    pub async fn probe(&self) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        let timeout = self.ack_timeout.min(Duration::from_secs(10));
        tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|_| ())
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))?;
        self.context.reachable();
        Ok(())
    }

    /// Writes `records` (payloads) of `source` and waits until Kafka acknowledged all of them.
    pub async fn write(&self, source: Source, records: &[Vec<u8>]) -> Result<(), WriteError> {
        let deadline = tokio::time::Instant::now() + self.ack_timeout;
        let headers = source.to_headers();
        let mut deliveries = Vec::with_capacity(records.len());
        let mut queued = Ok(());
        for payload in records {
            let record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(payload)
                .headers(headers.clone());
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    queued = Err(WriteError::QueueFull);
                    break;
                }
                Err((err, _)) => {
                    queued = Err(classify(&err));
                    break;
                }
            }
        }
        // Await what was queued even after a failure to queue the rest: it is delivered or
        // times out within the same bound, and the health check learns which.
        let mut outcome = queued;
        for delivery in deliveries {
            let result = match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(_))) => Ok(()),
                Ok(Ok(Err((err, _)))) => Err(classify(&err)),
                Ok(Err(_canceled)) => Err(WriteError::Unavailable("delivery canceled".into())),
                Err(_elapsed) => Err(WriteError::Unavailable(format!(
                    "no acknowledgement within {:?}",
                    self.ack_timeout
                ))),
            };
            if let Err(err) = result
                && outcome.is_ok()
            {
                outcome = Err(err);
            }
        }
        match &outcome {
            Ok(()) => {
                self.context.reachable();
                self.metrics
                    .records
                    .with_label_values(&[source.as_str()])
                    .inc_by(records.len() as u64);
            }
            Err(WriteError::Unavailable(reason)) => self.context.delivery_failed(reason),
            Err(_) => {}
        }
        outcome
    }

    /// Writes `batch` as [`Writer::write`] does, retrying (100 ms doubling to `max_wait`) until
    /// Kafka has it (true) or `shutdown` (false): for receivers whose senders cannot be told to
    /// retry (syslog, files). Each failure is counted under `receiver`.
    pub async fn write_until_done(
        &self,
        source: Source,
        batch: &[Vec<u8>],
        receiver: &str,
        max_wait: Duration,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> bool {
        let mut retries = Retries::new(Backoff::new(Duration::from_millis(100), max_wait));
        loop {
            let err = match self.write(source, batch).await {
                Ok(()) => return true,
                Err(err) => err,
            };
            let refusal = Refusal::from(err);
            self.metrics
                .refused
                .with_label_values(&[receiver, refusal.reason.as_str()])
                .inc();
            let wait = retries.next_delay();
            tracing::warn!(receiver, detail = %refusal.detail, ?wait, records = batch.len(), "Batch not written; retrying.");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// Waits (at most `timeout`) for what librdkafka still holds.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(%err, "Records still queued at shutdown.");
        }
    }
}

fn classify(err: &KafkaError) -> WriteError {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => WriteError::TooLarge(err.to_string()),
        Some(
            RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic,
        ) => WriteError::Refused(err.to_string()),
        _ => WriteError::Unavailable(err.to_string()),
    }
}
