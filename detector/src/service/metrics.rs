//! The detector's metrics, in the registry the service owns (no global registry): what it
//! scored and flagged, what it could not read or would not trust, how old its last checkpoint
//! is, its alert deliveries, and whether this replica is the active one.

use pipeline::kafka::ConsumerLag;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::alert::DeliveryMetrics;
use crate::model::Scored;

/// The detector's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records read from `enriched`, readable or not.
    pub records_in: IntCounter,
    /// Intervals scored, by detector.
    pub intervals: IntCounterVec,
    /// Anomalous intervals, by detector.
    pub anomalies: IntCounterVec,
    /// Events too late for their interval, by detector.
    pub late: IntCounterVec,
    /// Records that were not enriched events (no JSON or no `@timestamp`): each is dead-lettered.
    pub unreadable: prometheus::IntCounter,
    /// Records stamped beyond the future tolerance: kept out of the model.
    pub future: prometheus::IntCounter,
    /// Seconds since the last saved checkpoint.
    pub checkpoint_age: IntGauge,
    /// Alerts delivered, failed, waiting, dropped.
    pub delivery: DeliveryMetrics,
    /// Each detector's last scored interval end, epoch seconds.
    pub scored_until: IntGaugeVec,
    /// Shards this replica holds and scores (1 or 0 with one shard).
    pub active: IntGauge,
    /// Shards the spec is split into.
    pub shards: IntGauge,
    /// Times this replica lost the lease while scoring (and went back to standby).
    pub lease_lost: IntCounter,
    /// Checkpoints saved.
    pub checkpoints: IntCounter,
    /// Records seen twice in an open interval (an upstream replay): counted once.
    pub duplicates: IntCounter,
    /// Records before an interval already scored that were read again at start-up (they were in
    /// the history or the checkpoint already), by detector: not late.
    pub replayed: IntCounterVec,
    /// Records sent to the dead-letter topic, by reason.
    pub dead_letters: IntCounterVec,
    /// Anomalies and dead letters acknowledged by the broker, by output.
    pub outputs_sent: IntCounterVec,
    /// Anomalies and dead letters the broker refused for good, by output.
    pub outputs_refused: IntCounterVec,
    /// Deliveries to Kafka sent again after a failure.
    pub outputs_retried: IntCounter,
    /// Lag per partition of `enriched` while this replica scores.
    pub lag: ConsumerLag,
    /// The last scored interval of each detector: its value, expected value, anomaly grade and
    /// confidence ([`Metrics::scored`]).
    pub last: LastScored,
    /// A category detector's entities with a model.
    pub entities: IntGaugeVec,
    /// A category detector's entities evicted (idle, or beyond its cap).
    pub entities_evicted: IntCounterVec,
    /// A category detector's evicted entities whose model was restored when they came back.
    pub entities_restored: IntCounterVec,
    /// 1 while a detector has had no record for its spec's `no_data_after` intervals in a row,
    /// else 0 ([`super::no_data`]).
    pub no_data: IntGaugeVec,
}

/// Gauges of each detector's last scored interval, as its result document has them.
#[derive(Debug, Clone)]
pub struct LastScored {
    /// The interval's feature value.
    pub value: GaugeVec,
    /// What the model expected (the baseline mean).
    pub expected: GaugeVec,
    /// 0 (normal) to 1.
    pub grade: GaugeVec,
    /// 0 to 1: how much data the judgement rests on.
    pub confidence: GaugeVec,
    /// Consecutive scored intervals with no records (0 after one with records).
    pub empty: IntGaugeVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let by = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
        };
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["detector"]);
        let metrics = Self {
            entities: IntGaugeVec::new(
                Opts::new(
                    "detector_entities",
                    "A category detector's entities with a model: at most its max_entities for each part of its entities (category.parts) this replica scores.",
                ),
                &["detector"],
            )?,
            entities_restored: by(
                "detector_entities_restored_total",
                "A category detector's evicted entities that came back and got their stored model back.",
                "detector",
            )?,
            entities_evicted: by(
                "detector_entities_evicted_total",
                "A category detector's entities evicted: idle for category.idle, or beyond max_entities.",
                "detector",
            )?,
            records_in: IntCounter::new(
                "detector_records_in_total",
                "Records read from enriched (readable or not).",
            )?,
            intervals: by(
                "detector_intervals_scored_total",
                "Intervals scored.",
                "detector",
            )?,
            anomalies: by(
                "detector_anomalies_total",
                "Anomalous intervals.",
                "detector",
            )?,
            late: by(
                "detector_late_events_total",
                "Events too late for their interval.",
                "detector",
            )?,
            unreadable: prometheus::IntCounter::new(
                "detector_unreadable_records_total",
                "Records without JSON or @timestamp.",
            )?,
            future: prometheus::IntCounter::new(
                "detector_future_events_total",
                "Records stamped further ahead of the clock than detector.future_tolerance_ms allows; not scored.",
            )?,
            checkpoint_age: IntGauge::new(
                "detector_checkpoint_age_seconds",
                "Seconds since the last saved checkpoint.",
            )?,
            delivery: DeliveryMetrics {
                sent: by("detector_alerts_sent_total", "Alerts delivered.", "channel")?,
                failed: by(
                    "detector_alerts_failed_total",
                    "Alert deliveries that failed (each is retried).",
                    "channel",
                )?,
                pending: IntGaugeVec::new(
                    Opts::new(
                        "detector_alerts_pending",
                        "Alerts waiting to be delivered (the outbox, checkpointed).",
                    ),
                    &["channel"],
                )?,
                dropped: by(
                    "detector_alerts_dropped_total",
                    "Alerts dropped undelivered: evicted from a full outbox, or for a channel no longer in the spec.",
                    "channel",
                )?,
            },
            scored_until: IntGaugeVec::new(
                Opts::new(
                    "detector_scored_until_seconds",
                    "End of the last scored interval (epoch seconds).",
                ),
                &["detector"],
            )?,
            active: IntGauge::new(
                "detector_active",
                "Shards whose lease this replica holds and scores: 1 or 0 with one shard (0 on standby).",
            )?,
            shards: IntGauge::new(
                "detector_shards",
                "Shards the spec is split into (detector.shards): summed over replicas, detector_active should reach it.",
            )?,
            lease_lost: IntCounter::new(
                "detector_lease_lost_total",
                "Times this replica lost the lease while scoring and went back to standby.",
            )?,
            checkpoints: IntCounter::new("detector_checkpoints_total", "Checkpoints saved.")?,
            duplicates: IntCounter::new(
                "detector_duplicate_events_total",
                "Records seen twice in an open interval (an upstream replay), counted once.",
            )?,
            replayed: by(
                "detector_replayed_events_total",
                "Records of intervals already scored, read again at start-up: not late.",
                "detector",
            )?,
            dead_letters: by(
                "detector_dead_letters_total",
                "Unreadable records sent to the dead-letter topic.",
                "reason",
            )?,
            outputs_sent: by(
                "detector_outputs_sent_total",
                "Anomalies and dead letters acknowledged by the broker.",
                "output",
            )?,
            outputs_refused: by(
                "detector_outputs_refused_total",
                "Anomalies and dead letters the broker refused for good.",
                "output",
            )?,
            outputs_retried: IntCounter::new(
                "detector_outputs_retried_total",
                "Deliveries of anomalies and dead letters sent again after a failure.",
            )?,
            lag: ConsumerLag::register(registry)?,
            no_data: IntGaugeVec::new(
                Opts::new(
                    "detector_no_data",
                    "1 while the detector has had no record for its spec's no_data_after intervals in a row (0 never flags), else 0.",
                ),
                &["detector"],
            )?,
            last: LastScored {
                value: gauge(
                    "detector_value",
                    "The feature value of the detector's last scored interval (a rate is per second).",
                )?,
                expected: gauge(
                    "detector_expected_value",
                    "What the model expected for the last scored interval (its baseline mean).",
                )?,
                grade: gauge(
                    "detector_anomaly_grade",
                    "Anomaly grade of the last scored interval: 0 normal, up to 1.",
                )?,
                confidence: gauge(
                    "detector_confidence",
                    "Confidence of the last scored interval's judgement, 0 to 1.",
                )?,
                empty: IntGaugeVec::new(
                    Opts::new(
                        "detector_empty_intervals",
                        "Consecutive scored intervals with no records (0 once one has records).",
                    ),
                    &["detector"],
                )?,
            },
        };
        pipeline::register_metrics!(
            registry,
            metrics.records_in,
            metrics.intervals,
            metrics.anomalies,
            metrics.late,
            metrics.unreadable,
            metrics.future,
            metrics.checkpoint_age,
            metrics.delivery.sent,
            metrics.delivery.failed,
            metrics.delivery.pending,
            metrics.delivery.dropped,
            metrics.scored_until,
            metrics.active,
            metrics.shards,
            metrics.lease_lost,
            metrics.checkpoints,
            metrics.duplicates,
            metrics.replayed,
            metrics.dead_letters,
            metrics.outputs_sent,
            metrics.outputs_refused,
            metrics.outputs_retried,
            metrics.last.value,
            metrics.last.expected,
            metrics.last.grade,
            metrics.last.confidence,
            metrics.last.empty,
            metrics.entities,
            metrics.entities_evicted,
            metrics.entities_restored,
            metrics.no_data
        )?;
        Ok(metrics)
    }

    /// Shows the change in a category detector's entities ([`crate::entities::Entities::report`]):
    /// with a model, evicted and restored.
    pub fn entities(&self, detector: &str, (models, evicted, restored): (i64, u64, u64)) {
        let labels = [detector];
        self.entities.with_label_values(&labels).add(models);
        self.entities_evicted
            .with_label_values(&labels)
            .inc_by(evicted);
        self.entities_restored
            .with_label_values(&labels)
            .inc_by(restored);
    }

    /// Counts a scored interval of `detector` (its `value`, from `events` records, as the model
    /// judged it) and shows it as the detector's last.
    pub fn scored(&self, detector: &str, value: f64, events: u64, scored: &Scored) {
        let labels = [detector];
        self.intervals.with_label_values(&labels).inc();
        if scored.grade > 0.0 {
            self.anomalies.with_label_values(&labels).inc();
        }
        self.last.value.with_label_values(&labels).set(value);
        self.last
            .expected
            .with_label_values(&labels)
            .set(scored.expected);
        self.last.grade.with_label_values(&labels).set(scored.grade);
        self.last
            .confidence
            .with_label_values(&labels)
            .set(scored.confidence);
        let empty = self.last.empty.with_label_values(&labels);
        if events == 0 {
            empty.inc();
        } else {
            empty.set(0);
        }
    }
}
