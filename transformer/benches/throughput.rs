//! Service throughput against a plain passthrough, through the local broker, in one run.
//!
//! `cargo bench -p transformer --bench throughput` (needs `cargo xtask stack up`). It writes N
//! seed-shaped records (default 200,000; `BENCH_RECORDS` to change) to a private `raw` topic, then,
//! alternating for `BENCH_ROUNDS` rounds (default 3):
//! - the passthrough: a consumer group copying `raw` to another topic with the same client presets
//!   and the same pipelined, in-order-settling delivery window as the service, no rules;
//! - the transformer service, in-process, from `raw` to `enriched`.
//!
//! Both are timed the same way: from start (group join included) until the output topic holds N
//! records. It prints each rate and the ratio of the medians (service / passthrough).

use std::time::{Duration, Instant};

use pipeline::delivery::{Deliveries, Outgoing};
use pipeline::kafka::{KafkaConfig, TopicSpec, ensure_topics, topic_size};
use pipeline::testkit;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use transformer::settings::{RawConfig, Settings, TransformerConfig};

const ACTIONS: [&str; 5] = ["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"];
const COUNTRIES: [&str; 7] = ["US", "UK", "IN", "XX", "YY", "ZZ", "WW"];

fn record(i: usize) -> Vec<u8> {
    format!(
        r#"{{"timestamp":{},"formatVersion":1,"action":"{}","httpSourceName":"ALB","httpSourceId":"alb","httpStatus":"200","httpRequest":{{"clientIp":"203.0.113.{}","country":"{}","headers":[{{"name":"Host","value":"www.example.com"}},{{"name":"User-Agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"}},{{"name":"Accept","value":"text/html"}}],"uri":"/login","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"bench/p0/{i:016x}"}}}}"#,
        1_700_000_000_000_i64 + i as i64,
        ACTIONS[i % 5],
        i % 250,
        COUNTRIES[i % 7],
    )
    .into_bytes()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn wait_for(kafka: &KafkaConfig, topic: &str, n: usize, started: Instant) -> Duration {
    let target = i64::try_from(n).unwrap_or(i64::MAX);
    loop {
        let size = topic_size(kafka, topic, Duration::from_secs(5))
            .await
            .unwrap_or(0);
        if size >= target {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "`{topic}` stuck at {size}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Copies `raw` to `out` with the service's client presets and delivery window, no rules.
async fn passthrough(kafka: &KafkaConfig, out: &str, n: usize) -> Duration {
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let consumer: StreamConsumer = kafka
        .consumer_config("bench-passthrough", &testkit::unique_name("bench-pass"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&kafka.topics.raw]).expect("subscribe");
    let producer: FutureProducer = kafka
        .producer_config("bench-passthrough")
        .create()
        .expect("producer");
    let mut deliveries: Deliveries<(i32, i64)> = Deliveries::new(
        producer,
        TransformerConfig::default().max_in_flight,
        shutdown.clone(),
        |_, _| {},
    );
    let raw = kafka.topics.raw.clone();
    let store = |consumer: &StreamConsumer, (partition, offset): (i32, i64)| {
        let _ = consumer.store_offset(&raw, partition, offset);
    };
    let copier = async {
        loop {
            let in_flight = !deliveries.is_empty();
            let can_take = !deliveries.is_full();
            tokio::select! {
                biased;
                settled = deliveries.settle_next(), if in_flight => {
                    if let Some(tag) = settled.expect("delivered") { store(&consumer, tag); }
                }
                message = consumer.recv(), if can_take => {
                    let message = message.expect("consumed");
                    let tag = (message.partition(), message.offset());
                    let outgoing = Outgoing {
                        topic: out.to_owned(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        headers: None,
                        partition: None,
                        timestamp: None,
                    };
                    drop(message);
                    for done in deliveries.send(outgoing, tag).await.expect("sent") { store(&consumer, done); }
                }
            }
        }
    };
    tokio::select! {
        elapsed = wait_for(kafka, out, n, started) => elapsed,
        () = copier => unreachable!("the copier loops until dropped"),
    }
}

/// Runs the transformer service from `raw` to `enriched` until it holds `n` records.
async fn service(kafka: &KafkaConfig, n: usize) -> Duration {
    let started = Instant::now();
    let raw = RawConfig {
        kafka: kafka.clone(),
        transformer: TransformerConfig {
            group_id: testkit::unique_name("bench-service"),
            ..TransformerConfig::default()
        },
        ..RawConfig::default()
    };
    let settings = Settings::from_raw(raw, Some("bench-0".into())).expect("settings");
    let (svc, shutdown) = testkit::service("transformer").await;
    let task = tokio::spawn(async move { transformer::service::run(settings, &svc).await });
    let elapsed = wait_for(kafka, &kafka.topics.enriched, n, started).await;
    shutdown.cancel();
    let _ = task.await;
    elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let n = env_usize("BENCH_RECORDS", if benching { 200_000 } else { 2_000 });
    let rounds = env_usize("BENCH_ROUNDS", if benching { 3 } else { 1 });
    let base = testkit::require_kafka().await;
    let prefix = testkit::unique_name("bench");
    let mut rates_pass = Vec::new();
    let mut rates_service = Vec::new();
    for round in 0..rounds {
        // Fresh topics each round, so each side writes into an empty one.
        let mut kafka = base.clone();
        kafka.topics = pipeline::kafka::TopicNames::prefixed(&format!("{prefix}{round}-"));
        let out = format!("{prefix}{round}-passthrough");
        let mut specs = kafka.topics.specs(4, 1);
        specs.push(TopicSpec {
            name: out.clone(),
            partitions: 4,
            replication_factor: 1,
        });
        ensure_topics(&kafka, &specs).await.expect("topics");
        let producer: FutureProducer = kafka
            .producer_config("bench-load")
            .create()
            .expect("producer");
        let mut queued = Vec::with_capacity(n);
        for i in 0..n {
            let payload = record(i);
            let key = i.to_string();
            loop {
                match producer.send_result(
                    FutureRecord::to(&kafka.topics.raw)
                        .key(&key)
                        .payload(&payload),
                ) {
                    Ok(delivery) => break queued.push(delivery),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
        for delivery in queued {
            delivery.await.expect("not cancelled").expect("loaded");
        }

        let pass = passthrough(&kafka, &out, n).await;
        let serv = service(&kafka, n).await;
        let (rp, rs) = (n as f64 / pass.as_secs_f64(), n as f64 / serv.as_secs_f64());
        println!(
            "round {round}: passthrough {rp:>9.0} records/s ({pass:.2?}), service {rs:>9.0} records/s ({serv:.2?})"
        );
        rates_pass.push(rp);
        rates_service.push(rs);
    }
    let (mp, ms) = (median(rates_pass), median(rates_service));
    println!("median: passthrough {mp:.0} records/s, service {ms:.0} records/s");
    println!("ratio service/passthrough: {:.2} (target ≥ 0.80)", ms / mp);
}
