//! No secret is ever shown: with a distinctive secret in every place one can be given (the Kafka
//! SASL password, the OpenSearch password, the alert channel's webhook URL), nothing the
//! `logwarden-provisioner` binary prints or serves shows one, through `--help`, start-up, its telemetry
//! endpoints, SIGTERM, and a start-up the broker refuses (`pipeline::testkit::assert_keeps_secrets`).

use pipeline::testkit;

#[tokio::test]
async fn no_secret_appears_in_output_endpoints_or_errors() {
    testkit::assert_keeps_secrets(
        env!("CARGO_BIN_EXE_logwarden-provisioner"),
        &["plan", "--wait", "10s"],
        None,
        &[],
    )
    .await;
}
