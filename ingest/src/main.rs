//! `logwarden-ingest`: Splunk HEC, Firehose, syslog and NDJSON receivers writing to `raw`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ingest::settings::{RawConfig, Settings, TELEMETRY_PORT};
use pipeline::service::Service;

#[derive(Debug, Parser)]
#[command(
    name = "logwarden-ingest",
    version,
    about = "Receive logs (Splunk HEC, Firehose, syslog, NDJSON) and write them to Kafka's raw topic, acknowledged only once Kafka has them."
)]
struct Args {
    /// YAML config file (kafka, telemetry, ingest sections); `LOGWARDEN_*` variables override it.
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
            let message = format!("logwarden-ingest: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, |name| std::env::var(name).ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let service = Service::start("ingest", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    service.check_kafka(&settings.kafka).await?;
    ingest::service::run(settings, &service).await?;
    Ok(())
}
