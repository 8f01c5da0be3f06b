//! CloudWatch Logs end to end, sent as a subscription filter delivers them through Amazon Data
//! Firehose: per log group and stream, a gzip subscription payload (`DATA_MESSAGE`), base64 in a
//! Firehose HTTP endpoint request (curl with the documented payload), unpacked by
//! logwarden-ingest into one record per log event; then Kafka, the transformer's default rules,
//! the sink and OpenSearch, and the default spec's CloudWatch detectors: a burst of Lambda
//! timeouts must alert.

use std::collections::BTreeMap;

use crate::common::{TOKEN, base64, curl, firehose_request, gzip};
use crate::run::{Feed, Run};
use pipeline::wire::Source;
use producer::generate::cloudwatch::subscription_payload;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_timeouts_over_firehose_are_indexed_and_alert() {
    let run = Run::start("sources-cloudwatch", Source::Cloudwatch, &[]).await;
    let url = format!("{}/firehose/cloudwatch", run.ingest.url());
    let key = format!("X-Amz-Firehose-Access-Key: {TOKEN}");
    let mut feed = Feed::new(Source::Cloudwatch, "cw_lambda_timeout");
    let mut requests = 0;
    while let Some(batch) = feed.next_batch().await {
        let mut streams: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for record in &batch {
            let event: Value = serde_json::from_str(&record.line).expect("JSON");
            let stream = (
                event["logGroup"].as_str().unwrap_or_default().to_owned(),
                event["logStream"].as_str().unwrap_or_default().to_owned(),
            );
            streams.entry(stream).or_default().push(event);
        }
        if streams.is_empty() {
            continue;
        }
        requests += 1;
        let data: Vec<String> = streams
            .values()
            .map(|events| base64(&gzip(subscription_payload(events).to_string().as_bytes())))
            .collect();
        let answer = curl(&[
            &url,
            "-H",
            &key,
            "-d",
            &firehose_request(&format!("cw-{requests}"), &data),
        ])
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    run.check_and_stop(&feed).await;
}
