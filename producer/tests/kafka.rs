//! The producer against the stack's real Kafka (`cargo xtask stack up`): a scenario publishes
//! exactly the planned records to `raw` and its labels to `labels`; a backfill covers its span
//! with in-order, evenly spread timestamps; the metrics count what was produced.

use std::io::Write;
use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::TelemetryConfig;
use pipeline::testkit;
use pipeline::wire::{Label, LabelKind, MonitoredField, RawLog};
use producer::run::{Summary, now_ms, run};
use producer::settings::{GeneratorConfig, RawConfig, Settings};

async fn produce(kafka: &KafkaConfig, generator: GeneratorConfig) -> (Summary, String) {
    let raw = RawConfig {
        kafka: kafka.clone(),
        telemetry: TelemetryConfig::default(),
        opensearch: pipeline::config::OpenSearchConfig::default(),
        generator,
    };
    let settings = Settings::from_raw(raw, now_ms(), None).expect("valid settings");
    let (service, _shutdown) = testkit::service("producer").await;
    let summary = run(settings, &service).await.expect("run completes");
    (summary, service.telemetry.render())
}

fn records(messages: &[rdkafka::message::OwnedMessage]) -> Vec<RawLog> {
    messages
        .iter()
        .map(|m| serde_json::from_str(testkit::payload_text(m)).expect("a RawLog"))
        .collect()
}

#[tokio::test]
async fn a_scenario_publishes_exactly_its_records_and_labels() {
    let kafka = testkit::kafka_with_private_topics("producer-scenario", 4).await;
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    // 100/s: 1 s normal, 2 s of country anomaly, 1 s normal = 400 records, 200 of them anomalous.
    file.write_all(
        b"name: it\nrate: 100\nphases:\n  - normal: 1s\n  - anomaly: country\n    duration: 2s\n  - normal: 1s\n",
    )
    .expect("write scenario");
    let (summary, metrics) = produce(
        &kafka,
        GeneratorConfig {
            scenario: Some(file.path().to_owned()),
            seed: Some(11),
            run_id: Some("it-run".into()),
            instance: Some("it-0".into()),
            ..GeneratorConfig::default()
        },
    )
    .await;
    assert_eq!(summary.records, 400);
    assert!(!summary.interrupted);

    let raw = testkit::consume(
        &kafka,
        &kafka.topics.raw,
        400,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(raw.len(), 400, "exactly the planned records, no duplicates");
    let logs = records(&raw);
    let mut ids: Vec<&str> = logs
        .iter()
        .map(|l| l.http_request.request_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 400, "request ids are unique");
    let partitions: std::collections::BTreeSet<i32> =
        raw.iter().map(rdkafka::Message::partition).collect();
    assert!(
        partitions.len() > 1,
        "keys spread records over partitions: {partitions:?}"
    );

    let labels = testkit::consume(
        &kafka,
        &kafka.topics.labels,
        3,
        Duration::from_secs(10),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(labels.len(), 3, "one label per phase with an end");
    let labels: Vec<Label> = labels
        .iter()
        .map(|m| serde_json::from_str(testkit::payload_text(m)).expect("a Label"))
        .collect();
    assert_eq!(labels, summary.labels, "in phase order");
    let kinds: Vec<LabelKind> = labels.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [LabelKind::Normal, LabelKind::Anomaly, LabelKind::Normal]
    );
    let label = labels[1].clone();
    assert_eq!(label.field, MonitoredField::Country.name());
    assert_eq!(
        (label.run_id.as_str(), label.instance.as_str(), label.phase),
        ("it-run", "it-0", 1)
    );
    assert_eq!(label.end_ms - label.start_ms, 2_000);

    // Inside the label's span most countries are unknown ones; outside, almost none.
    let unknown = |l: &RawLog| !["US", "UK", "IN"].contains(&l.http_request.country.as_str());
    let inside: Vec<&RawLog> = logs
        .iter()
        .filter(|l| (label.start_ms..label.end_ms).contains(&l.timestamp))
        .collect();
    assert_eq!(inside.len(), 200);
    assert!(
        inside.iter().filter(|l| unknown(l)).count() > 150,
        "anomaly visible in its span"
    );
    let outside = logs
        .iter()
        .filter(|l| !(label.start_ms..label.end_ms).contains(&l.timestamp));
    assert!(
        outside.filter(|l| unknown(l)).count() < 10,
        "normal traffic outside it"
    );

    assert!(
        metrics
            .contains("logwarden_producer_records_total{field=\"country\",mode=\"anomaly\"} 200"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logwarden_producer_records_total{field=\"none\",mode=\"normal\"} 200"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logwarden_producer_labels_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_backfill_covers_its_span_evenly_and_in_order() {
    let kafka = testkit::kafka_with_private_topics("producer-backfill", 4).await;
    let before = now_ms();
    let (summary, _) = produce(
        &kafka,
        GeneratorConfig {
            backfill: Some("10m".into()),
            rate: Some(5.0),
            seed: Some(3),
            ..GeneratorConfig::default()
        },
    )
    .await;
    let after = now_ms();
    assert_eq!(summary.records, 3_000, "10 minutes at 5/s");
    assert!(summary.labels.is_empty(), "normal history has no labels");

    let raw = testkit::consume(
        &kafka,
        &kafka.topics.raw,
        3_000,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(raw.len(), 3_000);
    let mut stamps: Vec<i64> = records(&raw).iter().map(|l| l.timestamp).collect();
    // In order per partition: Kafka keeps each partition's order.
    for partition in 0..4 {
        let per: Vec<i64> = raw
            .iter()
            .filter(|m| rdkafka::Message::partition(*m) == partition)
            .map(|m| {
                serde_json::from_str::<RawLog>(testkit::payload_text(m))
                    .expect("RawLog")
                    .timestamp
            })
            .collect();
        assert!(
            per.windows(2).all(|w| w[0] <= w[1]),
            "partition {partition} out of order"
        );
    }
    stamps.sort_unstable();
    let first = stamps[0];
    let last = stamps[stamps.len() - 1];
    assert!(
        first >= before - 600_000 && first <= after - 600_000,
        "history starts 10 min ago"
    );
    assert!(last < after && last >= before - 1_000, "history ends now");
    assert!(
        stamps.windows(2).all(|w| w[1] - w[0] == 200),
        "evenly spread at 5/s: one record every 200 ms"
    );
}

#[tokio::test]
async fn a_source_run_writes_raw_with_its_source_header_and_labels_the_indicator() {
    let kafka = testkit::kafka_with_private_topics("producer-source", 2).await;
    let (summary, _) = produce(
        &kafka,
        GeneratorConfig {
            source: Some("cloudwatch".into()),
            anomaly: Some("cw_lambda_timeout".into()),
            duration: Some("2s".into()),
            rate: Some(100.0),
            backfill: Some("2s".into()),
            seed: Some(3),
            ..GeneratorConfig::default()
        },
    )
    .await;
    assert_eq!(summary.records, 200);
    let raw = testkit::consume(
        &kafka,
        &kafka.topics.raw,
        200,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(raw.len(), 200);
    let mut timeouts = 0;
    for message in &raw {
        let headers = rdkafka::Message::headers(message).expect("headers");
        assert_eq!(
            pipeline::wire::Source::from_headers(headers),
            Some(pipeline::wire::Source::Cloudwatch)
        );
        let event: serde_json::Value =
            serde_json::from_str(testkit::payload_text(message)).expect("JSON");
        assert!(
            event["logGroup"].is_string() && event["id"].is_string(),
            "{event}"
        );
        if event["message"]
            .as_str()
            .is_some_and(|m| m.contains("Task timed out after"))
        {
            timeouts += 1;
        }
    }
    assert!(timeouts > 70, "{timeouts} of 200 records are timeouts");
    let labels = testkit::consume(
        &kafka,
        &kafka.topics.labels,
        1,
        Duration::from_secs(10),
        Duration::from_secs(1),
    )
    .await;
    let label: Label = serde_json::from_str(testkit::payload_text(&labels[0])).expect("a Label");
    assert_eq!(label.field, "cw_lambda_timeout");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
}
