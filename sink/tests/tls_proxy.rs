//! The sink through a real TLS-terminating, authenticating proxy (Debian's nginx) in front of the
//! stack's OpenSearch: with the right CA and password it loads records into OpenSearch; a wrong
//! password and an untrusted CA stop it at start-up with a clear error that shows no secret.

use std::time::Duration;

use pipeline::testkit::{self, AuthProxy, PROXY_PASSWORD, PROXY_USER, Process};
use rdkafka::producer::{FutureProducer, FutureRecord};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-sink");

#[tokio::test]
async fn the_sink_loads_through_tls_and_basic_auth() {
    let kafka = testkit::kafka_with_private_topics("sink-proxy", 1).await;
    let proxy = AuthProxy::start().await;
    let index = format!("{}events", testkit::unique_name("sink-proxy"));
    let producer: FutureProducer = kafka
        .producer_config("sink-proxy")
        .create()
        .expect("producer");
    for i in 0..20 {
        let record = format!(
            r#"{{"@timestamp":"2026-12-05T01:00:00.000Z","event_id":"proxy-{i}","UNK_country":1}}"#
        );
        producer
            .send(
                FutureRecord::<(), _>::to(&kafka.topics.enriched).payload(&record),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let ca = proxy.ca.display().to_string();
    let group = testkit::unique_name("sink-proxy-group");
    let sink = Process::start(
        BINARY,
        &[],
        &[
            ("LOGWARDEN_KAFKA__BROKERS", &kafka.brokers),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_OPENSEARCH__URL", &proxy.basic_url),
            ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
            ("LOGWARDEN_OPENSEARCH__PASSWORD", PROXY_PASSWORD),
            ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
            ("LOGWARDEN_SINK__INDEX", &index),
            ("LOGWARDEN_SINK__GROUP_ID", &group),
            ("LOGWARDEN_SINK__BATCH_MS", "200"),
            ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
        ],
    );
    // Count through OpenSearch directly (plain http on the stack's own port).
    let url = testkit::opensearch_url();
    let http = reqwest::Client::new();
    let mut count = 0;
    for _ in 0..120 {
        let _ = http.post(format!("{url}/{index}/_refresh")).send().await;
        count = match http.get(format!("{url}/{index}/_count")).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0),
            Err(_) => 0,
        };
        if count >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (code, output) = sink.terminate();
    let _ = http.delete(format!("{url}/{index}-*")).send().await;
    testkit::delete_index_templates(&url, &index).await;
    assert_eq!(
        count, 20,
        "every record indexed through the proxy:\n{output}"
    );
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains(PROXY_PASSWORD), "{output}");
}

#[tokio::test]
async fn a_wrong_password_and_an_untrusted_ca_stop_the_sink_at_start_up() {
    let proxy = AuthProxy::start().await;
    for refusal in proxy.refusals() {
        let ca = refusal.ca.display().to_string();
        let (code, output) = Process::start(
            BINARY,
            &[],
            &[
                ("LOGWARDEN_KAFKA__BROKERS", &testkit::kafka_brokers()),
                ("LOGWARDEN_OPENSEARCH__URL", &proxy.basic_url),
                ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
                ("LOGWARDEN_OPENSEARCH__PASSWORD", refusal.password),
                ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
                ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
            ],
        )
        .wait(Duration::from_secs(60));
        refusal.assert_stopped(code, &output);
    }
}
