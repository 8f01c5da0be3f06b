//! Event time under live traffic through the whole pipeline: one partition's sender runs 6 s
//! behind the other's (a skewed partition, within the window delay of 10 s), and two records
//! stamped far ahead (2090, and six hours ahead) arrive in the middle of it. Scoring goes on to
//! the end of the traffic, the detector's memory stays flat, and every scored interval holds
//! exactly what OpenSearch's date histogram holds; the two records are counted as future and
//! are either indexed or dead-lettered, never dropped silently.
//!
//! (`detector/tests/event_time.rs` proves the same for the detector alone, on `enriched`; this
//! one adds the transformer, the sink and OpenSearch's histogram as the judge.) This binary
//! holds this one test, so its memory reading is the detector's and the test's only.

use std::collections::BTreeSet;
use std::time::Duration;

use faults::traffic::{self, Lane};
use faults::{Pipeline, Shape};
use pipeline::testkit::faults::resident_mib;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_record_and_a_skewed_partition_leave_scoring_and_sums_intact() {
    let mut pipeline = Pipeline::start(
        "event-time",
        Shape {
            rate: 150,
            interval_ms: 2_000,
            window_delay_ms: 10_000,
            request_timeout_ms: 10_000,
        },
    )
    .await;
    pipeline.wait_ready().await;
    let duration = Duration::from_secs(50);
    let on_time = Lane {
        partition: Some(0),
        skew_ms: 0,
    };
    let behind = Lane {
        partition: Some(1),
        skew_ms: -6_000,
    };
    let steady = traffic::start_in(&pipeline.kafka, on_time, 100, duration, 31);
    let skewed = traffic::start_in(&pipeline.kafka, behind, 50, duration, 37);
    pipeline.start_detector_on_traffic().await;
    let memory_before = resident_mib();

    let far = chrono::DateTime::parse_from_rfc3339("2090-01-01T00:00:00Z")
        .map(|t| t.timestamp_millis())
        .expect("a date");
    let ahead = traffic::now_ms() + 6 * 3_600_000;
    let poison = BTreeSet::from([
        traffic::send_one(&pipeline.kafka, 0, far, 41).await,
        traffic::send_one(&pipeline.kafka, 0, ahead, 43).await,
    ]);

    let sent = steady
        .await
        .expect("the traffic ends")
        .and(skewed.await.expect("the skewed traffic ends"));
    let mut verdict = faults::settle_with(&mut pipeline, sent, &poison).await;
    let memory_after = resident_mib();
    let future = pipeline
        .detector()
        .metric("logwarden_detector_future_events_total");
    if future != 2.0 {
        verdict.failures.push(format!(
            "{future} records counted as future, not the 2 sent"
        ));
    }
    if memory_after >= memory_before + 200 {
        verdict.failures.push(format!(
            "memory grew: {memory_before} MiB → {memory_after} MiB"
        ));
    }
    eprintln!("memory {memory_before} MiB → {memory_after} MiB");
    verdict.conclude(pipeline).await;
}
