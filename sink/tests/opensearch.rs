//! The sink against the stack's real Kafka and OpenSearch (`cargo xtask stack up`): the whole data
//! path end to end, dead letters from both stages, OpenSearch's own rejections, `kill -9` of the
//! sink, and OpenSearch unreachable for 30 seconds mid-stream.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use common::{Search, metric};
use pipeline::kafka::group_lag;
use pipeline::testkit;
use pipeline::wire::DeadLetterReason;
use serde_json::{Value, json};

/// The `@timestamp` the rules must give a record, formatted by chrono (not by the transformer's
/// own formatter).
fn expected_timestamp(record: &Value) -> String {
    let millis = record["timestamp"]
        .as_i64()
        .expect("integer epoch milliseconds");
    DateTime::from_timestamp_millis(millis)
        .expect("in range")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_generated_records_become_ten_thousand_documents_end_to_end() {
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-e2e", 3).await;
    let index = common::unique_index("sink-e2e");

    // The producer's own output: 10,000 records, and the transformer's bad-input set among them.
    let records = common::raw_records(10_000, 42);
    let mut payloads: Vec<Vec<u8>> = records
        .iter()
        .map(|r| serde_json::to_vec(r).expect("json"))
        .collect();
    let mut missing_method = records[0].clone();
    missing_method["httpRequest"]
        .as_object_mut()
        .expect("object")
        .remove("httpMethod");
    let mut far_future = records[1].clone();
    far_future["timestamp"] = json!(99_999_999_999_999_i64);
    let bad: Vec<(Vec<u8>, DeadLetterReason)> = vec![
        (vec![0xc3, 0x28], DeadLetterReason::NotUtf8),
        (b"{\"action\":".to_vec(), DeadLetterReason::NotJson),
        (b"\"just a string\"".to_vec(), DeadLetterReason::NotObject),
        (
            serde_json::to_vec(&missing_method).expect("json"),
            DeadLetterReason::MissingField,
        ),
        (
            serde_json::to_vec(&far_future).expect("json"),
            DeadLetterReason::BadTimestamp,
        ),
    ];
    for (i, (bytes, _)) in bad.iter().enumerate() {
        payloads.insert(1_000 * (i + 1), bytes.clone());
    }
    common::produce(&kafka, &kafka.topics.raw, &payloads).await;

    let transformer = common::start_transformer(&kafka).await;
    let sink = common::start_sink(common::sink_settings(&kafka, &search.url, &index)).await;
    let count = search
        .wait_for_count(&index, 10_000, Duration::from_secs(180))
        .await;
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        bad.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    let documents = search.documents(&index).await;
    let sink_metrics = sink.stop().await;
    transformer.stop().await;
    search.clean(&index).await;

    assert_eq!(count, 10_000, "exactly one document per good record");
    assert_eq!(documents.len(), 10_000);
    let by_request: BTreeMap<&str, &Value> = documents
        .iter()
        .map(|d| {
            (
                d["httpRequest"]["requestId"].as_str().expect("requestId"),
                d,
            )
        })
        .collect();
    assert_eq!(by_request.len(), 10_000, "every record's document, once");
    let mut days = BTreeSet::new();
    for record in &records {
        let id = record["httpRequest"]["requestId"].as_str().expect("id");
        let document = by_request
            .get(id)
            .unwrap_or_else(|| panic!("no document for {id}"));
        for (indicator, want) in testkit::seed_indicators(record) {
            assert_eq!(
                document[indicator].as_i64(),
                Some(want),
                "{indicator} of {id}: {record}"
            );
        }
        let timestamp = expected_timestamp(record);
        assert_eq!(document["@timestamp"], json!(timestamp), "{id}");
        assert_eq!(
            document["_index"],
            json!(format!("{index}-{}", timestamp[..10].replace('-', "."))),
            "daily index of {id}"
        );
        assert_eq!(document["_id"], document["event_id"]);
        assert_eq!(document["action"], record["action"], "original fields kept");
        assert_eq!(document["httpRequest"], record["httpRequest"]);
        days.insert(document["_index"].as_str().expect("index").to_owned());
    }
    assert_eq!(days.len(), 2, "the run crosses midnight: {days:?}");

    let letters = common::dead_letters(&dead);
    assert_eq!(
        letters.len(),
        bad.len(),
        "every bad record is a dead letter"
    );
    for (letter, payload) in letters {
        let (_, want) = bad
            .iter()
            .find(|(bytes, _)| *bytes == payload)
            .expect("the dead letter carries one of the bad inputs, untouched");
        assert_eq!(letter.reason, *want, "{}", letter.detail);
        assert_eq!(letter.stage, "transformer");
    }
    assert_eq!(
        metric(
            &sink_metrics,
            "logwarden_sink_items_total",
            "outcome=\"indexed\""
        ),
        10_000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_opensearch_or_the_sink_refuses_goes_to_dead_letter_with_the_reason() {
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-reject", 1).await;
    let index = common::unique_index("sink-reject");
    let good = common::enriched(&common::raw_records(300, 7), &kafka.topics.raw);

    let mut conflict: Value = serde_json::from_slice(&good[0]).expect("json");
    conflict["B_action"] = json!("not a number");
    conflict["event_id"] = json!("conflict-1");
    let mut bad_date: Value = serde_json::from_slice(&good[1]).expect("json");
    let day = bad_date["@timestamp"].as_str().expect("a string")[..10].to_owned();
    bad_date["@timestamp"] = json!(format!("{day}T99:99:99Z"));
    bad_date["event_id"] = json!("conflict-2");
    let mut no_id: Value = serde_json::from_slice(&good[2]).expect("json");
    no_id.as_object_mut().expect("object").remove("event_id");
    let mut no_day: Value = serde_json::from_slice(&good[3]).expect("json");
    no_day["@timestamp"] = json!("soon");
    // (payload, reason, words the detail must contain)
    let bad: Vec<(Vec<u8>, DeadLetterReason, &str)> = vec![
        (
            serde_json::to_vec(&conflict).expect("json"),
            DeadLetterReason::Rejected,
            "B_action",
        ),
        (
            serde_json::to_vec(&bad_date).expect("json"),
            DeadLetterReason::Rejected,
            "@timestamp",
        ),
        (
            serde_json::to_vec(&no_id).expect("json"),
            DeadLetterReason::MissingField,
            "event_id",
        ),
        (
            serde_json::to_vec(&no_day).expect("json"),
            DeadLetterReason::BadTimestamp,
            "soon",
        ),
        (b"not json".to_vec(), DeadLetterReason::NotJson, "not JSON"),
    ];
    let mut payloads = good.clone();
    for (i, (bytes, _, _)) in bad.iter().enumerate() {
        payloads.insert(50 * (i + 1), bytes.clone());
    }
    common::produce(&kafka, &kafka.topics.enriched, &payloads).await;

    let sink = common::start_sink(common::sink_settings(&kafka, &search.url, &index)).await;
    let count = search
        .wait_for_count(&index, good.len() as u64, Duration::from_secs(60))
        .await;
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        bad.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    let metrics = sink.stop().await;
    search.clean(&index).await;

    assert_eq!(count, good.len() as u64, "the rest is indexed");
    let letters = common::dead_letters(&dead);
    assert_eq!(letters.len(), bad.len());
    for (letter, payload) in &letters {
        let (_, reason, words) = bad
            .iter()
            .find(|(bytes, _, _)| bytes == payload)
            .unwrap_or_else(|| panic!("unexpected dead letter: {}", letter.detail));
        assert_eq!(letter.reason, *reason, "{}", letter.detail);
        assert!(letter.detail.contains(words), "{}", letter.detail);
        assert_eq!(letter.stage, "sink");
        assert_eq!(letter.source.topic, kafka.topics.enriched);
        assert_eq!(
            &payloads[usize::try_from(letter.source.offset).expect("offset")],
            payload,
            "the dead letter names its source offset"
        );
        if letter.reason == DeadLetterReason::Rejected {
            assert!(
                letter.detail.contains("mapper_parsing_exception"),
                "OpenSearch's own reason: {}",
                letter.detail
            );
        }
    }
    assert_eq!(
        metric(
            &metrics,
            "logwarden_sink_items_total",
            "outcome=\"rejected\""
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "logwarden_sink_dead_letters_total", ""),
        5.0
    );
}

/// Ports of a sink started as a process: where its metrics are.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_sink_and_a_restart_give_exactly_the_expected_count() {
    const RECORDS: usize = 30_000;
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-kill", 2).await;
    let index = common::unique_index("sink-kill");
    let payloads = common::enriched(&common::raw_records(RECORDS, 9), &kafka.topics.raw);
    common::produce(&kafka, &kafka.topics.enriched, &payloads).await;

    let group = testkit::unique_name("sink-kill-group");
    let port = free_port();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_logwarden-sink"))
            .env("LOGWARDEN_KAFKA__BROKERS", &kafka.brokers)
            .env("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched)
            .env(
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            )
            .env("LOGWARDEN_OPENSEARCH__URL", &search.url)
            .env("LOGWARDEN_SINK__INDEX", &index)
            .env("LOGWARDEN_SINK__GROUP_ID", &group)
            .env("LOGWARDEN_SINK__BATCH_RECORDS", "500")
            .env("LOGWARDEN_SINK__MAX_REQUESTS", "1")
            .env("LOGWARDEN_TELEMETRY__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the sink binary starts")
    };
    let mut sink = start();
    // Kill it once it has indexed some but not all.
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        let indexed = match http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(response) => metric(
                &response.text().await.unwrap_or_default(),
                "logwarden_sink_items_total",
                "outcome=\"indexed\"",
            ),
            Err(_) => 0.0,
        };
        if indexed >= 2_000.0 {
            break indexed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink indexed only {indexed} records in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sink.kill().expect("kill -9");
    sink.wait().expect("reaped");
    let at_kill = search.count(&index).await;
    eprintln!("killed with {killed_at} indexed ({at_kill} visible) of {RECORDS}");
    assert!(
        (at_kill as usize) < RECORDS,
        "the kill landed mid-stream ({at_kill} of {RECORDS} already there)"
    );

    let mut sink = start();
    let count = search
        .wait_for_count(&index, RECORDS as u64, Duration::from_secs(120))
        .await;
    let lag_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lag = group_lag(
            &kafka,
            &group,
            &kafka.topics.enriched,
            Duration::from_secs(10),
        )
        .await
        .expect("group lag");
        if lag == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < lag_deadline,
            "the sink's lag stayed at {lag}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let final_count = search.count(&index).await;
    // SIGTERM: the sink drains and exits 0.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(sink.id().to_string())
        .status();
    let status = sink.wait().expect("exits");
    search.clean(&index).await;

    assert_eq!(count, RECORDS as u64);
    assert_eq!(final_count, RECORDS as u64, "no duplicate, no loss");
    assert!(status.success(), "the sink exits 0 on SIGTERM: {status}");
}
