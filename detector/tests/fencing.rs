//! Lease fencing with two detector processes on the real stack: the active one is frozen
//! (SIGSTOP) past its lease, the standby takes over and scores and alerts; the frozen one,
//! resumed (SIGCONT), finds by itself that it lost the lease and stops scoring: its metrics,
//! `/readyz` and log say so, it writes no checkpoint (the checkpoint document's holder and
//! generation stay the new holder's), and each anomaly is alerted exactly once at the receiver.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::replica::{Replica, checkpoint_doc, spec_file};
use common::{receiver, stream};
use pipeline::testkit;
use rdkafka::producer::FutureProducer;
use serde_json::Value;

const LEASE_MS: u64 = 3_000;

fn spec(name: &str, hook: &str) -> String {
    common::spec(
        name,
        "country-anomaly-detector",
        "{field: UNK_country}",
        "500ms",
        Some(hook),
    )
}

fn holder(doc: &Value) -> (String, i64) {
    (
        doc["_source"]["holder"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        doc["_source"]["generation"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_holder_stops_by_itself_and_never_writes_after_the_take_over() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("fencing", 1).await;
    let name = testkit::unique_name("fencing");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("fencing").create().expect("producer");
    let topic = kafka.topics.enriched.clone();
    let (hook, inbox) = receiver().await;
    let spec = spec_file(&name, &spec(&name, &hook));
    let checkpoints = format!("{name}checkpoints");

    let mut a = Replica::start(&kafka, &url, &spec, "fence-a", LEASE_MS);
    a.process
        .wait_for("Detecting.", Duration::from_secs(90))
        .await;
    let mut b = Replica::start(&kafka, &url, &spec, "fence-b", LEASE_MS);
    b.process.wait_for("Standby", Duration::from_secs(60)).await;

    // A scores and alerts once for an anomaly, then a quiet stretch is checkpointed.
    stream(&producer, &topic, 15, 0).await;
    stream(&producer, &topic, 4, 20).await;
    stream(&producer, &topic, 5, 0).await;
    let a_scored_before = a
        .metric(&http, "logwarden_detector_intervals_scored_total")
        .await;
    let a_checkpoints = a
        .metric(&http, "logwarden_detector_checkpoints_total")
        .await;
    let alerts_of_a = inbox
        .lock()
        .expect("inbox")
        .iter()
        .filter(|(_, body)| body["kind"] == "alert")
        .count();
    let (a_holder, a_generation) = holder(&checkpoint_doc(&http, &url, &checkpoints).await);

    // A freezes past its lease: B takes over, scores, and alerts for a second anomaly.
    a.process.signal("STOP");
    stream(&producer, &topic, 6, 0).await;
    b.process
        .wait_for("Holding the lease", Duration::from_secs(10))
        .await;
    stream(&producer, &topic, 10, 0).await;
    stream(&producer, &topic, 4, 20).await;
    stream(&producer, &topic, 4, 0).await;
    let taken_over = checkpoint_doc(&http, &url, &checkpoints).await;
    let (b_holder, b_generation) = holder(&taken_over);

    // A resumes: it must notice on its own, and write nothing.
    a.process.signal("CONT");
    let mut holders = Vec::new();
    let mut seq_nos = Vec::new();
    let producing = async {
        stream(&producer, &topic, 5, 0).await;
    };
    let watching = async {
        for _ in 0..25 {
            let doc = checkpoint_doc(&http, &url, &checkpoints).await;
            holders.push(holder(&doc));
            seq_nos.push(doc["_seq_no"].as_i64().unwrap_or(-1));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::join!(producing, watching);
    let a_output = a
        .process
        .wait_for("Lost the lease", Duration::from_secs(10))
        .await;
    let a_active = a.metric(&http, "logwarden_detector_active").await;
    let a_lost = a.metric(&http, "logwarden_detector_lease_lost_total").await;
    let a_scored_after = a
        .metric(&http, "logwarden_detector_intervals_scored_total")
        .await;
    let (a_ready, a_why) = a.readyz(&http).await;
    let b_scored = b
        .metric(&http, "logwarden_detector_intervals_scored_total")
        .await;
    stream(&producer, &topic, 3, 0).await;
    let a_scored_later = a
        .metric(&http, "logwarden_detector_intervals_scored_total")
        .await;
    let b_scored_later = b
        .metric(&http, "logwarden_detector_intervals_scored_total")
        .await;
    let b_active = b.metric(&http, "logwarden_detector_active").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (a_code, _) = a.process.terminate();
    let (b_code, b_output) = b.process.terminate();
    let bodies: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .collect();
    // Every anomalous result went to `anomalies` too (a re-scored one possibly twice: at least
    // once).
    let anomalous: BTreeSet<(String, i64)> = common::results(
        &http,
        &url,
        &format!("{name}results"),
        serde_json::json!({"range": {"anomaly_grade": {"gt": 0}}}),
    )
    .await
    .iter()
    .filter_map(|r| {
        Some((
            r["detector_id"].as_str()?.to_owned(),
            r["data_start_time"].as_i64()?,
        ))
    })
    .collect();
    let published: BTreeSet<(String, i64)> = testkit::consume(
        &kafka,
        &kafka.topics.anomalies,
        anomalous.len(),
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await
    .iter()
    .filter_map(|m| {
        let r: Value = serde_json::from_str(testkit::payload_text(m)).ok()?;
        Some((
            r["detector_id"].as_str()?.to_owned(),
            r["data_start_time"].as_i64()?,
        ))
    })
    .collect();
    common::clean(&http, &url, &[format!("{name}results"), checkpoints]).await;
    let _ = std::fs::remove_file(&spec);

    assert_eq!(
        (a_holder.as_str(), a_generation > 0),
        ("fence-a", true),
        "A held and checkpointed first"
    );
    assert!(a_checkpoints >= 1.0 && a_scored_before >= 10.0);
    assert_eq!(
        (b_holder.as_str(), b_generation),
        ("fence-b", a_generation + 1),
        "B fenced the checkpoint with the next generation"
    );
    assert!(
        holders
            .iter()
            .all(|h| *h == (b_holder.clone(), b_generation)),
        "after A resumed, only B wrote the checkpoint: {holders:?}"
    );
    assert!(
        seq_nos.windows(2).all(|w| w[0] <= w[1]) && seq_nos.last() > seq_nos.first(),
        "B kept checkpointing: {seq_nos:?}"
    );
    assert!(
        a_output.contains("Lost the lease"),
        "A's log says it:\n{a_output}"
    );
    assert_eq!((a_active, a_lost), (0.0, 1.0), "A's metrics say it");
    assert!(
        !a_ready && a_why.contains("standby"),
        "A's /readyz says it is on standby: {a_why}"
    );
    assert_eq!(a_scored_later, a_scored_after, "A scores nothing any more");
    assert_eq!(b_active, 1.0);
    assert!(b_scored_later > b_scored, "B goes on scoring");
    assert_eq!((a_code, b_code), (Some(0), Some(0)), "{b_output}");
    let alerts: Vec<&str> = bodies
        .iter()
        .filter(|b| b["kind"] == "alert")
        .filter_map(|b| b["interval"]["start"].as_str())
        .collect();
    assert_eq!(
        alerts_of_a, 1,
        "A alerted once before its freeze: {bodies:?}"
    );
    assert_eq!(
        alerts.len(),
        2,
        "one alert per anomaly, each once: {bodies:?}"
    );
    assert_ne!(alerts[0], alerts[1]);
    assert!(
        anomalous.len() >= 2,
        "both anomalies were scored: {anomalous:?}"
    );
    assert_eq!(published, anomalous, "each anomaly was published");
}
