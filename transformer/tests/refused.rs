//! An output the broker refuses for good, in a delivery report: `enriched` is a compacted topic,
//! which takes no record without a key, and the inputs have none. Each output becomes a dead
//! letter (`produce_refused`, the broker's reason), the partition moves on, the service stays up.
//! In exactly-once the refusal aborts its transaction, and the inputs are dead letters (each
//! once, for a `read_committed` reader) when processed again.

mod common;

use std::time::Duration;

use pipeline::testkit;
use pipeline::wire::{DeadLetter, DeadLetterReason};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use transformer::settings::{Guarantee, RawConfig, Settings, TransformerConfig};

#[tokio::test]
async fn outputs_the_broker_refuses_for_good_are_dead_letters_and_the_partition_moves_on() {
    refused_outputs_become_dead_letters(Guarantee::AtLeastOnce).await;
}

#[tokio::test]
async fn in_exactly_once_too_refused_outputs_are_dead_letters_each_once() {
    refused_outputs_become_dead_letters(Guarantee::ExactlyOnce).await;
}

async fn refused_outputs_become_dead_letters(guarantee: Guarantee) {
    const RECORDS: usize = 50;
    let kafka = testkit::kafka_with_private_topics("transformer-refused", 1).await;
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config("transformer-refused-test")
        .create()
        .expect("admin client");
    let altered = admin
        .alter_configs(
            &[
                AlterConfig::new(ResourceSpecifier::Topic(&kafka.topics.enriched))
                    .set("cleanup.policy", "compact"),
            ],
            &AdminOptions::new(),
        )
        .await
        .expect("alter configs");
    assert!(altered.iter().all(Result::is_ok), "{altered:?}");

    // Records without a key.
    let producer: FutureProducer = kafka
        .producer_config("transformer-refused-raw")
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        let payload = serde_json::to_vec(&common::record(i)).expect("json");
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to(&kafka.topics.raw).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }

    let raw = RawConfig {
        kafka: kafka.clone(),
        transformer: TransformerConfig {
            group_id: testkit::unique_name("transformer-refused-group"),
            guarantee,
            ..TransformerConfig::default()
        },
        ..RawConfig::default()
    };
    let settings = Settings::from_raw(raw, Some("test-0".into())).expect("valid settings");
    let (service, shutdown) = testkit::service("transformer").await;
    let task = tokio::spawn(async move {
        let result = transformer::service::run(settings, &service).await;
        (
            result.map_err(|err| err.to_string()),
            service.telemetry.render(),
        )
    });
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        RECORDS,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    let stayed_up = !task.is_finished();
    shutdown.cancel();
    let (result, metrics) = task.await.expect("the service task ends");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert!(stayed_up, "the transformer stays up");
    assert_eq!(result, Ok(()), "and drains cleanly");
    assert_eq!(dead.len(), RECORDS, "one dead letter per input");
    let mut offsets: Vec<i64> = dead
        .iter()
        .map(|m| {
            let letter = DeadLetter::from_headers(m.headers().expect("headers"))
                .expect("dead-letter headers");
            assert_eq!(
                letter.reason,
                DeadLetterReason::ProduceRefused,
                "{}",
                letter.detail
            );
            assert!(
                letter.detail.contains(&kafka.topics.enriched),
                "names the topic: {}",
                letter.detail
            );
            letter.source.offset
        })
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..RECORDS as i64).collect::<Vec<_>>());
    assert!(
        metrics.contains(&format!(
            r#"logwarden_transformer_dead_letters_total{{reason="produce_refused"}} {RECORDS}"#
        )),
        "{metrics}"
    );
}
