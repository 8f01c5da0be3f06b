//! The producer binary offline (`--output stdout`): reproducible output, labels to a file, and
//! start-up errors that name the bad value and the valid ones. No stack needed.

use std::process::{Command, Output};

/// Runs the binary with no `LOGWARDEN_*` or `RUST_LOG` from the caller: hermetic.
fn producer(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logwarden-producer"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LOGWARDEN_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.args(args).output().expect("the binary runs")
}

#[test]
fn the_shared_environment_of_all_services_is_accepted() {
    let out = Command::new(env!("CARGO_BIN_EXE_logwarden-producer"))
        .args(FIXED)
        .args(["--count", "3"])
        .env("LOGWARDEN_OPENSEARCH__URL", "http://127.0.0.1:1")
        .env("LOGWARDEN_KAFKA__BROKERS", "127.0.0.1:1")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 3);
}

const FIXED: [&str; 10] = [
    "--output",
    "stdout",
    "--seed",
    "42",
    "--start-ms",
    "1700000000000",
    "--run-id",
    "r",
    "--instance",
    "p0",
];

#[test]
fn the_same_seed_gives_identical_output() {
    let args: Vec<&str> = FIXED
        .iter()
        .copied()
        .chain(["--backfill", "2m", "--rate", "20"])
        .collect();
    let first = producer(&args);
    let second = producer(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(first.stdout.iter().filter(|b| **b == b'\n').count(), 2_400);
    assert_eq!(first.stdout, second.stdout);

    let other_seed: Vec<&str> = args
        .iter()
        .map(|a| if *a == "42" { "43" } else { a })
        .collect();
    assert_ne!(producer(&other_seed).stdout, first.stdout);
}

#[test]
fn labels_go_to_the_labels_file_not_into_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let labels = dir.path().join("labels.ndjson");
    let labels_arg = labels.to_str().expect("utf-8 path");
    let args: Vec<&str> = FIXED
        .iter()
        .copied()
        .chain([
            "--anomaly",
            "httpMethod",
            "--duration",
            "30s",
            "--rate",
            "10",
            "--labels-file",
            labels_arg,
        ])
        .collect();
    let out = producer(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 300);
    assert!(
        !text.contains("anomaly") && !text.contains("label"),
        "nothing gives the anomaly away"
    );
    let deletes = text
        .lines()
        .filter(|l| l.contains("\"httpMethod\":\"DELETE\""))
        .count();
    assert!(
        deletes > 200,
        "DELETE dominates an httpMethod anomaly: {deletes}/300"
    );

    let written = std::fs::read_to_string(&labels).expect("labels file");
    let label: serde_json::Value = serde_json::from_str(written.trim()).expect("one JSON label");
    assert_eq!(label["field"], "httpMethod");
    assert_eq!(label["start_ms"], 1_700_000_000_000_i64);
    assert_eq!(label["end_ms"], 1_700_000_030_000_i64);
    assert_eq!(label["run_id"], "r");
    assert_eq!(label["instance"], "p0");
}

#[test]
fn bad_values_fail_at_start_naming_the_value_and_the_valid_ones() {
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--anomaly", "colour"],
            &[
                "colour",
                "action, httpSourceName, httpStatus, country, httpMethod",
            ],
        ),
        (&["--rate=-5"], &["generator.rate", "-5"]),
        (&["--rate", "0"], &["generator.rate", "0"]),
        (
            &["--scenario", "/nonexistent/s.yaml"],
            &["/nonexistent/s.yaml"],
        ),
    ];
    for (args, needles) in cases {
        let all: Vec<&str> = ["--output", "stdout"].iter().chain(args).copied().collect();
        let out = producer(&all);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} produced records");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?}: `{needle}` not in: {stderr}"
            );
        }
    }
}

#[test]
fn the_shipped_example_scenario_is_valid_and_covers_every_field() {
    let path = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("scenarios/five-fields.yaml");
    let scenario = producer::scenario::Scenario::load(&path).expect("valid");
    let targets: Vec<_> = scenario
        .phases
        .iter()
        .filter_map(|p| match p.kind {
            producer::scenario::PhaseKind::Anomaly(field) => Some(field),
            _ => None,
        })
        .collect();
    assert_eq!(targets, pipeline::wire::MonitoredField::ALL);
    assert_eq!(
        scenario.duration(),
        Some(std::time::Duration::from_secs(45 * 60))
    );
}

#[test]
fn the_shipped_source_scenarios_are_valid_and_inject_their_sources_indicators() {
    for source in producer::indicators::GENERATED {
        let path = format!(
            "{}/scenarios/sources/{source}.yaml",
            std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
        );
        let scenario = producer::scenario::Scenario::load(std::path::Path::new(&path))
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(scenario.source, Some(source), "{path}");
        let injected: Vec<&str> = scenario
            .phases
            .iter()
            .filter_map(|p| match p.kind {
                producer::scenario::PhaseKind::Inject(indicator) => Some(indicator),
                _ => None,
            })
            .collect();
        assert_eq!(injected.len(), 2, "{path}");
    }
}

#[test]
fn a_source_run_prints_its_records_as_senders_send_them_and_labels_its_indicator() {
    let labels = std::env::temp_dir().join(format!("producer-cli-{}.ndjson", std::process::id()));
    let labels_arg = labels.display().to_string();
    let args: Vec<&str> = FIXED
        .iter()
        .copied()
        .chain(["--source", "syslog", "--anomaly", "syslog_auth_failure"])
        .chain(["--duration", "2s", "--rate", "50", "--backfill", "2s"])
        .chain(["--labels-file", &labels_arg])
        .collect();
    let out = producer(&args);
    let label = std::fs::read_to_string(&labels).unwrap_or_default();
    let _ = std::fs::remove_file(&labels);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 100);
    assert!(
        lines.iter().all(|l| l.starts_with('<') && l.contains('>')),
        "syslog lines: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("bastion-1 sshd[")),
        "the brute force is in RFC 3164 from the bastion"
    );
    let label: serde_json::Value = serde_json::from_str(label.trim()).expect("one label");
    assert_eq!(label["field"], "syslog_auth_failure");
    assert_eq!(label["end_ms"].as_i64(), Some(1_700_000_000_000));

    let out = producer(&[FIXED.as_slice(), &["--source", "ndjson"]].concat());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("generator.source"), "{stderr}");
}
