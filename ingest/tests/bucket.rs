//! Log files from an S3-compatible bucket (a real SeaweedFS server, signed requests): every
//! record of a CloudTrail gzip file and of gzip NDJSON WAF files counted on `raw` exactly once,
//! also across a restart in the middle and with a key uploaded meanwhile; objects that are not
//! gzip or JSON refused and counted with their key, never a stall; a wrong secret reported with
//! the bucket, the access key and the fix, and counted, while the service keeps running.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::seaweedfs::{ACCESS_KEY, SECRET_KEY, Weed};
use common::{Ingest, gzip, metric, sourced};
use pipeline::testkit::{self, Process};
use pipeline::wire::Source;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-ingest");

/// WAF files in the bucket, and records in each.
const WAF_FILES: usize = 40;
const WAF_RECORDS: usize = 300;
/// Records of the CloudTrail file.
const TRAIL_RECORDS: usize = 250;

fn bucket_name(test: &str) -> String {
    testkit::unique_name(test).trim_end_matches('-').to_owned()
}

fn waf_file(file: &str, records: usize) -> Vec<u8> {
    let mut text = String::new();
    for i in 0..records {
        let record = json!({
            "timestamp": 1_764_900_000_000_u64 + i as u64,
            "action": if i.is_multiple_of(10) { "BLOCK" } else { "ALLOW" },
            "terminatingRuleId": "Default_Action",
            "httpRequest": {"clientIp": "203.0.113.7", "country": "-", "uri": "/login", "httpMethod": "POST", "requestId": format!("{file}-{i}")}
        });
        text.push_str(&record.to_string());
        text.push('\n');
    }
    gzip(text.as_bytes())
}

fn trail_file(records: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..records)
        .map(|i| json!({"eventVersion": "1.09", "eventID": format!("trail-{i}"), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1"}))
        .collect();
    gzip(json!({ "Records": records }).to_string().as_bytes())
}

/// A record's id: CloudTrail's `eventID`, WAF's `httpRequest.requestId`.
fn id_of(record: &Value) -> String {
    record["eventID"]
        .as_str()
        .or(record["httpRequest"]["requestId"].as_str())
        .unwrap_or_else(|| panic!("a record without an id: {record}"))
        .to_owned()
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_record_once_across_a_restart_and_bad_objects_refused() {
    let weed = Weed::start().await;
    let bucket = bucket_name("ingest-bucket");
    weed.create_bucket(&bucket).await;
    let mut expected: Vec<String> = (0..TRAIL_RECORDS).map(|i| format!("trail-{i}")).collect();
    weed.put(
        &bucket,
        "AWSLogs/cloudtrail/a-trail.json.gz",
        &trail_file(TRAIL_RECORDS),
    )
    .await;
    for f in 0..WAF_FILES {
        let name = format!("waf-{f:02}");
        weed.put(
            &bucket,
            &format!("AWSLogs/waf/{name}.log.gz"),
            &waf_file(&name, WAF_RECORDS),
        )
        .await;
        expected.extend((0..WAF_RECORDS).map(|i| format!("{name}-{i}")));
    }
    // Refused with their keys (counted, checkpointed), never blocking what follows them.
    weed.put(
        &bucket,
        "AWSLogs/waf/zz-bad-gzip.log.gz",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4],
    )
    .await;
    weed.put(
        &bucket,
        "AWSLogs/waf/zz-bad-json.log",
        b"{\"action\":\"BLOCK\"}\nnot json\n",
    )
    .await;
    // Not read: outside the prefix, and a partial upload.
    weed.put(&bucket, "elsewhere/waf.log", b"{\"action\":\"ALLOW\"}\n")
        .await;
    weed.put(
        &bucket,
        "AWSLogs/waf/.partial.log",
        b"{\"action\":\"ALLOW\"}\n",
    )
    .await;

    let work = std::env::temp_dir().join(bucket_name("ingest-bucket-work"));
    std::fs::create_dir_all(&work).expect("work directory");
    let checkpoint = work.join("done");
    let vars = weed.ingest_vars(&bucket, "AWSLogs/", SECRET_KEY, &checkpoint);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ingest = Ingest::start("ingest-bucket", &vars).await;
    // Stop it in the middle: as soon as the first key is recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while lines(&checkpoint).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no key done within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kafka = ingest.shutdown().await;
    let first_run = lines(&checkpoint);
    let keys = 1 + WAF_FILES + 2;
    assert!(
        !first_run.is_empty() && first_run.len() < keys,
        "the first run stopped in the middle: {first_run:?}"
    );

    // A key uploaded while the service was down, sorting before those done.
    weed.put(&bucket, "AWSLogs/0-late.log.gz", &waf_file("late", 5))
        .await;
    expected.extend((0..5).map(|i| format!("late-{i}")));
    let ingest = Ingest::start_on(kafka, &vars).await;
    let records = sourced(&ingest.raw(expected.len()).await);
    let mut ids: Vec<String> = records.iter().map(|(_, r)| id_of(r)).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids.len(), expected.len(), "no record repeated or missing");
    assert_eq!(ids, expected);
    let by_source = records.iter().fold(BTreeMap::new(), |mut map, (s, _)| {
        *map.entry(*s).or_insert(0) += 1;
        map
    });
    assert_eq!(
        by_source,
        BTreeMap::from([
            (Some(Source::Cloudtrail), TRAIL_RECORDS),
            (Some(Source::Waf), WAF_FILES * WAF_RECORDS + 5)
        ])
    );
    // Both bad objects come last (`zz-`): the second run refused them, each with its reason.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = ingest.metrics().await;
        let refused = |reason: &str| {
            metric(
                &text,
                "logwarden_ingest_refused_total",
                &format!("reason=\"{reason}\",receiver=\"bucket\""),
            )
        };
        let refused = (refused("bad_encoding"), refused("invalid_data"));
        if refused == (1.0, 1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refused (bad gzip, bad JSON) {refused:?}, not (1, 1):\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut done = lines(&checkpoint);
    done.sort();
    let mut all: Vec<String> = (0..WAF_FILES)
        .map(|f| format!("AWSLogs/waf/waf-{f:02}.log.gz"))
        .chain([
            "AWSLogs/0-late.log.gz".to_owned(),
            "AWSLogs/cloudtrail/a-trail.json.gz".to_owned(),
            "AWSLogs/waf/zz-bad-gzip.log.gz".to_owned(),
            "AWSLogs/waf/zz-bad-json.log".to_owned(),
        ])
        .collect();
    all.sort();
    assert_eq!(done, all, "every key of the prefix recorded once");
    ingest.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn a_wrong_secret_is_reported_with_the_fix_and_counted() {
    let weed = Weed::start().await;
    let bucket = bucket_name("ingest-bucket-auth");
    weed.create_bucket(&bucket).await;
    weed.put(&bucket, "logs/a.log", b"{\"action\":\"ALLOW\"}\n")
        .await;
    let kafka = testkit::kafka_with_private_topics("ingest-bucket-auth", 1).await;
    let work = std::env::temp_dir().join(bucket_name("ingest-bucket-auth-work"));
    std::fs::create_dir_all(&work).expect("work directory");
    let wrong = "wrong-secret-0d7f3b";
    let telemetry = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut env = weed.ingest_vars(&bucket, "logs/", wrong, &work.join("done"));
    env.extend(
        [
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.clone()),
            ("LOGWARDEN_KAFKA__TOPICS__RAW", kafka.topics.raw.clone()),
            ("LOGWARDEN_INGEST__HTTP__ENABLED", "false".to_owned()),
            ("LOGWARDEN_TELEMETRY__LISTEN", telemetry.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut process = Process::start(BINARY, &[], &env);
    let output = process
        .wait_for(
            &format!("bucket `{bucket}` refused access key `{ACCESS_KEY}`"),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        output.contains("SignatureDoesNotMatch")
            && output.contains("Fix ingest.bucket.access_key_id and the secret key"),
        "{output}"
    );
    // Tried again at every poll, counted each time, and the service keeps running.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(format!("http://{telemetry}/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics");
        let errors = metric(
            &text,
            "logwarden_ingest_bucket_errors_total",
            "reason=\"credentials\"",
        );
        if errors >= 2.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{errors} errors counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, output) = process.terminate();
    assert_eq!(code, Some(0), "a clean stop: {output}");
    assert!(
        !output.contains(wrong) && !output.contains(SECRET_KEY),
        "{output}"
    );
    let records = testkit::consume(
        &kafka,
        &kafka.topics.raw,
        0,
        Duration::from_secs(5),
        Duration::from_secs(1),
    )
    .await;
    assert!(records.is_empty(), "nothing read with a wrong secret");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn a_bad_bucket_config_stops_start_up_naming_the_key() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("LOGWARDEN_INGEST__BUCKET__NAME", "logs")],
            "config key `ingest.bucket.checkpoint_file` is not set",
        ),
        (
            &[
                ("LOGWARDEN_INGEST__BUCKET__NAME", "logs"),
                ("LOGWARDEN_INGEST__BUCKET__CHECKPOINT_FILE", "/tmp/x"),
                ("LOGWARDEN_INGEST__BUCKET__ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ],
            "config key `ingest.bucket.secret_access_key` is not set while ingest.bucket.access_key_id is",
        ),
        (
            &[
                ("LOGWARDEN_INGEST__BUCKET__NAME", "logs"),
                ("LOGWARDEN_INGEST__BUCKET__CHECKPOINT_FILE", "/tmp/x"),
                ("LOGWARDEN_INGEST__BUCKET__ENDPOINT", "seaweedfs:8333"),
                (
                    "LOGWARDEN_INGEST__BUCKET__SECRET_ACCESS_KEY",
                    "s3cr3t-bucket-key",
                ),
            ],
            "config key `ingest.bucket.endpoint` `seaweedfs:8333` is not an http(s) URL",
        ),
    ];
    for (env, expected) in cases {
        let mut env = env.to_vec();
        env.push(("LOGWARDEN_INGEST__HTTP__ENABLED", "false"));
        let (code, output) = Process::start(BINARY, &[], &env).wait(Duration::from_secs(30));
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains(expected), "{env:?}: {output}");
        assert!(!output.contains("s3cr3t-bucket-key"), "{output}");
    }
}
