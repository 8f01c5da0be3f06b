//! `logwarden-detector read`: the detector's readers. A consumer group on `enriched`, scaled by
//! partitions like the transformer and the sink, that projects every record
//! ([`crate::projection::Projector`]: only what the spec's detectors use) and writes the rows
//! of each partition in batches to the same partition of `projected`, in their order, for the
//! sessions (`detector.input: projected`) to score. An unreadable record becomes a dead letter
//! with its reason, after the rows before it were sent.
//!
//! At least once: a partition's offset is stored only when the batch (or dead letter) holding
//! its record is acknowledged, and librdkafka commits stored offsets. A reader that crashes, or
//! loses a partition, leaves the rows after the last commit to be projected again; the sessions
//! drop the copies of records counted in an open interval by their event ids, as they do on
//! `enriched`. A batch's timestamp is the earliest of its records', so a session that starts by
//! time finds every record written since. Rows waiting for their batch to fill are sent after
//! `detector.reader.linger_ms`, and when their partition is revoked they are dropped (their new
//! reader projects them again from the last commit).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pipeline::delivery::{Deliveries, DeliveryError, Event, Outgoing};
use pipeline::kafka::{ConsumerLag, HealthContext};
use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::features::Unreadable;
use crate::projection::{self, Projector, Row};
use crate::settings::Settings;

/// The largest batch sent as one record: under Kafka's default `max.message.bytes` (1,048,588)
/// with room for the record's overhead; a larger batch is split.
const MAX_BATCH_BYTES: usize = 900_000;

/// Deliveries in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// Why the readers stop.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// `projected` has fewer partitions than `enriched`.
    #[error(
        "kafka.topics.projected (`{projected}`) has {has} partitions, fewer than the {needs} of `{enriched}`: give it as many (the topics job, or `logwarden-provisioner topics`, creates it with the others)"
    )]
    Partitions {
        projected: String,
        has: usize,
        enriched: String,
        needs: usize,
    },
    /// The broker refused a batch or a dead letter for good.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Draining took longer than the deadline.
    #[error("the last batches were not acknowledged within {0:?}; they are projected again")]
    DrainTimeout(Duration),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The readers' metrics.
#[derive(Debug, Clone)]
struct Metrics {
    records: IntCounter,
    batches: IntCounter,
    dead_letters: IntCounterVec,
    lag: ConsumerLag,
}

impl Metrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            records: IntCounter::new(
                "detector_reader_records_total",
                "Enriched records projected for the detector's sessions.",
            )?,
            batches: IntCounter::new(
                "detector_reader_batches_total",
                "Batches written to the projected topic.",
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "detector_reader_dead_letters_total",
                    "Enriched records the readers could not read, sent to the dead-letter topic, by reason.",
                ),
                &["reason"],
            )?,
            lag: ConsumerLag::register(registry)?,
        };
        for reason in DeadLetterReason::ALL {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        registry.register(Box::new(metrics.records.clone()))?;
        registry.register(Box::new(metrics.batches.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        Ok(metrics)
    }
}

/// What a settled delivery releases: the last input offset it holds, of its partition.
type Tag = (i32, i64);

/// A partition's rows waiting for their batch.
struct Pending {
    rows: Vec<Row<'static>>,
    last_offset: i64,
    /// The earliest Kafka timestamp of its records (the batch's timestamp).
    earliest: Option<i64>,
    since: Instant,
}

/// The reader loop's state.
struct Reader {
    settings: Settings,
    projector: Projector,
    consumer: StreamConsumer<HealthContext>,
    context: HealthContext,
    deliveries: Deliveries<Tag, HealthContext>,
    pending: BTreeMap<i32, Pending>,
    revocations: u64,
    metrics: Metrics,
}

/// Runs the readers until `service`'s shutdown: then sends what is pending, waits for it, and
/// commits.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ReaderError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let kafka = &settings.kafka;
    let client_id = format!("logwarden-detector-reader-{}", settings.instance_id);
    let context =
        HealthContext::new(service.telemetry.health.clone()).with_lag(metrics.lag.clone());
    let mut consumer_config = kafka.consumer_config(&client_id, &settings.reader.group);
    HealthContext::follow_group(&mut consumer_config);
    let consumer: StreamConsumer<HealthContext> = consumer_config
        .create_with_context(context.clone())
        .map_err(ReaderError::Client)?;
    check_partitions(&consumer, &settings)?;
    consumer
        .subscribe(&[&kafka.topics.enriched])
        .map_err(ReaderError::Client)?;
    let mut producer_config = kafka.producer_config(&client_id);
    producer_config.set(
        "message.max.bytes",
        (MAX_BATCH_BYTES + 64 * 1024).to_string(),
    );
    let producer: FutureProducer<HealthContext> = producer_config
        .create_with_context(context.clone())
        .map_err(ReaderError::Client)?;
    let failing = context.clone();
    let deliveries = Deliveries::new(
        producer,
        MAX_IN_FLIGHT,
        service.shutdown.clone(),
        move |event, reason| {
            if event == Event::Retried {
                failing.delivery_failed(reason);
            }
        },
    );
    let projector = Projector::new(&settings.spec);
    tracing::info!(
        input = %kafka.topics.enriched,
        output = %kafka.topics.projected,
        group = %settings.reader.group,
        columns = projector.columns().len(),
        "Projecting."
    );
    let reader = Reader {
        projector,
        consumer,
        context,
        deliveries,
        pending: BTreeMap::new(),
        revocations: 0,
        metrics,
        settings,
    };
    reader.run(&service.shutdown).await
}

/// Fails when `projected` has fewer partitions than `enriched`: a batch goes to its records'
/// partition.
fn check_partitions(
    consumer: &StreamConsumer<HealthContext>,
    settings: &Settings,
) -> Result<(), ReaderError> {
    let topics = &settings.kafka.topics;
    let count = |topic: &str| -> Result<usize, ReaderError> {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(ReaderError::Client)?;
        Ok(metadata.topics().iter().map(|t| t.partitions().len()).sum())
    };
    let (needs, has) = (count(&topics.enriched)?, count(&topics.projected)?);
    if has < needs {
        return Err(ReaderError::Partitions {
            projected: topics.projected.clone(),
            has,
            enriched: topics.enriched.clone(),
            needs,
        });
    }
    Ok(())
}

impl Reader {
    async fn run(mut self, shutdown: &CancellationToken) -> Result<(), ReaderError> {
        let linger = Duration::from_millis(self.settings.reader.linger_ms);
        let mut tick = tokio::time::interval(linger.min(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.forget_revoked();
            let in_flight = !self.deliveries.is_empty();
            let can_take = !self.deliveries.is_full() && !self.deliveries.is_retrying();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                settled = self.deliveries.settle_next(), if in_flight => {
                    if let Some(tag) = settled? {
                        self.settled(tag);
                    }
                }
                message = self.consumer.recv(), if can_take => match message {
                    Ok(message) => {
                        let (partition, offset) = (message.partition(), message.offset());
                        let taken = take(&self.projector, &mut self.pending, &self.metrics, &message);
                        drop(message);
                        self.after_take(partition, offset, taken).await?;
                    }
                    Err(err) => tracing::warn!(%err, "Consuming failed; librdkafka retries."),
                },
                _ = tick.tick() => {
                    let due: Vec<i32> = (self.pending.iter())
                        .filter(|(_, p)| p.since.elapsed() >= linger)
                        .map(|(&partition, _)| partition)
                        .collect();
                    for partition in due {
                        self.flush(partition).await?;
                    }
                }
            }
        }
        tracing::info!(
            pending = self.pending.len(),
            in_flight = self.deliveries.len(),
            "Draining."
        );
        let drained = drain(
            async {
                let partitions: Vec<i32> = self.pending.keys().copied().collect();
                for partition in partitions {
                    self.flush(partition).await?;
                }
                while let Some(tag) = self.deliveries.settle_next().await? {
                    self.settled(tag);
                }
                Ok::<(), ReaderError>(())
            },
            DRAIN_DEADLINE,
        )
        .await;
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(err) if err.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(err) => {
                tracing::warn!(%err, "Final commit failed; the last records will be projected again.")
            }
        }
        drained.map_err(|_| ReaderError::DrainTimeout(DRAIN_DEADLINE))?
    }

    /// Sends a full batch, or (after the rows before it) an unreadable record's dead letter.
    async fn after_take(
        &mut self,
        partition: i32,
        offset: i64,
        taken: Result<(), (Unreadable, Vec<u8>)>,
    ) -> Result<(), ReaderError> {
        match taken {
            Ok(()) => {
                if (self.pending.get(&partition))
                    .is_some_and(|p| p.rows.len() >= self.settings.reader.batch_records)
                {
                    self.flush(partition).await?;
                }
                Ok(())
            }
            Err(((reason, detail), payload)) => {
                self.flush(partition).await?;
                tracing::warn!(partition, offset, %reason, %detail, "An enriched record cannot be read: sent to the dead-letter topic.");
                self.metrics
                    .dead_letters
                    .with_label_values(&[reason.as_str()])
                    .inc();
                let letter = DeadLetter {
                    reason,
                    detail,
                    stage: "detector-reader".to_owned(),
                    source: SourcePosition {
                        topic: self.settings.kafka.topics.enriched.clone(),
                        partition,
                        offset,
                    },
                };
                let record = Outgoing {
                    topic: self.settings.kafka.topics.dead_letter.clone(),
                    key: None,
                    payload,
                    headers: Some(letter.to_headers()),
                    partition: None,
                    timestamp: None,
                };
                self.send(record, (partition, offset)).await
            }
        }
    }

    /// Sends `partition`'s pending rows as one batch (or several, each under
    /// [`MAX_BATCH_BYTES`]).
    async fn flush(&mut self, partition: i32) -> Result<(), ReaderError> {
        let Some(pending) = self.pending.remove(&partition) else {
            return Ok(());
        };
        let columns = self.projector.columns().to_vec();
        let mut batches = Vec::new();
        split(&columns, &pending.rows, &mut batches);
        let mut sent = 0;
        let last = batches.len().saturating_sub(1);
        for (i, (rows, payload)) in batches.into_iter().enumerate() {
            sent += rows;
            // Each part releases the offset of its last record: the batch's last offset minus
            // the records after it.
            let after = pending.rows.len() - sent;
            let offset = if i == last {
                pending.last_offset
            } else {
                pending.last_offset - after as i64
            };
            let record = Outgoing {
                topic: self.settings.kafka.topics.projected.clone(),
                key: None,
                payload,
                headers: None,
                partition: Some(partition),
                timestamp: pending.earliest,
            };
            self.metrics.batches.inc();
            self.send(record, (partition, offset)).await?;
        }
        Ok(())
    }

    async fn send(&mut self, record: Outgoing, tag: Tag) -> Result<(), ReaderError> {
        for done in self.deliveries.send(record, tag).await? {
            self.settled(done);
        }
        Ok(())
    }

    /// A delivery was acknowledged: its last input offset may be committed.
    fn settled(&self, (partition, offset): Tag) {
        self.context.reachable();
        // Fails only for a partition revoked meanwhile: its new reader projects it again from
        // the last commit.
        if let Err(err) =
            (self.consumer).store_offset(&self.settings.kafka.topics.enriched, partition, offset)
        {
            tracing::debug!(%err, partition, offset, "Offset not stored (partition revoked).");
        }
    }

    /// Drops the pending rows of partitions revoked since the last look: their new reader
    /// projects them again.
    fn forget_revoked(&mut self) {
        let revocations = self.context.revocations();
        if revocations == self.revocations {
            return;
        }
        self.revocations = revocations;
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let topic = &self.settings.kafka.topics.enriched;
        self.pending
            .retain(|&partition, _| assignment.find_partition(topic, partition).is_some());
    }
}

/// Projects a record into its partition's pending rows; why it cannot be read otherwise.
fn take(
    projector: &Projector,
    pending: &mut BTreeMap<i32, Pending>,
    metrics: &Metrics,
    message: &BorrowedMessage<'_>,
) -> Result<(), (Unreadable, Vec<u8>)> {
    let payload = message.payload().unwrap_or_default();
    let row = projector
        .project(payload)
        .map_err(|why| (why, payload.to_vec()))?;
    metrics.records.inc();
    let timestamp = message.timestamp().to_millis();
    let pending = pending
        .entry(message.partition())
        .or_insert_with(|| Pending {
            rows: Vec::new(),
            last_offset: message.offset(),
            earliest: None,
            since: Instant::now(),
        });
    pending.rows.push(row);
    pending.last_offset = message.offset();
    pending.earliest = match (pending.earliest, timestamp) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(())
}

/// Encodes `rows` as batches of at most [`MAX_BATCH_BYTES`] (a single row is sent whatever its
/// size), each with the number of rows it holds, in order.
fn split(columns: &[String], rows: &[Row<'_>], out: &mut Vec<(usize, Vec<u8>)>) {
    let payload = projection::encode(columns, rows);
    if payload.len() <= MAX_BATCH_BYTES || rows.len() <= 1 {
        out.push((rows.len(), payload));
        return;
    }
    let (head, tail) = rows.split_at(rows.len() / 2);
    split(columns, head, out);
    split(columns, tail, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_batch_is_split_in_order_under_the_limit() {
        let columns = vec!["c".to_owned()];
        let row = |i: i64| Row {
            time: i,
            id: Some(i as u64),
            cells: vec![projection::Cell {
                value: Some(1.0),
                text: None,
                entity: Some(std::borrow::Cow::Owned("x".repeat(1_000))),
            }],
        };
        let rows: Vec<Row<'_>> = (0..2_000).map(row).collect();
        let mut out = Vec::new();
        split(&columns, &rows, &mut out);
        assert!(out.len() >= 3, "{} batches", out.len());
        assert!(out.iter().all(|(_, p)| p.len() <= MAX_BATCH_BYTES));
        assert_eq!(out.iter().map(|(n, _)| n).sum::<usize>(), 2_000);
        let times: Vec<i64> = (out.iter())
            .flat_map(|(_, p)| projection::decode(p).expect("decodes").times)
            .collect();
        assert_eq!(times, (0..2_000).collect::<Vec<_>>());
        let mut one = Vec::new();
        split(&columns, &rows[..10], &mut one);
        assert_eq!(one.len(), 1);
    }
}
