//! Prometheus Operator objects, the alert rules' metrics, Grafana dashboards.

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
