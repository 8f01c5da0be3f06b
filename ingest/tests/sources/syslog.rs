//! Syslog end to end with util-linux `logger`, as hosts' programs log: each generated message
//! sent over TCP with its program name (`-t`), process id (`--id`) and facility.severity (`-p`),
//! in RFC 5424 or RFC 3164 as its host would; then Kafka, the transformer's default rules, the
//! sink and OpenSearch, and the default spec's syslog detectors: an sshd brute force must
//! alert.

use crate::run::{Feed, Run};
use pipeline::wire::Source;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sshd_brute_force_sent_with_logger_is_indexed_and_alerts() {
    let run = Run::start("sources-syslog", Source::Syslog, &[]).await;
    let port = run.ingest.bound.syslog_tcp.expect("tcp").port().to_string();
    let mut feed = Feed::new(Source::Syslog, "syslog_auth_failure");
    while let Some(batch) = feed.next_batch().await {
        for record in batch {
            let raw: Value = serde_json::from_slice(&record.raw).expect("JSON");
            let text = |name: &str| raw[name].as_str().unwrap_or_default().to_owned();
            let protocol = format!("--{}", text("protocol"));
            let priority = format!("{}.{}", text("facility"), text("severity"));
            let id = format!("--id={}", text("procid"));
            let output = tokio::process::Command::new("logger")
                .args(["--tcp", "--server", "127.0.0.1", "--port", &port])
                .args([
                    protocol.as_str(),
                    "-t",
                    &text("appname"),
                    &id,
                    "-p",
                    &priority,
                ])
                .arg("--")
                .arg(text("message"))
                .output()
                .await
                .unwrap_or_else(|err| {
                    panic!("running logger ({err}): install util-linux's `bsdutils` package")
                });
            assert!(
                output.status.success(),
                "logger failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    run.check_and_stop(&feed).await;
}

#[test]
fn the_producers_raw_syslog_records_are_what_the_receiver_writes_for_its_lines() {
    let records = crate::run::Feed::records(Source::Syslog, 300, "syslog_error");
    for record in records {
        let expected: Value = serde_json::from_slice(&record.raw).expect("JSON");
        let received_at = expected["received_at"].as_str().expect("received_at");
        let receipt = ingest::syslog::parse::Receipt {
            at: chrono::DateTime::parse_from_rfc3339(received_at)
                .expect("RFC 3339")
                .to_utc(),
            peer: None,
        };
        let parsed: Value = serde_json::from_slice(&ingest::syslog::parse::record(
            record.line.as_bytes(),
            false,
            receipt,
        ))
        .expect("JSON");
        assert_eq!(parsed, expected, "{}", record.line);
    }
}
