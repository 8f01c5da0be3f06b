//! Alert delivery under faults, on the real stack (`cargo xtask stack up`), with the test's own
//! webhook receivers (`common::hooks`): at least once, with the same idempotency key on every
//! attempt, across SIGTERM and `kill -9`; and channels that do not wait for each other.
//!
//! The detector runs as a process (`logwarden-detector run`, configured as a user configures it)
//! where the test stops or kills it, in-process otherwise. Its spec watches one field at
//! 1-second intervals; 15 s of normal records train the baseline, then 4 s of anomalous ones open
//! an episode (an alert), then normal ones close it (a recovery).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::hooks::{Hook, Mode, Request, summary};
use common::{stream, webhook};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit::{self, Process};
use rdkafka::producer::FutureProducer;
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-detector");

/// A test's private topics, indices and spec file, and the detector run on them.
struct Setup {
    kafka: KafkaConfig,
    url: String,
    name: String,
    spec: String,
    spec_file: PathBuf,
    producer: FutureProducer,
}

impl Setup {
    /// Private topics and names; the monitor tells `channels` (name, spec YAML of the channel).
    async fn new(test: &str, channels: &[(&str, String)]) -> Self {
        let url = testkit::require_opensearch().await;
        let kafka = testkit::kafka_with_private_topics(test, 1).await;
        let name = testkit::unique_name(test);
        let producer = kafka.producer_config(test).create().expect("producer");
        let spec = common::country_spec(&name, "500ms", channels);
        let spec_file = std::env::temp_dir().join(format!("{name}spec.yaml"));
        std::fs::write(&spec_file, &spec).expect("write the spec");
        Self {
            kafka,
            url,
            name,
            spec,
            spec_file,
            producer,
        }
    }

    /// `logwarden-detector run` on this setup, checkpointing every second, as instance
    /// `alerts-0` (a restart takes its own lease back at once).
    fn detector(&self) -> Process {
        let spec = self.spec_file.display().to_string();
        Process::start(
            BINARY,
            &["run"],
            &[
                ("LOGWARDEN_KAFKA__BROKERS", self.kafka.brokers.as_str()),
                (
                    "LOGWARDEN_KAFKA__TOPICS__ENRICHED",
                    &self.kafka.topics.enriched,
                ),
                (
                    "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
                    &self.kafka.topics.anomalies,
                ),
                ("LOGWARDEN_OPENSEARCH__URL", &self.url),
                ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
                ("LOGWARDEN_DETECTOR__SPEC", &spec),
                ("LOGWARDEN_DETECTOR__CHECKPOINT_MS", "1000"),
                ("LOGWARDEN_DETECTOR__LEASE_MS", "1500"),
                ("LOGWARDEN_DETECTOR__INSTANCE_ID", "alerts-0"),
            ],
        )
    }

    /// Normal records, an anomaly, normal records again (in the background).
    fn episode(&self) -> tokio::task::JoinHandle<()> {
        let (producer, topic) = (self.producer.clone(), self.kafka.topics.enriched.clone());
        tokio::spawn(async move {
            stream(&producer, &topic, 15, 0).await;
            stream(&producer, &topic, 4, 20).await;
            stream(&producer, &topic, 6, 0).await;
        })
    }

    /// Deletes what the test created.
    async fn clean(self) {
        let http = reqwest::Client::new();
        common::clean(
            &http,
            &self.url,
            &[
                format!("{}results", self.name),
                format!("{}checkpoints", self.name),
            ],
        )
        .await;
        let topics = self.kafka.topics.clone();
        testkit::delete_topics(&self.kafka, &[&topics.enriched, &topics.anomalies]).await;
        let _ = std::fs::remove_file(&self.spec_file);
    }
}

/// SIGTERM and the wait for the exit, off the runtime's threads.
async fn terminate(process: Process) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || process.terminate())
        .await
        .expect("terminate")
}

fn alerts(requests: &[Request]) -> Vec<&Request> {
    requests.iter().filter(|r| r.kind() == "alert").collect()
}

/// Every key the receiver accepted, with how many times.
fn accepted_keys(requests: &[Request]) -> std::collections::BTreeMap<(String, String), usize> {
    let mut keys = std::collections::BTreeMap::new();
    for r in requests.iter().filter(|r| r.accepted()) {
        *keys
            .entry((r.kind().to_owned(), r.key().to_owned()))
            .or_default() += 1;
    }
    keys
}

/// Lets the last notifications settle, stops the detector (SIGTERM, a clean exit), deletes the
/// test's topics and indices; returns what the receiver got, each with its key twice (header
/// and body), the same, 32 hex digits.
async fn finish(setup: Setup, detector: Process, hook: &Hook) -> Vec<Request> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, output) = terminate(detector).await;
    let requests = hook.requests();
    setup.clean().await;
    assert_eq!(code, Some(0), "a clean stop on SIGTERM:\n{output}");
    for r in &requests {
        assert_eq!(r.header_key.as_deref(), Some(r.key()), "{r:?}");
        assert!(
            r.key().len() == 32 && r.key().bytes().all(|b| b.is_ascii_hexdigit()),
            "{r:?}"
        );
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_90_s_across_a_sigterm_gets_the_alert_once_with_its_key() {
    let outage = Instant::now();
    let hook = Hook::start(Mode::Unavailable).await;
    let setup = Setup::new("alerts-sigterm", &[("hook", webhook(&hook.url))]).await;

    let mut first = setup.detector();
    first.wait_for("Detecting.", Duration::from_secs(90)).await;
    let feed = setup.episode();
    hook.wait_until("a refused alert", Duration::from_secs(60), |r| {
        alerts(r).iter().any(|a| a.status == Some(503))
    })
    .await;
    let (code, first_output) = terminate(first).await;
    let restarted = Instant::now();
    assert_eq!(code, Some(0), "a clean stop on SIGTERM:\n{first_output}");
    assert!(
        first_output.contains("they stay pending in the checkpoint"),
        "{first_output}"
    );

    let mut second = setup.detector();
    second
        .wait_for(
            "Re-sending the alerts the checkpoint holds as pending.",
            Duration::from_secs(90),
        )
        .await;
    feed.await.expect("records sent");
    hook.wait_until(
        "a refused attempt after the restart",
        Duration::from_secs(30),
        |r| alerts(r).iter().any(|a| a.arrived > restarted),
    )
    .await;
    tokio::time::sleep_until(outage + Duration::from_secs(90)).await;
    hook.set(Mode::Accept);
    let recovered = Instant::now();
    // The backoff is at most 60 s by now.
    hook.wait_until("the alert after recovery", Duration::from_secs(75), |r| {
        alerts(r).iter().any(|a| a.accepted())
    })
    .await;
    let requests = finish(setup, second, &hook).await;
    let alert_requests = alerts(&requests);
    let delivered: Vec<&&Request> = alert_requests.iter().filter(|r| r.accepted()).collect();
    assert_eq!(
        delivered.len(),
        1,
        "one alert delivered: {}",
        summary(&requests)
    );
    let key = delivered[0].key();
    assert!(delivered[0].arrived >= recovered);
    assert!(
        alert_requests.iter().all(|r| r.key() == key),
        "every attempt, refused or not, before and after the restart, carries the same key: {}",
        summary(&requests)
    );
    let refused_by_run = (
        alert_requests
            .iter()
            .filter(|r| r.status == Some(503) && r.arrived < restarted)
            .count(),
        alert_requests
            .iter()
            .filter(|r| r.status == Some(503) && r.arrived > restarted)
            .count(),
    );
    assert!(
        refused_by_run.0 >= 1 && refused_by_run.1 >= 1,
        "both runs tried while the receiver was down: {refused_by_run:?}"
    );
    for ((kind, key), times) in accepted_keys(&requests) {
        assert_eq!(
            times,
            1,
            "{kind} {key} delivered {times} times: {}",
            summary(&requests)
        );
    }
    eprintln!(
        "sigterm: {} request(s), {} refused before and {} after the restart; delivered {:?} after recovery",
        requests.len(),
        refused_by_run.0,
        refused_by_run.1,
        delivered[0].arrived - recovered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_the_delivery_sends_the_same_key_at_most_once_more() {
    let hook = Hook::start(Mode::Accept).await;
    let setup = Setup::new("alerts-killed-after", &[("hook", webhook(&hook.url))]).await;

    let mut first = setup.detector();
    first.wait_for("Detecting.", Duration::from_secs(90)).await;
    let feed = setup.episode();
    hook.wait_until("the alert", Duration::from_secs(60), |r| {
        alerts(r).iter().any(|a| a.accepted())
    })
    .await;
    // The answer reaches the detector; its next checkpoint is up to 250 ms away.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let first_output = first.kill();
    let key = alerts(&hook.requests())[0].key().to_owned();
    assert!(
        first_output
            .lines()
            .any(|l| l.contains("Alert delivered.") && l.contains(&key)),
        "the kill came after the detector saw the delivery:\n{first_output}"
    );

    let mut second = setup.detector();
    second.wait_for("Detecting.", Duration::from_secs(90)).await;
    feed.await.expect("records sent");
    hook.wait_until("the recovery", Duration::from_secs(30), |r| {
        r.iter().any(|a| a.kind() == "recovery" && a.accepted())
    })
    .await;
    let requests = finish(setup, second, &hook).await;
    let keys = accepted_keys(&requests);
    let alert_keys: Vec<(&String, &usize)> = keys
        .iter()
        .filter(|((kind, _), _)| kind == "alert")
        .map(|((_, key), times)| (key, times))
        .collect();
    // The README's guarantee: at least once with a stable key; deduplicated by key, one alert.
    assert_eq!(
        alert_keys.len(),
        1,
        "one distinct alert: {}",
        summary(&requests)
    );
    assert_eq!(alert_keys[0].0, &key);
    assert!(
        (1..=2).contains(alert_keys[0].1),
        "the same key at most once more: {}",
        summary(&requests)
    );
    for ((kind, key), times) in &keys {
        assert!(*times <= 2, "{kind} {key} delivered {times} times");
    }
    eprintln!(
        "killed after delivery: the alert's key was delivered {} time(s)",
        alert_keys[0].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_alert_is_in_flight_delivers_it_once_after_the_restart() {
    let hook = Hook::start(Mode::Hold).await;
    let setup = Setup::new("alerts-killed-before", &[("hook", webhook(&hook.url))]).await;

    let mut first = setup.detector();
    first.wait_for("Detecting.", Duration::from_secs(90)).await;
    let feed = setup.episode();
    let held = hook
        .wait_until("the alert in flight", Duration::from_secs(60), |r| {
            alerts(r).iter().any(|a| a.status.is_none())
        })
        .await;
    let first_output = first.kill();
    hook.set(Mode::Accept);
    let key = alerts(&held)[0].key().to_owned();
    assert!(
        !first_output.contains("Alert delivered."),
        "nothing was delivered before the kill:\n{first_output}"
    );

    let mut second = setup.detector();
    second.wait_for("Detecting.", Duration::from_secs(90)).await;
    hook.wait_until(
        "the alert after the restart",
        Duration::from_secs(60),
        |r| alerts(r).iter().any(|a| a.accepted()),
    )
    .await;
    feed.await.expect("records sent");
    let requests = finish(setup, second, &hook).await;
    let delivered: Vec<&Request> = alerts(&requests)
        .into_iter()
        .filter(|r| r.accepted())
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "exactly one alert: {}",
        summary(&requests)
    );
    assert_eq!(
        delivered[0].key(),
        key,
        "the key of the attempt cut off by the kill"
    );
    for ((kind, key), times) in accepted_keys(&requests) {
        assert_eq!(
            times,
            1,
            "{kind} {key} delivered {times} times: {}",
            summary(&requests)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_delays_neither_the_other_webhook_nor_the_email() {
    let slow = Hook::start(Mode::Slow(Duration::from_secs(30))).await;
    let fast = Hook::start(Mode::Accept).await;
    let smtp = testkit::SmtpServer::start().await;
    let email = format!(
        "email: {{host: 127.0.0.1, port: {}, tls: none, from: \"logwarden <alerts@example.test>\", to: [security-team@example.test]}}",
        smtp.port
    );
    // The slow channel comes first in the monitor's list.
    let setup = Setup::new(
        "alerts-slow",
        &[
            ("slow", webhook(&slow.url)),
            ("fast", webhook(&fast.url)),
            ("mail", email),
        ],
    )
    .await;
    let settings = common::settings(&setup.kafka, &setup.url, &setup.spec, "alerts-slow-0");
    let (stop, task, _) = common::run_replica(settings).await;
    let feed = setup.episode();
    let slow_requests = slow
        .wait_until("the slow webhook's alert", Duration::from_secs(60), |r| {
            !alerts(r).is_empty()
        })
        .await;
    let fast_requests = fast
        .wait_until("the fast webhook's alert", Duration::from_secs(30), |r| {
            alerts(r).iter().any(|a| a.accepted())
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mails = loop {
        let mails = smtp.messages();
        if !mails.is_empty() || Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let slow_alert = slow.requests().into_iter().find(|r| r.kind() == "alert");
    stop.cancel();
    task.await.expect("the detector stops");
    feed.await.expect("records sent");
    setup.clean().await;

    let slow_alert = slow_alert.expect("the slow webhook got the alert");
    let fast_alert = alerts(&fast_requests)[0];
    assert!(
        slow_alert
            .ended
            .is_none_or(|ended| fast_alert.arrived < ended),
        "the fast webhook got the alert while the slow one was still answering: {slow_requests:?} {fast_alert:?}"
    );
    let key = fast_alert.key();
    assert_eq!(slow_alert.key(), key, "one key on every channel");
    for r in [&slow_alert, fast_alert] {
        assert_eq!(r.header_key.as_deref(), Some(key), "{r:?}");
    }
    let mail = mails
        .iter()
        .find(|m| m.contains("just entered alert status"))
        .unwrap_or_else(|| panic!("no alert e-mail: {mails:?}"));
    for header in [
        format!("Message-ID: <{key}@example.test>"),
        format!("X-Logwarden-Idempotency-Key: {key}"),
    ] {
        assert!(mail.contains(&header), "`{header}` missing from:\n{mail}");
    }
}
