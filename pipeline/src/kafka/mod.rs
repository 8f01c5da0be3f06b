//! Kafka client settings and topic administration, shared by every service and the stack tooling
//! (and, once it exists, the Helm chart's topic job).
//!
//! Every client logwarden builds starts from [`KafkaConfig::client_config`], so that security
//! settings a user passes once (`properties`) reach producers, consumers and the admin client
//! alike. The producer and consumer presets encode the delivery guarantees the services rely on:
//! idempotent, fully acknowledged produces, and consumers that never store an offset by themselves.

mod health;
mod lag;
mod preflight;
mod security;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;

pub use health::{HealthContext, KAFKA_CHECK, STATISTICS_INTERVAL};
pub use lag::{ConsumerLag, PartitionLag, partition_lags};
pub use preflight::{PreflightError, preflight};
pub use security::{KafkaSasl, KafkaTls, SaslMechanism};

/// Where the brokers are and how to talk to them.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated (`host:port,host:port`).
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// TLS to the brokers (`SSL`, or `SASL_SSL` with `sasl`): CA, client certificate and key.
    #[serde(default)]
    pub tls: Option<KafkaTls>,
    /// SASL authentication: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default)]
    pub sasl: Option<KafkaSasl>,
    /// Accept sending credentials over a plaintext connection (SASL without TLS); a warning is
    /// logged at start-up.
    #[serde(default)]
    pub allow_insecure: bool,
    /// librdkafka properties passed through verbatim to every client. They override logwarden's
    /// presets; security settings belong in `tls` and `sasl`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Names of the topics logwarden reads and writes.
    #[serde(default)]
    pub topics: TopicNames,
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if security::is_secret_property(key) {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .field("allow_insecure", &self.allow_insecure)
            .field("properties", &properties)
            .field("topics", &self.topics)
            .finish()
    }
}

fn default_brokers() -> String {
    "127.0.0.1:9092".to_owned()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self::new(default_brokers())
    }
}

impl KafkaConfig {
    /// Settings for the given bootstrap servers, with default topic names and no extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            tls: None,
            sasl: None,
            allow_insecure: false,
            properties: BTreeMap::new(),
            topics: TopicNames::default(),
        }
    }

    fn security(&self) -> security::Security<'_> {
        security::Security {
            tls: self.tls.as_ref(),
            sasl: self.sasl.as_ref(),
            allow_insecure: self.allow_insecure,
            properties: &self.properties,
        }
    }

    /// Weakened checks the settings ask for, to log at start-up.
    pub fn security_warnings(&self) -> Vec<String> {
        self.security().warnings()
    }

    /// Checks what serde cannot: an empty broker list, a property that logwarden manages itself.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return Err(crate::config::ConfigError::invalid(
                "kafka.brokers",
                "is empty",
                "set it to the bootstrap servers, e.g. `127.0.0.1:9092`",
            ));
        }
        for key in ["bootstrap.servers", "group.id", "enable.auto.offset.store"] {
            if self.properties.contains_key(key) {
                return Err(crate::config::ConfigError::invalid(
                    format!("kafka.properties.{key}"),
                    "is managed by logwarden",
                    "remove it (use `kafka.brokers` for the servers; group ids are per service)",
                ));
            }
        }
        self.security().validate()?;
        self.topics.validate()
    }

    /// The base configuration every client starts from: servers, a client id, security, user
    /// properties.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.set_base(&mut config, client_id);
        config
    }

    /// Sets the base settings on `config`, over what it holds.
    fn set_base(&self, config: &mut ClientConfig, client_id: &str) {
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id);
        self.security().apply(config);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
    }

    /// An idempotent producer that waits for every in-sync replica: a delivery report of success
    /// means the record is durable, which is what lets a stage move its input offset.
    pub fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "300000");
        self.overlay(config, client_id)
    }

    /// A group consumer that never stores an offset by itself: the service stores each offset
    /// once its output is acknowledged downstream, and librdkafka commits what was stored.
    pub fn consumer_config(&self, client_id: &str, group_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("isolation.level", "read_committed");
        self.overlay(config, client_id)
    }

    /// Presets first, then the base settings, so user properties win over presets. (Not through
    /// `config_map`, which masks passwords.)
    fn overlay(&self, mut preset: ClientConfig, client_id: &str) -> ClientConfig {
        self.set_base(&mut preset, client_id);
        preset
    }
}

/// The topic names, configurable so that several deployments (or tests) can share a cluster.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicNames {
    /// Raw WAF log records, as the producer writes them.
    pub raw: String,
    /// Records with indicator fields, `@timestamp` and an event id.
    pub enriched: String,
    /// Records a stage could not process: raw bytes untouched, the reason in headers.
    pub dead_letter: String,
    /// Ground truth: one record per injected anomaly phase.
    pub labels: String,
    /// Anomalous intervals the detector found (one JSON result per record).
    pub anomalies: String,
    /// What the detector's readers project from `enriched` for its sessions (`detector.input:
    /// projected`): batches of the fields the detectors read, partition for partition.
    pub projected: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        Self {
            raw: "raw".to_owned(),
            enriched: "enriched".to_owned(),
            dead_letter: "dead-letter".to_owned(),
            labels: "labels".to_owned(),
            anomalies: "anomalies".to_owned(),
            projected: "projected".to_owned(),
        }
    }
}

impl TopicNames {
    /// The same six topics with a prefix, e.g. for one test's private set.
    pub fn prefixed(prefix: &str) -> Self {
        let base = Self::default();
        Self {
            raw: format!("{prefix}{}", base.raw),
            enriched: format!("{prefix}{}", base.enriched),
            dead_letter: format!("{prefix}{}", base.dead_letter),
            labels: format!("{prefix}{}", base.labels),
            anomalies: format!("{prefix}{}", base.anomalies),
            projected: format!("{prefix}{}", base.projected),
        }
    }

    /// All six names, in pipeline order.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.raw,
            &self.enriched,
            &self.dead_letter,
            &self.labels,
            &self.anomalies,
            &self.projected,
        ]
    }

    /// Topic specs for all six, with one layout.
    pub fn specs(&self, partitions: i32, replication_factor: i32) -> Vec<TopicSpec> {
        self.all()
            .iter()
            .map(|name| TopicSpec {
                name: (*name).to_owned(),
                partitions,
                replication_factor,
            })
            .collect()
    }

    fn validate(&self) -> Result<(), crate::config::ConfigError> {
        for (key, name) in [
            ("raw", &self.raw),
            ("enriched", &self.enriched),
            ("dead_letter", &self.dead_letter),
            ("labels", &self.labels),
            ("anomalies", &self.anomalies),
            ("projected", &self.projected),
        ] {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if name.is_empty() || name.len() > 249 || !name.chars().all(legal) {
                return Err(crate::config::ConfigError::invalid(
                    format!("kafka.topics.{key}"),
                    format!("`{name}` is not a legal Kafka topic name"),
                    "use 1 to 249 characters from [a-zA-Z0-9._-]",
                ));
            }
        }
        Ok(())
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count: the unit of parallelism for every consumer group.
    pub partitions: i32,
    /// Replication factor (1 on a one-node cluster).
    pub replication_factor: i32,
}

/// What [`ensure_topics`] found for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOutcome {
    /// The topic did not exist and was created.
    Created,
    /// The topic was already there; it was left as it is.
    Existed,
}

/// Errors from administering the cluster.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The client could not be built or a request failed as a whole.
    #[error("Kafka at {brokers}: {source}")]
    Client {
        /// The bootstrap servers that were asked.
        brokers: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create one topic.
    #[error("creating topic `{topic}`: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Creates each topic that does not exist yet; an existing topic counts as success and is not
/// changed. Safe to run concurrently from several processes.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &[TopicSpec],
) -> Result<Vec<(String, TopicOutcome)>, AdminError> {
    let client_error = |source| AdminError::Client {
        brokers: kafka.brokers.clone(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config("logwarden-admin")
        .create()
        .map_err(client_error)?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(client_error)?;
    results
        .into_iter()
        .map(|result| match result {
            Ok(name) => Ok((name, TopicOutcome::Created)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => Ok((name, TopicOutcome::Existed)),
            Err((topic, code)) => Err(AdminError::CreateTopic { topic, code }),
        })
        .collect()
}

/// One broker as the cluster metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// Cluster metadata as far as readiness checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The brokers that answered.
    pub brokers: Vec<BrokerInfo>,
    /// Every topic and its partition count.
    pub topics: BTreeMap<String, usize>,
}

/// Asks the cluster for its metadata: the readiness check of "Kafka answers".
pub async fn cluster_info(
    kafka: &KafkaConfig,
    timeout: Duration,
) -> Result<ClusterInfo, AdminError> {
    with_metadata_client(kafka, move |consumer| {
        let metadata = consumer.fetch_metadata(None, timeout)?;
        Ok(ClusterInfo {
            brokers: metadata
                .brokers()
                .iter()
                .map(|b| BrokerInfo {
                    id: b.id(),
                    host: b.host().to_owned(),
                    port: b.port(),
                })
                .collect(),
            topics: metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| (t.name().to_owned(), t.partitions().len()))
                .collect(),
        })
    })
    .await
}

/// How many records `topic` holds: the sum over its partitions of high minus low watermark.
/// (With transactions, commit markers count too; it is a size, not an exact record count.)
pub async fn topic_size(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<i64, AdminError> {
    let topic = topic.to_owned();
    with_metadata_client(kafka, move |consumer| {
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let mut total = 0;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(&topic, partition.id(), timeout)?;
            total += high - low;
        }
        Ok(total)
    })
    .await
}

/// How far consumer group `group` is behind on `topic`: the sum over partitions of the high
/// watermark minus the group's committed offset (the whole partition when nothing is committed).
pub async fn group_lag(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<i64, AdminError> {
    let mut config = kafka.client_config("logwarden-lag");
    config.set("group.id", group);
    let topic = topic.to_owned();
    let brokers = kafka.brokers.clone();
    let task = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let mut partitions = rdkafka::TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            partitions.add_partition(&topic, partition.id());
        }
        let committed = consumer.committed_offsets(partitions, timeout)?;
        let mut lag = 0;
        for element in committed.elements() {
            let (low, high) = consumer.fetch_watermarks(&topic, element.partition(), timeout)?;
            let position = match element.offset() {
                rdkafka::Offset::Offset(offset) => offset,
                _ => low,
            };
            lag += (high - position).max(0);
        }
        Ok(lag)
    });
    match task.await {
        Ok(result) => result.map_err(|source| AdminError::Client { brokers, source }),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Runs blocking metadata requests with a short-lived client on a blocking thread, so they can
/// be awaited from async code.
async fn with_metadata_client<T: Send + 'static>(
    kafka: &KafkaConfig,
    request: impl FnOnce(&BaseConsumer) -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, AdminError> {
    let config = kafka.client_config("logwarden-metadata");
    let task = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        request(&consumer)
    });
    let brokers = kafka.brokers.clone();
    match task.await {
        Ok(result) => result.map_err(|source| AdminError::Client { brokers, source }),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_override_presets() {
        let mut kafka = KafkaConfig::new("a:1,b:2");
        kafka
            .properties
            .insert("linger.ms".to_owned(), "50".to_owned());
        kafka
            .properties
            .insert("security.protocol".to_owned(), "SASL_SSL".to_owned());
        let producer = kafka.producer_config("p");
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("bootstrap.servers"), Some("a:1,b:2"));
        let consumer = kafka.consumer_config("c", "g");
        assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(consumer.get("group.id"), Some("g"));
    }

    #[test]
    fn validation_names_the_key_and_the_fix() {
        let mut kafka = KafkaConfig::new(" , ");
        let err = kafka.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.brokers"), "{err}");
        assert!(err.contains("127.0.0.1:9092"), "{err}");

        kafka.brokers = "x:1".to_owned();
        kafka
            .properties
            .insert("group.id".to_owned(), "mine".to_owned());
        let err = kafka.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.properties.group.id"), "{err}");

        kafka.properties.clear();
        kafka.topics.raw = "bad name".to_owned();
        let err = kafka.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.topics.raw"), "{err}");
    }

    #[test]
    fn prefixed_topic_names_keep_their_roles() {
        let names = TopicNames::prefixed("t1-");
        assert_eq!(
            names.all(),
            [
                "t1-raw",
                "t1-enriched",
                "t1-dead-letter",
                "t1-labels",
                "t1-anomalies",
                "t1-projected"
            ]
        );
        let specs = names.specs(4, 1);
        assert_eq!(specs.len(), 6);
        assert!(specs.iter().all(|s| s.partitions == 4));
    }
}
