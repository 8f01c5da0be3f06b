//! `logwarden-provisioner topics` against the local stack's real Kafka, as the Helm chart's topic
//! Job runs it: the topic names come from `LOGWARDEN_KAFKA__TOPICS__*` (a private set per test),
//! the partition counts are read back from Kafka's metadata, a second run is idempotent, fewer
//! partitions than asked fail naming the fix, and an unreachable broker fails naming it.

use std::time::Duration;

use pipeline::kafka::{KafkaConfig, TopicNames, cluster_info};
use pipeline::testkit::{self, Process};

const BINARY: &str = env!("CARGO_BIN_EXE_logwarden-provisioner");

/// Runs `topics` with `args` against `brokers` and the topic names `names`.
fn topics(brokers: &str, names: &TopicNames, args: &[&str]) -> (Option<i32>, String) {
    let env = [
        ("LOGWARDEN_KAFKA__BROKERS", brokers),
        ("LOGWARDEN_KAFKA__TOPICS__RAW", names.raw.as_str()),
        ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", names.enriched.as_str()),
        (
            "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
            names.dead_letter.as_str(),
        ),
        ("LOGWARDEN_KAFKA__TOPICS__LABELS", names.labels.as_str()),
        (
            "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
            names.anomalies.as_str(),
        ),
        (
            "LOGWARDEN_KAFKA__TOPICS__PROJECTED",
            names.projected.as_str(),
        ),
    ];
    let mut all = vec!["topics"];
    all.extend_from_slice(args);
    Process::start(BINARY, &all, &env).wait(Duration::from_secs(90))
}

/// The table's rows as `(topic, outcome, partitions)`.
fn rows(output: &str) -> Vec<(String, String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            match cells.as_slice() {
                [topic, outcome @ ("created" | "existed"), partitions, ..] => Some((
                    (*topic).to_owned(),
                    (*outcome).to_owned(),
                    (*partitions).to_owned(),
                )),
                _ => None,
            }
        })
        .collect()
}

fn expected(names: &TopicNames, outcome: &str, partitions: &str) -> Vec<(String, String, String)> {
    names
        .all()
        .iter()
        .map(|t| ((*t).to_owned(), outcome.to_owned(), partitions.to_owned()))
        .collect()
}

#[tokio::test]
async fn topics_are_created_with_their_partitions_then_checked_and_fewer_partitions_fail() {
    let kafka = testkit::require_kafka().await;
    let names = TopicNames::prefixed(&testkit::unique_name("prov-topics"));

    let (code, output) = topics(
        &kafka.brokers,
        &names,
        &["--partitions", "3", "--replication-factor", "1"],
    );
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(rows(&output), expected(&names, "created", "3"), "{output}");
    let info = cluster_info(&KafkaConfig::new(&kafka.brokers), Duration::from_secs(10))
        .await
        .expect("metadata");
    for topic in names.all() {
        assert_eq!(info.topics.get(topic), Some(&3), "{topic} in Kafka");
    }

    let (code, again) = topics(
        &kafka.brokers,
        &names,
        &["--partitions", "3", "--replication-factor", "1"],
    );
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(rows(&again), expected(&names, "existed", "3"), "{again}");

    // The chart now expects more partitions than the topics have: a misconfiguration.
    let (code, more) = topics(
        &kafka.brokers,
        &names,
        &["--partitions", "6", "--replication-factor", "1"],
    );
    assert_eq!(code, Some(1), "{more}");
    assert_eq!(rows(&more), expected(&names, "existed", "3"), "{more}");
    assert_eq!(more.matches("fewer than the 6 asked").count(), 6, "{more}");
    assert!(
        more.contains(&format!(
            "6 topics with fewer partitions than asked (`{}` has 3, `{}` has 3,",
            names.raw, names.enriched
        )),
        "{more}"
    );
    assert!(
        more.contains(&format!(
            "`kafka-topics.sh --bootstrap-server {} --alter --topic <topic> --partitions 6`",
            kafka.brokers
        )),
        "{more}"
    );
    let info = cluster_info(&KafkaConfig::new(&kafka.brokers), Duration::from_secs(10))
        .await
        .expect("metadata");
    assert_eq!(info.topics.get(names.raw.as_str()), Some(&3), "changed");

    // Fewer asked than there are: fine, kept as they are.
    let (code, fewer) = topics(
        &kafka.brokers,
        &names,
        &["--partitions", "2", "--replication-factor", "1"],
    );
    assert_eq!(code, Some(0), "{fewer}");
    assert_eq!(fewer.matches("more than the 2 asked: kept").count(), 6);

    testkit::delete_topics(&kafka, &names.all()).await;
}

#[tokio::test]
async fn an_unreachable_broker_fails_naming_it_and_the_key() {
    let names = TopicNames::prefixed(&testkit::unique_name("prov-topics"));
    // Nothing listens on port 9 (discard) on loopback.
    let (code, output) = topics(
        "127.0.0.1:9",
        &names,
        &[
            "--partitions",
            "1",
            "--replication-factor",
            "1",
            "--wait",
            "2s",
        ],
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("Kafka at 127.0.0.1:9 did not answer within 2s"),
        "{output}"
    );
    assert!(
        output.contains("check kafka.brokers (LOGWARDEN_KAFKA__BROKERS)"),
        "{output}"
    );
    assert!(rows(&output).is_empty(), "{output}");
}

#[tokio::test]
async fn a_bad_topic_name_is_refused_naming_the_key() {
    let mut names = TopicNames::prefixed(&testkit::unique_name("prov-topics"));
    names.labels = "no spaces allowed".to_owned();
    let (code, output) = topics(
        "127.0.0.1:9",
        &names,
        &["--partitions", "1", "--replication-factor", "1"],
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("kafka.topics.labels"), "{output}");
    assert!(output.contains("[a-zA-Z0-9._-]"), "{output}");
}
