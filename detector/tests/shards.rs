//! Scaled out on the real stack: four detectors split into two shards, scored by detector
//! processes that share them. One replica alone holds both shards; a second one joining takes
//! one over (the first hands it back, checkpointed), and each then scores only its own shard's
//! detectors; after `kill -9` of the first, the second takes its shard over from its last
//! checkpoint. In the end every detector has exactly one result per interval, equal to
//! OpenSearch's sum over the same interval, with no interval missing, across both hand-overs.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::replica::{Replica, spec_file};
use pipeline::kafka::KafkaConfig;
use pipeline::testkit;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use serde_json::json;

const INTERVAL_MS: i64 = 1_000;
const LEASE_MS: u64 = 3_000;
/// Each detector sums one of these indicators.
const FIELDS: [&str; 4] = ["UNK_country", "B_action", "B_httpstatus", "UNK_source"];

fn spec(name: &str) -> String {
    let mut spec = format!(
        "events: {name}events\nresults: {name}results\ncheckpoints: {name}checkpoints\ndetectors:\n"
    );
    for field in FIELDS {
        spec.push_str(&format!(
            "  - name: {field}-sum\n    feature: {{field: {field}}}\n    interval: 1s\n    \
             window_delay: 1500ms\n    model: {{history: 0, baseline: 10}}\n"
        ));
    }
    spec
}

/// Sends 10 records every 100 ms until `stop`, each with every indicator drawn at random;
/// counts them in `sent`.
async fn traffic(kafka: KafkaConfig, sent: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    let producer: FutureProducer = kafka.producer_config("shards").create().expect("producer");
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut round = 0_usize;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let payloads: Vec<Vec<u8>> = (0..10)
            .map(|i| {
                let mut record =
                    json!({"@timestamp": now, "event_id": format!("shards-{round}-{i}")});
                for field in FIELDS {
                    record[field] = json!(u8::from(rng.random_bool(0.3)));
                }
                serde_json::to_vec(&record).expect("json")
            })
            .collect();
        common::send(&producer, &kafka.topics.enriched, &payloads).await;
        sent.fetch_add(payloads.len(), Ordering::SeqCst);
        round += 1;
    }
}

/// Waits (up to `within`) until each replica holds the given number of shards
/// (`logwarden_detector_active`); how long that took.
async fn wait_holding(
    http: &reqwest::Client,
    replicas: &[(&Replica, f64)],
    within: Duration,
) -> Duration {
    let started = tokio::time::Instant::now();
    let deadline = started + within;
    loop {
        let mut held = Vec::new();
        for (replica, _) in replicas {
            held.push(replica.metric(http, "logwarden_detector_active").await);
        }
        let wanted: Vec<f64> = replicas.iter().map(|(_, n)| *n).collect();
        if held == wanted {
            return started.elapsed();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "shards held: {held:?}, waited for {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The detectors a replica has scored intervals of (`logwarden_detector_intervals_scored_total`).
async fn scored_detectors(http: &reqwest::Client, replica: &Replica) -> BTreeSet<String> {
    replica
        .samples(http, "logwarden_detector_intervals_scored_total")
        .await
        .into_iter()
        .filter(|(_, count)| *count > 0.0)
        .filter_map(|(labels, _)| {
            let name = labels.split("detector=\"").nth(1)?.split('"').next()?;
            Some(name.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_shards_and_one_takes_all_over_after_a_kill_9() {
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("shards", 2).await;
    let name = testkit::unique_name("shards");
    let http = reqwest::Client::new();
    let events = format!("{name}events");
    let spec = spec_file(&name, &spec(&name));
    let shards = [("LOGWARDEN_DETECTOR__SHARDS", "2")];
    let (sink_stop, sink) = common::run_sink(&kafka, &url, &events).await;

    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producing = tokio::spawn(traffic(kafka.clone(), Arc::clone(&sent), Arc::clone(&stop)));

    // Alone, the first replica holds both shards.
    let mut a = Replica::start_with(&kafka, &url, &spec, "shards-a", LEASE_MS, &shards);
    a.process
        .wait_for("Detecting.", Duration::from_secs(90))
        .await;
    wait_holding(&http, &[(&a, 2.0)], Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a_alone = scored_detectors(&http, &a).await;

    // A second one joins: one shard each.
    let mut b = Replica::start_with(&kafka, &url, &spec, "shards-b", LEASE_MS, &shards);
    b.process.wait_for("Standby", Duration::from_secs(60)).await;
    let shared_after = wait_holding(&http, &[(&a, 1.0), (&b, 1.0)], Duration::from_secs(60)).await;
    eprintln!("B on standby; one shard each {shared_after:?} later");
    let a_scored_before = scored_detectors(&http, &a).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let b_shared = scored_detectors(&http, &b).await;
    let a_counts_before = a
        .samples(&http, "logwarden_detector_intervals_scored_total")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_counts_after = a
        .samples(&http, "logwarden_detector_intervals_scored_total")
        .await;
    // What A went on scoring while B held the other shard.
    let a_shared: BTreeSet<String> = a_counts_after
        .iter()
        .filter(|(labels, count)| {
            a_counts_before
                .iter()
                .find(|(l, _)| l == labels)
                .is_none_or(|(_, before)| count > before)
        })
        .filter_map(|(labels, _)| {
            Some(
                labels
                    .split("detector=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .to_owned(),
            )
        })
        .collect();

    // A dies: B takes its shard over.
    a.process.signal("KILL");
    let taken_after = wait_holding(&http, &[(&b, 2.0)], Duration::from_secs(30)).await;
    eprintln!("kill -9 of A; B held both shards {taken_after:?} later");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let b_all = scored_detectors(&http, &b).await;

    stop.store(true, Ordering::SeqCst);
    producing.await.expect("the traffic ends");
    let sent = sent.load(Ordering::SeqCst);
    common::wait_indexed(&http, &url, &events, sent).await;
    // The last intervals close by the clock once the stream is idle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, output) = b.process.terminate();
    drop(a);
    sink_stop.cancel();
    let _ = sink.await;

    let mut checked = Vec::new();
    for field in FIELDS {
        let detector = format!("{field}-sum");
        let results = common::results(
            &http,
            &url,
            &format!("{name}results"),
            json!({"term": {"detector_id": detector}}),
        )
        .await;
        let expected = common::sums(&http, &url, &events, Some(field), INTERVAL_MS).await;
        checked.push((detector, results, expected));
    }
    common::clean(
        &http,
        &url,
        &[
            format!("{events}*"),
            format!("{name}results"),
            format!("{name}checkpoints"),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&spec);

    let every: BTreeSet<String> = FIELDS.iter().map(|f| format!("{f}-sum")).collect();
    assert_eq!(a_alone, every, "alone, A scored every detector");
    assert_eq!(
        a_shared.len() + b_shared.len(),
        every.len(),
        "shared, each scored its own shard: A {a_shared:?}, B {b_shared:?}"
    );
    assert!(
        a_shared.is_disjoint(&b_shared) && !a_shared.is_empty() && !b_shared.is_empty(),
        "A {a_shared:?} and B {b_shared:?} split the detectors"
    );
    assert_eq!(a_scored_before, every);
    assert_eq!(b_all, every, "after the kill, B scored every detector");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("Holding the lease of a shard"),
        "B's log says it took shards:\n{output}"
    );
    for (detector, results, expected) in &checked {
        eprintln!("{detector}: {} results", results.len());
        common::assert_sums(results, expected, INTERVAL_MS, 15);
    }
}
