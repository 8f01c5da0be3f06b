//! The cluster `cargo xtask k8s up` runs is what the chart tests need: a real API server with
//! two Ready (fake) nodes, controllers that roll out and scale Deployments and complete Jobs,
//! and server-side validation that rejects unknown fields. kwok fakes the kubelet: pods are
//! scheduled and marked Running and Ready, no container runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// kubectl against the test cluster.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn from_env() -> Self {
        Self {
            bin: deploy::tool("XTASK_KUBECTL", "cargo xtask k8s up"),
            kubeconfig: deploy::tool("XTASK_KUBECONFIG", "cargo xtask k8s up"),
        }
    }

    /// Runs kubectl with `args`, feeding it `stdin`.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.bin.display()));
        let mut input = child.stdin.take().expect("stdin is piped");
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .expect("write kubectl's stdin");
        drop(input);
        child.wait_with_output().expect("wait for kubectl")
    }

    /// Runs kubectl and returns its stdout; fails the test with its stderr if it fails.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A namespace of the test's own, deleted when dropped (also when the test fails).
struct Namespace<'a> {
    kubectl: &'a Kubectl,
    name: String,
}

impl<'a> Namespace<'a> {
    fn create(kubectl: &'a Kubectl, prefix: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}-{}-{nanos}", std::process::id());
        kubectl.ok(&["create", "namespace", &name]);
        Self { kubectl, name }
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self.kubectl.run(
            &[
                "delete",
                "namespace",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

fn deployment(name: &str, replicas: u32, extra_container_field: &str) -> String {
    format!(
        r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: main
          image: registry.invalid/logwarden-kwok-test:1
          {extra_container_field}
"
    )
}

const JOB: &str = r"apiVersion: batch/v1
kind: Job
metadata:
  name: once
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: registry.invalid/logwarden-kwok-test:1
";

/// Pods labelled `app=<app>` whose Ready condition is True.
fn ready_pods(kubectl: &Kubectl, namespace: &str, app: &str) -> usize {
    let json = kubectl.ok(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        &format!("app={app}"),
        "-o",
        "json",
    ]);
    let pods: serde_json::Value = serde_json::from_str(&json).expect("pods as JSON");
    pods["items"]
        .as_array()
        .expect("a pod list")
        .iter()
        .filter(|pod| {
            pod["status"]["conditions"]
                .as_array()
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
}

#[test]
fn deployments_scale_and_jobs_complete_on_two_ready_nodes() {
    let kubectl = Kubectl::from_env();
    let nodes = kubectl.ok(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ]);
    assert_eq!(
        nodes.lines().collect::<Vec<_>>(),
        ["True", "True"],
        "two Ready nodes"
    );

    let ns = Namespace::create(&kubectl, "kwok-test");
    let n = ns.name.as_str();
    kubectl.ok_with(
        &["apply", "-n", n, "-f", "-"],
        Some(&deployment("web", 1, "")),
    );
    kubectl.ok(&["rollout", "status", "-n", n, "deploy/web", "--timeout=90s"]);
    assert_eq!(ready_pods(&kubectl, n, "web"), 1);

    kubectl.ok(&["scale", "-n", n, "deploy/web", "--replicas=3"]);
    kubectl.ok(&["rollout", "status", "-n", n, "deploy/web", "--timeout=90s"]);
    let ready = kubectl.ok(&[
        "get",
        "-n",
        n,
        "deploy/web",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "3");
    assert_eq!(ready_pods(&kubectl, n, "web"), 3);

    kubectl.ok_with(&["apply", "-n", n, "-f", "-"], Some(JOB));
    kubectl.ok(&[
        "wait",
        "-n",
        n,
        "--for=condition=complete",
        "job/once",
        "--timeout=90s",
    ]);
    let succeeded = kubectl.ok(&[
        "get",
        "-n",
        n,
        "job/once",
        "-o",
        "jsonpath={.status.succeeded}",
    ]);
    assert_eq!(succeeded, "1");

    let name = ns.name.clone();
    kubectl.ok(&["delete", "namespace", &name, "--timeout=90s"]);
    let gone = kubectl.run(&["get", "namespace", &name], None);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains(&format!("namespaces \"{name}\" not found")),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn the_api_server_rejects_unknown_fields() {
    let kubectl = Kubectl::from_env();
    let ns = Namespace::create(&kubectl, "kwok-validate");
    let n = ns.name.as_str();
    let strict = [
        "apply",
        "-n",
        n,
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
    ];

    let typo = kubectl.run(
        &strict,
        Some(&deployment("typo", 1, "imagePullPolcy: Always")),
    );
    assert!(!typo.status.success(), "a misspelt field must be refused");
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(
        stderr.contains(
            r#"strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolcy""#
        ),
        "{stderr}"
    );

    let fine = kubectl.ok_with(
        &strict,
        Some(&deployment("typo", 1, "imagePullPolicy: Always")),
    );
    assert_eq!(fine.trim(), "deployment.apps/typo created (server dry run)");
    let listed = kubectl.ok(&["get", "deployments", "-n", n, "-o", "name"]);
    assert_eq!(listed, "", "a dry run creates nothing");
}
