//! Partition assignment: the detector reads every partition of `enriched` itself (assigned, not
//! through a consumer group), because each interval needs all of its events. A partition starts
//! at its checkpointed position; one the checkpoint does not know (a cold start, or a partition
//! added since) starts at the records written since shortly before the first interval to score.
//! Where each partition starts is decided by pure functions; this module's IO is the metadata
//! and time-to-offset lookups and the assignment itself.
//!
//! A partition started by time is read again from before the first interval to score: the
//! records up to its end at start-up were already in the history the model trained on (or in
//! the checkpoint), so the ones of intervals already scored are counted as replayed, not late
//! ([`Assigned::replayed_below`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pipeline::kafka::{ConsumerLag, STATISTICS_INTERVAL};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::settings::{Input, Settings};

use super::clock::now_ms;
use super::error::ServiceError;
use super::live::Live;

/// How far before the first interval to score a partition without a saved position is read
/// from. Record timestamps are write times, never before the events' own times, so every event
/// of that interval or later was written at or after its start; the minute before is a margin.
const LOOKBACK_MS: i64 = 60_000;

/// Where a partition starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At the saved offset.
    At(i64),
    /// At the first record written at or after this time (epoch ms).
    Since(i64),
}

/// Where each of `partitions` starts: at its saved position, else at the records written since
/// [`LOOKBACK_MS`] before `first`, the first interval to score.
fn starts(
    partitions: &[i32],
    positions: Option<&BTreeMap<i32, i64>>,
    first: i64,
) -> Vec<(i32, Start)> {
    partitions
        .iter()
        .map(|&partition| {
            let start = match positions.and_then(|p| p.get(&partition)) {
                Some(&offset) => Start::At(offset),
                None => Start::Since(first - LOOKBACK_MS),
            };
            (partition, start)
        })
        .collect()
}

/// The offset a time lookup found; no record written since that time means only new ones.
fn found_offset(offset: Offset) -> Offset {
    match offset {
        Offset::Offset(o) if o >= 0 => Offset::Offset(o),
        _ => Offset::End,
    }
}

/// The detector's consumer context: a partition's end is how the event clock learns that the
/// partition caught up, not an error, though librdkafka reports it as one (logged at ERROR once
/// per end by the default context). Other client errors are logged as warnings. Its statistics
/// feed the consumer lag gauge, whose series go when the session's consumer does.
#[derive(Debug)]
pub(super) struct EndsAreNotErrors {
    lag: ConsumerLag,
}

impl ClientContext for EndsAreNotErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(%error, reason, "Kafka client error; librdkafka retries.");
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let Ok(statistics) = serde_json::from_slice(statistics) {
            self.lag.observe(&statistics);
        }
    }
}

impl Drop for EndsAreNotErrors {
    /// The session ended (the lease lost, or shutdown): a standby reads nothing, so it shows
    /// no lag.
    fn drop(&mut self) {
        self.lag.clear();
    }
}

impl ConsumerContext for EndsAreNotErrors {}

/// The detector's consumer of `enriched`.
pub(super) type DetectorConsumer = StreamConsumer<EndsAreNotErrors>;

/// The consumer, assigned.
pub(super) struct Assigned {
    /// The consumer of `enriched`.
    pub(super) consumer: DetectorConsumer,
    /// Every partition it reads.
    pub(super) partitions: Vec<i32>,
    /// Per partition started by time, its end offset at start-up: a record below it that falls
    /// in an interval already scored is a replay, not a late record.
    pub(super) replayed_below: BTreeMap<i32, i64>,
    /// Where each partition starts reading (the next offset to read): what a checkpoint saves
    /// for a partition until a record of it is read.
    pub(super) starts: BTreeMap<i32, i64>,
    /// A client for the partitions' end offsets ([`Assigned::caught_up`]).
    probe: std::sync::Arc<BaseConsumer>,
    topic: String,
    /// With `detector.input: projected`: a client of the readers' group, and `enriched`: the
    /// stream is idle only when the readers have read it to its end too.
    readers: Option<(std::sync::Arc<BaseConsumer>, String)>,
}

impl Assigned {
    /// Whether the broker answers and every partition has been read to its end: what makes a
    /// quiet stream idle. During a broker outage the stream is cut off, not quiet: closing
    /// intervals by the clock then would make every record still to come late.
    pub(super) async fn caught_up(&self) -> bool {
        let next: BTreeMap<i32, i64> = self
            .consumer
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
        let reading: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .map(|&p| {
                let at = next
                    .get(&p)
                    .or_else(|| self.starts.get(&p))
                    .copied()
                    .unwrap_or(0);
                (p, at)
            })
            .collect();
        let probe = std::sync::Arc::clone(&self.probe);
        let topic = self.topic.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let wait = Duration::from_millis(500);
            reading.iter().all(|&(partition, at)| {
                probe
                    .fetch_watermarks(&topic, partition, wait)
                    .is_ok_and(|(_, end)| at >= end)
            }) && readers.is_none_or(|(group, enriched)| {
                readers_lagging(&group, &enriched, wait).is_some_and(|l| l.is_empty())
            })
        })
        .await
        .unwrap_or(false)
    }

    /// With `detector.input: projected`, the partitions whose records the readers have not all
    /// projected yet (every one when the broker does not answer): a partition of `projected` at
    /// its end is caught up only when its readers are. `None` when reading `enriched`.
    pub(super) async fn readers_lagging(&self) -> Option<BTreeSet<i32>> {
        let (group, enriched) = self.readers.clone()?;
        let partitions = self.partitions.clone();
        let lagging = tokio::task::spawn_blocking(move || {
            readers_lagging(&group, &enriched, Duration::from_millis(500))
        })
        .await
        .ok()
        .flatten();
        Some(lagging.unwrap_or_else(|| partitions.into_iter().collect()))
    }

    /// Whether the input is `projected`.
    pub(super) fn projected(&self) -> bool {
        self.readers.is_some()
    }

    /// Whether the record at `partition`/`offset` was read again at start-up.
    pub(super) fn is_replay(&self, partition: i32, offset: i64) -> bool {
        self.replayed_below
            .get(&partition)
            .is_some_and(|&end| offset < end)
    }
}

/// The partitions of `enriched` that the readers' group (`group`, a client with its
/// `group.id`) has not committed to their end: records still to be projected. `None` when the
/// broker does not answer.
fn readers_lagging(group: &BaseConsumer, enriched: &str, wait: Duration) -> Option<BTreeSet<i32>> {
    let metadata = group.fetch_metadata(Some(enriched), wait).ok()?;
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(enriched, partition.id());
    }
    let committed = group.committed_offsets(partitions, wait).ok()?;
    let mut lagging = BTreeSet::new();
    for element in committed.elements() {
        let (low, end) = group
            .fetch_watermarks(enriched, element.partition(), wait)
            .ok()?;
        let done = match element.offset() {
            Offset::Offset(at) => at >= end,
            // Nothing committed: caught up only if nothing was ever there to read.
            _ => low >= end,
        };
        if !done {
            lagging.insert(element.partition());
        }
    }
    Some(lagging)
}

/// Assigns every partition of the input topic (`enriched`, or `projected`): at the checkpointed `positions`, or (cold start, or a
/// partition the checkpoint does not know) at the records written since shortly before the first
/// interval to score.
pub(super) fn assign(
    settings: &Settings,
    positions: Option<&BTreeMap<i32, i64>>,
    detectors: &[Live],
    lag: ConsumerLag,
) -> Result<Assigned, ServiceError> {
    let topic = &settings.input_topic().to_owned();
    let mut config = settings.kafka.client_config("logwarden-detector");
    config
        .set("group.id", "logwarden-detector")
        .set("enable.auto.commit", "false")
        // Reaching a partition's end is how the event clock knows it is caught up.
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        // For the consumer lag gauge.
        .set(
            "statistics.interval.ms",
            STATISTICS_INTERVAL.as_millis().to_string(),
        );
    let consumer: DetectorConsumer = config
        .create_with_context(EndsAreNotErrors { lag })
        .map_err(ServiceError::Client)?;
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
    let mut replayed_below = BTreeMap::new();
    let mut starts_at = BTreeMap::new();
    for (partition, start) in starts(&partitions, positions, first) {
        match start {
            Start::At(offset) => {
                starts_at.insert(partition, offset);
                list.add_partition_offset(topic, partition, Offset::Offset(offset))
            }
            Start::Since(time) => {
                let (_, end) = metadata_client
                    .fetch_watermarks(topic, partition, Duration::from_secs(30))
                    .map_err(ServiceError::Client)?;
                replayed_below.insert(partition, end);
                // offsets_for_times reads the "offset" of each entry as a timestamp (epoch ms).
                by_time.add_partition_offset(topic, partition, Offset::Offset(time))
            }
        }
        .map_err(ServiceError::Client)?;
    }
    if by_time.count() > 0 {
        let found = consumer
            .offsets_for_times(by_time, Duration::from_secs(30))
            .map_err(ServiceError::Client)?;
        for element in found.elements() {
            let offset = found_offset(element.offset());
            let start = match offset {
                Offset::Offset(o) => Some(o),
                _ => replayed_below.get(&element.partition()).copied(),
            };
            if let Some(start) = start {
                starts_at.insert(element.partition(), start);
            }
            list.add_partition_offset(topic, element.partition(), offset)
                .map_err(ServiceError::Client)?;
        }
    }
    consumer.assign(&list).map_err(ServiceError::Client)?;
    let readers = match settings.input {
        Input::Enriched => None,
        Input::Projected => {
            let mut config = settings
                .kafka
                .client_config("logwarden-detector-readers-lag");
            config.set("group.id", &settings.reader.group);
            let client: BaseConsumer = config.create().map_err(ServiceError::Client)?;
            Some((
                std::sync::Arc::new(client),
                settings.kafka.topics.enriched.clone(),
            ))
        }
    };
    Ok(Assigned {
        consumer,
        partitions,
        replayed_below,
        starts: starts_at,
        probe: std::sync::Arc::new(metadata_client),
        topic: topic.clone(),
        readers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_positions_win_and_other_partitions_start_by_time() {
        let saved = BTreeMap::from([(0, 120), (2, 0), (7, 9)]);
        let first = 600_000;
        let cases = [
            (
                None,
                vec![(0, Start::Since(540_000)), (1, Start::Since(540_000))],
            ),
            (
                Some(&saved),
                vec![(0, Start::At(120)), (1, Start::Since(540_000))],
            ),
        ];
        for (positions, expected) in cases {
            assert_eq!(starts(&[0, 1], positions, first), expected, "{positions:?}");
        }
        // A position for a partition the topic no longer has is not read.
        assert_eq!(
            starts(&[2, 3], Some(&saved), first),
            vec![(2, Start::At(0)), (3, Start::Since(540_000))]
        );
        assert_eq!(starts(&[], Some(&saved), first), vec![]);
    }

    #[test]
    fn a_time_without_records_since_means_only_new_ones() {
        let cases = [
            (Offset::Offset(0), Offset::Offset(0)),
            (Offset::Offset(42), Offset::Offset(42)),
            (Offset::Offset(-1), Offset::End),
            (Offset::End, Offset::End),
            (Offset::Invalid, Offset::End),
        ];
        for (found, expected) in cases {
            assert_eq!(found_offset(found), expected, "{found:?}");
        }
    }
}
