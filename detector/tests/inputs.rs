//! What the detector does with inputs it must not count as they come, on the real stack:
//! records it cannot read go to the dead-letter topic untouched, with the reason, the stage and
//! their source offset in headers (and are counted by reason); copies of a record (the same
//! `event_id`, as after an upstream replay) are counted once, so each interval's sum is what
//! OpenSearch would hold; and every anomalous result is published on `anomalies`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{gauge, run_replica, send};
use pipeline::testkit;
use pipeline::wire::DeadLetter;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use serde_json::json;

fn spec(name: &str) -> String {
    common::spec(name, "country-sum", "{field: UNK_country}", "500ms", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_records_are_dead_lettered_and_copies_count_once() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("inputs", 1).await;
    let name = testkit::unique_name("inputs");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("inputs").create().expect("producer");
    let settings = common::settings(&kafka, &url, &spec(&name), "inputs-0");
    let (stop, task, telemetry) = run_replica(settings).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // One second's worth of records, each sent twice (a replay), and three unreadable ones.
    let second = (chrono::Utc::now().timestamp_millis() / 1_000 + 1) * 1_000;
    let stamp = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("a time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(second - chrono::Utc::now().timestamp_millis()).unwrap_or(0),
    ))
    .await;
    let records: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            serde_json::to_vec(&json!({
                "@timestamp": stamp(second + i * 10),
                "UNK_country": i % 2,
                "event_id": format!("inputs-{i}"),
            }))
            .expect("json")
        })
        .collect();
    let unreadable: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        br#"{"UNK_country":1,"event_id":"no-time"}"#.to_vec(),
        br#"{"@timestamp":"yesterday","UNK_country":1}"#.to_vec(),
    ];
    let mut payloads = records.clone();
    payloads.extend(unreadable.iter().cloned());
    payloads.extend(records.iter().cloned());
    send(&producer, &kafka.topics.enriched, &payloads).await;
    // The unreadable records' offsets: after the first copy of each record.
    let offsets: Vec<i64> = (40..43).collect();

    let letters = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        3,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let duplicates = gauge(&telemetry, "logwarden_detector_duplicate_events_total");
    let by_reason = ["not_json", "missing_field", "bad_timestamp"].map(|reason| {
        telemetry
            .render()
            .lines()
            .find(|l| {
                l.starts_with("logwarden_detector_dead_letters_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    });
    stop.cancel();
    task.await.expect("the detector stops");
    let results = common::results(
        &http,
        &url,
        &format!("{name}results"),
        json!({"term": {"data_start_time": second}}),
    )
    .await;
    common::clean(
        &http,
        &url,
        &[format!("{name}results"), format!("{name}checkpoints")],
    )
    .await;

    let got: BTreeMap<i64, (Vec<u8>, String, String, String)> = letters
        .iter()
        .map(|m| {
            let headers = m.headers().expect("headers");
            let letter = DeadLetter::from_headers(headers).expect("dead-letter headers");
            assert_eq!(letter.source.topic, kafka.topics.enriched);
            (
                letter.source.offset,
                (
                    m.payload().unwrap_or_default().to_vec(),
                    letter.reason.to_string(),
                    letter.stage,
                    letter.detail,
                ),
            )
        })
        .collect();
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), offsets);
    let reasons: Vec<(&[u8], &str, &str)> = got
        .values()
        .map(|(payload, reason, stage, _)| (payload.as_slice(), reason.as_str(), stage.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (unreadable[0].as_slice(), "not_json", "detector"),
            (unreadable[1].as_slice(), "missing_field", "detector"),
            (unreadable[2].as_slice(), "bad_timestamp", "detector"),
        ],
        "the bytes untouched, with the reason"
    );
    assert_eq!(by_reason, [1.0, 1.0, 1.0]);
    assert_eq!(duplicates, 40.0, "each copy counted once");
    let sums: Vec<(f64, u64)> = results
        .iter()
        .filter_map(|r| Some((r["value"].as_f64()?, r["events"].as_u64()?)))
        .collect();
    assert_eq!(
        sums,
        vec![(20.0, 40)],
        "the interval holds each record once"
    );
}
