//! `logwarden-sink`: bulk-loads enriched records into OpenSearch with no loss and no duplicates.
//!
//! Reads `enriched` in a consumer group, writes daily indices under one alias (`sink.index`),
//! sends what OpenSearch refuses for good to `dead-letter` with OpenSearch's reason.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pipeline::service::Service;
use sink::settings::{RawConfig, Settings, TELEMETRY_PORT};

#[derive(Debug, Parser)]
#[command(
    name = "logwarden-sink",
    version,
    about = "Bulk-load enriched records into OpenSearch: daily indices, one alias, no loss, no duplicates."
)]
struct Args {
    /// YAML config file (kafka, opensearch, telemetry, sink sections); `LOGWARDEN_*` variables
    /// override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One write: stderr is unbuffered, and a message written in pieces can interleave with
            // stdout's lines where both go to one pipe.
            let message = format!("logwarden-sink: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, std::env::var("HOSTNAME").ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let service = Service::start("sink", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    service.check_kafka(&settings.kafka).await?;
    sink::service::run(settings, &service).await?;
    Ok(())
}
