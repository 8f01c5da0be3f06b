//! Consumer lag per partition, `logwarden_kafka_consumer_lag_records{topic,partition}`, read
//! from librdkafka's statistics.
//!
//! Why statistics and not watermark queries: librdkafka already learns each assigned
//! partition's end offsets from its fetch responses (which arrive even on an idle partition, at
//! least every `fetch.wait.max.ms`) and knows the stage's own positions, and it hands both to
//! the context every [`super::STATISTICS_INTERVAL`] (5 s). Reading them costs no request; a
//! watermark query is a broker round trip per partition, and a position read from another
//! client would not see what this stage stored. The figure is at most one interval old.
//!
//! What the lag counts: records on the partition (up to its last stable offset: every logwarden
//! consumer reads `read_committed`) that the stage has not finished. The stage's position is,
//! in order of preference, the offset it stored (the at-least-once stages store an input's
//! offset only after its output is acknowledged, so in-flight records count as lag), the next
//! offset handed to the application (the exactly-once transformer and the detector store none),
//! the next offset to fetch (a partition nothing was read from yet: an empty one is at 0), and
//! the committed offset.
//!
//! Only partitions the client is assigned (librdkafka's `desired`) have a series; a partition
//! revoked in a rebalance loses its series at once ([`ConsumerLag::forget`]), and one no longer
//! in the statistics at the next interval.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::{IntGaugeVec, Opts, Registry};
use serde_json::Value;

/// The lag of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records not yet done by the stage.
    pub records: i64,
}

/// The lag of every assigned partition in a client's statistics JSON; partitions whose end
/// offset is not known yet are left out.
pub fn partition_lags(statistics: &Value) -> Vec<PartitionLag> {
    let Some(topics) = statistics.get("topics").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut lags = Vec::new();
    for (topic, stats) in topics {
        let Some(partitions) = stats.get("partitions").and_then(Value::as_object) else {
            continue;
        };
        for stats in partitions.values() {
            let Some(partition) = stats["partition"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
            else {
                continue;
            };
            // -1 is librdkafka's internal "unassigned" partition.
            if partition < 0 || stats["desired"].as_bool() != Some(true) {
                continue;
            }
            if let Some(records) = lag_of(stats) {
                lags.push(PartitionLag {
                    topic: topic.clone(),
                    partition,
                    records,
                });
            }
        }
    }
    lags
}

/// One partition's lag (see the module docs for the position used).
fn lag_of(stats: &Value) -> Option<i64> {
    let offset = |key: &str| stats[key].as_i64().filter(|&o| o >= 0);
    if let Some(lag) = stats["consumer_lag_stored"].as_i64().filter(|&l| l >= 0) {
        return Some(lag);
    }
    let end = offset("ls_offset").or_else(|| offset("hi_offset"))?;
    let position = offset("app_offset")
        .or_else(|| offset("next_offset"))
        .or_else(|| offset("committed_offset"))?;
    Some((end - position).max(0))
}

/// The consumer lag gauge of a service, and which series it shows.
#[derive(Debug, Clone)]
pub struct ConsumerLag {
    gauge: IntGaugeVec,
    /// The (topic, partition) series currently shown, so those no longer assigned are removed.
    shown: Arc<Mutex<BTreeSet<(String, i32)>>>,
}

impl ConsumerLag {
    /// Creates the gauge and registers it in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "kafka_consumer_lag_records",
                "Records on an assigned input partition that this stage has not finished yet \
                 (up to the last stable offset; updated every 5 s).",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(Self {
            gauge,
            shown: Arc::default(),
        })
    }

    /// Shows the lags in a consumer's statistics JSON; partitions no longer in it lose their
    /// series. A producer's statistics (the context is shared with the stage's producer, which
    /// emits some if a user turns them on) are ignored.
    pub fn observe(&self, statistics: &Value) {
        if statistics["type"].as_str() != Some("consumer") {
            return;
        }
        let lags = partition_lags(statistics);
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        let now: BTreeSet<(String, i32)> = lags
            .iter()
            .map(|l| (l.topic.clone(), l.partition))
            .collect();
        for (topic, partition) in shown.difference(&now) {
            self.remove(topic, *partition);
        }
        for lag in &lags {
            self.gauge
                .with_label_values(&[&lag.topic, &lag.partition.to_string()])
                .set(lag.records);
        }
        *shown = now;
    }

    /// Removes a revoked partition's series.
    pub fn forget(&self, topic: &str, partition: i32) {
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        if shown.remove(&(topic.to_owned(), partition)) {
            self.remove(topic, partition);
        }
    }

    /// Removes every series (the consumer is gone, or lost its whole assignment).
    pub fn clear(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        for (topic, partition) in std::mem::take(&mut *shown) {
            self.remove(&topic, partition);
        }
    }

    fn remove(&self, topic: &str, partition: i32) {
        // A series missing already is what removing wants.
        let _ = self
            .gauge
            .remove_label_values(&[topic, &partition.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn partition(p: i64, desired: bool, fields: &Value) -> Value {
        let mut stats = json!({"partition": p, "desired": desired});
        for (key, value) in fields.as_object().expect("fields") {
            stats[key] = value.clone();
        }
        stats
    }

    #[test]
    fn the_lag_uses_the_stored_then_read_then_fetch_then_committed_position() {
        let cases = [
            // Stored offsets (at-least-once stages): librdkafka's own figure.
            (
                json!({"consumer_lag_stored": 7, "ls_offset": 100, "app_offset": 99}),
                Some(7),
            ),
            // Nothing stored (exactly-once, the detector): the end minus what was read.
            (
                json!({"consumer_lag_stored": -1, "ls_offset": 100, "hi_offset": 102, "app_offset": 60}),
                Some(40),
            ),
            // Nothing read yet: the fetch position (an empty partition is caught up).
            (
                json!({"consumer_lag_stored": -1, "ls_offset": 0, "app_offset": -1001, "next_offset": 0}),
                Some(0),
            ),
            (
                json!({"ls_offset": 50, "app_offset": -1001, "next_offset": -1001, "committed_offset": 45}),
                Some(5),
            ),
            // No stable offset reported: the high watermark.
            (
                json!({"ls_offset": -1001, "hi_offset": 9, "app_offset": 4}),
                Some(5),
            ),
            // A position past the end (the end not refreshed yet) is no negative lag.
            (json!({"ls_offset": 10, "app_offset": 12}), Some(0)),
            // End unknown: no figure rather than a wrong one.
            (
                json!({"ls_offset": -1001, "hi_offset": -1001, "app_offset": 4}),
                None,
            ),
            (
                json!({"ls_offset": 10, "app_offset": -1001, "next_offset": -1001, "committed_offset": -1001}),
                None,
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(lag_of(&fields), expected, "{fields}");
        }
    }

    #[test]
    fn only_assigned_partitions_have_a_lag() {
        let statistics = json!({"topics": {
            "enriched": {"partitions": {
                "0": partition(0, true, &json!({"consumer_lag_stored": 3})),
                "1": partition(1, false, &json!({"consumer_lag_stored": 9})),
                "-1": partition(-1, true, &json!({"consumer_lag_stored": 9})),
            }},
            "raw": {"partitions": {"2": partition(2, true, &json!({"ls_offset": 5, "app_offset": 5}))}},
        }});
        let expected = vec![
            PartitionLag {
                topic: "enriched".into(),
                partition: 0,
                records: 3,
            },
            PartitionLag {
                topic: "raw".into(),
                partition: 2,
                records: 0,
            },
        ];
        assert_eq!(partition_lags(&statistics), expected);
        assert_eq!(partition_lags(&json!({"name": "producer"})), vec![]);
    }

    #[test]
    fn series_follow_the_assignment() -> prometheus::Result<()> {
        let registry = Registry::new();
        let lag = ConsumerLag::register(&registry)?;
        let series = || {
            let mut series: Vec<(String, i64)> = registry
                .gather()
                .iter()
                .flat_map(|family| family.get_metric().to_vec())
                .map(|metric| {
                    // Labels come sorted by name: partition, topic.
                    let labels: Vec<String> = metric
                        .get_label()
                        .iter()
                        .rev()
                        .map(|l| l.value().to_owned())
                        .collect();
                    (labels.join("/"), metric.get_gauge().get_value() as i64)
                })
                .collect();
            series.sort();
            series
        };
        let stats = |partitions: &[(i64, i64)]| {
            let partitions: serde_json::Map<String, Value> = partitions
                .iter()
                .map(|&(p, lag)| {
                    (
                        p.to_string(),
                        partition(p, true, &json!({"consumer_lag_stored": lag})),
                    )
                })
                .collect();
            json!({"type": "consumer", "topics": {"raw": {"partitions": partitions}}})
        };
        lag.observe(&stats(&[(0, 4), (1, 0)]));
        assert_eq!(series(), vec![("raw/0".into(), 4), ("raw/1".into(), 0)]);
        lag.forget("raw", 0);
        assert_eq!(series(), vec![("raw/1".into(), 0)], "revoked: gone at once");
        lag.observe(&json!({"type": "producer", "topics": {}}));
        assert_eq!(
            series(),
            vec![("raw/1".into(), 0)],
            "a producer's statistics change nothing"
        );
        lag.observe(&stats(&[(2, 6)]));
        assert_eq!(series(), vec![("raw/2".into(), 6)], "no longer assigned");
        lag.clear();
        assert_eq!(series(), vec![]);
        Ok(())
    }
}
