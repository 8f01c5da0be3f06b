//! `kill -9` of the detector mid-stream, three times at random points, on the real stack, with
//! the sink indexing the same stream: after each kill the detector restarts from its one
//! checkpoint document, and between the first kill and its restart the topic gains a partition
//! (absent from the restored positions, so it is read from a time, looked up as an offset).
//! In the end every interval's sum equals exactly OpenSearch's date histogram over the same
//! interval, each interval has exactly one result, and no interval in the range is missing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use common::replica::{Replica, spec_file};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

const INTERVAL_MS: i64 = 1_000;

fn spec(name: &str) -> String {
    common::spec(name, "country-sum", "{field: UNK_country}", "1500ms", None)
}

/// Sends 10 records every 100 ms until `stop`, spread over the topic's partitions as
/// `partitions` says (a producer made after a partition was added knows it); returns how many.
async fn traffic(
    kafka: KafkaConfig,
    partitions: Arc<AtomicI32>,
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut known = 0;
    let mut producer: Option<FutureProducer> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut round = 0_usize;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let count = partitions.load(Ordering::SeqCst);
        if count != known {
            producer = Some(kafka.producer_config("crash").create().expect("producer"));
            known = count;
        }
        let producer = producer.as_ref().expect("a producer");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let payloads: Vec<Vec<u8>> = (0..10)
            .map(|i| {
                serde_json::to_vec(&json!({
                    "@timestamp": now,
                    "UNK_country": u8::from(rng.random_bool(0.3)),
                    "event_id": format!("crash-{round}-{i}"),
                }))
                .expect("json")
            })
            .collect();
        let deliveries: Vec<_> = payloads
            .iter()
            .zip(0_i32..)
            .map(|(payload, i)| {
                producer.send(
                    FutureRecord::<(), _>::to(&kafka.topics.enriched)
                        .partition(i % count)
                        .payload(payload),
                    Duration::from_secs(10),
                )
            })
            .collect();
        for delivery in deliveries {
            delivery.await.expect("delivered");
            sent.fetch_add(1, Ordering::SeqCst);
        }
        round += 1;
    }
}

async fn add_partition(kafka: &KafkaConfig) {
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = kafka
        .client_config("crash-admin")
        .create()
        .expect("admin client");
    let results = admin
        .create_partitions(
            &[NewPartitions::new(&kafka.topics.enriched, 2)],
            &AdminOptions::new(),
        )
        .await
        .expect("create partitions");
    for result in results {
        result.expect("the topic has two partitions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_and_a_new_partition_keep_every_sum_exact() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("crash", 1).await;
    let name = testkit::unique_name("crash");
    let http = reqwest::Client::new();
    let events = format!("{name}events");
    let spec = spec_file(&name, &spec(&name));
    // The sink is a consumer group: it learns of the new partition from its metadata, refreshed
    // every second here instead of every five minutes.
    let mut sink_kafka = kafka.clone();
    sink_kafka
        .properties
        .insert("topic.metadata.refresh.interval.ms".into(), "1000".into());
    let (sink_stop, sink) = common::run_sink(&sink_kafka, &url, &events).await;

    let mut detector = Replica::start(&kafka, &url, &spec, "crash-0", 3_000);
    detector
        .process
        .wait_for("Detecting.", Duration::from_secs(90))
        .await;
    let partitions = Arc::new(AtomicI32::new(1));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producing = tokio::spawn(traffic(
        kafka.clone(),
        Arc::clone(&partitions),
        Arc::clone(&sent),
        Arc::clone(&stop),
    ));

    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
    for kill in 0..3 {
        let after = Duration::from_millis(rng.random_range(2_000..5_000));
        tokio::time::sleep(after).await;
        detector.process.signal("KILL");
        eprintln!("kill -9 number {} after {after:?}", kill + 1);
        if kill == 0 {
            add_partition(&kafka).await;
            partitions.store(2, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        detector = Replica::start(&kafka, &url, &spec, "crash-0", 3_000);
        detector
            .process
            .wait_for("Detecting.", Duration::from_secs(60))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    producing.await.expect("the traffic ends");
    let sent = sent.load(Ordering::SeqCst);
    common::wait_indexed(&http, &url, &events, sent).await;
    // The last intervals close by the clock once the stream is idle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, output) = detector.process.terminate();
    sink_stop.cancel();
    let _ = sink.await;

    let (results, expected) = common::results_and_sums(
        &http,
        &url,
        &name,
        "country-sum",
        Some("UNK_country"),
        INTERVAL_MS,
    )
    .await;
    let _ = std::fs::remove_file(&spec);

    assert_eq!(code, Some(0), "{output}");
    common::assert_sums(&results, &expected, INTERVAL_MS, 10);
    let total: f64 = expected.values().sum();
    assert!(total > 0.0, "the stream had UNK_country events");
}
