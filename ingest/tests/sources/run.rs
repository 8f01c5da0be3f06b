//! What the per-source end-to-end tests share: the whole pipeline in-process on
//! a test's private topics and indices (logwarden-ingest, the transformer with its default rules,
//! the sink, the detector with the default spec's preset detectors of one source at 2-second
//! intervals), the producer's generator of that source paced in real time (normal traffic, one
//! injected phase, normal traffic), and the checks a user makes: every record indexed once, each
//! record's indicators as its format says, and the alert of the injected indicator's monitor at
//! the test's webhook receiver.
//!
//! Each test sends the records with a real client of its source (curl with the documented
//! payloads, util-linux `logger`, a directory of CloudTrail files).

#![allow(dead_code)]

#[path = "../../../detector/tests/common/hooks.rs"]
pub mod hooks;

use std::collections::BTreeMap;
use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use pipeline::wire::Source;
use producer::generate::{SourceGenerator, SourceRecord};
use producer::scenario::{Phase, Scenario};
use producer::schedule::{Events, Options, Schedule};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::Ingest;
use crate::common::pipeline_run::{Running, Search, sink_settings, start_sink, start_transformer};

/// The detectors' interval in these tests.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Events per second the feed sends.
pub const RATE: f64 = 25.0;
/// Normal traffic before the injected phase: the detectors' warm-up (shingle of 8) and baseline.
pub const NORMAL_BEFORE: Duration = Duration::from_secs(26);
/// The injected phase.
pub const INJECTED: Duration = Duration::from_secs(10);
/// Normal traffic after it.
pub const NORMAL_AFTER: Duration = Duration::from_secs(6);

/// The pipeline of one test.
pub struct Run {
    /// The source under test.
    pub source: Source,
    /// The test's private topics.
    pub kafka: KafkaConfig,
    /// OpenSearch.
    pub search: Search,
    /// The events index (the sink's alias; the daily indices start with it).
    pub index: String,
    /// logwarden-ingest.
    pub ingest: Ingest,
    /// The webhook receiver the default channel posts to.
    pub hook: hooks::Hook,
    /// The results and checkpoints indices.
    detector_indices: Vec<String>,
    transformer: Running,
    sink: Running,
    detector: (CancellationToken, tokio::task::JoinHandle<()>),
}

impl Run {
    /// Starts the pipeline for `source`, with `vars` for logwarden-ingest (e.g. a files
    /// directory).
    pub async fn start(test: &str, source: Source, vars: &[(&str, &str)]) -> Self {
        let kafka = testkit::kafka_with_private_topics(test, 2).await;
        let search = Search::require().await;
        let index = format!("{}events", testkit::unique_name(test));
        let transformer = start_transformer(&kafka).await;
        let sink = start_sink(sink_settings(&kafka, &search.url, &index)).await;
        let hook = hooks::Hook::start(hooks::Mode::Accept).await;
        let settings = detector_settings(&kafka, &search.url, &index, source, &hook.url);
        let detector_indices = vec![
            settings.spec.results.clone(),
            settings.spec.checkpoints.clone(),
        ];
        let (service, stop) = testkit::service("detector").await;
        let task = tokio::spawn(async move {
            detector::service::run(settings, &service)
                .await
                .expect("the detector runs and stops cleanly");
        });
        let ingest = Ingest::start_on(kafka.clone(), vars).await;
        Self {
            source,
            kafka,
            search,
            index,
            ingest,
            hook,
            detector_indices,
            transformer,
            sink,
            detector: (stop, task),
        }
    }

    /// Checks what a user would, then stops everything and deletes what the test created:
    /// every record in `feed` indexed exactly once, each with the indicators its format says,
    /// and an alert on the injected indicator for an interval of the injected phase.
    pub async fn check_and_stop(self, feed: &Feed) {
        let sent = &feed.sent;
        let pattern = format!("{}*", self.index);
        let indexed = self
            .search
            .wait_for_count(&pattern, sent.len() as u64, Duration::from_secs(120))
            .await;
        assert_eq!(indexed, sent.len() as u64, "every record indexed once");
        let documents = self.search.documents(&pattern).await;
        let by_key: BTreeMap<String, &Value> = documents
            .iter()
            .map(|d| (key_of(self.source, d), d))
            .collect();
        let mut wrong = Vec::new();
        for record in sent {
            let document = by_key
                .get(&record.key)
                .unwrap_or_else(|| panic!("record {} was not indexed", record.key));
            for indicator in producer::indicators::of(self.source) {
                let expected = u64::from(record.indicators.contains(indicator));
                if document[*indicator].as_u64() != Some(expected) {
                    wrong.push(format!(
                        "{indicator}: {} instead of {expected} in {}",
                        document[*indicator], record.line
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} indicator values differ from the format's documentation, e.g.:\n{}",
            wrong.len(),
            sent.len() * producer::indicators::of(self.source).len(),
            wrong[..wrong.len().min(5)].join("\n")
        );

        let indicator = feed.indicator;
        // The preset's detector on the indicator: its feature (the alert's `field`) is
        // `ratio_<indicator>` or `sum_<indicator>`, its monitor `<indicator>-Monitor`.
        let feature = detector::spec::Spec::default_spec()
            .expect("the default spec")
            .detectors
            .iter()
            .find(|d| {
                d.feature.field.as_deref() == Some(indicator)
                    && d.feature.aggregation != detector::spec::Aggregation::NewValues
            })
            .map(detector::spec::DetectorSpec::feature_name)
            .expect("a preset detector on the indicator");
        let monitor = format!("{indicator}-Monitor");
        let (start, end) = feed.injected_ms;
        let interval = INTERVAL.as_millis() as i64;
        let requests = self
            .hook
            .wait_until(
                &format!("an alert on {indicator}"),
                Duration::from_secs(60),
                |requests| {
                    requests
                        .iter()
                        .any(|r| r.kind() == "alert" && r.body["field"] == feature.as_str())
                },
            )
            .await;
        let alert = requests
            .iter()
            .find(|r| r.kind() == "alert" && r.body["field"] == feature.as_str())
            .map(|r| r.body.clone())
            .unwrap_or_default();
        assert_eq!(alert["monitor"], monitor.as_str(), "{alert}");
        // A region never seen before alerts too, naming the region.
        if indicator == "ct_unexpected_region" {
            let requests = self
                .hook
                .wait_until(
                    "an alert on a new region",
                    Duration::from_secs(60),
                    |requests| {
                        requests.iter().any(|r| {
                            r.kind() == "alert" && r.body["monitor"] == "ct_new_region-Monitor"
                        })
                    },
                )
                .await;
            let new = requests
                .iter()
                .find(|r| r.kind() == "alert" && r.body["monitor"] == "ct_new_region-Monitor")
                .map(|r| r.body["entities"].clone())
                .unwrap_or_default();
            let named: Vec<&str> = new
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                !named.is_empty()
                    && named.iter().all(|r| ["ap-east-1", "me-south-1", "sa-east-1", "af-south-1"].contains(r)),
                "the new-region alert names the unexpected regions: {new}"
            );
        }
        // The syslog preset watches each host and the splunk preset each sourcetype: the alert
        // names the entities flagged.
        if matches!(self.source, Source::Syslog | Source::Splunk) {
            assert!(
                alert["entities"].as_array().is_some_and(|e| !e.is_empty()),
                "the alert names its entities: {alert}"
            );
        }
        let flagged = alert["interval"]["start"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis());
        assert!(
            flagged >= start - interval && flagged < end,
            "the alert is for the injected phase [{start}, {end}): {alert}"
        );

        self.ingest.shutdown().await;
        self.transformer.stop().await;
        self.sink.stop().await;
        self.detector.0.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.detector.1).await;
        self.search.clean(&self.index).await;
        for index in self.detector_indices.iter().chain([&pattern]) {
            let _ = self.search.call(reqwest::Method::DELETE, index, None).await;
        }
        // The results template the detector put.
        for index in &self.detector_indices {
            testkit::delete_index_templates(&self.search.url, index).await;
        }
        testkit::delete_topics(&self.kafka, &self.kafka.topics.all()).await;
    }
}

/// The detector with the default spec's detectors on `source`'s indicators (and their monitors),
/// at [`INTERVAL`], no history (a baseline of 10 intervals instead), alerting `hook`.
fn detector_settings(
    kafka: &KafkaConfig,
    url: &str,
    index: &str,
    source: Source,
    hook: &str,
) -> detector::settings::Settings {
    let mut spec = detector::spec::Spec::default_spec().expect("the default spec");
    let ours = producer::indicators::of(source);
    // The source's preset: its detectors (over its records only) and their monitors.
    spec.retain_detectors(|d| {
        d.feature.filter.as_ref().is_some_and(|filter| {
            filter.field == pipeline::wire::SOURCE_FIELD && filter.value == source.as_str()
        })
    });
    for indicator in ours {
        assert!(
            spec.detectors
                .iter()
                .any(|d| d.feature.field.as_deref() == Some(*indicator)),
            "the default spec has no detector on {indicator}"
        );
    }
    let indicators = spec
        .detectors
        .iter()
        .filter(|d| {
            d.feature
                .field
                .as_deref()
                .is_some_and(|f| ours.contains(&f))
        })
        .count();
    assert_eq!(
        indicators,
        ours.len(),
        "one preset detector per indicator of {source}"
    );
    for detector in &mut spec.detectors {
        detector.interval = INTERVAL;
        detector.window_delay = Duration::from_secs(2);
        detector.model.history = 0;
        detector.model.baseline = 10;
    }
    for channel in &mut spec.channels {
        channel.webhook = Some(detector::spec::Secret {
            env: None,
            file: None,
            value: Some(hook.to_owned()),
        });
    }
    let name = testkit::unique_name("sources");
    spec.events = index.to_owned();
    spec.results = format!("{name}results");
    spec.checkpoints = format!("{name}checkpoints");
    let mut raw = detector::settings::RawConfig {
        kafka: kafka.clone(),
        ..detector::settings::RawConfig::default()
    };
    raw.opensearch.url = url.to_owned();
    let mut settings =
        detector::settings::Settings::from_raw(raw, Some("sources-0".into())).expect("settings");
    settings.spec = spec;
    settings
}

/// Where a source's indexed document keeps the generator's key.
fn key_of(source: Source, document: &Value) -> String {
    let value = match source {
        Source::Waf => &document["httpRequest"]["requestId"],
        Source::Cloudtrail => &document["eventID"],
        Source::Syslog => &document["procid"],
        Source::Cloudwatch => &document["id"],
        Source::Splunk => &document["event"]["trace_id"],
        Source::Ndjson => &Value::Null,
    };
    value.as_str().unwrap_or_default().to_owned()
}

/// The producer's generator of a source, laid out in real time from now: [`NORMAL_BEFORE`],
/// [`INJECTED`] raising one indicator, [`NORMAL_AFTER`], at [`RATE`].
pub struct Feed {
    /// The injected indicator.
    pub indicator: &'static str,
    /// The injected phase, epoch ms.
    pub injected_ms: (i64, i64),
    /// Every record handed out so far.
    pub sent: Vec<SourceRecord>,
    events: std::iter::Peekable<Events>,
    generator: SourceGenerator,
}

impl Feed {
    /// The feed of `source`, injecting `indicator`, from now.
    pub fn new(source: Source, indicator: &'static str) -> Self {
        let scenario = Scenario::sourced(
            source,
            "e2e",
            Some(RATE),
            vec![
                Phase::normal(NORMAL_BEFORE),
                Phase::inject(indicator, INJECTED),
                Phase::normal(NORMAL_AFTER),
            ],
        )
        .expect("a valid scenario");
        let now = chrono::Utc::now().timestamp_millis();
        let schedule = Schedule::live(&scenario, now, &Options::default()).expect("a schedule");
        let phase = schedule.phases()[1];
        let run = testkit::unique_name("e2e");
        Self {
            indicator,
            injected_ms: (phase.start_ms, phase.end_ms.unwrap_or(i64::MAX)),
            sent: Vec::new(),
            events: schedule.events().peekable(),
            generator: SourceGenerator::new(source, 19, "e2e-0", run.trim_end_matches('-'))
                .expect("a generator"),
        }
    }

    /// `n` records of `source` at 50 ms steps from now, half of them raising `indicator`, as
    /// the feed makes them.
    pub fn records(source: Source, n: i64, indicator: &str) -> Vec<SourceRecord> {
        let mut generator = SourceGenerator::new(source, 19, "e2e-0", "records").expect("valid");
        let now = chrono::Utc::now().timestamp_millis();
        (0..n)
            .map(|i| generator.next(now + i * 50, Some(indicator)))
            .collect()
    }

    /// The records due now (waiting up to half a second for the next ones); `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Vec<SourceRecord>> {
        let next = self.events.peek()?.timestamp_ms;
        let wait = next - chrono::Utc::now().timestamp_millis();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait.min(500) as u64)).await;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut batch = Vec::new();
        while let Some(event) = self.events.next_if(|e| e.timestamp_ms <= now) {
            batch.push(self.generator.next(event.timestamp_ms, event.inject));
        }
        self.sent.extend(batch.iter().cloned());
        Some(batch)
    }
}
