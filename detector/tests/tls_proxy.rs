//! The detector through a real TLS-terminating, authenticating proxy (Debian's nginx) in front of
//! the stack's OpenSearch: with the right CA and password it starts and detects; a wrong password
//! and an untrusted CA stop it at start-up with a clear error that shows no secret.

use std::time::Duration;

use pipeline::testkit::{self, AuthProxy, PROXY_PASSWORD, PROXY_USER, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-detector");

fn spec_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{name}spec.yaml"));
    std::fs::write(
        &path,
        format!(
            "events: {name}events\nresults: {name}results\ncheckpoints: {name}checkpoints\n\
             detectors:\n  - name: country\n    feature: {{field: UNK_country}}\n    \
             interval: 1s\n    model: {{history: 0, baseline: 10}}\n"
        ),
    )
    .expect("write the spec");
    path
}

async fn detector(proxy: &AuthProxy, password: &str, ca: &std::path::Path) -> Process {
    let kafka = testkit::kafka_with_private_topics("detector-proxy", 1).await;
    let name = testkit::unique_name("detector-proxy");
    let spec = spec_file(&name).display().to_string();
    let ca = ca.display().to_string();
    Process::start(
        BINARY,
        &["run"],
        &[
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            ("LOGWARDEN_OPENSEARCH__URL", &proxy.basic_url),
            ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
            ("LOGWARDEN_OPENSEARCH__PASSWORD", password),
            ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
            ("LOGWARDEN_DETECTOR__SPEC", &spec),
            ("LOGWARDEN_TELEMETRY__LISTEN", "127.0.0.1:0"),
        ],
    )
}

#[tokio::test]
async fn the_detector_starts_through_tls_and_basic_auth() {
    let proxy = AuthProxy::start().await;
    let mut running = detector(&proxy, PROXY_PASSWORD, &proxy.ca).await;
    running
        .wait_for("Detecting.", Duration::from_secs(60))
        .await;
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains(PROXY_PASSWORD), "{output}");
}

#[tokio::test]
async fn a_wrong_password_and_an_untrusted_ca_stop_the_detector_at_start_up() {
    let proxy = AuthProxy::start().await;
    for refusal in proxy.refusals() {
        let (code, output) = detector(&proxy, refusal.password, &refusal.ca)
            .await
            .wait(Duration::from_secs(60));
        refusal.assert_stopped(code, &output);
    }
}
