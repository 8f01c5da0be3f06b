//! [`Plugins`], the client that converges the plugins' objects: it finds them by name, compares
//! them with the bodies [`super::bodies`] builds, and creates, updates (stopping and restarting a
//! running detector) or prunes them, recording each step in the [`Plan`]. All the plugin IO of
//! the provisioner is here.

use std::collections::BTreeMap;

use opensearch::http::Method;
use pipeline::spec::{Spec, SpecError};
use serde_json::{Value, json};

use super::bodies::{
    ChannelKind, channel_configs, detector_body, is_owned_description, mark, minutes_up,
    monitor_body,
};
use super::{CONFIGS, DETECTORS, MONITORS};
use crate::api::{Api, ApiError, index_missing};
use crate::compare::differences;
use crate::plan::{Action, Plan, Step};

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
