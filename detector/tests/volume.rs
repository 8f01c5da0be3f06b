//! Detection robust to volume, on the real stack (`cargo xtask stack up`): the default spec's
//! seed detectors (ratios), trained on a normal history, watch a scenario the producer plays
//! live: normal traffic, a 3x surge of normal traffic, a smooth cycle of the rate, a campaign in
//! 5% of the requests, and a slow ramp of bad requests. The surge and the cycle must give no
//! alert; the campaign and the ramp must each get one from their monitor. `evaluate` then scores
//! the run from the producer's labels: no false alert, both phases detected, and its Markdown
//! report says so.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{receiver, send};
use detector::settings::{DetectorConfig, RawConfig, Settings};
use detector::spec::{Secret, Spec};
use pipeline::testkit;
use pipeline::wire::{LabelKind, MonitoredField};
use producer::generate::Generator;
use producer::scenario::{Intensity, Phase, RateCurve, Scenario};
use producer::schedule::{Options, Schedule};
use rdkafka::producer::FutureProducer;
use serde_json::Value;

const INTERVAL_MS: i64 = 2_000;
const RATE: f64 = 50.0;
const HISTORY_MS: i64 = 480_000;

fn seconds(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The live scenario; phase indices are the labels' `phase`.
fn scenario() -> Scenario {
    Scenario::new(
        "volume",
        Some(RATE),
        vec![
            Phase::normal(seconds(12)),
            Phase::normal(seconds(20)).with_rate(RateCurve::times(3.0)),
            Phase::normal(seconds(8)),
            Phase::normal(seconds(30)).with_rate(RateCurve::sine(RATE, 35.0, seconds(30))),
            Phase::normal(seconds(8)),
            Phase::anomaly(MonitoredField::Country, seconds(20)).with_intensity(0.05),
            Phase::normal(seconds(10)),
            Phase::anomaly(MonitoredField::HttpStatus, seconds(30))
                .with_intensity(Intensity::ramp(0.0, 0.2)),
            Phase::normal(seconds(10)),
        ],
    )
    .expect("a valid scenario")
}

fn settings(kafka: &pipeline::kafka::KafkaConfig, url: &str, index: &str, hook: &str) -> Settings {
    let mut spec = Spec::default_spec().expect("default spec");
    spec.retain_detectors(|d| d.feature.filter.is_none());
    let name = testkit::unique_name("volume");
    spec.events = index.to_owned();
    spec.results = format!("{name}results");
    spec.checkpoints = format!("{name}checkpoints");
    spec.alerts = format!("{name}alerts");
    for detector in &mut spec.detectors {
        detector.interval = Duration::from_millis(INTERVAL_MS as u64);
        detector.window_delay = Duration::from_millis(1_000);
        detector.model.history = (HISTORY_MS / INTERVAL_MS) as usize;
    }
    spec.channels[0].webhook = Some(Secret {
        env: None,
        file: None,
        value: Some(hook.to_owned()),
    });
    let mut raw = RawConfig {
        kafka: kafka.clone(),
        detector: DetectorConfig::default(),
        ..RawConfig::default()
    };
    raw.opensearch.url = url.to_owned();
    let mut settings = Settings::from_raw(raw, Some("volume-0".into())).expect("settings");
    settings.spec = spec;
    settings
}

fn interval_start(alert: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(alert["interval"]["start"].as_str().unwrap_or(""))
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surge_and_a_cycle_stay_quiet_while_a_subtle_campaign_and_a_ramp_alert() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("volume", 2).await;
    let index = format!("{}events", testkit::unique_name("volume"));
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("volume").create().expect("producer");
    let mut generator = Generator::new(11, "volume-0", "volume").expect("generator");
    let (transformer_stop, transformer) = common::run_transformer(&kafka).await;
    let (sink_stop, sink) = common::run_sink(&kafka, &url, &index).await;

    // Normal history at the scenario's rate, ending now.
    let now = chrono::Utc::now().timestamp_millis();
    let history =
        Scenario::normal(RATE, Some(Duration::from_millis(HISTORY_MS as u64))).expect("history");
    let history = Schedule::backfill(&history, now, None, &Options::default()).expect("plan");
    let payloads: Vec<Vec<u8>> = history
        .events()
        .map(|event| serde_json::to_vec(&generator.record(&event)).expect("json"))
        .collect();
    let expected = payloads.len();
    send(&producer, &kafka.topics.raw, &payloads).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while common::count(&http, &url, &format!("{index}*")).await < expected as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the history did not reach OpenSearch"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (hook, inbox) = receiver().await;
    let settings = settings(&kafka, &url, &index, &hook);
    let spec = settings.spec.clone();
    let (service, stop) = testkit::service("detector").await;
    let detector = tokio::spawn(async move { detector::service::run(settings, &service).await });

    // The scenario, live, with its labels on the labels topic.
    let start = chrono::Utc::now().timestamp_millis() + 2_000;
    let options = Options {
        seed: 11,
        ..Options::default()
    };
    let schedule = Schedule::live(&scenario(), start, &options).expect("plan");
    let labels = schedule.labels("volume", "volume-0");
    let label_payloads: Vec<Vec<u8>> = labels
        .iter()
        .map(|l| serde_json::to_vec(l).expect("json"))
        .collect();
    send(&producer, &kafka.topics.labels, &label_payloads).await;
    common::play(&producer, &kafka.topics.raw, &schedule, &mut generator).await;
    // The last intervals close (interval + delay) and alerts go out.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let phases = schedule.phases();
    let span = |i: usize| (phases[i].start_ms, phases[i].end_ms.expect("an end"));
    let alerts: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .filter(|body| body["kind"] == "alert")
        .collect();
    let during = |(from, to): (i64, i64)| -> Vec<String> {
        alerts
            .iter()
            .filter(|a| (from..to).contains(&interval_start(a)))
            .map(|a| a["monitor"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    let mut failures = Vec::new();
    // Normal traffic, however its rate moves: no alert (an anomaly phase's tail may take one
    // interval after its end, so the phases after the two anomalies start one interval late).
    for (i, name) in [
        (0, "normal"),
        (1, "3x surge"),
        (2, "normal"),
        (3, "cycle"),
        (4, "normal"),
    ] {
        let quiet = during(span(i));
        if !quiet.is_empty() {
            failures.push(format!("alerts during the {name} phase: {quiet:?}"));
        }
    }
    for i in [6, 8] {
        let (from, to) = span(i);
        let quiet = during((from + INTERVAL_MS, to));
        if !quiet.is_empty() {
            failures.push(format!("alerts in the normal phase {i}: {quiet:?}"));
        }
    }
    for (i, monitor) in [(5, "UNK_country-Monitor"), (7, "B_httpstatus-Monitor")] {
        let (from, to) = span(i);
        let got = during((from, to + INTERVAL_MS));
        if !got.iter().any(|m| m == monitor) || got.iter().any(|m| m != monitor) {
            failures.push(format!("phase {i}: expected {monitor}, got {got:?}"));
        }
    }

    // The surge really was three times the traffic, and its share of bad requests stayed low.
    let results = common::results(
        &http,
        &url,
        &spec.results,
        serde_json::json!({"term": {"detector_id": "country-anomaly-detector"}}),
    )
    .await;
    let events_in = |(from, to): (i64, i64)| -> Vec<u64> {
        results
            .iter()
            .filter(|r| {
                let start = r["data_start_time"].as_i64().unwrap_or(0);
                start >= from && start + INTERVAL_MS <= to
            })
            .map(|r| r["events"].as_u64().unwrap_or(0))
            .collect()
    };
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let (normal, surge) = (events_in(span(0)), events_in(span(1)));
    if normal.is_empty() || mean(&surge) < 2.5 * mean(&normal) {
        failures.push(format!(
            "the surge was not 3x the traffic: normal {normal:?}, surge {surge:?}"
        ));
    }

    // The quality report, from the labels the scenario published.
    let config = pipeline::config::OpenSearchConfig {
        url: url.clone(),
        ..Default::default()
    };
    let client = pipeline::search::client(&config, Duration::from_secs(30)).expect("client");
    let report = detector::evaluate::evaluate(&spec, &kafka, &client, None)
        .await
        .expect("evaluate");
    let scores: BTreeMap<&str, (usize, usize, usize, usize)> = report
        .scores
        .iter()
        .map(|s| {
            (
                s.detector.as_str(),
                (
                    s.phases.len(),
                    s.detected(),
                    s.false_flags(),
                    s.false_alerts,
                ),
            )
        })
        .collect();
    let expected: BTreeMap<&str, (usize, usize, usize, usize)> = [
        ("action-anomaly-detector", (0, 0, 0, 0)),
        ("source-anomaly-detector", (0, 0, 0, 0)),
        ("httpstatus-anomaly-detector", (1, 1, 0, 0)),
        ("country-anomaly-detector", (1, 1, 0, 0)),
        ("method-anomaly-detector", (0, 0, 0, 0)),
    ]
    .into();
    if scores != expected {
        failures.push(format!(
            "evaluate (phases, detected, false flags, false alerts): {scores:?}"
        ));
    }
    assert_eq!(
        (report.anomaly_labels, report.normal_labels),
        (2, 7),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.kind == LabelKind::Normal && l.traffic.as_deref() == Some("3x surge"))
    );
    let markdown = detector::evaluate::markdown(&report);
    eprintln!("{markdown}");

    failures.extend(
        common::stop_all(vec![
            common::Running::new("detector", stop, detector),
            common::Running::new("sink", sink_stop, sink),
            common::Running::new("transformer", transformer_stop, transformer),
        ])
        .await,
    );
    common::clean(
        &http,
        &url,
        &[
            format!("{index}-*"),
            index.clone(),
            spec.results.clone(),
            spec.checkpoints.clone(),
            spec.alerts.clone(),
        ],
    )
    .await;
    assert!(
        failures.is_empty(),
        "{}\n\nalerts: {alerts:#?}\n\n{markdown}",
        failures.join("\n")
    );
}
