//! `logwarden-provisioner verify --within DURATION`: is data flowing end to end? The Helm chart's
//! `helm test` Job runs it.
//!
//! It passes only when the events alias holds documents whose `@timestamp` (the event time the
//! transformer writes and the sink indexes) is within the window, AND the results index holds
//! results whose interval ended (`data_end_time`) within it: records went through producer,
//! transformer and sink, and the detector scored them. Otherwise it fails naming what is missing
//! and the index it asked. Two counts, nothing written. The results index is the spec's unless
//! `--results-index` names another (the anomaly-detection plugin's, on that target).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{Api, ApiError};
use crate::plan::span;
use crate::retention::RESULTS_TIME_FIELD;

/// The events' time field, as the transformer writes it and the events template maps it.
pub const EVENTS_TIME_FIELD: &str = "@timestamp";

/// What was found for one kind of document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `events` or `results`.
    pub what: &'static str,
    /// The index or alias asked.
    pub index: String,
    /// Its time field.
    pub field: &'static str,
    /// Documents within the window; `None` when the index does not exist.
    pub count: Option<u64>,
}

impl Found {
    fn present(&self) -> bool {
        self.count.is_some_and(|n| n > 0)
    }

    /// Who should have written it, and what to check.
    fn hint(&self) -> &'static str {
        match self.what {
            "events" => {
                "written by logwarden-sink: check the log source (or logwarden-producer), \
                 logwarden-transformer and logwarden-sink"
            }
            _ => "written by logwarden-detector: check that it runs and reaches OpenSearch",
        }
    }
}

/// Why verification failed: each kind of document missing within the window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The window.
    pub within: Duration,
    /// What is missing.
    pub missing: Vec<Found>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let within = span(self.within);
        let parts: Vec<String> = self
            .missing
            .iter()
            .map(|found| {
                let index = match found.count {
                    None => format!("{}, which does not exist", found.index),
                    Some(_) => found.index.clone(),
                };
                format!(
                    "no {} with {} in the last {within} in {index} ({})",
                    found.what,
                    found.field,
                    found.hint()
                )
            })
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

/// The query matching documents whose `field` is at or after `since`.
pub fn since_query(field: &str, since: DateTime<Utc>) -> Value {
    json!({
        "query": {
            "range": {
                field: {
                    "gte": since.timestamp_millis()
                }
            }
        }
    })
}

/// One line per kind of document, as printed.
pub fn lines(found: &[Found], within: Duration) -> String {
    let within = span(within);
    found
        .iter()
        .map(|f| match f.count {
            Some(n) => format!(
                "{}: {n} in {} with {} in the last {within}\n",
                f.what, f.index, f.field
            ),
            None => format!("{}: {} does not exist\n", f.what, f.index),
        })
        .collect()
}

/// Passes when every kind of document is present.
pub fn judge(found: Vec<Found>, within: Duration) -> Result<(), VerifyError> {
    let missing: Vec<Found> = found.into_iter().filter(|f| !f.present()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(VerifyError { within, missing })
    }
}

/// Counts events in `events` (the alias) and results in `results` within `within` of `now`.
pub async fn count(
    api: &Api,
    events: &str,
    results: &str,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Found>, ApiError> {
    let since = chrono::Duration::from_std(within)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut found = Vec::new();
    for (what, index, field) in [
        ("events", events, EVENTS_TIME_FIELD),
        ("results", results, RESULTS_TIME_FIELD),
    ] {
        let count = api.count(index, &since_query(field, since)).await?;
        found.push(Found {
            what,
            index: index.to_owned(),
            field,
            count,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(what: &'static str, count: Option<u64>) -> Found {
        Found {
            what,
            index: format!("i-{what}"),
            field: if what == "events" {
                EVENTS_TIME_FIELD
            } else {
                RESULTS_TIME_FIELD
            },
            count,
        }
    }

    #[test]
    fn it_passes_only_with_both_and_names_each_missing_one() {
        let ten = Duration::from_secs(600);
        assert_eq!(
            judge(
                vec![found("events", Some(3)), found("results", Some(1))],
                ten
            ),
            Ok(())
        );
        let err = judge(
            vec![found("events", Some(3)), found("results", Some(0))],
            ten,
        )
        .expect_err("results missing");
        assert_eq!(
            err.to_string(),
            "no results with data_end_time in the last 10m in i-results (written by \
             logwarden-detector: check that it runs and reaches OpenSearch)"
        );
        let err = judge(vec![found("events", None), found("results", Some(0))], ten)
            .expect_err("both missing")
            .to_string();
        assert!(
            err.starts_with(
                "no events with @timestamp in the last 10m in i-events, which does not exist \
                 (written by logwarden-sink: "
            ),
            "{err}"
        );
        assert!(err.contains("; no results with data_end_time"), "{err}");
        assert_eq!(
            lines(&[found("events", Some(3)), found("results", None)], ten),
            "events: 3 in i-events with @timestamp in the last 10m\n\
             results: i-results does not exist\n"
        );
    }

    #[test]
    fn the_window_reaches_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:10:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let since = now - chrono::Duration::minutes(10);
        assert_eq!(
            since_query("@timestamp", since)["query"]["range"]["@timestamp"]["gte"],
            json!(since.timestamp_millis())
        );
    }
}
