//! `kill -9` of the transformer during detection, on the real stack: the transformer runs as a
//! process (the sink and the detector in-process), is killed mid-stream and restarted, and
//! re-sends what it had in flight (the same records with the same `event_id`s). OpenSearch
//! keeps each record once (its `_id`); the detector must too: every interval's count equals
//! OpenSearch's date histogram over the same interval, the copies are counted as duplicates,
//! and no alert is raised.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{gauge, receiver, run_replica};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit::{self, Process};
use producer::generate::Generator;
use rand::SeedableRng;
use rdkafka::producer::FutureProducer;

const INTERVAL_MS: i64 = 1_000;

/// The transformer's binary, built beside the detector's (`cargo xtask test` builds every
/// binary of the workspace).
fn transformer_binary() -> PathBuf {
    let path =
        std::path::Path::new(common::replica::BINARY).with_file_name("logwarden-transformer");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p transformer --bin logwarden-transformer` (or run `cargo xtask test`)",
        path.display()
    );
    path
}

fn transformer(kafka: &KafkaConfig, group: &str) -> Process {
    Process::start(
        &transformer_binary().display().to_string(),
        &["run"],
        &[
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
            ("LOGWARDEN_KAFKA__TOPICS__RAW", &kafka.topics.raw),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_KAFKA__TOPICS__LABELS", &kafka.topics.labels),
            ("LOGWARDEN_TRANSFORMER__GROUP_ID", group),
            ("LOGWARDEN_TRANSFORMER__INSTANCE_ID", "replay-0"),
            ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
        ],
    )
}

/// A count per second, trained at start on the last 10 seconds the index holds. The traffic
/// varies by about ±10 a second (5 to 15 records every 100 ms), which a 10-interval baseline can
/// take for a rise of the default `min_rise` (5); a rise of 40 is none of that noise, while
/// copies counted twice would be, and the sums below catch any copy exactly.
fn spec(name: &str, hook: &str) -> String {
    common::spec(
        name,
        "events-count",
        "{aggregation: count}",
        "8s",
        Some(hook),
    )
    .replace("history: 0", "history: 10, min_rise: 40")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transformer_replay_counts_once_and_raises_no_alert() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("replay", 1).await;
    let name = testkit::unique_name("replay");
    let events = format!("{name}events");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("replay").create().expect("producer");
    let (hook, inbox) = receiver().await;
    let group = testkit::unique_name("replay-transformer");
    let mut generator = Generator::new(7, "replay-0", "replay").expect("generator");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    let (sink_stop, sink) = common::run_sink(&kafka, &url, &events).await;
    let first = transformer(&kafka, &group);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Twenty seconds of traffic in the index first: the detector's history (its baseline).
    let mut sent =
        common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 20).await;
    let settings = common::settings(&kafka, &url, &spec(&name, &hook), "replay-0");
    let (detector_stop, detector, telemetry) = run_replica(settings).await;

    sent += common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 8).await;
    first.signal("KILL");
    drop(first);
    let second = transformer(&kafka, &group);
    sent += common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 8).await;
    common::wait_indexed(&http, &url, &events, sent).await;
    let indexed = common::count(&http, &url, &format!("{events}*")).await;
    // The last intervals close by the clock (8 s window delay) once the stream is idle.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let duplicates = gauge(&telemetry, "logwarden_detector_duplicate_events_total");
    let late = gauge(&telemetry, "logwarden_detector_late_events_total");
    let replayed = gauge(&telemetry, "logwarden_detector_replayed_events_total");
    eprintln!("{sent} records: {duplicates} copies counted once, {replayed} re-read at start-up");
    let (code, output) = second.terminate();
    detector_stop.cancel();
    detector.await.expect("the detector stops");
    sink_stop.cancel();
    let _ = sink.await;
    let (results, mut expected) =
        common::results_and_sums(&http, &url, &name, "events-count", None, INTERVAL_MS).await;
    // The intervals before the first scored one were the history the model trained on.
    let scored_from = results
        .first()
        .and_then(|r| r["data_start_time"].as_i64())
        .unwrap_or(i64::MAX);
    expected.retain(|start, _| *start >= scored_from);

    assert_eq!(code, Some(0), "{output}");
    assert!(
        duplicates > 0.0,
        "the restarted transformer re-sent what it had in flight (none counted as duplicates)"
    );
    assert_eq!(
        late, 0.0,
        "nothing was late (records re-read at start-up for intervals in the history are replayed)"
    );
    assert!(
        replayed > 0.0,
        "the start-up re-read the history's last minute"
    );
    assert_eq!(indexed, sent as u64, "OpenSearch holds each record once");
    common::assert_sums(&results, &expected, INTERVAL_MS, 10);
    let alerts: Vec<serde_json::Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .collect();
    assert!(alerts.is_empty(), "no false alert: {alerts:?}");
}
