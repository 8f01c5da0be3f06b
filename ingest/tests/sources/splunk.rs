//! Splunk HEC end to end with a real HEC client: PyPI's `splunk-hec-handler` (a Python logging
//! handler that POSTs each record to `/services/collector/event` with `Authorization: Splunk
//! <token>`; installed by `cargo xtask test`), logging each generated event with its time, host,
//! source and sourcetype; then Kafka, the transformer's default rules, the sink and OpenSearch,
//! and the default spec's HEC detectors: a burst of error-level events must alert.

use std::process::Stdio;

use crate::common::TOKEN;
use crate::run::{Feed, Run};
use pipeline::wire::Source;
use tokio::io::AsyncWriteExt;

/// Logs each envelope read from stdin (one JSON object per line) through the handler, at the
/// Python level matching its event's level; exits non-zero on the first refused request.
const CLIENT: &str = r#"
import json, logging, sys
from splunk_hec_handler import SplunkHecHandler

def refused(record):
    raise SystemExit("the HEC request failed")

handler = SplunkHecHandler("127.0.0.1", sys.argv[2], port=int(sys.argv[1]), proto="http")
handler.handleError = refused
log = logging.getLogger("logwarden-e2e")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)
levels = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO,
          "warn": logging.WARNING, "warning": logging.WARNING, "error": logging.ERROR,
          "err": logging.ERROR, "critical": logging.CRITICAL, "crit": logging.CRITICAL,
          "fatal": logging.CRITICAL}
for line in sys.stdin:
    envelope = json.loads(line)
    event = dict(envelope["event"])
    level = event.get("severity") or event.get("level") or event.get("log_level")
    event["time"] = envelope["time"]
    event["fields"] = {k: envelope[k] for k in ("host", "source", "sourcetype", "index")}
    log.log(levels[level.lower()], event)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_errors_sent_by_a_hec_client_is_indexed_and_alerts() {
    let python = std::env::var("XTASK_HEC_PYTHON").unwrap_or_else(|_| {
        panic!(
            "XTASK_HEC_PYTHON is not set: run the suite with `cargo xtask test` (it installs \
             PyPI's splunk-hec-handler)"
        )
    });
    let run = Run::start("sources-splunk", Source::Splunk, &[]).await;
    let port = run.ingest.bound.http.expect("http").port().to_string();
    let mut client = tokio::process::Command::new(&python)
        .args(["-c", CLIENT, &port, TOKEN])
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("starting {python}: {err}"));
    let mut stdin = client.stdin.take().expect("stdin");
    let mut feed = Feed::new(Source::Splunk, "hec_error");
    while let Some(batch) = feed.next_batch().await {
        let lines: String = batch.iter().map(|r| format!("{}\n", r.line)).collect();
        stdin
            .write_all(lines.as_bytes())
            .await
            .expect("the client reads");
    }
    drop(stdin);
    let status = client.wait().await.expect("the client ends");
    assert!(status.success(), "the HEC client failed: {status}");
    run.check_and_stop(&feed).await;
}
