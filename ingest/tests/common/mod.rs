//! What the ingest tests share: the service run in-process on a test's private topics and free
//! ports, real clients (curl, util-linux `logger`) run as a user would, and reading `raw` back.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ingest::service::Bound;
use ingest::settings::{RawConfig, Settings};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use pipeline::wire::Source;
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub mod seaweedfs;

/// The sink tests' helpers (running the transformer and the sink, reading OpenSearch, metrics).
#[path = "../../../sink/tests/common/mod.rs"]
pub mod pipeline_run;

#[allow(unused_imports)]
pub use pipeline_run::metric;

/// The tokens the tests' services accept (names `alpha` and `beta`).
pub const TOKEN: &str = "alpha-token-3f9c";
/// The second token.
pub const TOKEN_2: &str = "beta-token-77d1";

/// A running ingest service.
pub struct Ingest {
    /// Its private topics.
    pub kafka: KafkaConfig,
    /// Where its receivers listen.
    pub bound: Bound,
    /// Its telemetry server.
    pub telemetry: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Ingest {
    /// Starts the service on `test`'s private topics (one partition) with both tokens, HTTP
    /// and syslog (TCP and UDP) on free ports, and `vars` on top (config as `LOGWARDEN_*`).
    pub async fn start(test: &str, vars: &[(&str, &str)]) -> Self {
        let kafka = testkit::kafka_with_private_topics(test, 1).await;
        Self::start_on(kafka, vars).await
    }

    /// As [`Ingest::start`], on `kafka` as given (e.g. an unreachable broker).
    pub async fn start_on(kafka: KafkaConfig, vars: &[(&str, &str)]) -> Self {
        // The test's own settings first, so they win over the defaults below.
        let mut env: Vec<(String, String)> = vars
            .iter()
            .chain(&[
                ("LOGWARDEN_INGEST__HTTP__LISTEN", "127.0.0.1:0"),
                ("LOGWARDEN_INGEST__SYSLOG__TCP", "127.0.0.1:0"),
                ("LOGWARDEN_INGEST__SYSLOG__UDP", "127.0.0.1:0"),
                ("LOGWARDEN_INGEST__TOKENS__ALPHA__TOKEN", TOKEN),
                (
                    "LOGWARDEN_INGEST__TOKENS__BETA__ENV",
                    "LOGWARDEN_SECRET_INGEST_BETA",
                ),
                ("LOGWARDEN_SECRET_INGEST_BETA", TOKEN_2),
                ("LOGWARDEN_INGEST__ACK_TIMEOUT_MS", "10000"),
            ])
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        env.retain(|(k, _)| seen.insert(k.clone()));
        let mut raw: RawConfig =
            pipeline::config::load_from(None, env.clone()).expect("the test's config loads");
        raw.kafka.brokers = kafka.brokers.clone();
        raw.kafka.topics = kafka.topics.clone();
        raw.kafka.properties.extend(kafka.properties.clone());
        let settings = Settings::from_raw(raw, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("valid settings");
        let (service, shutdown) = testkit::service("ingest").await;
        let telemetry = service.server.local_addr;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            ingest::service::run_with(settings, &service, |bound| {
                let _ = tx.send(bound);
            })
            .await
            .expect("the ingest service runs and stops cleanly");
        });
        let bound = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("the receivers listen within 30 s")
            .expect("the service reports its addresses");
        Self {
            kafka,
            bound,
            telemetry,
            shutdown,
            task,
        }
    }

    /// The HTTP receivers' base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.bound.http.expect("HTTP is on"))
    }

    /// The service's metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.telemetry))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Reads `raw` until `expected` records arrived (and 2 s more, to catch extras).
    pub async fn raw(&self, expected: usize) -> Vec<OwnedMessage> {
        testkit::consume(
            &self.kafka,
            &self.kafka.topics.raw,
            expected,
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .await
    }

    /// Stops the service (it must drain cleanly) and deletes its topics.
    pub async fn stop(self) {
        let kafka = self.shutdown().await;
        let topics = kafka.topics.all();
        testkit::delete_topics(&kafka, &topics).await;
    }

    /// Stops the service (it must drain cleanly); returns its Kafka settings.
    pub async fn shutdown(self) -> KafkaConfig {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stops within 30 s")
            .expect("the service task ends cleanly");
        self.kafka
    }
}

/// Each record's source header and payload as JSON.
pub fn sourced(messages: &[OwnedMessage]) -> Vec<(Option<Source>, Value)> {
    messages
        .iter()
        .map(|m| {
            let source = m.headers().and_then(Source::from_headers);
            let value = serde_json::from_str(testkit::payload_text(m))
                .unwrap_or_else(|err| panic!("record is not JSON ({err}): {m:?}"));
            (source, value)
        })
        .collect()
}

/// What curl got.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers, lowercased.
    pub headers: String,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("the answer is not JSON ({err}): {self:?}"))
    }
}

/// Runs curl (as a user would) with `args` and returns what it got.
///
/// # Panics
/// When curl is missing or cannot talk HTTP at all.
pub async fn curl(args: &[&str]) -> Answer {
    let headers =
        std::env::temp_dir().join(testkit::unique_name("curl-headers").trim_end_matches('-'));
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o", "-", "-D"])
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|err| panic!("running curl ({err}): install it (`apt-get install curl`)"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let header_text = std::fs::read_to_string(&headers)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let _ = std::fs::remove_file(&headers);
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (body, status) = text.rsplit_once('\n').expect("curl printed the status");
    Answer {
        status: status.trim().parse().expect("a status code"),
        headers: header_text,
        body: body.to_owned(),
    }
}

/// A temporary file holding a request body, for `curl --data-binary @file`; removed when
/// dropped.
pub struct BodyFile(pub std::path::PathBuf);

impl BodyFile {
    /// A file holding `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(testkit::unique_name("body").trim_end_matches('-'));
        std::fs::write(&path, bytes).expect("writing the request body");
        Self(path)
    }

    /// `@<path>`, curl's way to name it.
    pub fn arg(&self) -> String {
        format!("@{}", self.0.display())
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Base64 of `bytes`, as Firehose carries each record's data.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A Firehose HTTP endpoint delivery request (`{"requestId", "timestamp", "records":
/// [{"data"}]}`) carrying `data` (each already base64).
pub fn firehose_request(id: &str, data: &[String]) -> String {
    let records: Vec<Value> = data
        .iter()
        .map(|d| serde_json::json!({"data": d}))
        .collect();
    serde_json::json!({"requestId": id, "timestamp": 1_764_914_401_000_i64, "records": records})
        .to_string()
}
