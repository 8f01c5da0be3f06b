//! `cargo xtask bench`: measurements that need the running stack and the release builds, which
//! neither a test (no timed assertions) nor a criterion benchmark of one crate can make.
//!
//! - `latency`: event time to searchable in OpenSearch, per stage (`bench/latency`);
//! - `cpu`: records per CPU-second of the producer, the transformer, the sink (`bench/cpu`) and
//!   the detector (`bench/detector`);
//! - `ingest`: logwarden-ingest's HEC and syslog receivers against the raw Kafka producer
//!   (`bench/ingest`).
//!
//! Both run the services as processes (`bench/services`) on private topics and a private index
//! that they remove at the end (`bench/private`). `docs/capacity.md` is built from their output.

mod cpu;
mod detector;
mod ingest;
mod latency;
mod private;
mod scrape;
mod services;

use anyhow::Result;

use crate::Ctx;

/// The measurements.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// End-to-end latency (producer event time to searchable in OpenSearch), per stage.
    Latency(latency::LatencyArgs),
    /// Records per CPU-second of the producer, the transformer, the sink and the detector.
    Cpu(cpu::CpuArgs),
    /// Events per CPU-second of the HEC and syslog receivers, against the raw Kafka producer.
    Ingest(ingest::IngestArgs),
}

/// Runs one measurement.
pub fn run(ctx: &Ctx, command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Latency(args) => latency::run(ctx, args),
        BenchCommand::Cpu(args) => cpu::run(ctx, args),
        BenchCommand::Ingest(args) => ingest::run(ctx, args),
    }
}
