//! The detector's metrics, in the registry the service owns (no global registry): what it
//! scored and flagged, what it could not read or would not trust, how old its last checkpoint
//! is, its alert deliveries, and whether this replica is the active one.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::alert::DeliveryMetrics;

/// The detector's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Intervals scored, by detector.
    pub intervals: IntCounterVec,
    /// Anomalous intervals, by detector.
    pub anomalies: IntCounterVec,
    /// Events too late for their interval, by detector.
    pub late: IntCounterVec,
    /// Records that were not enriched events (no JSON or no `@timestamp`).
    pub unreadable: prometheus::IntCounter,
    /// Records stamped beyond the future tolerance: kept out of the model.
    pub future: prometheus::IntCounter,
    /// Seconds since the last saved checkpoint.
    pub checkpoint_age: IntGauge,
    /// Alerts delivered, failed, waiting, dropped.
    pub delivery: DeliveryMetrics,
    /// Each detector's last scored interval end, epoch seconds.
    pub scored_until: IntGaugeVec,
    /// 1 while this replica holds the lease and scores, 0 on standby.
    pub active: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let by = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
        };
        let metrics = Self {
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
                "1 while this replica holds the lease and scores, 0 on standby.",
            )?,
        };
        pipeline::register_metrics!(
            registry,
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
            metrics.active
        )?;
        Ok(metrics)
    }
}
