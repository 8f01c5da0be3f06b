//! The transformer service against the stack's real Kafka (`cargo xtask stack up`): records in,
//! enriched records out with the seed's indicators; bad input to `dead-letter` with its reason
//! while good records flow; `kill -9` and a restart lose nothing; exactly-once mode with a crash
//! shows a `read_committed` reader every output exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

mod common;

use common::{
    by_event_id, produce_raw, record, sigkill, sigterm_and_wait, spawn_binary, wait_for_size,
};
use pipeline::kafka::{KafkaConfig, topic_size};
use pipeline::testkit;
use pipeline::wire::{DeadLetter, DeadLetterReason};
use rdkafka::Message;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use transformer::settings::{Guarantee, RawConfig, Settings, TransformerConfig};

/// The seed's ten indicators for a record (K_/B_ action, K_/UNK_ source, G_/B_ httpstatus, K_/UNK_
/// country, common_/uncommon_ method: 1 when the value is in the seed's known or bad set), written
/// out independently of the rules engine.
fn expected_indicators(r: &Value) -> BTreeMap<&'static str, i64> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let action = s(&r["action"]);
    let source = s(&r["httpSourceName"]);
    let status: u16 = s(&r["httpStatus"]).parse().unwrap_or(0);
    let country = s(&r["httpRequest"]["country"]);
    let method = s(&r["httpRequest"]["httpMethod"]);
    let b = |x: bool| i64::from(x);
    BTreeMap::from([
        (
            "K_action",
            b(["ALLOW", "CAPTCHA", "Challenge", "Count"].contains(&action.as_str())),
        ),
        ("B_action", b(action == "BLOCK")),
        (
            "K_source",
            b(["ALB", "APIGW", "APPSYNC", "CF"].contains(&source.as_str())),
        ),
        (
            "UNK_source",
            b(!["ALB", "APIGW", "APPSYNC", "CF"].contains(&source.as_str())),
        ),
        ("G_httpstatus", b((200..400).contains(&status))),
        ("B_httpstatus", b((400..600).contains(&status))),
        (
            "K_country",
            b(["US", "UK", "IN"].contains(&country.as_str())),
        ),
        (
            "UNK_country",
            b(!["US", "UK", "IN"].contains(&country.as_str())),
        ),
        (
            "common_method",
            b(["GET", "HEAD", "POST"].contains(&method.as_str())),
        ),
        ("uncommon_method", b(method == "DELETE")),
    ])
}

fn settings(kafka: &KafkaConfig, guarantee: Guarantee) -> Settings {
    let raw = RawConfig {
        kafka: kafka.clone(),
        transformer: TransformerConfig {
            group_id: testkit::unique_name("transformer-group"),
            guarantee,
            ..TransformerConfig::default()
        },
        ..RawConfig::default()
    };
    Settings::from_raw(raw, Some("test-0".into())).expect("valid settings")
}

/// Runs the service in-process until the returned token is cancelled.
async fn start_in_process(
    settings: Settings,
) -> (CancellationToken, tokio::task::JoinHandle<String>) {
    let (service, shutdown) = testkit::service("transformer").await;
    let task = tokio::spawn(async move {
        transformer::service::run(settings, &service)
            .await
            .expect("service runs");
        service.telemetry.render()
    });
    (shutdown, task)
}

#[tokio::test]
async fn records_in_are_enriched_out_with_the_seed_indicators() {
    let kafka = testkit::kafka_with_private_topics("transformer-enrich", 4).await;
    let inputs: Vec<Value> = (0..2_000).map(record).collect();
    let payloads: Vec<Vec<u8>> = inputs
        .iter()
        .map(|r| serde_json::to_vec(r).expect("json"))
        .collect();
    produce_raw(&kafka, &payloads).await;

    let (shutdown, task) = start_in_process(settings(&kafka, Guarantee::AtLeastOnce)).await;
    let out = testkit::consume(
        &kafka,
        &kafka.topics.enriched,
        2_000,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    shutdown.cancel();
    let metrics = task.await.expect("service task");

    assert_eq!(out.len(), 2_000, "exactly one output per input");
    let mut seen = BTreeSet::new();
    for message in &out {
        let doc: Value = serde_json::from_str(testkit::payload_text(message)).expect("JSON");
        let request_id = doc["httpRequest"]["requestId"]
            .as_str()
            .expect("requestId kept");
        let i: usize = request_id
            .trim_start_matches("req-")
            .parse()
            .expect("index");
        let input = &inputs[i];
        for (name, value) in expected_indicators(input) {
            assert_eq!(doc[name], value, "{name} of {input}");
        }
        let expected_ms = input["timestamp"].as_i64().expect("ms");
        let stamp = doc["@timestamp"].as_str().expect("@timestamp");
        assert!(
            stamp.ends_with('Z') && stamp.len() == 24,
            "RFC 3339 with ms: {stamp}"
        );
        assert_eq!(doc["timestamp"], expected_ms, "original field kept");
        assert_eq!(
            doc["httpRequest"]["country"],
            input["httpRequest"]["country"]
        );
        let event_id = doc["event_id"].as_str().expect("event_id").to_owned();
        assert!(event_id.starts_with(&kafka.topics.raw), "{event_id}");
        assert!(seen.insert(event_id), "event ids are unique");
    }
    // 1_700_000_000_000 ms is 2023-11-14T22:13:20.000Z.
    let first = out
        .iter()
        .map(|m| serde_json::from_str::<Value>(testkit::payload_text(m)).expect("JSON"))
        .find(|d| d["timestamp"] == 1_700_000_000_000_i64)
        .expect("record 0");
    assert_eq!(first["@timestamp"], "2023-11-14T22:13:20.000Z");
    assert!(
        metrics.contains("logwarden_transformer_records_in_total 2000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logwarden_transformer_records_out_total 2000"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_input_goes_to_dead_letter_with_its_reason_while_good_records_flow() {
    let kafka = testkit::kafka_with_private_topics("transformer-dlq", 1).await;
    let mut missing_country = record(1);
    missing_country["httpRequest"]
        .as_object_mut()
        .expect("object")
        .remove("country");
    let mut bad_timestamp = record(2);
    bad_timestamp["timestamp"] = json!(-5);
    let mut wrong_type = record(3);
    wrong_type["httpRequest"] = json!("not an object");
    let mut oversized = record(4);
    oversized["httpRequest"]["args"] = json!("x".repeat(20_000));
    let bad: Vec<(Vec<u8>, DeadLetterReason)> = vec![
        (vec![0xff, 0xfe, b'{', b'}'], DeadLetterReason::NotUtf8),
        (b"this is not json".to_vec(), DeadLetterReason::NotJson),
        (b"[1, 2, 3]".to_vec(), DeadLetterReason::NotObject),
        (
            serde_json::to_vec(&missing_country).expect("json"),
            DeadLetterReason::MissingField,
        ),
        (
            serde_json::to_vec(&bad_timestamp).expect("json"),
            DeadLetterReason::BadTimestamp,
        ),
        (
            serde_json::to_vec(&wrong_type).expect("json"),
            DeadLetterReason::WrongType,
        ),
        (
            serde_json::to_vec(&oversized).expect("json"),
            DeadLetterReason::Oversized,
        ),
    ];
    // Good, bad, good, bad, ...: the partition must move on past each bad record.
    let mut payloads = Vec::new();
    for (i, (bytes, _)) in bad.iter().enumerate() {
        payloads.push(serde_json::to_vec(&record(100 + i)).expect("json"));
        payloads.push(bytes.clone());
    }
    payloads.push(serde_json::to_vec(&record(200)).expect("json"));
    produce_raw(&kafka, &payloads).await;

    let mut settings = settings(&kafka, Guarantee::AtLeastOnce);
    settings.rules = settings.rules.with_max_record_bytes(16 * 1024);
    let (shutdown, task) = start_in_process(settings).await;
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        bad.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    let good = testkit::consume(
        &kafka,
        &kafka.topics.enriched,
        bad.len() + 1,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    shutdown.cancel();
    let metrics = task.await.expect("service task");

    assert_eq!(good.len(), bad.len() + 1, "every good record arrives");
    assert_eq!(dead.len(), bad.len(), "every bad record is a dead letter");
    for message in &dead {
        let letter = DeadLetter::from_headers(message.headers().expect("headers"))
            .expect("dead-letter headers");
        assert_eq!(letter.stage, "transformer");
        assert_eq!(letter.source.topic, kafka.topics.raw);
        let input = &payloads[usize::try_from(letter.source.offset).expect("offset")];
        let payload = message.payload().expect("payload");
        match DeadLetter::original_bytes(message.headers().expect("headers")) {
            // Too large to produce whole under the limit: its first bytes, and its size.
            Some(original) => {
                assert_eq!(letter.reason, DeadLetterReason::Oversized);
                assert_eq!(original, input.len());
                assert!(payload.len() < input.len() && input.starts_with(payload));
            }
            None => assert_eq!(payload, input.as_slice(), "raw bytes untouched"),
        }
        let (_, want) = bad
            .iter()
            .find(|(bytes, _)| bytes == input)
            .expect("one of the bad inputs");
        assert_eq!(
            letter.reason, *want,
            "reason for offset {}: {}",
            letter.source.offset, letter.detail
        );
        assert!(!letter.detail.is_empty());
    }
    assert!(
        metrics.contains("logwarden_transformer_dead_letters_total{reason=\"not_json\"} 1"),
        "{metrics}"
    );
}

async fn crash_and_restart(guarantee: &str) -> (KafkaConfig, usize) {
    let kafka =
        testkit::kafka_with_private_topics(&format!("transformer-crash-{}", &guarantee[..5]), 4)
            .await;
    let total = 20_000;
    let payloads: Vec<Vec<u8>> = (0..total)
        .map(|i| serde_json::to_vec(&record(i)).expect("json"))
        .collect();
    produce_raw(&kafka, &payloads).await;
    let group = testkit::unique_name("crash-group");

    let mut first = spawn_binary(&kafka, &group, "crash-test-0", guarantee);
    wait_for_size(&kafka, &kafka.topics.enriched, 3_000).await;
    sigkill(&mut first);
    let at_kill = topic_size(&kafka, &kafka.topics.enriched, Duration::from_secs(5))
        .await
        .expect("size");
    eprintln!("{guarantee}: killed with {at_kill} of {total} outputs written");
    assert!(
        at_kill < i64::try_from(total).expect("fits"),
        "the kill landed mid-stream"
    );

    let mut second = spawn_binary(&kafka, &group, "crash-test-0", guarantee);
    // Everything is processed once the committed outputs reach the total; give it the time.
    let out = testkit::consume(
        &kafka,
        &kafka.topics.enriched,
        total,
        Duration::from_secs(90),
        Duration::from_secs(3),
    )
    .await;
    let status = sigterm_and_wait(&mut second);
    assert!(status.success(), "SIGTERM drains and exits 0: {status}");
    let ids = by_event_id(&out);
    // Every input offset of every partition is accounted for.
    let per_partition: BTreeMap<i32, usize> = ids.keys().fold(BTreeMap::new(), |mut acc, id| {
        let partition: i32 = id
            .rsplit('-')
            .nth(1)
            .expect("partition")
            .parse()
            .expect("number");
        *acc.entry(partition).or_insert(0) += 1;
        acc
    });
    assert_eq!(
        ids.len(),
        total,
        "every input enriched (per partition: {per_partition:?})"
    );
    (kafka, out.len())
}

#[tokio::test]
async fn kill_9_and_restart_loses_nothing_at_least_once() {
    let (_, outputs) = crash_and_restart("at_least_once").await;
    assert!(outputs >= 20_000, "duplicates allowed, losses not");
}

#[tokio::test]
async fn exactly_once_with_a_crash_shows_each_output_once() {
    let (_, outputs) = crash_and_restart("exactly_once").await;
    assert_eq!(outputs, 20_000, "a read_committed reader sees no duplicate");
}

/// Record `i` padded (in `httpRequest.args`) to exactly `bytes` bytes of JSON.
fn padded(i: usize, bytes: usize) -> Vec<u8> {
    let mut value = record(i);
    let base = serde_json::to_vec(&value).expect("json").len();
    value["httpRequest"]["args"] = json!("a".repeat(bytes - base));
    let padded = serde_json::to_vec(&value).expect("json");
    assert_eq!(padded.len(), bytes);
    padded
}

#[tokio::test]
async fn records_too_large_to_produce_are_dead_letters_and_the_partition_moves_on() {
    let kafka = testkit::kafka_with_private_topics("transformer-large", 1).await;
    // Over the limit (1,000,000 bytes) as input; under it once enriched; under as input but
    // over once enriched (the indicators, `@timestamp` and `event_id` add ~300 bytes).
    let (huge, under, edge) = (
        padded(100, 1_200_000),
        padded(150, 999_000),
        padded(200, 999_950),
    );
    let mut payloads: Vec<Vec<u8>> = (0..300)
        .map(|i| serde_json::to_vec(&record(i)).expect("json"))
        .collect();
    payloads[100] = huge.clone();
    payloads[150] = under.clone();
    payloads[200] = edge.clone();
    produce_raw(&kafka, &payloads).await;

    let (shutdown, task) = start_in_process(settings(&kafka, Guarantee::AtLeastOnce)).await;
    let out = testkit::consume(
        &kafka,
        &kafka.topics.enriched,
        298,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    let dead = testkit::consume(
        &kafka,
        &kafka.topics.dead_letter,
        2,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    assert!(!task.is_finished(), "the transformer stays up");
    shutdown.cancel();
    let metrics = task.await.expect("the service ends");
    testkit::delete_topics(&kafka, &kafka.topics.all()).await;

    assert_eq!(
        out.len(),
        298,
        "every other record once, the one just under included"
    );
    let enriched = by_event_id(&out);
    let expected: BTreeSet<String> = (0..300)
        .filter(|i| ![100, 200].contains(i))
        .map(|i| format!("{}-0-{i}", kafka.topics.raw))
        .collect();
    assert_eq!(enriched.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let id = format!("\"{}-0-150\"", kafka.topics.raw);
    let just_under = out
        .iter()
        .find(|m| testkit::payload_text(m).contains(&id))
        .expect("the record just under the limit");
    let size = just_under.payload().map_or(0, <[u8]>::len);
    assert!(size > under.len() && size <= 1_000_000, "{size} bytes");

    let mut letters: Vec<(DeadLetter, Option<usize>, Vec<u8>)> = dead
        .iter()
        .map(|m| {
            let headers = m.headers().expect("headers");
            (
                DeadLetter::from_headers(headers).expect("dead-letter headers"),
                DeadLetter::original_bytes(headers),
                m.payload().unwrap_or_default().to_vec(),
            )
        })
        .collect();
    letters.sort_by_key(|(letter, _, _)| letter.source.offset);
    assert_eq!(letters.len(), 2);
    let (letter, original, prefix) = &letters[0];
    assert_eq!(letter.reason, DeadLetterReason::Oversized);
    assert!(
        letter
            .detail
            .contains("the record is 1200000 bytes, over the limit of 1000000 bytes"),
        "{}",
        letter.detail
    );
    assert_eq!((letter.source.partition, letter.source.offset), (0, 100));
    assert_eq!(*original, Some(huge.len()), "the original size");
    assert_eq!(prefix.as_slice(), &huge[..64 * 1024], "its first 64 KiB");
    // Over the limit only once enriched: the input itself fits, and is kept whole.
    let (letter, original, whole) = &letters[1];
    assert_eq!(letter.reason, DeadLetterReason::Oversized);
    assert!(
        letter.detail.contains("the enriched record is") && letter.detail.contains("1000000"),
        "{}",
        letter.detail
    );
    assert_eq!((letter.source.partition, letter.source.offset), (0, 200));
    assert_eq!((*original, whole), (None, &edge), "the input untouched");
    assert!(
        metrics.contains(r#"logwarden_transformer_dead_letters_total{reason="oversized"} 2"#),
        "{metrics}"
    );
}
