//! A real Prometheus (Debian's `/usr/bin/prometheus`, which `cargo xtask test` installs)
//! scraping services of a test: a generated config (each target its own job, a 1 s scrape and
//! evaluation interval, the rule files given), a free port on loopback, a temporary data
//! directory; and its HTTP API as a test reads it. Dropping it stops the server and deletes
//! the directory.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pipeline::testkit::Process;
use serde_json::Value;

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    /// Its API's base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    http: reqwest::Client,
    // Declared before `dir`: the server stops before its data directory goes.
    process: Option<Process>,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// The scrape and rule evaluation interval.
    pub const INTERVAL: Duration = Duration::from_secs(1);

    /// Starts Prometheus scraping each `(job, address)` at `/metrics` and evaluating
    /// `rule_files`; returns once it has scraped every target (so what changes afterwards
    /// shows as a change, not as a series' first value).
    ///
    /// # Panics
    /// When prometheus is not installed (naming `cargo xtask test`), or it does not become
    /// ready within 30 s (with what it printed).
    pub async fn start(targets: &[(&str, SocketAddr)], rule_files: &[&Path]) -> Self {
        let binary = deploy::observe::prometheus();
        let dir = tempfile::Builder::new()
            .prefix("logwarden-prometheus-")
            .tempdir()
            .unwrap_or_else(|err| panic!("a data directory for prometheus: {err}"));
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text(targets, rule_files))
            .unwrap_or_else(|err| panic!("writing {}: {err}", config.display()));
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let process = Process::start(
            &binary.display().to_string(),
            &[
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn",
            ],
            &[],
        );
        let prometheus = Self {
            url,
            http: reqwest::Client::new(),
            process: Some(process),
            dir,
        };
        prometheus.wait_scraped(targets.len()).await;
        prometheus
    }

    async fn wait_scraped(&self, targets: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let scraped =
                self.query("count(up == 1)").await.ok().and_then(|samples| {
                    samples.first()?["value"][1].as_str()?.parse::<usize>().ok()
                });
            if scraped == Some(targets) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let output = self.process.as_ref().map(Process::output);
                panic!(
                    "prometheus had not scraped the {targets} targets within 30 s at {}:\n{}",
                    self.url,
                    output.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET /api/v1/<path>` with `query`: the answer's `data`, or Prometheus' error text.
    pub async fn api(&self, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), query)
            .map_err(|err| format!("/api/v1/{path}: {err}"))?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| format!("GET /api/v1/{path}: {err}"))?;
        let answer: Value = response
            .json()
            .await
            .map_err(|err| format!("GET /api/v1/{path}: not JSON: {err}"))?;
        if answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(format!(
                "{}: {}",
                answer["errorType"].as_str().unwrap_or("error"),
                answer["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// An instant query's result (a vector's samples, or a scalar as one sample).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr.to_owned())]).await?;
        Ok(match &data["result"] {
            Value::Array(samples) => samples.clone(),
            Value::Null => Vec::new(),
            scalar => vec![scalar.clone()],
        })
    }

    /// The value of an instant query that returns one sample, `None` when it returns none.
    ///
    /// # Panics
    /// When the query fails or returns several samples.
    pub async fn value(&self, expr: &str) -> Option<f64> {
        let samples = self
            .query(expr)
            .await
            .unwrap_or_else(|err| panic!("{expr}: {err}"));
        assert!(samples.len() <= 1, "{expr} returned {samples:?}");
        samples.first().and_then(|sample| {
            sample["value"][1]
                .as_str()
                .and_then(|text| text.parse().ok())
        })
    }

    /// A range query's series over the last `span`, one point per scrape interval.
    pub async fn query_range(&self, expr: &str, span: Duration) -> Result<Vec<Value>, String> {
        let end = chrono::Utc::now().timestamp();
        let start = end - i64::try_from(span.as_secs()).unwrap_or(i64::MAX).max(1);
        let data = self
            .api(
                "query_range",
                &[
                    ("query", expr.to_owned()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", Self::INTERVAL.as_secs().to_string()),
                ],
            )
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits three scrape intervals: what the services show now is in Prometheus afterwards.
    pub async fn scrape(&self) {
        tokio::time::sleep(Self::INTERVAL * 3).await;
    }

    /// Stops the server (SIGTERM) and deletes its data directory.
    pub fn stop(mut self) {
        if let Some(process) = self.process.take() {
            let (code, output) = process.terminate();
            assert_eq!(code, Some(0), "prometheus did not stop cleanly:\n{output}");
        }
        let dir = self.dir.path().to_path_buf();
        drop(self);
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}

/// A port nobody listens on now (the OS picks it; Prometheus binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("finding a free port: {err}"))
}

/// The configuration: each target its own job (the rules select `job=~"logwarden-..."`).
fn config_text(targets: &[(&str, SocketAddr)], rule_files: &[&Path]) -> String {
    let seconds = Prometheus::INTERVAL.as_secs();
    let mut text = format!(
        "global:\n  scrape_interval: {seconds}s\n  scrape_timeout: {seconds}s\n  evaluation_interval: {seconds}s\nrule_files:\n"
    );
    for file in rule_files {
        text.push_str(&format!("  - {:?}\n", file.display().to_string()));
    }
    text.push_str("scrape_configs:\n");
    for (job, address) in targets {
        text.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [\"{address}\"]\n"
        ));
    }
    text
}
