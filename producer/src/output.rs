//! Where generated records and labels go: the `raw` and `labels` topics, or NDJSON on stdout
//! (labels to a file) for offline use.
//!
//! Kafka deliveries are pipelined: a record is queued and its delivery future kept in a bounded
//! window, oldest first, so the generator never waits on one round trip per record. A record is
//! never dropped: a full local queue waits for the oldest delivery, and a failed delivery (the
//! broker unreachable for longer than `message.timeout.ms`) is logged, counted, marked on
//! `/readyz`, and sent again after a backoff until it succeeds or the process is told to stop.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::Health;
use pipeline::wire::Label;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

/// Deliveries kept in flight before the oldest is awaited.
const MAX_IN_FLIGHT: usize = 50_000;

/// The readiness check this module maintains.
pub const KAFKA_CHECK: &str = "kafka";

/// The producer's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records produced, by mode (`normal`, `anomaly`) and target field (`none` when normal).
    pub records: IntCounterVec,
    /// Labels published.
    pub labels: IntCounter,
    /// Produce errors by kind (`queue_full` waits, `delivery` failures that were retried).
    pub errors: IntCounterVec,
    /// Deliveries awaiting the broker's acknowledgement.
    pub in_flight: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            records: IntCounterVec::new(
                Opts::new(
                    "producer_records_total",
                    "Records produced, by mode and target field.",
                ),
                &["mode", "field"],
            )?,
            labels: IntCounter::new("producer_labels_total", "Ground-truth labels published.")?,
            errors: IntCounterVec::new(
                Opts::new(
                    "producer_errors_total",
                    "Produce errors by kind; no record is dropped.",
                ),
                &["kind"],
            )?,
            in_flight: IntGauge::new(
                "producer_in_flight",
                "Deliveries awaiting the broker's acknowledgement.",
            )?,
        };
        registry.register(Box::new(metrics.records.clone()))?;
        registry.register(Box::new(metrics.labels.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        Ok(metrics)
    }
}

/// Why output stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The Kafka client could not be built.
    #[error("creating the Kafka producer: {0}")]
    Client(#[source] KafkaError),
    /// Kafka refused a record for a reason that retrying cannot fix (e.g. too large).
    #[error("producing to `{topic}`: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// Writing to stdout or the labels file failed.
    #[error("writing {what}: {source}")]
    Io {
        /// stdout or the file.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Stopped by a signal while records were still unacknowledged.
    #[error("stopped with {0} records not acknowledged by Kafka")]
    Unacknowledged(usize),
}

/// Marks Kafka unready when librdkafka reports every broker down.
#[derive(Debug)]
struct ReadinessContext {
    health: Arc<Health>,
}

impl ClientContext for ReadinessContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.not_ready(KAFKA_CHECK, reason);
        }
        tracing::warn!(%error, reason, "Kafka client error; retrying.");
    }
}

/// A record queued with the broker and what is needed to send it again.
struct Pending {
    key: String,
    payload: Vec<u8>,
    delivery: DeliveryFuture,
}

/// The Kafka output.
pub struct KafkaOutput {
    producer: FutureProducer<ReadinessContext>,
    topic: String,
    labels_topic: String,
    in_flight: VecDeque<Pending>,
    metrics: Metrics,
    health: Arc<Health>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for KafkaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOutput")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl KafkaOutput {
    /// A producer for `kafka`'s raw and labels topics.
    pub fn new(
        kafka: &KafkaConfig,
        client_id: &str,
        metrics: Metrics,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) -> Result<Self, OutputError> {
        health.register(KAFKA_CHECK, "connecting");
        let producer = kafka
            .producer_config(client_id)
            .create_with_context(ReadinessContext {
                health: Arc::clone(&health),
            })
            .map_err(OutputError::Client)?;
        Ok(Self {
            producer,
            topic: kafka.topics.raw.clone(),
            labels_topic: kafka.topics.labels.clone(),
            in_flight: VecDeque::new(),
            metrics,
            health,
            shutdown,
        })
    }

    /// Queues one record; waits only when the window or librdkafka's queue is full.
    pub async fn send(&mut self, key: String, payload: Vec<u8>) -> Result<(), OutputError> {
        loop {
            let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
            match self.producer.send_result(record) {
                Ok(delivery) => break self.push(key, payload, delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.metrics.errors.with_label_values(&["queue_full"]).inc();
                    if !self.settle_oldest().await? {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err((source, _)) => {
                    return Err(OutputError::Produce {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
        }
        while self.in_flight.len() > MAX_IN_FLIGHT {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    fn push(&mut self, key: String, payload: Vec<u8>, delivery: DeliveryFuture) {
        self.in_flight.push_back(Pending {
            key,
            payload,
            delivery,
        });
        self.metrics.in_flight.set(self.in_flight.len() as i64);
    }

    /// Awaits the oldest delivery; a failed one is queued again after a backoff. Returns whether
    /// there was anything to settle.
    async fn settle_oldest(&mut self) -> Result<bool, OutputError> {
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        self.metrics.in_flight.set(self.in_flight.len() as i64);
        match pending.delivery.await {
            Ok(Ok(_)) => {
                self.health.ready(KAFKA_CHECK);
                Ok(true)
            }
            Ok(Err((error, _))) => {
                self.retry(pending.key, pending.payload, &error.to_string())
                    .await?;
                Ok(true)
            }
            Err(_cancelled) => {
                self.retry(pending.key, pending.payload, "delivery cancelled")
                    .await?;
                Ok(true)
            }
        }
    }

    async fn retry(
        &mut self,
        key: String,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), OutputError> {
        self.metrics.errors.with_label_values(&["delivery"]).inc();
        self.health.not_ready(KAFKA_CHECK, reason);
        tracing::warn!(reason, "Delivery failed; sending the record again.");
        let mut backoff = Duration::from_millis(500);
        loop {
            let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.push(key, payload, delivery);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
                Err((source, _)) => {
                    return Err(OutputError::Produce {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.shutdown.cancelled() => return Err(OutputError::Unacknowledged(self.in_flight.len() + 1)),
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Publishes a label and waits for its acknowledgement.
    pub async fn send_label(&mut self, label: &Label) -> Result<(), OutputError> {
        let payload = label_json(label);
        loop {
            let record = FutureRecord::to(&self.labels_topic)
                .key(&label.run_id)
                .payload(&payload);
            let result = match self.producer.send_result(record) {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(error.to_string()),
                    Err(_) => Err("delivery cancelled".to_owned()),
                },
                Err((error, _)) => Err(error.to_string()),
            };
            match result {
                Ok(()) => {
                    self.metrics.labels.inc();
                    return Ok(());
                }
                Err(reason) => {
                    self.metrics.errors.with_label_values(&["delivery"]).inc();
                    tracing::warn!(reason, "Label delivery failed; retrying.");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.shutdown.cancelled() => return Err(OutputError::Unacknowledged(1)),
                    }
                }
            }
        }
    }

    /// Awaits every delivery in flight.
    pub async fn flush(&mut self) -> Result<(), OutputError> {
        while self.settle_oldest().await? {}
        // Nothing is in flight; this only drains librdkafka's own bookkeeping.
        let _ = self.producer.flush(Duration::from_secs(5));
        Ok(())
    }

    /// Records still unacknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.in_flight.len()
    }
}

fn label_json(label: &Label) -> Vec<u8> {
    // A `Label` holds only strings and integers: serializing cannot fail.
    serde_json::to_vec(label).unwrap_or_default()
}

/// NDJSON on stdout, labels to an optional file.
#[derive(Debug)]
pub struct StdoutOutput {
    out: BufWriter<std::io::Stdout>,
    labels: Option<(String, BufWriter<File>)>,
    metrics: Metrics,
}

impl StdoutOutput {
    /// Writes records to stdout and labels to `labels_file` (created or truncated).
    pub fn new(labels_file: Option<&Path>, metrics: Metrics) -> Result<Self, OutputError> {
        let labels = labels_file
            .map(|path| {
                let what = path.display().to_string();
                File::create(path)
                    .map(|file| (what.clone(), BufWriter::new(file)))
                    .map_err(|source| OutputError::Io { what, source })
            })
            .transpose()?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, std::io::stdout()),
            labels,
            metrics,
        })
    }

    /// Writes one record line.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), OutputError> {
        self.out
            .write_all(payload)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| OutputError::Io {
                what: "stdout".into(),
                source,
            })
    }

    /// Writes one label line to the labels file, or logs it when there is none.
    pub fn send_label(&mut self, label: &Label) -> Result<(), OutputError> {
        self.metrics.labels.inc();
        match &mut self.labels {
            Some((what, file)) => {
                let line = label_json(label);
                file.write_all(&line)
                    .and_then(|()| file.write_all(b"\n"))
                    .and_then(|()| file.flush())
                    .map_err(|source| OutputError::Io {
                        what: what.clone(),
                        source,
                    })
            }
            None => {
                tracing::info!(
                    field = %label.field,
                    start_ms = label.start_ms,
                    end_ms = label.end_ms,
                    phase = label.phase,
                    "Anomaly phase (no --labels-file given)."
                );
                Ok(())
            }
        }
    }

    /// Flushes stdout.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(|source| OutputError::Io {
            what: "stdout".into(),
            source,
        })
    }
}

/// Either output.
#[derive(Debug)]
pub enum Output {
    /// Kafka topics.
    Kafka(KafkaOutput),
    /// stdout and a labels file.
    Stdout(StdoutOutput),
}

impl Output {
    /// Sends one record.
    pub async fn send(&mut self, key: String, payload: Vec<u8>) -> Result<(), OutputError> {
        match self {
            Self::Kafka(kafka) => kafka.send(key, payload).await,
            Self::Stdout(stdout) => stdout.send(&payload),
        }
    }

    /// Publishes one label.
    pub async fn send_label(&mut self, label: &Label) -> Result<(), OutputError> {
        match self {
            Self::Kafka(kafka) => kafka.send_label(label).await,
            Self::Stdout(stdout) => stdout.send_label(label),
        }
    }

    /// Waits until everything sent is acknowledged (Kafka) or written (stdout).
    pub async fn flush(&mut self) -> Result<(), OutputError> {
        match self {
            Self::Kafka(kafka) => kafka.flush().await,
            Self::Stdout(stdout) => stdout.flush(),
        }
    }

    /// Records sent but not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        match self {
            Self::Kafka(kafka) => kafka.unacknowledged(),
            Self::Stdout(_) => 0,
        }
    }
}
