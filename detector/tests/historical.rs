//! Historical analysis on the real stack: a past range of the events index is scored by a model
//! trained on the history before it, and the results carry a task id (so monitors ignore them).

mod common;

use detector::spec::Spec;
use pipeline::testkit;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_range_is_scored_and_marked_historical() {
    let url = testkit::require_opensearch().await;
    let name = testkit::unique_name("historical");
    let events = format!("{name}events");
    let http = reqwest::Client::new();
    // 120 one-second intervals of 10 events each, ten minutes ago; seconds 100..105 are a burst
    // of UNK_country, seconds 110..113 one of B_action.
    let base = (chrono::Utc::now().timestamp_millis() - 600_000) / 1_000 * 1_000;
    let mut body = String::new();
    for second in 0..120_i64 {
        for i in 0..10_i64 {
            let bad = (100..105).contains(&second) || (second % 17 == 0 && i == 0);
            let blocked = (110..113).contains(&second);
            let time = chrono::DateTime::from_timestamp_millis(base + second * 1_000 + i * 50)
                .expect("time")
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            body.push_str(&format!("{{\"index\":{{\"_index\":\"{events}\"}}}}\n"));
            body.push_str(
                &json!({"@timestamp": time, "UNK_country": u8::from(bad), "B_action": u8::from(blocked)})
                    .to_string(),
            );
            body.push('\n');
        }
    }
    let loaded: Value = http
        .post(format!("{url}/_bulk?refresh=true"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("bulk")
        .json()
        .await
        .expect("bulk answer");
    assert_eq!(loaded["errors"], false, "{loaded}");

    let spec = Spec::parse(
        &format!(
            r"
events: {events}
results: {name}results
checkpoints: {name}checkpoints
detectors:
  - name: country-anomaly-detector
    feature: {{field: UNK_country}}
    interval: 1s
    model: {{history: 80, baseline: 30}}
  - name: two-feature-detector
    feature: {{field: UNK_country}}
    extra_features: [{{field: B_action}}]
    interval: 1s
    model: {{history: 80, baseline: 30}}
"
        ),
        "historical test",
    )
    .expect("spec");
    let config = pipeline::config::OpenSearchConfig {
        url: url.clone(),
        ..Default::default()
    };
    let client =
        pipeline::search::client(&config, std::time::Duration::from_secs(30)).expect("client");
    let (task, summary) =
        detector::evaluate::historical(&spec, &client, base + 90_000, base + 120_000)
            .await
            .expect("historical analysis");

    let results_index = format!("{name}results");
    let of = |detector: &str| {
        common::results(
            &http,
            &url,
            &results_index,
            json!({"term": {"detector_id": detector}}),
        )
    };
    let results = of("country-anomaly-detector").await;
    let two = of("two-feature-detector").await;
    common::clean(&http, &url, &[events, format!("{name}results")]).await;

    assert_eq!(
        summary,
        vec![
            ("country-anomaly-detector".to_owned(), 30, 5),
            ("two-feature-detector".to_owned(), 30, 8)
        ]
    );
    assert_eq!(results.len(), 30, "one result per interval of the range");
    assert!(
        results.iter().all(|r| r["task_id"] == json!(task)),
        "every result is marked historical"
    );
    let flagged: Vec<i64> = results
        .iter()
        .filter(|r| r["anomaly_grade"].as_f64().unwrap_or(0.0) > 0.0)
        .filter_map(|r| r["data_start_time"].as_i64())
        .map(|t| (t - base) / 1_000)
        .collect();
    assert_eq!(
        flagged,
        [100, 101, 102, 103, 104],
        "the burst, and only the burst"
    );
    // The two-feature detector: both bursts, each put down to its own feature.
    let driven: Vec<(i64, String)> = two
        .iter()
        .filter(|r| r["anomaly_grade"].as_f64().unwrap_or(0.0) > 0.0)
        .filter_map(|r| {
            let start = (r["data_start_time"].as_i64()? - base) / 1_000;
            let top = r["relevant_attribution"]
                .as_array()?
                .iter()
                .max_by(|a, b| {
                    a["data"]
                        .as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&b["data"].as_f64().unwrap_or(0.0))
                })?;
            Some((start, top["feature_id"].as_str()?.to_owned()))
        })
        .collect();
    let expected: Vec<(i64, String)> = (100..105)
        .map(|s| (s, "sum_UNK_country".to_owned()))
        .chain((110..113).map(|s| (s, "sum_B_action".to_owned())))
        .collect();
    assert_eq!(driven, expected);
    assert!(
        two.iter()
            .all(|r| r["feature_data"].as_array().map(Vec::len) == Some(2)),
        "every result carries both features"
    );
}
