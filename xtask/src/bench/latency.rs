//! `cargo xtask bench latency`: how long an event takes from the producer to a search result.
//!
//! Release builds of the transformer and the sink run as processes against the local stack, on
//! private topics and a private events index (removed at the end). The run produces seed-shaped
//! records at a fixed rate with the event time set to the send time, and records for each one
//! when the broker acknowledged it, when its enriched record reached `enriched` and when a search
//! first returned it (`latency::observe`). It prints nearest-rank percentiles per stage
//! (`latency::stats`), the sink's own bulk figures (`bench::scrape`) and what the sink's linger
//! and the refresh interval alone account for, with the load average, since the box is shared.
//! A measurement, not a test: nothing here asserts a time.

mod observe;
mod stats;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use pipeline::kafka::KafkaConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::bench::latency::observe::SearchTarget;
use crate::bench::latency::stats::Timeline;
use crate::bench::private::Private;
use crate::bench::scrape;
use crate::bench::services::{Service, build_release, load_average};

/// The sink's default linger (`sink.batch_ms`), when `--batch-ms` is not given.
const SINK_DEFAULT_BATCH_MS: u64 = 1_000;
/// The events template's refresh interval, when `--refresh-interval` is not given.
const TEMPLATE_REFRESH: &str = "1s";

/// `cargo xtask bench latency` options.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Events per second the producer sends.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u32,
    /// Seconds of measured traffic.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Seconds of traffic before the measured part, left out of the figures (index creation,
    /// connections, the first group assignments).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Partitions of the private topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// The sink's linger, `sink.batch_ms` [default: the sink's, 1000].
    #[arg(long)]
    pub batch_ms: Option<u64>,
    /// The events index's `refresh_interval`, e.g. `200ms` [default: the template's, 1s].
    #[arg(long)]
    pub refresh_interval: Option<String>,
    /// Milliseconds between two searches of the observer (its resolution).
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
}

/// Runs `cargo xtask bench latency`.
pub fn run(ctx: &Ctx, args: &LatencyArgs) -> Result<()> {
    if args.rate == 0 || args.seconds == 0 || args.partitions < 1 || args.poll_ms == 0 {
        bail!("--rate, --seconds, --partitions and --poll-ms must be at least 1");
    }
    println!("latency: building the transformer and the sink (release)…");
    let target = build_release(&["transformer", "sink"])?;
    let private = Private::create(ctx, "latency", args.partitions)?;
    let logs = std::env::temp_dir().join(private.prefix.trim_end_matches('-'));
    let outcome = std::fs::create_dir_all(&logs)
        .with_context(|| format!("creating {}", logs.display()))
        .and_then(|()| measure(ctx, args, &private, &target, &logs));
    let removed = private.remove(ctx);
    let report = outcome?;
    removed?;
    report.print(args);
    println!("latency: the services' logs are in {}", logs.display());
    Ok(())
}

/// What one run measured.
struct Report {
    records: Vec<Timeline>,
    warmup: Duration,
    load_before: String,
    load_after: String,
    sink_metrics: String,
}

/// Starts the services, runs the traffic and the observers, stops the services.
fn measure(
    ctx: &Ctx,
    args: &LatencyArgs,
    private: &Private,
    target: &Path,
    logs: &Path,
) -> Result<Report> {
    let mut sink_env = private.env("sink");
    if let Some(batch_ms) = args.batch_ms {
        sink_env.push(("LOGWARDEN_SINK__BATCH_MS".into(), batch_ms.to_string()));
    }
    let transformer = Service::start(
        target,
        "transformer",
        &["run"],
        &private.env("transformer"),
        logs,
    )?;
    let sink = Service::start(target, "sink", &[], &sink_env, logs)?;
    let mut services = [transformer, sink];
    for service in &mut services {
        service.wait_started(Duration::from_secs(90))?;
    }
    println!(
        "latency: transformer and sink started; {} events/s for {} s (+{} s warm-up)…",
        args.rate, args.seconds, args.warmup
    );
    let load_before = load_average();
    let search = SearchTarget {
        url: private.url.clone(),
        alias: private.alias.clone(),
        refresh_interval: args.refresh_interval.clone(),
        poll: Duration::from_millis(args.poll_ms),
    };
    let records = ctx.rt.block_on(traffic(args, &private.kafka, search))?;
    let load_after = load_average();
    let [_, sink] = &mut services;
    let sink_metrics = sink.metrics().unwrap_or_default();
    for service in &mut services {
        service.stop()?;
    }
    Ok(Report {
        records,
        warmup: Duration::from_secs(args.warmup),
        load_before,
        load_after,
        sink_metrics,
    })
}

/// Produces at `args.rate` with the observers running; returns each record's timeline.
async fn traffic(
    args: &LatencyArgs,
    kafka: &KafkaConfig,
    search: SearchTarget,
) -> Result<Vec<Timeline>> {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicBool::new(false));
    let enriched_watch = {
        let kafka = kafka.clone();
        let stop = Arc::clone(&stop);
        let partitions = args.partitions;
        tokio::spawn(async move {
            observe::enriched(&kafka, &kafka.topics.enriched, partitions, start, stop).await
        })
    };
    let (acked_tx, acked_rx) = std::sync::mpsc::channel();
    let search_watch = {
        let produced = Arc::clone(&produced);
        std::thread::spawn(move || observe::searchable(&search, start, &acked_rx, &produced))
    };

    let producer: FutureProducer = kafka
        .producer_config("logwarden-latency")
        .create()
        .context("creating the producer")?;
    let total = usize::try_from(u64::from(args.rate) * (args.seconds + args.warmup))
        .context("too many records")?;
    let mut sent = Vec::with_capacity(total);
    let mut deliveries = JoinSet::new();
    let raw = &kafka.topics.raw;
    while sent.len() < total {
        let due = (start.elapsed().as_secs_f64() * f64::from(args.rate)) as usize;
        while sent.len() < due.min(total) {
            let seq = sent.len();
            let event_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_millis() as u64;
            let payload = record(seq, event_ms);
            let at = start.elapsed();
            let delivery = producer
                .send_result(FutureRecord::<(), _>::to(raw).payload(&payload))
                .map_err(|(err, _)| err)
                .context("queueing a record")?;
            sent.push(at);
            let acked = acked_tx.clone();
            let raw = raw.clone();
            deliveries.spawn(async move {
                let delivered = match delivery.await {
                    Ok(Ok(delivery)) => delivery,
                    Ok(Err((err, _))) => bail!("record {seq} was not delivered: {err}"),
                    Err(_) => bail!("record {seq}: the producer went away"),
                };
                let at = start.elapsed();
                let id = pipeline::wire::event_id(&raw, delivered.partition, delivered.offset);
                // The observer may have stopped listening after an error of its own.
                let _ = acked.send((event_ms, id.clone()));
                Ok((seq, id, at))
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut records: Vec<Timeline> = sent
        .iter()
        .map(|&sent| Timeline {
            sent,
            ..Timeline::default()
        })
        .collect();
    let mut ids: HashMap<String, usize> = HashMap::with_capacity(total);
    while let Some(joined) = deliveries.join_next().await {
        let (seq, id, at) = joined.context("a delivery task")??;
        records[seq].acked = Some(at);
        ids.insert(id, seq);
    }
    drop(acked_tx);
    produced.store(true, Ordering::Release);
    println!("latency: all records acknowledged; waiting for the last ones to become searchable…");
    let searchable = tokio::task::spawn_blocking(move || search_watch.join())
        .await
        .context("joining the search observer")?
        .map_err(|_| anyhow::anyhow!("the search observer panicked"))??;
    stop.store(true, Ordering::Release);
    let enriched = enriched_watch
        .await
        .context("joining the enriched observer")??;
    for (id, seq) in &ids {
        let record = &mut records[*seq];
        record.enriched = enriched.get(id).copied();
        record.searchable = searchable.get(id).copied();
    }
    Ok(records)
}

/// A seed-shaped WAF record (~400 bytes) whose event time is `event_ms`.
fn record(seq: usize, event_ms: u64) -> Vec<u8> {
    const ACTIONS: [&str; 5] = ["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"];
    const COUNTRIES: [&str; 7] = ["US", "UK", "IN", "XX", "YY", "ZZ", "WW"];
    format!(
        r#"{{"timestamp":{event_ms},"formatVersion":1,"action":"{}","httpSourceName":"ALB","httpSourceId":"alb","httpStatus":"200","httpRequest":{{"clientIp":"203.0.113.{}","country":"{}","headers":[{{"name":"Host","value":"www.example.com"}},{{"name":"User-Agent","value":"Mozilla/5.0 (X11; Linux x86_64)"}}],"uri":"/login","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"latency/{seq:016x}"}}}}"#,
        ACTIONS[seq % ACTIONS.len()],
        seq % 250,
        COUNTRIES[seq % COUNTRIES.len()],
    )
    .into_bytes()
}

impl Report {
    fn print(&self, args: &LatencyArgs) {
        let batch_ms = args.batch_ms.unwrap_or(SINK_DEFAULT_BATCH_MS);
        let refresh = args.refresh_interval.as_deref().unwrap_or(TEMPLATE_REFRESH);
        println!(
            "\nlatency: {} events/s, {} s measured after {} s warm-up, {} partitions; sink.batch_ms {batch_ms}, refresh_interval {refresh}, search poll every {} ms",
            args.rate, args.seconds, args.warmup, args.partitions, args.poll_ms
        );
        println!(
            "load average (1, 5, 15 min): {} before, {} after",
            self.load_before, self.load_after
        );
        let (measured, not_acked, not_enriched, not_searchable) =
            stats::missing(&self.records, self.warmup);
        println!(
            "records measured: {measured} (not acknowledged {not_acked}, not seen on enriched {not_enriched}, not searchable {not_searchable})"
        );
        println!(
            "\n{:<40} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "span", "records", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for span in stats::spans(&self.records, self.warmup) {
            println!(
                "{:<40} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                span.name,
                span.count,
                ms(span.p50),
                ms(span.p90),
                ms(span.p99),
                ms(span.max)
            );
        }
        let metric = |name: &str| scrape::sample(&self.sink_metrics, name);
        if let (Some(sum), Some(count), Some(docs)) = (
            metric("logwarden_sink_bulk_seconds_sum"),
            metric("logwarden_sink_bulk_seconds_count"),
            metric("logwarden_sink_batch_records_sum"),
        ) && count > 0.0
        {
            println!(
                "\nsink (its metrics, whole run): {count:.0} bulk requests, {:.0} documents each on average, {:.1} ms per bulk request on average",
                docs / count,
                sum / count * 1000.0
            );
        }
        let refresh_ms = parse_interval_ms(refresh);
        let records_per_batch = f64::from(args.rate) * batch_ms as f64 / 1000.0;
        println!(
            "what the settings alone account for: the sink's linger waits up to {batch_ms} ms ({:.0} ms on average when batches close on time, as {records_per_batch:.0} records per linger < 5,000 per batch here), the refresh up to {} (half on average); the rest is Kafka, the transformer, the sink's consumer and the bulk request",
            batch_ms as f64 / 2.0,
            refresh_ms.map_or_else(|| refresh.to_owned(), |ms| format!("{ms} ms")),
        );
    }
}

/// `1s`, `200ms` or `500` (ms) as milliseconds; `None` for other forms.
fn parse_interval_ms(interval: &str) -> Option<u64> {
    if let Some(ms) = interval.strip_suffix("ms") {
        ms.parse().ok()
    } else if let Some(s) = interval.strip_suffix('s') {
        s.parse::<u64>().ok().map(|s| s * 1000)
    } else {
        interval.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_intervals_in_milliseconds() {
        let cases = [
            ("1s", Some(1_000)),
            ("200ms", Some(200)),
            ("750", Some(750)),
            ("30s", Some(30_000)),
            ("1m", None),
            ("-1", None),
        ];
        for (interval, expected) in cases {
            assert_eq!(parse_interval_ms(interval), expected, "{interval}");
        }
    }

    #[test]
    fn records_carry_their_event_time_and_sequence() {
        let record: serde_json::Value =
            serde_json::from_slice(&record(42, 1_765_000_000_123)).unwrap();
        assert_eq!(record["timestamp"], 1_765_000_000_123_u64);
        assert_eq!(
            record["httpRequest"]["requestId"],
            "latency/000000000000002a"
        );
        assert_eq!(record["action"], "Challenge");
    }
}
