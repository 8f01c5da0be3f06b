//! What the detector sends to Kafka: anomalous results on `anomalies` (the same document as in
//! the results index, keyed by the detector's name so one detector's anomalies stay in order)
//! and records it cannot read on `dead-letter` (the bytes untouched, the reason and the source
//! partition and offset in headers, like the other stages' dead letters).
//!
//! Both go through [`pipeline::delivery`]: a failed delivery is sent again (with backoff) until
//! it is acknowledged, and a checkpoint is saved only after everything sent before it settled
//! ([`Outputs::settle`]), so a restart never resumes past an anomaly or a dead letter that was
//! not delivered: at least once. What the broker refuses for good (a record too large for the
//! topic, say) is logged and counted (`logwarden_detector_outputs_refused_total`); an anomaly is
//! still in the results index then.

use pipeline::delivery::{Deliveries, DeliveryError, Outgoing};
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::store::ResultDoc;

use super::metrics::Metrics;

/// The most sends in flight before the loop waits for the oldest.
const MAX_IN_FLIGHT: usize = 10_000;

/// What a send carries, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// An anomalous result on `anomalies`.
    Anomaly,
    /// An unreadable record on `dead-letter`.
    DeadLetter,
}

impl Output {
    fn label(self) -> &'static str {
        match self {
            Self::Anomaly => "anomaly",
            Self::DeadLetter => "dead_letter",
        }
    }
}

/// The topics written and the deliveries in flight.
pub(super) struct Outputs {
    deliveries: Deliveries<Output>,
    anomalies: String,
    dead_letter: String,
    input: String,
    metrics: Metrics,
}

/// Why the outputs could not all be settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stopped;

impl Outputs {
    /// Sends through `producer` to the `anomalies` and `dead_letter` topics; records read from
    /// `input` are the dead letters' source. Retries end when `stop` is cancelled.
    pub(super) fn new(
        producer: FutureProducer,
        topics: &pipeline::kafka::TopicNames,
        metrics: &Metrics,
        stop: CancellationToken,
    ) -> Self {
        let retried = metrics.outputs_retried.clone();
        Self {
            deliveries: Deliveries::new(producer, MAX_IN_FLIGHT, stop, move |_, _| {
                retried.inc();
            }),
            anomalies: topics.anomalies.clone(),
            dead_letter: topics.dead_letter.clone(),
            input: topics.enriched.clone(),
            metrics: metrics.clone(),
        }
    }

    /// Sends an anomalous result to `anomalies`.
    pub(super) async fn anomaly(&mut self, result: &ResultDoc) -> Result<(), Stopped> {
        let record = Outgoing {
            topic: self.anomalies.clone(),
            key: Some(result.detector_name.as_bytes().to_vec()),
            payload: serde_json::to_vec(result).unwrap_or_default(),
            headers: None,
            partition: None,
            timestamp: None,
        };
        self.send(record, Output::Anomaly).await
    }

    /// Sends the record at `partition`/`offset` of the input to `dead-letter` with its reason.
    pub(super) async fn dead_letter(
        &mut self,
        (partition, offset): (i32, i64),
        payload: &[u8],
        (reason, detail): (DeadLetterReason, String),
    ) -> Result<(), Stopped> {
        tracing::warn!(partition, offset, %reason, %detail, "An enriched record cannot be read: sent to the dead-letter topic.");
        self.metrics
            .dead_letters
            .with_label_values(&[reason.as_str()])
            .inc();
        let letter = DeadLetter {
            reason,
            detail,
            stage: "detector".to_owned(),
            source: SourcePosition {
                topic: self.input.clone(),
                partition,
                offset,
            },
        };
        let record = Outgoing {
            topic: self.dead_letter.clone(),
            key: None,
            payload: payload.to_vec(),
            headers: Some(letter.to_headers()),
            partition: None,
            timestamp: None,
        };
        self.send(record, Output::DeadLetter).await
    }

    async fn send(&mut self, record: Outgoing, output: Output) -> Result<(), Stopped> {
        if self.deliveries.is_full() {
            self.settle_one().await?;
        }
        let topic = record.topic.clone();
        match self.deliveries.send(record, output).await {
            Ok(settled) => {
                for output in settled {
                    self.delivered(output);
                }
                Ok(())
            }
            Err(err) => self.refused(err, output, &topic),
        }
    }

    fn delivered(&self, output: Output) {
        self.metrics
            .outputs_sent
            .with_label_values(&[output.label()])
            .inc();
    }

    fn refused(&self, err: DeliveryError, output: Output, topic: &str) -> Result<(), Stopped> {
        match err {
            DeliveryError::Stopped { .. } => Err(Stopped),
            DeliveryError::Refused { .. } => {
                self.metrics
                    .outputs_refused
                    .with_label_values(&[output.label()])
                    .inc();
                tracing::error!(%err, topic, output = output.label(), "The broker refused a record for good; it is not sent again: check that the topic exists, that this client may write to it (ACLs), and its max.message.bytes.");
                Ok(())
            }
        }
    }

    async fn settle_one(&mut self) -> Result<(), Stopped> {
        match self.deliveries.settle_next().await {
            Ok(Some(output)) => {
                self.delivered(output);
                Ok(())
            }
            Ok(None) => Ok(()),
            // A record refused for good after it was queued stays first in the window: the
            // session stops rather than skip it, and the next one sends it again.
            Err(err) => {
                let _ = self.refused(err, Output::Anomaly, "anomalies or dead-letter");
                Err(Stopped)
            }
        }
    }

    /// Waits until everything sent so far is delivered (or refused for good); `Err` when the
    /// session stops first.
    pub(super) async fn settle(&mut self) -> Result<(), Stopped> {
        while !self.deliveries.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }
}
