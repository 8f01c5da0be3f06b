//! The chart's observability files as data: the Prometheus rule file, the Grafana dashboards and
//! every PromQL query in them, with Grafana's template variables replaced as a user choosing
//! "All" would see them. The chart tests check their structure offline; the real-Prometheus test
//! (`faults/tests/prometheus.rs`) runs every query against a Prometheus scraping the pipeline.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The plain Prometheus rule file, the rules' source of truth.
pub fn rules_file() -> PathBuf {
    crate::helm::chart()
        .join("rules")
        .join("logwarden.rules.yaml")
}

/// Its `promtool test rules` unit tests (they name the rule file relative to themselves).
pub fn rules_tests() -> PathBuf {
    crate::helm::chart()
        .join("rules")
        .join("logwarden.rules.test.yaml")
}

/// Debian's promtool, which `cargo xtask test` installs (the `prometheus` package).
///
/// # Panics
/// When it is not installed, naming the command that installs it.
pub fn promtool() -> PathBuf {
    installed("/usr/bin/promtool")
}

/// Debian's prometheus server, which `cargo xtask test` installs.
///
/// # Panics
/// When it is not installed, naming the command that installs it.
pub fn prometheus() -> PathBuf {
    installed("/usr/bin/prometheus")
}

fn installed(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{} is not installed: run the suite with `cargo xtask test` (it installs Debian's `prometheus` package)",
        path.display()
    );
    path
}

/// One recording or alerting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The recorded series' name or the alert's name.
    pub name: String,
    /// An alerting rule (else a recording rule).
    pub alert: bool,
    /// Its PromQL expression.
    pub expr: String,
}

/// The rules of a rule file's `groups` (or a PrometheusRule's `spec.groups`), in order.
///
/// # Panics
/// When a rule has no name or no expression.
pub fn rules(groups: &serde_norway::Value) -> Vec<Rule> {
    let mut rules = Vec::new();
    for group in groups.as_sequence().into_iter().flatten() {
        for rule in group["rules"].as_sequence().into_iter().flatten() {
            let (name, alert) = match (rule["record"].as_str(), rule["alert"].as_str()) {
                (Some(record), None) => (record, false),
                (None, Some(alert)) => (alert, true),
                _ => panic!("a rule with neither `record` nor `alert`: {rule:?}"),
            };
            let expr = rule["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("rule {name} has no expr"));
            rules.push(Rule {
                name: name.to_owned(),
                alert,
                expr: expr.trim().to_owned(),
            });
        }
    }
    rules
}

/// The rules of [`rules_file`].
pub fn file_rules() -> Vec<Rule> {
    let file: serde_norway::Value = serde_norway::from_str(&read(&rules_file()))
        .unwrap_or_else(|err| panic!("{} is not YAML: {err}", rules_file().display()));
    rules(&file["groups"])
}

/// One dashboard file.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Its file name under `dashboards/`, e.g. `pipeline.json`.
    pub file: String,
    /// Its JSON model.
    pub json: Value,
}

/// One PromQL query of a dashboard: a panel's target or an annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Where it is: `<file> panel <id> "<title>" <refId>`, or `<file> annotation "<name>"`.
    pub place: String,
    /// The expression, as the file holds it.
    pub expr: String,
}

/// The chart's dashboards (`dashboards/*.json`), by file name.
///
/// # Panics
/// When the directory cannot be read or a file is not JSON.
pub fn dashboards() -> Vec<Dashboard> {
    let dir = crate::helm::chart().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| Dashboard {
            file: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            json: serde_json::from_str(&read(path))
                .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display())),
        })
        .collect()
}

impl Dashboard {
    /// Every panel, those inside collapsed rows included.
    pub fn panels(&self) -> Vec<&Value> {
        let mut panels = Vec::new();
        for panel in self.json["panels"].as_array().into_iter().flatten() {
            panels.push(panel);
            panels.extend(panel["panels"].as_array().into_iter().flatten());
        }
        panels
    }

    /// Every PromQL query: each panel target's `expr` and each annotation's `expr`.
    pub fn queries(&self) -> Vec<Query> {
        let mut queries = Vec::new();
        for panel in self.panels() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                queries.push(Query {
                    place: format!(
                        "{} panel {} {:?} {}",
                        self.file,
                        panel["id"],
                        panel["title"].as_str().unwrap_or_default(),
                        target["refId"].as_str().unwrap_or_default()
                    ),
                    expr: target["expr"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        for annotation in self.json["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a.get("expr").is_some())
        {
            queries.push(Query {
                place: format!(
                    "{} annotation {:?}",
                    self.file,
                    annotation["name"].as_str().unwrap_or_default()
                ),
                expr: annotation["expr"].as_str().unwrap_or_default().to_owned(),
            });
        }
        queries
    }

    /// The template variables: name, type, and query (empty when it has none).
    pub fn variables(&self) -> Vec<(String, String, String)> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|variable| {
                let query = match &variable["query"] {
                    Value::String(text) => text.clone(),
                    other => other["query"].as_str().unwrap_or_default().to_owned(),
                };
                (
                    variable["name"].as_str().unwrap_or_default().to_owned(),
                    variable["type"].as_str().unwrap_or_default().to_owned(),
                    query,
                )
            })
            .collect()
    }
}

/// Grafana's interval variables, which every Prometheus query may use.
pub const BUILTIN_VARIABLES: [&str; 2] = ["__rate_interval", "__interval"];

/// The `$name` and `${name}` variables an expression uses, in order.
pub fn variables_used(expr: &str) -> Vec<String> {
    let mut used = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        let tail = &rest[at + 1..];
        let (name, after) = match tail.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').unwrap_or(braced.len());
                (&braced[..end], &braced[(end + 1).min(braced.len())..])
            }
            None => {
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                (&tail[..end], &tail[end..])
            }
        };
        if !name.is_empty() {
            used.push(name.to_owned());
        }
        rest = after;
    }
    used
}

/// `expr` as Grafana sends it with every variable on "All": the interval variables become
/// `interval` (e.g. `30s`), every other variable `.*` (the dashboards match them with `=~`).
pub fn substitute(expr: &str, interval: &str) -> String {
    let mut out = expr.to_owned();
    for name in variables_used(expr) {
        let value = if BUILTIN_VARIABLES.contains(&name.as_str()) {
            interval
        } else {
            ".*"
        };
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replacen(&format!("${name}"), value, 1);
    }
    out
}

/// A variable's `label_values(<selector>, <label>)` query as its selector and label.
pub fn label_values(query: &str) -> Option<(&str, &str)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim(), label.trim()))
}

/// `logwarden_...` metric names in a PromQL expression; a `__name__=~"logwarden_(a|b)_x"`
/// regex comes out expanded (`logwarden_a_x`, `logwarden_b_x`).
pub fn metric_names(expr: &str) -> Vec<String> {
    metric_patterns(expr)
        .iter()
        .flat_map(|pattern| expand(pattern))
        .collect()
}

/// The `logwarden_...` metrics a PromQL expression reads, as written: a name, or the regex of
/// a `__name__=~"logwarden_(a|b)_x"` matcher. Recorded series (`level:logwarden_...:op`) are
/// not metrics and are left out.
pub fn metric_patterns(expr: &str) -> Vec<String> {
    let mut patterns = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("logwarden_") {
        let recorded = rest[..at].ends_with(':');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_()|:".contains(c)))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if !recorded && !name.contains(':') {
            patterns.push(name.to_owned());
        }
        rest = &tail[end..];
    }
    patterns
}

/// `logwarden_(a|b)_x` → `logwarden_a_x`, `logwarden_b_x`.
fn expand(name: &str) -> Vec<String> {
    match (name.find('('), name.find(')')) {
        (Some(open), Some(close)) if open < close => name[open + 1..close]
            .split('|')
            .map(|choice| format!("{}{choice}{}", &name[..open], &name[close + 1..]))
            .collect(),
        _ => vec![name.to_owned()],
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_as_all_would_be() {
        let expr =
            r#"sum by (job) (rate(x{namespace=~"$namespace", job=~"${job}"}[$__rate_interval]))"#;
        assert_eq!(
            variables_used(expr),
            ["namespace", "job", "__rate_interval"]
        );
        assert_eq!(
            substitute(expr, "30s"),
            r#"sum by (job) (rate(x{namespace=~".*", job=~".*"}[30s]))"#
        );
    }

    #[test]
    fn label_values_queries_split_into_selector_and_label() {
        assert_eq!(
            label_values(r#"label_values(logwarden_build_info{namespace=~"$namespace"}, job)"#),
            Some((r#"logwarden_build_info{namespace=~"$namespace"}"#, "job"))
        );
        assert_eq!(label_values("up"), None);
    }

    #[test]
    fn metric_names_expand_regexes_and_skip_recorded_series() {
        assert_eq!(
            metric_names(
                r#"sum(rate({__name__=~"logwarden_(transformer|sink)_dead_letters_total"}[5m])) > 0 and namespace_job:logwarden_sink_records_in:rate5m > logwarden_sink_backpressure"#
            ),
            [
                "logwarden_transformer_dead_letters_total",
                "logwarden_sink_dead_letters_total",
                "logwarden_sink_backpressure"
            ]
        );
    }
}
