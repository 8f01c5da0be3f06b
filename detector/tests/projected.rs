//! Split reading on the real stack: two reader processes (`logwarden-detector read`, a consumer
//! group) share the partitions of `enriched` and project them to `projected`; the detector
//! (in-process, `detector.input: projected`) scores the batches. One reader is killed with
//! `kill -9` mid-stream: the other takes its partition over and projects again what was not
//! committed. Every interval must still equal OpenSearch's date histogram over the same
//! interval (the copies counted once, nothing late), no alert may be raised, and an unreadable
//! record written to `enriched` must be a dead letter of the readers with its reason.

mod common;

use std::time::Duration;

use common::{gauge, receiver, run_replica, send};
use detector::settings::Input;
use pipeline::kafka::KafkaConfig;
use pipeline::testkit::{self, Process};
use pipeline::wire::{DeadLetter, DeadLetterReason};
use producer::generate::Generator;
use rand::SeedableRng;
use rdkafka::message::Message;

use rdkafka::producer::FutureProducer;

const INTERVAL_MS: i64 = 1_000;

/// Two detectors of 1 s intervals on the same records: all events, and the sum of
/// `UNK_country`; trained at start on the last 10 seconds, with a rise of 40 the least anomaly
/// (the traffic varies by ±10 a second).
fn spec(name: &str, hook: &str) -> String {
    format!(
        "events: {name}events\nresults: {name}results\ncheckpoints: {name}checkpoints\n\
         detectors:\n\
         \x20 - name: events-count\n    feature: {{aggregation: count}}\n    interval: 1s\n    \
         window_delay: 3s\n    model: {{history: 10, baseline: 10, min_rise: 40}}\n\
         \x20 - name: country\n    feature: {{field: UNK_country, aggregation: sum}}\n    \
         interval: 1s\n    window_delay: 3s\n    model: {{history: 10, baseline: 10, min_rise: 40}}\n\
         monitors:\n  - {{name: all, detectors: [events-count, country], channels: [hook]}}\n\
         channels:\n  - {{name: hook, webhook: {{value: \"{hook}\"}}}}\n"
    )
}

/// A reader process (`logwarden-detector read`) in `group`, with the spec at `spec`, that the
/// group notices gone 6 s after a `kill -9`; and where its telemetry listens.
fn reader(
    kafka: &KafkaConfig,
    name: &str,
    spec: &std::path::Path,
    group: &str,
    i: usize,
) -> (Process, std::net::SocketAddr) {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = std::env::temp_dir().join(format!("{name}reader-{i}.yaml"));
    let topics = &kafka.topics;
    std::fs::write(
        &config,
        format!(
            "kafka:\n  brokers: \"{}\"\n  topics: {{raw: {}, enriched: {}, dead_letter: {}, labels: {}, anomalies: {}, projected: {}}}\n  \
             properties: {{session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\"}}\n\
             telemetry: {{listen: \"{listen}\"}}\n\
             detector: {{spec: \"{}\", instance_id: {name}reader-{i}, reader: {{group: {group}}}}}\n",
            kafka.brokers,
            topics.raw,
            topics.enriched,
            topics.dead_letter,
            topics.labels,
            topics.anomalies,
            topics.projected,
            spec.display(),
        ),
    )
    .expect("write the reader's config");
    let process = Process::start(
        common::replica::BINARY,
        &["read", "--config", &config.display().to_string()],
        &[],
    );
    (process, listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_the_stream_and_a_killed_one_loses_and_doubles_nothing() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("projected", 2).await;
    let name = testkit::unique_name("projected");
    let events = format!("{name}events");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka
        .producer_config("projected")
        .create()
        .expect("producer");
    let (hook, inbox) = receiver().await;
    let group = testkit::unique_name("projected-readers");
    let mut generator = Generator::new(11, "projected-0", "projected").expect("generator");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let spec = spec(&name, &hook);
    let spec_path = common::replica::spec_file(&name, &spec);

    let (sink_stop, sink) = common::run_sink(&kafka, &url, &events).await;
    let (transformer_stop, transformer) = common::run_transformer(&kafka).await;
    let (mut first, _) = reader(&kafka, &name, &spec_path, &group, 0);
    let (mut second, second_telemetry) = reader(&kafka, &name, &spec_path, &group, 1);
    for reader in [&mut first, &mut second] {
        reader
            .wait_for("Projecting.", Duration::from_secs(30))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Twenty seconds of traffic in the index first: the detectors' history (their baseline).
    let mut sent =
        common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 20).await;
    let mut settings = common::settings(&kafka, &url, &spec, "projected-0");
    settings.input = Input::Projected;
    settings.reader.group = group.clone();
    let (detector_stop, detector, telemetry) = run_replica(settings).await;

    sent += common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 8).await;
    first.signal("KILL");
    let killed = first.kill();
    sent += common::noisy_traffic(&producer, &kafka.topics.raw, &mut generator, &mut rng, 10).await;
    // An unreadable record on `enriched` (what a foreign producer might write).
    send(
        &producer,
        &kafka.topics.enriched,
        &[b"{\"@timestamp\": 7".to_vec()],
    )
    .await;
    common::wait_indexed(&http, &url, &events, sent).await;
    // The last intervals close by the clock (3 s window delay) once the stream is idle and the
    // readers have committed it to its end.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rows = gauge(&telemetry, "logwarden_detector_records_in_total");
    let duplicates = gauge(&telemetry, "logwarden_detector_duplicate_events_total");
    let late = gauge(&telemetry, "logwarden_detector_late_events_total");
    let unreadable = gauge(&telemetry, "logwarden_detector_unreadable_records_total");
    eprintln!("{sent} records: {rows} rows read, {duplicates} copies counted once");
    let survivor = testkit::metrics::scrape(second_telemetry).await;
    let (code, output) = second.terminate();
    detector_stop.cancel();
    detector.await.expect("the detector stops");
    transformer_stop.cancel();
    let _ = transformer.await;
    sink_stop.cancel();
    let _ = sink.await;
    let country = common::sums(&http, &url, &events, Some("UNK_country"), INTERVAL_MS).await;
    let country_results = common::results(
        &http,
        &url,
        &format!("{name}results"),
        serde_json::json!({"term": {"detector_id": "country"}}),
    )
    .await;
    let (results, mut expected) =
        common::results_and_sums(&http, &url, &name, "events-count", None, INTERVAL_MS).await;
    let letters = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        2,
        Duration::from_secs(20),
        Duration::from_secs(1),
    )
    .await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert_eq!(
        code,
        Some(0),
        "the surviving reader stops cleanly: {output}"
    );
    assert!(killed.contains("Projecting."), "{killed}");
    testkit::metrics::assert_conventional(&survivor);
    let metric =
        |name: &str, labels: &[(&str, &str)]| testkit::metrics::value(&survivor, name, labels);
    assert!(metric("logwarden_detector_reader_records_total", &[]) > 0.0);
    assert!(metric("logwarden_detector_reader_batches_total", &[]) > 0.0);
    // After the kill the survivor read both partitions: the bad record's too.
    let letters_of = |reason| {
        metric(
            "logwarden_detector_reader_dead_letters_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(letters_of("not_json"), 1.0);
    assert_eq!(letters_of("not_object"), 0.0);
    // The intervals before the first scored one were the history the models trained on.
    let scored_from = results
        .first()
        .and_then(|r| r["data_start_time"].as_i64())
        .unwrap_or(i64::MAX);
    expected.retain(|start, _| *start >= scored_from);
    common::assert_sums(&results, &expected, INTERVAL_MS, 15);
    let mut country = country;
    country.retain(|start, _| *start >= scored_from);
    // Intervals without a record of an unknown country have no sum in OpenSearch's histogram
    // but were counted: compare where OpenSearch has events.
    let country_scored: std::collections::BTreeMap<i64, f64> = (country_results.iter())
        .filter_map(|r| Some((r["data_start_time"].as_i64()?, r["value"].as_f64()?)))
        .collect();
    for (start, held) in &country {
        assert_eq!(country_scored.get(start), Some(held), "country at {start}");
    }
    assert!(
        duplicates > 0.0,
        "the surviving reader projected again what the killed one had not committed (no copy seen)"
    );
    assert_eq!(
        rows,
        (sent as f64) + duplicates,
        "every record reached the detector as a row, and only the copies twice"
    );
    assert_eq!(
        late, 0.0,
        "nothing was late: the killed reader's partition held the watermark"
    );
    assert_eq!(unreadable, 0.0, "every batch was readable");
    // The sink reads `enriched` too, and dead-letters the record for itself.
    let mut stages: Vec<(String, DeadLetterReason, String, Option<Vec<u8>>)> = (letters.iter())
        .map(|m| {
            let letter = DeadLetter::from_headers(m.headers().expect("headers"))
                .expect("dead-letter headers");
            (
                letter.stage,
                letter.reason,
                letter.source.topic,
                m.payload().map(<[u8]>::to_vec),
            )
        })
        .collect();
    stages.sort_by(|a, b| a.0.cmp(&b.0));
    let bad = Some(b"{\"@timestamp\": 7".to_vec());
    assert_eq!(
        stages,
        vec![
            (
                "detector-reader".to_owned(),
                DeadLetterReason::NotJson,
                kafka.topics.enriched.clone(),
                bad.clone()
            ),
            (
                "sink".to_owned(),
                DeadLetterReason::NotJson,
                kafka.topics.enriched.clone(),
                bad
            ),
        ]
    );
    let alerts: Vec<serde_json::Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .collect();
    assert!(alerts.is_empty(), "no false alert: {alerts:?}");
}
