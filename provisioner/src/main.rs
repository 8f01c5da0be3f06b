//! `logwarden-provisioner`: converges OpenSearch to the state the spec declares. Run as a
//! Kubernetes Job on `helm install`/`upgrade` (and daily, for retention).
//!
//! - `logwarden-provisioner [apply] [--dry-run] [--prune]`: plan and converge; `--dry-run`
//!   prints the plan and changes nothing.
//! - `logwarden-provisioner plan`: the same as `apply --dry-run`.
//! - `logwarden-provisioner status`: each object's state (plugin detectors: state and init
//!   progress).
//! - `logwarden-provisioner spec`: prints the default spec.
//!
//! With `--exit-code`, `plan` and `status` exit 2 when OpenSearch differs from the spec.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use pipeline::spec::{DEFAULT_SPEC, TargetChoice};
use provisioner::api::Api;
use provisioner::settings::{Overrides, RawConfig, Settings};
use provisioner::{Mode, choose_target, converge, status, wait_for_cluster};

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
    /// YAML config file (opensearch, telemetry, provisioner sections).
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
    /// How long to wait for OpenSearch and the plugins, e.g. 2m [default: 120s].
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
    Apply,
    /// Print the plan; change nothing (as `apply --dry-run`).
    Plan,
    /// Print each object's state.
    Status,
    /// Print the default spec.
    Spec,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command.unwrap_or(Command::Apply) {
        Command::Spec => {
            print!("{DEFAULT_SPEC}");
            Ok(false)
        }
        Command::Apply => run(&args.common, args.dry_run, args.prune, false).await,
        Command::Plan => run(&args.common, true, args.prune, false).await,
        Command::Status => run(&args.common, true, false, true).await,
    };
    match result {
        Ok(true) if args.exit_code => ExitCode::from(2),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("logwarden-provisioner: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Plans (and unless `dry_run`, converges), or shows the status; says whether the plan had
/// changes.
async fn run(
    common: &Common,
    dry_run: bool,
    prune: bool,
    show_status: bool,
) -> anyhow::Result<bool> {
    let raw: RawConfig = pipeline::config::load(common.config.as_deref())?;
    let settings = Settings::from_raw(
        raw,
        Overrides {
            spec: common.spec.clone(),
            url: common.url.clone(),
            target: common.target.map(Into::into),
            wait: common.wait,
        },
    )?;
    pipeline::telemetry::init_logging(&settings.telemetry)?;
    let client = pipeline::search::client(&settings.opensearch, settings.request_timeout)?;
    let api = Api::new(client, settings.request_timeout);
    let cluster = wait_for_cluster(&api, &settings.opensearch.url, settings.wait).await?;
    let choice = choose_target(&api, settings.target, &cluster, settings.wait).await?;
    println!(
        "OpenSearch {} at {}; target {} ({})",
        cluster.version, settings.opensearch.url, choice.target, choice.reason
    );
    let now = chrono::Utc::now();
    if show_status {
        let (table, changes) = status(&api, &settings.spec, choice.target, now).await?;
        print!("{table}");
        return Ok(changes);
    }
    let mode = Mode {
        apply: !dry_run,
        prune,
    };
    let plan = converge(&api, &settings.spec, choice.target, mode, now).await?;
    print!("{}", plan.table());
    if dry_run {
        println!("dry run: nothing was changed");
    }
    Ok(plan.changes())
}
