//! Restarts and replicas of the detector on the real stack: the model comes back from its
//! checkpoint (no history in the index, so a cold start would begin with zero confidence), the
//! anomaly alerted before a restart is not alerted again, and a second replica waits on standby
//! until the first one stops, then takes over.

mod common;

use std::time::Duration;

use common::{gauge, receiver, run_replica, stream};
use detector::settings::Settings;
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};

fn settings(kafka: &KafkaConfig, url: &str, name: &str, hook: &str) -> Settings {
    replica(kafka, url, name, hook, "test-0")
}

fn replica(kafka: &KafkaConfig, url: &str, name: &str, hook: &str, instance: &str) -> Settings {
    let spec = common::spec(
        name,
        "country-anomaly-detector",
        "{field: UNK_country}",
        "500ms",
        Some(hook),
    );
    common::settings(kafka, url, &spec, instance)
}

async fn run_detector(
    settings: Settings,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let (stop, task, _) = run_replica(settings).await;
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_waits_on_standby_and_takes_over() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("replicas", 1).await;
    let name = testkit::unique_name("replicas");
    let producer: FutureProducer = kafka
        .producer_config("replicas")
        .create()
        .expect("producer");
    let (hook, _inbox) = receiver().await;

    let (stop_a, task_a, a) = run_replica(replica(&kafka, &url, &name, &hook, "replica-a")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (stop_b, task_b, b) = run_replica(replica(&kafka, &url, &name, &hook, "replica-b")).await;
    stream(&producer, &kafka.topics.enriched, 6, 0).await;
    let scored = "logwarden_detector_intervals_scored_total";
    let (a_active, a_scored) = (gauge(&a, "logwarden_detector_active"), gauge(&a, scored));
    let (b_active, b_scored) = (gauge(&b, "logwarden_detector_active"), gauge(&b, scored));
    let (b_ready, b_why) = b.health.report();

    stop_a.cancel();
    task_a.await.expect("the first replica stops");
    // The released lease is taken over within one retry period (lease / 3).
    stream(&producer, &kafka.topics.enriched, 4, 0).await;
    let b_active_after = gauge(&b, "logwarden_detector_active");
    let b_scored_after = gauge(&b, scored);
    stop_b.cancel();
    task_b.await.expect("the second replica stops");
    let http = reqwest::Client::new();
    common::clean(
        &http,
        &url,
        &[format!("{name}results"), format!("{name}checkpoints")],
    )
    .await;

    assert_eq!((a_active, b_active), (1.0, 0.0), "one active replica");
    assert!(a_scored >= 4.0, "the active replica scores: {a_scored}");
    assert_eq!(b_scored, 0.0, "the standby scores nothing");
    assert!(
        !b_ready && b_why.contains("standby"),
        "the standby says so: {b_why}"
    );
    assert_eq!(b_active_after, 1.0, "the standby took over");
    assert!(b_scored_after >= 2.0, "and scores: {b_scored_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_model_and_does_not_alert_again() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("restart", 1).await;
    let name = testkit::unique_name("restart");
    let producer: FutureProducer = kafka.producer_config("restart").create().expect("producer");
    let (hook, inbox) = receiver().await;

    let (stop, task) = run_detector(settings(&kafka, &url, &name, &hook)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream(&producer, &kafka.topics.enriched, 15, 0).await;
    stream(&producer, &kafka.topics.enriched, 4, 20).await;
    stream(&producer, &kafka.topics.enriched, 4, 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    task.await.expect("first run ends");
    let before: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, b)| b.clone())
        .collect();

    let restarted_at = chrono::Utc::now().timestamp_millis();
    let (stop, task) = run_detector(settings(&kafka, &url, &name, &hook)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream(&producer, &kafka.topics.enriched, 5, 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    task.await.expect("second run ends");
    let after: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, b)| b.clone())
        .collect();

    let http = reqwest::Client::new();
    let results_index = format!("{name}results");
    let confidences: Vec<f64> = common::results(
        &http,
        &url,
        &results_index,
        json!({"range": {"data_start_time": {"gte": restarted_at}}}),
    )
    .await
    .iter()
    .filter_map(|r| r["confidence"].as_f64())
    .collect();
    common::clean(&http, &url, &[results_index, format!("{name}checkpoints")]).await;

    let alerts = |bodies: &[Value]| bodies.iter().filter(|b| b["kind"] == "alert").count();
    assert_eq!(alerts(&before), 1, "one alert for the anomaly: {before:?}");
    assert_eq!(
        after.len(),
        before.len(),
        "nothing new after the restart: {after:?}"
    );
    assert!(
        confidences.len() >= 4,
        "the restarted detector scored the new intervals: {confidences:?}"
    );
    assert!(
        confidences.iter().all(|&c| c >= 0.99),
        "the restored model is confident at once (a cold start without history begins at 0): {confidences:?}"
    );
}
