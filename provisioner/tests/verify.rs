//! `logwarden-provisioner verify --within 10m` against the local stack's real OpenSearch, as the
//! Helm chart's `helm test` Job runs it: nothing there fails naming the events; old events only
//! still fail; recent events without results fail naming the results; both pass. Each run has its
//! own events alias and results index.

use std::time::Duration;

use pipeline::testkit::{self, Process};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");

async fn put(http: &reqwest::Client, url: &str, path: &str, body: &Value) {
    let response = http
        .put(format!("{url}/{path}"))
        .json(body)
        .send()
        .await
        .expect("OpenSearch answers");
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn verify_passes_only_with_recent_events_and_results_and_names_what_is_missing() {
    let url = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let base = testkit::unique_name("prov-verify");
    let (events, results) = (format!("{base}events"), format!("{base}results"));
    let spec = std::env::temp_dir().join(format!("{base}spec.yaml"));
    std::fs::write(
        &spec,
        format!(
            "events: {events}\nresults: {results}\ndetectors: [{{name: d, feature: {{field: UNK_country}}}}]\n"
        ),
    )
    .expect("write spec");
    let spec_path = spec.display().to_string();
    let verify = || {
        Process::start(
            BINARY,
            &[
                "verify", "--within", "10m", "--spec", &spec_path, "--url", &url, "--wait", "20s",
            ],
            &[],
        )
        .wait(Duration::from_secs(60))
    };

    let (code, output) = verify();
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "no events with @timestamp in the last 10m in {events}, which does not exist \
             (written by logwarden-sink"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "no results with data_end_time in the last 10m in {results}, which does not exist"
        )),
        "{output}"
    );

    // An event from two hours ago: outside the window.
    let now = chrono::Utc::now();
    let day = format!("{events}-{}", now.format("%Y.%m.%d"));
    put(&http, &url, &day, &json!({"aliases": {events.clone(): {}}})).await;
    let old = (now - chrono::Duration::hours(2)).to_rfc3339();
    put(
        &http,
        &url,
        &format!("{day}/_doc/old?refresh=true"),
        &json!({"@timestamp": old, "event_id": "old"}),
    )
    .await;
    let (code, output) = verify();
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "events: 0 in {events} with @timestamp in the last 10m"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "no events with @timestamp in the last 10m in {events} (written"
        )),
        "{output}"
    );

    // A recent event: only the results are missing now.
    put(
        &http,
        &url,
        &format!("{day}/_doc/new?refresh=true"),
        &json!({"@timestamp": (now - chrono::Duration::minutes(1)).to_rfc3339(), "event_id": "new"}),
    )
    .await;
    let (code, output) = verify();
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "events: 1 in {events} with @timestamp in the last 10m"
        )),
        "{output}"
    );
    assert!(!output.contains("no events"), "{output}");
    assert!(
        output.contains(&format!(
            "no results with data_end_time in the last 10m in {results}, which does not exist \
             (written by logwarden-detector: check that it runs and reaches OpenSearch)"
        )),
        "{output}"
    );

    // A result whose interval ended a minute ago: both present.
    let end = now.timestamp_millis() - 60_000;
    put(
        &http,
        &url,
        &format!("{results}/_doc/d-{end}?refresh=true"),
        &json!({"detector_id": "d", "data_start_time": end - 60_000, "data_end_time": end}),
    )
    .await;
    let (code, output) = verify();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!(
            "results: 1 in {results} with data_end_time in the last 10m"
        )),
        "{output}"
    );

    // The results of another detector (e.g. the plugin's index): none there.
    let elsewhere = format!("{base}plugin-results*");
    let (code, output) = Process::start(
        BINARY,
        &[
            "verify",
            "--within",
            "10m",
            "--results-index",
            &elsewhere,
            "--spec",
            &spec_path,
            "--url",
            &url,
        ],
        &[],
    )
    .wait(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "no results with data_end_time in the last 10m in {elsewhere} (written by"
        )),
        "{output}"
    );

    let _ = http.delete(format!("{url}/{base}*")).send().await;
    let _ = std::fs::remove_file(spec);
}
