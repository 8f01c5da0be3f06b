//! The ingest service's `/metrics` as Prometheus scrapes it, after curl sent HEC events through
//! it to the stack's Kafka: promtool finds nothing to say, the counters are what was accepted
//! and refused, the process metrics are there.

mod common;

use common::{Ingest, TOKEN, curl};
use pipeline::testkit::metrics;

#[tokio::test]
async fn metrics_follow_the_conventions_and_count_the_traffic() {
    let ingest = Ingest::start("ingest-metrics", &[]).await;
    let url = format!("{}/services/collector/event", ingest.url());
    let events = r#"{"event":"one"}{"event":"two"}{"event":"three"}"#;
    let accepted = curl(&[
        &url,
        "-H",
        &format!("Authorization: Splunk {TOKEN}"),
        "-d",
        events,
    ])
    .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    let refused = curl(&[
        &url,
        "-H",
        "Authorization: Splunk wrong-token",
        "-d",
        events,
    ])
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.json());
    assert_eq!(ingest.raw(3).await.len(), 3);
    let text = metrics::scrape(ingest.telemetry).await;
    ingest.stop().await;

    metrics::assert_conventional(&text);
    let value = |name: &str, labels: &[(&str, &str)]| metrics::value(&text, name, labels);
    assert_eq!(
        value("logwarden_ingest_records_total", &[("source", "splunk")]),
        3.0
    );
    assert_eq!(
        value(
            "logwarden_ingest_refused_total",
            &[("receiver", "hec"), ("reason", "invalid_token")]
        ),
        1.0
    );
}
