//! The producer's `/metrics` as Prometheus scrapes it after a scenario ran against the stack's
//! Kafka: promtool finds nothing to say, the counters are what the scenario planned, the
//! process metrics are there.

use std::io::Write;

use pipeline::telemetry::TelemetryConfig;
use pipeline::testkit::{self, metrics};
use producer::run::{now_ms, run};
use producer::settings::{GeneratorConfig, RawConfig, Settings};

#[tokio::test]
async fn metrics_follow_the_conventions_and_count_the_scenario() {
    let kafka = testkit::kafka_with_private_topics("producer-metrics", 2).await;
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    // 100/s: 1 s normal, then 1 s of country anomaly = 200 records, 100 of them anomalous.
    file.write_all(
        b"name: metrics\nrate: 100\nphases:\n  - normal: 1s\n  - anomaly: country\n    duration: 1s\n",
    )
    .expect("write scenario");
    let raw = RawConfig {
        kafka: kafka.clone(),
        telemetry: TelemetryConfig::default(),
        opensearch: pipeline::config::OpenSearchConfig::default(),
        generator: GeneratorConfig {
            scenario: Some(file.path().to_owned()),
            seed: Some(5),
            instance: Some("metrics-0".into()),
            ..GeneratorConfig::default()
        },
    };
    let settings = Settings::from_raw(raw, now_ms(), None).expect("valid settings");
    let (service, shutdown) = testkit::service("producer").await;
    let summary = run(settings, &service).await.expect("run completes");
    let text = metrics::scrape(service.server.local_addr).await;
    shutdown.cancel();
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert_eq!(summary.records, 200);
    metrics::assert_conventional(&text);
    let value = |name: &str, labels: &[(&str, &str)]| metrics::value(&text, name, labels);
    assert_eq!(
        value(
            "logwarden_producer_records_total",
            &[("mode", "normal"), ("field", "none")]
        ),
        100.0
    );
    assert_eq!(
        value(
            "logwarden_producer_records_total",
            &[("mode", "anomaly"), ("field", "country")]
        ),
        100.0
    );
    // One label per phase with an end: the normal one (kind normal) and the anomaly.
    assert_eq!(value("logwarden_producer_labels_total", &[]), 2.0);
    assert_eq!(value("logwarden_producer_in_flight", &[]), 0.0);
}
