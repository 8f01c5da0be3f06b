//! The transformer's `/readyz` as a Kubernetes readiness probe sees it, with the real binary: on
//! an idle topic (no record ever arrives) it is ready within seconds of joining its group and
//! stays ready; with no Kafka to reach it is never ready, and says why.

use std::time::{Duration, Instant};

use pipeline::kafka::KafkaConfig;
use pipeline::testkit::{self, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-transformer");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Starts the transformer on `kafka`'s brokers and topics, in a group of its own.
fn start(kafka: &KafkaConfig, port: u16) -> Process {
    let listen = format!("127.0.0.1:{port}");
    let group = testkit::unique_name("readiness");
    Process::start(
        BINARY,
        &["run"],
        &[
            ("LOGWARDEN_KAFKA__BROKERS", &kafka.brokers),
            ("LOGWARDEN_KAFKA__TOPICS__RAW", &kafka.topics.raw),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_TRANSFORMER__GROUP_ID", &group),
            ("LOGWARDEN_TRANSFORMER__INSTANCE_ID", &group),
            ("LOGWARDEN_TELEMETRY__LISTEN", &listen),
        ],
    )
}

/// `/readyz`: its status and body, or `None` while it does not answer.
async fn readyz(http: &reqwest::Client, port: u16) -> Option<(u16, String)> {
    let response = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

#[tokio::test]
async fn an_idle_topic_is_ready_within_seconds() {
    let kafka = testkit::kafka_with_private_topics("readiness", 2).await;
    let port = free_port();
    let process = start(&kafka, port);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(20) {
        last = readyz(&http, port).await;
        if matches!(&last, Some((200, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = started.elapsed();
    // Still ready after a statistics interval: it is the joined group that keeps it ready, not
    // the start-up check's answer.
    tokio::time::sleep(pipeline::kafka::STATISTICS_INTERVAL + Duration::from_secs(2)).await;
    let later = readyz(&http, port).await;
    let (code, output) = process.terminate();
    assert_eq!(
        last.as_ref().map(|(status, _)| *status),
        Some(200),
        "not ready within 20 s on an idle topic: {last:?}\n{output}"
    );
    assert_eq!(
        last.map(|(_, body)| body).as_deref(),
        Some("kafka: ok\n"),
        "{output}"
    );
    assert_eq!(
        later,
        Some((200, "kafka: ok\n".to_owned())),
        "not ready any more: {output}"
    );
    assert_eq!(code, Some(0), "{output}");
    println!("ready after {waited:?}");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
}

#[tokio::test]
async fn without_kafka_it_stays_not_ready_and_says_why() {
    // Nothing listens on port 9 (discard) on loopback.
    let mut kafka = KafkaConfig::new("127.0.0.1:9");
    kafka.topics = pipeline::kafka::TopicNames::prefixed(&testkit::unique_name("readiness"));
    let port = free_port();
    let process = start(&kafka, port);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut answers = Vec::new();
    // Past the start-up check's patience (10 s) and two statistics intervals.
    while started.elapsed() < Duration::from_secs(22) {
        if let Some(answer) = readyz(&http, port).await {
            answers.push(answer);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, output) = process.terminate();
    assert!(answers.len() > 20, "/readyz did not answer: {output}");
    assert!(
        answers.iter().all(|(status, _)| *status == 503),
        "ready without Kafka: {answers:?}\n{output}"
    );
    let (_, body) = answers.last().expect("answers");
    assert!(body.starts_with("kafka: "), "{body}");
    assert!(body.contains("brokers are down"), "{body}");
}
