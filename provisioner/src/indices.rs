//! What core OpenSearch holds for logwarden, on every target: index templates, the anomaly
//! results index, and retention of the daily event indices.
//!
//! Templates carry `_meta.managed_by: <owner>`; `--prune` deletes only templates with this
//! owner's mark that the spec no longer declares. Data is never pruned: indices are deleted only
//! by retention, and only daily indices of the events alias (`<events>-YYYY.MM.DD`, members of
//! the alias the template gives them) whose whole day is older than the retention.
//!
//! Retention is done by the provisioner itself rather than by an Index State Management policy:
//! core OpenSearch (the distribution this project can install and test) has no ISM plugin, and
//! the daily indices already carry their day in their name. Run the provisioner daily (the Helm
//! chart's CronJob) to keep it enforced.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use opensearch::http::Method;
use pipeline::search::{EventsIndex, OWNER_META, results_template};
use serde_json::{Value, json};

use crate::api::{Api, ApiError};
use crate::compare::differences;
use crate::plan::{Action, Plan, Step, span};

/// The events index template, marked with `owner`.
pub fn events_template(events: &EventsIndex, owner: &str) -> Value {
    owned(events.template(), owner)
}

/// The results index template, marked with `owner`.
pub fn results_index_template(index: &str, owner: &str) -> Value {
    owned(results_template(index), owner)
}

fn owned(mut template: Value, owner: &str) -> Value {
    template["_meta"] = json!({ OWNER_META: owner });
    template
}

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
    let prefix = format!("{}-", events.alias());
    let mut out: Vec<(String, NaiveDate)> = indices
        .iter()
        .filter_map(|name| {
            let day = name.strip_prefix(&prefix)?;
            if day.len() != 10 {
                return None;
            }
            let date = NaiveDate::parse_from_str(day, "%Y.%m.%d").ok()?;
            let end = date.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
            (end + keep <= now).then(|| (name.clone(), date))
        })
        .collect();
    out.sort_by_key(|(_, date)| *date);
    out
}

/// Converges the core objects.
#[derive(Debug)]
pub struct Indices<'a> {
    api: &'a Api,
    owner: &'a str,
    apply: bool,
}

impl<'a> Indices<'a> {
    /// Plans (and with `apply`, carries out) the core objects of `owner`.
    pub fn new(api: &'a Api, owner: &'a str, apply: bool) -> Self {
        Self { api, owner, apply }
    }

    /// Creates or updates the index template `name` to `desired`.
    pub async fn template(
        &self,
        name: &str,
        desired: &Value,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        let path = format!("/_index_template/{name}");
        let actual = self.api.found(Method::Get, &path).await?;
        let actual = actual
            .as_ref()
            .map(|body| &body["index_templates"][0]["index_template"]);
        let step = match actual {
            Some(actual) if !actual.is_null() => {
                let changed = differences(desired, actual);
                if changed.is_empty() {
                    Step::new("index template", name, Action::Unchanged, patterns(desired))
                } else {
                    if self.apply {
                        self.api.ok(Method::Put, &path, Some(desired)).await?;
                    }
                    Step::new("index template", name, Action::Update, changed.join(", "))
                }
            }
            _ => {
                if self.apply {
                    self.api.ok(Method::Put, &path, Some(desired)).await?;
                }
                Step::new("index template", name, Action::Create, patterns(desired))
            }
        };
        plan.push(step);
        Ok(())
    }

    /// Deletes (with `prune`; else lists) templates marked with this owner that are not in
    /// `keep`.
    pub async fn prune_templates(
        &self,
        keep: &[&str],
        prune: bool,
        plan: &mut Plan,
    ) -> Result<(), ApiError> {
        let all = self.api.ok(Method::Get, "/_index_template", None).await?;
        let owned = all["index_templates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["index_template"]["_meta"][OWNER_META].as_str() == Some(self.owner))
            .filter_map(|t| t["name"].as_str())
            .filter(|name| !keep.contains(name));
        for name in owned {
            if !prune {
                plan.push(Step::new(
                    "index template",
                    name,
                    Action::Unchanged,
                    "owned but no longer in the spec: kept (--prune deletes it)",
                ));
                continue;
            }
            if self.apply {
                self.api
                    .ok(Method::Delete, &format!("/_index_template/{name}"), None)
                    .await?;
            }
            plan.push(Step::new(
                "index template",
                name,
                Action::Delete,
                "owned and no longer in the spec (--prune)",
            ));
        }
        Ok(())
    }

    /// Creates the index `name` when it is missing (its template gives it settings and
    /// mappings).
    pub async fn index(&self, name: &str, plan: &mut Plan) -> Result<(), ApiError> {
        let path = format!("/{name}");
        let step = match self.api.found(Method::Get, &path).await? {
            Some(_) => {
                let count = self
                    .api
                    .found(Method::Get, &format!("/{name}/_count"))
                    .await?
                    .and_then(|body| body["count"].as_u64());
                let detail = match count {
                    Some(1) => "exists, 1 document".to_owned(),
                    Some(n) => format!("exists, {n} documents"),
                    None => "exists".to_owned(),
                };
                Step::new("index", name, Action::Unchanged, detail)
            }
            None => {
                if self.apply {
                    let reply = self.api.call(Method::Put, &path, None).await?;
                    // Created meanwhile (the detector creates it too): that is the goal.
                    let raced = reply.body["error"]["type"].as_str()
                        == Some("resource_already_exists_exception");
                    if !reply.is_success() && !raced {
                        return Err(crate::api::refused(Method::Put, &path, &reply));
                    }
                }
                Step::new("index", name, Action::Create, "")
            }
        };
        plan.push(step);
        Ok(())
    }

    /// Deletes the daily event indices retention has expired, or reports that none has.
    pub async fn retention(
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

fn patterns(template: &Value) -> String {
    template["index_patterns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "other-2020.01.01",
        ]
        .map(String::from)
        .to_vec();
        let now = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let gone = expired(&events, &names, Duration::from_secs(30 * 86_400), now);
        let gone: Vec<&str> = gone.iter().map(|(n, _)| n.as_str()).collect();
        // 2026-10-23 ended at 2026-10-24T00:00, exactly 30 days before now.
        assert_eq!(
            gone,
            ["logwarden-events-2026.10.22", "logwarden-events-2026.10.23"]
        );
    }

    #[test]
    fn templates_carry_the_owner() {
        let events = EventsIndex::new("t-events", "events").expect("valid");
        assert_eq!(
            events_template(&events, "team-a")["_meta"]["managed_by"],
            "team-a"
        );
        assert_eq!(
            results_index_template("t-results", "team-a")["_meta"]["managed_by"],
            "team-a"
        );
    }
}
