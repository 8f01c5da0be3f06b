//! CloudTrail end to end, delivered as CloudTrail delivers to S3: gzip log files
//! (`{"Records":[...]}`) appearing in the directory logwarden-ingest reads (written under a
//! dot-name, then renamed, as an upload completes), then Kafka, the transformer's default rules,
//! the sink and OpenSearch, and the default spec's CloudTrail detectors: a burst of AccessDenied
//! must alert, and so must calls from regions never seen before (the fixed list's indicator and
//! the learned new-region detector, which names them).

use crate::common::gzip;
use crate::run::{Feed, Run};
use pipeline::testkit;
use pipeline::wire::Source;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_access_denied_in_log_files_is_indexed_and_alerts() {
    deliver("ct_access_denied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_regions_never_seen_alert_and_are_named() {
    deliver("ct_unexpected_region").await;
}

/// Normal traffic, a phase raising `indicator`, normal traffic, as log files; then the checks.
async fn deliver(indicator: &'static str) {
    let dir = std::env::temp_dir().join(testkit::unique_name("sources-ct").trim_end_matches('-'));
    std::fs::create_dir_all(&dir).expect("directory");
    let directory = dir.to_string_lossy().into_owned();
    let vars = [
        ("LOGWARDEN_INGEST__FILES__DIRECTORY", directory.as_str()),
        ("LOGWARDEN_INGEST__FILES__POLL_MS", "200"),
    ];
    let run = Run::start("sources-cloudtrail", Source::Cloudtrail, &vars).await;
    let mut feed = Feed::new(Source::Cloudtrail, indicator);
    let mut files = 0;
    while let Some(batch) = feed.next_batch().await {
        if batch.is_empty() {
            continue;
        }
        files += 1;
        let records: Vec<Value> = batch
            .iter()
            .map(|r| serde_json::from_str(&r.line).expect("JSON"))
            .collect();
        let name = format!("123456789012_CloudTrail_us-east-1_{files:06}.json.gz");
        let partial = dir.join(format!(".{name}"));
        std::fs::write(
            &partial,
            gzip(json!({"Records": records}).to_string().as_bytes()),
        )
        .expect("write");
        std::fs::rename(&partial, dir.join(name)).expect("rename");
    }
    run.check_and_stop(&feed).await;
    let _ = std::fs::remove_dir_all(&dir);
}
