//! `stack restart` and `stack pid`: the fault suite's handles on one server of a running stack.
//!
//! `restart` stops one server (SIGTERM with the usual grace, or SIGKILL with `--kill`: a crash),
//! waits until its ports are free, and starts it again exactly as `up` would with the settings and
//! Java the state file records, on the same data: topics, offsets, SCRAM users and indices
//! survive, the secure listeners come back with the same certificates. It returns once the server
//! is ready again (Kafka lists broker 1, OpenSearch is green or yellow) and the state file names
//! the new pid. `pid` prints the pid of a server, which changes at each restart, so a test that
//! stops a process (SIGSTOP) asks for it just before.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Server;
use super::state::{State, StateFile};
use super::up::{Plan, kafka_up, opensearch_up};
use crate::Ctx;
use crate::prereq;
use crate::process;

const STOP_GRACE: Duration = Duration::from_secs(30);

/// The running stack's state, with servers that are gone forgotten.
fn running(ctx: &Ctx) -> Result<State> {
    Ok(State::load(&ctx.dirs.state_file())?
        .context("no stack runs here (no state file); start it with `cargo xtask stack up`")?
        .live(&ctx.dirs.data))
}

/// `stack pid <server>`: the process id of a running server.
pub fn pid(ctx: &Ctx, server: Server) -> Result<u32> {
    let state = running(ctx)?;
    let pid = match server {
        Server::Kafka => state.kafka.map(|k| k.pid),
        Server::Opensearch => state.opensearch.map(|o| o.pid),
    };
    pid.with_context(|| {
        format!(
            "{} is not running; start it with `cargo xtask stack up`",
            name(server)
        )
    })
}

fn name(server: Server) -> &'static str {
    match server {
        Server::Kafka => "kafka",
        Server::Opensearch => "opensearch",
    }
}

/// `stack restart <server> [--kill]`: stop one server and start it again with the same settings,
/// ports and data; returns once it is ready, having printed how long each phase took.
pub fn restart(ctx: &Ctx, server: Server, kill: bool) -> Result<()> {
    let state = running(ctx)?;
    let (pid, ports) = match server {
        Server::Kafka => state.kafka.as_ref().map(|k| {
            let s = &k.settings;
            (
                k.pid,
                vec![s.port, s.controller_port, s.sasl_ssl_port, s.mtls_port],
            )
        }),
        Server::Opensearch => state.opensearch.as_ref().map(|o| {
            let s = &o.settings;
            (o.pid, vec![s.http_port, s.transport_port])
        }),
    }
    .with_context(|| {
        format!(
            "{} is not running, so there is nothing to restart; start it with `cargo xtask stack up`",
            name(server)
        )
    })?;
    let what = name(server);

    let started = Instant::now();
    let how = if kill {
        println!("{what}: killing (SIGKILL, pid {pid})…");
        process::kill(pid)
    } else {
        println!("{what}: stopping (pid {pid})…");
        process::stop(pid, STOP_GRACE)
    }
    .with_context(|| format!("stopping {what}"))?;
    process::wait_ports_free(&ports, Duration::from_secs(60))?;
    let stopped_in = started.elapsed();
    let how = match how {
        process::Stopped::Gracefully => "stopped",
        process::Stopped::Killed => "killed",
        process::Stopped::AlreadyGone => "was already gone",
    };
    println!(
        "{what}: {how}, ports free in {:.1} s",
        stopped_in.as_secs_f64()
    );

    let starting = Instant::now();
    let state_file = StateFile::new(ctx.dirs.state_file(), state.clone());
    let mvn = prereq::maven(ctx.root)?;
    match server {
        Server::Kafka => {
            let k = state.kafka.as_ref().context("checked above")?;
            let plan = Plan::Start {
                mvn,
                java: k.java.clone(),
            };
            kafka_up(ctx, &k.settings, plan, k.partitions, &state_file)?;
        }
        Server::Opensearch => {
            let o = state.opensearch.as_ref().context("checked above")?;
            let plan = Plan::Start {
                mvn,
                java: o.java.clone(),
            };
            opensearch_up(ctx, &o.settings, plan, &state_file)?;
        }
    }
    let ready_in = starting.elapsed();
    let now = state_file.into_state();
    let pid = match server {
        Server::Kafka => now.kafka.map(|k| k.pid),
        Server::Opensearch => now.opensearch.map(|o| o.pid),
    }
    .context("the restarted server is missing from the state file")?;
    println!(
        "{what}: restarted in {:.1} s (stopped in {:.1} s, ready in {:.1} s, pid {pid})",
        started.elapsed().as_secs_f64(),
        stopped_in.as_secs_f64(),
        ready_in.as_secs_f64()
    );
    Ok(())
}
