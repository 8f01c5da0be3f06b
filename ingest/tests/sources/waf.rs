//! AWS WAF end to end, sent as AWS sends it: Amazon Data Firehose HTTP endpoint delivery
//! requests (curl with the documented payload, base64 records) into logwarden-ingest, then Kafka,
//! the transformer's default rules, the sink and OpenSearch, and the default spec's WAF
//! detectors: a rate-based block flood must alert.

use crate::common::{TOKEN, base64, curl, firehose_request};
use crate::run::{Feed, Run};
use pipeline::wire::Source;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_based_block_flood_over_firehose_is_indexed_and_alerts() {
    let run = Run::start("sources-waf", Source::Waf, &[]).await;
    let url = format!("{}/firehose/waf", run.ingest.url());
    let key = format!("X-Amz-Firehose-Access-Key: {TOKEN}");
    let mut feed = Feed::new(Source::Waf, "waf_rate_limited");
    let mut requests = 0;
    while let Some(batch) = feed.next_batch().await {
        if batch.is_empty() {
            continue;
        }
        requests += 1;
        let id = format!("waf-{requests}");
        let data: Vec<String> = batch.iter().map(|r| base64(r.line.as_bytes())).collect();
        let answer = curl(&[
            &url,
            "-H",
            &key,
            "-H",
            "Content-Type: application/json",
            "-d",
            &firehose_request(&id, &data),
        ])
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["requestId"], json!(id));
    }
    run.check_and_stop(&feed).await;
}
