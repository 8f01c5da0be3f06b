//! The detector's `/metrics` as Prometheus scrapes it, after real traffic through the stack's
//! Kafka and OpenSearch: promtool finds nothing to say, the consumer lag of every `enriched`
//! partition goes to 0 once caught up, the process metrics are there, and the last-interval
//! gauges are what the detector wrote as its last result.

mod common;

use std::time::Duration;

use common::send;
use pipeline::testkit::{self, metrics};
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};

const DETECTOR: &str = "country-sum";
const PARTITIONS: i32 = 2;

/// Scrapes until `name{detector}` reaches `at_least`.
async fn wait_for(telemetry: std::net::SocketAddr, name: &str, at_least: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics::scrape(telemetry).await;
        let value = metrics::sample(&text, name, &[]).unwrap_or(f64::NAN);
        if value >= at_least {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {value}, not {at_least}, after 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_conventions_and_show_the_last_interval() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("detector-metrics", PARTITIONS).await;
    let name = testkit::unique_name("detector-metrics");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka
        .producer_config("detector-metrics")
        .create()
        .expect("producer");
    let spec = common::spec(&name, DETECTOR, "{field: UNK_country}", "500ms", None);
    let settings = common::settings(&kafka, &url, &spec, "metrics-0");
    let (service, stop) = testkit::service("detector").await;
    let telemetry = service.server.local_addr;
    let registry = service.telemetry.clone();
    let task = tokio::spawn(async move { detector::service::run(settings, &service).await });
    wait_for(telemetry, "logwarden_detector_active", 1.0).await;

    // One second with 40 records, 20 of them with UNK_country = 1, and two unreadable records.
    let now = chrono::Utc::now().timestamp_millis();
    let second = (now / 1_000 + 2) * 1_000;
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(second - now).unwrap_or(0),
    ))
    .await;
    let stamp = chrono::DateTime::from_timestamp_millis(second + 100)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut payloads: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            serde_json::to_vec(&json!({
                "@timestamp": stamp,
                "UNK_country": i % 2,
                "event_id": format!("{name}{i}"),
            }))
            .expect("json")
        })
        .collect();
    payloads.extend([b"not json".to_vec(), b"{\"cut".to_vec()]);
    send(&producer, &kafka.topics.enriched, &payloads).await;

    // Scored up to two quiet seconds past the busy one, and read to the end of each partition.
    let seconds = second / 1_000;
    wait_for(
        telemetry,
        "logwarden_detector_scored_until_seconds",
        (seconds + 3) as f64,
    )
    .await;
    let text = metrics::wait_until_caught_up(
        telemetry,
        &kafka.topics.enriched,
        PARTITIONS,
        Duration::from_secs(60),
    )
    .await;
    stop.cancel();
    task.await
        .expect("the service task ends")
        .expect("the detector stops cleanly");
    let last = registry.render();
    let results = common::results(
        &http,
        &url,
        &format!("{name}results"),
        json!({"match_all": {}}),
    )
    .await;
    common::clean(
        &http,
        &url,
        &[format!("{name}results"), format!("{name}checkpoints")],
    )
    .await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    metrics::assert_conventional(&text);
    let value = metrics::value;
    assert_eq!(
        value(&text, "logwarden_detector_records_in_total", &[]),
        payloads.len() as f64
    );
    assert_eq!(
        value(
            &text,
            "logwarden_detector_dead_letters_total",
            &[("reason", "not_json")]
        ),
        2.0
    );
    let busy: Vec<&Value> = results
        .iter()
        .filter(|r| r["data_start_time"] == second)
        .collect();
    assert_eq!(busy.len(), 1, "{results:?}");
    assert_eq!(
        (busy[0]["value"].as_f64(), busy[0]["events"].as_u64()),
        (Some(20.0), Some(40))
    );

    // After the run: the gauges show the last result written, and the quiet seconds after the
    // busy one (each scored with no records) are the empty intervals.
    let by = [("detector", DETECTOR)];
    assert_eq!(
        value(&last, "logwarden_detector_intervals_scored_total", &by),
        results.len() as f64,
        "one result per scored interval"
    );
    let newest = results.last().expect("results");
    for (gauge, field) in [
        ("logwarden_detector_value", "value"),
        ("logwarden_detector_expected_value", "expected_value"),
        ("logwarden_detector_anomaly_grade", "anomaly_grade"),
        ("logwarden_detector_confidence", "confidence"),
    ] {
        assert_eq!(
            Some(value(&last, gauge, &by)),
            newest[field].as_f64(),
            "{gauge} is the last result's {field}: {newest}"
        );
    }
    let quiet = results
        .iter()
        .rev()
        .take_while(|r| r["events"] == 0)
        .count();
    assert!(quiet >= 2, "{results:?}");
    assert_eq!(
        value(&last, "logwarden_detector_empty_intervals", &by),
        quiet as f64
    );
}
