//! Splunk HTTP Event Collector events in their envelope (`time` in epoch seconds with
//! milliseconds, `host`, `source`, `sourcetype`, `index`, `event`), from three applications
//! that name their level differently (`severity`, `level`, `log_level`) and in different case,
//! as real JSON logs do. The injected anomalies are bursts of errors and of warnings.

use serde_json::{Value, json};

use super::sources::{Common, SourceRecord};

/// (sourcetype, source, the event's level field, hosts).
const APPS: &[(&str, &str, &str, &[&str])] = &[
    (
        "payments:app",
        "/var/log/payments/app.log",
        "severity",
        &["pay-api-1", "pay-api-2"],
    ),
    (
        "checkout:json",
        "checkout-service",
        "level",
        &["checkout-7d9f8-abcde", "checkout-7d9f8-fghij"],
    ),
    (
        "inventory:worker",
        "inventory-worker",
        "log_level",
        &["inv-worker-1"],
    ),
];
const INFO: &[((&str, &str), u32)] = &[
    (("INFO", "request completed"), 50),
    (("info", "cache refreshed"), 15),
    (("DEBUG", "connection pool stats"), 15),
    (("notice", "configuration reloaded"), 5),
];
const WARNINGS: &[(&str, &str)] = &[
    ("WARN", "retrying upstream call"),
    ("warning", "slow query over 500 ms"),
    ("Warning", "deprecated API version used"),
];
const ERRORS: &[(&str, &str)] = &[
    ("ERROR", "payment gateway timeout"),
    ("error", "failed to reserve stock"),
    ("CRITICAL", "database primary unreachable"),
    ("fatal", "worker crashed"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Info,
    Warning,
    Error,
}

const NORMAL: &[(Kind, u32)] = &[(Kind::Info, 960), (Kind::Warning, 30), (Kind::Error, 10)];

fn injected(indicator: &str) -> Kind {
    match indicator {
        "hec_error" => Kind::Error,
        "hec_warning" => Kind::Warning,
        _ => Kind::Info,
    }
}

/// The Splunk HEC generator.
#[derive(Debug, Clone)]
pub struct Splunk {
    pub(crate) common: Common,
}

impl Splunk {
    pub(crate) fn new(common: Common) -> Self {
        Self { common }
    }

    pub(crate) fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        let c = &mut self.common;
        let injects = c.injects(inject).map(injected);
        let kind = injects.unwrap_or(*c.pick(NORMAL));
        let key = c.key();
        let (sourcetype, source, field, hosts) = *c.one(APPS);
        let host = *c.one(hosts);
        let (level, message) = match kind {
            Kind::Info => *c.pick(INFO),
            Kind::Warning => *c.one(WARNINGS),
            Kind::Error => *c.one(ERRORS),
        };
        let mut event = json!({
            "message": message,
            "trace_id": key,
            "duration_ms": c.int(2..900),
        });
        event[field] = level.into();
        let envelope = json!({
            "time": timestamp_ms as f64 / 1_000.0,
            "host": host,
            "source": source,
            "sourcetype": sourcetype,
            "index": "main",
            "event": event,
        });
        let line = envelope.to_string();
        SourceRecord {
            key,
            raw: line.clone().into_bytes(),
            indicators: indicators(&envelope["event"]),
            line,
        }
    }
}

/// The preset's indicators of a HEC event, from its level field (any of the three names).
fn indicators(event: &Value) -> Vec<&'static str> {
    let level = ["severity", "level", "log_level"]
        .iter()
        .find_map(|name| event[name].as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let error = [
        "error",
        "err",
        "critical",
        "crit",
        "fatal",
        "emergency",
        "alert",
    ];
    [
        ("hec_error", error.contains(&level.as_str())),
        ("hec_warning", level == "warn" || level == "warning"),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use pipeline::wire::Source;

    use super::super::sources::tests::{T0, records};

    #[test]
    fn envelopes_carry_time_in_seconds_and_a_level_field() {
        let all = records(Source::Splunk, 300, Some("hec_error"));
        let first: serde_json::Value = serde_json::from_str(&all[0].line).expect("JSON");
        assert_eq!(first["time"].as_f64(), Some(T0 as f64 / 1_000.0));
        assert_eq!(first["event"]["trace_id"], all[0].key.as_str());
        let sourcetypes: std::collections::BTreeSet<String> = all
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.line).expect("JSON"))
            .map(|v| v["sourcetype"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(sourcetypes.len(), 3, "{sourcetypes:?}");
    }
}
