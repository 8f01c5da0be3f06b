//! Log files from a directory: CloudTrail's gzip JSON, gzip NDJSON and NDJSON, every record
//! counted on `raw` with its source; processed files checkpointed, so a restart neither skips
//! nor repeats one.

mod common;

use std::collections::BTreeMap;

use common::{Ingest, gzip, metric, sourced};
use pipeline::testkit;
use pipeline::wire::Source;
use serde_json::json;

#[tokio::test]
async fn files_are_read_once_across_restarts() {
    let dir = std::env::temp_dir().join(testkit::unique_name("ingest-files").trim_end_matches('-'));
    std::fs::create_dir_all(&dir).expect("directory");
    let trail = json!({"Records": [
        {"eventVersion": "1.09", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "additionalEventData": {"MFAUsed": "No"}},
        {"eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy", "awsRegion": "us-east-1"},
        {"eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress", "errorCode": "UnauthorizedOperation"}
    ]});
    std::fs::write(
        dir.join("a-trail.json.gz"),
        gzip(trail.to_string().as_bytes()),
    )
    .expect("write");
    std::fs::write(
        dir.join("b-waf.ndjson.gz"),
        gzip(b"{\"action\":\"BLOCK\"}\n{\"action\":\"CAPTCHA\"}\n"),
    )
    .expect("write");
    std::fs::write(dir.join("c-waf.ndjson"), b"{\"action\":\"ALLOW\"}\n").expect("write");
    std::fs::write(
        dir.join(".upload-in-progress"),
        b"{\"action\":\"partial\"}\n",
    )
    .expect("write");
    std::fs::write(dir.join("d-bad.ndjson"), b"not json\n").expect("write");
    let directory = dir.to_string_lossy().into_owned();
    let vars = [
        ("LOGWARDEN_INGEST__FILES__DIRECTORY", directory.as_str()),
        ("LOGWARDEN_INGEST__FILES__POLL_MS", "200"),
    ];
    let ingest = Ingest::start("ingest-files", &vars).await;
    let records = sourced(&ingest.raw(6).await);
    let count = |records: &[(Option<Source>, serde_json::Value)]| {
        records.iter().fold(BTreeMap::new(), |mut map, (s, _)| {
            *map.entry(*s).or_insert(0) += 1;
            map
        })
    };
    assert_eq!(
        count(&records),
        BTreeMap::from([(Some(Source::Cloudtrail), 3), (Some(Source::Waf), 3)])
    );
    assert_eq!(
        records[0].1, trail["Records"][0],
        "a CloudTrail record as sent"
    );
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_refused_total",
            "reason=\"invalid_data\",receiver=\"files\""
        ),
        1.0
    );
    let kafka = ingest.shutdown().await;
    let done = std::fs::read_to_string(dir.join(".logwarden-ingest-done")).expect("checkpoint");
    assert_eq!(
        done,
        "a-trail.json.gz\nb-waf.ndjson.gz\nc-waf.ndjson\nd-bad.ndjson\n"
    );

    std::fs::write(dir.join("e-waf.ndjson"), b"{\"action\":\"COUNT\"}\n").expect("write");
    let ingest = Ingest::start_on(kafka, &vars).await;
    let records = sourced(&ingest.raw(7).await);
    assert_eq!(
        records.len(),
        7,
        "only the new file after the restart: {records:?}"
    );
    assert_eq!(records[6], (Some(Source::Waf), json!({"action": "COUNT"})));
    ingest.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
