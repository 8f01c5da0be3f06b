//! The transformer's metrics, registered in the service's own registry.

use pipeline::kafka::ConsumerLag;
use pipeline::wire::DeadLetterReason;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The transformer's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records consumed from `raw`.
    pub records_in: IntCounter,
    /// Records written to `enriched`.
    pub records_out: IntCounter,
    /// Records written to `dead-letter`, by reason.
    pub dead_letters: IntCounterVec,
    /// Time to apply the rules to one record.
    pub transform_seconds: Histogram,
    /// Time from send to acknowledgement of an output.
    pub delivery_seconds: Histogram,
    /// Outputs awaiting acknowledgement.
    pub in_flight: IntGauge,
    /// Delivery retries and full-queue waits, by kind.
    pub delivery_events: IntCounterVec,
    /// Transactions, by outcome (`committed`, `aborted`).
    pub transactions: IntCounterVec,
    /// Lag per assigned partition of `raw`, fed by the consumer's statistics.
    pub lag: ConsumerLag,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            records_in: IntCounter::new(
                "transformer_records_in_total",
                "Records consumed from raw.",
            )?,
            records_out: IntCounter::new(
                "transformer_records_out_total",
                "Records written to enriched.",
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "transformer_dead_letters_total",
                    "Records written to dead-letter, by reason.",
                ),
                &["reason"],
            )?,
            transform_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "transformer_transform_seconds",
                    "Time to apply the rules to one record.",
                )
                .buckets(vec![1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3]),
            )?,
            delivery_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "transformer_delivery_seconds",
                    "Time from send to acknowledgement of an output.",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            )?,
            in_flight: IntGauge::new("transformer_in_flight", "Outputs awaiting acknowledgement.")?,
            delivery_events: IntCounterVec::new(
                Opts::new(
                    "transformer_delivery_events_total",
                    "Delivery retries and full-queue waits.",
                ),
                &["kind"],
            )?,
            transactions: IntCounterVec::new(
                Opts::new(
                    "transformer_transactions_total",
                    "Transactions by outcome (exactly-once).",
                ),
                &["outcome"],
            )?,
            lag: ConsumerLag::register(registry)?,
        };
        for reason in DeadLetterReason::ALL {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        pipeline::register_metrics!(
            registry,
            metrics.records_in,
            metrics.records_out,
            metrics.dead_letters,
            metrics.transform_seconds,
            metrics.delivery_seconds,
            metrics.in_flight,
            metrics.delivery_events,
            metrics.transactions
        )?;
        Ok(metrics)
    }
}
