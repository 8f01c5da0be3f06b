//! `logwarden-producer`: generates the seed's WAF logs into Kafka (or stdout), with anomalies on
//! demand and ground-truth labels of every one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pipeline::service::Service;
use producer::run::{now_ms, run};
use producer::settings::{GeneratorConfig, OutputKind, RawConfig, Settings, TELEMETRY_PORT};

/// Generate WAF logs: normal traffic, anomalies on a field, scenarios, or history (backfill).
///
/// Every flag can also be set in the config file under `generator:` or as
/// `LOGWARDEN_GENERATOR__<FLAG>`; flags win.
#[derive(Debug, Parser)]
#[command(name = "logwarden-producer", version)]
struct Args {
    /// YAML config file (kafka, telemetry, generator sections).
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(flatten)]
    generator: GeneratorConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner().await {
        Ok(code) => code,
        Err(err) => {
            // One write: stderr is unbuffered, and a message written in pieces can interleave with
            // stdout's lines where both go to one pipe.
            let message = format!("logwarden-producer: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn main_inner() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let mut raw: RawConfig = pipeline::config::load(args.config.as_deref())?;
    raw.generator = raw.generator.overridden_by(args.generator);
    let settings = Settings::from_raw(raw, now_ms(), std::env::var("HOSTNAME").ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    // Offline (stdout) runs are often several at once in a shell: an ephemeral port unless set.
    let default_port = match settings.output {
        OutputKind::Kafka => TELEMETRY_PORT,
        OutputKind::Stdout => 0,
    };
    let service = Service::start("producer", &settings.telemetry, default_port)
        .await
        .context("starting telemetry")?;
    if settings.output == OutputKind::Kafka {
        service.check_kafka(&settings.kafka).await?;
    } else {
        // Writing to stdout needs nothing else: ready once started.
        service.telemetry.health.ready("output");
    }
    // A stop by signal after a clean drain is a success: every record sent was acknowledged.
    run(settings, &service).await?;
    Ok(ExitCode::SUCCESS)
}
