//! A measurement's own corner of the local stack: six topics and an events index with a
//! unique prefix, the environment that points the services at them, and their removal.
//!
//! Private names keep a measurement from touching the stack's real topics and from colliding
//! with tests or other measurements running at the same time.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use pipeline::kafka::{KafkaConfig, TopicNames, ensure_topics};
use pipeline::testkit;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use serde_json::Value;

use crate::Ctx;
use crate::bench::services::agent;

/// The private topics and index of one run.
pub struct Private {
    /// Brokers, with the private topic names.
    pub kafka: KafkaConfig,
    /// OpenSearch's URL.
    pub url: String,
    /// The private events alias (and index prefix).
    pub alias: String,
    /// The unique prefix, e.g. `latency-1a2b3c4d-`.
    pub prefix: String,
}

impl Private {
    /// Creates the six topics with `partitions` partitions for a run named after `what`, on
    /// the stack the environment names (`LOGWARDEN_KAFKA__BROKERS`, `LOGWARDEN_OPENSEARCH__URL`).
    pub fn create(ctx: &Ctx, what: &str, partitions: i32) -> Result<Self> {
        let prefix = testkit::unique_name(what);
        let mut kafka = KafkaConfig::new(testkit::kafka_brokers());
        kafka.topics = TopicNames::prefixed(&prefix);
        ctx.rt
            .block_on(ensure_topics(&kafka, &kafka.topics.specs(partitions, 1)))
            .with_context(|| format!("creating the private topics on {}", kafka.brokers))?;
        Ok(Self {
            kafka,
            url: testkit::opensearch_url(),
            alias: format!("{prefix}events"),
            prefix,
        })
    }

    /// The environment of a service on these topics and this index; `stage` names its group
    /// and instance.
    pub fn env(&self, stage: &str) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "LOGWARDEN_KAFKA__BROKERS".to_owned(),
                self.kafka.brokers.clone(),
            ),
            ("LOGWARDEN_OPENSEARCH__URL".to_owned(), self.url.clone()),
        ];
        for (key, topic) in [
            "RAW",
            "ENRICHED",
            "DEAD_LETTER",
            "LABELS",
            "ANOMALIES",
            "PROJECTED",
        ]
        .iter()
        .zip(self.kafka.topics.all())
        {
            env.push((format!("LOGWARDEN_KAFKA__TOPICS__{key}"), topic.to_owned()));
        }
        let section = stage.to_ascii_uppercase();
        match stage {
            "transformer" | "sink" => {
                env.push((format!("LOGWARDEN_{section}__GROUP_ID"), self.group(stage)));
                env.push((
                    format!("LOGWARDEN_{section}__INSTANCE_ID"),
                    format!("{}{stage}-0", self.prefix),
                ));
            }
            _ => {}
        }
        if stage == "sink" {
            env.push(("LOGWARDEN_SINK__INDEX".to_owned(), self.alias.clone()));
        }
        env
    }

    /// The consumer group of `stage` in this run.
    pub fn group(&self, stage: &str) -> String {
        format!("{}{stage}", self.prefix)
    }

    /// Deletes the topics, and the indices and index templates named with the run's prefix.
    pub fn remove(&self, ctx: &Ctx) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .kafka
            .client_config("logwarden-bench")
            .create()
            .context("creating the admin client")?;
        ctx.rt
            .block_on(admin.delete_topics(&self.kafka.topics.all(), &AdminOptions::new()))
            .context("deleting the private topics")?;
        let agent = agent(Duration::from_secs(30));
        let url = &self.url;
        let prefix = &self.prefix;
        // Every index and template of the run (daily events, and the detector's results and
        // checkpoints), each by name: a wildcard delete is refused where
        // `action.destructive_requires_name` is set.
        let listed: Value = agent
            .get(format!("{url}/_cat/indices/{prefix}*?h=index&format=json"))
            .call()
            .context("listing the run's indices")?
            .body_mut()
            .read_json()
            .context("listing the run's indices")?;
        let mut paths: Vec<String> = listed
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row["index"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let templates: Value = agent
            .get(format!("{url}/_index_template/{prefix}*"))
            .call()
            .context("listing the run's templates")?
            .body_mut()
            .read_json()
            .context("listing the run's templates")?;
        if let Some(list) = templates["index_templates"].as_array() {
            paths.extend(
                list.iter()
                    .filter_map(|t| t["name"].as_str())
                    .map(|name| format!("_index_template/{name}")),
            );
        }
        for path in paths {
            let status = agent
                .delete(format!("{url}/{path}"))
                .call()
                .with_context(|| format!("deleting {path}"))?
                .status()
                .as_u16();
            if !matches!(status, 200 | 404) {
                bail!("deleting {url}/{path} answered {status}");
            }
        }
        Ok(())
    }
}
