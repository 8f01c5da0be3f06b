//! Splunk HEC end to end: batches of concatenated event envelopes POSTed to
//! `/services/collector/event` with `Authorization: Splunk <token>` (curl with the documented
//! payload), then Kafka, the transformer's default rules, the sink and OpenSearch, and the
//! default spec's HEC detectors: a burst of error-level events must alert.

mod common;
mod sources;

use common::{TOKEN, curl};
use pipeline::wire::Source;
use serde_json::json;
use sources::{Feed, Run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_errors_over_hec_is_indexed_and_alerts() {
    let run = Run::start("sources-splunk", Source::Splunk, &[]).await;
    let url = format!("{}/services/collector/event", run.ingest.url());
    let auth = format!("Authorization: Splunk {TOKEN}");
    let mut feed = Feed::new(Source::Splunk, "hec_error");
    while let Some(batch) = feed.next_batch().await {
        if batch.is_empty() {
            continue;
        }
        let body: String = batch.iter().map(|r| r.line.as_str()).collect();
        let answer = curl(&[&url, "-H", &auth, "-d", &body]).await;
        assert_eq!(
            (answer.status, answer.json()),
            (200, json!({"text": "Success", "code": 0}))
        );
    }
    run.check_and_stop(&feed).await;
}
