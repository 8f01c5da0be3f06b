//! What the provisioner tells Kubernetes when it runs as a Job: `apply --k8s-job NAME` records
//! what it changed as Events on that Job, so `kubectl describe job NAME` shows the plan it
//! applied (and `kubectl get events` keeps it after the Job is gone).
//!
//! One core/v1 Event per kind of action in the plan, type `Normal`, each naming its objects:
//! `Created`, `Updated`, `Expired` (retention), `Pruned` (`--prune`), `InSync` (unchanged). A
//! failed apply records one `Warning` Event, `ApplyFailed`, with the error. The Events'
//! `involvedObject` is the Job with its uid, which is how `kubectl describe` finds them; they are
//! written in the namespace of the client's configuration ([`kube::Config::infer`]: the pod's
//! service account namespace in a cluster, the kubeconfig context's namespace outside).
//!
//! Recording is best effort: an apply that converged OpenSearch succeeds even when no Event can be
//! written (no cluster, the Job gone, RBAC missing); the caller prints a warning instead.
//! Without `--k8s-job` nothing here runs and nothing Kubernetes is touched.
//!
//! RBAC: the provisioner's ServiceAccount needs, in its namespace,
//! `get` on `jobs` (API group `batch`), to read the Job's uid, and `create` on `events` (core API
//! group `""`). Nothing else.
//!
//! [`notes`] (what to record for a plan) is pure; [`JobEvents`] does the IO.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Config};

use crate::plan::{Action, Plan, Step};

/// The component name on every Event.
pub const COMPONENT: &str = "logwarden-provisioner";

/// The longest message recorded; longer lists end with how many more objects there are.
pub const MAX_MESSAGE: usize = 1024;

/// Why Events could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable client configuration (no kubeconfig, not in a pod).
    #[error(
        "no Kubernetes client configuration ({0}): run in a pod with a service account, or set \
         KUBECONFIG"
    )]
    Config(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// Reading the Job failed (missing, or RBAC).
    #[error("reading Job {namespace}/{job}: {reason}{}", job_hint(*.code))]
    Job {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The API server's status code (0 when it did not answer).
        code: u16,
        /// Its message, or why it did not answer.
        reason: String,
    },
    /// Creating an Event failed (RBAC, or the API server).
    #[error("recording Event {event} on Job {namespace}/{job}: {reason}{}", event_hint(*.code))]
    Event {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The Event's reason.
        event: &'static str,
        /// The API server's status code (0 when it did not answer).
        code: u16,
        /// Its message, or why it did not answer.
        reason: String,
    },
}

/// The API server's status code and message for `err`, without the client's debug dump.
fn answer(err: &kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (
            status.code,
            format!("{} ({} {})", status.message, status.code, status.reason),
        ),
        other => (0, other.to_string()),
    }
}

fn job_hint(code: u16) -> &'static str {
    match code {
        401 | 403 => {
            "; the provisioner's ServiceAccount needs `get` on `jobs` (API group `batch`) in \
             its namespace"
        }
        404 => "; --k8s-job must name the Job this pod belongs to, in the pod's namespace",
        _ => "",
    }
}

fn event_hint(code: u16) -> &'static str {
    match code {
        401 | 403 => {
            "; the provisioner's ServiceAccount needs `create` on `events` (core API group) in \
             its namespace"
        }
        _ => "",
    }
}

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// What was done.
    Normal,
    /// The apply failed.
    Warning,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One Event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub kind: Kind,
    /// The reason, a CamelCase word.
    pub reason: &'static str,
    /// What it is about, at most [`MAX_MESSAGE`] bytes.
    pub message: String,
}

/// The Events for an applied plan: one per kind of action that occurs, in the order
/// Created, Updated, Expired, Pruned, InSync.
pub fn notes(plan: &Plan) -> Vec<Note> {
    const ORDER: [&str; 5] = ["Created", "Updated", "Expired", "Pruned", "InSync"];
    ORDER
        .into_iter()
        .filter_map(|wanted| {
            let steps: Vec<&Step> = plan
                .steps
                .iter()
                .filter(|step| reason(step).0 == wanted)
                .collect();
            let (reason, verb) = reason(steps.first()?);
            let objects: Vec<String> = steps.iter().map(|step| describe(step)).collect();
            Some(Note {
                kind: Kind::Normal,
                reason,
                message: listed(&format!("{} {verb}: ", count(objects.len())), &objects),
            })
        })
        .collect()
}

/// A step's Event reason, and the words its message uses.
fn reason(step: &Step) -> (&'static str, &'static str) {
    match step.action {
        Action::Create => ("Created", "created"),
        Action::Update => ("Updated", "updated"),
        // Retention deletes data (daily indices, results); other deletions are pruned objects.
        Action::Delete if matches!(step.kind, "index" | "results") => {
            ("Expired", "deleted by retention")
        }
        Action::Delete => ("Pruned", "deleted, no longer in the spec"),
        Action::Unchanged => ("InSync", "already as declared"),
    }
}

/// The Event for a failed apply.
pub fn failure(error: &str) -> Note {
    Note {
        kind: Kind::Warning,
        reason: "ApplyFailed",
        message: truncate(&format!("apply failed: {error}"), MAX_MESSAGE),
    }
}

fn describe(step: &Step) -> String {
    match step.action {
        Action::Delete if step.kind == "results" => format!("{} ({})", step.name, step.detail),
        _ => format!("{} {}", step.kind, step.name),
    }
}

fn count(n: usize) -> String {
    match n {
        1 => "1 object".to_owned(),
        n => format!("{n} objects"),
    }
}

/// `head` then the objects, comma-separated, cut to about [`MAX_MESSAGE`] with "and N more".
fn listed(head: &str, objects: &[String]) -> String {
    let mut message = head.to_owned();
    for (i, object) in objects.iter().enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let more = format!("{separator}and {} more", objects.len() - i);
        if message.len() + separator.len() + object.len() + more.len() > MAX_MESSAGE {
            message.push_str(&more);
            return message;
        }
        message.push_str(separator);
        message.push_str(object);
    }
    message
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Records Events on one Job.
#[derive(Clone)]
pub struct JobEvents {
    events: Api<Event>,
    namespace: String,
    job: String,
    reference: ObjectReference,
    instance: String,
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEvents")
            .field("namespace", &self.namespace)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl JobEvents {
    /// Connects with the inferred configuration and reads the Job `job` in its namespace (for its
    /// uid).
    pub async fn connect(job: &str) -> Result<Self, KubeError> {
        let mut config = Config::infer().await.map_err(KubeError::Config)?;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(KubeError::Client)?;
        let found = Api::<Job>::namespaced(client.clone(), &namespace)
            .get(job)
            .await
            .map_err(|err| {
                let (code, reason) = answer(&err);
                KubeError::Job {
                    namespace: namespace.clone(),
                    job: job.to_owned(),
                    code,
                    reason,
                }
            })?;
        let reference = ObjectReference {
            api_version: Some("batch/v1".to_owned()),
            kind: Some("Job".to_owned()),
            name: Some(job.to_owned()),
            namespace: Some(namespace.clone()),
            uid: found.metadata.uid,
            resource_version: found.metadata.resource_version,
            ..ObjectReference::default()
        };
        Ok(Self {
            events: Api::namespaced(client, &namespace),
            namespace,
            job: job.to_owned(),
            reference,
            // In a pod, its name: which run of a CronJob's Jobs wrote it.
            instance: std::env::var("HOSTNAME").unwrap_or_else(|_| COMPONENT.to_owned()),
        })
    }

    /// The Job's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Records each note as an Event on the Job; stops at the first failure.
    pub async fn record(&self, notes: &[Note]) -> Result<(), KubeError> {
        for note in notes {
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            let event = Event {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}.", self.job)),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                involved_object: self.reference.clone(),
                reason: Some(note.reason.to_owned()),
                message: Some(note.message.clone()),
                type_: Some(note.kind.as_str().to_owned()),
                action: Some("Apply".to_owned()),
                count: Some(1),
                first_timestamp: Some(now.clone()),
                last_timestamp: Some(now),
                source: Some(EventSource {
                    component: Some(COMPONENT.to_owned()),
                    host: None,
                }),
                reporting_component: Some(COMPONENT.to_owned()),
                reporting_instance: Some(self.instance.clone()),
                ..Event::default()
            };
            self.events
                .create(&PostParams::default(), &event)
                .await
                .map_err(|err| {
                    let (code, reason) = answer(&err);
                    KubeError::Event {
                        namespace: self.namespace.clone(),
                        job: self.job.clone(),
                        event: note.reason,
                        code,
                        reason,
                    }
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_kind_of_action_naming_its_objects() {
        let mut plan = Plan::default();
        for (kind, name, action, detail) in [
            ("index template", "e", Action::Create, ""),
            ("index", "r", Action::Create, ""),
            ("index template", "r", Action::Unchanged, ""),
            ("retention", "e-*", Action::Unchanged, "keep 30d"),
            ("index", "e-2020.01.01", Action::Delete, "expired"),
            (
                "results",
                "r",
                Action::Delete,
                "expired: 2 results with data_end_time before 2026-08-25T12:00:00Z",
            ),
            ("index template", "old", Action::Delete, "--prune"),
            ("detector", "d", Action::Update, "description"),
        ] {
            plan.push(Step::new(kind, name, action, detail));
        }
        let notes = notes(&plan);
        let got: Vec<(&str, &str)> = notes
            .iter()
            .map(|n| (n.reason, n.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Created", "2 objects created: index template e, index r"),
                ("Updated", "1 object updated: detector d"),
                (
                    "Expired",
                    "2 objects deleted by retention: index e-2020.01.01, r (expired: 2 results \
                     with data_end_time before 2026-08-25T12:00:00Z)"
                ),
                (
                    "Pruned",
                    "1 object deleted, no longer in the spec: index template old"
                ),
                (
                    "InSync",
                    "2 objects already as declared: index template r, retention e-*"
                ),
            ]
        );
        assert!(notes.iter().all(|n| n.kind == Kind::Normal));
    }

    #[test]
    fn an_empty_plan_records_nothing_and_long_lists_are_cut() {
        assert!(notes(&Plan::default()).is_empty());
        let mut plan = Plan::default();
        for i in 0..200 {
            plan.push(Step::new(
                "index",
                format!("logwarden-events-{i:04}"),
                Action::Create,
                "",
            ));
        }
        let notes = notes(&plan);
        assert_eq!(notes.len(), 1);
        let message = &notes[0].message;
        assert!(message.len() <= MAX_MESSAGE, "{}", message.len());
        assert!(message.starts_with("200 objects created: index logwarden-events-0000, "));
        assert!(message.ends_with(" more"), "{message}");
        let shown = message.matches("index logwarden-events-").count();
        assert!(
            message.ends_with(&format!(", and {} more", 200 - shown)),
            "{message}"
        );
    }

    #[test]
    fn a_failure_is_one_warning_with_the_error() {
        let note = failure("OpenSearch refused PUT /_index_template/x (400): bad");
        assert_eq!(note.kind, Kind::Warning);
        assert_eq!(note.reason, "ApplyFailed");
        assert_eq!(
            note.message,
            "apply failed: OpenSearch refused PUT /_index_template/x (400): bad"
        );
        let long = failure(&"é".repeat(2_000));
        assert!(long.message.len() <= MAX_MESSAGE);
        assert!(long.message.ends_with('…'));
    }
}
