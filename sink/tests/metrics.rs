//! The sink's `/metrics` as Prometheus scrapes it, after real traffic from the stack's Kafka
//! into its OpenSearch: promtool finds nothing to say, the counters are what was sent and
//! indexed, the consumer lag of every `enriched` partition goes to 0 once caught up, and the
//! process metrics are there.

mod common;

use std::time::Duration;

use common::Search;
use pipeline::testkit::{self, metrics};

const DOCUMENTS: usize = 1_500;
const NOT_JSON: usize = 5;
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_conventions_and_count_the_traffic() {
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-metrics", PARTITIONS).await;
    let index = common::unique_index("sink-metrics");
    let records = common::raw_records(DOCUMENTS, 7);
    let mut payloads = common::enriched(&records, &kafka.topics.raw);
    payloads.extend((0..NOT_JSON).map(|i| format!("{{\"cut\": {i}").into_bytes()));
    common::produce(&kafka, &kafka.topics.enriched, &payloads).await;

    let (service, shutdown) = testkit::service("sink").await;
    let telemetry = service.server.local_addr;
    let settings = common::sink_settings(&kafka, &search.url, &index);
    let task = tokio::spawn(async move { sink::service::run(settings, &service).await });
    let indexed = search
        .wait_for_count(&index, DOCUMENTS as u64, Duration::from_secs(120))
        .await;
    let text = metrics::wait_until_caught_up(
        telemetry,
        &kafka.topics.enriched,
        PARTITIONS,
        Duration::from_secs(60),
    )
    .await;
    shutdown.cancel();
    task.await
        .expect("the service task ends")
        .expect("the sink drains and stops");
    search.clean(&index).await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert_eq!(indexed, DOCUMENTS as u64);
    metrics::assert_conventional(&text);
    let value = |name: &str, labels: &[(&str, &str)]| metrics::value(&text, name, labels);
    let documents = DOCUMENTS as f64;
    assert_eq!(
        value("logwarden_sink_records_in_total", &[]),
        documents + NOT_JSON as f64
    );
    assert_eq!(
        value("logwarden_sink_items_total", &[("outcome", "indexed")]),
        documents
    );
    assert_eq!(
        value("logwarden_sink_items_total", &[("outcome", "rejected")]),
        0.0
    );
    assert_eq!(
        value(
            "logwarden_sink_dead_letters_total",
            &[("reason", "not_json")]
        ),
        NOT_JSON as f64
    );
    // Every document went in some bulk request, each answered in full.
    assert_eq!(value("logwarden_sink_batch_records_sum", &[]), documents);
    let requests = value("logwarden_sink_bulk_requests_total", &[("result", "ok")]);
    assert!(requests >= 1.0, "{requests} bulk requests");
    assert_eq!(value("logwarden_sink_batch_records_count", &[]), requests);
    assert_eq!(value("logwarden_sink_bulk_seconds_count", &[]), requests);
    assert_eq!(value("logwarden_sink_backpressure", &[]), 0.0);
    assert_eq!(value("logwarden_sink_records_in_flight", &[]), 0.0);
}
