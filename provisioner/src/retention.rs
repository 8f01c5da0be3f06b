//! Retention: the only data the provisioner deletes. Daily event indices whose whole day is older
//! than `provisioning.retention.events` (deleted by name), and anomaly results whose interval ended
//! longer ago than `provisioning.retention.results` (deleted by query on `data_end_time`), and
//! with them the record of alert deliveries (the alerts index, by `delivered_at`).
//!
//! Only daily indices of the events alias (`<events>-YYYY.MM.DD`, members of the alias the
//! template gives them) are ever deleted; an index of the same name pattern outside the alias is
//! not ours. Results live in one index (the detector overwrites a re-scored interval by id), so
//! they expire document by document.
//!
//! Retention is done by the provisioner itself rather than by an Index State Management policy:
//! core OpenSearch (the distribution this project can install and test) has no ISM plugin. Run
//! the provisioner daily (the Helm chart's CronJob) to keep it enforced. A dry run counts what
//! would go (a search) and deletes nothing.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use opensearch::http::Method;
use pipeline::search::EventsIndex;
use serde_json::{Value, json};

use crate::api::{Api, ApiError};
use crate::plan::{Action, Plan, Step, span};

/// The results index's time field: the end of the scored interval (epoch milliseconds).
pub const RESULTS_TIME_FIELD: &str = "data_end_time";

/// The alerts index's time field: when the notification was delivered.
pub const ALERTS_TIME_FIELD: &str = "delivered_at";

/// Daily indices of `events` whose whole day ended `keep` or more before `now`, oldest first,
/// with their day. Names that are not `<alias>-YYYY.MM.DD` are never expired.
pub fn expired(
    events: &EventsIndex,
    indices: &[String],
    keep: Duration,
    now: DateTime<Utc>,
) -> Vec<(String, NaiveDate)> {
    let Ok(keep) = chrono::Duration::from_std(keep) else {
        return Vec::new();
    };
    let mut out: Vec<(String, NaiveDate)> = indices
        .iter()
        .filter_map(|name| {
            let day = events.day_of_index(name)?;
            let date = NaiveDate::parse_from_str(day, "%Y.%m.%d").ok()?;
            let end = date.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
            (end + keep <= now).then(|| (name.clone(), date))
        })
        .collect();
    out.sort_by_key(|(_, date)| *date);
    out
}

/// The instant before which a result has expired: `now - keep`, or `None` when `keep` reaches
/// before the epoch (nothing can be that old).
pub fn results_cutoff(keep: Duration, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let keep = chrono::Duration::from_std(keep).ok()?;
    now.checked_sub_signed(keep)
        .filter(|cutoff| cutoff.timestamp_millis() > 0)
}

/// The query matching results whose interval ended before `cutoff`.
pub fn expired_results_query(cutoff: DateTime<Utc>) -> Value {
    expired_query(RESULTS_TIME_FIELD, cutoff)
}

/// The query matching documents whose `field` is before `cutoff`.
fn expired_query(field: &str, cutoff: DateTime<Utc>) -> Value {
    json!({
        "query": {
            "range": {
                field: {
                    "lt": cutoff.timestamp_millis()
                }
            }
        }
    })
}

/// Enforces retention (with `apply`; else plans it).
#[derive(Debug)]
pub struct Retention<'a> {
    api: &'a Api,
    apply: bool,
}

impl<'a> Retention<'a> {
    /// Plans (and with `apply`, carries out) retention.
    pub fn new(api: &'a Api, apply: bool) -> Self {
        Self { api, apply }
    }

    /// Deletes the daily event indices retention has expired, or reports that none has.
    pub async fn events(
        &self,
        events: &EventsIndex,
        keep: Option<Duration>,
        now: DateTime<Utc>,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        let name = events.pattern();
        let indices = self.daily_indices(events).await?;
        let Some(keep) = keep else {
            plan.push(Step::new(
                "retention",
                name,
                Action::Unchanged,
                format!("keep forever: {}", daily(indices.len())),
            ));
            return Ok(());
        };
        let expired = expired(events, &indices, keep, now);
        let keep_text = span(keep);
        plan.push(Step::new(
            "retention",
            name,
            Action::Unchanged,
            format!(
                "keep {keep_text}: {}, {} expired",
                daily(indices.len()),
                expired.len()
            ),
        ));
        for (index, day) in expired {
            if self.apply {
                self.api
                    .ok(Method::Delete, &format!("/{index}"), None)
                    .await?;
            }
            plan.push(Step::new(
                "index",
                index,
                Action::Delete,
                format!("expired: {day} is older than {keep_text}"),
            ));
        }
        Ok(())
    }

    /// Deletes the results in `index` whose interval ended more than `keep` before `now`, or
    /// reports that none has expired.
    pub async fn results(
        &self,
        index: &str,
        keep: Option<Duration>,
        now: DateTime<Utc>,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        self.documents((index, RESULTS_TIME_FIELD, Noun::RESULT), keep, now, plan)
            .await
    }

    /// Deletes the alert deliveries recorded in `index` more than `keep` before `now` (they go
    /// with the results they tell of), or reports that none has expired.
    pub async fn alerts(
        &self,
        index: &str,
        keep: Option<Duration>,
        now: DateTime<Utc>,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        self.documents((index, ALERTS_TIME_FIELD, Noun::DELIVERY), keep, now, plan)
            .await
    }

    /// Deletes the documents of `index` whose `field` is more than `keep` before `now`.
    async fn documents(
        &self,
        (index, field, noun): (&str, &str, Noun),
        keep: Option<Duration>,
        now: DateTime<Utc>,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        let total = self.api.count(index, &json!({})).await?.unwrap_or(0);
        let Some(keep) = keep else {
            plan.push(Step::new(
                "retention",
                index,
                Action::Unchanged,
                format!("keep forever: {}", noun.count(total)),
            ));
            return Ok(());
        };
        let keep_text = span(keep);
        let Some(cutoff) = results_cutoff(keep, now) else {
            plan.push(Step::new(
                "retention",
                index,
                Action::Unchanged,
                format!("keep {keep_text}: {}, 0 expired", noun.count(total)),
            ));
            return Ok(());
        };
        let query = expired_query(field, cutoff);
        let mut expired = self.api.count(index, &query).await?.unwrap_or(0);
        plan.push(Step::new(
            "retention",
            index,
            Action::Unchanged,
            format!("keep {keep_text}: {}, {expired} expired", noun.count(total)),
        ));
        if expired == 0 {
            return Ok(());
        }
        if self.apply {
            let path = format!("/{index}/_delete_by_query?conflicts=proceed&refresh=true");
            let reply = self.api.ok(Method::Post, &path, Some(&query)).await?;
            expired = reply["deleted"].as_u64().unwrap_or(expired);
        }
        plan.push(Step::new(
            noun.kind,
            index,
            Action::Delete,
            format!(
                "expired: {} with {field} before {} (older than {keep_text})",
                noun.count(expired),
                cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
        Ok(())
    }

    /// The daily indices in the events alias, by name.
    pub async fn daily_indices(&self, events: &EventsIndex) -> Result<Vec<String>, ApiError> {
        let path = format!("/_alias/{}", events.alias());
        let mut names: Vec<String> = match self.api.found(Method::Get, &path).await? {
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        names.sort();
        Ok(names)
    }
}

fn daily(count: usize) -> String {
    match count {
        1 => "1 daily index".to_owned(),
        n => format!("{n} daily indices"),
    }
}

/// What a document-by-document retention deletes, for the plan.
#[derive(Debug, Clone, Copy)]
struct Noun {
    /// The plan step's kind.
    kind: &'static str,
    one: &'static str,
    many: &'static str,
}

impl Noun {
    const RESULT: Self = Self {
        kind: "results",
        one: "result",
        many: "results",
    };
    const DELIVERY: Self = Self {
        kind: "alerts",
        one: "alert delivery",
        many: "alert deliveries",
    };

    fn count(self, count: u64) -> String {
        match count {
            1 => format!("1 {}", self.one),
            n => format!("{n} {}", self.many),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn only_whole_days_older_than_the_retention_expire() {
        let events = EventsIndex::new("logwarden-events", "events").expect("valid");
        let names: Vec<String> = [
            "logwarden-events-2026.10.23",
            "logwarden-events-2026.10.24",
            "logwarden-events-2026.10.22",
            "logwarden-events-2026.11.23",
            "logwarden-events-2026.10.2",
            "logwarden-events-archive",
            "logwarden-events-extra-2020.01.01",
            "logwarden-events-waf-2026.10.23",
            "logwarden-events-syslog-2026.10.24",
            "other-2020.01.01",
        ]
        .map(String::from)
        .to_vec();
        let now = at("2026-11-23T00:00:00Z");
        let gone = expired(&events, &names, Duration::from_secs(30 * 86_400), now);
        let gone: Vec<&str> = gone.iter().map(|(n, _)| n.as_str()).collect();
        // 2026-10-23 ended at 2026-10-24T00:00, exactly 30 days before now.
        assert_eq!(
            gone,
            [
                "logwarden-events-2026.10.22",
                "logwarden-events-2026.10.23",
                "logwarden-events-waf-2026.10.23"
            ]
        );
    }

    #[test]
    fn results_expire_by_the_end_of_their_interval() {
        let now = at("2026-11-23T12:00:00Z");
        let cutoff = results_cutoff(Duration::from_secs(90 * 86_400), now).expect("cutoff");
        assert_eq!(cutoff, at("2026-08-25T12:00:00Z"));
        assert_eq!(
            expired_results_query(cutoff),
            json!({"query": {"range": {"data_end_time": {
                "lt": 1_787_659_200_000_i64
            }}}})
        );
        // A retention reaching before 1970 expires nothing.
        assert_eq!(
            results_cutoff(Duration::from_secs(100 * 365 * 86_400), now),
            None
        );
    }
}
