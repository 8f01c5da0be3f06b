//! OpenSearch unreachable for 30 seconds mid-stream: the sink holds back (back-pressure, `/readyz`
//! not ready), keeps retrying, and resumes by itself; the index ends with exactly the expected
//! documents, and the sink was never restarted.
//!
//! The outage is made by a TCP relay of the test's own in front of the stack's OpenSearch: the
//! sink talks to the relay, and the relay stops listening and drops every open connection for
//! 30 s, which is what the sink sees when OpenSearch stops (connections refused and reset). The
//! stack's OpenSearch itself stays up, so the other tests running in parallel are not disturbed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Search;
use pipeline::testkit;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A TCP relay to `upstream` that can be cut (refusing and resetting) and restored.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let up = Arc::new(AtomicBool::new(true));
        let server = tokio::spawn(serve(listener, upstream, up.clone()));
        Self { port, up, server }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops listening and resets every open connection.
    async fn cut(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        self.server.abort();
        let _ = (&mut self.server).await;
    }

    /// Listens again on the same port.
    async fn restore(&mut self, upstream: String) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the relay's port");
        self.up.store(true, Ordering::SeqCst);
        self.server = tokio::spawn(serve(listener, upstream, self.up.clone()));
    }
}

/// Relays every connection; aborting this task drops the listener and every connection with it.
async fn serve(listener: TcpListener, upstream: String, up: Arc<AtomicBool>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        if !up.load(Ordering::SeqCst) {
            continue;
        }
        let upstream = upstream.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_unreachable_for_30_s_mid_stream_loses_and_duplicates_nothing() {
    const RECORDS: usize = 15_000;
    const RATE_PER_100MS: usize = 50;
    let _ = pipeline::telemetry::init_logging(&pipeline::telemetry::TelemetryConfig::default());
    let search = Search::require().await;
    let upstream = search
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let kafka = testkit::kafka_with_private_topics("sink-outage", 2).await;
    let index = common::unique_index("sink-outage");
    let payloads = common::enriched(&common::raw_records(RECORDS, 11), &kafka.topics.raw);

    let mut relay = Relay::start(upstream.clone()).await;
    let mut settings = common::sink_settings(&kafka, &relay.url(), &index);
    settings.request_timeout = Duration::from_secs(5);
    let sink = common::start_sink(settings).await;

    // A steady stream: 500 records/s for 30 s, so records keep arriving through the outage.
    let stream = common::stream(&kafka, &kafka.topics.enriched, payloads, RATE_PER_100MS);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while search.count(&index).await < 1_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink never started indexing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    relay.cut().await;
    let before = search.count(&index).await;
    eprintln!("OpenSearch cut off with {before} of {RECORDS} documents indexed");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = sink.metrics.render();
    let (ready, why) = sink.metrics.health.report();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after_outage = search.count(&index).await;
    relay.restore(upstream).await;
    eprintln!("OpenSearch reachable again; {after_outage} documents indexed meanwhile");

    let count = search
        .wait_for_count(&index, RECORDS as u64, Duration::from_secs(120))
        .await;
    stream.await.expect("the stream ends");
    let after = sink.metrics.render();
    let (ready_after, _) = sink.metrics.health.report();
    let metrics = sink.stop().await;
    search.clean(&index).await;

    assert_eq!(
        before, after_outage,
        "nothing reached OpenSearch while it was cut off"
    );
    assert!(ready_after, "ready again after the outage");
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
