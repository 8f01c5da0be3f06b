//! AWS SigV4 for Amazon OpenSearch Service, as far as it can be tested without AWS: the
//! provisioner, configured with `opensearch.aws_sigv4` and credentials in the standard `AWS_*`
//! variables, signs its requests (a loopback server records what arrives): an
//! `AWS4-HMAC-SHA256` authorization for the access key, region and service, signed host and
//! date headers, the session token, and never the secret key. Without credentials it stops at
//! start-up naming the variables.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use pipeline::testkit::Process;

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");
const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

async fn recorder() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .fallback(|State(seen): State<Seen>, headers: HeaderMap| async move {
            seen.lock().expect("seen").push(headers);
            (
                [("content-type", "application/json")],
                r#"{"status":"green","timed_out":false,"version":{"number":"3.6.0"}}"#,
            )
        })
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

// Multi-threaded: the recording server keeps serving while the test waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_signed_with_sigv4_for_the_region_and_service() {
    let (url, seen) = recorder().await;
    let (_, output) = Process::start(
        BINARY,
        &["plan", "--url", &url, "--wait", "2s", "--target", "builtin"],
        &[
            ("LOGWARDEN_OPENSEARCH__AWS_SIGV4__REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDLOGWARDENTEST"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", "session-token-for-the-test"),
        ],
    )
    .wait(Duration::from_secs(60));
    let requests = seen.lock().expect("seen").clone();
    assert!(!requests.is_empty(), "no request arrived:\n{output}");
    for headers in &requests {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let authorization = header("authorization");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDLOGWARDENTEST/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/es/aws4_request"),
            "{authorization}"
        );
        let signed = authorization
            .split("SignedHeaders=")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_default();
        for name in ["host", "x-amz-date"] {
            assert!(signed.split(';').any(|h| h == name), "{authorization}");
        }
        let signature = authorization
            .rsplit("Signature=")
            .next()
            .unwrap_or_default();
        assert_eq!(signature.len(), 64, "{authorization}");
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(header("x-amz-security-token"), "session-token-for-the-test");
        assert!(!header("x-amz-date").is_empty());
        for (_, value) in headers {
            assert!(!value.to_str().unwrap_or_default().contains(SECRET_KEY));
        }
    }
    assert!(!output.contains(SECRET_KEY), "{output}");
}

#[tokio::test]
async fn without_credentials_it_stops_naming_the_variables() {
    let (code, output) = Process::start(
        BINARY,
        &[
            "plan",
            "--url",
            "https://search.example.com",
            "--wait",
            "2s",
        ],
        &[
            ("LOGWARDEN_OPENSEARCH__AWS_SIGV4__REGION", "eu-west-1"),
            // Empty counts as unset, whatever the test's own environment holds.
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
        ],
    )
    .wait(Duration::from_secs(30));
    assert_ne!(code, Some(0), "{output}");
    assert!(
        output.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{output}"
    );
}
