//! The Prometheus rules with Prometheus' own tool: `promtool check rules` and `promtool test
//! rules` (the unit tests beside the rule file: input series, the alerts expected, and the cases
//! where each alert must not fire) on the plain rule file, and the same on the PrometheusRule
//! the chart renders from it.

use std::path::Path;
use std::process::Command;

use deploy::helm::Helm;
use deploy::manifests::get;
use deploy::observe::{self, Rule};

/// Runs promtool with `args` in `dir`: whether it succeeded, and what it printed.
fn run_promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(observe::promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("running promtool: {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs promtool with `args` in `dir`; its output, or a panic showing it.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let (success, text) = run_promtool(dir, args);
    assert!(success, "promtool {} failed:\n{text}", args.join(" "));
    text
}

/// `promtool check rules` and `promtool test rules` in `dir`, which holds `logwarden.rules.yaml`
/// and the unit tests.
fn check_and_test(dir: &Path) {
    let checked = promtool(dir, &["check", "rules", "logwarden.rules.yaml"]);
    let count = observe::file_rules().len();
    assert!(
        checked.contains(&format!("SUCCESS: {count} rules found")),
        "{checked}"
    );
    let tested = promtool(dir, &["test", "rules", "logwarden.rules.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn the_rule_file_passes_promtool_check_and_its_unit_tests() {
    let dir = observe::rules_file()
        .parent()
        .map(Path::to_path_buf)
        .expect("the rules' directory");
    check_and_test(&dir);
    let rules = observe::file_rules();
    let alerts: Vec<&str> = rules
        .iter()
        .filter(|r| r.alert)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "LogwardenServiceDown",
            "LogwardenConsumerLagGrowing",
            "LogwardenScoringBehind",
            "LogwardenSinkBackpressure",
            "LogwardenDeadLettersRising",
            "LogwardenDetectorNoActiveLease",
            "LogwardenDetectorShardUnheld",
            "LogwardenDetectorNoData",
            "LogwardenAlertDeliveryFailing",
        ]
    );
    // Every alert has a case where it fires and one where it must not, in the unit tests.
    let tests = std::fs::read_to_string(observe::rules_tests()).expect("the unit tests");
    for alert in alerts {
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|case| case.starts_with(&format!("{alert}\n")))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []"))
                && cases.iter().any(|c| c.contains("exp_labels")),
            "{alert} needs a case where it fires and one where it does not"
        );
    }
}

#[test]
fn a_broken_threshold_fails_the_unit_tests() {
    // The unit tests can fail: with the lag threshold ten times higher, the lag alert's case
    // expecting it to fire fails.
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = std::fs::read_to_string(observe::rules_file()).expect("the rules");
    assert!(
        rules.contains("}) > 10000"),
        "the lag alert's threshold moved"
    );
    std::fs::write(
        dir.path().join("logwarden.rules.yaml"),
        rules.replace("}) > 10000", "}) > 100000"),
    )
    .expect("write");
    std::fs::copy(
        observe::rules_tests(),
        dir.path().join("logwarden.rules.test.yaml"),
    )
    .expect("copy");
    let (success, text) = run_promtool(dir.path(), &["test", "rules", "logwarden.rules.test.yaml"]);
    assert!(!success, "{text}");
    assert!(
        text.contains("alertname: LogwardenConsumerLagGrowing, time: 20m"),
        "{text}"
    );
}

#[test]
fn the_charts_prometheus_rule_passes_the_same_unit_tests() {
    // Release `logwarden` in namespace `logwarden`: the Services are logwarden-<service>, the
    // series the unit tests feed carry exactly those jobs and that namespace.
    let helm = Helm::from_env();
    let manifests = helm
        .template(
            "logwarden",
            &[],
            &[
                "--namespace",
                "logwarden",
                "--api-versions",
                "monitoring.coreos.com/v1",
            ],
        )
        .expect("renders");
    let rule = manifests.get("PrometheusRule", "logwarden");
    let groups = get(rule, &["spec", "groups"]).expect("spec.groups");
    let rendered = observe::rules(groups);
    let plain = observe::file_rules();
    // The same rules in the same order, each selector narrowed to the release's namespace.
    let names = |rules: &[Rule]| -> Vec<(String, bool)> {
        rules.iter().map(|r| (r.name.clone(), r.alert)).collect()
    };
    assert_eq!(names(&rendered), names(&plain));
    for (rendered, plain) in rendered.iter().zip(&plain) {
        let narrowed = plain.expr.replace(
            r#"job=~"logwarden-"#,
            r#"namespace="logwarden", job=~"logwarden-"#,
        );
        assert_eq!(rendered.expr, narrowed, "{}", rendered.name);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = serde_norway::to_string(&serde_norway::Mapping::from_iter([(
        "groups".into(),
        groups.clone(),
    )]))
    .expect("YAML");
    std::fs::write(dir.path().join("logwarden.rules.yaml"), file).expect("write");
    std::fs::copy(
        observe::rules_tests(),
        dir.path().join("logwarden.rules.test.yaml"),
    )
    .expect("copy");
    check_and_test(dir.path());
}
