//! `logwarden-provisioner topics`: creates or checks logwarden's six Kafka topics, as the Helm
//! chart's topic Job runs it before the services start.
//!
//! It reads the same `kafka` section every service reads (brokers, TLS, SASL, properties, topic
//! names), runs the services' start-up check ([`pipeline::kafka::preflight`]: a refused password
//! or a failed TLS handshake ends it with the reason), creates what is missing through
//! [`pipeline::kafka::ensure_topics`], and then reads each topic's partition count from the
//! cluster's metadata. Users scale the stages by partitions, so an existing topic with fewer
//! partitions than asked is a misconfiguration: the command fails naming the topic and the fix
//! (Kafka can add partitions, never remove them). More partitions than asked is fine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pipeline::kafka::{
    AdminError, KAFKA_CHECK, KafkaConfig, PreflightError, TopicOutcome, cluster_info,
    ensure_topics, preflight,
};
use pipeline::telemetry::Health;

use crate::plan::table;

/// Why the topics are not as asked.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// A refused password or TLS handshake, or client settings librdkafka rejects.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The brokers did not answer in time.
    #[error(
        "Kafka at {brokers} did not answer within {waited:?}: {reason}; check kafka.brokers \
         (LOGWARDEN_KAFKA__BROKERS) and that the brokers are up"
    )]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long it waited.
        waited: Duration,
        /// librdkafka's last word.
        reason: String,
    },
    /// Creating a topic or reading the metadata failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The metadata did not list a topic (just created) in time.
    #[error(
        "Kafka at {brokers} does not list the topic `{topic}` in its metadata after creating it"
    )]
    NotListed {
        /// The bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
    },
    /// Existing topics with fewer partitions than asked.
    #[error(
        "{count} with fewer partitions than asked ({list}): the stages scale by partitions; \
         add partitions with `kafka-topics.sh --bootstrap-server {brokers} --alter --topic <topic> \
         --partitions {asked}`, or run with --partitions {fewest} to accept them"
    )]
    TooFewPartitions {
        /// "1 topic", "2 topics".
        count: String,
        /// `<topic> has <n>` each.
        list: String,
        /// The bootstrap servers.
        brokers: String,
        /// The partitions asked.
        asked: i32,
        /// The fewest partitions found.
        fewest: usize,
    },
}

/// One topic as the command found and left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    /// The topic's name.
    pub name: String,
    /// Created now, or already there.
    pub outcome: TopicOutcome,
    /// Its partition count, from the cluster's metadata.
    pub partitions: usize,
}

/// What the command did: a row per topic, in pipeline order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The rows.
    pub rows: Vec<TopicRow>,
    /// The partitions asked.
    pub asked: i32,
}

impl Report {
    /// The rows as a table (one line per topic).
    pub fn table(&self) -> String {
        let asked = usize::try_from(self.asked).unwrap_or(0);
        table(
            ["TOPIC", "OUTCOME", "PARTITIONS", "DETAIL"],
            self.rows.iter().map(|row| {
                let detail = match row.partitions.cmp(&asked) {
                    std::cmp::Ordering::Less => format!("fewer than the {asked} asked"),
                    std::cmp::Ordering::Greater => format!("more than the {asked} asked: kept"),
                    std::cmp::Ordering::Equal => String::new(),
                };
                [
                    row.name.clone(),
                    match row.outcome {
                        TopicOutcome::Created => "created",
                        TopicOutcome::Existed => "existed",
                    }
                    .to_owned(),
                    row.partitions.to_string(),
                    detail,
                ]
            }),
        )
    }

    /// The error for topics with fewer partitions than asked, if any.
    pub fn too_few(&self, brokers: &str) -> Option<TopicsError> {
        let asked = usize::try_from(self.asked).unwrap_or(0);
        let short: Vec<&TopicRow> = self
            .rows
            .iter()
            .filter(|row| row.partitions < asked)
            .collect();
        let fewest = short.iter().map(|row| row.partitions).min()?;
        Some(TopicsError::TooFewPartitions {
            count: match short.len() {
                1 => "1 topic".to_owned(),
                n => format!("{n} topics"),
            },
            list: short
                .iter()
                .map(|row| format!("`{}` has {}", row.name, row.partitions))
                .collect::<Vec<_>>()
                .join(", "),
            brokers: brokers.to_owned(),
            asked: self.asked,
            fewest,
        })
    }
}

/// Checks the brokers (for up to `wait`), creates the missing topics with `partitions` and
/// `replication_factor`, and reads back every topic's partition count.
pub async fn ensure(
    kafka: &KafkaConfig,
    partitions: i32,
    replication_factor: i32,
    wait: Duration,
) -> Result<Report, TopicsError> {
    // Preflight marks the check not ready when the brokers do not answer within `wait`.
    let health = Health::default();
    preflight(kafka, &health, wait).await?;
    let (ready, report) = health.report();
    if !ready {
        let reason = report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{KAFKA_CHECK}: unreachable: ")))
            .unwrap_or("no answer")
            .to_owned();
        return Err(TopicsError::Unreachable {
            brokers: kafka.brokers.clone(),
            waited: wait,
            reason,
        });
    }
    let specs = kafka.topics.specs(partitions, replication_factor);
    let outcomes = ensure_topics(kafka, &specs).await?;
    let counts = partition_counts(kafka, &kafka.topics.all()).await?;
    let rows = kafka
        .topics
        .all()
        .iter()
        .map(|name| TopicRow {
            name: (*name).to_owned(),
            outcome: outcomes
                .iter()
                .find(|(topic, _)| topic == name)
                .map_or(TopicOutcome::Existed, |(_, outcome)| *outcome),
            partitions: counts.get(*name).copied().unwrap_or(0),
        })
        .collect();
    Ok(Report {
        rows,
        asked: partitions,
    })
}

/// Each topic's partition count from the metadata, waiting (up to 10 s) for topics just created
/// to be listed.
async fn partition_counts(
    kafka: &KafkaConfig,
    topics: &[&str],
) -> Result<BTreeMap<String, usize>, TopicsError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = cluster_info(kafka, Duration::from_secs(10)).await?;
        let missing = topics
            .iter()
            .find(|topic| info.topics.get(**topic).is_none_or(|count| *count == 0));
        match missing {
            None => return Ok(info.topics),
            Some(topic) if Instant::now() >= deadline => {
                return Err(TopicsError::NotListed {
                    brokers: kafka.brokers.clone(),
                    topic: (*topic).to_owned(),
                });
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, outcome: TopicOutcome, partitions: usize) -> TopicRow {
        TopicRow {
            name: name.to_owned(),
            outcome,
            partitions,
        }
    }

    #[test]
    fn fewer_partitions_than_asked_fail_naming_each_topic_and_the_fix() {
        let report = Report {
            rows: vec![
                row("raw", TopicOutcome::Existed, 2),
                row("enriched", TopicOutcome::Created, 4),
                row("labels", TopicOutcome::Existed, 8),
                row("anomalies", TopicOutcome::Existed, 1),
            ],
            asked: 4,
        };
        assert_eq!(
            report.table(),
            "TOPIC      OUTCOME  PARTITIONS  DETAIL\n\
             raw        existed  2           fewer than the 4 asked\n\
             enriched   created  4\n\
             labels     existed  8           more than the 4 asked: kept\n\
             anomalies  existed  1           fewer than the 4 asked\n"
        );
        let err = report.too_few("k:9092").expect("too few").to_string();
        assert_eq!(
            err,
            "2 topics with fewer partitions than asked (`raw` has 2, `anomalies` has 1): the \
             stages scale by partitions; add partitions with `kafka-topics.sh --bootstrap-server \
             k:9092 --alter --topic <topic> --partitions 4`, or run with --partitions 1 to accept \
             them"
        );
    }

    #[test]
    fn as_many_or_more_partitions_pass() {
        let report = Report {
            rows: vec![
                row("raw", TopicOutcome::Existed, 4),
                row("enriched", TopicOutcome::Existed, 6),
            ],
            asked: 4,
        };
        assert!(report.too_few("k:9092").is_none());
    }
}
