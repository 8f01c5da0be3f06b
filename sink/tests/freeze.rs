//! The stack's OpenSearch itself stopped for 30 seconds mid-stream (SIGSTOP, then SIGCONT: the
//! process does not run at all, every request hangs until the sink's request timeout) and started
//! again: the sink holds back, retries, and resumes by itself; the index ends with exactly the
//! expected documents, and the sink was never restarted.
//!
//! This test binary has this one test: cargo runs test binaries one after another, so no other
//! test is talking to OpenSearch while it is stopped. OpenSearch's current pid comes from the
//! stack tooling (`pipeline::testkit::faults`, through `cargo xtask test`).

mod common;

use std::time::Duration;

use common::Search;
use pipeline::testkit;
use pipeline::testkit::faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_stopped_for_30_s_mid_stream_loses_and_duplicates_nothing() {
    const RECORDS: usize = 15_000;
    let search = Search::require().await;
    let kafka = testkit::kafka_with_private_topics("sink-freeze", 2).await;
    let index = common::unique_index("sink-freeze");
    let payloads = common::enriched(&common::raw_records(RECORDS, 13), &kafka.topics.raw);
    let mut settings = common::sink_settings(&kafka, &search.url, &index);
    settings.request_timeout = Duration::from_secs(5);
    let sink = common::start_sink(settings).await;
    // 500 records/s for 30 s: records keep arriving while OpenSearch is stopped.
    let stream = common::stream(&kafka, &kafka.topics.enriched, payloads, 50);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while search.count(&index).await < 1_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink never started indexing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = search.count(&index).await;
    let frozen = faults::freeze_opensearch();
    eprintln!("OpenSearch frozen with {before} of {RECORDS} documents indexed");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = sink.metrics.render();
    let (ready, why) = sink.metrics.health.report();
    tokio::time::sleep(Duration::from_secs(10)).await;
    frozen.resume();

    let count = search
        .wait_for_count(&index, RECORDS as u64, Duration::from_secs(120))
        .await;
    stream.await.expect("the stream ends");
    let after = sink.metrics.render();
    let metrics = sink.stop().await;
    search.clean(&index).await;

    common::assert_outage_survived(&common::Outage {
        records: RECORDS,
        before,
        during,
        ready_during: (ready, why),
        count,
        after,
        last: metrics,
    });
}
