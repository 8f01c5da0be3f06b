//! `logwarden-provisioner`: converges OpenSearch to the state the spec declares. Run as a
//! Kubernetes Job on `helm install`/`upgrade` (and daily, for retention).
//!
//! - `logwarden-provisioner [apply] [--dry-run] [--prune] [--k8s-job NAME]`: plan and converge;
//!   `--dry-run` prints the plan and changes nothing; `--k8s-job` records what was changed as
//!   Kubernetes Events on that Job.
//! - `logwarden-provisioner plan`: the same as `apply --dry-run`.
//! - `logwarden-provisioner status`: each object's state (plugin detectors: state and init
//!   progress).
//! - `logwarden-provisioner spec`: prints the default spec.
//! - `logwarden-provisioner topics --partitions N --replication-factor R`: creates or checks the
//!   Kafka topics of the `kafka` section.
//! - `logwarden-provisioner verify --within 10m`: exits 0 only when recent events and results are
//!   in OpenSearch.
//!
//! With `--exit-code`, `plan` and `status` exit 2 when OpenSearch differs from the spec.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use pipeline::spec::{DEFAULT_SPEC, TargetChoice};
use provisioner::api::Api;
use provisioner::kubernetes::{self, JobEvents};
use provisioner::plan::Plan;
use provisioner::settings::{KafkaSettings, Overrides, RawConfig, Settings};
use provisioner::target::Target;
use provisioner::{Cluster, Mode, choose_target, converge, status, wait_for_cluster};

#[derive(Debug, Parser)]
#[command(
    name = "logwarden-provisioner",
    version,
    about = "Converge OpenSearch to the state the spec declares: templates, results index, retention; and detectors, monitors and channels on clusters with the plugins."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: Common,
    /// Print the plan and change nothing.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Delete objects this owner created that the spec no longer declares.
    #[arg(long, global = true)]
    prune: bool,
    /// With `plan` or `status`: exit 2 when OpenSearch differs from the spec (a drift check
    /// for CI), 0 when it is in sync.
    #[arg(long, global = true)]
    exit_code: bool,
}

#[derive(Debug, Clone, ClapArgs)]
struct Common {
    /// YAML config file (opensearch, kafka, telemetry, provisioner sections).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// The spec [default: the embedded seed spec, or provisioner.spec].
    #[arg(long, global = true)]
    spec: Option<PathBuf>,
    /// OpenSearch's base URL [default: LOGWARDEN_OPENSEARCH__URL, or http://127.0.0.1:9200].
    #[arg(long, global = true)]
    url: Option<String>,
    /// The target [default: the spec's provisioning.target].
    #[arg(long, global = true, value_enum)]
    target: Option<TargetArg>,
    /// How long to wait for OpenSearch and the plugins (for `topics`: for Kafka), e.g. 2m
    /// [default: 120s].
    #[arg(long, global = true, value_parser = humantime_serde::re::humantime::parse_duration)]
    wait: Option<Duration>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    Auto,
    Builtin,
    OpensearchPlugins,
}

impl From<TargetArg> for TargetChoice {
    fn from(arg: TargetArg) -> Self {
        match arg {
            TargetArg::Auto => Self::Auto,
            TargetArg::Builtin => Self::Builtin,
            TargetArg::OpensearchPlugins => Self::OpensearchPlugins,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan and converge (the default).
    Apply {
        /// Record what was changed as Kubernetes Events on this Job, in the namespace of the
        /// pod's service account (or the kubeconfig context). Failing to record them only warns.
        #[arg(long, value_name = "JOB")]
        k8s_job: Option<String>,
    },
    /// Print the plan; change nothing (as `apply --dry-run`).
    Plan,
    /// Print each object's state.
    Status,
    /// Print the default spec.
    Spec,
    /// Create the Kafka topics of the `kafka` section that are missing; fail when one has fewer
    /// partitions than asked.
    Topics {
        /// Partitions of each topic created, and the least an existing one must have.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Replication factor of each topic created.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
    },
    /// Exit 0 only when the events alias holds events and the results index holds results newer
    /// than --within (data is flowing end to end); else exit 1 naming what is missing.
    Verify {
        /// The window, e.g. 10m.
        #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
        within: Duration,
        /// The index (or pattern) holding the results [default: the spec's `results`; with the
        /// opensearch-plugins target, the plugin's: `.opendistro-anomaly-results*`].
        #[arg(long, value_name = "INDEX")]
        results_index: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let common = &args.common;
    let result = match args.command.unwrap_or(Command::Apply { k8s_job: None }) {
        Command::Spec => {
            print!("{DEFAULT_SPEC}");
            Ok(false)
        }
        Command::Apply { k8s_job: None } => apply(common, args.dry_run, args.prune)
            .await
            .map(|plan| plan.changes()),
        Command::Apply { k8s_job: Some(job) } => {
            apply_as_job(common, args.dry_run, args.prune, &job).await
        }
        Command::Plan => apply(common, true, args.prune)
            .await
            .map(|plan| plan.changes()),
        Command::Status => show_status(common).await,
        Command::Topics {
            partitions,
            replication_factor,
        } => topics(common, partitions, replication_factor).await,
        Command::Verify {
            within,
            results_index,
        } => verify(common, within, results_index).await,
    };
    match result {
        Ok(true) if args.exit_code => ExitCode::from(2),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            // One write: stderr is unbuffered, and a message written in pieces can interleave with
            // stdout's lines where both go to one pipe.
            let message = format!("logwarden-provisioner: {err:#}\n");
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The validated settings and a client of the cluster, once it answers.
async fn connect(common: &Common) -> anyhow::Result<(Settings, Api, Cluster)> {
    let raw: RawConfig = pipeline::config::load(common.config.as_deref())?;
    let settings = Settings::from_raw(raw, overrides(common))?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let client = pipeline::search::client(&settings.opensearch, settings.request_timeout)?;
    let api = Api::new(client, settings.request_timeout);
    let cluster = wait_for_cluster(&api, &settings.opensearch.url, settings.wait).await?;
    Ok((settings, api, cluster))
}

fn overrides(common: &Common) -> Overrides {
    Overrides {
        spec: common.spec.clone(),
        url: common.url.clone(),
        target: common.target.map(Into::into),
        wait: common.wait,
    }
}

/// Connects and chooses the target, saying which.
async fn connect_target(common: &Common) -> anyhow::Result<(Settings, Api, Target)> {
    let (settings, api, cluster) = connect(common).await?;
    let choice = choose_target(&api, settings.target, &cluster, settings.wait).await?;
    println!(
        "OpenSearch {} at {}; target {} ({})",
        cluster.version, settings.opensearch.url, choice.target, choice.reason
    );
    Ok((settings, api, choice.target))
}

/// Plans and, unless `dry_run`, converges; prints the plan.
async fn apply(common: &Common, dry_run: bool, prune: bool) -> anyhow::Result<Plan> {
    let (settings, api, target) = connect_target(common).await?;
    let mode = Mode {
        apply: !dry_run,
        prune,
    };
    let plan = converge(&api, &settings.spec, target, mode, chrono::Utc::now()).await?;
    print!("{}", plan.table());
    if dry_run {
        println!("dry run: nothing was changed");
    }
    Ok(plan)
}

/// `apply --k8s-job`: applies, then records the outcome as Events on the Job (a failure to
/// record only warns).
async fn apply_as_job(
    common: &Common,
    dry_run: bool,
    prune: bool,
    job: &str,
) -> anyhow::Result<bool> {
    if dry_run {
        anyhow::bail!(
            "--k8s-job records what apply changed: leave out --dry-run (or run `plan` without it)"
        );
    }
    let warn = |err: &dyn std::fmt::Display| {
        eprintln!("logwarden-provisioner: warning: no Kubernetes Events recorded: {err}");
    };
    let events = JobEvents::connect(job).await.map_err(|err| warn(&err)).ok();
    let outcome = apply(common, false, prune).await;
    if let Some(events) = events {
        let notes = match &outcome {
            Ok(plan) => kubernetes::notes(plan),
            Err(err) => vec![kubernetes::failure(&format!("{err:#}"))],
        };
        match events.record(&notes).await {
            Ok(()) => println!(
                "recorded {} Kubernetes Events on Job {}/{job}",
                notes.len(),
                events.namespace()
            ),
            Err(err) => warn(&err),
        }
    }
    outcome.map(|plan| plan.changes())
}

/// Prints each object's state; says whether anything differs from the spec.
async fn show_status(common: &Common) -> anyhow::Result<bool> {
    let (settings, api, target) = connect_target(common).await?;
    let (table, changes) = status(&api, &settings.spec, target, chrono::Utc::now()).await?;
    print!("{table}");
    Ok(changes)
}

/// Creates or checks the Kafka topics; fails when one has fewer partitions than asked.
async fn topics(common: &Common, partitions: i32, replication_factor: i32) -> anyhow::Result<bool> {
    let raw: RawConfig = pipeline::config::load(common.config.as_deref())?;
    let settings = KafkaSettings::from_raw(raw, common.wait)?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let kafka = &settings.kafka;
    let report =
        provisioner::topics::ensure(kafka, partitions, replication_factor, settings.wait).await?;
    print!("{}", report.table());
    match report.too_few(&kafka.brokers) {
        Some(err) => Err(err.into()),
        None => Ok(false),
    }
}

/// Exits 0 only when recent events and results are in OpenSearch.
async fn verify(
    common: &Common,
    within: Duration,
    results_index: Option<String>,
) -> anyhow::Result<bool> {
    let (settings, api, cluster) = connect(common).await?;
    println!(
        "OpenSearch {} at {}",
        cluster.version, settings.opensearch.url
    );
    let spec = &settings.spec;
    let results = results_index.as_deref().unwrap_or(&spec.results);
    let found =
        provisioner::verify::count(&api, &spec.events, results, within, chrono::Utc::now()).await?;
    print!("{}", provisioner::verify::lines(&found, within));
    provisioner::verify::judge(found, within)?;
    Ok(false)
}
