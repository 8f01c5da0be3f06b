//! No secret is ever shown: with a distinctive secret in every place one can be given (the Kafka
//! SASL password, the OpenSearch password, the alert channel's webhook URL), nothing the
//! `logwarden-sink` binary prints or serves shows one, through `--help`, start-up, its telemetry
//! endpoints, SIGTERM, and a start-up the broker refuses (`pipeline::testkit::assert_keeps_secrets`).

use pipeline::testkit;

#[tokio::test]
async fn no_secret_appears_in_output_endpoints_or_errors() {
    let name = testkit::unique_name("secrets");
    let (index, group) = (format!("{name}events"), format!("{name}group"));
    testkit::assert_keeps_secrets(
        env!("CARGO_BIN_EXE_logwarden-sink"),
        &[],
        Some("Loading OpenSearch."),
        &[
            ("LOGWARDEN_SINK__INDEX", &index),
            ("LOGWARDEN_SINK__GROUP_ID", &group),
        ],
    )
    .await;
    let url = testkit::opensearch_url();
    let http = reqwest::Client::new();
    let _ = http.delete(format!("{url}/{index}*")).send().await;
    testkit::delete_index_templates(&url, &index).await;
}
