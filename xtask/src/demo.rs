//! `cargo xtask demo`: logwarden running on this machine, end to end.
//!
//! Today the demo covers what exists: the stack comes up, the producer writes 30 minutes of
//! history (a backfill, as fast as the broker takes it) and then a minute of live traffic with a
//! country anomaly in the middle, and the demo reports what landed on the topics and the ground
//! truth label. Each later part of the pipeline is one more step in [`run`], in pipeline order
//! (transformer, sink, detector), until the demo ends in a delivered alert.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pipeline::kafka::{KafkaConfig, topic_size};

use crate::Ctx;
use crate::stack::{self, StackOptions, State};

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

    println!("\ndemo: the producer writes 30 minutes of history (20 events/s) into `raw`…");
    producer(state, &["--backfill", "30m", "--rate", "20"])?;

    let scenario = ctx.dirs.data.join("demo-live.yaml");
    std::fs::write(&scenario, LIVE_SCENARIO)
        .with_context(|| format!("writing {}", scenario.display()))?;
    println!(
        "\ndemo: one minute of live traffic (50 events/s) with a 20-second anomaly on `country`…"
    );
    producer(state, &["--scenario", &scenario.display().to_string()])?;

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
        .map(|topic| {
            let size = ctx
                .rt
                .block_on(topic_size(kafka, topic, Duration::from_secs(10)))
                .with_context(|| format!("reading the size of `{topic}`"))?;
            Ok(((*topic).to_owned(), size))
        })
        .collect()
}

/// Runs `logwarden-producer` (built by cargo, in this workspace) against the stack.
fn producer(state: &State, args: &[&str]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask sits in the workspace")?;
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "run",
            "--quiet",
            "--package",
            "producer",
            "--bin",
            "logwarden-producer",
            "--",
        ])
        .args(args);
    if let Some(brokers) = state.kafka_brokers() {
        command.env("LOGWARDEN_KAFKA__BROKERS", brokers);
    }
    let status = command.status().context("running the producer")?;
    if !status.success() {
        bail!("the producer failed ({status}); its log is above");
    }
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
    println!(
        "Read the ground truth:  kcat -b {} -t labels -C -e",
        state.kafka_brokers().unwrap_or_default()
    );
    println!("Stop everything:        cargo xtask stack down");
    Ok(())
}
