//! The provisioner through a real TLS-terminating, authenticating proxy (Debian's nginx) in front
//! of the stack's OpenSearch: with the right CA and credentials (basic auth, or a client
//! certificate) it plans; a wrong password, an untrusted CA and a password over plain http each
//! stop it at start-up with a clear error that shows no secret.

use std::time::Duration;

use pipeline::testkit::{self, AuthProxy, PROXY_PASSWORD, PROXY_USER, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");

fn plan(env: &[(&str, &str)]) -> (Option<i32>, String) {
    Process::start(BINARY, &["plan", "--wait", "5s"], env).wait(Duration::from_secs(60))
}

#[tokio::test]
async fn the_provisioner_plans_through_tls_with_basic_auth_or_a_client_certificate() {
    let proxy = AuthProxy::start().await;
    let ca = proxy.ca.display().to_string();
    let (code, output) = plan(&[
        ("LOGWARDEN_OPENSEARCH__URL", &proxy.basic_url),
        ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
        ("LOGWARDEN_OPENSEARCH__PASSWORD", PROXY_PASSWORD),
        ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
    ]);
    assert_eq!(code, Some(0), "basic auth over TLS:\n{output}");
    assert!(output.contains("target builtin"), "{output}");
    assert!(!output.contains(PROXY_PASSWORD), "{output}");

    let (certificate, key) = (
        proxy.client_certificate.display().to_string(),
        proxy.client_key.display().to_string(),
    );
    let (code, output) = plan(&[
        ("LOGWARDEN_OPENSEARCH__URL", &proxy.mtls_url),
        ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
        ("LOGWARDEN_OPENSEARCH__CERTIFICATE_FILE", &certificate),
        ("LOGWARDEN_OPENSEARCH__KEY_FILE", &key),
    ]);
    assert_eq!(code, Some(0), "a client certificate:\n{output}");
}

#[tokio::test]
async fn a_wrong_password_an_untrusted_ca_and_plain_http_fail_at_start_up() {
    let proxy = AuthProxy::start().await;
    for refusal in proxy.refusals() {
        let ca = refusal.ca.display().to_string();
        let (code, output) = plan(&[
            ("LOGWARDEN_OPENSEARCH__URL", &proxy.basic_url),
            ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
            ("LOGWARDEN_OPENSEARCH__PASSWORD", refusal.password),
            ("LOGWARDEN_OPENSEARCH__CA_FILE", &ca),
        ]);
        refusal.assert_stopped(code, &output);
    }

    let (code, output) = plan(&[
        ("LOGWARDEN_OPENSEARCH__URL", &testkit::opensearch_url()),
        ("LOGWARDEN_OPENSEARCH__USERNAME", PROXY_USER),
        ("LOGWARDEN_OPENSEARCH__PASSWORD", PROXY_PASSWORD),
    ]);
    assert_ne!(code, Some(0), "{output}");
    assert!(
        output.contains("plain http") && output.contains("opensearch.allow_insecure"),
        "{output}"
    );
    assert!(!output.contains(PROXY_PASSWORD), "{output}");
}
