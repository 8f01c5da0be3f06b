//! End to end: senders → ingest → `raw` → transformer → sink → OpenSearch, every record
//! counted. Seed-shaped WAF records (which the default rules accept) arrive over NDJSON and are
//! all indexed; HEC events, for which no rules exist yet (issue #19's second part), are all
//! dead-lettered by the transformer with its reason, their bytes untouched.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::pipeline_run::{
    Search, raw_records, sink_settings, start_sink, start_transformer, unique_index,
};
use common::{BodyFile, Ingest, TOKEN, curl};
use pipeline::testkit;
use pipeline::wire::{DeadLetter, DeadLetterReason};
use rdkafka::Message;
use serde_json::json;

#[tokio::test]
async fn waf_over_ndjson_is_indexed_and_hec_events_are_dead_lettered() {
    let kafka = testkit::kafka_with_private_topics("ingest-e2e", 2).await;
    let search = Search::require().await;
    let index = unique_index("ingest-e2e");
    let transformer = start_transformer(&kafka).await;
    let sink = start_sink(sink_settings(&kafka, &search.url, &index)).await;
    let ingest = Ingest::start_on(kafka.clone(), &[]).await;
    let url = ingest.url();

    let waf = raw_records(300, 19);
    let ndjson: String = waf.iter().map(|r| format!("{r}\n")).collect();
    let body = BodyFile::new(ndjson.as_bytes());
    let answer = curl(&[
        &format!("{url}/ingest/waf"),
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        "--data-binary",
        &body.arg(),
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"accepted": 300}))
    );
    let hec: Vec<String> = (0..40)
        .map(|i| json!({"time": 1_764_914_400 + i, "host": "web-1", "sourcetype": "app", "event": {"level": "error", "n": i}}).to_string())
        .collect();
    for chunk in hec.chunks(10) {
        let answer = curl(&[
            &format!("{url}/services/collector/event"),
            "-H",
            &format!("Authorization: Splunk {TOKEN}"),
            "-d",
            &chunk.concat(),
        ])
        .await;
        assert_eq!(
            (answer.status, answer.json()),
            (200, json!({"text": "Success", "code": 0}))
        );
    }

    let indexed = search
        .wait_for_count(&index, 300, Duration::from_secs(120))
        .await;
    assert_eq!(indexed, 300, "every WAF record indexed once");
    let ids: BTreeSet<String> = search
        .documents(&index)
        .await
        .iter()
        .filter_map(|d| d["httpRequest"]["requestId"].as_str().map(str::to_owned))
        .collect();
    let sent: BTreeSet<String> = waf
        .iter()
        .filter_map(|r| r["httpRequest"]["requestId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, sent, "exactly the records sent");

    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        40,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(dead.len(), 40, "every HEC event dead-lettered, none lost");
    let mut payloads = BTreeSet::new();
    for message in &dead {
        let letter = message
            .headers()
            .and_then(DeadLetter::from_headers)
            .expect("dead-letter headers");
        assert_eq!(letter.stage, "transformer");
        assert_eq!(
            (letter.reason, letter.detail.as_str()),
            (DeadLetterReason::MissingField, "action is missing"),
            "the seed's rules want a WAF record"
        );
        assert_eq!(letter.source.topic, kafka.topics.raw);
        payloads.insert(testkit::payload_text(message).to_owned());
    }
    assert_eq!(
        payloads,
        hec.iter().cloned().collect(),
        "their bytes untouched"
    );

    ingest.shutdown().await;
    transformer.stop().await;
    sink.stop().await;
    search.clean(&index).await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
}
