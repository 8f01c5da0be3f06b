//! The pipeline as Prometheus sees it: a real Prometheus (Debian's) scrapes the transformer,
//! the sink, the detector and the producer, run in-process on the test's own topics and
//! indices, and evaluates the chart's rule file, while steady traffic flows, one poison record
//! is dead-lettered and the producer injects a burst the detector flags and alerts a webhook
//! about (the webhook refuses the first delivery, so a failure is counted and retried). Then, through Prometheus' HTTP API: every target is up; the records the transformer
//! wrote are exactly the documents OpenSearch holds; the alerts sent are the alerts the webhook
//! received; every query of every dashboard (its variables on "All") and every recording rule
//! returns data; every alert's expression parses and each metric it reads has series; every
//! rule is loaded with health ok, and the dead-letter alert fires.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use deploy::observe;
use faults::prometheus::Prometheus;
use faults::stages::Stage;
use faults::{Pipeline, Shape, traffic};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

/// Records in the producer's burst, and their rate: four times the steady traffic, for 4 s.
const BURST: u64 = 800;
const BURST_RATE: f64 = 200.0;

/// A webhook receiver that refuses the first request (503) and accepts the rest, keeping what
/// it accepted.
struct Hook {
    url: String,
    requests: Arc<Mutex<Vec<(StatusCode, Value)>>>,
}

impl Hook {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the webhook receiver");
        let url = format!("http://{}/alerts", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&requests);
        let app = Router::new().route(
            "/alerts",
            post(move |axum::Json(body): axum::Json<Value>| async move {
                let mut requests = kept.lock().expect("the receiver's lock");
                let status = if requests.is_empty() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                requests.push((status, body));
                status
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, requests }
    }

    /// Requests answered with `status`.
    fn count(&self, status: StatusCode) -> usize {
        self.requests
            .lock()
            .map(|r| r.iter().filter(|(s, _)| *s == status).count())
            .unwrap_or_default()
    }

    /// Alerts received (accepted).
    fn received(&self) -> usize {
        self.count(StatusCode::OK)
    }
}

/// The producer, in-process with its own `/metrics` at once: after `delay`, `count` records
/// at `rate` a second.
async fn producer(
    kafka: &pipeline::kafka::KafkaConfig,
    delay: Duration,
    count: u64,
    rate: f64,
) -> Stage {
    let raw = producer::settings::RawConfig {
        kafka: kafka.clone(),
        generator: producer::settings::GeneratorConfig {
            rate: Some(rate),
            count: Some(count),
            seed: Some(53),
            ..Default::default()
        },
        ..Default::default()
    };
    Stage::spawn("producer", move |service| async move {
        tokio::time::sleep(delay).await;
        // Its schedule starts now, not when it was set up.
        let settings = producer::settings::Settings::from_raw(
            raw,
            producer::run::now_ms(),
            Some("prometheus-0".into()),
        )
        .map_err(|err| format!("producer settings: {err}"))?;
        producer::run::run(settings, &service)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    })
    .await
}

/// Sends one record to `raw` that is not JSON: the transformer dead-letters it.
async fn poison(kafka: &pipeline::kafka::KafkaConfig) {
    let producer: FutureProducer = kafka
        .producer_config("prometheus-poison")
        .create()
        .expect("a producer");
    producer
        .send(
            FutureRecord::<(), _>::to(&kafka.topics.raw).payload("not JSON"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(err, _)| panic!("sending the poison record: {err}"));
}

/// Polls `check` every second for up to `limit`; whether it came true.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_pipeline_and_every_dashboard_and_rule_query_has_data() {
    let started = tokio::time::Instant::now();
    let hook = Hook::start().await;
    let shape = Shape {
        rate: 50,
        interval_ms: 2_000,
        window_delay_ms: 3_000,
        request_timeout_ms: 10_000,
    };
    let mut pipeline = Pipeline::start("prometheus", shape).await;
    pipeline.webhook = Some(hook.url.clone());
    pipeline.wait_ready().await;
    let steady = traffic::start_until(&pipeline.kafka, shape.rate, 47);
    pipeline.start_detector_on_traffic().await;
    // The burst starts 3 s after the producer serves /metrics: Prometheus (ready in about a
    // second) scrapes by then and sees the detector flag it.
    let producer = producer(&pipeline.kafka, Duration::from_secs(3), BURST, BURST_RATE).await;
    let rules = observe::rules_file();
    let prometheus = Prometheus::start(
        &[
            ("logwarden-transformer", pipeline.transformer.metrics),
            ("logwarden-sink", pipeline.sink.metrics),
            ("logwarden-detector", pipeline.detector().metrics),
            ("logwarden-producer", producer.metrics),
        ],
        &[&rules],
    )
    .await;
    poison(&pipeline.kafka).await;

    let mut failures = Vec::new();
    let alerted = eventually(Duration::from_secs(60), async || hook.received() > 0).await;
    if !alerted {
        failures.push("no alert reached the webhook within 60 s of the burst".to_owned());
    }
    // A few quiet intervals after the burst, then the traffic ends.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let sent = steady.finish().await;
    let expected = u64::try_from(sent.records).unwrap_or(u64::MAX) + BURST;
    let settled = eventually(pipeline.catch_up(), async || {
        pipeline.search.count(&pipeline.events).await == Some(expected)
    })
    .await;
    let documents = pipeline.search.count(&pipeline.events).await.unwrap_or(0);
    if !settled {
        failures.push(format!(
            "OpenSearch holds {documents} documents, not the {expected} records sent"
        ));
    }
    // Deliveries settle (nothing pending) and Prometheus has scraped the last counts.
    let delivered = eventually(Duration::from_secs(30), async || {
        prometheus
            .value("sum(logwarden_detector_alerts_pending)")
            .await
            .unwrap_or(0.0)
            == 0.0
            && prometheus
                .value("sum(logwarden_detector_alerts_sent_total)")
                .await
                .is_some_and(|sent| sent == hook.received() as f64)
    })
    .await;
    prometheus.scrape().await;
    let span = started.elapsed();

    // Every target up.
    let targets = prometheus
        .api("targets", &[("state", "active".into())])
        .await
        .unwrap_or_else(|err| panic!("/api/v1/targets: {err}"));
    let health: Vec<(String, String)> = targets["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                t["health"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut jobs: Vec<&str> = health.iter().map(|(job, _)| job.as_str()).collect();
    jobs.sort_unstable();
    let all = [
        "logwarden-detector",
        "logwarden-producer",
        "logwarden-sink",
        "logwarden-transformer",
    ];
    if jobs != all {
        failures.push(format!("the targets are {jobs:?}, not {all:?}"));
    }
    for (job, state) in &health {
        if state != "up" {
            failures.push(format!("target {job} is {state}"));
        }
    }

    // Records out of the transformer = documents in OpenSearch; alerts sent = alerts received.
    let records_out = prometheus
        .value("sum(logwarden_transformer_records_out_total)")
        .await;
    if records_out != Some(documents as f64) {
        failures.push(format!(
            "the transformer wrote {records_out:?} records; OpenSearch holds {documents} documents"
        ));
    }
    let produced = prometheus
        .value("sum(logwarden_producer_records_total)")
        .await;
    if produced != Some(BURST as f64) {
        failures.push(format!(
            "the producer reports {produced:?} records, not {BURST}"
        ));
    }
    let alerts_sent = prometheus
        .value("sum(logwarden_detector_alerts_sent_total)")
        .await;
    let received = hook.received();
    if !delivered || alerts_sent != Some(received as f64) {
        failures.push(format!(
            "Prometheus counts {alerts_sent:?} alerts sent; the webhook received {received}"
        ));
    }
    let failed = prometheus
        .value("sum(logwarden_detector_alerts_failed_total)")
        .await;
    let refused = hook.count(StatusCode::SERVICE_UNAVAILABLE);
    if failed != Some(refused as f64) {
        failures.push(format!(
            "Prometheus counts {failed:?} failed deliveries; the webhook refused {refused}"
        ));
    }
    let anomalies = prometheus
        .value("sum(logwarden_detector_anomalies_total)")
        .await
        .unwrap_or(0.0);
    if anomalies < 1.0 {
        failures.push("the detector flagged no interval of the burst".to_owned());
    }

    // Every dashboard query, as Grafana sends it with every variable on "All", over the run.
    let mut queries = 0;
    for dashboard in observe::dashboards() {
        for query in dashboard.queries() {
            queries += 1;
            let expr = observe::substitute(&query.expr, "10s");
            match prometheus.query_range(&expr, span).await {
                Ok(series) if series.is_empty() => {
                    failures.push(format!("{}: no data: {expr}", query.place));
                }
                Ok(_) => {}
                Err(err) => failures.push(format!("{}: {err}: {expr}", query.place)),
            }
        }
        for (name, kind, query) in dashboard.variables() {
            if kind != "query" {
                continue;
            }
            let Some((selector, label)) = observe::label_values(&query) else {
                failures.push(format!("{} variable {name}: {query}", dashboard.file));
                continue;
            };
            let selector = observe::substitute(selector, "10s");
            match prometheus.query(&selector).await {
                Ok(series) if series.is_empty() => failures.push(format!(
                    "{} variable {name}: no series for {selector}",
                    dashboard.file
                )),
                // A plain scrape has no `namespace` label: "All" (`.*`) matches its absence.
                Ok(series) if label != "namespace" => {
                    if !series.iter().any(|s| s["metric"][label].is_string()) {
                        failures.push(format!(
                            "{} variable {name}: {selector} has no label {label}",
                            dashboard.file
                        ));
                    }
                }
                Ok(_) => {}
                Err(err) => failures.push(format!("{} variable {name}: {err}", dashboard.file)),
            }
        }
    }

    // Every rule: recording rules return data; an alert's expression parses, each metric it
    // reads has series (a healthy pipeline leaves most alert conditions empty).
    let file_rules = observe::file_rules();
    for rule in &file_rules {
        match prometheus.query_range(&rule.expr, span).await {
            Err(err) => failures.push(format!("rule {}: {err}", rule.name)),
            Ok(series) if series.is_empty() && !rule.alert => {
                failures.push(format!("rule {}: no data", rule.name));
            }
            Ok(_) => {}
        }
        let mut read = observe::metric_patterns(&rule.expr);
        if rule.expr.contains("up{") {
            read.push("up".to_owned());
        }
        for metric in read {
            let selector = format!("{{__name__=~\"{metric}\"}}");
            if prometheus
                .query(&selector)
                .await
                .is_ok_and(|s| s.is_empty())
            {
                failures.push(format!("rule {}: no series of {metric}", rule.name));
            }
        }
    }
    let loaded = prometheus
        .api("rules", &[])
        .await
        .unwrap_or_else(|err| panic!("/api/v1/rules: {err}"));
    let loaded: Vec<(String, String, String)> = loaded["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["health"].as_str().unwrap_or_default().to_owned(),
                r["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut names: Vec<&str> = loaded.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut wanted: Vec<&str> = file_rules.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    wanted.sort_unstable();
    if names != wanted {
        failures.push(format!(
            "Prometheus loaded the rules {names:?}, not {wanted:?}"
        ));
    }
    for (name, health, _) in &loaded {
        if health != "ok" {
            failures.push(format!("rule {name}: health {health}"));
        }
    }
    // The poison record's dead letter: the alert with no `for` fires.
    if !loaded
        .iter()
        .any(|(name, _, state)| name == "LogwardenDeadLettersRising" && state == "firing")
    {
        failures.push("LogwardenDeadLettersRising is not firing after a dead letter".to_owned());
    }

    eprintln!(
        "{} targets, {documents} documents, {received} alerts, {anomalies} anomalies, {queries} dashboard queries, {} rules, {:.0} s",
        health.len(),
        file_rules.len(),
        span.as_secs_f64()
    );
    prometheus.stop();
    let mut exits: Vec<String> = producer.stop().await.err().into_iter().collect();
    exits.extend(pipeline.stop().await);
    failures.extend(exits);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
