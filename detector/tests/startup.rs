//! The default setup starts: `logwarden-detector run` with the embedded default spec and exactly
//! the environment the README tells a new user to set (the stack's addresses and the channel's
//! secret in `LOGWARDEN_SECRET_ALERT_WEBHOOK_URL`) reaches "Detecting." and stops cleanly on
//! SIGTERM; without the secret it stops at start-up naming the channel and how to provide it; a
//! misspelled config variable is still rejected, naming the key.
//!
//! The default spec names the default indices (`logwarden-anomaly-results`,
//! `logwarden-detector-checkpoints`); only the Kafka topic is the test's own. What the run created
//! in OpenSearch is deleted afterwards unless it was there before.

use std::time::Duration;

use pipeline::testkit::{self, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-detector");

async fn exists(http: &reqwest::Client, url: &str) -> bool {
    http.head(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn the_default_spec_starts_with_the_readmes_environment() {
    let kafka = testkit::kafka_with_private_topics("startup", 2).await;
    let opensearch = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let spec = detector::spec::Spec::default_spec().expect("the default spec is valid");
    let created: Vec<String> = [
        format!("{opensearch}/{}", spec.results),
        format!("{opensearch}/{}", spec.checkpoints),
    ]
    .into_iter()
    .collect();
    let mut preexisting = Vec::new();
    for url in &created {
        preexisting.push(exists(&http, url).await);
    }

    let env = [
        ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
        ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
        (
            "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
            &kafka.topics.anomalies,
        ),
        ("LOGWARDEN_OPENSEARCH__URL", &opensearch),
        ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
        (
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "https://hooks.example.com/services/T000/B000/startup-test",
        ),
    ];
    let mut detector = Process::start(BINARY, &["run"], &env);
    detector
        .wait_for("Detecting.", Duration::from_secs(90))
        .await;
    let (code, output) = detector.terminate();
    assert_eq!(code, Some(0), "a clean stop on SIGTERM:\n{output}");
    assert!(
        !output.contains("startup-test"),
        "the webhook URL (a secret) was printed:\n{output}"
    );

    for (url, was_there) in created.iter().zip(preexisting) {
        if !was_there {
            let _ = http.delete(url).send().await;
        }
    }
}

#[tokio::test]
async fn a_missing_secret_names_the_channel_and_both_ways_to_provide_it() {
    let opensearch = testkit::require_opensearch().await;
    let env = [
        ("LOGWARDEN_KAFKA__BROKERS", testkit::kafka_brokers()),
        ("LOGWARDEN_OPENSEARCH__URL", opensearch),
        ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, output) = Process::start(BINARY, &["run"], &env).wait(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{output}");
    for words in [
        "channel `security-team` (webhook)",
        "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL is not set",
        "file: /path",
    ] {
        assert!(output.contains(words), "`{words}` missing from:\n{output}");
    }
}

#[tokio::test]
async fn a_misspelled_config_variable_is_still_rejected_naming_the_key() {
    let env = [
        ("LOGWARDEN_KAFKA__BROKERZ", "127.0.0.1:9092"),
        (
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "https://hooks.example.com/x",
        ),
    ];
    let (code, output) = Process::start(BINARY, &["run"], &env).wait(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("config key `kafka.brokerz` unknown field `brokerz`"),
        "{output}"
    );
    assert!(
        !output.contains("hooks.example.com"),
        "a secret was printed:\n{output}"
    );
}
