//! The detector service's configuration: the raw form (YAML file and `LOGWARDEN_*` environment)
//! and the validated [`Settings`], with the spec loaded and checked, also against the
//! transformer's rules (`detector.rules`, [`crate::spec::rules`]).

use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, OpenSearchConfig};
use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::TelemetryConfig;
use serde::Deserialize;

use crate::shards::{self, Part};
use crate::spec::Spec;
use crate::spec::rules::RulesFields;

/// Default telemetry port of the detector.
pub const TELEMETRY_PORT: u16 = 9104;

/// The config file and environment, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Brokers and topics (reads `enriched`, writes `anomalies`).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Logs and the metrics server.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// History, results and checkpoints.
    #[serde(default)]
    pub opensearch: OpenSearchConfig,
    /// The stage itself.
    #[serde(default)]
    pub detector: DetectorConfig,
}

/// The `detector` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// The detection spec; the embedded default (the seed's five detectors) when unset.
    pub spec: Option<PathBuf>,
    /// The transformer's rules file, which the spec's feature fields are checked against (each
    /// must be an indicator the rules produce); the transformer's embedded default rules when
    /// unset. Give it the same file as `transformer.rules`.
    pub rules: Option<PathBuf>,
    /// How often model checkpoints are saved, in milliseconds (and at shutdown).
    pub checkpoint_ms: u64,
    /// This replica's name in the lease (default `$HOSTNAME`, the pod name; without either, a
    /// random name, so that two replicas never share one).
    pub instance_id: Option<String>,
    /// How long the active replica's lease lasts unless renewed, in milliseconds: how soon a
    /// standby takes over after a crash.
    pub lease_ms: u64,
    /// How far ahead of this replica's clock a record's `@timestamp` may be, in milliseconds.
    /// Records stamped further ahead (a sender with a wrong clock) are counted
    /// (`logwarden_detector_future_events_total`), logged, and not scored.
    pub future_tolerance_ms: u64,
    /// How many shards the spec's detectors are split into ([`crate::shards`]): each is scored
    /// by one replica at a time, and the replicas share them evenly. 1 (the default) is one
    /// active replica for everything; give every replica the same value.
    pub shards: usize,
    /// What the sessions read: `enriched` (the default: each session reads and parses every
    /// record) or `projected` (the batches the readers, `logwarden-detector read`, make of
    /// `enriched`: only what the detectors use, so reading scales with the readers).
    pub input: Input,
    /// The readers (`logwarden-detector read`).
    pub reader: ReaderConfig,
}

/// What the sessions read ([`crate::projection`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// `enriched`, every record parsed by each session.
    #[default]
    Enriched,
    /// `projected`, written by the readers.
    Projected,
}

/// The `detector.reader` section: how `logwarden-detector read` batches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderConfig {
    /// The readers' consumer group on `enriched` (the sessions read its lag to tell a quiet
    /// stream from readers that fell behind).
    pub group: String,
    /// The most records in one batch (one Kafka record on `projected`).
    pub batch_records: usize,
    /// How long a partition's records wait for their batch to fill, in milliseconds.
    pub linger_ms: u64,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            group: "logwarden-detector-readers".to_owned(),
            batch_records: 500,
            linger_ms: 100,
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            spec: None,
            rules: None,
            checkpoint_ms: 60_000,
            instance_id: None,
            lease_ms: 30_000,
            future_tolerance_ms: 300_000,
            shards: 1,
            input: Input::Enriched,
            reader: ReaderConfig::default(),
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
    /// The cluster.
    pub opensearch: OpenSearchConfig,
    /// The detection spec.
    pub spec: Spec,
    /// What checking the spec against the rules warned about (feature fields read from the
    /// record rather than set by a rule), for the service to log once logging is up.
    pub spec_warnings: Vec<String>,
    /// Checkpoint period.
    pub checkpoint_every: Duration,
    /// This replica's name in the lease.
    pub instance_id: String,
    /// The lease's time to live.
    pub lease_ttl: Duration,
    /// How far ahead of the clock an event time is still trusted.
    pub future_tolerance: Duration,
    /// How many shards the spec is split into.
    pub shards: usize,
    /// The shard a session scores (the whole spec until the service splits it).
    pub part: Part,
    /// What the sessions read.
    pub input: Input,
    /// How the readers batch.
    pub reader: ReaderConfig,
}

impl Settings {
    /// Validates `raw` and loads its spec; `hostname` is the default instance id.
    pub fn from_raw(raw: RawConfig, hostname: Option<String>) -> Result<Self, ConfigError> {
        raw.kafka.validate()?;
        let d = raw.detector;
        let spec = match &d.spec {
            Some(path) => Spec::load(path),
            None => Spec::default_spec(),
        }
        .map_err(|err| {
            ConfigError::invalid(
                "detector.spec",
                err.to_string(),
                "fix the spec (check it with `logwarden-detector check --spec FILE`)",
            )
        })?;
        let spec_warnings = check_against_rules(&spec, d.spec.as_deref(), d.rules.as_deref())?;
        for (key, value) in [
            ("detector.checkpoint_ms", d.checkpoint_ms),
            ("detector.lease_ms", d.lease_ms),
        ] {
            if value < 300 {
                return Err(ConfigError::invalid(
                    key,
                    format!("is {value}"),
                    "give a period of at least 300 milliseconds, e.g. 30000",
                ));
            }
        }
        let (least, most) = (shards::least(&spec), shards::most(&spec).max(1));
        if !(least..=most).contains(&d.shards) || d.shards == 0 {
            let parts = if least > 1 {
                format!(
                    "; a detector's entities are split in {least} parts (category.parts), each in a shard of its own"
                )
            } else {
                String::new()
            };
            return Err(ConfigError::invalid(
                "detector.shards",
                format!("is {}", d.shards),
                format!(
                    "give {least} to {most} (the spec's groups of detectors that no monitor joins: a shard holds whole groups{parts})"
                ),
            ));
        }
        if !(1..=10_000).contains(&d.reader.batch_records) {
            return Err(ConfigError::invalid(
                "detector.reader.batch_records",
                format!("is {}", d.reader.batch_records),
                "give 1 to 10000 records per batch, e.g. 500",
            ));
        }
        if !(1..=10_000).contains(&d.reader.linger_ms) {
            return Err(ConfigError::invalid(
                "detector.reader.linger_ms",
                format!("is {}", d.reader.linger_ms),
                "give 1 to 10000 milliseconds, e.g. 100",
            ));
        }
        if d.reader.group.is_empty() {
            return Err(ConfigError::invalid(
                "detector.reader.group",
                "is empty",
                "name the readers' consumer group, e.g. logwarden-detector-readers",
            ));
        }
        let instance_id = d
            .instance_id
            .or(hostname)
            .filter(|id| !id.is_empty())
            // Not the process id: every container's first process is 1, and two replicas with
            // one name would both think they hold the lease.
            .unwrap_or_else(|| format!("detector-{:016x}", rand::random::<u64>()));
        Ok(Self {
            kafka: raw.kafka,
            telemetry: raw.telemetry,
            opensearch: raw.opensearch,
            spec,
            spec_warnings,
            checkpoint_every: Duration::from_millis(d.checkpoint_ms),
            instance_id,
            lease_ttl: Duration::from_millis(d.lease_ms),
            future_tolerance: Duration::from_millis(d.future_tolerance_ms),
            shards: d.shards,
            part: Part::WHOLE,
            input: d.input,
            reader: d.reader,
        })
    }
}

impl Settings {
    /// The topic the sessions read.
    pub fn input_topic(&self) -> &str {
        match self.input {
            Input::Enriched => &self.kafka.topics.enriched,
            Input::Projected => &self.kafka.topics.projected,
        }
    }
}

/// Checks `spec` (from `spec_path`, or the default) against the rules at `rules_path` (or the
/// transformer's default rules): the warnings, or the error naming the key and the fix.
pub fn check_against_rules(
    spec: &Spec,
    spec_path: Option<&std::path::Path>,
    rules_path: Option<&std::path::Path>,
) -> Result<Vec<String>, ConfigError> {
    let rules = match rules_path {
        Some(path) => RulesFields::load(path),
        None => RulesFields::default_rules(),
    }
    .map_err(|err| {
        ConfigError::invalid(
            "detector.rules",
            err.to_string(),
            "point it at the rules file the transformer uses (transformer.rules)",
        )
    })?;
    let origin = spec_path.map_or_else(|| "default".to_owned(), |p| p.display().to_string());
    spec.check_fields(&rules, &origin).map_err(|err| {
        ConfigError::invalid(
            "detector.spec",
            err.to_string(),
            "fix the spec, or point detector.rules at the rules the transformer uses (check \
             both with `logwarden-detector check --spec FILE --rules FILE`)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_checked_against_the_rules_at_start_up() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let spec = dir.path().join("spec.yaml");
        std::fs::write(
            &spec,
            "detectors:\n  - name: d\n    feature: {field: B_acton, aggregation: ratio}\n",
        )
        .expect("write the spec");
        let raw = RawConfig {
            detector: DetectorConfig {
                spec: Some(spec.clone()),
                ..DetectorConfig::default()
            },
            ..RawConfig::default()
        };
        let err = Settings::from_raw(raw, None)
            .expect_err("an indicator no rule sets")
            .to_string();
        assert!(
            err.contains("`detectors[0].feature.field` `B_acton` is set by no rule"),
            "{err}"
        );
        assert!(err.contains("detector.spec"), "{err}");

        let raw = RawConfig {
            detector: DetectorConfig {
                rules: Some(dir.path().join("missing.yaml")),
                ..DetectorConfig::default()
            },
            ..RawConfig::default()
        };
        let err = Settings::from_raw(raw, None)
            .expect_err("no rules file")
            .to_string();
        assert!(err.contains("detector.rules"), "{err}");

        let settings = Settings::from_raw(RawConfig::default(), None).expect("the defaults");
        assert!(
            settings.spec_warnings.is_empty(),
            "{:?}",
            settings.spec_warnings
        );
    }

    #[test]
    fn a_shard_count_the_spec_cannot_fill_names_the_key_and_the_most() {
        let most = shards::most(&Spec::default_spec().expect("the default spec"));
        for shards in [0, most + 1] {
            let raw = RawConfig {
                detector: DetectorConfig {
                    shards,
                    ..DetectorConfig::default()
                },
                ..RawConfig::default()
            };
            let err = Settings::from_raw(raw, None)
                .expect_err("no such split")
                .to_string();
            assert!(err.contains("detector.shards"), "{err}");
            assert!(err.contains(&format!("is {shards}")), "{err}");
            assert!(err.contains(&format!("give 1 to {most}")), "{err}");
        }
        let raw = RawConfig {
            detector: DetectorConfig {
                shards: most,
                ..DetectorConfig::default()
            },
            ..RawConfig::default()
        };
        let settings = Settings::from_raw(raw, None).expect("the most shards");
        assert_eq!((settings.shards, settings.part), (most, Part::WHOLE));
    }

    #[test]
    fn fewer_shards_than_a_detectors_entity_parts_names_the_key_and_the_least() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let spec = dir.path().join("spec.yaml");
        std::fs::write(
            &spec,
            "detectors:\n  - name: d\n    feature: {field: B_action}\n    \
             category: {field: httpRequest.clientIp, parts: 3}\n",
        )
        .expect("write the spec");
        let config = |shards| RawConfig {
            detector: DetectorConfig {
                spec: Some(spec.clone()),
                shards,
                ..DetectorConfig::default()
            },
            ..RawConfig::default()
        };
        let err = Settings::from_raw(config(2), None)
            .expect_err("3 parts in 2 shards")
            .to_string();
        assert!(err.contains("detector.shards"), "{err}");
        assert!(err.contains("is 2"), "{err}");
        assert!(err.contains("give 3 to 3"), "{err}");
        assert!(err.contains("split in 3 parts (category.parts)"), "{err}");
        let settings = Settings::from_raw(config(3), None).expect("a shard per part");
        assert_eq!(settings.shards, 3);
    }
}
