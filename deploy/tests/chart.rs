//! The Helm chart offline: `helm lint --strict` and `helm template` over every CI values file,
//! the objects a user would look at, the schema's refusals with helm's own words, and every
//! rendered config file loaded by its binary's own strict loader.

#[path = "chart/pods.rs"]
mod pods;

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
                    assert_eq!(ports, [("metrics", 9464)], "{at}");
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
fn every_rendered_config_is_accepted_by_its_binary() {
    let helm = Helm::from_env();
    let mut loaded = BTreeSet::new();
    for (name, file) in ci_values() {
        let manifests = helm
            .template(RELEASE, &[&file], &[])
            .unwrap_or_else(|err| panic!("ci/{name}.yaml: {err}"));
        for pod in manifests.pods() {
            let container = pods::materialize(&manifests, &pod);
            if let Err(err) = pods::load_like_the_binary(&container) {
                panic!("ci/{name}.yaml: {err}");
            }
            loaded.insert(format!("{} {}", container.binary, container.args[0]));
        }
    }
    // Every binary and subcommand the chart runs was checked at least once.
    assert_eq!(
        loaded.into_iter().collect::<Vec<_>>(),
        [
            "logwarden-detector run",
            "logwarden-producer --config",
            "logwarden-provisioner apply",
            "logwarden-provisioner topics",
            "logwarden-provisioner verify",
            "logwarden-sink --config",
            "logwarden-transformer run",
        ]
    );
}

#[test]
fn a_wrong_value_in_a_config_section_is_refused_by_the_binary_not_silently_ignored() {
    // The loader check above is only worth something if it can fail: a value the schema lets
    // through but the sink refuses (its retry cap below its first delay).
    let helm = Helm::from_env();
    let manifests = helm
        .template(
            RELEASE,
            &[],
            &[
                "--set",
                "sink.config.retry_initial_ms=5000",
                "--set",
                "sink.config.retry_max_ms=10",
            ],
        )
        .expect("renders");
    let container = pods::materialize(&manifests, &manifests.pod("Deployment", "lw-sink"));
    let err = pods::load_like_the_binary(&container).expect_err("refused");
    assert!(
        err.contains(
            "config key `sink.retry_max_ms` (10) is less than sink.retry_initial_ms (5000)"
        ),
        "{err}"
    );
}

#[test]
fn the_chart_defaults_are_the_binaries_embedded_defaults() {
    let values = yaml(
        &std::fs::read_to_string(deploy::helm::chart().join("values.yaml")).expect("values.yaml"),
    );
    assert_eq!(
        values.get("spec"),
        Some(&yaml(pipeline::spec::DEFAULT_SPEC)),
        "values.yaml `spec` differs from pipeline/spec/default.yaml"
    );
    assert_eq!(
        get(&values, &["transformer", "rules"]),
        Some(&yaml(transformer::rules::DEFAULT_RULES_YAML)),
        "values.yaml `transformer.rules` differs from transformer/rules/default.yaml"
    );
}

#[test]
fn autoscaling_drops_replicas_and_caps_at_the_partitions() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "autoscaling");
    for name in ["lw-transformer", "lw-sink"] {
        let deployment = manifests.get("Deployment", name);
        assert!(
            get(deployment, &["spec", "replicas"]).is_none(),
            "{name} has replicas under autoscaling: helm upgrade would reset the HPA's count"
        );
    }
    assert_eq!(
        get(
            manifests.get("Deployment", "lw-detector"),
            &["spec", "replicas"]
        )
        .and_then(Value::as_u64),
        Some(2)
    );
    let hpa = |name: &str, field: &str| {
        get(
            manifests.get("HorizontalPodAutoscaler", name),
            &["spec", field],
        )
        .and_then(Value::as_u64)
    };
    // ci/autoscaling.yaml: 4 partitions; the transformer asks for 10, the sink for 3.
    assert_eq!(hpa("lw-transformer", "maxReplicas"), Some(4));
    assert_eq!(hpa("lw-transformer", "minReplicas"), Some(2));
    assert_eq!(hpa("lw-sink", "maxReplicas"), Some(3));
    let metric = &seq(
        manifests.get("HorizontalPodAutoscaler", "lw-transformer"),
        &["spec", "metrics"],
    )[0];
    assert_eq!(text(metric, &["resource", "name"]), Some("cpu"));
    assert_eq!(
        get(metric, &["resource", "target", "averageUtilization"]).and_then(Value::as_u64),
        Some(60)
    );
    assert_eq!(manifests.of_kind("ScaledObject").count(), 0);
}

#[test]
fn keda_scales_on_lag_capped_at_the_partitions_and_authenticates_like_the_pods() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "keda");
    assert_eq!(manifests.of_kind("HorizontalPodAutoscaler").count(), 0);
    for name in ["lw-transformer", "lw-sink"] {
        assert!(
            get(manifests.get("Deployment", name), &["spec", "replicas"]).is_none(),
            "{name}"
        );
    }
    let scaled = manifests.get("ScaledObject", "lw-transformer");
    // ci/keda.yaml: 12 partitions, maxReplicaCount 20.
    assert_eq!(
        get(scaled, &["spec", "maxReplicaCount"]).and_then(Value::as_u64),
        Some(12)
    );
    assert_eq!(
        get(scaled, &["spec", "minReplicaCount"]).and_then(Value::as_u64),
        Some(2)
    );
    assert_eq!(
        text(scaled, &["spec", "scaleTargetRef", "name"]),
        Some("lw-transformer")
    );
    let trigger = &seq(scaled, &["spec", "triggers"])[0];
    assert_eq!(text(trigger, &["type"]), Some("kafka"));
    let metadata = |key: &str| text(trigger, &["metadata", key]);
    assert_eq!(metadata("consumerGroup"), Some("waf-transformer"));
    assert_eq!(metadata("topic"), Some("raw"));
    assert_eq!(metadata("lagThreshold"), Some("500"));
    assert_eq!(metadata("sasl"), Some("scram_sha512"));
    assert_eq!(metadata("tls"), Some("enable"));
    assert_eq!(
        metadata("bootstrapServers"),
        Some("kafka-0.kafka:9093,kafka-1.kafka:9093")
    );
    // The group KEDA measures is the one the transformer's config names.
    let config = yaml(manifests.config_text("lw-config", "transformer.yaml"));
    assert_eq!(
        text(&config, &["transformer", "group_id"]),
        Some("waf-transformer")
    );
    let sink = manifests.get("ScaledObject", "lw-sink");
    assert_eq!(
        get(sink, &["spec", "maxReplicaCount"]).and_then(Value::as_u64),
        Some(8)
    );
    let sink_trigger = seq(sink, &["spec", "triggers"])[0];
    assert_eq!(text(sink_trigger, &["metadata", "topic"]), Some("enriched"));
    assert_eq!(
        text(sink_trigger, &["metadata", "consumerGroup"]),
        Some("logwarden-sink")
    );
    let auth = manifests.get("TriggerAuthentication", "lw-transformer");
    let env: Vec<(&str, &str)> = seq(auth, &["spec", "env"])
        .into_iter()
        .filter_map(|e| Some((text(e, &["parameter"])?, text(e, &["name"])?)))
        .collect();
    assert_eq!(
        env,
        [
            ("username", "LOGWARDEN_KAFKA__SASL__USERNAME"),
            ("password", "LOGWARDEN_KAFKA__SASL__PASSWORD")
        ]
    );
    let transformer = manifests.pod("Deployment", "lw-transformer");
    let names: Vec<&str> = seq(transformer.containers()[0], &["env"])
        .into_iter()
        .filter_map(|e| text(e, &["name"]))
        .collect();
    for (_, variable) in &env {
        assert!(
            names.contains(variable),
            "the transformer has no {variable}: {names:?}"
        );
    }
    let refs: Vec<(&str, &str, &str)> = seq(auth, &["spec", "secretTargetRef"])
        .into_iter()
        .filter_map(|e| {
            Some((
                text(e, &["parameter"])?,
                text(e, &["name"])?,
                text(e, &["key"])?,
            ))
        })
        .collect();
    assert_eq!(refs, [("ca", "kafka-cluster-ca", "ca.crt")]);
}

#[test]
fn autoscaling_and_keda_together_are_refused() {
    let helm = Helm::from_env();
    assert_refused(
        &helm,
        "keda",
        "transformer.autoscaling.enabled=true",
        "transformer.autoscaling.enabled and transformer.keda.enabled are both true: KEDA makes its own HorizontalPodAutoscaler; enable one of them",
    );
    assert_refused(
        &helm,
        "autoscaling",
        "transformer.autoscaling.minReplicas=5",
        "transformer.autoscaling.minReplicas (5) is above the most replicas that get partitions (4, the lower of maxReplicas and kafka.partitions)",
    );
}

#[test]
fn prometheus_operator_objects_only_where_its_api_is_served() {
    let helm = Helm::from_env();
    let without = render(&helm, "monitoring");
    assert_eq!(without.of_kind("ServiceMonitor").count(), 0);
    assert_eq!(without.of_kind("PrometheusRule").count(), 0);
    let with = helm
        .template(
            RELEASE,
            &[&ci("monitoring")],
            &["--api-versions", "monitoring.coreos.com/v1"],
        )
        .expect("renders");
    let monitor = with.get("ServiceMonitor", "lw");
    assert_eq!(
        text(monitor, &["metadata", "labels", "release"]),
        Some("kube-prometheus-stack")
    );
    let endpoint = &seq(monitor, &["spec", "endpoints"])[0];
    assert_eq!(text(endpoint, &["port"]), Some("metrics"));
    assert_eq!(text(endpoint, &["interval"]), Some("15s"));
    // It selects exactly the metrics Services: one per workload, the producer included here.
    let selected: Vec<String> = with
        .of_kind("Service")
        .filter(|service| {
            text(service, &["metadata", "labels", "logwarden.io/metrics"]) == Some("true")
        })
        .map(id)
        .collect();
    assert_eq!(
        selected,
        [
            "Service/lw-transformer",
            "Service/lw-sink",
            "Service/lw-detector",
            "Service/lw-producer"
        ]
    );
    let rule = with.get("PrometheusRule", "lw");
    let rules: Vec<&Value> = seq(rule, &["spec", "groups"])
        .into_iter()
        .flat_map(|group| seq(group, &["rules"]))
        .collect();
    let alerts: Vec<&str> = rules.iter().filter_map(|r| text(r, &["alert"])).collect();
    assert_eq!(
        alerts,
        [
            "LogwardenServiceDown",
            "LogwardenConsumerLagGrowing",
            "LogwardenSinkBackpressure",
            "LogwardenDeadLettersRising",
            "LogwardenDetectorNoActiveLease",
        ]
    );
    let expr = |alert: &str| {
        rules
            .iter()
            .find(|r| text(r, &["alert"]) == Some(alert))
            .and_then(|r| text(r, &["expr"]))
            .expect("expr")
    };
    assert!(
        expr("LogwardenConsumerLagGrowing").contains("> 300"),
        "{}",
        expr("LogwardenConsumerLagGrowing")
    );
    assert!(
        expr("LogwardenDeadLettersRising").ends_with("> 10"),
        "{}",
        expr("LogwardenDeadLettersRising")
    );
    assert!(
        expr("LogwardenServiceDown").contains(r#"job=~"lw-(transformer|sink|detector|producer)""#),
        "{}",
        expr("LogwardenServiceDown")
    );
    // Every logwarden_ metric the alerts use is one a service registers (without the prefix,
    // which the registry adds).
    let sources = service_sources();
    let mut used = BTreeSet::new();
    for rule in &rules {
        let expr = text(rule, &["expr"]).expect("expr");
        for name in metric_names(expr) {
            for concrete in expand(&name) {
                let registered = format!("\"{}\"", concrete.trim_start_matches("logwarden_"));
                assert!(
                    sources.contains(&registered),
                    "{} uses {concrete}, which no service registers",
                    text(rule, &["alert"]).unwrap_or("?")
                );
                used.insert(concrete);
            }
        }
    }
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "logwarden_detector_active",
            "logwarden_detector_scored_until_seconds",
            "logwarden_sink_backpressure",
            "logwarden_sink_dead_letters_total",
            "logwarden_transformer_dead_letters_total",
        ]
    );
}

/// The Rust sources of the services, concatenated.
fn service_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).expect("read"));
            }
        }
    }
    let mut out = String::new();
    for crate_dir in ["pipeline", "transformer", "sink", "detector", "producer"] {
        walk(&deploy::workspace().join(crate_dir).join("src"), &mut out);
    }
    out
}

/// `logwarden_...` names in a PromQL expression (a `__name__=~"logwarden_(a|b)_x"` regex kept
/// whole, for [`expand`]).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("logwarden_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_()|".contains(c)))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// `logwarden_(a|b)_x` → `logwarden_a_x`, `logwarden_b_x`.
fn expand(name: &str) -> Vec<String> {
    match (name.find('('), name.find(')')) {
        (Some(open), Some(close)) => name[open + 1..close]
            .split('|')
            .map(|choice| format!("{}{choice}{}", &name[..open], &name[close + 1..]))
            .collect(),
        _ => vec![name.to_owned()],
    }
}

#[test]
fn an_existing_secret_replaces_every_rendered_one() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "existing-secrets");
    assert_eq!(
        manifests.of_kind("Secret").map(id).collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    let mut referenced = BTreeSet::new();
    for pod in manifests.pods() {
        for container in pod.containers() {
            for var in seq(container, &["env"]) {
                if let Some(secret) = text(var, &["valueFrom", "secretKeyRef", "name"]) {
                    referenced.insert(format!(
                        "{} {} {}",
                        pod.id(),
                        text(var, &["name"]).unwrap_or("?"),
                        secret
                    ));
                    assert_eq!(secret, "logwarden-credentials", "{}", pod.id());
                }
            }
        }
        for volume in pod.volumes() {
            if let Some(secret) = text(volume, &["secret", "secretName"]) {
                let expected = match text(volume, &["name"]) {
                    Some("kafka-tls") => "kafka-client-tls",
                    Some("opensearch-tls") => "opensearch-ca",
                    other => panic!("{}: unexpected secret volume {other:?}", pod.id()),
                };
                assert_eq!(secret, expected, "{}", pod.id());
            }
        }
    }
    let names = |workload: &str| -> Vec<String> {
        referenced
            .iter()
            .filter(|line| line.starts_with(workload))
            .map(|line| line.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        names("Deployment/lw-sink "),
        [
            "LOGWARDEN_KAFKA__SASL__PASSWORD",
            "LOGWARDEN_OPENSEARCH__PASSWORD"
        ]
    );
    // channelEnv merges with the default's (the SMTP password stays).
    assert_eq!(
        names("Deployment/lw-detector "),
        [
            "LOGWARDEN_KAFKA__SASL__PASSWORD",
            "LOGWARDEN_OPENSEARCH__PASSWORD",
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "LOGWARDEN_SECRET_SLACK_URL",
            "LOGWARDEN_SECRET_SMTP_PASSWORD",
        ]
    );
    assert_eq!(
        names("Deployment/lw-transformer "),
        ["LOGWARDEN_KAFKA__SASL__PASSWORD"]
    );
    assert_eq!(names("Job/lw-topics "), ["LOGWARDEN_KAFKA__SASL__PASSWORD"]);
    assert_eq!(
        names("Job/lw-provisioner "),
        [
            "LOGWARDEN_OPENSEARCH__PASSWORD",
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "LOGWARDEN_SECRET_SLACK_URL",
            "LOGWARDEN_SECRET_SMTP_PASSWORD",
        ]
    );
    // Every secret the spec's channels read reaches the detector and the provisioner.
    let spec = yaml(manifests.config_text("lw-config", "spec.yaml"));
    for channel in seq(&spec, &["channels"]) {
        let variable = ["webhook", "slack"]
            .iter()
            .find_map(|kind| text(channel, &[kind, "env"]))
            .expect("a channel reading a variable");
        for workload in [
            "Deployment/lw-detector ",
            "Job/lw-provisioner ",
            "CronJob/lw-retention ",
        ] {
            assert!(
                names(workload).iter().any(|n| n == variable),
                "{workload} lacks {variable}"
            );
        }
    }
}

#[test]
fn tls_material_from_values_is_rendered_into_secrets_and_mounted_as_files() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "tls");
    let kafka_tls = pods::secret_data(&manifests, "lw-kafka-tls").expect("lw-kafka-tls");
    assert_eq!(
        kafka_tls.keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    assert!(kafka_tls["tls.key"].contains("placeholder: this client's key"));
    let opensearch_tls =
        pods::secret_data(&manifests, "lw-opensearch-tls").expect("lw-opensearch-tls");
    assert_eq!(opensearch_tls.keys().collect::<Vec<_>>(), ["ca.crt"]);
    let secrets = pods::secret_data(&manifests, "lw-secrets").expect("lw-secrets");
    assert_eq!(
        secrets.into_iter().collect::<Vec<_>>(),
        [
            (
                "alert-webhook-url".to_owned(),
                "https://hooks.example.internal/logwarden".to_owned()
            ),
            (
                "opensearch-password".to_owned(),
                "opensearch-password".to_owned()
            ),
        ]
    );
    let sink = yaml(manifests.config_text("lw-config", "sink.yaml"));
    assert_eq!(
        get(&sink, &["kafka", "tls"]),
        Some(&yaml(
            "{ca_file: /etc/logwarden/kafka-tls/ca.crt, certificate_file: /etc/logwarden/kafka-tls/tls.crt, key_file: /etc/logwarden/kafka-tls/tls.key, verify_hostname: true}"
        ))
    );
    assert_eq!(
        text(&sink, &["opensearch", "ca_file"]),
        Some("/etc/logwarden/opensearch-tls/ca.crt")
    );
    assert_eq!(text(&sink, &["opensearch", "username"]), Some("logwarden"));
    // What the sink's container sees, through its mounts.
    let container = pods::materialize(&manifests, &manifests.pod("Deployment", "lw-sink"));
    let mounted = std::fs::read_to_string(container.path("/etc/logwarden/kafka-tls/tls.crt"))
        .expect("mounted");
    assert!(
        mounted.contains("placeholder: this client's certificate"),
        "{mounted}"
    );
    // The transformer reads Kafka only: no OpenSearch material or password in its pod.
    let transformer = manifests.pod("Deployment", "lw-transformer");
    let volumes: Vec<&str> = transformer
        .volumes()
        .into_iter()
        .filter_map(|v| text(v, &["name"]))
        .collect();
    assert_eq!(volumes, ["config", "tmp", "kafka-tls"]);
    assert!(seq(transformer.containers()[0], &["env"]).is_empty());
    // The topics hook reads its own copy (a hook, made before it), not the release's Secret.
    let copy = manifests.get("Secret", "lw-topics-kafka-tls");
    assert_eq!(
        annotation(copy, "helm.sh/hook"),
        Some("pre-install,pre-upgrade")
    );
    assert_eq!(
        pods::secret_data(&manifests, "lw-topics-kafka-tls"),
        Some(kafka_tls)
    );
    let topics = manifests.pod("Job", "lw-topics");
    let secret_volumes: Vec<&str> = topics
        .volumes()
        .into_iter()
        .filter_map(|v| text(v, &["secret", "secretName"]))
        .collect();
    assert_eq!(secret_volumes, ["lw-topics-kafka-tls"]);
}

#[test]
fn aws_keys_reach_only_the_pods_that_sign_requests_to_opensearch() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "aws");
    let variables = |kind: &str, name: &str| -> Vec<String> {
        seq(manifests.pod(kind, name).containers()[0], &["env"])
            .into_iter()
            .filter_map(|var| text(var, &["name"]))
            .filter(|name| name.starts_with("AWS_"))
            .map(str::to_owned)
            .collect()
    };
    let keys = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ];
    for (kind, name) in [
        ("Deployment", "lw-sink"),
        ("Deployment", "lw-detector"),
        ("Job", "lw-provisioner"),
        ("CronJob", "lw-retention"),
        ("Job", "lw-test"),
    ] {
        assert_eq!(variables(kind, name), keys, "{kind}/{name}");
    }
    for (kind, name) in [("Deployment", "lw-transformer"), ("Job", "lw-topics")] {
        assert!(variables(kind, name).is_empty(), "{kind}/{name}");
    }
    let sink = yaml(manifests.config_text("lw-config", "sink.yaml"));
    assert_eq!(
        get(&sink, &["opensearch", "aws_sigv4"]),
        Some(&yaml("{region: eu-west-1, service: es}"))
    );
    assert_refused(
        &helm,
        "aws",
        "opensearch.username=admin",
        "opensearch.awsSigv4 signs every request with the AWS credentials: leave opensearch.username and the client certificate",
    );
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
    assert_eq!(
        changed(&["--set", "transformer.rules.fields[0].path=action2"]),
        ["Deployment/lw-transformer"]
    );
    // The sink writes the events alias the spec names, so renaming it rolls the sink too.
    assert_eq!(
        changed(&["--set", "spec.events=waf-events"]),
        ["Deployment/lw-detector", "Deployment/lw-sink"]
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
fn grafana_dashboards_render_what_the_chart_holds() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "defaults");
    assert!(manifests.find("ConfigMap", "lw-dashboards").is_none());
    // A copy of the chart with one dashboard file.
    let copy = tempfile::tempdir().expect("temp dir");
    copy_dir(&deploy::helm::chart(), copy.path());
    std::fs::create_dir_all(copy.path().join("dashboards")).expect("dir");
    let dashboard = r#"{"title": "logwarden pipeline", "panels": []}"#;
    std::fs::write(copy.path().join("dashboards/pipeline.json"), dashboard).expect("write");
    let manifests = helm
        .template_chart(copy.path(), RELEASE, &[], &[])
        .expect("renders");
    let configmap = manifests.get("ConfigMap", "lw-dashboards");
    assert_eq!(
        text(configmap, &["metadata", "labels", "grafana_dashboard"]),
        Some("1")
    );
    assert_eq!(text(configmap, &["data", "pipeline.json"]), Some(dashboard));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
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
