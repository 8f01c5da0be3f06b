//! The sink's edges on the real OpenSearch: a daily index an operator closed or write-blocked,
//! and records dated far outside the days the sink accepts. Each is a dead letter with its
//! reason; the other records are indexed, no index is created for a day out of range, and the
//! sink never enters back-pressure for them (nothing is retried). The largest record the
//! transformer produces is indexed like any other.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Search, metric};
use pipeline::testkit;
use pipeline::wire::DeadLetterReason;
use reqwest::Method;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` of the day `offset` days from today (UTC).
fn day(offset: i64) -> String {
    let now =
        chrono::DateTime::from_timestamp_millis(common::t0() + 10 * 60 * 1_000 + offset * DAY_MS)
            .expect("in range");
    now.format("%Y-%m-%d").to_string()
}

/// An enriched record (as the transformer writes it) of `day`, with its own event id.
fn record(template: &Value, day: &str, id: &str) -> Vec<u8> {
    let mut record = template.clone();
    record["@timestamp"] = json!(format!("{day}T12:00:00.000Z"));
    record["event_id"] = json!(id);
    serde_json::to_vec(&record).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_days_and_days_out_of_range_are_dead_letters_and_the_rest_flows_on() {
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-edges", 1).await;
    let index = common::unique_index("sink-edges");
    let daily = |day: &str| format!("{index}-{}", day.replace('-', "."));
    let (today, frozen, closed) = (day(0), day(-3), day(-4));

    // An operator froze one day (index.blocks.write) and closed another.
    for (name, settings) in [
        (daily(&frozen), json!({"index.blocks.write": true})),
        (daily(&closed), json!({})),
    ] {
        let (status, body) = search
            .call(
                Method::PUT,
                &name,
                Some(json!({"settings": {"number_of_replicas": 0}})),
            )
            .await;
        assert!(status.is_success(), "creating {name}: {body}");
        if settings != json!({}) {
            let (status, body) = search
                .call(Method::PUT, &format!("{name}/_settings"), Some(settings))
                .await;
            assert!(status.is_success(), "blocking {name}: {body}");
        }
    }
    let (status, body) = search
        .call(Method::POST, &format!("{}/_close", daily(&closed)), None)
        .await;
    assert!(status.is_success(), "closing: {body}");

    // 400 records of today, with the edge cases among them (and records of today after them,
    // which must not wait behind them).
    let template: Value =
        serde_json::from_slice(&common::enriched(&common::raw_records(1, 3), &kafka.topics.raw)[0])
            .expect("json");
    let mut payloads: Vec<Vec<u8>> = (0..400)
        .map(|i| record(&template, &today, &format!("today-{i}")))
        .collect();
    let edges: Vec<(String, DeadLetterReason, String)> = [
        (frozen.clone(), DeadLetterReason::IndexBlocked, 4),
        (closed.clone(), DeadLetterReason::IndexBlocked, 3),
        ("2090-01-01".to_owned(), DeadLetterReason::DayOutOfRange, 2),
        ("2001-01-01".to_owned(), DeadLetterReason::DayOutOfRange, 2),
        (day(2), DeadLetterReason::DayOutOfRange, 1),
        (day(-31), DeadLetterReason::DayOutOfRange, 1),
    ]
    .into_iter()
    .flat_map(|(day, reason, count)| {
        (0..count).map(move |i| (day.clone(), reason, format!("edge-{day}-{i}")))
    })
    .collect();
    for (i, (day, _, id)) in edges.iter().enumerate() {
        payloads.insert(20 * (i + 1), record(&template, day, id));
    }
    // Yesterday and tomorrow are inside the default days (30 before, 1 after).
    payloads.push(record(&template, &day(-1), "yesterday"));
    payloads.push(record(&template, &day(1), "tomorrow"));
    // The largest record the transformer produces (just under its 1,000,000-byte limit) is
    // indexed too: an overlong string is kept in `_source`, not indexed (`ignore_above`).
    let mut large: Value =
        serde_json::from_slice(&record(&template, &today, "large")).expect("json");
    large["padding"] = json!("");
    let base = serde_json::to_vec(&large).expect("json").len();
    large["padding"] = json!("p".repeat(999_000 - base));
    let large = serde_json::to_vec(&large).expect("json");
    assert_eq!(large.len(), 999_000);
    payloads.push(large);
    common::produce(&kafka, &kafka.topics.enriched, &payloads).await;

    let sink = common::start_sink(common::sink_settings(&kafka, &search.url, &index)).await;
    let count = search
        .wait_for_count(&format!("{index}-*"), 403, Duration::from_secs(60))
        .await;
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        edges.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    let (_, indices) = search
        .call(
            Method::GET,
            &format!("_cat/indices/{index}-*?format=json&expand_wildcards=open,closed"),
            None,
        )
        .await;
    let frozen_count = search.count(&daily(&frozen)).await;
    let metrics = sink.stop().await;
    search.clean(&index).await;
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert_eq!(
        count, 403,
        "today's 400, yesterday's, tomorrow's and the large one are indexed"
    );
    assert_eq!(frozen_count, 0, "nothing was written to the frozen day");
    let mut names: Vec<String> = indices
        .as_array()
        .expect("a list of indices")
        .iter()
        .map(|i| i["index"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        daily(&day(-4)),
        daily(&day(-3)),
        daily(&day(-1)),
        daily(&today),
        daily(&day(1)),
    ];
    expected.sort();
    assert_eq!(names, expected, "no index for a day out of range");

    let letters = common::dead_letters(&dead);
    let by_id: BTreeMap<String, (DeadLetterReason, String)> = letters
        .iter()
        .map(|(letter, payload)| {
            let value: Value = serde_json::from_slice(payload).expect("the record, untouched");
            let id = value["event_id"].as_str().expect("an id").to_owned();
            assert_eq!(letter.stage, "sink");
            (id, (letter.reason, letter.detail.clone()))
        })
        .collect();
    assert_eq!(
        letters.len(),
        edges.len(),
        "one dead letter each: {by_id:?}"
    );
    for (day, reason, id) in &edges {
        let (got, detail) = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no dead letter for {id}"));
        assert_eq!(got, reason, "{id}: {detail}");
        match reason {
            DeadLetterReason::IndexBlocked => {
                assert!(detail.contains(&daily(day)), "names the index: {detail}")
            }
            _ => assert!(detail.contains("sink.accept_days_past"), "{detail}"),
        }
    }
    assert_eq!(
        metric(
            &metrics,
            "logwarden_sink_items_total",
            "outcome=\"retried\""
        ),
        0.0,
        "a blocked index is not retried (no back-pressure)"
    );
    assert_eq!(metric(&metrics, "logwarden_sink_backpressure", ""), 0.0);
    assert_eq!(
        metric(&metrics, "logwarden_sink_dead_letters_total", ""),
        edges.len() as f64
    );
}
