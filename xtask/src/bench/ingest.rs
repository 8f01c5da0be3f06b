//! `cargo xtask bench ingest`: logwarden-ingest's Splunk HEC and syslog (TCP) receivers into the
//! local broker, against the raw Kafka producer as the ceiling, in one run.
//!
//! The ceiling is rdkafka's producer in this process, with the producer preset the receivers
//! use (idempotent, `acks=all`, lz4, `linger.ms` 5), writing the same events in batches of
//! 1,000 and awaiting each batch's acknowledgements, as a receiver does. Then a release build of
//! logwarden-ingest receives the same number of events over HEC (`--connections` HTTP clients,
//! `--batch` concatenated events per request, each request answered only once Kafka has its
//! events) and over syslog TCP (newline framing, RFC 5424, done when the private `raw` topic has
//! them all). Each phase reads the CPU time (user + system, `/proc`) of the process doing the
//! work: events ÷ CPU-seconds is what one core sustains, the figure that carries over from this
//! shared two-core box (the clients, the broker and other builds take turns on the same cores,
//! so wall-clock rates here are lower bounds). The anchor is Data Prepper's published 19.7k
//! logs/s on 4 vCPU, ~4.9k per vCPU. `docs/capacity.md` has the figures.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::topic_size;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::Ctx;
use crate::bench::private::Private;
use crate::bench::services::{Service, agent, build_release, cpu_time, load_average};

/// Data Prepper's published throughput: 19.7k logs/s on 4 vCPU.
const ANCHOR_PER_VCPU: f64 = 19_700.0 / 4.0;
/// The token the run's ingest accepts.
const TOKEN: &str = "bench-token";

/// `cargo xtask bench ingest` options.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Events per phase (ceiling, HEC, syslog).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// HEC events per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent HEC clients and syslog connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Partitions of the private topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

/// What one phase did.
struct Phase {
    name: &'static str,
    events: usize,
    bytes: usize,
    wall: Duration,
    cpu: Duration,
}

impl Phase {
    fn per_cpu_second(&self) -> f64 {
        self.events as f64 / self.cpu.as_secs_f64().max(0.01)
    }
}

/// One WAF-like event (~400 bytes of JSON), the payload of every phase.
fn event(i: usize) -> String {
    serde_json::json!({
        "timestamp": 1_764_900_000_000_u64 + i as u64,
        "action": if i.is_multiple_of(50) { "BLOCK" } else { "ALLOW" },
        "terminatingRuleId": "Default_Action",
        "httpSourceName": "ALB",
        "httpRequest": {
            "clientIp": format!("203.0.113.{}", i % 250),
            "country": "US",
            "uri": "/api/v1/orders",
            "httpMethod": "POST",
            "requestId": format!("bench-{i:012}"),
            "headers": [{"name": "user-agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"}]
        }
    })
    .to_string()
}

/// Runs `cargo xtask bench ingest`.
pub fn run(ctx: &Ctx, args: &IngestArgs) -> Result<()> {
    if args.events == 0 || args.batch == 0 || args.connections == 0 || args.partitions < 1 {
        bail!("--events, --batch, --connections and --partitions must be at least 1");
    }
    println!("ingest: building logwarden-ingest (release)…");
    let target = build_release(&["ingest"])?;
    let private = Private::create(ctx, "ingest", args.partitions)?;
    let logs = std::env::temp_dir().join(private.prefix.trim_end_matches('-'));
    let load_before = load_average();
    let outcome = std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating {}", logs.display()))
        .and_then(|()| phases(ctx, args, &private, &target, &logs));
    let load_after = load_average();
    let removed = private.remove(ctx);
    let phases = outcome?;
    removed?;
    println!(
        "\ningest: {} events per phase, {} connections, HEC {} events per request, {} partitions; load average (1, 5, 15 min) {load_before} before, {load_after} after",
        args.events, args.connections, args.batch, args.partitions
    );
    println!(
        "{:<16} {:>8} {:>10} {:>8} {:>8} {:>14} {:>10} {:>10}",
        "phase", "wall s", "events/s", "MB/s", "CPU s", "events/CPU-s", "vs ceiling", "vs anchor"
    );
    let ceiling = phases[0].per_cpu_second();
    for phase in &phases {
        println!(
            "{:<16} {:>8.2} {:>10.0} {:>8.1} {:>8.2} {:>14.0} {:>10.2} {:>10.2}",
            phase.name,
            phase.wall.as_secs_f64(),
            phase.events as f64 / phase.wall.as_secs_f64(),
            phase.bytes as f64 / phase.wall.as_secs_f64() / 1e6,
            phase.cpu.as_secs_f64(),
            phase.per_cpu_second(),
            phase.per_cpu_second() / ceiling,
            phase.per_cpu_second() / ANCHOR_PER_VCPU,
        );
    }
    println!(
        "(events/s and MB/s: wall clock, payload bytes sent; CPU: user + system time of the process doing the work (xtask's producer for the ceiling, logwarden-ingest for HEC and syslog); vs ceiling: events per CPU-second ÷ the raw producer's; vs anchor: ÷ Data Prepper's {ANCHOR_PER_VCPU:.0} logs/s per vCPU)"
    );
    println!("ingest: the service's log is in {}", logs.display());
    Ok(())
}

fn phases(
    ctx: &Ctx,
    args: &IngestArgs,
    private: &Private,
    target: &Path,
    logs: &Path,
) -> Result<Vec<Phase>> {
    let events: Vec<String> = (0..args.events).map(event).collect();
    let kafka = &private.kafka;
    let size = |topic: &str| -> Result<usize> {
        let size = ctx
            .rt
            .block_on(topic_size(kafka, topic, Duration::from_secs(10)))
            .with_context(|| format!("reading the size of `{topic}`"))?;
        Ok(usize::try_from(size).unwrap_or(0))
    };

    println!("ingest: the raw producer writes {} events…", args.events);
    let ceiling = ceiling(ctx, private, &events)?;

    let port = |what: &str| -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .with_context(|| format!("a free port for {what}"))?
            .port())
    };
    let http = format!("127.0.0.1:{}", port("HEC")?);
    let syslog = format!("127.0.0.1:{}", port("syslog")?);
    let mut env = private.env("ingest");
    env.extend(
        [
            ("LOGWARDEN_INGEST__HTTP__LISTEN", http.as_str()),
            ("LOGWARDEN_INGEST__SYSLOG__TCP", syslog.as_str()),
            ("LOGWARDEN_INGEST__TOKENS__BENCH__TOKEN", TOKEN),
            ("LOGWARDEN_TELEMETRY__LOG_LEVEL", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut service = Service::start(target, "ingest", &[], &env, logs)?;
    service.wait_started(Duration::from_secs(60))?;

    println!("ingest: HEC receives {} events…", args.events);
    let hec = hec(&service, &http, args, &events)?;
    let written = size(&kafka.topics.raw)?;
    if written != args.events {
        bail!(
            "raw has {written} records after HEC, not {}; {}",
            args.events,
            service.log_tail()
        );
    }

    println!("ingest: syslog (TCP) receives {} events…", args.events);
    let syslog = syslog_tcp(&mut service, &syslog, args, &events, || {
        Ok(size(&kafka.topics.raw)? >= 2 * args.events)
    })?;
    service.stop()?;
    Ok(vec![ceiling, hec, syslog])
}

/// The raw producer: every event to the private `enriched` topic (unused by this run), in
/// batches of 1,000 whose acknowledgements are awaited, as the receivers write.
fn ceiling(ctx: &Ctx, private: &Private, events: &[String]) -> Result<Phase> {
    let producer: FutureProducer = private
        .kafka
        .producer_config("logwarden-bench-ceiling")
        .create()
        .context("creating the producer")?;
    let topic = &private.kafka.topics.enriched;
    let me = std::process::id();
    let cpu_before = cpu_time(me).context("reading xtask's CPU time")?;
    let started = Instant::now();
    ctx.rt.block_on(async {
        for batch in events.chunks(1_000) {
            let mut deliveries = Vec::with_capacity(batch.len());
            for payload in batch {
                let record = FutureRecord::<[u8], [u8]>::to(topic).payload(payload.as_bytes());
                deliveries.push(
                    producer
                        .send_result(record)
                        .map_err(|(err, _)| anyhow::anyhow!("queueing a record: {err}"))?,
                );
            }
            for delivery in deliveries {
                delivery
                    .await
                    .context("a delivery was canceled")?
                    .map_err(|(err, _)| anyhow::anyhow!("a record was not delivered: {err}"))?;
            }
        }
        anyhow::Ok(())
    })?;
    let wall = started.elapsed();
    let cpu = cpu_time(me)
        .context("reading xtask's CPU time")?
        .saturating_sub(cpu_before);
    Ok(Phase {
        name: "kafka producer",
        events: events.len(),
        bytes: events.iter().map(String::len).sum(),
        wall,
        cpu,
    })
}

/// HEC: `connections` clients, each POSTing its share of the events `batch` per request to
/// `/services/collector/event`; a request is answered once Kafka has its events.
fn hec(service: &Service, listen: &str, args: &IngestArgs, events: &[String]) -> Result<Phase> {
    let bodies: Vec<String> = events
        .chunks(args.batch)
        .map(|chunk| {
            chunk
                .iter()
                .map(|e| format!(r#"{{"sourcetype":"aws:waf","host":"alb-1","event":{e}}}"#))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let bytes = bodies.iter().map(String::len).sum();
    let url = format!("http://{listen}/services/collector/event");
    let cpu_before = service.cpu_time()?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|worker| {
                let bodies = &bodies;
                let url = &url;
                scope.spawn(move || -> Result<()> {
                    let agent = agent(Duration::from_secs(60));
                    for body in bodies.iter().skip(worker).step_by(args.connections) {
                        let status = agent
                            .post(url)
                            .header("Authorization", format!("Splunk {TOKEN}"))
                            .send(body.as_str())
                            .context("sending a HEC request")?
                            .status()
                            .as_u16();
                        if status != 200 {
                            bail!("HEC answered {status}");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a client panicked"))?)
    })?;
    let wall = started.elapsed();
    let cpu = service.cpu_time()?.saturating_sub(cpu_before);
    Ok(Phase {
        name: "ingest HEC",
        events: events.len(),
        bytes,
        wall,
        cpu,
    })
}

/// Syslog over TCP: `connections` connections, each writing its share of the events as RFC 5424
/// lines; done when `arrived` says Kafka has them all.
fn syslog_tcp(
    service: &mut Service,
    listen: &str,
    args: &IngestArgs,
    events: &[String],
    arrived: impl Fn() -> Result<bool>,
) -> Result<Phase> {
    let lines: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "<134>1 2026-12-05T09:00:00.{:03}Z alb-1 waf {} bench - {e}\n",
                i % 1000,
                i % 32_768
            )
        })
        .collect();
    let bytes = lines.iter().map(String::len).sum();
    let cpu_before = service.cpu_time()?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|worker| {
                let lines = &lines;
                scope.spawn(move || -> Result<()> {
                    let stream = TcpStream::connect(listen).context("connecting to syslog")?;
                    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stream);
                    for line in lines.iter().skip(worker).step_by(args.connections) {
                        out.write_all(line.as_bytes()).context("writing syslog")?;
                    }
                    out.flush().context("writing syslog")
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a sender panicked"))?)
    })?;
    while !arrived()? {
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "syslog events not all in Kafka within 10 minutes; {}",
                service.log_tail()
            );
        }
        if service.exited()?.is_some() {
            bail!("logwarden-ingest exited; {}", service.log_tail());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = started.elapsed();
    let cpu = service.cpu_time()?.saturating_sub(cpu_before);
    Ok(Phase {
        name: "ingest syslog",
        events: events.len(),
        bytes,
        wall,
        cpu,
    })
}
