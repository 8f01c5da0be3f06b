//! `logwarden-provisioner apply --k8s-job` against a real Kubernetes API server (the kwok cluster
//! of `cargo xtask k8s up`, `XTASK_KUBECONFIG`) and the local stack's real OpenSearch.
//!
//! The provisioner runs as its Job's pod would: as a ServiceAccount holding exactly the RBAC the
//! `kubernetes` module documents (get jobs, create events), its namespace from its client
//! configuration. What it records is read back as a user would: the Events whose
//! `involvedObject` is the Job, and `kubectl describe job`. A failed apply records a Warning; a
//! ServiceAccount without that RBAC, or a Job that does not exist, costs only a warning. Each test
//! has its own namespace (deleted at the end) and its own OpenSearch names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{AuthInfo, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedContext};
use kube::{Api, Client, Config};
use pipeline::testkit::{self, Process};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");
const JOB: &str = "logwarden-provision";

/// A namespace of the test's own on the kwok cluster, with the Job, and a ServiceAccount that
/// has the documented RBAC (`rbac: true`) or none.
struct Cluster {
    admin: Client,
    namespace: String,
    dir: PathBuf,
    /// The admin kubeconfig (`XTASK_KUBECONFIG`).
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start(test: &str) -> Self {
        let kubeconfig = deploy::tool("XTASK_KUBECONFIG", "cargo xtask k8s up");
        let config = Kubeconfig::read_from(&kubeconfig)
            .unwrap_or_else(|err| panic!("reading {}: {err}", kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", kubeconfig.display()));
        let admin = Client::try_from(config).expect("a client");
        let namespace = testkit::unique_name(test).trim_end_matches('-').to_owned();
        let dir = std::env::temp_dir().join(&namespace);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let cluster = Self {
            admin,
            namespace,
            dir,
            kubeconfig,
        };
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": cluster.namespace}}))
                .expect("a namespace");
        Api::<Namespace>::all(cluster.admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|err| panic!("creating namespace {}: {err}", cluster.namespace));
        // Suspended: the Job exists (with a uid) but starts no pod.
        cluster
            .create::<Job>(json!({
                "metadata": {"name": JOB},
                "spec": {"suspend": true, "template": {"spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "provisioner",
                    "containers": [{"name": "provisioner", "image": "localhost/logwarden:dev",
                        "command": ["logwarden-provisioner"], "args": ["apply", "--k8s-job", JOB]}]
                }}}
            }))
            .await;
        cluster
            .create::<ServiceAccount>(json!({"metadata": {"name": "provisioner"}}))
            .await;
        cluster
    }

    async fn create<K>(&self, object: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
        K::DynamicType: Default,
    {
        let object: K = serde_json::from_value(object).expect("a valid object");
        Api::<K>::namespaced(self.admin.clone(), &self.namespace)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("creating {object:?}: {err}"))
    }

    /// The RBAC the `kubernetes` module documents, bound to the ServiceAccount.
    async fn grant_documented_rbac(&self) {
        self.grant(
            "read-jobs",
            json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}),
        )
        .await;
        self.grant(
            "write-events",
            json!({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}),
        )
        .await;
    }

    /// A Role `name` with one `rule` (one group, resource and verb), bound to the ServiceAccount;
    /// returns once the API server's authorizer allows it.
    async fn grant(&self, name: &str, rule: serde_json::Value) {
        self.create::<Role>(json!({"metadata": {"name": name}, "rules": [rule.clone()]}))
            .await;
        self.create::<RoleBinding>(json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "provisioner", "namespace": self.namespace}]}))
        .await;
        let review: SubjectAccessReview = serde_json::from_value(json!({"spec": {
            "user": format!("system:serviceaccount:{}:provisioner", self.namespace),
            "resourceAttributes": {"namespace": self.namespace, "group": rule["apiGroups"][0],
                "resource": rule["resources"][0], "verb": rule["verbs"][0]}
        }}))
        .expect("a review");
        let reviews = Api::<SubjectAccessReview>::all(self.admin.clone());
        for _ in 0..100 {
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .expect("a SubjectAccessReview");
            if answer.status.is_some_and(|s| s.allowed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Role {name} was not in force within 10 s");
    }

    /// A kubeconfig as the Job's pod has it: the ServiceAccount's token, the namespace.
    async fn service_account_kubeconfig(&self) -> PathBuf {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = Api::<ServiceAccount>::namespaced(self.admin.clone(), &self.namespace)
            .create_token_request("provisioner", &PostParams::default(), &request)
            .await
            .expect("a ServiceAccount token")
            .status
            .and_then(|status| status.token)
            .expect("a token");
        let token_file = self.dir.join("token");
        std::fs::write(&token_file, token).expect("write the token");
        let mut config = Kubeconfig::read_from(&self.kubeconfig).expect("the admin kubeconfig");
        let cluster = config.clusters[0].name.clone();
        config.auth_infos = vec![NamedAuthInfo {
            name: "provisioner".to_owned(),
            auth_info: Some(AuthInfo {
                token_file: Some(token_file.display().to_string()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }];
        config.contexts = vec![NamedContext {
            name: "provisioner".to_owned(),
            context: Some(Context {
                cluster,
                user: Some("provisioner".to_owned()),
                namespace: Some(self.namespace.clone()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }];
        config.current_context = Some("provisioner".to_owned());
        let path = self.dir.join("kubeconfig");
        std::fs::write(
            &path,
            serde_norway::to_string(&config).expect("a kubeconfig"),
        )
        .expect("write the kubeconfig");
        path
    }

    /// The provisioner's Events on the Job (the Job controller records its own too).
    async fn events(&self) -> Vec<Event> {
        Api::<Event>::namespaced(self.admin.clone(), &self.namespace)
            .list(&ListParams::default().fields(&format!(
                "involvedObject.kind=Job,involvedObject.name={JOB},source=logwarden-provisioner"
            )))
            .await
            .expect("listing Events")
            .items
    }

    async fn job_uid(&self) -> Option<String> {
        Api::<Job>::namespaced(self.admin.clone(), &self.namespace)
            .get(JOB)
            .await
            .expect("the Job")
            .metadata
            .uid
    }

    async fn delete(self) {
        let _ = Api::<Namespace>::all(self.admin.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `(type, reason, message)` of each Event, sorted (Events within a second have no order).
fn summary(events: &[Event]) -> Vec<(String, String, String)> {
    let mut summary: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    summary.sort();
    summary
}

/// A spec with this test's names: builtin target, events kept 30 days.
fn spec(dir: &Path, base: &str) -> PathBuf {
    let path = dir.join("spec.yaml");
    std::fs::write(
        &path,
        format!(
            "events: {base}events\nresults: {base}results\nalerts: {base}alerts\n\
             detectors: [{{name: d, feature: {{field: UNK_country}}}}]\n\
             provisioning: {{target: builtin, owner: {base}owner, retention: {{events: 30d}}}}\n"
        ),
    )
    .expect("write the spec");
    path
}

/// Runs `apply --k8s-job <job>` with `kubeconfig`; returns the exit code and output.
fn apply(kubeconfig: &Path, spec: &Path, url: &str, job: &str) -> (Option<i32>, String) {
    let kubeconfig = kubeconfig.display().to_string();
    let spec = spec.display().to_string();
    Process::start(
        BINARY,
        &[
            "apply",
            "--k8s-job",
            job,
            "--spec",
            &spec,
            "--url",
            url,
            "--wait",
            "20s",
        ],
        &[("KUBECONFIG", kubeconfig.as_str())],
    )
    .wait(Duration::from_secs(90))
}

async fn clean_opensearch(url: &str, base: &str) {
    // The events and results templates, and the sources' events templates.
    testkit::delete_index_templates(url, base).await;
    let http = reqwest::Client::new();
    let _ = http.delete(format!("{url}/{base}*")).send().await;
}

#[tokio::test]
async fn apply_records_its_plan_as_events_on_its_job_with_only_the_documented_rbac() {
    let url = testkit::require_opensearch().await;
    let cluster = Cluster::start("prov-k8s").await;
    cluster.grant_documented_rbac().await;
    let kubeconfig = cluster.service_account_kubeconfig().await;
    let base = format!("{}-", cluster.namespace);
    let (events, results, alerts) = (
        format!("{base}events"),
        format!("{base}results"),
        format!("{base}alerts"),
    );
    // A daily index long past retention, in the events alias.
    let expired = format!("{events}-2020.01.01");
    let response = reqwest::Client::new()
        .put(format!("{url}/{expired}"))
        .json(&json!({"aliases": {events.clone(): {}}}))
        .send()
        .await
        .expect("OpenSearch answers");
    assert!(response.status().is_success());
    let spec = spec(&cluster.dir, &base);

    let (code, output) = apply(&kubeconfig, &spec, &url, JOB);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!(
            "recorded 3 Kubernetes Events on Job {}/{JOB}",
            cluster.namespace
        )),
        "{output}"
    );
    let recorded = cluster.events().await;
    assert_eq!(
        summary(&recorded),
        [
            (
                "Normal".to_owned(),
                "Created".to_owned(),
                format!(
                    "10 objects created: index template {events}, {}index template {results}, \
                     index {results}, index template {alerts}",
                    // Then one events template per source, each with its own daily indices.
                    pipeline::wire::Source::ALL
                        .iter()
                        .map(|source| format!("index template {events}-{}, ", source.as_str()))
                        .collect::<String>()
                )
            ),
            (
                "Normal".to_owned(),
                "Expired".to_owned(),
                format!("1 object deleted by retention: index {expired}")
            ),
            (
                "Normal".to_owned(),
                "InSync".to_owned(),
                format!(
                    "3 objects already as declared: retention {events}-*, retention {results}, \
                     retention {alerts}"
                )
            ),
        ]
    );
    let uid = cluster.job_uid().await;
    for event in &recorded {
        let object = &event.involved_object;
        assert_eq!(object.kind.as_deref(), Some("Job"));
        assert_eq!(object.api_version.as_deref(), Some("batch/v1"));
        assert_eq!(object.uid, uid, "the Event is on this Job");
        assert_eq!(
            event.source.as_ref().and_then(|s| s.component.as_deref()),
            Some("logwarden-provisioner")
        );
    }

    // What a user sees.
    let kubectl = deploy::tool("XTASK_KUBECTL", "cargo xtask k8s up");
    let described = std::process::Command::new(kubectl)
        .args(["describe", "job", JOB, "--namespace", &cluster.namespace])
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .env("KUBECACHEDIR", cluster.dir.join("kube-cache"))
        .output()
        .expect("kubectl runs");
    let described = String::from_utf8_lossy(&described.stdout);
    for (reason, message) in [
        (
            "Created",
            format!("10 objects created: index template {events}"),
        ),
        (
            "Expired",
            format!("1 object deleted by retention: index {expired}"),
        ),
        ("InSync", "3 objects already as declared".to_owned()),
    ] {
        let shown = described.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.starts_with(&["Normal", reason])
                && words.contains(&"logwarden-provisioner")
                && line.contains(&message)
        });
        assert!(
            shown,
            "the {reason} Event is not in kubectl describe:\n{described}"
        );
    }

    // A failed apply (OpenSearch unreachable) records a Warning with the error.
    let unreachable = {
        let kubeconfig = kubeconfig.display().to_string();
        let spec = spec.display().to_string();
        Process::start(
            BINARY,
            &[
                "apply",
                "--k8s-job",
                JOB,
                "--spec",
                &spec,
                "--url",
                "http://127.0.0.1:9",
                "--wait",
                "1s",
            ],
            &[("KUBECONFIG", kubeconfig.as_str())],
        )
        .wait(Duration::from_secs(60))
    };
    assert_eq!(unreachable.0, Some(1), "{}", unreachable.1);
    let warnings: Vec<(String, String, String)> = summary(&cluster.events().await)
        .into_iter()
        .filter(|(kind, _, _)| kind == "Warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, "ApplyFailed");
    assert!(
        warnings[0]
            .2
            .starts_with("apply failed: OpenSearch at http://127.0.0.1:9 was not ready within 1s"),
        "{warnings:?}"
    );

    cluster.delete().await;
    clean_opensearch(&url, &base).await;
}

#[tokio::test]
async fn without_rbac_or_without_the_job_apply_succeeds_and_warns() {
    let url = testkit::require_opensearch().await;
    let cluster = Cluster::start("prov-k8s").await;
    // The ServiceAccount exists, but no Role is bound to it.
    let kubeconfig = cluster.service_account_kubeconfig().await;
    let base = format!("{}-", cluster.namespace);
    let spec = spec(&cluster.dir, &base);

    let (code, output) = apply(&kubeconfig, &spec, &url, JOB);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!(
            "logwarden-provisioner: warning: no Kubernetes Events recorded: reading Job {}/{JOB}:",
            cluster.namespace
        )),
        "{output}"
    );
    assert!(
        output.contains(
            "(403 Forbidden); the provisioner's ServiceAccount needs `get` on `jobs` (API group \
             `batch`) in its namespace"
        ),
        "{output}"
    );
    assert!(output.contains("0 to delete"), "the apply ran: {output}");

    // Allowed to read the Job, not to record Events.
    cluster
        .grant(
            "read-jobs",
            json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}),
        )
        .await;
    let (code, output) = apply(&kubeconfig, &spec, &url, JOB);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!(
            "no Kubernetes Events recorded: recording Event InSync on Job {}/{JOB}:",
            cluster.namespace
        )),
        "{output}"
    );
    assert!(
        output.contains(
            "(403 Forbidden); the provisioner's ServiceAccount needs `create` on `events` (core \
             API group) in its namespace"
        ),
        "{output}"
    );

    // With the RBAC, but naming a Job that does not exist.
    cluster
        .grant(
            "write-events",
            json!({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}),
        )
        .await;
    let (code, output) = apply(&kubeconfig, &spec, &url, "no-such-job");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(&format!(
            "no Kubernetes Events recorded: reading Job {}/no-such-job:",
            cluster.namespace
        )),
        "{output}"
    );
    assert!(
        output.contains(
            "jobs.batch \"no-such-job\" not found (404 NotFound); --k8s-job must name the Job \
             this pod belongs to"
        ),
        "{output}"
    );
    assert!(cluster.events().await.is_empty());

    cluster.delete().await;
    clean_opensearch(&url, &base).await;
}
