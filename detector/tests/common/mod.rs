//! What the detector's integration tests share: webhook receivers ([`hooks`]), producer
//! helpers, the detector in-process or as a process ([`replica`]), and what OpenSearch holds.

#![allow(dead_code)]

pub mod hooks;
pub mod replica;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

/// Bodies received, with their arrival time (epoch ms).
pub type Inbox = Arc<Mutex<Vec<(i64, Value)>>>;

/// The test's webhook receiver: stores every body with its arrival time.
pub async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(inbox): State<Inbox>, body: axum::Json<Value>| async move {
                    let now = chrono::Utc::now().timestamp_millis();
                    inbox.lock().expect("inbox").push((now, body.0));
                    "ok"
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

/// Streams enriched-shaped records stamped now for `seconds`, 20 every 100 ms (ids unique to
/// this call), `bad` of them with UNK_country = 1 (with none bad, one every 7th round, so the
/// baseline is not flat).
pub async fn stream(producer: &FutureProducer, topic: &str, seconds: u64, bad: usize) {
    let call = pipeline::testkit::unique_name("stream");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for round in 0..seconds * 10 {
        tick.tick().await;
        let now = chrono::Utc::now();
        let batch: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                let record = serde_json::json!({
                    "@timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "UNK_country": u8::from(i < bad || (bad == 0 && i == 0 && round % 7 == 0)),
                    "event_id": format!("{call}{round}-{i}"),
                });
                serde_json::to_vec(&record).expect("json")
            })
            .collect();
        send(producer, topic, &batch).await;
    }
}

/// Sends `payloads` to `topic` (keyed by their index) and waits for every acknowledgement.
pub async fn send(producer: &FutureProducer, topic: &str, payloads: &[Vec<u8>]) {
    let mut deliveries = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let key = i.to_string();
        let mut record = FutureRecord::to(topic).key(&key).payload(payload);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => break deliveries.push(delivery),
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    for delivery in deliveries {
        delivery.await.expect("not cancelled").expect("delivered");
    }
}

/// Plays a producer's `schedule` live to `topic`: each event's record, made by `generator`,
/// sent once the clock reaches its time (every 100 ms); returns how many were sent.
pub async fn play(
    producer: &FutureProducer,
    topic: &str,
    schedule: &producer::schedule::Schedule,
    generator: &mut producer::generate::Generator,
) -> usize {
    let mut events = schedule.events().peekable();
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while events.peek().is_some() {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        let mut batch = Vec::new();
        while let Some(event) = events.next_if(|e| e.timestamp_ms <= now) {
            batch.push(serde_json::to_vec(&generator.record(&event)).expect("json"));
        }
        sent += batch.len();
        send(producer, topic, &batch).await;
    }
    sent
}

/// The results in `index` that match `query` (refreshed first), oldest interval first.
pub async fn results(http: &reqwest::Client, url: &str, index: &str, query: Value) -> Vec<Value> {
    let _ = http.post(format!("{url}/{index}/_refresh")).send().await;
    let answer: Value = http
        .post(format!("{url}/{index}/_search"))
        .json(&serde_json::json!({
            "size": 1000,
            "sort": [{"data_start_time": "asc"}],
            "query": query
        }))
        .send()
        .await
        .expect("search results")
        .json()
        .await
        .expect("results JSON");
    answer["hits"]["hits"]
        .as_array()
        .map(|hits| hits.iter().map(|h| h["_source"].clone()).collect())
        .unwrap_or_default()
}

/// Deletes each name as an index (patterns allowed) and as an index template, ignoring what is
/// not there: a test leaves nothing behind in the shared cluster.
pub async fn clean(http: &reqwest::Client, url: &str, names: &[String]) {
    for name in names {
        let _ = http.delete(format!("{url}/{name}")).send().await;
        // And the index templates the services put for it (`<events>`, `<events>-<source>`,
        // `<results>`): a pattern's are those named after what precedes its `*`.
        let prefix = name.trim_end_matches('*').trim_end_matches('-');
        if !prefix.is_empty() && !prefix.contains('*') {
            pipeline::testkit::delete_index_templates(url, prefix).await;
        }
    }
}

/// Runs the detector in-process; returns its shutdown token, its task and its telemetry (for
/// metrics and readiness).
pub async fn run_replica(
    settings: detector::settings::Settings,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
    pipeline::telemetry::Telemetry,
) {
    let (service, stop) = pipeline::testkit::service("detector").await;
    let telemetry = service.telemetry.clone();
    let task = tokio::spawn(async move {
        detector::service::run(settings, &service)
            .await
            .expect("the detector runs and stops cleanly");
    });
    (stop, task, telemetry)
}

/// The sum of a metric's samples (all label values).
pub fn gauge(telemetry: &pipeline::telemetry::Telemetry, name: &str) -> f64 {
    telemetry
        .render()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A spec on `name`'s own indices with one detector, `detector`, of 1 s intervals closed
/// `window_delay` after their end (YAML durations), `feature` (a YAML mapping), no history; and
/// given a webhook URL, one monitor alerting it.
pub fn spec(
    name: &str,
    detector: &str,
    feature: &str,
    window_delay: &str,
    hook: Option<&str>,
) -> String {
    let mut spec = format!(
        "events: {name}events\nresults: {name}results\ncheckpoints: {name}checkpoints\n\
         detectors:\n  - name: {detector}\n    feature: {feature}\n    interval: 1s\n    \
         window_delay: {window_delay}\n    model: {{history: 0, baseline: 10}}\n"
    );
    if let Some(hook) = hook {
        spec.push_str(&format!(
            "monitors:\n  - {{name: {detector}-monitor, detectors: [{detector}], channels: [hook]}}\n\
             channels:\n  - {{name: hook, webhook: {{value: \"{hook}\"}}}}\n"
        ));
    }
    spec
}

/// Detector settings for a test: the stack's Kafka and OpenSearch, the spec `spec` (YAML), this
/// replica's name, checkpoints every second and a 3 s lease, so restarts and take-overs
/// happen within a test's time.
pub fn settings(
    kafka: &pipeline::kafka::KafkaConfig,
    url: &str,
    spec: &str,
    instance: &str,
) -> detector::settings::Settings {
    let mut raw = detector::settings::RawConfig {
        kafka: kafka.clone(),
        ..detector::settings::RawConfig::default()
    };
    raw.opensearch.url = url.to_owned();
    raw.detector.checkpoint_ms = 1_000;
    raw.detector.lease_ms = 3_000;
    let mut settings =
        detector::settings::Settings::from_raw(raw, Some(instance.into())).expect("settings");
    settings.spec = detector::spec::Spec::parse(spec, "test spec").expect("spec");
    settings
}

/// A webhook channel's YAML (after its name) posting to `url`.
pub fn webhook(url: &str) -> String {
    format!("webhook: {{value: \"{url}\"}}")
}

/// A spec with one detector (`country-anomaly-detector`: the sum of `UNK_country` per second,
/// closed `window_delay` after each second, no history, a baseline of 10 intervals), one monitor
/// telling `channels` (name, the channel's YAML after its name), on indices named after `name`.
pub fn country_spec(name: &str, window_delay: &str, channels: &[(&str, String)]) -> String {
    let names: Vec<&str> = channels.iter().map(|(n, _)| *n).collect();
    let declared: Vec<String> = channels
        .iter()
        .map(|(n, c)| format!("  - {{name: {n}, {c}}}"))
        .collect();
    format!(
        r#"
events: {name}events
results: {name}results
checkpoints: {name}checkpoints
detectors:
  - name: country-anomaly-detector
    feature: {{field: UNK_country}}
    interval: 1s
    window_delay: {window_delay}
    model: {{history: 0, baseline: 10}}
monitors:
  - {{name: UNK_country-Monitor, detectors: [country-anomaly-detector], channels: [{}]}}
channels:
{}
"#,
        names.join(", "),
        declared.join("\n")
    )
}

/// The documents `index` holds (refreshed first), 0 when it does not exist.
pub async fn count(http: &reqwest::Client, url: &str, index: &str) -> u64 {
    let _ = http.post(format!("{url}/{index}/_refresh")).send().await;
    match http.get(format!("{url}/{index}/_count")).send().await {
        Ok(response) => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// Runs the transformer in-process from `raw` to `enriched` with the default rules (a group of
/// its own); returns its shutdown token and its task.
pub async fn run_transformer(
    kafka: &pipeline::kafka::KafkaConfig,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), transformer::service::ServiceError>>,
) {
    let raw = transformer::settings::RawConfig {
        kafka: kafka.clone(),
        transformer: transformer::settings::TransformerConfig {
            group_id: pipeline::testkit::unique_name("detector-test-transformer"),
            ..Default::default()
        },
        ..Default::default()
    };
    let settings = transformer::settings::Settings::from_raw(raw, Some("transformer-0".into()))
        .expect("transformer settings");
    let (service, stop) = pipeline::testkit::service("transformer").await;
    let task = tokio::spawn(async move { transformer::service::run(settings, &service).await });
    (stop, task)
}

/// Runs the sink in-process from `enriched` into the daily indices of `index` (a group of its
/// own, batches every 200 ms); returns its shutdown token and its task.
pub async fn run_sink(
    kafka: &pipeline::kafka::KafkaConfig,
    url: &str,
    index: &str,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), sink::service::ServiceError>>,
) {
    let mut raw = sink::settings::RawConfig {
        kafka: kafka.clone(),
        sink: sink::settings::SinkConfig {
            index: index.to_owned(),
            group_id: pipeline::testkit::unique_name("detector-test-sink"),
            batch_ms: 200,
            ..Default::default()
        },
        ..Default::default()
    };
    raw.opensearch.url = url.to_owned();
    let settings =
        sink::settings::Settings::from_raw(raw, Some("sink-0".into())).expect("sink settings");
    let (service, stop) = pipeline::testkit::service("sink").await;
    let task = tokio::spawn(async move { sink::service::run(settings, &service).await });
    (stop, task)
}

/// A service the test runs in a task ([`run_transformer`], [`run_sink`], the detector): its
/// name, its shutdown token and its task, for [`stop_all`].
pub struct Running {
    name: &'static str,
    stop: tokio_util::sync::CancellationToken,
    outcome: std::pin::Pin<Box<dyn std::future::Future<Output = Outcome>>>,
}

/// How a service's task ended: its own error as text, or why the task itself failed.
type Outcome = Result<Result<(), String>, tokio::task::JoinError>;

impl Running {
    /// The service `name`, stopped by `stop`, running as `task`.
    pub fn new<E: std::fmt::Display + 'static>(
        name: &'static str,
        stop: tokio_util::sync::CancellationToken,
        task: tokio::task::JoinHandle<Result<(), E>>,
    ) -> Self {
        Self {
            name,
            stop,
            outcome: Box::pin(async move { task.await.map(|r| r.map_err(|e| e.to_string())) }),
        }
    }
}

/// Stops the services (every token in order, then each task in order) and says why each one
/// that failed did (e.g. OpenSearch refused an index): a line per failure.
pub async fn stop_all(services: Vec<Running>) -> Vec<String> {
    for service in &services {
        service.stop.cancel();
    }
    let mut failures = Vec::new();
    for Running { name, outcome, .. } in services {
        match outcome.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failures.push(format!("the {name} failed: {err}")),
            Err(err) => failures.push(format!("the {name} task failed: {err}")),
        }
    }
    failures
}

/// What OpenSearch holds in `index` (its daily indices): the sum of `field` (the count of
/// events when `None`) per interval of `interval_ms` (a date histogram on `@timestamp`), for the
/// intervals with events.
pub async fn sums(
    http: &reqwest::Client,
    url: &str,
    index: &str,
    field: Option<&str>,
    interval_ms: i64,
) -> std::collections::BTreeMap<i64, f64> {
    let _ = http.post(format!("{url}/{index}*/_refresh")).send().await;
    let mut histogram = serde_json::json!({
        "date_histogram": {"field": "@timestamp", "fixed_interval": format!("{interval_ms}ms")}
    });
    if let Some(field) = field {
        histogram["aggs"] = serde_json::json!({"value": {"sum": {"field": field}}});
    }
    let answer: Value = http
        .post(format!("{url}/{index}*/_search"))
        .json(&serde_json::json!({"size": 0, "aggs": {"intervals": histogram}}))
        .send()
        .await
        .expect("search the events")
        .json()
        .await
        .expect("histogram JSON");
    answer["aggregations"]["intervals"]["buckets"]
        .as_array()
        .map(|buckets| {
            buckets
                .iter()
                .filter(|b| b["doc_count"].as_u64().unwrap_or(0) > 0)
                .filter_map(|b| {
                    let value = match field {
                        Some(_) => b["value"]["value"].as_f64()?,
                        None => b["doc_count"].as_f64()?,
                    };
                    Some((b["key"].as_i64()?, value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to a minute) until the daily indices of `index` hold `expected` documents.
pub async fn wait_indexed(http: &reqwest::Client, url: &str, index: &str, expected: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(http, url, &format!("{index}*")).await < expected as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink did not index all {expected} records"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The end of a test on `name`'s indices: `detector`'s results and OpenSearch's [`sums`] of
/// `field` per interval, read before the indices (events, results, checkpoints) are deleted.
pub async fn results_and_sums(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    detector: &str,
    field: Option<&str>,
    interval_ms: i64,
) -> (Vec<Value>, std::collections::BTreeMap<i64, f64>) {
    let events = format!("{name}events");
    let found = results(
        http,
        url,
        &format!("{name}results"),
        serde_json::json!({"term": {"detector_id": detector}}),
    )
    .await;
    let expected = sums(http, url, &events, field, interval_ms).await;
    clean(
        http,
        url,
        &[
            format!("{events}*"),
            format!("{name}results"),
            format!("{name}checkpoints"),
        ],
    )
    .await;
    (found, expected)
}

/// Asserts that every interval from the first to the last one with events in `expected`
/// (OpenSearch's [`sums`]), at least `at_least` of them, has exactly one result, whose value is
/// what OpenSearch holds (0 for an interval without events).
pub fn assert_sums(
    results: &[Value],
    expected: &std::collections::BTreeMap<i64, f64>,
    interval_ms: i64,
    at_least: usize,
) {
    let scored: std::collections::BTreeMap<i64, f64> = results
        .iter()
        .filter_map(|r| Some((r["data_start_time"].as_i64()?, r["value"].as_f64()?)))
        .collect();
    assert_eq!(scored.len(), results.len(), "one result per interval");
    let (Some(first), Some(last)) = (expected.keys().next(), expected.keys().last()) else {
        panic!("OpenSearch holds no events");
    };
    let compared: Vec<(i64, Option<f64>, f64)> = (0..=(last - first) / interval_ms)
        .map(|i| first + i * interval_ms)
        .map(|start| {
            let held = expected.get(&start).copied().unwrap_or(0.0);
            (start, scored.get(&start).copied(), held)
        })
        .collect();
    assert!(compared.len() >= at_least, "{compared:?}");
    let wrong: Vec<_> = compared
        .iter()
        .filter(|(_, scored, held)| *scored != Some(*held))
        .collect();
    assert!(
        wrong.is_empty(),
        "intervals missing or not equal to OpenSearch's (start, detector, OpenSearch): {wrong:?}"
    );
}

/// Sends raw WAF records stamped now for `seconds`: 5 to 15 every 100 ms; returns how many.
pub async fn noisy_traffic(
    producer: &FutureProducer,
    topic: &str,
    generator: &mut producer::generate::Generator,
    rng: &mut rand::rngs::StdRng,
    seconds: u64,
) -> usize {
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..seconds * 10 {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        let batch: Vec<Vec<u8>> = (0..rand::Rng::random_range(rng, 5..=15))
            .map(|_| serde_json::to_vec(&generator.next(now, None)).expect("json"))
            .collect();
        sent += batch.len();
        send(producer, topic, &batch).await;
    }
    sent
}
