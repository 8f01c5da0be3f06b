//! Prometheus Operator objects, the alert rules' metrics, Grafana dashboards.

use deploy::observe;

use super::*;

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
    // The rule file's alerts (deploy/tests/rules.rs names them).
    let alerts: Vec<&str> = rules.iter().filter_map(|r| text(r, &["alert"])).collect();
    let file_alerts: Vec<String> = observe::file_rules()
        .into_iter()
        .filter(|r| r.alert)
        .map(|r| r.name)
        .collect();
    assert_eq!(alerts, file_alerts);
    let expr = |alert: &str| {
        rules
            .iter()
            .find(|r| text(r, &["alert"]) == Some(alert))
            .and_then(|r| text(r, &["expr"]))
            .expect("expr")
    };
    // ci/monitoring.yaml's thresholds, in place of the rule file's defaults.
    for (alert, threshold) in [
        ("LogwardenScoringBehind", ") > 300)"),
        ("LogwardenDeadLettersRising", "])) > 10"),
        ("LogwardenConsumerLagGrowing", "}) > 5000\n"),
        ("LogwardenDetectorNoData", "}) >= 3"),
    ] {
        assert!(expr(alert).contains(threshold), "{alert}: {}", expr(alert));
    }
    assert!(
        expr("LogwardenServiceDown").contains(
            r#"namespace="default", job=~"lw-(transformer|sink|detector|detector-reader|producer|ingest)""#
        ),
        "{}",
        expr("LogwardenServiceDown")
    );
    // Every logwarden_ metric the rules use is one a service registers (without the prefix,
    // which the registry adds).
    let sources = service_sources();
    let mut used = BTreeSet::new();
    for rule in &rules {
        let expr = text(rule, &["expr"]).expect("expr");
        for name in observe::metric_names(expr) {
            let registered = format!("\"{}\"", name.trim_start_matches("logwarden_"));
            assert!(
                sources.contains(&registered),
                "{} uses {name}, which no service registers",
                text(rule, &["alert"])
                    .or(text(rule, &["record"]))
                    .unwrap_or("?")
            );
            used.insert(name);
        }
    }
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "logwarden_detector_active",
            "logwarden_detector_alerts_failed_total",
            "logwarden_detector_alerts_pending",
            "logwarden_detector_dead_letters_total",
            "logwarden_detector_empty_intervals",
            "logwarden_detector_reader_dead_letters_total",
            "logwarden_detector_scored_until_seconds",
            "logwarden_detector_shards",
            "logwarden_kafka_consumer_lag_records",
            "logwarden_sink_backpressure",
            "logwarden_sink_dead_letters_total",
            "logwarden_sink_records_in_total",
            "logwarden_transformer_dead_letters_total",
            "logwarden_transformer_records_in_total",
            "logwarden_transformer_records_out_total",
        ]
    );
}

#[test]
fn a_threshold_missing_from_its_rule_fails_the_render() {
    let helm = Helm::from_env();
    let copy = tempfile::tempdir().expect("temp dir");
    copy_dir(&deploy::helm::chart(), copy.path());
    let rules = copy.path().join("rules/logwarden.rules.yaml");
    let text = std::fs::read_to_string(&rules).expect("read");
    std::fs::write(&rules, text.replace("}) > 10000", "}) > 20000")).expect("write");
    let err = helm
        .template_chart(
            copy.path(),
            RELEASE,
            &[],
            &["--api-versions", "monitoring.coreos.com/v1"],
        )
        .expect_err("refused");
    assert!(
        err.contains(
            "rules/logwarden.rules.yaml: LogwardenConsumerLagGrowing no longer holds its threshold `> 10000`"
        ),
        "{err}"
    );
}

/// The Rust sources of the services, concatenated.
pub(super) fn service_sources() -> String {
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
    for crate_dir in [
        "pipeline",
        "transformer",
        "sink",
        "detector",
        "producer",
        "ingest",
    ] {
        walk(&deploy::workspace().join(crate_dir).join("src"), &mut out);
    }
    out
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
