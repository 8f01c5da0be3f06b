//! `cargo xtask`: the project's own tasks, in Rust so that they run wherever cargo does.
//!
//! - `stack up|down|status|logs|reset|restart|pid`: a local Apache Kafka and OpenSearch, real
//!   servers that xtask installs itself from Maven Central into a cache, and runs detached from
//!   the terminal;
//! - `test`: fmt, clippy and the workspace's tests against that stack;
//! - `demo`: the system running on this machine;
//! - `image`: the OCI image of the five services, built with buildah, run with podman;
//! - `bench latency|cpu`: end-to-end latency and CPU per record, against that stack;
//! - `k8s tools|up|down|status`: Kubernetes tools built from the Go module proxy and a kwok
//!   control plane on loopback, for the deploy tests;
//! - `seaweedfs`: the S3-compatible server of the ingest bucket tests, built the same way.
//!
//! This file only parses the command line; each command lives in its module.

mod bench;
mod demo;
mod image;
mod k8s;
mod kafka;
mod kafka_tls;
mod opensearch;
mod paths;
mod prereq;
mod process;
mod receiver;
mod seaweedfs;
mod stack;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::paths::Dirs;
use crate::stack::{Server, StackOptions};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "logwarden's project tasks: the local Kafka + OpenSearch stack, tests, the demo"
)]
struct Cli {
    /// Download cache, kept by `stack reset` [default: /var/cache/logwarden as root, else
    /// $XDG_CACHE_HOME/logwarden]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Directories")]
    cache_dir: Option<PathBuf>,
    /// The stack's state: configs, data, logs [default: /var/lib/logwarden/stack as root, else
    /// $XDG_DATA_HOME/logwarden/stack]
    #[arg(long, global = true, value_name = "DIR", help_heading = "Directories")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the local Kafka + OpenSearch stack.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Bring the stack up, run fmt, clippy and the workspace's tests against it, stop what was
    /// started.
    Test(test::TestArgs),
    /// Run logwarden on this machine: the stack, history and live traffic with an anomaly.
    Demo(demo::DemoArgs),
    /// Build the OCI image of the five services (`localhost/logwarden:<version>`) with buildah
    /// and print how to run it with podman.
    Image(image::ImageArgs),
    /// Measurements against the stack that a test cannot make.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Kubernetes tools and a local control plane (kwok) for the deploy tests.
    K8s {
        #[command(subcommand)]
        command: k8s::K8sCommand,
    },
    /// Build SeaweedFS's `weed` (the ingest bucket tests' S3 server) from the Go module proxy
    /// into the cache (a no-op when built) and print its path.
    Seaweedfs,
}

#[derive(Debug, Subcommand)]
enum StackCommand {
    /// Install (first run) and start Kafka and OpenSearch, create the topics; a no-op if running.
    Up(StackOptions),
    /// Stop both servers (and any stray server process of this stack).
    Down,
    /// Show what runs, where, and how healthy it is; fails unless the stack is up.
    Status,
    /// Show the last lines of the servers' logs.
    Logs {
        /// Only this server's logs.
        server: Option<Server>,
        /// How many lines of each log.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
    /// Stop the stack and delete its data (topics, indices, logs); downloads stay cached.
    Reset,
    /// Stop one server and start it again on the same data and ports (the fault suite's broker
    /// and OpenSearch restarts); prints how long it took.
    Restart {
        /// The server to restart.
        server: Server,
        /// Kill it (SIGKILL, a crash) instead of stopping it gracefully (SIGTERM).
        #[arg(long)]
        kill: bool,
    },
    /// Print the process id of a running server (it changes at every restart).
    Pid {
        /// The server.
        server: Server,
    },
}

/// What every command needs.
#[derive(Debug)]
pub struct Ctx {
    /// Cache and data directories.
    pub dirs: Dirs,
    /// Whether xtask runs as root (OpenSearch then runs as its own user).
    pub root: bool,
    /// For the async Kafka admin calls of the pipeline crate.
    pub rt: tokio::runtime::Handle,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let root = prereq::is_root();
    let ctx = Ctx {
        dirs: Dirs::resolve(cli.cache_dir.as_deref(), cli.data_dir.as_deref(), root)?,
        root,
        rt: runtime.handle().clone(),
    };
    let ok = match cli.command {
        Command::Stack { command } => match command {
            StackCommand::Up(options) => {
                stack::up(&ctx, &options)?;
                println!();
                stack::status(&ctx)?
            }
            StackCommand::Down => {
                stack::down(&ctx)?;
                true
            }
            StackCommand::Status => stack::status(&ctx)?,
            StackCommand::Logs { server, lines } => {
                stack::logs(&ctx, server, lines)?;
                true
            }
            StackCommand::Reset => {
                stack::reset(&ctx)?;
                true
            }
            StackCommand::Restart { server, kill } => {
                stack::restart(&ctx, server, kill)?;
                true
            }
            StackCommand::Pid { server } => {
                println!("{}", stack::pid(&ctx, server)?);
                true
            }
        },
        Command::Test(args) => {
            test::run(&ctx, &args)?;
            true
        }
        Command::Demo(options) => {
            demo::run(&ctx, &options)?;
            true
        }
        Command::Image(args) => {
            image::run(&ctx, &args)?;
            true
        }
        Command::Bench { command } => {
            bench::run(&ctx, &command)?;
            true
        }
        Command::K8s { command } => k8s::run(&ctx, &command)?,
        Command::Seaweedfs => {
            println!("{}", seaweedfs::ensure(&ctx.dirs.cache)?.display());
            true
        }
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
