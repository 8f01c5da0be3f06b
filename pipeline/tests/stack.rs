//! The foundation's claims, checked against the real local stack (`cargo xtask stack up`):
//! records round-trip through Kafka with the shared client presets, OpenSearch runs with the
//! job-scheduler plugin and indexes and searches, and a service's telemetry server exposes its
//! metrics and readiness.

use std::time::Duration;

use opensearch::http::transport::Transport;
use opensearch::indices::IndicesDeleteParts;
use opensearch::{IndexParts, OpenSearch, SearchParts};
use pipeline::kafka::{TopicOutcome, ensure_topics};
use pipeline::service::Service;
use pipeline::telemetry::TelemetryConfig;
use pipeline::testkit;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn opensearch_client(url: &str) -> OpenSearch {
    OpenSearch::new(Transport::single_node(url).expect("valid OpenSearch URL"))
}

#[tokio::test]
async fn records_round_trip_through_kafka_in_order_per_key() {
    let kafka = testkit::kafka_with_private_topics("roundtrip", 4).await;
    let topic = kafka.topics.raw.clone();

    let producer: FutureProducer = kafka
        .producer_config("test-producer")
        .create()
        .expect("producer");
    let sent: Vec<(String, String)> = (0..500)
        .map(|i| (format!("key-{}", i % 7), format!("{{\"n\":{i}}}")))
        .collect();
    // Queue everything first, then await the deliveries: pipelined, as the services do.
    let mut deliveries = Vec::with_capacity(sent.len());
    for (key, value) in &sent {
        let queued = producer.send_result(FutureRecord::to(&topic).key(key).payload(value));
        deliveries.push(queued.map_err(|(err, _)| err).expect("queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("not cancelled").expect("delivered");
    }

    let consumer: StreamConsumer = kafka
        .consumer_config("test-consumer", &testkit::unique_name("roundtrip-group"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut received: Vec<(String, String)> = Vec::new();
    while received.len() < sent.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records arrive within 30 s")
            .expect("consume");
        received.push((
            String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key"),
            message
                .payload_view::<str>()
                .expect("payload")
                .expect("utf-8 payload")
                .to_owned(),
        ));
    }
    assert_eq!(received.len(), 500);
    // Every record arrived once, and per key in the order it was sent.
    for k in 0..7 {
        let key = format!("key-{k}");
        let want: Vec<_> = sent.iter().filter(|(kk, _)| *kk == key).collect();
        let got: Vec<_> = received.iter().filter(|(kk, _)| *kk == key).collect();
        assert_eq!(got, want, "records of {key}");
    }
}

#[tokio::test]
async fn ensuring_topics_twice_creates_once() {
    let kafka = testkit::require_kafka().await;
    let name = format!("{}topic", testkit::unique_name("ensure"));
    let specs = [pipeline::kafka::TopicSpec {
        name: name.clone(),
        partitions: 3,
        replication_factor: 1,
    }];
    let first = ensure_topics(&kafka, &specs).await.expect("first");
    let second = ensure_topics(&kafka, &specs).await.expect("second");
    assert_eq!(first, vec![(name.clone(), TopicOutcome::Created)]);
    assert_eq!(second, vec![(name.clone(), TopicOutcome::Existed)]);
    let info = pipeline::kafka::cluster_info(&kafka, Duration::from_secs(10))
        .await
        .expect("metadata");
    assert_eq!(info.topics.get(&name), Some(&3));
}

#[tokio::test]
async fn the_stack_topics_exist() {
    let kafka = testkit::require_kafka().await;
    let info = pipeline::kafka::cluster_info(&kafka, Duration::from_secs(10))
        .await
        .expect("metadata");
    assert_eq!(
        info.brokers.len(),
        1,
        "one-node cluster: {:?}",
        info.brokers
    );
    for topic in ["raw", "enriched", "dead-letter", "labels", "anomalies"] {
        assert!(
            info.topics.contains_key(topic),
            "`{topic}` missing after `stack up`: {:?}",
            info.topics.keys()
        );
    }
}

#[tokio::test]
async fn opensearch_lists_the_job_scheduler_plugin() {
    let url = testkit::require_opensearch().await;
    let client = opensearch_client(&url);
    let plugins: Value = client
        .cat()
        .plugins()
        .format("json")
        .send()
        .await
        .expect("_cat/plugins")
        .json()
        .await
        .expect("json");
    let components: Vec<&str> = plugins
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["component"].as_str())
        .collect();
    assert!(
        components.contains(&"opensearch-job-scheduler"),
        "plugins: {components:?}"
    );
}

#[tokio::test]
async fn opensearch_indexes_and_searches_a_document() {
    let url = testkit::require_opensearch().await;
    let client = opensearch_client(&url);
    let index = format!("{}docs", testkit::unique_name("stack"));
    let document = json!({
        "@timestamp": "2026-11-23T10:00:00.000Z",
        "action": "BLOCK",
        "httpRequest": {"country": "XX"},
        "B_action": 1,
    });
    let indexed = client
        .index(IndexParts::IndexId(&index, "event-1"))
        .body(&document)
        .refresh(opensearch::params::Refresh::True)
        .send()
        .await
        .expect("index request");
    assert!(
        indexed.status_code().is_success(),
        "{:?}",
        indexed.text().await
    );

    let found: Value = client
        .search(SearchParts::Index(&[&index]))
        .body(json!({"query": {"term": {"action.keyword": "BLOCK"}}}))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(found["hits"]["total"]["value"], 1, "{found}");
    assert_eq!(found["hits"]["hits"][0]["_id"], "event-1");
    assert_eq!(found["hits"]["hits"][0]["_source"], document);

    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&index]))
        .send()
        .await
        .expect("delete index");
}

#[tokio::test]
async fn a_service_serves_its_metrics_and_readiness() {
    let shutdown = CancellationToken::new();
    let config = TelemetryConfig {
        listen: Some("127.0.0.1:0".parse().expect("address")),
        ..TelemetryConfig::default()
    };
    let service = Service::start_with("testsvc", &config, 0, shutdown.clone())
        .await
        .expect("service starts");
    let records = prometheus::IntCounterVec::new(
        prometheus::Opts::new("testsvc_records_total", "Records handled."),
        &["outcome"],
    )
    .expect("metric");
    service
        .telemetry
        .registry
        .register(Box::new(records.clone()))
        .expect("register");
    records.with_label_values(&["ok"]).inc_by(42);
    service.telemetry.health.register("kafka", "connecting");

    let base = format!("http://{}", service.server.local_addr);
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("body");
    assert!(
        text.contains("logwarden_testsvc_records_total{outcome=\"ok\"} 42"),
        "{text}"
    );
    assert!(
        text.contains("logwarden_build_info{service=\"testsvc\""),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");

    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let not_ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(not_ready.status(), 503);
    assert_eq!(not_ready.text().await.expect("body"), "kafka: connecting\n");
    service.telemetry.health.ready("kafka");
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), service.server.task)
        .await
        .expect("server stops on shutdown")
        .expect("server task");
}

#[tokio::test]
async fn group_lag_counts_what_a_group_has_not_committed() {
    let kafka = testkit::kafka_with_private_topics("lag", 2).await;
    let topic = kafka.topics.raw.clone();
    let producer: FutureProducer = kafka
        .producer_config("lag-producer")
        .create()
        .expect("producer");
    for i in 0..10 {
        let payload = format!("{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&payload).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)
            .expect("delivered");
    }
    let group = testkit::unique_name("lag-group");
    let lag = |kafka: pipeline::kafka::KafkaConfig, group: String, topic: String| async move {
        pipeline::kafka::group_lag(&kafka, &group, &topic, Duration::from_secs(10))
            .await
            .expect("lag")
    };
    assert_eq!(
        lag(kafka.clone(), group.clone(), topic.clone()).await,
        10,
        "nothing committed yet"
    );

    let consumer: StreamConsumer = kafka
        .consumer_config("lag-consumer", &group)
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    for _ in 0..10 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("arrives")
            .expect("consumed");
        consumer
            .store_offset_from_message(&message)
            .expect("stored");
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("committed");
    assert_eq!(lag(kafka, group, topic).await, 0, "all committed");
}
