//! The broker restarted mid-stream (gracefully, by the stack tooling, same data and ports) while
//! the transformer, the sink and the detector run: nothing is lost and nothing doubled
//! downstream. Every record acknowledged into `raw` is in OpenSearch under its own id and no
//! other, the detector scored every interval once with exactly what OpenSearch's date histogram
//! holds, and steady traffic raised no anomaly.
//!
//! This binary holds this one test: the broker it restarts is every test's.

use std::time::Duration;

use faults::{Pipeline, Shape};
use pipeline::testkit::faults::{Server, Stop, restart};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_doubles_nothing() {
    let (mut pipeline, traffic) = Pipeline::with_steady_traffic(
        "broker-restart",
        Shape {
            rate: 200,
            interval_ms: 2_000,
            // Covers the outage and the catch-up after it (the restart alone takes 5-18 s here,
            // then librdkafka reconnects with backoff): a record later than this would be
            // counted late, not lost, and the sums would differ.
            window_delay_ms: 45_000,
            request_timeout_ms: 10_000,
        },
        17,
    )
    .await;
    let took = restart(Server::Kafka, Stop::Graceful).await;
    // Traffic goes on after the broker is back.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let sent = traffic.finish().await;
    let verdict = faults::settle(&mut pipeline, sent).await;
    eprintln!("the broker restarted in {took:?}");
    verdict.conclude(pipeline).await;
}
