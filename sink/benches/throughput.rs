//! The sink's throughput against a plain `_bulk` loader, into the local OpenSearch, in one run.
//!
//! `cargo bench -p sink --bench throughput` (needs `cargo xtask stack up`). It makes N enriched
//! documents (default 100,000; `BENCH_RECORDS` to change) from the producer's generator and the
//! default rules, writes them to a private `enriched` topic, then, alternating for `BENCH_ROUNDS`
//! rounds (default 4, each side going first in every other round), loads them into a fresh events
//! index:
//! - with a plain loader: the documents from memory, bulk requests of the sink's batch size
//!   (5,000) with as many in flight as the sink allows (2), the same template, no Kafka;
//! - with the sink service, in-process, from the topic.
//!
//! The plain loader is timed from its start (template included), the sink from its first consumed
//! record (its start-up, joining the consumer group, is printed apart), both until OpenSearch
//! acknowledged every document. It prints each rate and the ratio of the medians (sink / plain).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use opensearch::BulkParts;
use pipeline::search::EventsIndex;
use pipeline::testkit;
use sink::bulk::{self, Preparer};
use sink::settings::SinkConfig;
use tokio::task::JoinSet;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Loads `payloads` with plain bulk requests of `batch` documents, `parallel` in flight.
async fn plain(
    url: &str,
    index: &str,
    payloads: &[Vec<u8>],
    batch: usize,
    parallel: usize,
) -> Duration {
    let started = Instant::now();
    let config = pipeline::config::OpenSearchConfig {
        url: url.to_owned(),
        ..Default::default()
    };
    let client = pipeline::search::client(&config, Duration::from_secs(60)).expect("client");
    let events = EventsIndex::new(index, "bench").expect("index name");
    events.ensure_template(&client).await.expect("template");
    let mut preparer = Preparer::new(events);
    let mut requests = JoinSet::new();
    for chunk in payloads.chunks(batch) {
        let mut body = Vec::new();
        for payload in chunk {
            let document = preparer.prepare(payload).expect("an enriched record");
            bulk::write_operation(&document, &mut body);
        }
        while requests.len() >= parallel {
            requests
                .join_next()
                .await
                .expect("a request")
                .expect("joined");
        }
        let client = client.clone();
        requests.spawn(async move {
            let response = client
                .bulk(BulkParts::None)
                .filter_path(bulk::FILTER_PATH)
                .body(vec![bytes::Bytes::from(body)])
                .send()
                .await
                .expect("bulk request");
            let answer: serde_json::Value = response.json().await.expect("bulk answer");
            assert_eq!(answer["errors"], false, "plain loader: {answer}");
        });
    }
    while let Some(joined) = requests.join_next().await {
        joined.expect("joined");
    }
    started.elapsed()
}

/// Runs the sink until it has indexed `n` documents; the time runs from its first consumed
/// record (joining the consumer group is start-up, not throughput), and the start-up is
/// returned too.
async fn service(
    kafka: &pipeline::kafka::KafkaConfig,
    url: &str,
    index: &str,
    n: usize,
) -> (Duration, Duration) {
    let started = Instant::now();
    let mut settings = common::sink_settings(kafka, url, index);
    let defaults = SinkConfig::default();
    settings.batch.records = defaults.batch_records;
    settings.batch.time = Duration::from_millis(defaults.batch_ms);
    settings.max_requests = defaults.max_requests;
    let running = common::start_sink(settings).await;
    let value = |name: &str, labels: &str| common::metric(&running.metrics.render(), name, labels);
    while value("logwarden_sink_records_in_total", "") < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sink never consumed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = Instant::now();
    loop {
        let indexed = value("logwarden_sink_items_total", "outcome=\"indexed\"");
        if indexed >= n as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the sink is stuck at {indexed} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = first.elapsed();
    running.stop().await;
    (elapsed, first - started)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let n = env_usize("BENCH_RECORDS", if benching { 100_000 } else { 2_000 });
    let rounds = env_usize("BENCH_ROUNDS", if benching { 4 } else { 1 });
    let search = common::Search::require().await;
    let kafka = testkit::kafka_with_private_topics("bench-sink", 2).await;
    let payloads = common::enriched(&common::raw_records(n, 3), &kafka.topics.raw);
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    common::produce(&kafka, &kafka.topics.enriched, &payloads).await;
    let defaults = SinkConfig::default();
    println!(
        "{n} documents ({:.0} bytes each), batches of {}, {} requests in flight",
        bytes as f64 / n as f64,
        defaults.batch_records,
        defaults.max_requests
    );

    let mut rates_plain = Vec::new();
    let mut rates_sink = Vec::new();
    for round in 0..rounds {
        let plain_index = common::unique_index("bench-plain");
        let sink_index = common::unique_index("bench-sink");
        // Alternate which goes first: the second one shares the box with the first one's
        // segment merges.
        let load_plain = || {
            plain(
                &search.url,
                &plain_index,
                &payloads,
                defaults.batch_records,
                defaults.max_requests,
            )
        };
        let (p, (s, startup)) = if round % 2 == 0 {
            let p = load_plain().await;
            (p, service(&kafka, &search.url, &sink_index, n).await)
        } else {
            let s = service(&kafka, &search.url, &sink_index, n).await;
            (load_plain().await, s)
        };
        assert_eq!(search.count(&sink_index).await, n as u64, "sink count");
        assert_eq!(search.count(&plain_index).await, n as u64, "plain count");
        search.clean(&plain_index).await;
        search.clean(&sink_index).await;
        let (rp, rs) = (n as f64 / p.as_secs_f64(), n as f64 / s.as_secs_f64());
        println!(
            "round {round}: plain _bulk {rp:>8.0} docs/s ({p:.2?}), sink {rs:>8.0} docs/s ({s:.2?}, after {startup:.2?} of start-up)"
        );
        rates_plain.push(rp);
        rates_sink.push(rs);
    }
    let (mp, ms) = (median(rates_plain), median(rates_sink));
    println!("median: plain _bulk {mp:.0} docs/s, sink {ms:.0} docs/s");
    println!("ratio sink/plain: {:.2} (target ≥ 0.90)", ms / mp);
}
