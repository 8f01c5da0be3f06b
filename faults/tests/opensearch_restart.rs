//! OpenSearch killed (SIGKILL) and started again mid-stream by the stack tooling, while the
//! transformer, the sink and the detector run: the sink and the detector resume by themselves;
//! every record in `raw` is in OpenSearch once, the detector scored every interval once (no
//! gap) with exactly what OpenSearch's date histogram holds, and raised no anomaly. After the
//! outage the detector is stopped and started again while traffic goes on: it resumes from the
//! checkpoint written since (a restored model, no gap, sums still equal).
//!
//! This binary holds this one test: the OpenSearch it restarts is every test's.

use faults::{Pipeline, Shape};
use pipeline::testkit::faults::{Server, Stop, restart};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_killed_and_restarted_mid_stream_loses_and_doubles_nothing() {
    let (mut pipeline, traffic) = Pipeline::with_steady_traffic(
        "opensearch-restart",
        Shape {
            rate: 100,
            interval_ms: 2_000,
            window_delay_ms: 10_000,
            request_timeout_ms: 5_000,
        },
        19,
    )
    .await;
    let took = restart(Server::OpenSearch, Stop::Kill).await;
    let verdict = faults::restart_detector_then_settle(&mut pipeline, traffic).await;
    eprintln!("OpenSearch restarted in {took:?}");
    verdict.conclude(pipeline).await;
}
