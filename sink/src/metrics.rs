//! The sink's metrics: what an operator watches to see the sink keep up, hold back or refuse.
//!
//! One struct the service owns and registers in its own registry (no global registry), with
//! every label value created up front so each series exists from the start at 0.

use pipeline::kafka::ConsumerLag;
use pipeline::wire::DeadLetterReason;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::ledger::RequestResult;

/// The sink's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Records consumed from `enriched`.
    pub records_in: IntCounter,
    /// Records per bulk request.
    pub batch_records: Histogram,
    /// Bytes per bulk request body.
    pub batch_bytes: Histogram,
    /// Time from sending a bulk request to its response.
    pub bulk_seconds: Histogram,
    /// Documents by outcome of a bulk request: `indexed`, `retried`, `rejected`.
    pub items: IntCounterVec,
    /// Bulk requests by result: `ok` (every item judged), `retry` (no usable answer), `split`.
    pub requests: IntCounterVec,
    /// Records written to `dead-letter`, by reason.
    pub dead_letters: IntCounterVec,
    /// 1 while something is being retried (OpenSearch unreachable or overloaded), else 0.
    pub backpressure: IntGauge,
    /// Bulk requests in flight or waiting to be retried.
    pub requests_in_flight: IntGauge,
    /// Records consumed but not yet settled.
    pub records_in_flight: IntGauge,
    /// Lag per assigned partition of `enriched`, fed by the consumer's statistics.
    pub lag: ConsumerLag,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counts = vec![1.0, 10.0, 100.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0];
        let metrics = Self {
            records_in: IntCounter::new(
                "sink_records_in_total",
                "Records consumed from enriched.",
            )?,
            batch_records: Histogram::with_opts(
                HistogramOpts::new("sink_batch_records", "Documents per bulk request.")
                    .buckets(counts),
            )?,
            batch_bytes: Histogram::with_opts(
                HistogramOpts::new("sink_batch_bytes", "Bytes per bulk request body.")
                    .buckets(vec![1e3, 1e4, 1e5, 5e5, 1e6, 2e6, 5e6, 1e7, 5e7]),
            )?,
            bulk_seconds: Histogram::with_opts(
                HistogramOpts::new("sink_bulk_seconds", "Bulk request latency.").buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
                ]),
            )?,
            items: IntCounterVec::new(
                Opts::new("sink_items_total", "Documents by bulk outcome."),
                &["outcome"],
            )?,
            requests: IntCounterVec::new(
                Opts::new("sink_bulk_requests_total", "Bulk requests by result."),
                &["result"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "sink_dead_letters_total",
                    "Records written to dead-letter, by reason.",
                ),
                &["reason"],
            )?,
            backpressure: IntGauge::new(
                "sink_backpressure",
                "1 while OpenSearch is unreachable or overloaded and the sink retries.",
            )?,
            requests_in_flight: IntGauge::new(
                "sink_requests_in_flight",
                "Bulk requests in flight or waiting to be retried.",
            )?,
            records_in_flight: IntGauge::new(
                "sink_records_in_flight",
                "Records consumed and not yet settled.",
            )?,
            lag: ConsumerLag::register(registry)?,
        };
        for outcome in ["indexed", "retried", "rejected"] {
            metrics.items.with_label_values(&[outcome]);
        }
        for result in RequestResult::ALL {
            metrics.requests.with_label_values(&[result.as_str()]);
        }
        for reason in DeadLetterReason::ALL {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        pipeline::register_metrics!(
            registry,
            metrics.records_in,
            metrics.batch_records,
            metrics.batch_bytes,
            metrics.bulk_seconds,
            metrics.items,
            metrics.requests,
            metrics.dead_letters,
            metrics.backpressure,
            metrics.requests_in_flight,
            metrics.records_in_flight
        )?;
        Ok(metrics)
    }
}
