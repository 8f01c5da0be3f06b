//! Event time on the real stack: a record stamped far in the future (2090, and six hours ahead)
//! arrives in the middle of live traffic. Before the fix it made the detector abort (it built an
//! interval for every step up to 2090) or go blind until that date. Now: both records are counted
//! as future and kept out of the model, scoring goes on through the live traffic after them,
//! memory stays flat, and every scored interval's sum equals exactly what was sent in it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{gauge, receiver, run_replica};
use detector::settings::Settings;
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use pipeline::testkit::faults::resident_mib;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

const INTERVAL_MS: i64 = 1_000;

fn settings(kafka: &KafkaConfig, url: &str, name: &str, hook: &str) -> Settings {
    let spec = common::spec(
        name,
        "country-anomaly-detector",
        "{field: UNK_country}",
        "3s",
        Some(hook),
    );
    common::settings(kafka, url, &spec, "event-time-0")
}

fn record(time: chrono::DateTime<chrono::Utc>, id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "@timestamp": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "UNK_country": 1,
        "event_id": id,
    }))
    .expect("json")
}

/// Sends each `(partition, payload)` and waits for the broker's acknowledgements (queued
/// together, so a slow box does not hold records back one by one).
async fn send_to(producer: &FutureProducer, topic: &str, records: &[(i32, Vec<u8>)]) {
    let deliveries: Vec<_> = records
        .iter()
        .map(|(partition, payload)| {
            producer.send(
                FutureRecord::<(), _>::to(topic)
                    .partition(*partition)
                    .payload(payload),
                Duration::from_secs(10),
            )
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_records_are_counted_and_scoring_goes_on() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("future", 2).await;
    let name = testkit::unique_name("future");
    let producer: FutureProducer = kafka.producer_config("future").create().expect("producer");
    let (hook, _inbox) = receiver().await;
    let topic = kafka.topics.enriched.clone();

    let (stop, task, telemetry) = run_replica(settings(&kafka, &url, &name, &hook)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory_before = resident_mib();

    // Live traffic on both partitions, 10 records per 100 ms, for 8 s; the two poison records
    // go to partition 0 after 2 s. `sent` counts, per interval start, what was sent.
    let mut sent: BTreeMap<i64, u64> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for round in 0..80 {
        tick.tick().await;
        let now = chrono::Utc::now();
        let mut batch: Vec<(i32, Vec<u8>)> = (0..10)
            .map(|i| (i % 2, record(now, &format!("future-{round}-{i}"))))
            .collect();
        let start = now.timestamp_millis().div_euclid(INTERVAL_MS) * INTERVAL_MS;
        *sent.entry(start).or_default() += 10;
        if round == 20 {
            let far = chrono::DateTime::parse_from_rfc3339("2090-01-01T00:00:00Z")
                .expect("date")
                .to_utc();
            batch.push((0, record(far, "future-2090")));
            let ahead = now + chrono::Duration::hours(6);
            batch.push((0, record(ahead, "future-6h")));
        }
        send_to(&producer, &topic, &batch).await;
    }
    let last_sent = chrono::Utc::now().timestamp_millis();
    // The last interval closes 3 s after its end, once the idle clock moves the watermark.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let memory_after = resident_mib();
    let future = gauge(&telemetry, "logwarden_detector_future_events_total");
    let late = gauge(&telemetry, "logwarden_detector_late_events_total");
    let scored_until = gauge(&telemetry, "logwarden_detector_scored_until_seconds");
    stop.cancel();
    task.await.expect("the detector stops cleanly");

    let http = reqwest::Client::new();
    let results_index = format!("{name}results");
    let results = common::results(&http, &url, &results_index, json!({"match_all": {}})).await;
    common::clean(
        &http,
        &url,
        &[results_index.clone(), format!("{name}checkpoints")],
    )
    .await;

    assert_eq!(future, 2.0, "both poison records counted as future");
    assert_eq!(late, 0.0, "no live record was judged late");
    assert!(
        scored_until * 1_000.0 >= (last_sent - 1_000) as f64,
        "scoring went on to the end of the live traffic ({scored_until} vs {last_sent})"
    );
    assert!(
        memory_after < memory_before + 200,
        "memory stayed flat: {memory_before} MiB → {memory_after} MiB"
    );
    let scored: BTreeMap<i64, u64> = results
        .iter()
        .filter_map(|r| Some((r["data_start_time"].as_i64()?, r["value"].as_f64()? as u64)))
        .filter(|(start, _)| sent.contains_key(start))
        .collect();
    assert_eq!(
        scored, sent,
        "every interval of the live traffic was scored with exactly what was sent in it"
    );
    assert!(
        results
            .iter()
            .all(|r| r["data_start_time"].as_i64() < Some(last_sent + 10_000)),
        "no interval in the future was scored"
    );
}
