//! What core OpenSearch holds for logwarden, on every target: index templates and the anomaly
//! results index. (Retention, the only deletion of data, is [`crate::retention`].)
//!
//! Templates carry `_meta.managed_by: <owner>`; `--prune` deletes only templates with this
//! owner's mark that the spec no longer declares. Data is never pruned.

use opensearch::http::Method;
use pipeline::search::{EventsIndex, OWNER_META, alerts_template, results_template};
use pipeline::wire::Source;
use serde_json::{Value, json};

use crate::api::{Api, ApiError};
use crate::compare::differences;
use crate::plan::{Action, Plan, Step};

/// The events index template, marked with `owner`.
pub fn events_template(events: &EventsIndex, owner: &str) -> Value {
    owned(events.template(), owner)
}

/// The index template of `source`'s daily events indices, marked with `owner`.
pub fn source_events_template(events: &EventsIndex, source: Source, owner: &str) -> Value {
    owned(events.source_template(source), owner)
}

/// The results index template, marked with `owner`.
pub fn results_index_template(index: &str, owner: &str) -> Value {
    owned(results_template(index), owner)
}

/// The alerts index template (the record of alert deliveries), marked with `owner`.
pub fn alerts_index_template(index: &str, owner: &str) -> Value {
    owned(alerts_template(index), owner)
}

fn owned(mut template: Value, owner: &str) -> Value {
    template["_meta"] = json!({ OWNER_META: owner });
    template
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
        let alerts = alerts_index_template("t-alerts", "team-a");
        assert_eq!(alerts["_meta"]["managed_by"], "team-a");
        assert_eq!(alerts["index_patterns"], json!(["t-alerts"]));
    }
}
