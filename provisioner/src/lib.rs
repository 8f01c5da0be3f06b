//! logwarden's provisioner: converges OpenSearch to the state the spec declares, on one of two
//! targets.
//!
//! - [`settings`]: config (file, environment, flags) and the spec.
//! - [`target`]: `builtin` or `opensearch-plugins`, declared or chosen from `_cat/plugins`.
//! - [`indices`]: core OpenSearch, on every target: index templates, the results index.
//! - [`retention`]: the only deletion of data: expired daily event indices and old results.
//! - [`plugins`]: the anomaly-detection, alerting and notifications plugins' objects; the only
//!   module that speaks their APIs.
//! - [`compare`], [`plan`]: pure: "is it already as declared?" and the plan table.
//! - [`api`]: JSON over HTTP, with OpenSearch's reasons in errors.
//! - [`topics`]: the `topics` command: logwarden's Kafka topics, created or checked.
//! - [`verify`]: the `verify` command: are events and results arriving?
//! - [`kubernetes`]: `apply --k8s-job`: Events on the provisioner's Job; the only module that
//!   speaks to Kubernetes.
//!
//! [`converge`] plans every object and, unless it is a dry run, carries out each step as it is
//! planned; running it twice changes nothing the second time.

pub mod api;
pub mod compare;
pub mod indices;
pub mod kubernetes;
pub mod plan;
pub mod plugins;
pub mod retention;
pub mod settings;
pub mod target;
pub mod topics;
pub mod verify;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opensearch::http::Method;
use pipeline::search::EventsIndex;
use pipeline::spec::{Spec, SpecError, TargetChoice};
use pipeline::wire::Source;

use crate::api::{Api, ApiError};
use crate::indices::{
    Indices, alerts_index_template, events_template, results_index_template, source_events_template,
};
use crate::plan::{Action, Plan};
use crate::plugins::{PluginError, Plugins};
use crate::retention::Retention;
use crate::target::{Choice, Target};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The spec cannot be provisioned as written.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// OpenSearch refused a step or did not answer.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A plugin step failed.
    #[error(transparent)]
    Plugins(#[from] PluginError),
    /// OpenSearch did not become reachable and healthy in time.
    #[error(
        "OpenSearch at {url} was not ready within {waited:?}: {last}. Check the URL (--url or LOGWARDEN_OPENSEARCH__URL) and that the cluster is up"
    )]
    NotReady {
        /// The URL.
        url: String,
        /// How long it waited.
        waited: Duration,
        /// The last answer or error.
        last: String,
    },
    /// The `opensearch-plugins` target on a cluster without the plugins.
    #[error(
        "the opensearch-plugins target needs {missing} (the cluster has: {installed}); install them on every node, or use --target builtin (logwarden's own detector) or auto"
    )]
    MissingPlugins {
        /// What it lacks.
        missing: String,
        /// What it has.
        installed: String,
    },
}

/// What the cluster is: its version and its plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `version.number` of `GET /`.
    pub version: String,
    /// The plugins of `_cat/plugins` (each once).
    pub plugins: Vec<String>,
}

/// Waits (up to `wait`) until the cluster answers with a yellow or green health, then reads its
/// version and plugins.
pub async fn wait_for_cluster(
    api: &Api,
    url: &str,
    wait: Duration,
) -> Result<Cluster, ProvisionError> {
    let deadline = Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    loop {
        let last = match api
            .call(
                Method::Get,
                "/_cluster/health?wait_for_status=yellow&timeout=5s",
                None,
            )
            .await
        {
            Ok(reply) if reply.is_success() && reply.body["timed_out"] != true => break,
            // Credentials or TLS settings the cluster refuses: waiting cannot help.
            Ok(reply) if matches!(reply.status, 401 | 403) => {
                return Err(ApiError::Refused {
                    what: "GET /_cluster/health".to_owned(),
                    status: reply.status,
                    reason: match reply.body.get("error") {
                        Some(error) => pipeline::search::describe_error(error),
                        None => {
                            "the cluster (or a proxy in front of it) refused the request".to_owned()
                        }
                    },
                }
                .into());
            }
            Err(ApiError::Unreachable { source, what })
                if pipeline::search::is_tls_failure(&source) =>
            {
                return Err(ApiError::Unreachable { what, source }.into());
            }
            Ok(reply) => format!(
                "health {} ({})",
                reply.body["status"].as_str().unwrap_or("unknown"),
                reply.status
            ),
            Err(err) => err.to_string(),
        };
        if Instant::now() + delay > deadline {
            return Err(ProvisionError::NotReady {
                url: url.to_owned(),
                waited: wait,
                last,
            });
        }
        tracing::info!(%last, retry_in = ?delay, "Waiting for OpenSearch.");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    let root = api.ok(Method::Get, "/", None).await?;
    Ok(Cluster {
        version: root["version"]["number"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        plugins: installed_plugins(api).await?,
    })
}

/// The cluster's plugins, each once.
pub async fn installed_plugins(api: &Api) -> Result<Vec<String>, ApiError> {
    let body = api
        .ok(Method::Get, "/_cat/plugins?format=json", None)
        .await?;
    let mut names: Vec<String> = body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["component"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Chooses the target; for a declared `opensearch-plugins`, waits (up to `wait`, from now) for
/// the plugins to show on the cluster, then fails naming what is missing.
pub async fn choose_target(
    api: &Api,
    declared: TargetChoice,
    cluster: &Cluster,
    wait: Duration,
) -> Result<Choice, ProvisionError> {
    let deadline = Instant::now() + wait;
    let mut installed = cluster.plugins.clone();
    loop {
        match target::choose(declared, &installed) {
            Ok(choice) => return Ok(choice),
            Err(missing) if Instant::now() >= deadline => {
                return Err(ProvisionError::MissingPlugins {
                    missing: missing.join(", "),
                    installed: if installed.is_empty() {
                        "none".into()
                    } else {
                        installed.join(", ")
                    },
                });
            }
            Err(missing) => {
                tracing::info!(missing = %missing.join(", "), "Waiting for the plugins.");
                tokio::time::sleep(Duration::from_secs(2).min(wait)).await;
                installed = installed_plugins(api).await?;
            }
        }
    }
}

/// What [`converge`] does besides planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Carry out the plan (else a dry run: nothing is changed).
    pub apply: bool,
    /// Delete owned objects the spec no longer declares.
    pub prune: bool,
}

/// Plans every object of `spec` on `target` and, with `mode.apply`, carries out each step.
pub async fn converge(
    api: &Api,
    spec: &Spec,
    target: Target,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Plan, ProvisionError> {
    let owner = spec.provisioning.owner.as_str();
    let events = EventsIndex::new(&spec.events, "events").map_err(|err| SpecError {
        origin: "spec".into(),
        key: "events".into(),
        problem: err.to_string(),
        fix: "use an index name prefix such as logwarden-events".into(),
    })?;
    let indices = Indices::new(api, owner, mode.apply);
    let mut plan = Plan::default();
    let source_templates: Vec<(String, serde_json::Value)> = Source::ALL
        .into_iter()
        .map(|source| {
            (
                events.source_template_name(source),
                source_events_template(&events, source, owner),
            )
        })
        .collect();
    let mut templates = vec![events.template_name()];
    indices
        .template(
            events.template_name(),
            &events_template(&events, owner),
            &mut plan,
        )
        .await?;
    for (name, template) in &source_templates {
        indices.template(name, template, &mut plan).await?;
        templates.push(name);
    }
    if target == Target::Builtin {
        indices
            .template(
                &spec.results,
                &results_index_template(&spec.results, owner),
                &mut plan,
            )
            .await?;
        templates.push(&spec.results);
        indices.index(&spec.results, &mut plan).await?;
        // The detector's record of alert deliveries (created on the first delivery).
        indices
            .template(
                &spec.alerts,
                &alerts_index_template(&spec.alerts, owner),
                &mut plan,
            )
            .await?;
        templates.push(&spec.alerts);
    }
    indices
        .prune_templates(&templates, mode.prune, &mut plan)
        .await?;
    let retention = Retention::new(api, mode.apply);
    retention
        .events(&events, spec.provisioning.retention.events, now, &mut plan)
        .await?;
    // On the plugins target the plugin keeps its own results (and their retention).
    if target == Target::Builtin {
        retention
            .results(
                &spec.results,
                spec.provisioning.retention.results,
                now,
                &mut plan,
            )
            .await?;
        retention
            .alerts(
                &spec.alerts,
                spec.provisioning.retention.results,
                now,
                &mut plan,
            )
            .await?;
    }
    if target == Target::Plugins {
        Plugins::new(api, owner, mode.apply, mode.prune)
            .converge(spec, &mut plan)
            .await?;
    }
    Ok(plan)
}

/// Each object's state for people: the dry-run plan read as "in sync / missing / differs", and
/// on the plugins target each detector's state and initialization progress; and whether
/// anything differs from the spec.
pub async fn status(
    api: &Api,
    spec: &Spec,
    target: Target,
    now: DateTime<Utc>,
) -> Result<(String, bool), ProvisionError> {
    let plan = converge(
        api,
        spec,
        target,
        Mode {
            apply: false,
            prune: false,
        },
        now,
    )
    .await?;
    let states = if target == Target::Plugins {
        Plugins::new(api, &spec.provisioning.owner, false, false)
            .detector_states(spec)
            .await?
    } else {
        Vec::new()
    };
    let rows = plan.steps.iter().map(|step| {
        let state = match (step.kind, step.action) {
            ("detector", _) => states
                .iter()
                .find(|(name, _, _)| *name == step.name)
                .map_or_else(|| "missing".to_owned(), |(_, state, _)| state.clone()),
            ("retention", _) => "enforced".to_owned(),
            (_, Action::Unchanged) if step.detail.contains("no longer in the spec") => {
                "left the spec".to_owned()
            }
            (_, Action::Unchanged) => "in sync".to_owned(),
            (_, Action::Create) => "missing".to_owned(),
            (_, Action::Update) => "differs".to_owned(),
            ("index" | "results", Action::Delete) => "expired".to_owned(),
            (_, Action::Delete) => "left the spec".to_owned(),
        };
        let detail = match step.kind {
            "detector" => states
                .iter()
                .find(|(name, _, detail)| *name == step.name && !detail.is_empty())
                .map_or_else(|| step.detail.clone(), |(_, _, detail)| detail.clone()),
            _ => step.detail.clone(),
        };
        [step.kind.to_owned(), step.name.clone(), state, detail]
    });
    let mut out = plan::table(["KIND", "NAME", "STATE", "DETAIL"], rows);
    out.push_str(if plan.changes() {
        "not in sync: `logwarden-provisioner apply` converges it\n"
    } else {
        "in sync with the spec\n"
    });
    Ok((out, plan.changes()))
}
