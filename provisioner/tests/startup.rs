//! The default setup starts: `logwarden-provisioner plan` with the embedded default spec and
//! exactly the environment the README gives (the cluster's URL and the channel's secret in
//! `LOGWARDEN_SECRET_ALERT_WEBHOOK_URL`) plans against the local stack's real OpenSearch; a
//! misspelled config variable is still rejected, naming the key. A dry run changes nothing, so
//! the default names are safe to plan on the shared cluster.

use std::time::Duration;

use pipeline::testkit::{self, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");
const WEBHOOK: &str = "https://hooks.example.com/services/T000/B000/provisioner-startup";

#[tokio::test]
async fn the_default_spec_plans_with_the_readmes_environment() {
    let url = testkit::require_opensearch().await;
    let env = [
        ("LOGWARDEN_OPENSEARCH__URL", url.as_str()),
        ("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL", WEBHOOK),
    ];
    let (code, output) =
        Process::start(BINARY, &["plan", "--wait", "20s"], &env).wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("target builtin"), "{output}");
    for object in ["logwarden-events", "logwarden-anomaly-results"] {
        assert!(
            output.contains(object),
            "`{object}` missing from the plan:\n{output}"
        );
    }
    assert!(
        !output.contains("provisioner-startup"),
        "a secret was printed:\n{output}"
    );
}

#[tokio::test]
async fn a_misspelled_config_variable_is_still_rejected_naming_the_key() {
    let env = [
        ("LOGWARDEN_OPENSEARCH__URLL", "http://127.0.0.1:9200"),
        ("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL", WEBHOOK),
    ];
    let (code, output) = Process::start(BINARY, &["plan"], &env).wait(Duration::from_secs(30));
    assert_ne!(code, Some(0), "{output}");
    assert!(
        output.contains("config key `opensearch.urll` unknown field `urll`"),
        "{output}"
    );
    assert!(
        !output.contains("provisioner-startup"),
        "a secret was printed:\n{output}"
    );
}
