//! `cargo xtask bench cpu`: records per CPU-second of each stage, for the capacity model.
//! (The detector's part, which needs live traffic, is `bench/detector`.)
//!
//! Throughput on this shared two-core box says little about a pod with its own cores: the
//! broker, OpenSearch and other builds take turns on the same CPUs. What carries over is the
//! work per record, so each stage runs alone over a backlog of `--records` records (release
//! builds, private topics and index) and the run reads the process's own CPU time (user +
//! system, from `/proc`): records ÷ CPU-seconds is what one core sustains. The producer writes
//! the backlog (`--backfill`, as fast as the broker takes it), then the transformer enriches
//! it, then the sink loads it; each is started only when the previous one is done. The stack's
//! broker and OpenSearch (pids from the stack's state file) are read the same way over each
//! stage: their CPU per record is what sizes the clusters, with the caveat that whatever else
//! uses the shared stack at the time (tests of other branches) is counted too.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::topic_size;
use serde_json::Value;

use crate::Ctx;
use crate::bench::detector;
use crate::bench::private::Private;
use crate::bench::services::{Service, agent, build_release, cpu_time, load_average};
use crate::process::human_bytes;
use crate::stack::State;

/// `cargo xtask bench cpu` options.
#[derive(Debug, clap::Args)]
pub struct CpuArgs {
    /// Records through each stage.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Partitions of the private topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Records of live traffic into the detector (0: leave the detector out).
    #[arg(long, default_value_t = 200_000)]
    pub detector_records: u64,
    /// Their rate, events/s.
    #[arg(long, default_value_t = 20_000)]
    pub detector_rate: u64,
    /// Split reading: a reader process projects `enriched` and the detector reads `projected`;
    /// each one's CPU is reported.
    #[arg(long)]
    pub projected: bool,
}

/// What one stage did.
struct Stage {
    name: &'static str,
    wall: Duration,
    cpu: Duration,
    /// Peak resident memory, when readable.
    memory: Option<u64>,
    /// CPU the broker and OpenSearch used meanwhile, when their pids are known.
    broker: Option<Duration>,
    opensearch: Option<Duration>,
}

/// The stack's two servers, whose CPU each stage costs too.
#[derive(Clone, Copy)]
struct Servers {
    broker: Option<u32>,
    opensearch: Option<u32>,
}

impl Servers {
    fn read(&self) -> (Option<Duration>, Option<Duration>) {
        (
            self.broker.and_then(cpu_time),
            self.opensearch.and_then(cpu_time),
        )
    }
}

/// Runs `cargo xtask bench cpu`.
pub fn run(ctx: &Ctx, args: &CpuArgs) -> Result<()> {
    if args.records == 0 || args.partitions < 1 {
        bail!("--records and --partitions must be at least 1");
    }
    println!("cpu: building the producer, the transformer, the sink and the detector (release)…");
    let target = build_release(&["producer", "transformer", "sink", "detector"])?;
    let private = Private::create(ctx, "cpu", args.partitions)?;
    let logs = std::env::temp_dir().join(private.prefix.trim_end_matches('-'));
    let load_before = load_average();
    let outcome = std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating {}", logs.display()))
        .and_then(|()| {
            let stages = stages(ctx, args, &private, &target, &logs)?;
            let detector = (args.detector_records > 0)
                .then(|| {
                    println!(
                        "cpu: the detector reads {} records of live traffic ({}/s)…",
                        args.detector_records, args.detector_rate
                    );
                    detector::stage(
                        &target,
                        &private,
                        &logs,
                        args.detector_records,
                        args.detector_rate,
                        args.projected,
                    )
                })
                .transpose()?;
            Ok((stages, detector))
        });
    let load_after = load_average();
    let removed = private.remove(ctx);
    let (stages, detector) = outcome?;
    removed?;
    println!(
        "\ncpu: {} records per stage, {} partitions; load average (1, 5, 15 min) {load_before} before, {load_after} after",
        args.records, args.partitions
    );
    println!(
        "{:<12} {:>8} {:>8} {:>10} {:>14} {:>9} {:>12} {:>16}",
        "stage",
        "wall s",
        "CPU s",
        "records/s",
        "records/CPU-s",
        "peak RSS",
        "broker CPU s",
        "OpenSearch CPU s"
    );
    let records = args.records as f64;
    let seconds = |d: Option<Duration>| {
        d.map_or_else(|| "?".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
    };
    for stage in &stages {
        println!(
            "{:<12} {:>8.2} {:>8.2} {:>10.0} {:>14.0} {:>9} {:>12} {:>16}",
            stage.name,
            stage.wall.as_secs_f64(),
            stage.cpu.as_secs_f64(),
            records / stage.wall.as_secs_f64(),
            records / stage.cpu.as_secs_f64().max(0.01),
            stage.memory.map_or_else(|| "?".to_owned(), human_bytes),
            seconds(stage.broker),
            seconds(stage.opensearch),
        );
    }
    println!(
        "(records/s: wall clock, start-up and group join included; CPU: user + system time of the process until its output was complete; peak RSS: VmHWM, unreadable once a process has exited; broker and OpenSearch: their CPU over the same span, including anything else using the stack then)"
    );
    if let Some(d) = detector {
        let per_cpu = |cpu: Duration, idle: Duration| {
            let net = cpu.saturating_sub(idle).as_secs_f64().max(0.01);
            (
                d.records as f64 / net,
                d.records as f64 / cpu.as_secs_f64().max(0.01),
            )
        };
        let (net, gross) = per_cpu(d.cpu, d.idle);
        println!(
            "detector{}: {} records of live traffic, CPU {:.2} s over the span, {:.2} s of it idle cost: {net:.0} records per CPU-second ({gross:.0} without subtracting idle), peak RSS {}",
            if d.reader.is_some() {
                " (reading projected)"
            } else {
                ""
            },
            d.records,
            d.cpu.as_secs_f64(),
            d.idle.as_secs_f64(),
            d.memory.map_or_else(|| "?".to_owned(), human_bytes),
        );
        if let Some((cpu, idle)) = d.reader {
            let (net, gross) = per_cpu(cpu, idle);
            println!(
                "detector reader: CPU {:.2} s over the span, {:.2} s of it idle cost: {net:.0} records per CPU-second ({gross:.0} without subtracting idle)",
                cpu.as_secs_f64(),
                idle.as_secs_f64(),
            );
        }
    }
    println!("cpu: the services' logs are in {}", logs.display());
    Ok(())
}

/// Runs the three stages one after the other.
fn stages(
    ctx: &Ctx,
    args: &CpuArgs,
    private: &Private,
    target: &Path,
    logs: &Path,
) -> Result<Vec<Stage>> {
    let records = i64::try_from(args.records).context("too many records")?;
    let kafka = &private.kafka;
    let state = State::load(&ctx.dirs.state_file())?.unwrap_or_default();
    let servers = Servers {
        broker: state.kafka.as_ref().map(|k| k.pid),
        opensearch: state.opensearch.as_ref().map(|o| o.pid),
    };
    let size = |topic: &str| -> Result<i64> {
        ctx.rt
            .block_on(topic_size(kafka, topic, Duration::from_secs(10)))
            .with_context(|| format!("reading the size of `{topic}`"))
    };

    // 20 minutes of history at the rate that makes `records` of it.
    let rate = format!("{:.3}", args.records as f64 / 1200.0 + 1.0);
    let count = args.records.to_string();
    let producer_args = [
        "--backfill",
        "20m",
        "--rate",
        &rate,
        "--count",
        &count,
        "--seed",
        "1",
    ];
    println!("cpu: the producer writes {records} records…");
    let producer = run_until(
        servers,
        target,
        "producer",
        &producer_args,
        &private.env("producer"),
        logs,
        |service| service.exited().map(|exited| exited.is_some()),
    )?;
    let raw = size(&kafka.topics.raw)?;
    if raw < records {
        bail!(
            "the producer wrote {raw} of {records} records; its log is in {}",
            logs.display()
        );
    }

    println!("cpu: the transformer enriches them…");
    let transformer = run_until(
        servers,
        target,
        "transformer",
        &["run"],
        &private.env("transformer"),
        logs,
        |_| Ok(size(&kafka.topics.enriched)? >= records),
    )?;

    println!("cpu: the sink loads them…");
    let agent = agent(Duration::from_secs(10));
    let count_url = format!("{}/{}/_count", private.url, private.alias);
    let sink = run_until(
        servers,
        target,
        "sink",
        &[],
        &private.env("sink"),
        logs,
        |_| {
            let mut response = agent.get(&count_url).call().context("counting")?;
            if response.status().as_u16() != 200 {
                return Ok(false);
            }
            let answer: Value = response.body_mut().read_json().context("counting")?;
            Ok(answer["count"].as_i64().unwrap_or(0) >= records)
        },
    )?;
    Ok(vec![producer, transformer, sink])
}

/// Starts a stage and polls `done` every 100 ms (for 10 minutes at most); then reads its CPU
/// time and stops it.
fn run_until(
    servers: Servers,
    target: &Path,
    name: &'static str,
    args: &[&str],
    env: &[(String, String)],
    logs: &Path,
    mut done: impl FnMut(&mut Service) -> Result<bool>,
) -> Result<Stage> {
    let started = Instant::now();
    let (broker_before, opensearch_before) = servers.read();
    let mut service = Service::start(target, name, args, env, logs)?;
    while !done(&mut service)? {
        // Exiting is the producer's way of finishing; any other stage must not exit.
        if service.exited()?.is_some() && !done(&mut service)? {
            bail!("the {name} exited; {}", service.log_tail());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "the {name} did not finish within 10 minutes; {}",
                service.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = started.elapsed();
    let cpu = service.cpu_time()?;
    let memory = service.peak_memory();
    let (broker_after, opensearch_after) = servers.read();
    service.stop()?;
    let spent =
        |before: Option<Duration>, after: Option<Duration>| Some(after?.saturating_sub(before?));
    Ok(Stage {
        name,
        wall,
        cpu,
        memory,
        broker: spent(broker_before, broker_after),
        opensearch: spent(opensearch_before, opensearch_after),
    })
}
