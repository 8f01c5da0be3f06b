//! OpenSearch frozen for two minutes mid-stream (SIGSTOP: the process does not run, every request
//! hangs until its timeout), then resumed, while the transformer, the sink and the detector run:
//! both resume by themselves; every record in `raw` is in OpenSearch once, the detector scored
//! every interval once (no gap) with exactly what OpenSearch's date histogram holds, and raised
//! no anomaly. After the freeze the detector is stopped and started again while traffic goes on:
//! it resumes from the checkpoint written since (a restored model, no gap, sums still equal).
//!
//! This binary holds this one test: the OpenSearch it freezes is every test's.

use std::time::Duration;

use faults::{Pipeline, Shape};
use pipeline::testkit::faults::freeze_opensearch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_frozen_for_two_minutes_mid_stream_loses_and_doubles_nothing() {
    let (mut pipeline, traffic) = Pipeline::with_steady_traffic(
        "opensearch-freeze",
        Shape {
            rate: 50,
            interval_ms: 2_000,
            window_delay_ms: 10_000,
            request_timeout_ms: 5_000,
        },
        29,
    )
    .await;
    let frozen = freeze_opensearch();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (sink_ready, sink_why) = pipeline.sink.telemetry.health.report();
    let frozen_for = frozen.resume();
    let mut verdict = faults::restart_detector_then_settle(&mut pipeline, traffic).await;
    if sink_ready || !sink_why.contains("opensearch") {
        verdict.failures.push(format!(
            "the sink's /readyz did not show the frozen OpenSearch: ready {sink_ready}, {sink_why}"
        ));
    }
    eprintln!("OpenSearch was frozen for {frozen_for:?}");
    verdict.conclude(pipeline).await;
}
