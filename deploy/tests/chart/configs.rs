//! Rendered config files against the binaries' own loaders and defaults.

use super::*;

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
            "logwarden-detector read",
            "logwarden-detector run",
            "logwarden-ingest --config",
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
