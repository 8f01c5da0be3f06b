//! The users' CI workflow (.github/workflows/kind.yaml) cannot run here (it needs Docker, kind and
//! the internet); what can be checked is: actionlint accepts it, the values it installs the chart
//! with pass the chart's schema, and the manifests it applies are the ones it names.

use std::path::Path;
use std::process::{Command, Output};

use deploy::{tool, workspace};

fn actionlint(args: &[&str], dir: &Path) -> Output {
    Command::new(tool("XTASK_ACTIONLINT", "cargo xtask k8s tools"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running actionlint")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn actionlint_accepts_the_kind_workflow() {
    let output = actionlint(&["-no-color", ".github/workflows/kind.yaml"], &workspace());
    assert!(output.status.success(), "actionlint: {}", text(&output));
}

#[test]
fn actionlint_catches_a_broken_workflow() {
    // The check above is worth something only if actionlint reads the file: a typo in an
    // expression must fail it.
    let dir = std::env::temp_dir().join(format!("logwarden-actionlint-{}", std::process::id()));
    let workflows = dir.join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("temp dir");
    let broken = std::fs::read_to_string(workspace().join(".github/workflows/kind.yaml"))
        .expect("reading the workflow")
        .replace("${{ github.ref }}", "${{ github.reff }}");
    std::fs::write(workflows.join("kind.yaml"), broken).expect("writing");
    let output = actionlint(&["-no-color", ".github/workflows/kind.yaml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("property \"reff\" is not defined"),
        "{}",
        text(&output)
    );
}

#[test]
fn the_workflow_names_only_files_that_exist() {
    let root = workspace();
    let workflow =
        std::fs::read_to_string(root.join(".github/workflows/kind.yaml")).expect("workflow");
    let named: std::collections::BTreeSet<&str> = workflow
        .split_whitespace()
        .filter(|word| word.starts_with(".github/kind/") || *word == "docker/Dockerfile")
        .collect();
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        [
            ".github/kind/alert-receiver.yaml",
            ".github/kind/backfill.yaml",
            ".github/kind/kafka.yaml",
            ".github/kind/opensearch.yaml",
            ".github/kind/values.yaml",
            "docker/Dockerfile",
        ]
    );
    for path in [
        ".github/kind/alert-receiver.yaml",
        ".github/kind/backfill.yaml",
        ".github/kind/kafka.yaml",
        ".github/kind/opensearch.yaml",
        ".github/kind/values.yaml",
    ] {
        assert!(
            root.join(path).is_file(),
            "the workflow names {path}, which is missing"
        );
    }
}

#[test]
fn the_workflow_values_pass_the_chart_schema() {
    let root = workspace();
    let home = std::env::temp_dir().join(format!("logwarden-helm-home-{}", std::process::id()));
    let output = Command::new(tool("XTASK_HELM", "cargo xtask k8s tools"))
        .args([
            "lint",
            "--strict",
            "helm/logwarden",
            "-f",
            ".github/kind/values.yaml",
        ])
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .current_dir(&root)
        .output()
        .expect("running helm");
    let _ = std::fs::remove_dir_all(&home);
    assert!(output.status.success(), "helm lint: {}", text(&output));
}
