//! End to end: senders → ingest → `raw` → transformer → sink → OpenSearch, every record
//! counted. Seed-shaped WAF records arrive over NDJSON and HEC events over the collector, on the
//! same topics: each is enriched by its source's section of the default rules and indexed in its
//! source's daily index, none dead-lettered.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::pipeline_run::{
    Search, raw_records, sink_settings, start_sink, start_transformer, unique_index,
};
use common::{BodyFile, Ingest, TOKEN, curl};
use pipeline::testkit;
use pipeline::wire::{DeadLetter, SOURCE_FIELD};
use rdkafka::Message;
use serde_json::json;

#[tokio::test]
async fn waf_over_ndjson_and_hec_events_are_each_indexed_by_their_source() {
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
    // Timed now: the sink takes records dated within its accepted days only.
    let now = chrono::Utc::now().timestamp();
    let hec: Vec<String> = (0..40)
        .map(|i| {
            let level = if i % 4 == 0 { "error" } else { "info" };
            json!({"time": now + i, "host": "web-1", "sourcetype": "app", "event": {"level": level, "n": i}})
                .to_string()
        })
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

    let pattern = format!("{index}*");
    let indexed = search
        .wait_for_count(&pattern, 340, Duration::from_secs(120))
        .await;
    assert_eq!(indexed, 340, "every record indexed once");
    let documents = search.documents(&pattern).await;
    let ids: BTreeSet<String> = documents
        .iter()
        .filter_map(|d| d["httpRequest"]["requestId"].as_str().map(str::to_owned))
        .collect();
    let sent: BTreeSet<String> = waf
        .iter()
        .filter_map(|r| r["httpRequest"]["requestId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, sent, "exactly the WAF records sent");
    let mut events: Vec<(u64, u64, String)> = documents
        .iter()
        .filter(|d| d[SOURCE_FIELD] == "splunk")
        .map(|d| {
            (
                d["event"]["n"].as_u64().unwrap_or(u64::MAX),
                d["hec_error"].as_u64().unwrap_or(u64::MAX),
                d["host"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    events.sort();
    let expected: Vec<(u64, u64, String)> = (0..40)
        .map(|n| (n, u64::from(n % 4 == 0), "web-1".to_owned()))
        .collect();
    assert_eq!(
        events, expected,
        "every HEC event once, hec_error on the errors"
    );
    assert!(
        documents
            .iter()
            .filter(|d| d[SOURCE_FIELD] == "splunk")
            .all(|d| d["_index"]
                .as_str()
                .is_some_and(|i| i.starts_with(&format!("{index}-splunk-")))),
        "HEC events in the splunk daily index"
    );

    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        0,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await;
    let letters: Vec<String> = dead
        .iter()
        .map(|m| format!("{:?}", m.headers().and_then(DeadLetter::from_headers)))
        .collect();
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:?}");

    ingest.shutdown().await;
    transformer.stop().await;
    sink.stop().await;
    search.clean(&index).await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
}
