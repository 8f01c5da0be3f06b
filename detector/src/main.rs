//! `logwarden-detector`: streaming anomaly detection and alerting on the enriched stream.
//!
//! - `logwarden-detector [run]`: the service (`enriched` → results index, `anomalies`, alerts).
//! - `logwarden-detector check --spec FILE`: validates a detection spec and summarises it.
//! - `logwarden-detector spec`: prints the default spec (the seed's five detectors).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use detector::settings::{RawConfig, Settings, TELEMETRY_PORT};
use detector::spec::{DEFAULT_SPEC, Spec};
use pipeline::service::Service;

#[derive(Debug, Parser)]
#[command(
    name = "logwarden-detector",
    version,
    about = "Score the enriched stream with random cut forests and alert on anomalies."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Run {
        /// YAML config file (kafka, opensearch, telemetry, detector sections).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a detection spec and print what it declares.
    Check {
        /// The spec file.
        #[arg(long)]
        spec: PathBuf,
    },
    /// Print the default spec.
    Spec,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config).await,
        Command::Check { spec } => check(&spec),
        Command::Spec => {
            print!("{DEFAULT_SPEC}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("logwarden-detector: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw)?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let service = Service::start("detector", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    detector::service::run(settings, &service).await?;
    Ok(())
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let spec = Spec::load(path)?;
    println!("{}: valid", path.display());
    for d in &spec.detectors {
        println!(
            "  detector {}: {} every {:?} (delay {:?})",
            d.name,
            detector::store::feature_name(d),
            d.interval,
            d.window_delay
        );
    }
    for m in &spec.monitors {
        println!(
            "  monitor {}: {} → {} (grade ≥ {}, confidence ≥ {}, severity {})",
            m.name,
            m.detectors.join(", "),
            m.channels.join(", "),
            m.min_grade,
            m.min_confidence,
            m.severity
        );
    }
    Ok(())
}
