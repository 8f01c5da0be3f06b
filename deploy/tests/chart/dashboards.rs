//! The Grafana dashboards: their JSON checked as far as Grafana can be without Grafana (it is on
//! no registry this project reaches), and their ConfigMaps for Grafana's sidecar.

use std::collections::BTreeSet;

use deploy::observe::{self, Dashboard};
use serde_json::Value as Json;

use super::*;

/// Grafana's unit ids the dashboards may use (from Grafana's value formats: misc, time, data,
/// throughput).
const UNITS: &[&str] = &[
    "none",
    "short",
    "percent",
    "percentunit",
    "s",
    "ms",
    "bytes",
    "ops",
    "reqps",
    "cps",
];

/// The lowest schema version the dashboards may declare (Grafana 9's, with `timeseries`).
const SCHEMA_VERSION: u64 = 36;

fn number(value: &Json, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a whole number in {value}"))
}

#[test]
fn the_dashboards_are_the_pipeline_and_the_anomalies() {
    let dashboards = observe::dashboards();
    let titles: Vec<(&str, &str, &str)> = dashboards
        .iter()
        .map(|d| {
            (
                d.file.as_str(),
                d.json["title"].as_str().unwrap_or_default(),
                d.json["uid"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        [
            (
                "anomalies.json",
                "logwarden anomalies",
                "logwarden-anomalies"
            ),
            ("pipeline.json", "logwarden pipeline", "logwarden-pipeline"),
        ]
    );
}

#[test]
fn every_dashboard_has_a_valid_structure() {
    for dashboard in observe::dashboards() {
        let problems = structure_problems(&dashboard);
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            dashboard.file,
            problems.join("\n")
        );
    }
}

#[test]
fn the_structure_check_finds_each_kind_of_problem() {
    let mut broken = observe::dashboards().remove(0);
    let panels = broken.json["panels"].as_array_mut().expect("panels");
    let first = panels
        .iter()
        .position(|p| p["type"] != "row")
        .expect("a panel");
    let second = panels[first + 1..]
        .iter()
        .position(|p| p["type"] != "row")
        .map(|i| i + first + 1)
        .expect("another panel");
    let third = panels[second + 1..]
        .iter()
        .position(|p| p["type"] != "row")
        .map(|i| i + second + 1)
        .expect("a third panel");
    panels[second]["id"] = panels[first]["id"].clone();
    panels[second]["gridPos"] = panels[first]["gridPos"].clone();
    panels[third]["gridPos"]["x"] = 20.into();
    panels[first]["fieldConfig"]["defaults"]["unit"] = "furlongs".into();
    panels[first]["targets"][0]["expr"] = "".into();
    panels[first]["targets"][0]["refId"] = "Z".into();
    panels[second]["targets"][0]["expr"] = r#"up{pod=~"$pod"}"#.into();
    let problems = structure_problems(&broken).join("\n");
    for expected in [
        "duplicate panel id",
        "beyond 24 columns",
        "overlaps",
        "unknown unit \"furlongs\"",
        "target Z has no expr",
        "undefined variable $pod",
    ] {
        assert!(problems.contains(expected), "{expected}: {problems}");
    }
}

/// What is wrong with a dashboard's model, one line each.
fn structure_problems(dashboard: &Dashboard) -> Vec<String> {
    let json = &dashboard.json;
    let mut problems = Vec::new();
    if json["schemaVersion"].as_u64().unwrap_or(0) < SCHEMA_VERSION {
        problems.push(format!("schemaVersion below {SCHEMA_VERSION}"));
    }
    for key in ["uid", "title"] {
        if json[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("no {key}"));
        }
    }
    let variables = dashboard.variables();
    let names: BTreeSet<&str> = variables.iter().map(|(n, _, _)| n.as_str()).collect();
    if !variables
        .iter()
        .any(|(n, kind, query)| n == "datasource" && kind == "datasource" && query == "prometheus")
    {
        problems.push("no `datasource` variable of Prometheus data sources".to_owned());
    }
    for wanted in ["namespace", "job"] {
        if !names.contains(wanted) {
            problems.push(format!("no `{wanted}` variable"));
        }
    }
    for (name, kind, query) in &variables {
        if kind == "query" && observe::label_values(query).is_none() {
            problems.push(format!(
                "variable {name}: not a label_values() query: {query}"
            ));
        }
    }
    let mut ids = BTreeSet::new();
    let mut placed: Vec<(u64, [u64; 4])> = Vec::new();
    for panel in dashboard.panels() {
        let id = number(panel, "id");
        if !ids.insert(id) {
            problems.push(format!("duplicate panel id {id}"));
        }
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| number(grid, k));
        if w == 0 || h == 0 || x + w > 24 {
            problems.push(format!(
                "panel {id}: gridPos {grid} beyond 24 columns or empty"
            ));
        }
        for (other, [ox, oy, ow, oh]) in &placed {
            if x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h {
                problems.push(format!("panel {id} overlaps panel {other}"));
            }
        }
        placed.push((id, [x, y, w, h]));
        if panel["type"] == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != "${datasource}" {
            problems.push(format!("panel {id}: datasource is not ${{datasource}}"));
        }
        let unit = panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default();
        if !UNITS.contains(&unit) {
            problems.push(format!("panel {id}: unknown unit {unit:?}"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel {id}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for target in &targets {
            let reference = target["refId"].as_str().unwrap_or_default();
            if !refs.insert(reference.to_owned()) {
                problems.push(format!("panel {id}: duplicate refId {reference}"));
            }
            if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("panel {id}: target {reference} has no expr"));
            }
        }
    }
    for query in dashboard.queries() {
        for used in observe::variables_used(&query.expr) {
            if !names.contains(used.as_str())
                && !observe::BUILTIN_VARIABLES.contains(&used.as_str())
            {
                problems.push(format!("{}: undefined variable ${used}", query.place));
            }
        }
    }
    problems
}

#[test]
fn the_dashboards_read_only_metrics_the_services_register() {
    let sources = super::monitoring::service_sources();
    let mut missing = BTreeSet::new();
    for dashboard in observe::dashboards() {
        for query in dashboard.queries() {
            for name in observe::metric_names(&query.expr) {
                // A histogram's series are its name and _bucket, _sum, _count.
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                let registered = format!("\"{}\"", base.trim_start_matches("logwarden_"));
                if !sources.contains(&registered) {
                    missing.insert(format!("{name} ({})", query.place));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no service registers:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_dashboards_are_configmaps_for_grafanas_sidecar_when_enabled() {
    let helm = Helm::from_env();
    let defaults = render(&helm, "defaults");
    assert_eq!(
        defaults
            .of_kind("ConfigMap")
            .filter(|c| { text(c, &["metadata", "name"]).is_some_and(|n| n.contains("dashboard")) })
            .count(),
        0,
        "off by default"
    );
    let with = render(&helm, "monitoring");
    for dashboard in observe::dashboards() {
        let stem = dashboard.file.trim_end_matches(".json");
        let configmap = with.get("ConfigMap", &format!("lw-dashboard-{stem}"));
        assert_eq!(
            text(configmap, &["metadata", "labels", "grafana_dashboard"]),
            Some("1")
        );
        assert_eq!(annotation(configmap, "grafana_folder"), Some("logwarden"));
        let held = text(configmap, &["data", &dashboard.file]).expect("the dashboard's key");
        let file = std::fs::read_to_string(
            deploy::helm::chart()
                .join("dashboards")
                .join(&dashboard.file),
        )
        .expect("read");
        assert_eq!(held, file.trim_end(), "{}", dashboard.file);
    }
}
