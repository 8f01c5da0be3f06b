//! The broker restarted mid-stream (gracefully, by the stack tooling, same data and ports) while
//! the transformer, the sink and the detector run: nothing is lost and nothing doubled
//! downstream. Every record acknowledged into `raw` is in OpenSearch under its own id and no
//! other, the detector scored every interval once with exactly what OpenSearch's date histogram
//! holds, and steady traffic raised no anomaly.
//!
//! This binary holds this one test: the broker it restarts is every test's.

use std::time::Duration;

use faults::{Pipeline, Shape, traffic};
use pipeline::testkit::faults::{Server, Stop, restart};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_doubles_nothing() {
    let mut pipeline = Pipeline::start(
        "broker-restart",
        Shape {
            rate: 200,
            interval_ms: 2_000,
            window_delay_ms: 15_000,
            request_timeout_ms: 10_000,
        },
    )
    .await;
    pipeline.wait_ready().await;
    let traffic = traffic::start(&pipeline.kafka, 200, Duration::from_secs(55), 17);
    pipeline.start_detector_on_traffic().await;
    let took = restart(Server::Kafka, Stop::Graceful).await;
    let sent = traffic.await.expect("the traffic ends");
    let verdict = faults::settle(&mut pipeline, sent).await;
    eprintln!("the broker restarted in {took:?}");
    verdict.conclude(pipeline).await;
}
