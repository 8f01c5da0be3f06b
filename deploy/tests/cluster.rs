//! The chart on a real Kubernetes API server: the kwok control plane of `cargo xtask k8s up`
//! (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; kwok plays the nodes and
//! the kubelets, so pods are scheduled, become ready and Jobs complete, but no container runs:
//! the image smoke test proves the containers). Each test installs its own release in its own
//! namespace, and deletes the namespace at the end, passed or failed.

use std::time::Duration;

use deploy::helm::{Helm, chart, ci, ci_values};
use deploy::kubectl::{Kubectl, eventually, unique};
use deploy::manifests::{Manifests, text};
use serde_json::Value as Json;

/// Kinds that need a CRD this cluster does not have (KEDA, the Prometheus Operator).
const CRD_KINDS: &[&str] = &[
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PrometheusRule",
];

fn helm(kubectl: &Kubectl) -> Helm {
    Helm::from_env().with_kubeconfig(kubectl.kubeconfig())
}

fn str_of<'a>(value: &'a Json, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Json::as_str).unwrap_or("")
}

fn u64_of(value: &Json, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Json::as_u64).unwrap_or(0)
}

/// `kubectl get <kind> -n ns -o json`'s items.
fn items(kubectl: &Kubectl, namespace: &str, what: &[&str]) -> Vec<Json> {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend(["-n", namespace]);
    match kubectl.json(&args).get("items") {
        Some(Json::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Every object in the namespace of any listable kind, but what every namespace holds
/// (its root CA ConfigMap, its default ServiceAccount) and Events.
fn everything_in(kubectl: &Kubectl, namespace: &str) -> Vec<String> {
    let kinds = kubectl
        .run([
            "api-resources",
            "--namespaced=true",
            "--verbs=list",
            "-o",
            "name",
        ])
        .expect_success("kubectl api-resources");
    let kinds: Vec<&str> = kinds
        .lines()
        .filter(|kind| !kind.is_empty() && !kind.starts_with("events"))
        .collect();
    let listed = kubectl
        .run(["get", &kinds.join(","), "-n", namespace, "-o", "name"])
        .expect_success("kubectl get everything");
    listed
        .lines()
        .filter(|line| {
            !line.is_empty()
                && *line != "configmap/kube-root-ca.crt"
                && *line != "serviceaccount/default"
        })
        .map(str::to_owned)
        .collect()
}

/// The Events of one object, as (reason, creation time).
fn events_of(kubectl: &Kubectl, namespace: &str, kind: &str, name: &str) -> Vec<(String, String)> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    items(
        kubectl,
        namespace,
        &["events", "--field-selector", &selector],
    )
    .iter()
    .map(|event| {
        (
            str_of(event, "/reason").to_owned(),
            str_of(event, "/metadata/creationTimestamp").to_owned(),
        )
    })
    .collect()
}

/// Waits until a Deployment has `replicas` ready pods of its current template.
fn wait_ready(kubectl: &Kubectl, namespace: &str, deployment: &str, replicas: u64) {
    eventually(
        Duration::from_secs(120),
        &format!("{replicas} ready pods of {deployment}"),
        || {
            let d = kubectl.json(&["get", "deployment", deployment, "-n", namespace]);
            let seen = (
                u64_of(&d, "/spec/replicas"),
                u64_of(&d, "/status/readyReplicas"),
                u64_of(&d, "/status/updatedReplicas"),
                u64_of(&d, "/status/availableReplicas"),
                u64_of(&d, "/status/observedGeneration") == u64_of(&d, "/metadata/generation"),
            );
            if seen == (replicas, replicas, replicas, replicas, true) {
                Ok(())
            } else {
                Err(format!(
                    "(spec, ready, updated, available, observed) = {seen:?}"
                ))
            }
        },
    );
    let selector = format!(
        "app.kubernetes.io/component={},app.kubernetes.io/instance={}",
        deployment.rsplit('-').next().unwrap_or_default(),
        deployment
            .rsplit_once('-')
            .map_or("", |(release, _)| release)
    );
    eventually(
        Duration::from_secs(60),
        &format!("{replicas} Ready pods of {deployment}"),
        || {
            let pods = items(kubectl, namespace, &["pods", "-l", &selector]);
            let ready = pods
                .iter()
                .filter(|pod| str_of(pod, "/metadata/deletionTimestamp").is_empty())
                .filter(|pod| {
                    pod.pointer("/status/conditions")
                        .and_then(Json::as_array)
                        .is_some_and(|conditions| {
                            conditions.iter().any(|c| {
                                str_of(c, "/type") == "Ready" && str_of(c, "/status") == "True"
                            })
                        })
                })
                .count() as u64;
            if ready == replicas {
                Ok(())
            } else {
                Err(format!("{ready} Ready of {} pods", pods.len()))
            }
        },
    );
}

fn uninstall_leaves_nothing(kubectl: &Kubectl, helm: &Helm, namespace: &str, release: &str) {
    let out = helm
        .run([
            "uninstall",
            release,
            "-n",
            namespace,
            "--wait",
            "--timeout",
            "2m",
        ])
        .expect_success("helm uninstall");
    assert!(
        out.contains(&format!("release \"{release}\" uninstalled")),
        "{out}"
    );
    eventually(
        Duration::from_secs(90),
        "nothing of the release left",
        || {
            let left = everything_in(kubectl, namespace);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    );
}

#[test]
fn every_rendering_passes_the_api_servers_strict_validation() {
    let kubectl = Kubectl::from_env();
    let namespace = kubectl.namespace("chart-validate");
    let helm = helm(&kubectl);
    for (name, file) in ci_values() {
        let manifests = helm
            .template("lw", &[&file], &["--namespace", &namespace.name])
            .unwrap_or_else(|err| panic!("ci/{name}.yaml: {err}"));
        let (custom, core): (Vec<_>, Vec<_>) = manifests
            .objects
            .into_iter()
            .partition(|o| CRD_KINDS.contains(&text(o, &["kind"]).unwrap_or_default()));
        let core = Manifests { objects: core };
        let stream: String = core
            .objects
            .iter()
            .map(|o| format!("---\n{}", serde_norway::to_string(o).expect("YAML")))
            .collect();
        let run = kubectl.run_with_input(
            [
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-n",
                &namespace.name,
                "-f",
                "-",
            ],
            &stream,
        );
        let out = run.expect_success(&format!("server-side validation of ci/{name}.yaml"));
        let accepted = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, core.objects.len(), "ci/{name}.yaml:\n{out}");
        let custom: Vec<&str> = custom.iter().filter_map(|o| text(o, &["kind"])).collect();
        match name.as_str() {
            "keda" => assert_eq!(
                custom,
                [
                    "ScaledObject",
                    "ScaledObject",
                    "TriggerAuthentication",
                    "TriggerAuthentication"
                ],
                "ci/keda.yaml"
            ),
            _ => assert!(custom.is_empty(), "ci/{name}.yaml: {custom:?}"),
        }
    }
    // The check can fail: an unknown field is refused with the API server's words.
    let run = kubectl.run_with_input(
        [
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-n",
            &namespace.name,
            "-f",
            "-",
        ],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nbogus: 1\n",
    );
    assert!(!run.success);
    assert!(
        run.stderr.contains("unknown field \"bogus\""),
        "{}",
        run.stderr
    );
}

#[test]
fn install_scale_test_and_uninstall() {
    let kubectl = Kubectl::from_env();
    let namespace = kubectl.namespace("chart-install");
    let ns = namespace.name.as_str();
    let helm = helm(&kubectl);
    let release = unique("lw");
    let chart = chart();
    let out = helm
        .run([
            "install".as_ref(),
            release.as_ref(),
            chart.as_os_str(),
            "-n".as_ref(),
            ns.as_ref(),
            "--wait".as_ref(),
            "--timeout".as_ref(),
            "3m".as_ref(),
        ])
        .expect_success("helm install --wait");
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains(&format!(
            "logwarden 0.1.0 is installed as release {release} in namespace {ns}."
        )),
        "NOTES:\n{out}"
    );
    assert!(
        out.contains(&format!("helm test {release} -n {ns}")),
        "NOTES:\n{out}"
    );

    // Every Deployment is available with the replicas the chart sets.
    let deployments = items(&kubectl, ns, &["deployments"]);
    let mut names: Vec<&str> = deployments
        .iter()
        .map(|d| str_of(d, "/metadata/name"))
        .collect();
    names.sort_unstable();
    let name = |component: &str| format!("{release}-{component}");
    assert_eq!(names, [name("detector"), name("sink"), name("transformer")]);
    for deployment in &deployments {
        let n = str_of(deployment, "/metadata/name");
        assert_eq!(u64_of(deployment, "/spec/replicas"), 2, "{n}");
        assert_eq!(u64_of(deployment, "/status/availableReplicas"), 2, "{n}");
    }

    // The hook Jobs completed, the topics before the services were created and the
    // provisioner after they were ready, and nothing of them is left.
    let created = |kind: &str, name: &str| {
        str_of(
            &kubectl.json(&["get", kind, name, "-n", ns]),
            "/metadata/creationTimestamp",
        )
        .to_owned()
    };
    let deployed_at = created("deployment", &name("transformer"));
    let topics = events_of(&kubectl, ns, "Job", &name("topics"));
    let completed = |events: &[(String, String)]| {
        events
            .iter()
            .find(|(reason, _)| reason == "Completed")
            .map(|(_, at)| at.clone())
    };
    let topics_done = completed(&topics).unwrap_or_else(|| panic!("topics Job events: {topics:?}"));
    assert!(
        topics_done <= deployed_at,
        "topics done {topics_done}, services created {deployed_at}"
    );
    let provisioner = events_of(&kubectl, ns, "Job", &name("provisioner"));
    assert!(
        completed(&provisioner).is_some(),
        "provisioner Job events: {provisioner:?}"
    );
    let started = provisioner
        .iter()
        .find(|(reason, _)| reason == "SuccessfulCreate")
        .map(|(_, at)| at.clone())
        .unwrap_or_else(|| panic!("provisioner Job events: {provisioner:?}"));
    assert!(
        started >= deployed_at,
        "provisioner started {started}, services created {deployed_at}"
    );
    let jobs: Vec<Json> = items(&kubectl, ns, &["jobs"]);
    assert!(jobs.is_empty(), "hook Jobs left: {jobs:?}");
    let mut configmaps: Vec<String> = items(&kubectl, ns, &["configmaps"])
        .iter()
        .map(|c| str_of(c, "/metadata/name").to_owned())
        .collect();
    configmaps.sort();
    assert_eq!(configmaps, ["kube-root-ca.crt".to_owned(), name("config")]);

    // Scaled by hand, the transformer gets three ready pods.
    kubectl
        .run([
            "scale",
            &format!("deployment/{}", name("transformer")),
            "--replicas=3",
            "-n",
            ns,
        ])
        .expect_success("kubectl scale");
    wait_ready(&kubectl, ns, &name("transformer"), 3);

    // helm test: its Job ran to completion (and, having succeeded, was deleted).
    let out = helm
        .run(["test", &release, "-n", ns, "--timeout", "3m"])
        .expect_success("helm test");
    assert!(
        out.contains(&format!("TEST SUITE:     {}", name("test"))),
        "{out}"
    );
    assert!(out.contains("Phase:          Succeeded"), "{out}");
    assert!(items(&kubectl, ns, &["jobs"]).is_empty());

    uninstall_leaves_nothing(&kubectl, &helm, ns, &release);
}

#[test]
fn upgrade_keeps_the_replicas_autoscaling_set_and_resets_the_rest() {
    let kubectl = Kubectl::from_env();
    let namespace = kubectl.namespace("chart-upgrade");
    let ns = namespace.name.as_str();
    let helm = helm(&kubectl);
    let release = unique("lw");
    let name = |component: &str| format!("{release}-{component}");
    let chart = chart();
    let values = ci("autoscaling");
    let install = |verb: &str, extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            verb.into(),
            release.clone().into(),
            chart.clone().into(),
            "-n".into(),
            ns.into(),
            "-f".into(),
            values.clone().into(),
            "--wait".into(),
            "--timeout".into(),
            "3m".into(),
        ];
        args.extend(extra.iter().map(Into::into));
        helm.run(&args).expect_success(&format!("helm {verb}"))
    };
    install("install", &[]);
    // The HPA (ci/autoscaling.yaml: 2 to 4 transformers) lifts the transformer to its minimum.
    let hpa = kubectl.json(&["get", "hpa", &name("transformer"), "-n", ns]);
    assert_eq!(
        (
            u64_of(&hpa, "/spec/minReplicas"),
            u64_of(&hpa, "/spec/maxReplicas")
        ),
        (2, 4)
    );
    wait_ready(&kubectl, ns, &name("transformer"), 2);

    // Within its range, nothing overrides a hand-set count; the detector is not autoscaled.
    for (deployment, replicas) in [(name("transformer"), "4"), (name("detector"), "3")] {
        kubectl
            .run([
                "scale",
                &format!("deployment/{deployment}"),
                &format!("--replicas={replicas}"),
                "-n",
                ns,
            ])
            .expect_success("kubectl scale");
    }
    wait_ready(&kubectl, ns, &name("transformer"), 4);
    wait_ready(&kubectl, ns, &name("detector"), 3);
    let template_before = kubectl.json(&["get", "deployment", &name("transformer"), "-n", ns]);

    // An upgrade that changes the config rolls the pods...
    let out = install("upgrade", &["--set", "telemetry.logLevel=debug"]);
    assert!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 2"),
        "{out}"
    );
    let after = kubectl.json(&["get", "deployment", &name("transformer"), "-n", ns]);
    assert_ne!(
        str_of(
            &template_before,
            "/spec/template/metadata/annotations/checksum~1config"
        ),
        str_of(
            &after,
            "/spec/template/metadata/annotations/checksum~1config"
        ),
        "the config change did not reach the pod template"
    );
    // ...keeps the autoscaled transformer's 4, and puts the detector back to the chart's 2.
    assert_eq!(u64_of(&after, "/spec/replicas"), 4);
    wait_ready(&kubectl, ns, &name("transformer"), 4);
    wait_ready(&kubectl, ns, &name("detector"), 2);
    // The upgrade's hooks ran again and were deleted.
    assert!(items(&kubectl, ns, &["jobs"]).is_empty());

    uninstall_leaves_nothing(&kubectl, &helm, ns, &release);
}
