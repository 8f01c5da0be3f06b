//! The `logwarden-ingest` binary as an operator runs it: no secret (a token among them) is ever
//! shown, and a bad config stops start-up naming the key and the fix.

use std::time::Duration;

use pipeline::testkit::{self, Process, TEST_SECRETS};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-ingest");

#[tokio::test]
async fn no_secret_appears_in_output_endpoints_or_errors() {
    testkit::assert_keeps_secrets(
        BINARY,
        &[],
        Some("Serving HEC, Firehose and NDJSON."),
        &[
            ("LOGWARDEN_INGEST__HTTP__LISTEN", "127.0.0.1:0"),
            (
                "LOGWARDEN_INGEST__TOKENS__FORWARDERS__TOKEN",
                TEST_SECRETS[1],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_bad_config_stops_start_up_naming_the_key() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[],
            "config key `ingest.tokens` is empty while ingest.http is on",
        ),
        (
            &[(
                "LOGWARDEN_INGEST__TOKENS__A__ENV",
                "LOGWARDEN_SECRET_UNSET_TOKEN",
            )],
            "config key `ingest.tokens.a.env` names `LOGWARDEN_SECRET_UNSET_TOKEN`, which is not set",
        ),
        (
            &[
                ("LOGWARDEN_INGEST__TOKENS__A__TOKEN", TEST_SECRETS[1]),
                ("LOGWARDEN_INGEST__ACK_TIMEOUT_MS", "60000"),
            ],
            "config key `ingest.ack_timeout_ms` (60000) is longer than the drain deadline",
        ),
    ];
    for (env, expected) in cases {
        let (code, output) = Process::start(BINARY, &[], env).wait(Duration::from_secs(30));
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains(expected), "{env:?}: {output}");
        assert!(!output.contains(TEST_SECRETS[1]), "{output}");
    }
}
