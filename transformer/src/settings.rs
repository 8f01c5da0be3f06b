//! The transformer service's configuration: the raw form (YAML file and `LOGWARDEN_*`
//! environment) and the validated [`Settings`] the service sees, with the rules compiled.

use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, OpenSearchConfig};
use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::TelemetryConfig;
use serde::Deserialize;

use crate::rules::CompiledRules;

/// Default telemetry port of the transformer.
pub const TELEMETRY_PORT: u16 = 9102;

/// The default of `transformer.max_record_bytes`: librdkafka's default `message.max.bytes`,
/// which fits (with a record batch's overhead) under the broker's default `max.message.bytes`
/// of 1,048,588.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1_000_000;

/// The config file and environment, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Brokers and topics.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Logs and the metrics server.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Accepted so one environment can configure every service; the transformer does not use it.
    #[serde(default)]
    pub opensearch: OpenSearchConfig,
    /// The stage itself.
    #[serde(default)]
    pub transformer: TransformerConfig,
}

/// Delivery guarantee between `raw` and `enriched`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Every input is enriched or dead-lettered at least once; a crash may repeat some (the sink
    /// writes by event id, so repeats overwrite).
    #[default]
    AtLeastOnce,
    /// Kafka transactions carry the outputs and the input offsets together: a `read_committed`
    /// reader sees each output exactly once.
    ExactlyOnce,
}

/// The `transformer` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Rules file; the embedded default rules (the seed's ten indicators) when unset.
    pub rules: Option<PathBuf>,
    /// The largest record the stage reads or produces, in bytes (default 1,000,000). An input
    /// over it, or whose enriched record would be over it, is a dead letter (`oversized`; cut to
    /// its first 64 KiB with the original size in a header when it cannot fit whole). It bounds
    /// every record's value and key; the producer's `message.max.bytes` is it plus 4 KiB for a
    /// dead letter's headers. That must not exceed the `max.message.bytes` of the `enriched` and
    /// `dead-letter` topics (the broker's default is 1,048,588) less a record batch's overhead
    /// (about 100 bytes): raise them together.
    pub max_record_bytes: Option<usize>,
    /// Consumer group of the stage; every replica uses the same one.
    pub group_id: String,
    /// Static group membership id (default `$HOSTNAME`, the pod name): a restarted replica gets
    /// its partitions back at once instead of after the session timeout.
    pub instance_id: Option<String>,
    /// `at_least_once` (default) or `exactly_once`.
    pub guarantee: Guarantee,
    /// Deliveries in flight before the stage waits (at-least-once).
    pub max_in_flight: usize,
    /// Records per transaction (exactly-once).
    pub transaction_records: usize,
    /// Longest a transaction stays open, in milliseconds (exactly-once).
    pub transaction_ms: u64,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self {
            rules: None,
            max_record_bytes: None,
            group_id: "logwarden-transformer".to_owned(),
            instance_id: None,
            guarantee: Guarantee::AtLeastOnce,
            max_in_flight: 20_000,
            transaction_records: 5_000,
            transaction_ms: 200,
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Brokers and topics.
    pub kafka: KafkaConfig,
    /// Logs and metrics.
    pub telemetry: TelemetryConfig,
    /// The compiled rules.
    pub rules: CompiledRules,
    /// Consumer group.
    pub group_id: String,
    /// Static membership and transactional id suffix.
    pub instance_id: String,
    /// Delivery guarantee.
    pub guarantee: Guarantee,
    /// Window of deliveries in flight.
    pub max_in_flight: usize,
    /// Records per transaction.
    pub transaction_records: usize,
    /// Longest a transaction stays open.
    pub transaction_time: Duration,
}

impl Settings {
    /// Validates `raw` and compiles its rules; `hostname` is the default instance id.
    pub fn from_raw(raw: RawConfig, hostname: Option<String>) -> Result<Self, ConfigError> {
        raw.kafka.validate()?;
        let t = raw.transformer;
        let rules = match &t.rules {
            Some(path) => CompiledRules::load(path),
            None => CompiledRules::default_rules(),
        }
        .map_err(|err| {
            ConfigError::invalid(
                "transformer.rules",
                err.to_string(),
                "fix the rules file (check it with `logwarden-transformer check --rules FILE`)",
            )
        })?;
        let rules = match t.max_record_bytes {
            Some(0) => {
                return Err(ConfigError::invalid(
                    "transformer.max_record_bytes",
                    "is 0",
                    "give a size in bytes, e.g. 65536",
                ));
            }
            Some(max) => rules.with_max_record_bytes(max),
            None => rules.with_max_record_bytes(DEFAULT_MAX_RECORD_BYTES),
        };
        if t.group_id.trim().is_empty() {
            return Err(ConfigError::invalid(
                "transformer.group_id",
                "is empty",
                "name the consumer group, e.g. logwarden-transformer",
            ));
        }
        for (key, value) in [
            ("transformer.max_in_flight", t.max_in_flight),
            ("transformer.transaction_records", t.transaction_records),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "is 0",
                    "give a count of at least 1",
                ));
            }
        }
        let instance_id = t
            .instance_id
            .or(hostname)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "transformer-0".to_owned());
        Ok(Self {
            kafka: raw.kafka,
            telemetry: raw.telemetry,
            rules,
            group_id: t.group_id,
            instance_id,
            guarantee: t.guarantee,
            max_in_flight: t.max_in_flight,
            transaction_records: t.transaction_records,
            transaction_time: Duration::from_millis(t.transaction_ms.max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_seed_rules_and_at_least_once() {
        let settings =
            Settings::from_raw(RawConfig::default(), Some("pod-1".into())).expect("valid");
        assert_eq!(settings.guarantee, Guarantee::AtLeastOnce);
        assert_eq!(settings.instance_id, "pod-1");
        assert_eq!(settings.rules.max_record_bytes(), 1_000_000);
        assert!(
            settings
                .rules
                .indicators()
                .any(|name| name == "UNK_country")
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let raw = RawConfig {
            transformer: TransformerConfig {
                rules: Some("/nonexistent/rules.yaml".into()),
                ..TransformerConfig::default()
            },
            ..RawConfig::default()
        };
        let err = Settings::from_raw(raw, None)
            .expect_err("missing file")
            .to_string();
        assert!(
            err.contains("transformer.rules") && err.contains("/nonexistent/rules.yaml"),
            "{err}"
        );

        let raw = RawConfig {
            transformer: TransformerConfig {
                transaction_records: 0,
                ..TransformerConfig::default()
            },
            ..RawConfig::default()
        };
        let err = Settings::from_raw(raw, None).expect_err("zero").to_string();
        assert!(err.contains("transformer.transaction_records"), "{err}");
    }

    #[test]
    fn the_guarantee_is_spelled_in_snake_case() {
        let raw: RawConfig = pipeline::config::load_from(
            None,
            [(
                "LOGWARDEN_TRANSFORMER__GUARANTEE".to_owned(),
                "exactly_once".to_owned(),
            )],
        )
        .expect("valid");
        assert_eq!(raw.transformer.guarantee, Guarantee::ExactlyOnce);
    }
}
