//! `logwarden-detector`: streaming anomaly detection and alerting on the enriched stream.
//!
//! - `logwarden-detector [run]`: the service (`enriched` → results index, `anomalies`, alerts).
//! - `logwarden-detector read`: the readers (`enriched` → `projected`, a consumer group), for
//!   sessions that read `projected` (`detector.input: projected`).
//! - `logwarden-detector check --spec FILE [--rules FILE]`: validates a detection spec, checks
//!   its feature fields against the transformer's rules (the default rules without `--rules`),
//!   and summarises it.
//! - `logwarden-detector spec`: prints the default spec (the seed's five detectors).
//! - `logwarden-detector evaluate [--run-id RUN] [--report FILE]`: precision, recall, time to
//!   detect (to the interval's end and to the alert's delivery) and false alerts per hour of
//!   normal traffic, per detector, from the `labels` topic, the results index and the alerts
//!   index; `--report` also writes it as Markdown (`.md`) or a self-contained page (`.html`).
//! - `logwarden-detector historical --from T --to T`: scores a past range; results are marked
//!   historical and never alert.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use detector::settings::{RawConfig, Settings, TELEMETRY_PORT, check_against_rules};
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
    /// Run a reader: project `enriched` into `projected` for the sessions (a consumer group:
    /// run as many as `enriched` has partitions, at most).
    Read {
        /// YAML config file (kafka, telemetry, detector sections).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a detection spec against the transformer's rules and print what it declares.
    Check {
        /// The spec file.
        #[arg(long)]
        spec: PathBuf,
        /// The transformer's rules file the feature fields must come from [default: the
        /// transformer's default rules].
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Print the default spec.
    Spec,
    /// Score the detector's results against the producer's ground-truth labels.
    Evaluate {
        /// YAML config file (kafka, opensearch, detector sections).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only the labels of this producer run.
        #[arg(long)]
        run_id: Option<String>,
        /// Also write the report (run, span, detectors, phases) to this file: Markdown when it
        /// ends in `.md`, a self-contained HTML page when it ends in `.html`.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Score a past range from OpenSearch (results marked historical: no alerts).
    Historical {
        /// YAML config file (kafka, opensearch, detector sections).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start: RFC 3339 (`2026-11-23T00:00:00Z`) or a span ago (`2h`).
        #[arg(long)]
        from: String,
        /// End: RFC 3339, a span ago, or `now` [default: now].
        #[arg(long, default_value = "now")]
        to: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config).await,
        Command::Read { config } => read(config).await,
        Command::Check { spec, rules } => check(&spec, rules.as_deref()),
        Command::Spec => {
            print!("{DEFAULT_SPEC}");
            Ok(())
        }
        Command::Evaluate {
            config,
            run_id,
            report,
        } => evaluate(config, run_id.as_deref(), report.as_deref()).await,
        Command::Historical { config, from, to } => historical(config, &from, &to).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One write: stderr is unbuffered, and a message written in pieces can interleave with
            // stdout's lines where both go to one pipe.
            let message = format!("logwarden-detector: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, std::env::var("HOSTNAME").ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    for warning in &settings.spec_warnings {
        tracing::warn!("{warning}");
    }
    let service = Service::start("detector", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    service.check_kafka(&settings.kafka).await?;
    detector::service::run(settings, &service).await?;
    Ok(())
}

async fn read(config: Option<PathBuf>) -> anyhow::Result<()> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, std::env::var("HOSTNAME").ok())?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let service = Service::start("detector-reader", &settings.telemetry, TELEMETRY_PORT)
        .await
        .context("starting telemetry")?;
    service.check_kafka(&settings.kafka).await?;
    detector::reader::run(settings, &service).await?;
    Ok(())
}

fn check(path: &std::path::Path, rules: Option<&std::path::Path>) -> anyhow::Result<()> {
    let spec = Spec::load(path)?;
    let warnings = check_against_rules(&spec, Some(path), rules)?;
    println!(
        "{}: valid (feature fields checked against {})",
        path.display(),
        rules.map_or_else(
            || detector::spec::rules::DEFAULT_RULES_ORIGIN.to_owned(),
            |r| r.display().to_string()
        )
    );
    for warning in &warnings {
        println!("  warning: {warning}");
    }
    for d in &spec.detectors {
        println!(
            "  detector {}: {} every {:?} (delay {:?})",
            d.name,
            d.feature_name(),
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
            m.builtin_min_confidence(),
            m.severity
        );
    }
    Ok(())
}

fn offline_settings(config: Option<PathBuf>) -> anyhow::Result<(Settings, opensearch::OpenSearch)> {
    let raw: RawConfig = pipeline::config::load(config.as_deref())?;
    let settings = Settings::from_raw(raw, None)?;
    let client =
        pipeline::search::client(&settings.opensearch, std::time::Duration::from_secs(60))?;
    Ok((settings, client))
}

async fn evaluate(
    config: Option<PathBuf>,
    run: Option<&str>,
    report: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    // Checked before the labels are read: a wrong name fails at once.
    let format = report
        .map(detector::evaluate::Format::of)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (settings, client) = offline_settings(config)?;
    let evaluation =
        detector::evaluate::evaluate(&settings.spec, &settings.kafka, &client, run).await?;
    print!("{}", detector::evaluate::table(&evaluation.scores));
    if let (Some(path), Some(format)) = (report, format) {
        std::fs::write(path, detector::evaluate::render(&evaluation, format))
            .with_context(|| format!("writing the report to {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// An RFC 3339 time, `now`, or a span ago (`90m`), as epoch milliseconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    let now = chrono::Utc::now().timestamp_millis();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let ago = humantime_serde::re::humantime::parse_duration(text).with_context(|| {
        format!("`{text}` is neither an RFC 3339 time (2026-11-23T00:00:00Z) nor a span ago (2h)")
    })?;
    Ok(now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))
}

async fn historical(config: Option<PathBuf>, from: &str, to: &str) -> anyhow::Result<()> {
    let (settings, client) = offline_settings(config)?;
    let (from, to) = (parse_time(from)?, parse_time(to)?);
    anyhow::ensure!(from < to, "--from must be before --to");
    let (task, summary) = detector::evaluate::historical(&settings.spec, &client, from, to).await?;
    println!("historical analysis {task} → {}", settings.spec.results);
    for (detector, scored, anomalous) in summary {
        println!("  {detector:<30} {scored:>6} intervals, {anomalous:>4} anomalous");
    }
    println!("(results carry task_id {task}; monitors never alert on them)");
    Ok(())
}
