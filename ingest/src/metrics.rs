//! The ingest service's metrics, registered in the service's own registry.

use pipeline::register_metrics;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// Counters and gauges of the receivers.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records Kafka acknowledged, by source.
    pub records: IntCounterVec,
    /// Requests (HTTP) or messages (syslog) refused, by receiver and reason.
    pub refused: IntCounterVec,
    /// Input deliberately not written, by reason (CloudWatch Logs `CONTROL_MESSAGE`s).
    pub skipped: IntCounterVec,
    /// Syslog messages cut to the size limit, by transport.
    pub truncated: IntCounterVec,
    /// Open syslog TCP connections.
    pub connections: IntGauge,
    /// Failed listings or fetches of the bucket source, by reason (`credentials`, `no_bucket`,
    /// `unavailable`, `client`).
    pub bucket_errors: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            records: IntCounterVec::new(
                Opts::new(
                    "ingest_records_total",
                    "Records written to raw and acknowledged by Kafka, by source.",
                ),
                &["source"],
            )?,
            refused: IntCounterVec::new(
                Opts::new(
                    "ingest_refused_total",
                    "Requests or messages refused, by receiver and reason.",
                ),
                &["receiver", "reason"],
            )?,
            skipped: IntCounterVec::new(
                Opts::new(
                    "ingest_skipped_total",
                    "Input deliberately not written to raw, by reason.",
                ),
                &["reason"],
            )?,
            truncated: IntCounterVec::new(
                Opts::new(
                    "ingest_truncated_total",
                    "Syslog messages cut to ingest.max_event_bytes, by transport.",
                ),
                &["transport"],
            )?,
            connections: IntGauge::new(
                "ingest_syslog_connections",
                "Open syslog TCP connections.",
            )?,
            bucket_errors: IntCounterVec::new(
                Opts::new(
                    "ingest_bucket_errors_total",
                    "Failed listings or fetches of the bucket source, by reason.",
                ),
                &["reason"],
            )?,
        };
        register_metrics!(
            registry,
            metrics.records,
            metrics.refused,
            metrics.skipped,
            metrics.truncated,
            metrics.connections,
            metrics.bucket_errors
        )?;
        for source in pipeline::wire::Source::ALL {
            metrics.records.with_label_values(&[source.as_str()]);
        }
        Ok(metrics)
    }
}
