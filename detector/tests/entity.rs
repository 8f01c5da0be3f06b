//! Per-entity detection on the real stack (`cargo xtask stack up`): one client among 10,000
//! starts sending requests from unknown countries (2% of the traffic, all from that client),
//! through the transformer and the sink. A category detector on `httpRequest.clientIp` must flag
//! that client and no other, its monitor must send one alert naming it, and its entity models
//! must stay under their cap while thousands of clients come and go. `evaluate` then scores the
//! run from the scenario's labels: the labelled client's row detects its phase, and no other
//! client has a row.
//!
//! The detector's entities are split in two parts (`category.parts: 2`) scored by two replicas
//! (`detector.shards: 2`): each ends up holding one part, every interval has one summary per
//! part, and each part judged exactly the clients of its part that sent records in the
//! interval (counted from what OpenSearch indexed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{receiver, send};
use pipeline::testkit;
use pipeline::wire::MonitoredField;
use producer::generate::Generator;
use producer::scenario::{FromClient, Phase, Scenario};
use producer::schedule::{Options, Schedule};
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};

const CLIENTS: usize = 10_000;
const MAX_ENTITIES: usize = 2_000;
const SEED: u64 = 23;
/// The parts the entities are split in, and the replicas (one part each).
const PARTS: usize = 2;

fn spec(name: &str, hook: &str) -> String {
    format!(
        r#"
events: {name}events
results: {name}results
checkpoints: {name}checkpoints
alerts: {name}alerts
detectors:
  - name: client-country-detector
    feature: {{field: UNK_country, aggregation: sum}}
    ground_truth: country
    category: {{field: httpRequest.clientIp, max_entities: {MAX_ENTITIES}, idle: 10m, parts: {PARTS}}}
    interval: 2s
    window_delay: 2s
    model: {{history: 0}}
monitors:
  - {{name: client-country-Monitor, detectors: [client-country-detector], channels: [hook]}}
channels:
  - {{name: hook, webhook: {{value: "{hook}"}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_misbehaving_client_among_ten_thousand_is_flagged_and_named_in_one_alert() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("entity", 2).await;
    let name = testkit::unique_name("entity");
    let index = format!("{name}events");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("entity").create().expect("producer");
    let (transformer_stop, transformer) = common::run_transformer(&kafka).await;
    let (sink_stop, sink) = common::run_sink(&kafka, &url, &index).await;

    let (hook, inbox) = receiver().await;
    let replicas: Vec<(String, detector::settings::Settings)> = (0..PARTS)
        .map(|i| {
            let instance = format!("entity-{i}");
            let mut settings = common::settings(&kafka, &url, &spec(&name, &hook), &instance);
            settings.shards = PARTS;
            (instance, settings)
        })
        .collect();
    let results_index = replicas[0].1.spec.results.clone();
    let spec = replicas[0].1.spec.clone();
    let mut running = Vec::new();
    for (instance, settings) in replicas {
        let (service, stop) = testkit::service("detector").await;
        let telemetry = service.telemetry.clone();
        let task = tokio::spawn(async move { detector::service::run(settings, &service).await });
        running.push((instance, stop, task, telemetry));
    }

    // 30 s of normal traffic from 10,000 clients, then 20 s in which 2% of the requests come
    // from one quiet client with the country anomaly's weights, then 10 s of normal traffic.
    let scenario = Scenario::new(
        "one-bad-client",
        Some(200.0),
        vec![
            Phase::normal(Duration::from_secs(30)),
            Phase::anomaly(MonitoredField::Country, Duration::from_secs(20))
                .with_intensity(0.02)
                .from_client(FromClient::Picked),
            Phase::normal(Duration::from_secs(10)),
        ],
    )
    .expect("scenario")
    .with_clients(CLIENTS)
    .expect("clients");
    let start = chrono::Utc::now().timestamp_millis() + 2_000;
    let options = Options {
        seed: SEED,
        ..Options::default()
    };
    let schedule = Schedule::live(&scenario, start, &options).expect("plan");
    let label = schedule
        .labels("entity", "entity-0")
        .into_iter()
        .find(|l| l.entity.is_some())
        .expect("the entity phase's label");
    let bad = label.entity.clone().expect("an entity");
    let labels: Vec<Vec<u8>> = schedule
        .labels("entity", "entity-0")
        .iter()
        .map(|l| serde_json::to_vec(l).expect("json"))
        .collect();
    send(&producer, &kafka.topics.labels, &labels).await;
    let mut generator =
        Generator::with_clients(SEED, "entity-0", "entity", CLIENTS).expect("generator");
    let sent = common::play(&producer, &kafka.topics.raw, &schedule, &mut generator).await;
    tokio::time::sleep(Duration::from_secs(6)).await;

    let alerts: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .collect();
    let flagged = common::results(
        &http,
        &url,
        &results_index,
        json!({"bool": {"filter": [{"range": {"anomaly_grade": {"gt": 0}}}]}}),
    )
    .await;
    let flagged_entities: Vec<String> = flagged
        .iter()
        .filter_map(|r| r["entity"][0]["value"].as_str().map(str::to_owned))
        .collect();
    let summaries = flagged.iter().filter(|r| r["entity"].is_null()).count();
    // Per replica: (shards held, entities with a model, evicted, restored), and its metrics.
    let mut held = Vec::new();
    let mut texts = String::new();
    for (instance, _, _, telemetry) in &running {
        let metrics = telemetry.render();
        // The sample of `name` itself (not of a longer name it prefixes).
        let gauge = |name: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        held.push((
            gauge("logwarden_detector_active"),
            gauge("logwarden_detector_entities"),
            gauge("logwarden_detector_entities_evicted_total"),
            gauge("logwarden_detector_entities_restored_total"),
        ));
        texts.push_str(&format!("--- {instance}\n{metrics}"));
    }
    let entities: Vec<f64> = held.iter().map(|h| h.1).collect();
    let evicted: f64 = held.iter().map(|h| h.2).sum();
    let restored: f64 = held.iter().map(|h| h.3).sum();
    // Each part's summaries, and each record's time and client, as OpenSearch has them.
    common::wait_indexed(&http, &url, &index, sent).await;
    let summaries_by_part = common::results(
        &http,
        &url,
        &results_index,
        json!({"bool": {
            "filter": [{"exists": {"field": "entities.judged"}}],
            "must_not": [{"nested": {"path": "entity", "query": {"exists": {"field": "entity.value"}}}}]
        }}),
    )
    .await;
    let records = clients(&http, &url, &index).await;
    // The evicted models stored in the checkpoints index, one per client.
    let _ = http
        .post(format!("{url}/{name}checkpoints/_refresh"))
        .send()
        .await;
    let stored: Value = http
        .post(format!("{url}/{name}checkpoints/_count"))
        .json(&json!({"query": {"term": {"kind": "entity"}}}))
        .send()
        .await
        .expect("count the stored models")
        .json()
        .await
        .expect("count JSON");
    let stored = stored["count"].as_f64().unwrap_or(-1.0);

    eprintln!(
        "{sent} records; {} flagged intervals of {bad}; {entities:?} entities with a model, {evicted} evicted, {stored} models stored, {restored} restored",
        flagged_entities.len()
    );
    let config = pipeline::config::OpenSearchConfig {
        url: url.clone(),
        ..Default::default()
    };
    let client = pipeline::search::client(&config, Duration::from_secs(30)).expect("client");
    let report = detector::evaluate::evaluate(&spec, &kafka, &client, None).await;
    for (_, stop, _, _) in &running {
        stop.cancel();
    }
    sink_stop.cancel();
    transformer_stop.cancel();
    let mut outcomes = Vec::new();
    for (_, _, task, _) in running {
        outcomes.push(task.await.map(|r| r.map_err(|e| e.to_string())));
    }
    outcomes.push(sink.await.map(|r| r.map_err(|e| e.to_string())));
    outcomes.push(transformer.await.map(|r| r.map_err(|e| e.to_string())));
    common::clean(
        &http,
        &url,
        &[
            format!("{index}-*"),
            index.clone(),
            results_index,
            format!("{name}checkpoints"),
            format!("{name}alerts"),
        ],
    )
    .await;
    for outcome in outcomes {
        assert!(
            matches!(outcome, Ok(Ok(()))),
            "a service failed: {outcome:?}"
        );
    }

    // The bad client, and only it, is flagged, for most of its 10 intervals.
    assert!(
        flagged_entities.len() >= 5 && flagged_entities.iter().all(|e| *e == bad),
        "flagged entities: {flagged_entities:?} (expected {bad}); {sent} records sent"
    );
    assert_eq!(
        summaries,
        flagged_entities.len(),
        "one summary per flagged interval"
    );
    // `evaluate`: the detector's row, then the labelled client's, which detected its phase;
    // no other client flagged.
    let report = report.expect("evaluate");
    let rows: Vec<(Option<&str>, usize, usize, usize)> = report
        .scores
        .iter()
        .map(|s| (s.entity.as_deref(), s.others, s.phases.len(), s.detected()))
        .collect();
    assert_eq!(
        rows,
        [(None, 0, 1, 1), (Some(bad.as_str()), 0, 1, 1)],
        "{}",
        detector::evaluate::table(&report.scores)
    );
    // Every interval has a summary of each part, and each part judged exactly the clients of
    // its part that sent records in the interval.
    let mut intervals: BTreeMap<i64, Vec<(String, u64, usize)>> = BTreeMap::new();
    for summary in &summaries_by_part {
        let (start, end) = (
            summary["data_start_time"].as_i64().expect("start"),
            summary["data_end_time"].as_i64().expect("end"),
        );
        let part = summary["entities"]["part"].as_str().unwrap_or("none");
        let index: usize = part
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(PARTS);
        let clients: BTreeSet<&str> = records
            .iter()
            .filter(|(at, client)| {
                (start..end).contains(at) && pipeline::wire::entity_part(client, PARTS) == index
            })
            .map(|(_, client)| client.as_str())
            .collect();
        let judged = summary["entities"]["judged"].as_u64().unwrap_or(u64::MAX);
        intervals
            .entry(start)
            .or_default()
            .push((part.to_owned(), judged, clients.len()));
    }
    assert!(
        intervals.len() >= 25,
        "{} intervals scored",
        intervals.len()
    );
    for (start, parts) in &intervals {
        let mut names: Vec<&str> = parts.iter().map(|(p, _, _)| p.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["0/2", "1/2"],
            "the summaries of the interval at {start}"
        );
        for (part, judged, clients) in parts {
            assert_eq!(
                judged,
                &(*clients as u64),
                "part {part} of the interval at {start}: judged {judged} clients, {clients} sent records"
            );
        }
    }
    // One alert for the episode, from the part of the bad client, naming it (and its
    // recovery).
    let part = pipeline::wire::entity_part(&bad, PARTS);
    let monitors: BTreeSet<&str> = alerts
        .iter()
        .filter_map(|a| a["monitor"].as_str())
        .collect();
    assert_eq!(
        monitors,
        BTreeSet::from([format!("client-country-Monitor (entities {part}/{PARTS})").as_str()]),
        "alerts: {alerts:#?}"
    );
    let kinds: Vec<(&str, &Value)> = alerts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap_or("?"), &a["entities"]))
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&("alert", &json!([bad]))),
        "alerts: {alerts:#?}"
    );
    assert_eq!(
        kinds.iter().filter(|(kind, _)| *kind == "alert").count(),
        1,
        "alerts: {alerts:#?}"
    );
    // Each replica ended up holding one part; thousands of clients came, each part's models
    // stayed under the cap, the rest were evicted.
    assert!(
        held.iter().all(|h| h.0 == 1.0),
        "shards held: {held:?}\n{texts}"
    );
    assert!(
        entities
            .iter()
            .all(|&n| n > 0.0 && n <= MAX_ENTITIES as f64),
        "{entities:?} entities\n{texts}"
    );
    assert!(
        evicted > 0.0,
        "no eviction with {sent} records from {CLIENTS} clients"
    );
    // Each evicted client's model was stored (one document per client, however often it was
    // evicted), and clients that came back got theirs back: none of them was flagged for it.
    assert!(
        stored > 0.0 && stored <= evicted,
        "{stored} stored models for {evicted} evictions"
    );
    assert!(
        restored > 0.0 && restored <= evicted,
        "{restored} models restored for {evicted} evictions"
    );
}

/// Every record's time (epoch ms) and client in `index`'s daily indices, read with a scroll.
async fn clients(http: &reqwest::Client, url: &str, index: &str) -> Vec<(i64, String)> {
    let _ = http.post(format!("{url}/{index}*/_refresh")).send().await;
    let mut page: Value = http
        .post(format!("{url}/{index}*/_search?scroll=1m"))
        .json(&json!({"size": 5000, "_source": ["@timestamp", "httpRequest.clientIp"]}))
        .send()
        .await
        .expect("search the records")
        .json()
        .await
        .expect("records JSON");
    let mut records = Vec::new();
    loop {
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            break;
        }
        for hit in hits {
            let source = &hit["_source"];
            let at = source["@timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
                .expect("a record's time");
            let client = source["httpRequest"]["clientIp"]
                .as_str()
                .expect("a record's client");
            records.push((at, client.to_owned()));
        }
        let scroll = page["_scroll_id"].as_str().expect("a scroll id").to_owned();
        page = http
            .post(format!("{url}/_search/scroll"))
            .json(&json!({"scroll": "1m", "scroll_id": scroll}))
            .send()
            .await
            .expect("scroll the records")
            .json()
            .await
            .expect("records JSON");
    }
    records
}
