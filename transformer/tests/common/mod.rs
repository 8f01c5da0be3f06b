//! What the transformer's Kafka tests share: seed-shaped records, producing them to `raw`,
//! reading outputs back by event id, and the binary run as a child process like a pod.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pipeline::kafka::{KafkaConfig, topic_size};
use pipeline::testkit;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

pub const ACTIONS: [&str; 5] = ["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"];
pub const SOURCES: [&str; 5] = ["ALB", "APIGW", "APPSYNC", "CF", "-"];
pub const STATUSES: [&str; 8] = ["200", "202", "307", "308", "403", "404", "502", "504"];
pub const COUNTRIES: [&str; 7] = ["US", "UK", "IN", "XX", "YY", "ZZ", "WW"];
pub const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "DELETE"];

/// Seed-shaped record `i`, cycling through every value of every field.
pub fn record(i: usize) -> Value {
    json!({
        "timestamp": 1_700_000_000_000_i64 + i as i64 * 100,
        "formatVersion": 1,
        "action": ACTIONS[i % 5],
        "httpSourceName": SOURCES[(i / 5) % 5],
        "httpSourceId": SOURCES[(i / 5) % 5].to_lowercase(),
        "httpStatus": STATUSES[i % 8],
        "httpRequest": {
            "clientIp": "203.0.113.9", "country": COUNTRIES[i % 7], "headers": [],
            "uri": "/", "args": "", "httpVersion": "HTTP/1.1",
            "httpMethod": METHODS[i % 4], "requestId": format!("req-{i}"),
        }
    })
}

pub async fn produce_raw(kafka: &KafkaConfig, payloads: &[Vec<u8>]) {
    // Up to 2 MB: a record over the transformer's limit must reach `raw` (compressed, it fits
    // under the broker's own limit, as it does for a real sender).
    let producer: FutureProducer = kafka
        .producer_config("test-raw")
        .set("message.max.bytes", "2000000")
        .create()
        .expect("producer");
    let mut deliveries = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        let queued = producer.send_result(
            FutureRecord::to(&kafka.topics.raw)
                .key(&key)
                .payload(payload),
        );
        deliveries.push(queued.map_err(|(err, _)| err).expect("queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("not cancelled").expect("delivered");
    }
}

pub fn by_event_id(messages: &[OwnedMessage]) -> BTreeMap<String, Value> {
    messages
        .iter()
        .map(|m| {
            let doc: Value = serde_json::from_str(testkit::payload_text(m)).expect("enriched JSON");
            (doc["event_id"].as_str().expect("event_id").to_owned(), doc)
        })
        .collect()
}

/// The binary as a child process, configured through the environment like a pod, with the
/// static membership id `instance` (the transactional id's suffix too).
pub fn spawn_binary(kafka: &KafkaConfig, group: &str, instance: &str, guarantee: &str) -> Child {
    binary(kafka, group, instance, guarantee)
        .spawn()
        .expect("the transformer binary starts")
}

/// The binary's command, configured as [`spawn_binary`] does, for a test to add to.
pub fn binary(kafka: &KafkaConfig, group: &str, instance: &str, guarantee: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logwarden-transformer"));
    command
        .arg("run")
        .env("LOGWARDEN_KAFKA__BROKERS", &kafka.brokers)
        .env("LOGWARDEN_KAFKA__TOPICS__RAW", &kafka.topics.raw)
        .env("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched)
        .env(
            "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
            &kafka.topics.dead_letter,
        )
        .env("LOGWARDEN_KAFKA__TOPICS__LABELS", &kafka.topics.labels)
        .env("LOGWARDEN_TRANSFORMER__GROUP_ID", group)
        .env("LOGWARDEN_TRANSFORMER__INSTANCE_ID", instance)
        .env("LOGWARDEN_TRANSFORMER__GUARANTEE", guarantee)
        .env("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// Waits until `topic` holds at least `n` records (watermarks, so uncommitted ones count).
pub async fn wait_for_size(kafka: &KafkaConfig, topic: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let size = topic_size(kafka, topic, Duration::from_secs(5))
            .await
            .expect("size");
        if size >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{topic}` stuck at {size} records"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

pub fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("exits")
}
