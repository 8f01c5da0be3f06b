//! A detector on a topic without records says so: after its spec's `no_data_after` quiet
//! intervals, `/readyz` (still ready: 200) lists it in its `no_data` note and
//! `logwarden_detector_no_data{detector}` is 1; one record clears both.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::send;
use pipeline::testkit::{self, metrics};
use rdkafka::producer::FutureProducer;
use serde_json::json;

const DETECTOR: &str = "quiet-sum";

/// Polls `/readyz` and the gauge until `done` accepts them (60 s at most).
async fn wait_until(
    http: &reqwest::Client,
    telemetry: SocketAddr,
    what: &str,
    done: impl Fn(u16, &str, f64) -> bool,
) -> (u16, String, f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .get(format!("http://{telemetry}/readyz"))
            .send()
            .await
            .expect("/readyz answers");
        let status = response.status().as_u16();
        let body = response.text().await.expect("a body");
        let text = metrics::scrape(telemetry).await;
        let gauge = metrics::sample(
            &text,
            "logwarden_detector_no_data",
            &[("detector", DETECTOR)],
        )
        .unwrap_or(f64::NAN);
        if done(status, &body, gauge) {
            return (status, body, gauge);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: after 60 s, /readyz {status}:\n{body}\nno_data gauge {gauge}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_without_records_is_on_readyz_and_its_gauge_until_one_arrives() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("detector-no-data", 1).await;
    let name = testkit::unique_name("detector-no-data");
    let http = reqwest::Client::new();
    let spec = common::spec(&name, DETECTOR, "{field: UNK_country}", "200ms", None)
        .replace("    model:", "    no_data_after: 3\n    model:");
    let settings = common::settings(&kafka, &url, &spec, "no-data-0");
    assert_eq!(settings.spec.detectors[0].no_data_after, 3);
    let (service, stop) = testkit::service("detector").await;
    let telemetry = service.server.local_addr;
    let task = tokio::spawn(async move { detector::service::run(settings, &service).await });

    let (status, body, _) = wait_until(&http, telemetry, "flagged", |_, body, gauge| {
        gauge == 1.0 && body.contains("no_data: 1 detector without records: quiet-sum for ")
    })
    .await;
    assert_eq!(status, 200, "a note never makes /readyz fail:\n{body}");

    // One record, stamped in an interval still open.
    let producer: FutureProducer = kafka
        .producer_config("detector-no-data")
        .create()
        .expect("producer");
    let stamp = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let record = serde_json::to_vec(&json!({"@timestamp": stamp, "UNK_country": 1})).expect("json");
    send(&producer, &kafka.topics.enriched, &[record]).await;
    wait_until(&http, telemetry, "cleared", |status, body, gauge| {
        status == 200 && gauge == 0.0 && body.contains("no_data: none")
    })
    .await;

    stop.cancel();
    task.await
        .expect("the detector task")
        .expect("a clean stop");
    common::clean(
        &http,
        &url,
        &[
            format!("{name}results"),
            format!("{name}checkpoints"),
            format!("{name}events"),
        ],
    )
    .await;
}
