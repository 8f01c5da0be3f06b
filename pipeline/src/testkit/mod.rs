//! Helpers for integration tests against the local stack (`cargo xtask stack up`): where the
//! stack is, a loud failure when it is not there, and unique names so tests run in parallel
//! without sharing topics or indices.
//!
//! A test that cannot reach the stack fails and names the command that starts it; it never skips.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;

use crate::kafka::{KafkaConfig, TopicNames, cluster_info, ensure_topics};

/// The command that starts what the integration tests need.
pub const START_HINT: &str =
    "start the local stack with `cargo xtask stack up` (or run the suite with `cargo xtask test`)";

/// The stack's Kafka as the environment names it (`LOGWARDEN_KAFKA__BROKERS`, set by
/// `cargo xtask test`), else the stack's default address.
pub fn kafka_brokers() -> String {
    std::env::var("LOGWARDEN_KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The stack's OpenSearch (`LOGWARDEN_OPENSEARCH__URL`), else the stack's default address.
pub fn opensearch_url() -> String {
    std::env::var("LOGWARDEN_OPENSEARCH__URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9200".to_owned())
}

/// Kafka settings for the stack's broker, after checking that it answers.
///
/// # Panics
/// When the broker does not answer, with a message naming the command that starts it.
pub async fn require_kafka() -> KafkaConfig {
    let kafka = KafkaConfig::new(kafka_brokers());
    if let Err(err) = cluster_info(&kafka, Duration::from_secs(10)).await {
        panic!(
            "Kafka is not reachable at {} ({err}): {START_HINT}",
            kafka.brokers
        );
    }
    kafka
}

/// Kafka settings with a private, freshly created set of the six topics.
///
/// # Panics
/// When Kafka is unreachable or the topics cannot be created.
pub async fn kafka_with_private_topics(test: &str, partitions: i32) -> KafkaConfig {
    let mut kafka = require_kafka().await;
    kafka.topics = TopicNames::prefixed(&unique_name(test));
    if let Err(err) = ensure_topics(&kafka, &kafka.topics.specs(partitions, 1)).await {
        panic!("creating the test's topics: {err}");
    }
    kafka
}

/// The stack's secure Kafka listeners, as `cargo xtask test` names them (else the stack's
/// defaults): `(SASL_SSL address, mutual-TLS address, TLS directory)`.
pub fn secure_listeners() -> (String, String, std::path::PathBuf) {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let default_dir = if is_root() {
        "/var/lib/logwarden/stack/kafka/tls".to_owned()
    } else {
        format!(
            "{}/.local/share/logwarden/stack/kafka/tls",
            std::env::var("HOME").unwrap_or_default()
        )
    };
    (
        var("XTASK_KAFKA_SASL_SSL", "127.0.0.1:9094"),
        var("XTASK_KAFKA_MTLS", "127.0.0.1:9095"),
        std::path::PathBuf::from(var("XTASK_KAFKA_TLS_DIR", &default_dir)),
    )
}

/// Which of the stack's secure listeners a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secure {
    /// SASL_SSL with SCRAM-SHA-512 as the stack's user (`logwarden`).
    SaslScram,
    /// SSL with the stack's client certificate (mutual TLS).
    MutualTls,
}

/// The SCRAM user the stack's broker accepts (created by `cargo xtask stack up`).
pub const STACK_SCRAM_USER: &str = "logwarden";
/// Its password (a development stack's, public).
pub const STACK_SCRAM_PASSWORD: &str = "logwarden-stack-password";

/// Kafka settings for one of the stack's secure listeners, with a private, freshly created set of
/// the six topics (created through the plaintext listener).
///
/// # Panics
/// When Kafka is unreachable, the topics cannot be created, or the TLS material is missing.
pub async fn secure_kafka(test: &str, partitions: i32, mode: Secure) -> KafkaConfig {
    let plain = kafka_with_private_topics(test, partitions).await;
    let (sasl_ssl, mtls, dir) = secure_listeners();
    let ca = dir.join("ca.pem");
    assert!(
        ca.exists(),
        "the stack's TLS material is missing ({}): restart the stack (`cargo xtask stack down` \
         and `cargo xtask stack up`)",
        ca.display()
    );
    let mut kafka = KafkaConfig::new(match mode {
        Secure::SaslScram => sasl_ssl,
        Secure::MutualTls => mtls,
    });
    kafka.topics = plain.topics;
    let mut tls = crate::kafka::KafkaTls {
        ca_file: Some(ca),
        certificate_file: None,
        key_file: None,
        key_password: None,
        verify_hostname: true,
    };
    match mode {
        Secure::SaslScram => {
            kafka.sasl = Some(crate::kafka::KafkaSasl {
                mechanism: crate::kafka::SaslMechanism::ScramSha512,
                username: STACK_SCRAM_USER.to_owned(),
                password: Some(crate::config::SecretString::new(STACK_SCRAM_PASSWORD)),
                password_file: None,
            });
        }
        Secure::MutualTls => {
            tls.certificate_file = Some(dir.join("client.pem"));
            tls.key_file = Some(dir.join("client.key"));
        }
    }
    kafka.tls = Some(tls);
    kafka
}

/// The stack's OpenSearch URL, after checking that it answers.
///
/// # Panics
/// When OpenSearch does not answer, with a message naming the command that starts it.
pub async fn require_opensearch() -> String {
    let url = opensearch_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|err| panic!("building an HTTP client: {err}"));
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => url,
        Ok(response) => panic!(
            "OpenSearch at {url} answered {}: {START_HINT}",
            response.status()
        ),
        Err(err) => panic!("OpenSearch is not reachable at {url} ({err}): {START_HINT}"),
    }
}

/// Deletes every index template whose name starts with `prefix` (a test's events template and
/// its sources' templates, `<prefix>-<source>`, which the sink creates at start-up), ignoring
/// what is not there: a test leaves no template behind in the shared cluster.
pub async fn delete_index_templates(url: &str, prefix: &str) {
    let client = reqwest::Client::new();
    let Ok(response) = client
        .get(format!("{url}/_index_template/{prefix}*"))
        .send()
        .await
    else {
        return;
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let names = body["index_templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str());
    for name in names {
        let _ = client
            .delete(format!("{url}/_index_template/{name}"))
            .send()
            .await;
    }
}

/// A [`crate::service::Service`] for an in-process test run: telemetry on an ephemeral port, and
/// a shutdown token of the test's own (cancel it to stop the service).
///
/// # Panics
/// When the telemetry server cannot start.
pub async fn service(
    name: &'static str,
) -> (crate::service::Service, tokio_util::sync::CancellationToken) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let telemetry = crate::telemetry::TelemetryConfig {
        listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        ..crate::telemetry::TelemetryConfig::default()
    };
    let service = crate::service::Service::start_with(name, &telemetry, 0, shutdown.clone())
        .await
        .unwrap_or_else(|err| panic!("starting the {name} service: {err}"));
    (service, shutdown)
}

/// `<prefix>-<8 random hex digits>-`: lowercase, legal as a topic, group or index name.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}-", prefix.to_ascii_lowercase(), &id[..8])
}

/// Deletes `topics` (a test's own, at its end); what is already gone is fine.
///
/// # Panics
/// When the admin client cannot be built or the request fails as a whole.
pub async fn delete_topics(kafka: &KafkaConfig, topics: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = kafka
        .client_config("logwarden-test-cleanup")
        .create()
        .unwrap_or_else(|err| panic!("creating an admin client: {err}"));
    admin
        .delete_topics(topics, &AdminOptions::new())
        .await
        .unwrap_or_else(|err| panic!("deleting topics {topics:?}: {err}"));
}

/// Reads `topic` from the beginning (in a fresh group, `read_committed`) until `expected`
/// records arrived, then for `settle` longer to catch any extra record.
///
/// # Panics
/// When fewer than `expected` records arrive within `timeout`, saying how many did.
pub async fn consume(
    kafka: &KafkaConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = kafka
        .consumer_config("logwarden-test", &unique_name("test-reader"))
        .create()
        .unwrap_or_else(|err| panic!("creating a consumer: {err}"));
    consumer
        .subscribe(&[topic])
        .unwrap_or_else(|err| panic!("subscribing to {topic}: {err}"));
    let mut messages = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut settle_until = None;
    loop {
        if messages.len() >= expected && settle_until.is_none() {
            settle_until = Some(tokio::time::Instant::now() + settle);
        }
        let until = settle_until.unwrap_or(deadline).min(deadline);
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            // librdkafka reports transient errors (a broker reconnecting) here too and recovers
            // by itself; the deadline bounds how long we wait for it.
            Ok(Err(err)) => eprintln!("consuming {topic}: {err} (retrying)"),
            Err(_) if messages.len() >= expected => return messages,
            Err(_) => panic!(
                "only {} of {expected} records arrived on `{topic}` within {timeout:?}",
                messages.len()
            ),
        }
    }
}

/// The payload of a record as UTF-8 text.
///
/// # Panics
/// When the record has no payload or it is not UTF-8.
pub fn payload_text(message: &OwnedMessage) -> &str {
    message
        .payload()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or_else(|| panic!("record at offset {} has no UTF-8 payload", message.offset()))
}

/// The seed's ten indicators for a raw record, from the table in the seed's data model, written
/// out here independently of the rules engine: the oracle integration tests compare against.
pub fn seed_indicators(
    record: &serde_json::Value,
) -> std::collections::BTreeMap<&'static str, i64> {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let action = text(&record["action"]);
    let source = text(&record["httpSourceName"]);
    let status: u16 = text(&record["httpStatus"]).parse().unwrap_or(0);
    let country = text(&record["httpRequest"]["country"]);
    let method = text(&record["httpRequest"]["httpMethod"]);
    let known_action = ["ALLOW", "CAPTCHA", "Challenge", "Count"].contains(&action.as_str());
    let known_source = ["ALB", "APIGW", "APPSYNC", "CF"].contains(&source.as_str());
    let known_country = ["US", "UK", "IN"].contains(&country.as_str());
    let one = |yes: bool| i64::from(yes);
    std::collections::BTreeMap::from([
        ("K_action", one(known_action)),
        ("B_action", one(action == "BLOCK")),
        ("K_source", one(known_source)),
        ("UNK_source", one(!known_source)),
        ("G_httpstatus", one((200..400).contains(&status))),
        ("B_httpstatus", one((400..600).contains(&status))),
        ("K_country", one(known_country)),
        ("UNK_country", one(!known_country)),
        (
            "common_method",
            one(["GET", "HEAD", "POST"].contains(&method.as_str())),
        ),
        ("uncommon_method", one(method == "DELETE")),
    ])
}

/// A real SMTP server for a test: PyPI's aiosmtpd (installed into the cache by
/// `cargo xtask test`) on a free loopback port, storing each message in a maildir. Stopped when
/// dropped.
#[derive(Debug)]
pub struct SmtpServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    maildir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpServer {
    /// Starts the server and waits until it accepts connections.
    ///
    /// # Panics
    /// When aiosmtpd is not installed or does not start, naming the command that installs it.
    pub async fn start() -> Self {
        let python = std::env::var_os("XTASK_SMTPD_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let cache = if std::env::var("USER").is_ok_and(|u| u == "root") {
                    std::path::PathBuf::from("/var/cache/logwarden")
                } else {
                    std::env::var_os("HOME")
                        .map(std::path::PathBuf::from)
                        .unwrap_or_default()
                        .join(".cache/logwarden")
                };
                cache.join("aiosmtpd/bin/python")
            });
        assert!(
            python.exists(),
            "aiosmtpd is not installed at {}: run the suite with `cargo xtask test` (it installs PyPI's aiosmtpd into the cache)",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or_else(|err| panic!("finding a free port: {err}"));
        let maildir = std::env::temp_dir().join(unique_name("smtp").trim_end_matches('-'));
        let child = std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("starting aiosmtpd ({}): {err}", python.display()));
        let server = Self {
            port,
            maildir,
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Every message received so far, as raw text (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut messages: Vec<String> = entries
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .collect();
        messages.sort();
        messages
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

pub mod faults;
pub mod metrics;
mod process;
mod proxy;
mod secrets;

pub use process::Process;
pub use proxy::{AuthProxy, PROXY_PASSWORD, PROXY_USER, Refusal, WRONG_PROXY_PASSWORD};
pub use secrets::{TEST_SECRETS, assert_keeps_secrets};

/// Whether this process runs as root (the stack then lives under /var/lib/logwarden).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
