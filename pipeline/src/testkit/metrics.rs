//! A service's `/metrics` as Prometheus sees it: scraped over HTTP, checked by Debian's
//! `promtool check metrics` (the format and the naming conventions), read sample by sample.
//! Every crate's metrics test uses these, so the conventions are judged by one tool, once.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// Debian's promtool, installed by `cargo xtask test` (xtask's `prereq::prometheus`).
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// `GET /metrics` on a service's telemetry address: the text a Prometheus scrape gets.
///
/// # Panics
/// When the server does not answer 200 with a text body.
pub async fn scrape(telemetry: SocketAddr) -> String {
    let url = format!("http://{telemetry}/metrics");
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response
        .text()
        .await
        .unwrap_or_else(|err| panic!("reading {url}: {err}"))
}

/// The name of the consumer lag gauge, as scraped.
pub const LAG: &str = "logwarden_kafka_consumer_lag_records";

/// Scrapes until `topic`'s lag series are exactly its `partitions` (0..n) and each is 0: the
/// stage caught up. Returns that scrape.
///
/// # Panics
/// When that does not happen within `timeout`, with the last lag series seen.
pub async fn wait_until_caught_up(
    telemetry: SocketAddr,
    topic: &str,
    partitions: i32,
    timeout: std::time::Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    let expected: Vec<String> = (0..partitions).map(|p| p.to_string()).collect();
    loop {
        let text = scrape(telemetry).await;
        let lags = lags(&text, topic);
        let shown: Vec<&String> = lags.iter().map(|(p, _)| p).collect();
        if shown == expected.iter().collect::<Vec<_>>() && lags.iter().all(|(_, lag)| *lag == 0.0) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}'s lag did not reach 0 on partitions 0..{partitions} within {timeout:?}: \
             {lags:?}\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `topic`'s lag series in a scrape: (partition, lag), by partition.
pub fn lags(text: &str, topic: &str) -> Vec<(String, f64)> {
    let mut lags: Vec<(String, f64)> = samples(text, LAG)
        .into_iter()
        .filter(|(labels, _)| labels.iter().any(|(k, v)| k == "topic" && v == topic))
        .filter_map(|(labels, lag)| {
            let (_, partition) = labels.into_iter().find(|(k, _)| k == "partition")?;
            Some((partition, lag))
        })
        .collect();
    lags.sort_by_key(|(p, _)| p.parse::<i32>().unwrap_or(i32::MAX));
    lags
}

/// What `promtool check metrics` says about `text` (its lint, one problem a line); empty when
/// it finds nothing.
///
/// # Panics
/// When promtool cannot be run (naming the command that installs it), or fails without
/// saying why.
pub fn promtool_lint(text: &str) -> String {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "running {PROMTOOL} ({err}): `cargo xtask test` installs it (Debian's prometheus)"
            )
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|err| panic!("writing the metrics to promtool: {err}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("waiting for promtool: {err}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() || !said.trim().is_empty(),
        "promtool failed ({}) without saying why",
        output.status
    );
    said
}

/// Asserts that promtool finds nothing to say about `text`, and that the standard process
/// metrics are there (and nonzero, but for the CPU seconds).
///
/// # Panics
/// With promtool's lint, or the process metric that is missing or zero.
pub fn assert_conventional(text: &str) {
    let lint = promtool_lint(text);
    assert!(
        lint.trim().is_empty(),
        "promtool check metrics:\n{lint}\non:\n{text}"
    );
    // The prometheus crate counts CPU time in whole seconds (a test process may have used less
    // than one): present, a whole number.
    let cpu = sample(text, "process_cpu_seconds_total", &[]);
    assert!(
        cpu.is_some_and(|c| c >= 0.0 && c.fract() == 0.0),
        "process_cpu_seconds_total is {cpu:?}"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = sample(text, name, &[]);
        assert!(
            value.is_some_and(|v| v > 0.0),
            "{name} is {value:?}, expected a positive value"
        );
    }
}

/// The value of the sample of `name` whose labels include `labels` (the first such sample);
/// `None` when there is none.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|(have, _)| {
            labels
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        })
        .map(|(_, value)| value)
}

/// As [`sample`], for a sample that must be there.
///
/// # Panics
/// When there is none, with the whole text.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{text}"))
}

/// Every sample of `name`: its labels and value.
pub fn samples(text: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key.to_owned(), value.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP a_total A.\n# TYPE a_total counter\n\
        a_total{reason=\"x\",topic=\"raw\"} 3\na_total{reason=\"y\",topic=\"raw\"} 4\n\
        # HELP b B.\n# TYPE b gauge\nb 1.5\n";

    #[test]
    fn samples_are_found_by_name_and_labels() {
        assert_eq!(sample(TEXT, "a_total", &[("reason", "y")]), Some(4.0));
        assert_eq!(sample(TEXT, "a_total", &[]), Some(3.0));
        assert_eq!(sample(TEXT, "a_total", &[("reason", "z")]), None);
        assert_eq!(sample(TEXT, "b", &[]), Some(1.5));
        assert_eq!(sample(TEXT, "a", &[]), None);
        assert_eq!(samples(TEXT, "a_total").len(), 2);
    }
}
