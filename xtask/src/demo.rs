//! `cargo xtask demo`: logwarden running on this machine, end to end.
//!
//! Today the demo covers what exists: the stack comes up, the transformer starts, the producer
//! writes 30 minutes of history (a backfill, as fast as the broker takes it) and then a minute of
//! live traffic with a country anomaly in the middle, the transformer enriches all of it, and the
//! demo reports what landed on each topic and the ground-truth label. Each later part of the
//! pipeline is one more step in [`run`], in pipeline order (sink, detector), until the demo ends
//! in a delivered alert.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::{KafkaConfig, group_lag, topic_size};

use crate::Ctx;
use crate::stack::{self, StackOptions, State};

/// The transformer's consumer group (its default).
const TRANSFORMER_GROUP: &str = "logwarden-transformer";

/// The live part: quiet, an anomaly on `country`, quiet again.
const LIVE_SCENARIO: &str = "\
name: demo-live
rate: 50
phases:
  - normal: 20s
  - anomaly: country
    duration: 20s
  - normal: 20s
";

/// Runs `cargo xtask demo`.
pub fn run(ctx: &Ctx, options: &StackOptions) -> Result<()> {
    let up = stack::ensure_up(ctx, options)?;
    let state = &up.state;
    let brokers = state
        .kafka_brokers()
        .context("the stack has no Kafka after `up`")?;
    let kafka = KafkaConfig::new(&brokers);
    let before = topic_sizes(ctx, &kafka)?;

    println!("\ndemo: starting the transformer (raw → enriched, with the seed's indicator rules)…");
    let mut transformer = service(state, "transformer", &["run"])?;

    println!("\ndemo: the producer writes 30 minutes of history (20 events/s) into `raw`…");
    producer(state, &["--backfill", "30m", "--rate", "20"])?;

    let scenario = ctx.dirs.data.join("demo-live.yaml");
    std::fs::write(&scenario, LIVE_SCENARIO)
        .with_context(|| format!("writing {}", scenario.display()))?;
    println!(
        "\ndemo: one minute of live traffic (50 events/s) with a 20-second anomaly on `country`…"
    );
    producer(state, &["--scenario", &scenario.display().to_string()])?;

    println!("\ndemo: waiting for the transformer to catch up (consumer lag 0)…");
    let caught_up = wait_until(Duration::from_secs(120), || {
        let lag = ctx
            .rt
            .block_on(group_lag(
                &kafka,
                TRANSFORMER_GROUP,
                &kafka.topics.raw,
                Duration::from_secs(10),
            ))
            .context("reading the transformer's lag")?;
        Ok(lag == 0)
    })?;
    stop(&mut transformer, "transformer")?;
    if !caught_up {
        bail!("the transformer did not catch up within 2 minutes; its log is above");
    }

    let after = topic_sizes(ctx, &kafka)?;
    println!("\ndemo: what the topics gained:");
    for ((topic, was), (_, is)) in before.iter().zip(&after) {
        println!("  {topic:<12} +{} records ({is} in all)", is - was);
    }
    report(ctx, state)
}

fn topic_sizes(ctx: &Ctx, kafka: &KafkaConfig) -> Result<Vec<(String, i64)>> {
    kafka
        .topics
        .all()
        .iter()
        .map(|topic| Ok(((*topic).to_owned(), topic_size_of(ctx, kafka, topic)?)))
        .collect()
}

fn topic_size_of(ctx: &Ctx, kafka: &KafkaConfig, topic: &str) -> Result<i64> {
    ctx.rt
        .block_on(topic_size(kafka, topic, Duration::from_secs(10)))
        .with_context(|| format!("reading the size of `{topic}`"))
}

/// Polls `done` until it holds or `timeout` passes; says which.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if done()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(false)
}

/// One of the workspace's binaries, built by cargo and pointed at the stack.
fn binary(state: &State, package: &str, args: &[&str]) -> Result<Command> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask sits in the workspace")?;
    let name = format!("logwarden-{package}");
    let built = Command::new(&cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--package", package, "--bin", &name])
        .status()
        .with_context(|| format!("building {name}"))?;
    if !built.success() {
        bail!("building {name} failed ({built})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    let mut command = Command::new(target.join("debug").join(&name));
    command.args(args);
    if let Some(brokers) = state.kafka_brokers() {
        command.env("LOGWARDEN_KAFKA__BROKERS", brokers);
    }
    if let Some(url) = state.opensearch_url() {
        command.env("LOGWARDEN_OPENSEARCH__URL", url);
    }
    Ok(command)
}

/// Runs `logwarden-producer` to its end.
fn producer(state: &State, args: &[&str]) -> Result<()> {
    let status = binary(state, "producer", args)?
        .status()
        .context("running the producer")?;
    if !status.success() {
        bail!("the producer failed ({status}); its log is above");
    }
    Ok(())
}

/// Starts a long-running service in the background; its log goes to this terminal.
fn service(state: &State, package: &str, args: &[&str]) -> Result<Child> {
    binary(state, package, args)?
        .spawn()
        .with_context(|| format!("starting the {package}"))
}

/// Stops a service the way Kubernetes does: SIGTERM; it drains, commits and exits.
fn stop(child: &mut Child, name: &str) -> Result<()> {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .with_context(|| format!("signalling the {name}"))?;
    let status = child
        .wait()
        .with_context(|| format!("waiting for the {name}"))?;
    println!("demo: {name} stopped ({status})");
    Ok(())
}

/// What runs where, how to point a service at it, how to stop it.
fn report(ctx: &Ctx, state: &State) -> Result<()> {
    println!();
    stack::status(ctx)?;
    println!();
    println!("To run a service against this stack:");
    if let Some(brokers) = state.kafka_brokers() {
        println!("  export LOGWARDEN_KAFKA__BROKERS={brokers}");
    }
    if let Some(url) = state.opensearch_url() {
        println!("  export LOGWARDEN_OPENSEARCH__URL={url}");
    }
    println!("Stop everything: cargo xtask stack down");
    Ok(())
}
