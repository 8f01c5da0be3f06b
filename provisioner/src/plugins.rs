//! OpenSearch's anomaly-detection, alerting and notifications plugins: the only module that
//! speaks their REST APIs, so a real cluster with the plugins can be pointed at it
//! (`--target opensearch-plugins --url ...`).
//!
//! The spec's detectors become single-stream plugin detectors (one feature, the interval in
//! whole minutes), its monitors query-level monitors reading the plugin's results, its channels
//! notification configs. Objects are found by name (channels by id, which is the name), compared
//! with [`crate::compare::differences`] against what the plugin returns, and created, updated or
//! left alone. A running detector is stopped, updated and started again, because the plugin
//! refuses to update a running one ("Job is running"). Ownership is marked on each object
//! (`managed_by: <owner>` at the end of a detector's or channel's description, as the first line
//! of a monitor's trigger script), and only marked objects are ever pruned.
//!
//! What was measured on a real OpenSearch 3.6.0 with the plugins shapes the bodies: monitors
//! exclude historical-analysis results (`must_not exists task_id`) and window on `data_end_time`
//! (after a restart the plugin re-scores recent history, so a window on execution time would fire
//! on old anomalies again); detectors train on `model.history` intervals (120 by default, not the
//! plugin's 40) and monitors default to [`PLUGIN_MIN_CONFIDENCE`], because the plugin's
//! confidence is 0.3–0.4 right after a cold start and rises only about 0.01 a minute (with
//! `history: 115` and 120 minutes of history in the index it was 0.76 at start).
//!
//! The bodies are built by pure functions, tested against the requests recorded from a real
//! OpenSearch 3.6.0 with the plugins; the converge steps are tested against the recorded
//! responses, served by a local HTTP server.

use std::collections::BTreeMap;
use std::time::Duration;

use opensearch::http::Method;
use pipeline::spec::{
    Aggregation, ChannelSpec, DetectorSpec, MonitorSpec, PLUGIN_MIN_CONFIDENCE, SmtpTls, Spec,
    SpecError,
};
use serde_json::{Value, json};

use crate::api::{Api, ApiError, index_missing};
use crate::compare::differences;
use crate::plan::{Action, Plan, Step, span};

/// The anomaly-detection plugin's detectors API.
pub const DETECTORS: &str = "/_plugins/_anomaly_detection/detectors";
/// The alerting plugin's monitors API.
pub const MONITORS: &str = "/_plugins/_alerting/monitors";
/// The notifications plugin's configs API.
pub const CONFIGS: &str = "/_plugins/_notifications/configs";
/// Where the anomaly-detection plugin writes its results.
pub const RESULTS_PATTERN: &str = ".opendistro-anomaly-results*";
/// The plugins the target needs, as `_cat/plugins` names them.
pub const REQUIRED: [&str; 3] = [
    "opensearch-anomaly-detection",
    "opensearch-alerting",
    "opensearch-notifications",
];

/// The ownership mark: `managed_by: <owner>`.
pub fn mark(owner: &str) -> String {
    format!("managed_by: {owner}")
}

fn described(text: &str, owner: &str) -> String {
    format!("{text} ({})", mark(owner))
}

fn is_owned_description(description: Option<&str>, owner: &str) -> bool {
    description.is_some_and(|d| d.ends_with(&format!("({})", mark(owner))))
}

fn spec_error(key: String, problem: String, fix: &str) -> SpecError {
    SpecError {
        origin: "spec".into(),
        key,
        problem,
        fix: fix.into(),
    }
}

/// Whole minutes of `duration`, rounded up, at least 1.
fn minutes_up(duration: Duration) -> u64 {
    duration.as_secs().div_ceil(60).max(1)
}

/// The interval of detector `index` in whole minutes, or the error naming its key.
pub fn interval_minutes(d: &DetectorSpec, index: usize) -> Result<u64, SpecError> {
    let seconds = d.interval.as_secs();
    if seconds < 60 || !seconds.is_multiple_of(60) || d.interval.subsec_nanos() != 0 {
        return Err(spec_error(
            format!("detectors[{index}].interval"),
            format!(
                "is {}, not whole minutes: the anomaly-detection plugin counts intervals in minutes",
                span(d.interval)
            ),
            "use 1m or more in whole minutes for the opensearch-plugins target, or target builtin",
        ));
    }
    Ok(seconds / 60)
}

/// The plugin detector for spec detector `index`: one feature over `<events>*`, the interval and
/// window delay in minutes (the delay rounded up), the spec's shingle size and history.
pub fn detector_body(
    d: &DetectorSpec,
    index: usize,
    events: &str,
    owner: &str,
) -> Result<Value, SpecError> {
    let minutes = interval_minutes(d, index)?;
    let name = d.feature_name();
    let (aggregation, what) = match (d.feature.aggregation, &d.feature.field) {
        (Aggregation::Sum, Some(field)) => (
            json!({ "sum": { "field": field } }),
            format!("sum({field})"),
        ),
        (Aggregation::Count, Some(field)) => (
            json!({ "value_count": { "field": field } }),
            format!("count({field})"),
        ),
        (Aggregation::Count, None) => (
            json!({ "value_count": { "field": "@timestamp" } }),
            "count".to_owned(),
        ),
        (Aggregation::Sum, None) | (Aggregation::Rate, _) => {
            return Err(spec_error(
                format!("detectors[{index}].feature.aggregation"),
                "is `rate`, which the anomaly-detection plugin has no aggregation for".into(),
                "use `sum` (the plugin's intervals are fixed, so a sum is a rate times the interval)",
            ));
        }
    };
    let filter = match &d.feature.filter {
        None => json!({ "match_all": { "boost": 1.0 } }),
        Some(filter) => json!({ "bool": {
            "filter": [{ "term": { filter.field.clone(): { "value": filter.value, "boost": 1.0 } } }],
            "adjust_pure_negative": true,
            "boost": 1.0
        } }),
    };
    Ok(json!({
        "name": d.name,
        "description": described(&format!("{what} per {minutes}m"), owner),
        "time_field": "@timestamp",
        "indices": [format!("{events}*")],
        "filter_query": filter,
        "feature_attributes": [{
            "feature_name": name,
            "feature_enabled": true,
            "aggregation_query": { name.clone(): aggregation }
        }],
        "detection_interval": { "period": { "interval": minutes, "unit": "Minutes" } },
        "window_delay": { "period": { "interval": minutes_up(d.window_delay), "unit": "Minutes" } },
        "shingle_size": d.model.shingle_size,
        "history": d.model.history,
    }))
}

/// What kind of notification config a channel is (it decides the message's form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A JSON body.
    Webhook,
    /// Text, sent by the plugin as Slack's `text`.
    Slack,
    /// Text, with a subject.
    Email,
}

/// A channel as notification configs: `(config id, body)`, the SMTP account before the e-mail
/// config that uses it. Secrets (URLs with tokens) are resolved here, in the provisioner's
/// environment.
pub fn channel_configs(
    c: &ChannelSpec,
    index: usize,
    owner: &str,
) -> Result<(ChannelKind, Vec<(String, Value)>), SpecError> {
    let description = described("logwarden alerts", owner);
    let resolve = |secret: &pipeline::spec::Secret, kind: &str| {
        secret.resolve().map_err(|problem| {
            spec_error(
                format!("channels[{index}].{kind}"),
                problem,
                "set the variable or file it names in the provisioner's environment",
            )
        })
    };
    let config = |name: &str, kind: &str, body: Value| {
        json!({
            "config_id": name,
            "config": {
                "name": name,
                "description": description,
                "config_type": kind,
                "is_enabled": true,
                kind: body,
            }
        })
    };
    if let Some(secret) = &c.webhook {
        let url = resolve(secret, "webhook")?;
        let body = json!({
            "url": url,
            "header_params": { "Content-Type": "application/json" },
            "method": "POST"
        });
        return Ok((
            ChannelKind::Webhook,
            vec![(c.name.clone(), config(&c.name, "webhook", body))],
        ));
    }
    if let Some(secret) = &c.slack {
        let url = resolve(secret, "slack")?;
        return Ok((
            ChannelKind::Slack,
            vec![(
                c.name.clone(),
                config(&c.name, "slack", json!({ "url": url })),
            )],
        ));
    }
    let Some(email) = &c.email else {
        return Err(spec_error(
            format!("channels[{index}]"),
            "has no kind".into(),
            "give exactly one of webhook, slack, email",
        ));
    };
    let account = format!("{}-smtp", c.name);
    let method = match email.tls {
        SmtpTls::None => "none",
        SmtpTls::Starttls => "start_tls",
        SmtpTls::Tls => "ssl",
    };
    let smtp = json!({
        "host": email.host,
        "port": email.port,
        "method": method,
        "from_address": email.from,
    });
    let recipients: Vec<Value> = email
        .to
        .iter()
        .map(|to| json!({ "recipient": to }))
        .collect();
    let message = json!({
        "email_account_id": account,
        "recipient_list": recipients,
        "email_group_id_list": [],
    });
    Ok((
        ChannelKind::Email,
        vec![
            (account.clone(), config(&account, "smtp_account", smtp)),
            (c.name.clone(), config(&c.name, "email", message)),
        ],
    ))
}

/// The query-level monitor for spec monitor `m` on plugin detectors `detector_ids`, run every
/// `minutes`: the highest grade among the results whose data ended in the last three intervals,
/// historical results excluded; it triggers at `min_grade` and `min_confidence` (default
/// [`PLUGIN_MIN_CONFIDENCE`]); each channel gets the seed's sentence, again every `renotify`
/// while the alert lasts.
pub fn monitor_body(
    m: &MonitorSpec,
    detector_ids: &[String],
    minutes: u64,
    channels: &[(String, ChannelKind)],
    owner: &str,
) -> Value {
    let detector_filter = match detector_ids {
        [one] => json!({ "term": { "detector_id": { "value": one, "boost": 1.0 } } }),
        many => json!({ "terms": { "detector_id": many, "boost": 1.0 } }),
    };
    let confidence = m.min_confidence.unwrap_or(PLUGIN_MIN_CONFIDENCE);
    let condition = format!(
        "// {}\nreturn ctx.results != null && ctx.results.length > 0 \
         && ctx.results[0].aggregations != null && ctx.results[0].aggregations.max_anomaly_grade != null \
         && ctx.results[0].aggregations.max_anomaly_grade.value != null \
         && ctx.results[0].hits.total.value > 0 && ctx.results[0].hits.hits[0]._source != null \
         && ctx.results[0].hits.hits[0]._source.confidence != null \
         && ctx.results[0].aggregations.max_anomaly_grade.value >= {} \
         && ctx.results[0].hits.hits[0]._source.confidence >= {}",
        mark(owner),
        float(m.min_grade),
        float(confidence)
    );
    let sentence =
        "Monitor {{ctx.monitor.name}} just entered alert status. Please investigate the issue.";
    let renotify = if m.renotify.is_zero() {
        // "Never again while it lasts": the plugin needs some throttle; a day is the longest
        // that still reminds someone of an alert nobody acknowledged.
        24 * 60
    } else {
        minutes_up(m.renotify)
    };
    let actions: Vec<Value> = channels
        .iter()
        .map(|(id, kind)| {
            let message = match kind {
                ChannelKind::Webhook => format!(
                    "{{\"kind\":\"alert\",\"monitor\":\"{{{{ctx.monitor.name}}}}\",\"trigger\":\"{{{{ctx.trigger.name}}}}\",\
                     \"severity\":\"{{{{ctx.trigger.severity}}}}\",\"detector_id\":\"{{{{ctx.results.0.hits.hits.0._source.detector_id}}}}\",\
                     \"grade\":{{{{ctx.results.0.aggregations.max_anomaly_grade.value}}}},\
                     \"confidence\":{{{{ctx.results.0.hits.hits.0._source.confidence}}}},\
                     \"interval\":{{\"start\":{{{{ctx.results.0.hits.hits.0._source.data_start_time}}}},\"end\":{{{{ctx.results.0.hits.hits.0._source.data_end_time}}}}}},\
                     \"alert_id\":\"{{{{ctx.alert.id}}}}\",\"message\":\"{sentence}\"}}"
                ),
                ChannelKind::Slack | ChannelKind::Email => format!(
                    "{sentence}\nSeverity {{{{ctx.trigger.severity}}}} · grade {{{{ctx.results.0.aggregations.max_anomaly_grade.value}}}} · \
                     confidence {{{{ctx.results.0.hits.hits.0._source.confidence}}}} · detector {{{{ctx.results.0.hits.hits.0._source.detector_id}}}}"
                ),
            };
            json!({
                "name": id,
                "destination_id": id,
                "message_template": { "source": message, "lang": "mustache" },
                "subject_template": {
                    "source": "[logwarden] severity {{ctx.trigger.severity}}: Monitor {{ctx.monitor.name}} just entered alert status",
                    "lang": "mustache"
                },
                "throttle_enabled": true,
                "throttle": { "value": renotify, "unit": "MINUTES" },
            })
        })
        .collect();
    json!({
        "type": "monitor",
        "monitor_type": "query_level_monitor",
        "name": m.name,
        "enabled": true,
        "schedule": { "period": { "interval": minutes, "unit": "MINUTES" } },
        "inputs": [{ "search": {
            "indices": [RESULTS_PATTERN],
            "query": {
                "size": 1,
                "query": { "bool": {
                    "filter": [
                        { "range": { "data_end_time": {
                            "from": format!("{{{{period_end}}}}||-{}m", 3 * minutes),
                            "to": "{{period_end}}",
                            "include_lower": true,
                            "include_upper": true,
                            "boost": 1.0
                        } } },
                        detector_filter
                    ],
                    "must_not": [{ "exists": { "field": "task_id", "boost": 1.0 } }],
                    "adjust_pure_negative": true,
                    "boost": 1.0
                } },
                "sort": [
                    { "anomaly_grade": { "order": "desc" } },
                    { "confidence": { "order": "desc" } }
                ],
                "aggregations": { "max_anomaly_grade": { "max": { "field": "anomaly_grade" } } }
            }
        } }],
        "triggers": [{ "query_level_trigger": {
            "name": format!("{} anomaly", m.name),
            "severity": m.severity.to_string(),
            "condition": { "script": { "source": condition, "lang": "painless" } },
            "actions": actions
        } }]
    })
}

/// A threshold as painless reads it (`0.1`, `0.5`, `1.0`).
fn float(value: f64) -> String {
    let text = value.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// An object of the cluster that the spec does not declare (any more), owned by this owner.
#[derive(Debug, Clone)]
struct Leftover {
    kind: &'static str,
    name: String,
    id: String,
}

/// A found plugin object: its id, concurrency tokens and body.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    seq_no: u64,
    primary_term: u64,
    source: Value,
}

fn hits(body: &Value) -> Vec<Found> {
    body["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|hit| {
                    Some(Found {
                        id: hit["_id"].as_str()?.to_owned(),
                        seq_no: hit["_seq_no"].as_u64().unwrap_or(0),
                        primary_term: hit["_primary_term"].as_u64().unwrap_or(0),
                        source: hit["_source"].clone(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Converges the plugins' objects for one spec.
#[derive(Debug)]
pub struct Plugins<'a> {
    api: &'a Api,
    owner: &'a str,
    apply: bool,
    prune: bool,
}

/// Why converging the plugin objects failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The spec cannot be expressed in the plugins.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// OpenSearch refused or did not answer.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An answer did not have the expected shape.
    #[error("unexpected answer to {what}: {body}")]
    Unexpected {
        /// The request.
        what: String,
        /// What came back (shortened).
        body: String,
    },
}

impl<'a> Plugins<'a> {
    /// Plans (and with `apply`, carries out) the plugin objects of `owner`; with `prune`, owned
    /// objects the spec no longer declares are deleted.
    pub fn new(api: &'a Api, owner: &'a str, apply: bool, prune: bool) -> Self {
        Self {
            api,
            owner,
            apply,
            prune,
        }
    }

    /// Channels, then detectors (started), then monitors on them; then, with `prune`, owned
    /// leftovers in the reverse order.
    pub async fn converge(&self, spec: &Spec, plan: &mut Plan) -> Result<(), PluginError> {
        let mut leftovers = Vec::new();
        let channels = self.channels(spec, plan, &mut leftovers).await?;
        let detectors = self.detectors(spec, plan, &mut leftovers).await?;
        self.monitors(spec, &detectors, &channels, plan, &mut leftovers)
            .await?;
        // Monitors first, so nothing points at a deleted detector or channel.
        leftovers.sort_by_key(|l| match l.kind {
            "monitor" => 0,
            "detector" => 1,
            _ => 2,
        });
        for leftover in leftovers {
            if !self.prune {
                plan.push(Step::new(
                    leftover.kind,
                    leftover.name,
                    Action::Unchanged,
                    "owned but no longer in the spec: kept (--prune deletes it)",
                ));
                continue;
            }
            if self.apply {
                self.delete(&leftover).await?;
            }
            plan.push(Step::new(
                leftover.kind,
                leftover.name,
                Action::Delete,
                "owned and no longer in the spec (--prune)",
            ));
        }
        Ok(())
    }

    async fn delete(&self, leftover: &Leftover) -> Result<(), PluginError> {
        let path = match leftover.kind {
            "monitor" => format!("{MONITORS}/{}", leftover.id),
            "detector" => {
                // The plugin refuses to delete a running detector.
                if self.running(&leftover.id).await? {
                    self.api
                        .ok(
                            Method::Post,
                            &format!("{DETECTORS}/{}/_stop", leftover.id),
                            None,
                        )
                        .await?;
                }
                format!("{DETECTORS}/{}", leftover.id)
            }
            _ => format!("{CONFIGS}/{}", leftover.id),
        };
        self.api.ok(Method::Delete, &path, None).await?;
        Ok(())
    }

    /// Notification configs: the id is the channel's name.
    async fn channels(
        &self,
        spec: &Spec,
        plan: &mut Plan,
        leftovers: &mut Vec<Leftover>,
    ) -> Result<BTreeMap<String, ChannelKind>, PluginError> {
        let listed = self.api.ok(Method::Get, CONFIGS, None).await?;
        let mut existing: BTreeMap<String, Value> = listed["config_list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["config_id"].as_str()?.to_owned(), c["config"].clone())))
            .collect();
        let mut kinds = BTreeMap::new();
        for (index, channel) in spec.channels.iter().enumerate() {
            let (kind, configs) = channel_configs(channel, index, self.owner)?;
            kinds.insert(channel.name.clone(), kind);
            for (id, body) in configs {
                let step = match existing.remove(&id) {
                    None => {
                        if self.apply {
                            self.api.ok(Method::Post, CONFIGS, Some(&body)).await?;
                        }
                        Step::new("channel", &id, Action::Create, kind_name(&body))
                    }
                    Some(actual) => {
                        let changed = differences(&body["config"], &actual);
                        if changed.is_empty() {
                            Step::new("channel", &id, Action::Unchanged, kind_name(&body))
                        } else {
                            if self.apply {
                                let update = json!({ "config": body["config"] });
                                self.api
                                    .ok(Method::Put, &format!("{CONFIGS}/{id}"), Some(&update))
                                    .await?;
                            }
                            Step::new("channel", &id, Action::Update, changed.join(", "))
                        }
                    }
                };
                plan.push(step);
            }
        }
        for (id, config) in existing {
            if is_owned_description(config["description"].as_str(), self.owner) {
                leftovers.push(Leftover {
                    kind: "channel",
                    name: id.clone(),
                    id,
                });
            }
        }
        Ok(kinds)
    }

    /// Whether the detector's real-time job is enabled.
    async fn running(&self, id: &str) -> Result<bool, PluginError> {
        let body = self
            .api
            .ok(
                Method::Get,
                &format!("{DETECTORS}/{id}?job=true&task=true"),
                None,
            )
            .await?;
        Ok(body["anomaly_detector_job"]["enabled"].as_bool() == Some(true))
    }

    async fn search(&self, path: &str) -> Result<Vec<Found>, PluginError> {
        let query = json!({ "size": 1000, "query": { "match_all": {} } });
        let reply = self.api.call(Method::Post, path, Some(&query)).await?;
        if index_missing(&reply) {
            // The plugin's config index appears with its first object.
            return Ok(Vec::new());
        }
        if !reply.is_success() {
            return Err(crate::api::refused(Method::Post, path, &reply).into());
        }
        Ok(hits(&reply.body))
    }

    /// Detectors, by name; returns each declared detector's id (none yet in a dry run that
    /// would create it).
    async fn detectors(
        &self,
        spec: &Spec,
        plan: &mut Plan,
        leftovers: &mut Vec<Leftover>,
    ) -> Result<BTreeMap<String, Option<String>>, PluginError> {
        let mut existing = self.detectors_by_name().await?;
        let mut ids = BTreeMap::new();
        for (index, d) in spec.detectors.iter().enumerate() {
            let body = detector_body(d, index, &spec.events, self.owner)?;
            let (id, step) = match existing.remove(&d.name) {
                None => {
                    let id = if self.apply {
                        let created = self.api.ok(Method::Post, DETECTORS, Some(&body)).await?;
                        let id =
                            created["_id"]
                                .as_str()
                                .ok_or_else(|| PluginError::Unexpected {
                                    what: format!("POST {DETECTORS}"),
                                    body: created.to_string().chars().take(300).collect(),
                                })?;
                        self.start(id).await?;
                        Some(id.to_owned())
                    } else {
                        None
                    };
                    let step = Step::new("detector", &d.name, Action::Create, "and start");
                    (id, step)
                }
                Some(found) => {
                    let changed = differences(&body, &found.source);
                    let running = self.running(&found.id).await?;
                    let step = if changed.is_empty() && running {
                        Step::new("detector", &d.name, Action::Unchanged, "running")
                    } else if changed.is_empty() {
                        if self.apply {
                            self.start(&found.id).await?;
                        }
                        Step::new("detector", &d.name, Action::Update, "start (was stopped)")
                    } else {
                        if self.apply {
                            if running {
                                self.api
                                    .ok(
                                        Method::Post,
                                        &format!("{DETECTORS}/{}/_stop", found.id),
                                        None,
                                    )
                                    .await?;
                            }
                            let path = format!(
                                "{DETECTORS}/{}?if_seq_no={}&if_primary_term={}",
                                found.id, found.seq_no, found.primary_term
                            );
                            self.api.ok(Method::Put, &path, Some(&body)).await?;
                            self.start(&found.id).await?;
                        }
                        let how = if running {
                            "stop, update, start"
                        } else {
                            "update, start"
                        };
                        Step::new(
                            "detector",
                            &d.name,
                            Action::Update,
                            format!("{} ({how})", changed.join(", ")),
                        )
                    };
                    (Some(found.id), step)
                }
            };
            ids.insert(d.name.clone(), id);
            plan.push(step);
        }
        for (name, found) in existing {
            if is_owned_description(found.source["description"].as_str(), self.owner) {
                leftovers.push(Leftover {
                    kind: "detector",
                    name,
                    id: found.id,
                });
            }
        }
        Ok(ids)
    }

    /// Every plugin detector, by name.
    async fn detectors_by_name(&self) -> Result<BTreeMap<String, Found>, PluginError> {
        Ok(self
            .search(&format!("{DETECTORS}/_search"))
            .await?
            .into_iter()
            .filter_map(|f| Some((f.source["name"].as_str()?.to_owned(), f)))
            .collect())
    }

    async fn start(&self, id: &str) -> Result<(), PluginError> {
        self.api
            .ok(Method::Post, &format!("{DETECTORS}/{id}/_start"), None)
            .await?;
        Ok(())
    }

    /// Monitors, by name, on the detectors' ids.
    async fn monitors(
        &self,
        spec: &Spec,
        detectors: &BTreeMap<String, Option<String>>,
        channels: &BTreeMap<String, ChannelKind>,
        plan: &mut Plan,
        leftovers: &mut Vec<Leftover>,
    ) -> Result<(), PluginError> {
        let mut existing: BTreeMap<String, Found> = self
            .search(&format!("{MONITORS}/_search"))
            .await?
            .into_iter()
            .filter(|f| f.source["type"].as_str().is_none_or(|t| t == "monitor"))
            .filter_map(|f| Some((f.source["name"].as_str()?.to_owned(), f)))
            .collect();
        for m in &spec.monitors {
            let ids: Vec<String> = m
                .detectors
                .iter()
                .map(|name| {
                    detectors
                        .get(name)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| format!("<{name}, once created>"))
                })
                .collect();
            let minutes = m
                .detectors
                .iter()
                .filter_map(|name| spec.detector(name))
                .map(|d| minutes_up(d.interval))
                .min()
                .unwrap_or(1);
            let targets: Vec<(String, ChannelKind)> = m
                .channels
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        channels.get(c).copied().unwrap_or(ChannelKind::Webhook),
                    )
                })
                .collect();
            let body = monitor_body(m, &ids, minutes, &targets, self.owner);
            let step = match existing.remove(&m.name) {
                None => {
                    if self.apply {
                        self.api.ok(Method::Post, MONITORS, Some(&body)).await?;
                    }
                    Step::new("monitor", &m.name, Action::Create, m.detectors.join(", "))
                }
                Some(found) => {
                    let changed = differences(&body, &found.source);
                    if changed.is_empty() {
                        Step::new(
                            "monitor",
                            &m.name,
                            Action::Unchanged,
                            m.detectors.join(", "),
                        )
                    } else {
                        if self.apply {
                            let path = format!(
                                "{MONITORS}/{}?if_seq_no={}&if_primary_term={}",
                                found.id, found.seq_no, found.primary_term
                            );
                            self.api.ok(Method::Put, &path, Some(&body)).await?;
                        }
                        Step::new("monitor", &m.name, Action::Update, summarize(&changed))
                    }
                }
            };
            plan.push(step);
        }
        for (name, found) in existing {
            let script = found.source["triggers"][0]["query_level_trigger"]["condition"]["script"]
                ["source"]
                .as_str()
                .unwrap_or("");
            if script.starts_with(&format!("// {}\n", mark(self.owner))) {
                leftovers.push(Leftover {
                    kind: "monitor",
                    name,
                    id: found.id,
                });
            }
        }
        Ok(())
    }

    /// Each declared detector's state in the plugin: `(name, state, detail)`.
    pub async fn detector_states(
        &self,
        spec: &Spec,
    ) -> Result<Vec<(String, String, String)>, PluginError> {
        let existing = self.detectors_by_name().await?;
        let mut states = Vec::new();
        for d in &spec.detectors {
            let Some(found) = existing.get(&d.name) else {
                states.push((d.name.clone(), "missing".to_owned(), String::new()));
                continue;
            };
            let profile = self
                .api
                .ok(
                    Method::Get,
                    &format!("{DETECTORS}/{}/_profile?_all=true", found.id),
                    None,
                )
                .await?;
            states.push((
                d.name.clone(),
                profile_state(&profile),
                profile_detail(&profile),
            ));
        }
        Ok(states)
    }
}

/// A detector profile's state (`RUNNING`, `INIT`, `DISABLED`).
pub fn profile_state(profile: &Value) -> String {
    profile["state"].as_str().unwrap_or("unknown").to_owned()
}

/// A detector profile's init progress and error, for people.
pub fn profile_detail(profile: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(progress) = profile["init_progress"]["percentage"].as_str() {
        parts.push(format!("initialized {progress}"));
    }
    if let Some(left) = profile["init_progress"]["estimated_minutes_left"].as_u64() {
        parts.push(format!("~{left} min left"));
    }
    if let Some(error) = profile["error"].as_str().filter(|e| !e.is_empty()) {
        parts.push(format!("error: {error}"));
    }
    parts.join(", ")
}

fn kind_name(body: &Value) -> String {
    body["config"]["config_type"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The changed paths, shortened to their first two segments (a monitor's paths are deep).
fn summarize(changed: &[String]) -> String {
    let mut short: Vec<String> = changed
        .iter()
        .map(|p| p.split('.').take(2).collect::<Vec<_>>().join("."))
        .collect();
    short.dedup();
    short.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        Spec::parse(text, "test").expect("valid spec")
    }

    #[test]
    fn sub_minute_intervals_and_rates_name_their_key() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}, interval: 5s}, {name: b, feature: {field: x, aggregation: rate}}]",
        );
        let err = detector_body(&s.detectors[0], 0, "e", "o").expect_err("5s");
        assert_eq!(err.key, "detectors[0].interval");
        assert!(err.to_string().contains("whole minutes"), "{err}");
        let err = detector_body(&s.detectors[1], 1, "e", "o").expect_err("rate");
        assert_eq!(err.key, "detectors[1].feature.aggregation");
    }

    #[test]
    fn filters_and_counts_become_plugin_queries() {
        let s = spec(
            "detectors: [{name: a, feature: {aggregation: count, filter: {field: action, value: BLOCK}}, window_delay: 90s}]",
        );
        let body = detector_body(&s.detectors[0], 0, "logwarden-events", "o").expect("valid");
        assert_eq!(
            body["feature_attributes"][0]["aggregation_query"],
            json!({"count": {"value_count": {"field": "@timestamp"}}})
        );
        assert_eq!(
            body["filter_query"]["bool"]["filter"][0],
            json!({"term": {"action": {"value": "BLOCK", "boost": 1.0}}})
        );
        assert_eq!(body["window_delay"]["period"]["interval"], 2);
        assert_eq!(body["indices"], json!(["logwarden-events*"]));
        assert!(is_owned_description(body["description"].as_str(), "o"));
        assert!(!is_owned_description(body["description"].as_str(), "other"));
    }

    #[test]
    fn thresholds_default_to_the_plugins_cold_start_confidence() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: m, detectors: [a], channels: [], min_grade: 0.3}]",
        );
        let body = monitor_body(&s.monitors[0], &["id-a".into()], 1, &[], "o");
        let script = body["triggers"][0]["query_level_trigger"]["condition"]["script"]["source"]
            .as_str()
            .expect("script");
        assert!(script.starts_with("// managed_by: o\n"), "{script}");
        assert!(
            script.contains("max_anomaly_grade.value >= 0.3"),
            "{script}"
        );
        assert!(script.contains("confidence >= 0.2"), "{script}");
    }

    #[test]
    fn webhook_messages_are_json_once_rendered() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: UNK_country-Monitor, detectors: [a], channels: [c]}]\nchannels: [{name: c, webhook: {value: 'http://h/'}}]",
        );
        let body = monitor_body(
            &s.monitors[0],
            &["id-a".into()],
            1,
            &[("c".into(), ChannelKind::Webhook)],
            "o",
        );
        let template = body["triggers"][0]["query_level_trigger"]["actions"][0]["message_template"]
            ["source"]
            .as_str()
            .expect("template");
        // What mustache would make of it with numbers and names filled in.
        let rendered = template
            .replace("{{ctx.monitor.name}}", "UNK_country-Monitor")
            .replace(
                "{{ctx.results.0.aggregations.max_anomaly_grade.value}}",
                "0.8",
            )
            .replace("{{ctx.results.0.hits.hits.0._source.confidence}}", "0.9")
            .replace("{{ctx.results.0.hits.hits.0._source.data_start_time}}", "1")
            .replace("{{ctx.results.0.hits.hits.0._source.data_end_time}}", "2");
        let rendered = regex_free_fill(&rendered);
        let value: Value = serde_json::from_str(&rendered).expect(&rendered);
        assert_eq!(
            value["message"],
            "Monitor UNK_country-Monitor just entered alert status. Please investigate the issue."
        );
        assert_eq!(value["grade"], 0.8);
    }

    /// Replaces every remaining `{{...}}` with `x`.
    fn regex_free_fill(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .map_or(rest.len(), |e| start + e + 2);
            out.push('x');
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}
