//! The detector as a real process, for the faults a process suffers (SIGSTOP, SIGCONT,
//! `kill -9`): its own spec file, telemetry port and instance name, short checkpoint and lease
//! periods so take-overs happen within a test, and its metrics and readiness read over HTTP.

use std::path::PathBuf;

use pipeline::kafka::KafkaConfig;
use pipeline::testkit::Process;
use serde_json::Value;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-detector");

/// A detector process and where its telemetry is served.
pub struct Replica {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:<port>`.
    pub telemetry: String,
}

/// Writes `spec` (YAML) to a file of the test's own and returns its path.
pub fn spec_file(name: &str, spec: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}spec.yaml"));
    std::fs::write(&path, spec).expect("write the spec");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Replica {
    /// Starts `logwarden-detector run` on the stack with the spec at `spec`, as `instance`, with
    /// a lease of `lease_ms` and a checkpoint every second.
    pub fn start(
        kafka: &KafkaConfig,
        opensearch: &str,
        spec: &std::path::Path,
        instance: &str,
        lease_ms: u64,
    ) -> Self {
        Self::start_with(kafka, opensearch, spec, instance, lease_ms, &[])
    }

    /// [`Self::start`] with more environment (`LOGWARDEN_*` settings).
    pub fn start_with(
        kafka: &KafkaConfig,
        opensearch: &str,
        spec: &std::path::Path,
        instance: &str,
        lease_ms: u64,
        more: &[(&str, &str)],
    ) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let spec = spec.display().to_string();
        let lease = lease_ms.to_string();
        let mut env = vec![
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
                &kafka.topics.anomalies,
            ),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_OPENSEARCH__URL", opensearch),
            ("LOGWARDEN_TELEMETRY__LISTEN", &listen),
            ("LOGWARDEN_DETECTOR__SPEC", &spec),
            ("LOGWARDEN_DETECTOR__INSTANCE_ID", instance),
            ("LOGWARDEN_DETECTOR__LEASE_MS", &lease),
            ("LOGWARDEN_DETECTOR__CHECKPOINT_MS", "1000"),
        ];
        env.extend_from_slice(more);
        let process = Process::start(BINARY, &["run"], &env);
        Self {
            process,
            telemetry: format!("http://{listen}"),
        }
    }

    /// The `/metrics` page.
    async fn metrics_text(&self, http: &reqwest::Client) -> String {
        http.get(format!("{}/metrics", self.telemetry))
            .send()
            .await
            .expect("the metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    /// A metric's samples by their labels (`{detector="d"}`; empty without labels).
    pub async fn samples(&self, http: &reqwest::Client, name: &str) -> Vec<(String, f64)> {
        let text = self.metrics_text(http).await;
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let (labels, value) = rest.rsplit_once(' ')?;
                (labels.is_empty() || labels.starts_with('{'))
                    .then(|| Some((labels.to_owned(), value.parse().ok()?)))?
            })
            .collect()
    }

    /// The sum of a metric's samples (all label values).
    pub async fn metric(&self, http: &reqwest::Client, name: &str) -> f64 {
        let text = self.metrics_text(http).await;
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `/readyz`: whether ready, and what it says.
    pub async fn readyz(&self, http: &reqwest::Client) -> (bool, String) {
        let response = http
            .get(format!("{}/readyz", self.telemetry))
            .send()
            .await
            .expect("readyz answers");
        let ready = response.status().is_success();
        (ready, response.text().await.unwrap_or_default())
    }
}

/// The checkpoint document as stored (`_source`, `_seq_no`), or `Value::Null` when missing.
pub async fn checkpoint_doc(http: &reqwest::Client, url: &str, index: &str) -> Value {
    http.get(format!("{url}/{index}/_doc/_checkpoint"))
        .send()
        .await
        .expect("get the checkpoint")
        .json()
        .await
        .unwrap_or(Value::Null)
}
