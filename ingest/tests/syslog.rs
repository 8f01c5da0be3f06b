//! The syslog receivers with util-linux `logger` as the sender (TCP newline and octet-counting
//! framing, UDP, RFC 5424 and RFC 3164): every message counted on `raw`, parsed into fields,
//! what cannot be parsed kept whole; and TCP reads paused while Kafka cannot take the records.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Ingest, metric, sourced};
use pipeline::kafka::{KafkaConfig, TopicNames};
use pipeline::testkit;
use pipeline::wire::Source;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Runs util-linux `logger` with `args` against `port`.
async fn logger(port: u16, args: &[&str]) {
    let output = tokio::process::Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "running logger ({err}): install util-linux's logger (`apt-get install bsdutils`)"
            )
        });
    assert!(
        output.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn logger_messages_over_tcp_and_udp_are_parsed_and_counted() {
    let ingest = Ingest::start("syslog", &[("LOGWARDEN_INGEST__MAX_EVENT_BYTES", "2048")]).await;
    let tcp = ingest.bound.syslog_tcp.expect("tcp").port();
    let udp = ingest.bound.syslog_udp.expect("udp").port();
    logger(
        tcp,
        &[
            "--tcp",
            "--rfc3164",
            "-t",
            "sshd",
            "-p",
            "auth.err",
            "Failed password for invalid user admin from 198.51.100.4 port 22 ssh2",
        ],
    )
    .await;
    logger(
        tcp,
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "--msgid",
            "ID47",
            "--sd-id",
            "origin@32473",
            "--sd-param",
            "ip=\"10.0.0.1\"",
            "-t",
            "app",
            "-p",
            "local0.warning",
            "octet counted\nwith a newline inside",
        ],
    )
    .await;
    logger(
        udp,
        &[
            "--udp",
            "--rfc5424",
            "-t",
            "cron",
            "-p",
            "cron.info",
            "udp 5424",
        ],
    )
    .await;
    logger(
        udp,
        &[
            "--udp",
            "--rfc3164",
            "-t",
            "sudo",
            "-p",
            "authpriv.notice",
            "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
        ],
    )
    .await;
    // A file of lines, one connection, newline framing: one message per line.
    let file = common::BodyFile::new(
        (0..100)
            .map(|i| format!("batch line {i}\n"))
            .collect::<String>()
            .as_bytes(),
    );
    logger(
        tcp,
        &[
            "--tcp",
            "--rfc5424",
            "-t",
            "batch",
            "-f",
            &file.0.to_string_lossy(),
        ],
    )
    .await;
    // What no parser understands, and a line over the limit, straight over a socket.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", tcp))
        .await
        .expect("connects");
    let long = format!("<14>{}\n", "z".repeat(3000));
    socket
        .write_all(format!("not syslog at all\n{long}").as_bytes())
        .await
        .expect("writes");
    socket.shutdown().await.expect("closes");

    let records = sourced(&ingest.raw(106).await);
    assert_eq!(records.len(), 106, "exactly one record per message");
    assert!(
        records
            .iter()
            .all(|(source, _)| *source == Some(Source::Syslog))
    );
    let by_app: BTreeMap<String, Vec<&Value>> =
        records.iter().fold(BTreeMap::new(), |mut map, (_, r)| {
            let app = r["appname"].as_str().unwrap_or("-").to_owned();
            map.entry(app).or_default().push(r);
            map
        });
    let sshd = by_app["sshd"][0];
    assert_eq!(
        (
            &sshd["protocol"],
            &sshd["facility"],
            &sshd["severity"],
            &sshd["severity_code"]
        ),
        (&"rfc3164".into(), &"auth".into(), &"err".into(), &3.into())
    );
    assert_eq!(
        sshd["message"],
        "Failed password for invalid user admin from 198.51.100.4 port 22 ssh2"
    );
    assert_eq!(sshd["peer"], "127.0.0.1");
    let app = by_app["app"][0];
    assert_eq!(
        (
            &app["protocol"],
            &app["facility"],
            &app["severity"],
            &app["msgid"]
        ),
        (
            &"rfc5424".into(),
            &"local0".into(),
            &"warning".into(),
            &"ID47".into()
        )
    );
    assert_eq!(app["structured_data"]["origin@32473"]["ip"], "10.0.0.1");
    assert_eq!(
        app["message"], "octet counted\nwith a newline inside",
        "octet counting keeps newlines"
    );
    assert_eq!(by_app["cron"][0]["message"], "udp 5424");
    assert_eq!(by_app["cron"][0]["protocol"], "rfc5424");
    let sudo = by_app["sudo"][0];
    assert_eq!(
        (&sudo["protocol"], &sudo["facility"]),
        (&"rfc3164".into(), &"authpriv".into())
    );
    let mut batch: Vec<String> = by_app["batch"]
        .iter()
        .map(|r| r["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    batch.sort_by_key(|m| {
        m.trim_start_matches("batch line ")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    assert_eq!(
        batch,
        (0..100)
            .map(|i| format!("batch line {i}"))
            .collect::<Vec<_>>()
    );
    let unparsed = records
        .iter()
        .find(|(_, r)| r["protocol"] == "unparsed")
        .expect("kept");
    assert_eq!(unparsed.1["message"], "not syslog at all");
    let cut = records
        .iter()
        .find(|(_, r)| r["truncated"] == true)
        .expect("cut, not dropped");
    assert_eq!(
        cut.1["message"].as_str().map(str::len),
        Some(2048),
        "the first 2048 bytes kept"
    );
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_records_total",
            "source=\"syslog\""
        ),
        106.0
    );
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_truncated_total",
            "transport=\"tcp\""
        ),
        1.0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn tcp_reads_pause_while_kafka_cannot_take_the_messages() {
    testkit::require_kafka().await;
    let mut kafka = KafkaConfig::new("127.0.0.1:1");
    kafka.topics = TopicNames::prefixed(&testkit::unique_name("syslog-down"));
    let ingest = Ingest::start_on(
        kafka,
        &[
            ("LOGWARDEN_INGEST__ACK_TIMEOUT_MS", "1000"),
            ("LOGWARDEN_INGEST__RETRY_AFTER_S", "1"),
        ],
    )
    .await;
    let tcp = ingest.bound.syslog_tcp.expect("tcp");
    let mut socket = tokio::net::TcpStream::connect(tcp).await.expect("connects");
    let line = format!("<13>Dec  5 06:00:00 host app: {}\n", "p".repeat(200));
    let chunk = line.repeat(1000);
    let total = 256 * chunk.len();
    let mut written = 0;
    let writing = async {
        while written < total {
            socket.write_all(chunk.as_bytes()).await.expect("writes");
            written += chunk.len();
        }
    };
    // The sender is held back: far less than it tried to send is taken off the socket.
    let finished = tokio::time::timeout(Duration::from_secs(8), writing)
        .await
        .is_ok();
    assert!(
        !finished,
        "all {total} bytes were taken although Kafka has none of them"
    );
    assert!(written < total / 4, "{written} of {total} bytes taken");
    let metrics = ingest.metrics().await;
    assert!(
        metric(
            &metrics,
            "logwarden_ingest_refused_total",
            "reason=\"kafka_unavailable\",receiver=\"syslog_tcp\""
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "logwarden_ingest_records_total", ""), 0.0);
    ingest.shutdown().await;
}

#[tokio::test]
async fn syslog_over_tls_from_openssl_s_client() {
    let (_, _, dir) = testkit::secure_listeners();
    let (certificate, key, ca) = (
        dir.join("broker.pem"),
        dir.join("broker.key"),
        dir.join("ca.pem"),
    );
    assert!(
        certificate.exists() && key.exists(),
        "the stack's TLS material is missing ({}): restart the stack (`cargo xtask stack up`)",
        dir.display()
    );
    let ingest = Ingest::start(
        "syslog-tls",
        &[
            (
                "LOGWARDEN_INGEST__SYSLOG__TLS__CERTIFICATE_FILE",
                &certificate.to_string_lossy(),
            ),
            (
                "LOGWARDEN_INGEST__SYSLOG__TLS__KEY_FILE",
                &key.to_string_lossy(),
            ),
        ],
    )
    .await;
    let port = ingest.bound.syslog_tcp.expect("tcp").port();
    let messages = [
        "<38>1 2026-12-05T06:00:00Z bastion sshd 77 - - Accepted publickey for alice",
        "<86>Dec  5 06:00:01 bastion sudo: alice : COMMAND=/usr/bin/id",
    ];
    let framed: String = messages
        .iter()
        .map(|m| format!("{} {m}", m.len()))
        .collect();
    let mut client = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .arg("-CAfile")
        .arg(&ca)
        .args(["-verify_return_error", "-quiet", "-no_ign_eof"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| {
            panic!("running openssl ({err}): install it (`apt-get install openssl`)")
        });
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(framed.as_bytes()).await.expect("writes");
    drop(stdin);
    let records = sourced(&ingest.raw(2).await);
    let output = client.wait_with_output().await.expect("openssl ends");
    assert_eq!(
        records.len(),
        2,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let texts: Vec<&str> = records
        .iter()
        .filter_map(|(_, r)| r["message"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "Accepted publickey for alice",
            "alice : COMMAND=/usr/bin/id"
        ]
    );
    assert_eq!(records[0].1["hostname"], "bastion");
    ingest.stop().await;
}
