//! Exactly-once through a rebalance: two transformer processes in one consumer group, the second
//! started and then the first stopped while records stream in. A `read_committed` reader of
//! `enriched` sees exactly the event ids of the records on `raw`, each once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use pipeline::testkit;
use pipeline::wire::event_id;
use rdkafka::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_holds_when_a_replica_joins_and_another_leaves_mid_stream() {
    const RECORDS: usize = 30_000;
    let kafka = testkit::kafka_with_private_topics("transformer-rebalance", 4).await;
    let payloads: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| serde_json::to_vec(&common::record(i)).expect("json"))
        .collect();
    let (head, tail) = payloads.split_at(5_000);
    common::produce_raw(&kafka, head).await;

    // A short session: the stopped replica (a static member, which does not leave the group on
    // close) hands its partitions over within seconds rather than librdkafka's default 45 s.
    // Transactions of up to a second: the rebalance lands inside an open one.
    let config = std::env::temp_dir().join(format!(
        "{}transformer.yaml",
        testkit::unique_name("rebalance")
    ));
    std::fs::write(
        &config,
        "kafka:\n  properties:\n    session.timeout.ms: \"6000\"\ntransformer:\n  transaction_ms: 1000\n",
    )
    .expect("config file");
    let group = testkit::unique_name("rebalance-group");
    let spawn = |instance: &str| {
        common::binary(&kafka, &group, instance, "exactly_once")
            .arg("--config")
            .arg(&config)
            .spawn()
            .expect("the transformer binary starts")
    };

    let mut first = spawn("rebalance-0");
    common::wait_for_size(&kafka, &kafka.topics.enriched, 2_000).await;
    // The rest streams in while the group changes: 250 records every 100 ms.
    let streaming = {
        let kafka = kafka.clone();
        let tail: Vec<Vec<u8>> = tail.to_vec();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for chunk in tail.chunks(250) {
                tick.tick().await;
                common::produce_raw(&kafka, chunk).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut second = spawn("rebalance-1");
    // Let the group rebalance onto both, with records flowing, then stop the first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stopped = common::sigterm_and_wait(&mut first);
    streaming.await.expect("the records are produced");

    let out = testkit::consume(
        &kafka,
        &kafka.topics.enriched,
        RECORDS,
        Duration::from_secs(120),
        Duration::from_secs(3),
    )
    .await;
    let inputs = testkit::consume(
        &kafka,
        &kafka.topics.raw,
        RECORDS,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    let last = common::sigterm_and_wait(&mut second);
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;
    let _ = std::fs::remove_file(&config);

    assert!(stopped.success(), "the first drains and exits 0: {stopped}");
    assert!(last.success(), "the second drains and exits 0: {last}");
    let expected: BTreeSet<String> = inputs
        .iter()
        .map(|m| event_id(m.topic(), m.partition(), m.offset()))
        .collect();
    assert_eq!(expected.len(), RECORDS);
    let ids = common::by_event_id(&out);
    let missing = expected.difference(&ids.keys().cloned().collect()).count();
    assert_eq!(
        (out.len(), ids.len(), missing),
        (RECORDS, RECORDS, 0),
        "(outputs, distinct event ids, inputs without an output): each input exactly once"
    );
}
