//! Where generated records and labels go: the `raw` and `labels` topics, or NDJSON on stdout
//! (labels to a file) for offline use.
//!
//! Kafka deliveries are pipelined through [`pipeline::delivery::Deliveries`]: records are queued
//! in a bounded window, so the generator never waits on one round trip per record, and none is
//! dropped: a full queue waits for the oldest delivery, and a failed delivery is counted, marked
//! on `/readyz`, and sent again until it succeeds or the process is told to stop.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use pipeline::delivery::{Deliveries, DeliveryError, Event, Outgoing};
use pipeline::kafka::KafkaConfig;
use pipeline::kafka::{HealthContext, KAFKA_CHECK};
use pipeline::telemetry::Health;
use pipeline::wire::{Label, Source};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

/// Deliveries kept in flight before the oldest is awaited.
const MAX_IN_FLIGHT: usize = 50_000;

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
        pipeline::register_metrics!(
            registry,
            metrics.records,
            metrics.labels,
            metrics.errors,
            metrics.in_flight
        )?;
        Ok(metrics)
    }
}

/// Why output stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The Kafka client could not be built.
    #[error("creating the Kafka producer")]
    Client(#[source] KafkaError),
    /// A record could not be delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Writing to stdout or the labels file failed.
    #[error("writing {what}")]
    Io {
        /// stdout or the file.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The Kafka output.
#[derive(Debug)]
pub struct KafkaOutput {
    deliveries: Deliveries<(), HealthContext>,
    context: HealthContext,
    topic: String,
    labels_topic: String,
    metrics: Metrics,
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
        let context = HealthContext::new(health.clone());
        let producer: FutureProducer<HealthContext> = kafka
            .producer_config(client_id)
            .create_with_context(context.clone())
            .map_err(OutputError::Client)?;
        let errors = metrics.errors.clone();
        let deliveries = Deliveries::new(
            producer,
            MAX_IN_FLIGHT,
            shutdown,
            move |event, reason| match event {
                Event::QueueFull => errors.with_label_values(&["queue_full"]).inc(),
                Event::Retried => {
                    errors.with_label_values(&["delivery"]).inc();
                    health.not_ready(KAFKA_CHECK, reason);
                }
            },
        );
        Ok(Self {
            deliveries,
            context,
            topic: kafka.topics.raw.clone(),
            labels_topic: kafka.topics.labels.clone(),
            metrics,
        })
    }

    /// Queues one record, with its source in the `logwarden-source` header when it is a real
    /// source's (as logwarden-ingest writes them); waits only when the window or librdkafka's
    /// queue is full.
    pub async fn send(
        &mut self,
        key: String,
        payload: Vec<u8>,
        source: Option<Source>,
    ) -> Result<(), OutputError> {
        let record = Outgoing {
            topic: self.topic.clone(),
            key: Some(key.into_bytes()),
            payload,
            headers: source.map(Source::to_headers),
            partition: None,
            timestamp: None,
        };
        if !self.deliveries.send(record, ()).await?.is_empty() {
            self.context.reachable();
        }
        while self.deliveries.is_full() {
            self.deliveries.settle_next().await?;
            self.context.reachable();
        }
        self.metrics.in_flight.set(self.deliveries.len() as i64);
        Ok(())
    }

    /// Publishes a label and waits until it (and every record before it) is acknowledged.
    pub async fn send_label(&mut self, label: &Label) -> Result<(), OutputError> {
        let record = Outgoing {
            topic: self.labels_topic.clone(),
            key: Some(label.run_id.clone().into_bytes()),
            payload: label_json(label),
            headers: None,
            partition: None,
            timestamp: None,
        };
        self.deliveries.send(record, ()).await?;
        self.flush().await?;
        self.metrics.labels.inc();
        Ok(())
    }

    /// Awaits every delivery in flight.
    pub async fn flush(&mut self) -> Result<(), OutputError> {
        self.deliveries.drain(|()| {}).await?;
        self.context.reachable();
        self.metrics.in_flight.set(0);
        Ok(())
    }

    /// Records still unacknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.deliveries.len()
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
                    kind = ?label.kind,
                    "Phase label (no --labels-file given)."
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
    /// Sends one record (of `source`, when it is a real source's).
    pub async fn send(
        &mut self,
        key: String,
        payload: Vec<u8>,
        source: Option<Source>,
    ) -> Result<(), OutputError> {
        match self {
            Self::Kafka(kafka) => kafka.send(key, payload, source).await,
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
