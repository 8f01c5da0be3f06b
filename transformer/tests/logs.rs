//! The service's logs as an operator gets them, from the binary against the stack's Kafka:
//! `telemetry.log_format: json` (what the Helm chart sets) gives one JSON object per line, with
//! the level, the message and the fields; the default is human lines without colour codes when
//! the output is not a terminal; `RUST_LOG` sets the level.

use std::time::Duration;

use pipeline::testkit::{self, Process};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-transformer");
const SERVING: &str = "Serving /metrics, /healthz, /readyz.";

/// Runs the binary on `kafka`'s topics with `env` on top until its telemetry port answers
/// `/healthz` (asked over HTTP, not read from the logs: at `RUST_LOG=warn` it says nothing),
/// stops it with SIGTERM, and returns everything it printed.
async fn logs(kafka: &pipeline::kafka::KafkaConfig, env: &[(&str, &str)]) -> String {
    let group = testkit::unique_name("transformer-logs");
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .to_string();
    let mut vars = vec![
        ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
        ("LOGWARDEN_KAFKA__TOPICS__RAW", kafka.topics.raw.as_str()),
        (
            "LOGWARDEN_KAFKA__TOPICS__ENRICHED",
            kafka.topics.enriched.as_str(),
        ),
        (
            "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
            kafka.topics.dead_letter.as_str(),
        ),
        ("LOGWARDEN_TRANSFORMER__GROUP_ID", group.as_str()),
        ("LOGWARDEN_TELEMETRY__LISTEN", listen.as_str()),
    ];
    vars.extend_from_slice(env);
    let process = Process::start(BINARY, &["run"], &vars);
    let healthz = format!("http://{listen}/healthz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !reqwest::get(&healthz)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{healthz} did not answer within 30 s:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, output) = process.terminate();
    assert_eq!(code, Some(0), "{output}");
    output
}

#[tokio::test]
async fn logs_are_json_when_asked_human_otherwise_at_the_level_rust_log_says() {
    let kafka = testkit::kafka_with_private_topics("transformer-logs", 1).await;
    let json = logs(
        &kafka,
        &[
            ("LOGWARDEN_TELEMETRY__LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let human = logs(&kafka, &[("RUST_LOG", "info")]).await;
    let quiet = logs(
        &kafka,
        &[
            ("LOGWARDEN_TELEMETRY__LOG_FORMAT", "json"),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    let lines: Vec<Value> = json
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect();
    let serving = lines
        .iter()
        .find(|l| l["message"] == SERVING)
        .unwrap_or_else(|| panic!("no `{SERVING}` line in:\n{json}"));
    assert_eq!(serving["level"], "INFO", "{serving}");
    let addr = serving["local_addr"].as_str().unwrap_or_default();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "the field is its own key: {serving}"
    );

    let line = human
        .lines()
        .find(|l| l.contains(SERVING))
        .unwrap_or_else(|| panic!("no `{SERVING}` line in:\n{human}"));
    assert!(
        line.contains(" INFO ") && line.contains("local_addr=127.0.0.1:"),
        "{line}"
    );
    assert!(
        !human.contains('\u{1b}'),
        "no colour codes off a terminal:\n{human}"
    );
    assert!(
        human
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{human}"
    );

    assert!(
        !quiet.contains(SERVING),
        "RUST_LOG=warn hides info:\n{quiet}"
    );
}
