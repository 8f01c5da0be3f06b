//! The whole pipeline through the stack's secure Kafka listeners (`cargo xtask stack up`): the
//! producer, the transformer, the sink and the detector, each with the same `kafka.tls` /
//! `kafka.sasl` settings a user would give, once through SASL_SSL with SCRAM-SHA-512 and once
//! through mutual TLS. Every record the producer wrote reaches OpenSearch, and the detector counts
//! exactly those records in its intervals.

mod common;

use std::time::Duration;

use common::run_replica;
use detector::settings::Settings;
use pipeline::kafka::KafkaConfig;
use pipeline::testkit::{self, Secure};
use serde_json::json;

const RECORDS: u64 = 300;

fn detector_settings(kafka: &KafkaConfig, url: &str, name: &str, events: &str) -> Settings {
    let spec = format!(
        r#"
events: {events}
results: {name}results
checkpoints: {name}checkpoints
detectors:
  - name: all-events
    feature: {{aggregation: count}}
    interval: 1s
    # The transformer joins its group and the SASL handshakes happen while the producer
    # writes: its first records reach `enriched` seconds after their time.
    window_delay: 10s
    model: {{history: 0, baseline: 10}}
"#
    );
    common::settings(kafka, url, &spec, &format!("{name}0"))
}

async fn pipeline_through(mode: Secure) {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::secure_kafka("secure-pipeline", 2, mode).await;
    let name = testkit::unique_name("secure-pipeline");
    let events = format!("{name}events");
    let http = reqwest::Client::new();

    // The services, each validating the same secure settings and running in-process.
    let (detector_stop, detector_task, detector_telemetry) =
        run_replica(detector_settings(&kafka, &url, &name, &events)).await;
    let transformer_settings = transformer::settings::Settings::from_raw(
        transformer::settings::RawConfig {
            kafka: kafka.clone(),
            transformer: transformer::settings::TransformerConfig {
                group_id: format!("{name}transformer"),
                ..Default::default()
            },
            ..Default::default()
        },
        Some("secure-0".into()),
    )
    .expect("transformer settings");
    let (transformer_service, transformer_stop) = testkit::service("transformer").await;
    let transformer = tokio::spawn(async move {
        transformer::service::run(transformer_settings, &transformer_service).await
    });
    let mut sink_raw = sink::settings::RawConfig {
        kafka: kafka.clone(),
        sink: sink::settings::SinkConfig {
            index: events.clone(),
            group_id: format!("{name}sink"),
            batch_ms: 200,
            ..Default::default()
        },
        ..Default::default()
    };
    sink_raw.opensearch.url = url.clone();
    let sink_settings =
        sink::settings::Settings::from_raw(sink_raw, Some("secure-0".into())).expect("sink");
    let (sink_service, sink_stop) = testkit::service("sink").await;
    let sink = tokio::spawn(async move { sink::service::run(sink_settings, &sink_service).await });

    // Live traffic from the producer: 100 records/s for 3 s.
    let producer_settings = producer::settings::Settings::from_raw(
        producer::settings::RawConfig {
            kafka: kafka.clone(),
            telemetry: pipeline::telemetry::TelemetryConfig::default(),
            opensearch: pipeline::config::OpenSearchConfig::default(),
            generator: producer::settings::GeneratorConfig {
                rate: Some(100.0),
                duration: Some("3s".into()),
                seed: Some(3),
                instance: Some("secure-0".into()),
                ..Default::default()
            },
        },
        producer::run::now_ms(),
        None,
    )
    .expect("producer settings");
    let (producer_service, _producer_stop) = testkit::service("producer").await;
    let summary = producer::run::run(producer_settings, &producer_service)
        .await
        .expect("the producer runs");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut indexed = 0;
    let mut counted = 0.0;
    while tokio::time::Instant::now() < deadline {
        indexed = common::count(&http, &url, &format!("{events}*")).await;
        let results = common::results(
            &http,
            &url,
            &format!("{name}results"),
            json!({"match_all": {}}),
        )
        .await;
        counted = results.iter().filter_map(|r| r["events"].as_f64()).sum();
        if indexed >= RECORDS && counted >= RECORDS as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scored = common::gauge(
        &detector_telemetry,
        "logwarden_detector_intervals_scored_total",
    );

    detector_stop.cancel();
    transformer_stop.cancel();
    sink_stop.cancel();
    detector_task.await.expect("the detector stops");
    transformer
        .await
        .expect("transformer task")
        .expect("transformer");
    sink.await.expect("sink task").expect("sink");
    common::clean(
        &http,
        &url,
        &[
            format!("{events}*"),
            events.clone(),
            format!("{name}results"),
            format!("{name}checkpoints"),
        ],
    )
    .await;

    assert_eq!(summary.records, RECORDS, "{mode:?}: the producer wrote");
    assert_eq!(
        indexed, RECORDS,
        "{mode:?}: OpenSearch holds every record once"
    );
    assert_eq!(
        counted, RECORDS as f64,
        "{mode:?}: the detector counted every record in its intervals"
    );
    assert!(scored >= 3.0, "{mode:?}: the detector scored: {scored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_through_sasl_ssl_with_scram() {
    pipeline_through(Secure::SaslScram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_through_mutual_tls() {
    pipeline_through(Secure::MutualTls).await;
}
