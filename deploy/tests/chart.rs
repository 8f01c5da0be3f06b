//! The Helm chart offline: `helm lint --strict` and `helm template` over every CI values file,
//! the objects a user would look at, the schema's refusals with helm's own words, and every
//! rendered config file loaded by its binary's own strict loader.

#[path = "chart/configs.rs"]
mod configs;
#[path = "chart/dashboards.rs"]
mod dashboards;
#[path = "chart/ingest.rs"]
mod ingest;
#[path = "chart/monitoring.rs"]
mod monitoring;
#[path = "chart/pods.rs"]
mod pods;
#[path = "chart/scaling.rs"]
mod scaling;
#[path = "chart/secrets.rs"]
mod secrets;

use std::collections::BTreeSet;
use std::path::Path;

use deploy::helm::{Helm, ci, ci_values};
use deploy::manifests::{Manifests, get, id, seq, text};
use serde_norway::Value;

const RELEASE: &str = "lw";

fn render(helm: &Helm, values: &str) -> Manifests {
    helm.template(RELEASE, &[&ci(values)], &[])
        .unwrap_or_else(|err| panic!("helm template -f ci/{values}.yaml: {err}"))
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    get(object, &["metadata", "annotations"])?
        .get(key)?
        .as_str()
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|err| panic!("not YAML ({err}): {text}"))
}

#[test]
fn lint_strict_passes_with_every_ci_values_file() {
    let helm = Helm::from_env();
    let files = ci_values();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "autoscaling",
            "aws",
            "defaults",
            "existing-secrets",
            "ingest",
            "keda",
            "monitoring",
            "tls"
        ]
    );
    let chart = deploy::helm::chart();
    for (name, file) in &files {
        let out = helm
            .run([
                "lint".as_ref(),
                "--strict".as_ref(),
                "-f".as_ref(),
                file.as_os_str(),
                chart.as_os_str(),
            ])
            .expect_success(&format!("helm lint --strict -f ci/{name}.yaml"));
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "ci/{name}.yaml: {out}"
        );
    }
}

#[test]
fn the_defaults_render_exactly_these_objects() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "defaults");
    assert_eq!(
        manifests.ids(),
        [
            "ConfigMap/lw-config",
            "ConfigMap/lw-topics",
            "CronJob/lw-retention",
            "Deployment/lw-detector",
            "Deployment/lw-sink",
            "Deployment/lw-transformer",
            "Job/lw-provisioner",
            "Job/lw-test",
            "Job/lw-topics",
            "PodDisruptionBudget/lw-detector",
            "Role/lw-provisioner",
            "RoleBinding/lw-provisioner",
            "Secret/lw-secrets",
            "Service/lw-detector",
            "Service/lw-sink",
            "Service/lw-transformer",
            "ServiceAccount/lw-provisioner",
        ]
    );
    let replicas = |name: &str| {
        get(manifests.get("Deployment", name), &["spec", "replicas"]).and_then(Value::as_u64)
    };
    assert_eq!(replicas("lw-transformer"), Some(2));
    assert_eq!(replicas("lw-sink"), Some(2));
    assert_eq!(replicas("lw-detector"), Some(2));
    let pdb = manifests.get("PodDisruptionBudget", "lw-detector");
    assert_eq!(
        get(pdb, &["spec", "maxUnavailable"]).and_then(Value::as_u64),
        Some(1)
    );
    // One image, five binaries: each workload names its own.
    let image = format!("localhost/logwarden:{}", env!("CARGO_PKG_VERSION"));
    for pod in manifests.pods() {
        for container in pod.containers() {
            assert_eq!(
                text(container, &["image"]),
                Some(image.as_str()),
                "{}",
                pod.id()
            );
        }
    }
    let command = |kind: &str, name: &str| {
        let pod = manifests.pod(kind, name);
        let container = pod.containers()[0];
        let words: Vec<&str> = seq(container, &["command"])
            .into_iter()
            .chain(seq(container, &["args"]))
            .filter_map(Value::as_str)
            .collect();
        words.join(" ")
    };
    assert_eq!(
        command("Deployment", "lw-transformer"),
        "/usr/local/bin/logwarden-transformer run --config /etc/logwarden/config/config.yaml"
    );
    assert_eq!(
        command("Deployment", "lw-sink"),
        "/usr/local/bin/logwarden-sink --config /etc/logwarden/config/config.yaml"
    );
    assert_eq!(
        command("Job", "lw-topics"),
        "/usr/local/bin/logwarden-provisioner topics --config /etc/logwarden/config/config.yaml --partitions 6 --replication-factor 3"
    );
    assert_eq!(
        command("Job", "lw-provisioner"),
        "/usr/local/bin/logwarden-provisioner apply --config /etc/logwarden/config/config.yaml --k8s-job lw-provisioner"
    );
    assert_eq!(
        command("CronJob", "lw-retention"),
        "/usr/local/bin/logwarden-provisioner apply --config /etc/logwarden/config/config.yaml --k8s-job $(JOB_NAME)"
    );
    assert_eq!(
        command("Job", "lw-test"),
        "/usr/local/bin/logwarden-provisioner verify --config /etc/logwarden/config/config.yaml --within 10m"
    );
}

#[test]
fn every_pod_is_locked_down_and_probed_on_the_metrics_port() {
    let helm = Helm::from_env();
    for (name, file) in ci_values() {
        let manifests = helm
            .template(RELEASE, &[&file], &[])
            .unwrap_or_else(|err| panic!("ci/{name}.yaml: {err}"));
        let pods = manifests.pods();
        assert!(pods.len() >= 7, "ci/{name}.yaml: {} pods", pods.len());
        for pod in pods {
            let at = format!("ci/{name}.yaml {}", pod.id());
            let spec = pod.spec();
            assert_eq!(
                get(spec, &["enableServiceLinks"]).and_then(Value::as_bool),
                Some(false),
                "{at}"
            );
            let security = get(spec, &["securityContext"]).expect("pod securityContext");
            assert_eq!(
                security.get("runAsNonRoot").and_then(Value::as_bool),
                Some(true),
                "{at}"
            );
            assert_eq!(
                security.get("runAsUser").and_then(Value::as_u64),
                Some(65532),
                "{at}"
            );
            assert_eq!(
                text(security, &["seccompProfile", "type"]),
                Some("RuntimeDefault"),
                "{at}"
            );
            for container in pod.containers() {
                let security = get(container, &["securityContext"]).expect("securityContext");
                assert_eq!(
                    security
                        .get("readOnlyRootFilesystem")
                        .and_then(Value::as_bool),
                    Some(true),
                    "{at}"
                );
                assert_eq!(
                    security
                        .get("allowPrivilegeEscalation")
                        .and_then(Value::as_bool),
                    Some(false),
                    "{at}"
                );
                let dropped: Vec<&str> = seq(security, &["capabilities", "drop"])
                    .into_iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(dropped, ["ALL"], "{at}");
                assert!(
                    get(container, &["resources", "requests", "memory"]).is_some(),
                    "{at}: no memory request"
                );
                if text(pod.owner, &["kind"]) == Some("Deployment") {
                    let ports: Vec<(&str, u64)> = seq(container, &["ports"])
                        .into_iter()
                        .filter_map(|p| {
                            Some((text(p, &["name"])?, p.get("containerPort")?.as_u64()?))
                        })
                        .collect();
                    // Ingest also listens for senders; every other service only for scrapes.
                    let expected: &[(&str, u64)] = if pod.id().ends_with("-ingest") {
                        &[
                            ("metrics", 9464),
                            ("http", 8088),
                            ("syslog-tcp", 6514),
                            ("syslog-udp", 5514),
                        ]
                    } else {
                        &[("metrics", 9464)]
                    };
                    assert_eq!(ports, expected, "{at}");
                    assert_eq!(
                        text(container, &["livenessProbe", "httpGet", "path"]),
                        Some("/healthz"),
                        "{at}"
                    );
                    for probe in ["livenessProbe", "readinessProbe"] {
                        assert_eq!(
                            text(container, &[probe, "httpGet", "port"]),
                            Some("metrics"),
                            "{at} {probe}"
                        );
                    }
                    // The detector's standby is not ready by design (see detector.yaml).
                    let readiness = if pod.id().ends_with("-detector") {
                        "/healthz"
                    } else {
                        "/readyz"
                    };
                    assert_eq!(
                        text(container, &["readinessProbe", "httpGet", "path"]),
                        Some(readiness),
                        "{at}"
                    );
                }
            }
        }
    }
}

#[test]
fn hooks_run_in_their_phases_and_are_deleted_once_they_succeeded() {
    let helm = Helm::from_env();
    let manifests = helm
        .template(
            RELEASE,
            &[],
            &[
                "--set",
                "kafka.sasl.enabled=true",
                "--set",
                "kafka.sasl.username=lw",
                "--set",
                "secrets.kafkaSaslPassword=pw",
            ],
        )
        .expect("renders");
    let mut hooks: Vec<(String, &str, &str, &str)> = manifests
        .objects
        .iter()
        .filter_map(|object| {
            Some((
                id(object),
                annotation(object, "helm.sh/hook")?,
                annotation(object, "helm.sh/hook-weight")?,
                annotation(object, "helm.sh/hook-delete-policy")?,
            ))
        })
        .collect();
    hooks.sort();
    let policy = "before-hook-creation,hook-succeeded";
    assert_eq!(
        hooks,
        [
            (
                "ConfigMap/lw-topics".to_owned(),
                "pre-install,pre-upgrade",
                "-10",
                policy
            ),
            (
                "Job/lw-provisioner".to_owned(),
                "post-install,post-upgrade",
                "0",
                policy
            ),
            ("Job/lw-test".to_owned(), "test", "0", policy),
            (
                "Job/lw-topics".to_owned(),
                "pre-install,pre-upgrade",
                "0",
                policy
            ),
            (
                "Secret/lw-topics".to_owned(),
                "pre-install,pre-upgrade",
                "-10",
                policy
            ),
        ]
    );
    // The topics hook's copy holds only what it needs.
    assert_eq!(
        pods::secret_data(&manifests, "lw-topics").map(|d| d.into_iter().collect::<Vec<_>>()),
        Some(vec![("kafka-sasl-password".to_owned(), "pw".to_owned())])
    );
    // The provisioner records Events on its own Job, with the least RBAC that needs.
    let role = manifests.get("Role", "lw-provisioner");
    assert_eq!(
        get(role, &["rules"]),
        Some(&yaml(
            "[{apiGroups: [''], resources: [events], verbs: [create]}, {apiGroups: [batch], resources: [jobs], verbs: [get]}]"
        ))
    );
    let job = manifests.pod("Job", "lw-provisioner");
    assert_eq!(
        text(job.spec(), &["serviceAccountName"]),
        Some("lw-provisioner")
    );
    for (kind, name) in [
        ("Job", "lw-topics"),
        ("Job", "lw-test"),
        ("Deployment", "lw-sink"),
    ] {
        let spec = manifests.pod(kind, name).spec();
        assert_eq!(
            get(spec, &["automountServiceAccountToken"]).and_then(Value::as_bool),
            Some(false),
            "{kind}/{name} needs no Kubernetes API"
        );
    }
}

#[test]
fn a_config_change_rolls_exactly_the_pods_that_read_it() {
    let helm = Helm::from_env();
    let checksums = |extra: &[&str]| -> Vec<(String, String, String)> {
        let manifests = helm.template(RELEASE, &[], extra).expect("renders");
        manifests
            .of_kind("Deployment")
            .map(|deployment| {
                let annotations = get(deployment, &["spec", "template", "metadata", "annotations"])
                    .expect("annotations");
                (
                    id(deployment),
                    text(annotations, &["checksum/config"])
                        .expect("config")
                        .to_owned(),
                    text(annotations, &["checksum/secrets"])
                        .expect("secrets")
                        .to_owned(),
                )
            })
            .collect()
    };
    let base = checksums(&[]);
    let changed = |extra: &[&str]| -> Vec<String> {
        checksums(extra)
            .into_iter()
            .zip(&base)
            .filter(|(now, before)| now != *before)
            .map(|(now, _)| now.0)
            .collect()
    };
    assert_eq!(
        changed(&["--set", "spec.provisioning.owner=team-b"]),
        ["Deployment/lw-detector"]
    );
    // The detector checks its spec against the same rules, so a rules change rolls it too.
    assert_eq!(
        changed(&["--set", "transformer.rules.fields[0].path=action2"]),
        ["Deployment/lw-detector", "Deployment/lw-transformer"]
    );
    // The sink writes the events alias the spec names, so renaming it rolls the sink too.
    assert_eq!(
        changed(&["--set", "spec.events=waf-events"]),
        ["Deployment/lw-detector", "Deployment/lw-sink"]
    );
    // Sharing the detectors among more shards is the detector's alone.
    assert_eq!(
        changed(&["--set", "detector.config.shards=3"]),
        ["Deployment/lw-detector"]
    );
    assert_eq!(
        changed(&["--set", "sink.config.batch_ms=500"]),
        ["Deployment/lw-sink"]
    );
    assert_eq!(
        changed(&["--set", "secrets.alertWebhookUrl=https://hooks.example/x"]),
        [
            "Deployment/lw-detector",
            "Deployment/lw-sink",
            "Deployment/lw-transformer"
        ]
    );
}

#[test]
fn the_schema_refuses_bad_values_in_helms_words() {
    let helm = Helm::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "unknown-top-level.yaml",
            "replica: 3\n",
            "- at '': additional properties 'replica' not allowed",
        ),
        (
            "wrong-type.yaml",
            "transformer:\n  replicas: \"3\"\n",
            "- at '/transformer/replicas': got string, want integer",
        ),
        (
            "unknown-nested.yaml",
            "kafka:\n  sasl:\n    password: hunter2\n",
            "- at '/kafka/sasl': additional properties 'password' not allowed",
        ),
        (
            "no-shard.yaml",
            "detector:\n  config:\n    shards: 0\n",
            "- at '/detector/config/shards': minimum: got 0, want 1",
        ),
        (
            "bad-enum.yaml",
            "kafka:\n  sasl:\n    mechanism: SCRAM-SHA-1\n",
            "- at '/kafka/sasl/mechanism': value must be one of 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'",
        ),
        (
            // A channel variable outside LOGWARDEN_SECRET_* would reach the strict config
            // loader as a config key. (helm 3.22 prints a wrong location for this one.)
            "bad-channel-variable.yaml",
            "secrets:\n  channelEnv:\n    LOGWARDEN_KAFKA__BROKERS: x\n",
            "'LOGWARDEN_KAFKA__BROKERS' does not match pattern '^LOGWARDEN_SECRET_[A-Z0-9_]+$'",
        ),
    ];
    for (file, content, expected) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, content).expect("write");
        let err = helm.template(RELEASE, &[&path], &[]).expect_err(file);
        assert!(
            err.contains("values don't meet the specifications of the schema(s) in the following chart(s):\nlogwarden:"),
            "{file}: {err}"
        );
        assert!(
            err.contains(expected),
            "{file}: expected {expected:?} in:\n{err}"
        );
        // A refused value is never echoed back when it is a secret.
        assert!(!err.contains("hunter2"), "{file}: {err}");
    }
}

/// `helm template` with the CI values file `file` and `--set set` fails, saying `expected`.
fn assert_refused(helm: &Helm, file: &str, set: &str, expected: &str) {
    let err = helm
        .template(RELEASE, &[&ci(file)], &["--set", set])
        .expect_err("refused");
    assert!(err.contains(expected), "{err}");
}
