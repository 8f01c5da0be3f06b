//! The proof, on the real stack (`cargo xtask stack up`): from injected anomaly to delivered alert.
//!
//! 60 minutes of normal history are backfilled through the pipeline (producer's generator → `raw`
//! → transformer → `enriched` → sink → OpenSearch); the detector starts with the default spec's
//! five detectors (at 2-second intervals to keep the test short) and trains on that history;
//! then live traffic runs with one anomaly phase on each of the five fields, a repeat of the
//! first, and quiet gaps between. The test's own webhook receiver must get exactly one alert per
//! phase, from the right monitor, and none in the quiet gaps; each sustained phase must be
//! flagged for more than its first interval. Every monitor also e-mails: a real SMTP server
//! (PyPI's aiosmtpd) on loopback must receive the e-mail form of each alert.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{receiver, send};
use detector::settings::{DetectorConfig, RawConfig, Settings};
use detector::spec::{ChannelSpec, EmailSpec, Secret, SmtpTls, Spec};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use pipeline::wire::MonitoredField;
use producer::generate::Generator;
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};

const INTERVAL_MS: i64 = 2_000;
const RATE: usize = 50;
const PHASE_MS: i64 = 10_000;
const GAP_MS: i64 = 14_000;

fn monitor_of(field: MonitoredField) -> &'static str {
    match field {
        MonitoredField::Action => "B_action-Monitor",
        MonitoredField::HttpSourceName => "UNK_source-Monitor",
        MonitoredField::HttpStatus => "B_httpstatus-Monitor",
        MonitoredField::Country => "UNK_country-Monitor",
        MonitoredField::HttpMethod => "uncommon_method-Monitor",
    }
}

fn detector_of(field: MonitoredField) -> &'static str {
    match field {
        MonitoredField::Action => "action-anomaly-detector",
        MonitoredField::HttpSourceName => "source-anomaly-detector",
        MonitoredField::HttpStatus => "httpstatus-anomaly-detector",
        MonitoredField::Country => "country-anomaly-detector",
        MonitoredField::HttpMethod => "method-anomaly-detector",
    }
}

fn detector_settings(
    kafka: &KafkaConfig,
    url: &str,
    index: &str,
    hook: &str,
    smtp_port: u16,
) -> Settings {
    let mut spec = Spec::default_spec().expect("default spec");
    // The proof runs on the seed's records: the seed's five detectors, not the sources' presets.
    spec.retain_detectors(|d| d.feature.filter.is_none());
    assert_eq!(spec.detectors.len(), 5, "the seed's five detectors");
    let name = testkit::unique_name("proof");
    spec.events = index.to_owned();
    spec.results = format!("{name}results");
    spec.checkpoints = format!("{name}checkpoints");
    for detector in &mut spec.detectors {
        detector.interval = Duration::from_millis(INTERVAL_MS as u64);
        detector.window_delay = Duration::from_millis(1_000);
        detector.model.history = 1_800;
        // The history runs at 5 records a second: 10 per 2-second interval, fewer than a
        // ratio's default 20 to be judged. Live traffic has 100.
        detector.feature.min_count = Some(5);
    }
    spec.channels[0].webhook = Some(Secret {
        env: None,
        file: None,
        value: Some(hook.to_owned()),
    });
    spec.channels.push(ChannelSpec {
        name: "security-email".into(),
        webhook: None,
        slack: None,
        email: Some(EmailSpec {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "logwarden <logwarden@example.test>".into(),
            to: vec!["security-team@example.test".into()],
            allow_insecure: false,
        }),
    });
    for monitor in &mut spec.monitors {
        monitor.channels.push("security-email".into());
    }
    let mut raw = RawConfig {
        kafka: kafka.clone(),
        detector: DetectorConfig::default(),
        ..RawConfig::default()
    };
    raw.opensearch.url = url.to_owned();
    let mut settings = Settings::from_raw(raw, Some("test-0".into())).expect("detector settings");
    settings.spec = spec;
    settings
}

/// The results of a detector in `[from, to)`, oldest first.
async fn results(
    http: &reqwest::Client,
    url: &str,
    index: &str,
    detector: &str,
    from: i64,
    to: i64,
) -> Vec<Value> {
    common::results(
        http,
        url,
        index,
        json!({"bool": {"filter": [
            {"term": {"detector_id": detector}},
            {"range": {"data_start_time": {"gte": from, "lt": to}}}
        ]}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_phase_gets_one_alert_from_the_right_monitor_and_quiet_gets_none() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("proof", 2).await;
    let index = format!("{}events", testkit::unique_name("proof"));
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("proof").create().expect("producer");
    let mut generator = Generator::new(5, "proof-0", "proof").expect("generator");

    // The pipeline: transformer and sink, in-process.
    let (transformer_stop, transformer) = common::run_transformer(&kafka).await;
    let (sink_stop, sink) = common::run_sink(&kafka, &url, &index).await;

    // 60 minutes of normal history, 5 events/s, ending now.
    let now = chrono::Utc::now().timestamp_millis();
    let history: Vec<Vec<u8>> = (0..18_000)
        .map(|i| {
            let log = generator.next(now - 3_600_000 + i * 200, None);
            serde_json::to_vec(&log).expect("json")
        })
        .collect();
    send(&producer, &kafka.topics.raw, &history).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while common::count(&http, &url, &index).await < 18_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the history did not reach OpenSearch"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The detector, trained on that history.
    let (hook, inbox) = receiver().await;
    let smtp = testkit::SmtpServer::start().await;
    let settings = detector_settings(&kafka, &url, &index, &hook, smtp.port);
    let results_index = settings.spec.results.clone();
    let checkpoints_index = settings.spec.checkpoints.clone();
    let (detector_service, detector_stop) = testkit::service("detector").await;
    let detector_metrics = detector_service.telemetry.clone();
    let detector =
        tokio::spawn(async move { detector::service::run(settings, &detector_service).await });

    // Live: quiet, then each field's phase with quiet gaps, then the first field again.
    let mut plan: Vec<MonitoredField> = MonitoredField::ALL.to_vec();
    plan.push(MonitoredField::Action);
    let live_start = chrono::Utc::now().timestamp_millis() + GAP_MS;
    let phases: Vec<(MonitoredField, i64, i64)> = plan
        .iter()
        .enumerate()
        .map(|(i, &field)| {
            let start = live_start + i as i64 * (PHASE_MS + GAP_MS);
            (field, start, start + PHASE_MS)
        })
        .collect();
    let live_end = phases.last().map_or(live_start, |p| p.2) + GAP_MS;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        if now >= live_end {
            break;
        }
        let anomaly = phases
            .iter()
            .find(|(_, start, end)| (*start..*end).contains(&now))
            .map(|p| p.0);
        let batch: Vec<Vec<u8>> = (0..RATE / 10)
            .map(|j| {
                let log = generator.next(now + j as i64 * 20, anomaly);
                serde_json::to_vec(&log).expect("json")
            })
            .collect();
        send(&producer, &kafka.topics.raw, &batch).await;
    }
    // The last intervals close (interval + delay) and alerts go out.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let alerts: Vec<(i64, Value)> = inbox.lock().expect("inbox").clone();
    let mut report = String::new();
    let mut failures = Vec::new();
    for (field, start, end) in &phases {
        let monitor = monitor_of(*field);
        let matching: Vec<&(i64, Value)> = alerts
            .iter()
            .filter(|(_, body)| {
                body["kind"] == "alert"
                    && body["monitor"] == monitor
                    && chrono::DateTime::parse_from_rfc3339(
                        body["interval"]["start"].as_str().unwrap_or(""),
                    )
                    .map(|t| t.timestamp_millis())
                    .is_ok_and(|t| t >= start - INTERVAL_MS && t < end + INTERVAL_MS)
            })
            .collect();
        let flagged: Vec<Value> = results(
            &http,
            &url,
            &results_index,
            detector_of(*field),
            *start - INTERVAL_MS,
            *end + INTERVAL_MS,
        )
        .await;
        let anomalous = flagged
            .iter()
            .filter(|r| r["anomaly_grade"].as_f64().unwrap_or(0.0) > 0.0)
            .count();
        let onset = matching.first().map(|(arrived, _)| arrived - start);
        report.push_str(&format!(
            "{monitor:<24} phase {start}..{end}: {} alert(s), onset→alert {onset:?} ms, {anomalous} anomalous interval(s): {}\n",
            matching.len(),
            flagged
                .iter()
                .map(|r| format!("{}:{:.0}/{:.2}", r["data_start_time"], r["value"].as_f64().unwrap_or(-1.0), r["anomaly_grade"].as_f64().unwrap_or(-1.0)))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        if matching.len() != 1 {
            failures.push(format!(
                "{monitor}: {} alerts for the phase at {start}",
                matching.len()
            ));
        }
        if anomalous < 2 {
            failures.push(format!(
                "{monitor}: only {anomalous} anomalous intervals in a sustained phase"
            ));
        }
    }
    let in_phase = |t: i64| {
        phases
            .iter()
            .any(|(_, start, end)| t >= start - INTERVAL_MS && t < end + INTERVAL_MS)
    };
    let stray: Vec<&Value> = alerts
        .iter()
        .map(|(_, body)| body)
        .filter(|body| body["kind"] == "alert")
        .filter(|body| {
            let t = chrono::DateTime::parse_from_rfc3339(
                body["interval"]["start"].as_str().unwrap_or(""),
            )
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
            !in_phase(t)
        })
        .collect();
    if !stray.is_empty() {
        failures.push(format!(
            "{} alerts outside any phase: {stray:?}",
            stray.len()
        ));
    }
    eprintln!("{report}");
    let metrics = detector_metrics.render();

    // A service that stopped early says why (e.g. OpenSearch refused an index).
    failures.extend(
        common::stop_all(vec![
            common::Running::new("detector", detector_stop, detector),
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
            results_index.clone(),
            checkpoints_index,
        ],
    )
    .await;
    let by_monitor: BTreeMap<String, usize> =
        alerts.iter().fold(BTreeMap::new(), |mut m, (_, b)| {
            *m.entry(format!("{} {}", b["monitor"], b["kind"]))
                .or_default() += 1;
            m
        });
    assert!(
        failures.is_empty(),
        "{}\n\nper phase:\n{report}\nalerts received: {by_monitor:?}\n\ndetector metrics:\n{}",
        failures.join("\n"),
        metrics
            .lines()
            .filter(|l| l.starts_with("logwarden_detector"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
