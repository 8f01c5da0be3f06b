//! What the sink's integration tests share: generated records, producing them, running the
//! services in-process, and reading OpenSearch back.

#![allow(dead_code)]

use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use pipeline::wire::{DeadLetter, SourcePosition};
use producer::generate::Generator;
use rdkafka::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sink::settings::{RawConfig, Settings, SinkConfig};
use tokio_util::sync::CancellationToken;
use transformer::rules::CompiledRules;

/// Epoch milliseconds of the first generated record: 23:50 UTC yesterday, so a run spans two
/// days (two daily indices), both inside the days the sink accepts by default.
pub fn t0() -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64;
    now - now.rem_euclid(DAY_MS) - 10 * 60 * 1_000
}

/// `n` raw records from the producer's generator (seeded), 100 ms apart, as JSON values.
pub fn raw_records(n: usize, seed: u64) -> Vec<Value> {
    let mut generator = Generator::new(seed, "test-0", "sink-test").expect("valid instance");
    let t0 = t0();
    (0..n)
        .map(|i| {
            let log = generator.next(t0 + i as i64 * 100, None);
            serde_json::to_value(&log).expect("a record serializes")
        })
        .collect()
}

/// The records enriched by the default rules as if read from `topic`'s partition 0 at offsets
/// 0.., so event ids are `topic-0-<i>`.
pub fn enriched(records: &[Value], topic: &str) -> Vec<Vec<u8>> {
    let rules = CompiledRules::default_rules().expect("default rules");
    records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let mut out = Vec::new();
            let source = SourcePosition {
                topic: topic.to_owned(),
                partition: 0,
                offset: i as i64,
            };
            rules
                .apply(
                    &serde_json::to_vec(record).expect("json"),
                    &source,
                    &mut out,
                )
                .expect("a generated record is enriched");
            out
        })
        .collect()
}

/// Writes `payloads` to `topic` and waits until all are acknowledged.
pub async fn produce(kafka: &KafkaConfig, topic: &str, payloads: &[Vec<u8>]) {
    let producer: FutureProducer = kafka
        .producer_config("sink-test")
        .create()
        .expect("producer");
    produce_with(&producer, topic, payloads).await;
}

/// Writes `payloads` to `topic` with `producer` and waits until all are acknowledged.
pub async fn produce_with(producer: &FutureProducer, topic: &str, payloads: &[Vec<u8>]) {
    let mut deliveries = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        let mut record = FutureRecord::to(topic).key(&key).payload(payload);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((err, returned)) => {
                    record = returned;
                    assert!(
                        err.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        "producing: {err}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    for delivery in deliveries {
        delivery.await.expect("not cancelled").expect("delivered");
    }
}

/// Sink settings for a test: its private topics, a unique events index, small batches.
pub fn sink_settings(kafka: &KafkaConfig, url: &str, index: &str) -> Settings {
    let mut raw = RawConfig {
        kafka: kafka.clone(),
        sink: SinkConfig {
            index: index.to_owned(),
            group_id: testkit::unique_name("sink-group"),
            batch_records: 1_000,
            batch_ms: 200,
            ..SinkConfig::default()
        },
        ..RawConfig::default()
    };
    raw.opensearch.url = url.to_owned();
    Settings::from_raw(raw, Some("test-0".into())).expect("valid settings")
}

/// A unique events index name for a test.
pub fn unique_index(test: &str) -> String {
    format!("{}events", testkit::unique_name(test))
}

/// A running in-process service: cancel `shutdown` to stop it; `task` ends with its metrics.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<String>,
    pub metrics: pipeline::telemetry::Telemetry,
}

impl Running {
    /// Stops the service and returns its final metrics text.
    pub async fn stop(self) -> String {
        self.shutdown.cancel();
        self.task.await.expect("the service task ends")
    }
}

/// Runs the sink in-process.
pub async fn start_sink(settings: Settings) -> Running {
    let (service, shutdown) = testkit::service("sink").await;
    let metrics = service.telemetry.clone();
    let task = tokio::spawn(async move {
        sink::service::run(settings, &service)
            .await
            .expect("the sink runs and drains");
        service.telemetry.render()
    });
    Running {
        shutdown,
        task,
        metrics,
    }
}

/// Runs the transformer in-process on `kafka`'s topics.
pub async fn start_transformer(kafka: &KafkaConfig) -> Running {
    let raw = transformer::settings::RawConfig {
        kafka: kafka.clone(),
        transformer: transformer::settings::TransformerConfig {
            group_id: testkit::unique_name("transformer-group"),
            ..Default::default()
        },
        ..Default::default()
    };
    let settings =
        transformer::settings::Settings::from_raw(raw, Some("test-0".into())).expect("settings");
    let (service, shutdown) = testkit::service("transformer").await;
    let metrics = service.telemetry.clone();
    let task = tokio::spawn(async move {
        transformer::service::run(settings, &service)
            .await
            .expect("the transformer runs");
        service.telemetry.render()
    });
    Running {
        shutdown,
        task,
        metrics,
    }
}

/// OpenSearch as the tests read it.
pub struct Search {
    pub url: String,
    http: reqwest::Client,
}

impl Search {
    /// The stack's OpenSearch, after checking it answers.
    pub async fn require() -> Self {
        let url = testkit::require_opensearch().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self { url, http }
    }

    /// Documents in `index` (an alias or pattern) after a refresh; 0 when it does not exist.
    /// Retries while the index is still being created (its shard not yet started).
    pub async fn count(&self, index: &str) -> u64 {
        let url = &self.url;
        let mut last = String::new();
        for _ in 0..40 {
            let _ = self
                .http
                .post(format!("{url}/{index}/_refresh?ignore_unavailable=true"))
                .send()
                .await;
            let response = self
                .http
                .get(format!(
                    "{url}/{index}/_count?ignore_unavailable=true&allow_no_indices=true"
                ))
                .send()
                .await
                .expect("count request");
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return 0;
            }
            let body: Value = response.json().await.unwrap_or_default();
            match body["count"].as_u64() {
                Some(count) if status.is_success() => return count,
                _ => last = format!("{status}: {body}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("counting the documents in {index} failed for 10 s; last answer {last}")
    }

    /// Waits until `index` holds `expected` documents (failing after `timeout`, saying how many
    /// it holds), then for `settle` longer to catch any extra.
    pub async fn wait_for_count(&self, index: &str, expected: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count = self.count(index).await;
            if count >= expected {
                tokio::time::sleep(Duration::from_secs(2)).await;
                return self.count(index).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {count} of {expected} documents in {index} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every document's `_source` in `index` (up to 10,000), with its `_index` and `_id` added
    /// as `"_index"` and `"_id"`.
    pub async fn documents(&self, index: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .post(format!("{}/{index}/_search", self.url))
            .json(&serde_json::json!({"size": 10_000, "query": {"match_all": {}}}))
            .send()
            .await
            .expect("search request")
            .json()
            .await
            .expect("search JSON");
        body["hits"]["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("no hits in {body}"))
            .iter()
            .map(|hit| {
                let mut source = hit["_source"].clone();
                source["_index"] = hit["_index"].clone();
                source["_id"] = hit["_id"].clone();
                source
            })
            .collect()
    }

    /// Sends one request to OpenSearch and returns its status and JSON answer (`Null` when
    /// the answer is not JSON), e.g. to create, close or block an index.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}/{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("an OpenSearch request");
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    /// Deletes the test's indices and template (best effort).
    pub async fn clean(&self, index: &str) {
        let _ = self
            .http
            .delete(format!(
                "{}/{index}-*?expand_wildcards=open,closed",
                self.url
            ))
            .send()
            .await;
        pipeline::testkit::delete_index_templates(&self.url, index).await;
    }
}

/// Dead letters read from `dead-letter`: their headers and their value.
pub fn dead_letters(messages: &[rdkafka::message::OwnedMessage]) -> Vec<(DeadLetter, Vec<u8>)> {
    messages
        .iter()
        .map(|m| {
            let letter = DeadLetter::from_headers(m.headers().expect("headers"))
                .expect("dead-letter headers");
            (letter, m.payload().unwrap_or_default().to_vec())
        })
        .collect()
}

/// The value of a metric in a rendered metrics text (the sum over its label sets that contain
/// `labels`), or 0.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(name)
                && line[name.len()..].starts_with(['{', ' '])
                && line.contains(labels)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Streams `payloads` to `topic` in the background, `per_tick` records every 100 ms.
pub fn stream(
    kafka: &KafkaConfig,
    topic: &str,
    payloads: Vec<Vec<u8>>,
    per_tick: usize,
) -> tokio::task::JoinHandle<()> {
    let producer: FutureProducer = kafka
        .producer_config("sink-test-stream")
        .create()
        .expect("producer");
    let topic = topic.to_owned();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for chunk in payloads.chunks(per_tick) {
            tick.tick().await;
            produce_with(&producer, &topic, chunk).await;
        }
    })
}

/// What a sink showed through an OpenSearch outage mid-stream.
#[derive(Debug)]
pub struct Outage {
    /// Records streamed in all.
    pub records: usize,
    /// Documents indexed when the outage began.
    pub before: u64,
    /// Metrics rendered during the outage.
    pub during: String,
    /// `/readyz` during the outage: ready, and why not.
    pub ready_during: (bool, String),
    /// Documents indexed once the sink caught up.
    pub count: u64,
    /// Metrics rendered after it caught up.
    pub after: String,
    /// The final metrics, at shutdown.
    pub last: String,
}

/// What a user checks after an outage: it began mid-stream; back-pressure and `/readyz` showed
/// it; every record is indexed exactly once; back-pressure is gone; retries were counted and
/// nothing was dead-lettered.
pub fn assert_outage_survived(outage: &Outage) {
    let Outage {
        records,
        before,
        during,
        ready_during: (ready, why),
        count,
        after,
        last,
    } = outage;
    assert!(
        (*before as usize) < *records,
        "the outage began mid-stream ({before} of {records} already indexed)"
    );
    assert_eq!(
        metric(during, "logwarden_sink_backpressure", ""),
        1.0,
        "back-pressure shows during the outage"
    );
    assert!(
        !ready && why.contains("opensearch"),
        "/readyz is not ready during the outage: {why}"
    );
    assert_eq!(*count, *records as u64, "exactly every record, once");
    assert_eq!(metric(after, "logwarden_sink_backpressure", ""), 0.0);
    assert!(
        metric(
            last,
            "logwarden_sink_bulk_requests_total",
            "result=\"retry\""
        ) >= 1.0,
        "retries were counted"
    );
    assert_eq!(metric(last, "logwarden_sink_dead_letters_total", ""), 0.0);
}
