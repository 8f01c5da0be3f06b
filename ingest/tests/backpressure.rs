//! What a sender sees when Kafka cannot take its records: 503 with `Retry-After` (HEC's "Server
//! is busy", Firehose's `errorMessage`), never a 200 for records Kafka does not have.

mod common;

use common::{Ingest, TOKEN, curl, metric};
use pipeline::kafka::{KafkaConfig, TopicNames};
use pipeline::testkit;
use serde_json::json;

#[tokio::test]
async fn kafka_unreachable_gets_503_with_retry_after() {
    testkit::require_kafka().await;
    // A port nothing listens on: every delivery fails at the acknowledgement timeout.
    let mut kafka = KafkaConfig::new("127.0.0.1:1");
    kafka.topics = TopicNames::prefixed(&testkit::unique_name("ingest-down"));
    let ingest = Ingest::start_on(
        kafka,
        &[
            ("LOGWARDEN_INGEST__ACK_TIMEOUT_MS", "1500"),
            ("LOGWARDEN_INGEST__RETRY_AFTER_S", "7"),
        ],
    )
    .await;
    let url = ingest.url();
    let hec = curl(&[
        &format!("{url}/services/collector/event"),
        "-H",
        &format!("Authorization: Splunk {TOKEN}"),
        "-d",
        r#"{"event":"lost?"}"#,
    ])
    .await;
    assert_eq!(
        (hec.status, hec.json()),
        (503, json!({"text":"Server is busy","code":9}))
    );
    assert!(hec.headers.contains("retry-after: 7"), "{}", hec.headers);
    let firehose = curl(&[
        &format!("{url}/firehose/waf"),
        "-H",
        &format!("X-Amz-Firehose-Access-Key: {TOKEN}"),
        "-d",
        r#"{"requestId":"r-1","timestamp":1,"records":[{"data":"e30="}]}"#,
    ])
    .await;
    assert_eq!(firehose.status, 503);
    assert_eq!(firehose.json()["requestId"], "r-1");
    assert!(
        firehose.json()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("kafka_unavailable: Kafka did not acknowledge")),
        "{}",
        firehose.body
    );
    assert!(firehose.headers.contains("retry-after: 7"));
    let health = curl(&[&format!("{url}/services/collector/health")]).await;
    assert_eq!(
        (health.status, health.json()),
        (
            503,
            json!({"text":"HEC is unhealthy, queues are full","code":18})
        )
    );
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_refused_total",
            "reason=\"kafka_unavailable\""
        ),
        2.0
    );
    assert_eq!(metric(&metrics, "logwarden_ingest_records_total", ""), 0.0);
    ingest.shutdown().await;
}

#[tokio::test]
async fn a_full_producer_queue_gets_503() {
    let mut kafka = testkit::kafka_with_private_topics("ingest-queue", 1).await;
    kafka
        .properties
        .insert("queue.buffering.max.messages".into(), "5".into());
    let ingest = Ingest::start_on(kafka, &[]).await;
    let batch: String = (0..20).map(|i| format!(r#"{{"event":{i}}}"#)).collect();
    let answer = curl(&[
        &format!("{}/services/collector/event", ingest.url()),
        "-H",
        &format!("Authorization: Splunk {TOKEN}"),
        "-d",
        &batch,
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (503, json!({"text":"Server is busy","code":9}))
    );
    assert!(
        answer.headers.contains("retry-after: 5"),
        "{}",
        answer.headers
    );
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_refused_total",
            "reason=\"queue_full\""
        ),
        1.0
    );
    ingest.stop().await;
}
