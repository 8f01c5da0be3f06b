//! The transformer's `/metrics` as Prometheus scrapes it, after real traffic through the stack's
//! Kafka: promtool finds nothing to say, the counters are what was sent, the consumer lag of
//! every `raw` partition goes to 0 once caught up, and the process metrics are there.

use std::time::Duration;

mod common;

use common::{produce_raw, record};
use pipeline::testkit::{self, metrics};
use transformer::settings::{RawConfig, Settings, TransformerConfig};

const GOOD: usize = 1_000;
const NOT_JSON: usize = 10;
const PARTITIONS: i32 = 4;

#[tokio::test]
async fn metrics_follow_the_conventions_and_count_the_traffic() {
    let kafka = testkit::kafka_with_private_topics("transformer-metrics", PARTITIONS).await;
    let mut payloads: Vec<Vec<u8>> = (0..GOOD)
        .map(|i| serde_json::to_vec(&record(i)).expect("json"))
        .collect();
    payloads.extend((0..NOT_JSON).map(|i| format!("not json {i}").into_bytes()));
    produce_raw(&kafka, &payloads).await;

    let raw = RawConfig {
        kafka: kafka.clone(),
        transformer: TransformerConfig {
            group_id: testkit::unique_name("transformer-metrics-group"),
            ..TransformerConfig::default()
        },
        ..RawConfig::default()
    };
    let settings = Settings::from_raw(raw, Some("test-0".into())).expect("valid settings");
    let (service, shutdown) = testkit::service("transformer").await;
    let telemetry = service.server.local_addr;
    let task = tokio::spawn(async move { transformer::service::run(settings, &service).await });

    let text = metrics::wait_until_caught_up(
        telemetry,
        &kafka.topics.raw,
        PARTITIONS,
        Duration::from_secs(90),
    )
    .await;
    shutdown.cancel();
    task.await
        .expect("the service task ends")
        .expect("the service stops cleanly");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    metrics::assert_conventional(&text);
    let value = |name: &str, labels: &[(&str, &str)]| metrics::value(&text, name, labels);
    let sent = (GOOD + NOT_JSON) as f64;
    assert_eq!(value("logwarden_transformer_records_in_total", &[]), sent);
    assert_eq!(
        value("logwarden_transformer_records_out_total", &[]),
        GOOD as f64
    );
    assert_eq!(
        value(
            "logwarden_transformer_dead_letters_total",
            &[("reason", "not_json")]
        ),
        NOT_JSON as f64
    );
    assert_eq!(
        value("logwarden_transformer_delivery_seconds_count", &[]),
        sent,
        "one delivery per input, enriched or dead letter"
    );
    assert_eq!(value("logwarden_transformer_in_flight", &[]), 0.0);
    assert_eq!(
        value(
            "logwarden_build_info",
            &[
                ("service", "transformer"),
                ("version", env!("CARGO_PKG_VERSION"))
            ]
        ),
        1.0
    );
}
