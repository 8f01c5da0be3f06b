//! `logwarden-transformer`: enriches raw WAF records with indicator fields from declarative rules.
//!
//! - `logwarden-transformer [run]`: the Kafka service (`raw` → `enriched` / `dead-letter`).
//! - `logwarden-transformer apply [--rules FILE] [--dead-letters FILE]`: NDJSON stdin → stdout.
//! - `logwarden-transformer check --rules FILE`: validates a rules file and summarises it.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pipeline::service::Service;
use transformer::rules::CompiledRules;
use transformer::settings::{RawConfig, Settings, TELEMETRY_PORT};

#[derive(Debug, Parser)]
#[command(
    name = "logwarden-transformer",
    version,
    about = "Enrich WAF records with indicator fields from declarative rules."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Kafka service: consume `raw`, write `enriched` and `dead-letter` (the default).
    Run {
        /// YAML config file (kafka, telemetry, transformer sections).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Enrich NDJSON from stdin to stdout; rejected lines go to `--dead-letters` with reasons.
    Apply {
        /// Rules file [default: the embedded seed rules].
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Where rejected lines go (NDJSON with reason and detail); counted only when unset.
        #[arg(long, value_name = "FILE")]
        dead_letters: Option<PathBuf>,
    },
    /// Validate a rules file and print what it monitors.
    Check {
        /// The rules file.
        #[arg(long)]
        rules: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config).await,
        Command::Apply {
            rules,
            dead_letters,
        } => apply(rules, dead_letters),
        Command::Check { rules } => check(&rules),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One write: stderr is unbuffered, and a message written in pieces can interleave with
            // stdout's lines where both go to one pipe.
            let message = format!("logwarden-transformer: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, std::env::var("HOSTNAME").ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let service = Service::start("transformer", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    service.check_kafka(&settings.kafka).await?;
    transformer::service::run(settings, &service).await?;
    Ok(ExitCode::SUCCESS)
}

fn apply(rules: Option<PathBuf>, dead_letters: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let rules = match &rules {
        Some(path) => CompiledRules::load(path)?,
        None => CompiledRules::default_rules()?,
    };
    let mut dead_file = dead_letters
        .as_ref()
        .map(|path| File::create(path).with_context(|| format!("creating {}", path.display())))
        .transpose()?;
    let counts = transformer::offline::apply(
        &rules,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        dead_file.as_mut().map(|file| file as &mut dyn Write),
    )?;
    eprintln!("{counts}");
    Ok(ExitCode::SUCCESS)
}

fn check(rules: &std::path::Path) -> anyhow::Result<ExitCode> {
    let summary = transformer::offline::check(rules)?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
