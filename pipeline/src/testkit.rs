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

/// Kafka settings with a private, freshly created set of the five topics.
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
/// the five topics (created through the plaintext listener).
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

/// A service binary run as a user runs it: its own process, its environment, its output captured
/// (stdout and stderr, interleaved) so a test can wait for a line and read everything it printed.
#[derive(Debug)]
pub struct Process {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `binary` with `args`, and `env` on top of this process's environment minus every
    /// `LOGWARDEN_*` variable (the test's own settings do not leak in unless passed).
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn start(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::Read;
        let mut command = std::process::Command::new(binary);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with(crate::config::ENV_PREFIX) {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {binary}: {err}"));
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for mut stream in streams.into_iter().flatten() {
            let output = std::sync::Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buffer = [0_u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buffer) {
                    if let Ok(mut text) = output.lock() {
                        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
                    }
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits until the output contains `needle`.
    ///
    /// # Panics
    /// When the process exits first or `timeout` passes, with everything it printed.
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "exited ({status}) before printing `{needle}`:\n{}",
                    self.output()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("`{needle}` not printed within {timeout:?}:\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM (what Kubernetes sends) and waits for the exit; returns the exit code and
    /// everything printed.
    ///
    /// # Panics
    /// When the process does not exit within 30 s (it is then killed).
    pub fn terminate(self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.wait(Duration::from_secs(30))
    }

    /// Waits for the process to exit by itself; returns the exit code and everything printed.
    ///
    /// # Panics
    /// When it runs longer than `timeout` (it is then killed).
    pub fn wait(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                _ if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    panic!("still running after {timeout:?}:\n{}", self.output());
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status.code(), self.output())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The user the [`AuthProxy`] accepts, and its password (a test's, public).
pub const PROXY_USER: &str = "logwarden";
/// The password of [`PROXY_USER`].
pub const PROXY_PASSWORD: &str = "proxy-test-password";

/// A real TLS-terminating reverse proxy with authentication in front of the stack's OpenSearch:
/// Debian's nginx, started by the test on two free loopback ports with the stack's certificates
/// (the broker certificate names `localhost` and `127.0.0.1`, signed by the stack's CA). One port
/// asks for basic auth ([`PROXY_USER`]), the other for a client certificate signed by the stack's
/// CA. Stopped when dropped. OpenSearch's security plugin is on no registry the project reaches;
/// this is how TLS and authentication to OpenSearch are tested for real.
#[derive(Debug)]
pub struct AuthProxy {
    child: std::process::Child,
    /// `https://127.0.0.1:<port>`, basic auth.
    pub basic_url: String,
    /// `https://127.0.0.1:<port>`, client certificate required.
    pub mtls_url: String,
    /// The CA that signed the proxy's certificate.
    pub ca: std::path::PathBuf,
    /// A CA that signed nothing the proxy presents.
    pub other_ca: std::path::PathBuf,
    /// A client certificate the mutual-TLS port accepts, and its key.
    pub client_certificate: std::path::PathBuf,
    /// The client certificate's key.
    pub client_key: std::path::PathBuf,
    dir: std::path::PathBuf,
}

/// Where Debian's nginx is.
const NGINX: &str = "/usr/sbin/nginx";

impl AuthProxy {
    /// Starts the proxy in front of the stack's OpenSearch.
    ///
    /// # Panics
    /// When nginx is not installed, the stack's TLS material is missing, or nginx does not start.
    pub async fn start() -> Self {
        let upstream = require_opensearch().await;
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is missing: run the suite with `cargo xtask test` (it installs Debian's \
             nginx-light) or `apt-get install nginx-light`"
        );
        let (_, _, tls) = secure_listeners();
        assert!(
            tls.join("broker.pem").exists(),
            "the stack's TLS material is missing in {}: {START_HINT}",
            tls.display()
        );
        let dir = std::env::temp_dir().join(unique_name("auth-proxy"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let hash = std::process::Command::new("openssl")
            .args(["passwd", "-apr1", PROXY_PASSWORD])
            .output()
            .unwrap_or_else(|e| panic!("openssl passwd: {e}"));
        let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
        std::fs::write(dir.join("htpasswd"), format!("{PROXY_USER}:{hash}\n"))
            .unwrap_or_else(|e| panic!("htpasswd: {e}"));
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("a free port: {e}"))
        };
        let (basic, mtls) = (port(), port());
        let d = dir.display();
        let t = tls.display();
        let upstream_host = upstream.trim_start_matches("http://").trim_end_matches('/');
        // As root, nginx's worker would drop to `nobody`, which cannot read the test's files.
        let user = if is_root() { "user root;" } else { "" };
        let config = format!(
            "{user}
master_process off;
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 200m;
  ssl_certificate {t}/broker.pem;
  ssl_certificate_key {t}/broker.key;
  server {{
    listen 127.0.0.1:{basic} ssl;
    auth_basic \"logwarden test\";
    auth_basic_user_file {d}/htpasswd;
    location / {{ proxy_pass http://{upstream_host}; proxy_set_header Authorization \"\"; }}
  }}
  server {{
    listen 127.0.0.1:{mtls} ssl;
    ssl_client_certificate {t}/ca.pem;
    ssl_verify_client on;
    location / {{ proxy_pass http://{upstream_host}; }}
  }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap_or_else(|e| panic!("nginx.conf: {e}"));
        let child = std::process::Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting nginx: {e}"));
        let proxy = Self {
            child,
            basic_url: format!("https://127.0.0.1:{basic}"),
            mtls_url: format!("https://127.0.0.1:{mtls}"),
            ca: tls.join("ca.pem"),
            other_ca: tls.join("other-ca.pem"),
            client_certificate: tls.join("client.pem"),
            client_key: tls.join("client.key"),
            dir,
        };
        for _ in 0..100 {
            let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
            if up(basic) && up(mtls) {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(proxy.dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not listen within 5 s:\n{log}");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Distinctive secrets a secrets test sets everywhere and then looks for in every output.
pub const TEST_SECRETS: [&str; 3] = [
    "Os-Pa55word-9f2c-never-shown",
    "T0K3N-webhook-7d1e-never-shown",
    "Wr0ng-Kafka-Pa55-3b8a-never-shown",
];

/// Runs `binary` the way an operator would, with a distinctive secret in every place one can be
/// given (the Kafka SASL password, the OpenSearch password, the default channel's webhook URL),
/// and asserts that none appears in anything it shows: `--help`; a run through start-up,
/// `/metrics`, `/healthz` and `/readyz` (when it serves them) and SIGTERM; and a failed start-up
/// (a Kafka password the broker refuses). `args` start the service; `ready` is the log line that
/// says it runs (`None` for a command that exits by itself); `extra` are more variables (private
/// index names).
///
/// # Panics
/// When a secret appears, naming where.
pub async fn assert_keeps_secrets(
    binary: &str,
    args: &[&str],
    ready: Option<&str>,
    extra: &[(&str, &str)],
) {
    let [opensearch_password, webhook_token, wrong_kafka_password] = TEST_SECRETS;
    let kafka = secure_kafka("secrets", 1, Secure::SaslScram).await;
    let (_, _, tls) = secure_listeners();
    let ca = tls.join("ca.pem").display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    let listen = format!("127.0.0.1:{port}");
    let webhook = format!("https://hooks.example.com/services/{webhook_token}");
    let opensearch = opensearch_url();
    let env = |kafka_password: &str| -> Vec<(String, String)> {
        [
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
            ("LOGWARDEN_KAFKA__TLS__CA_FILE", &ca),
            ("LOGWARDEN_KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
            ("LOGWARDEN_KAFKA__SASL__USERNAME", STACK_SCRAM_USER),
            ("LOGWARDEN_KAFKA__SASL__PASSWORD", kafka_password),
            ("LOGWARDEN_KAFKA__TOPICS__RAW", &kafka.topics.raw),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_KAFKA__TOPICS__LABELS", &kafka.topics.labels),
            (
                "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
                &kafka.topics.anomalies,
            ),
            ("LOGWARDEN_OPENSEARCH__URL", &opensearch),
            ("LOGWARDEN_OPENSEARCH__USERNAME", "logwarden"),
            ("LOGWARDEN_OPENSEARCH__PASSWORD", opensearch_password),
            ("LOGWARDEN_OPENSEARCH__ALLOW_INSECURE", "true"),
            ("LOGWARDEN_TELEMETRY__LISTEN", &listen),
            ("LOGWARDEN_TELEMETRY__LOG_LEVEL", "debug"),
            ("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL", &webhook),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let run = |env: Vec<(String, String)>, args: Vec<&str>| {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::start(binary, &args, &pairs)
    };
    let mut shown: Vec<(String, String)> = Vec::new();

    let (_, help) = run(env(STACK_SCRAM_PASSWORD), vec!["--help"]).wait(Duration::from_secs(30));
    shown.push(("--help".into(), help));

    let mut process = run(env(STACK_SCRAM_PASSWORD), args.to_vec());
    match ready {
        Some(line) => {
            process.wait_for(line, Duration::from_secs(90)).await;
            let http = reqwest::Client::new();
            for endpoint in ["metrics", "healthz", "readyz"] {
                let body = match http.get(format!("http://{listen}/{endpoint}")).send().await {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(err) => panic!("/{endpoint} did not answer: {err}"),
                };
                shown.push((format!("/{endpoint}"), body));
            }
            let (_, output) = process.terminate();
            shown.push(("a run and SIGTERM".into(), output));
        }
        None => {
            let (_, output) = process.wait(Duration::from_secs(90));
            shown.push(("a run".into(), output));
        }
    }

    let (code, failed) =
        run(env(wrong_kafka_password), args.to_vec()).wait(Duration::from_secs(90));
    if ready.is_some() {
        assert_ne!(
            code,
            Some(0),
            "a refused Kafka password must stop it:\n{failed}"
        );
    }
    shown.push(("a failed start-up".into(), failed));

    let secrets = [
        opensearch_password,
        webhook_token,
        wrong_kafka_password,
        STACK_SCRAM_PASSWORD,
    ];
    for (place, text) in &shown {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{binary}: `{secret}` appears in {place}:\n{text}"
            );
        }
    }
}
