//! The sink's configuration: the raw form (YAML file and `LOGWARDEN_*` environment) and the
//! validated [`Settings`] the service sees.

use std::time::Duration;

use pipeline::backoff::Backoff;
use pipeline::config::{ConfigError, OpenSearchConfig};
use pipeline::kafka::KafkaConfig;
use pipeline::search::EventsIndex;

use crate::bulk::AcceptedDays;
use pipeline::telemetry::TelemetryConfig;
use serde::Deserialize;

/// Default telemetry port of the sink.
pub const TELEMETRY_PORT: u16 = 9103;

/// The config file and environment, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Brokers and topics (reads `enriched`, writes `dead-letter`).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Logs and the metrics server.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The cluster to load.
    #[serde(default)]
    pub opensearch: OpenSearchConfig,
    /// The stage itself.
    #[serde(default)]
    pub sink: SinkConfig,
}

/// The `sink` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Name of the events index: daily indices `<index>-YYYY.MM.DD` under the alias `<index>`.
    pub index: String,
    /// Consumer group of the stage; every replica uses the same one.
    pub group_id: String,
    /// Static group membership id (default `$HOSTNAME`, the pod name).
    pub instance_id: Option<String>,
    /// A batch closes at this many records...
    pub batch_records: usize,
    /// ...or this many bytes of documents...
    pub batch_bytes: usize,
    /// ...or this long after its first record, in milliseconds.
    pub batch_ms: u64,
    /// Bulk requests in flight at once.
    pub max_requests: usize,
    /// Longest a bulk request may take before it counts as failed and is retried, in ms.
    pub request_timeout_ms: u64,
    /// First retry delay, in milliseconds; doubles per attempt, with jitter.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds: how soon the sink notices OpenSearch is back.
    pub retry_max_ms: u64,
    /// Records dated more than this many days before today (UTC) go to `dead-letter`
    /// (`day_out_of_range`) instead of creating a daily index: keep it at the events' retention
    /// (`provisioning.retention.events`, 30 days by default), whose older indices are deleted.
    pub accept_days_past: u32,
    /// Records dated more than this many days after today (UTC) go to `dead-letter`
    /// (`day_out_of_range`): a sender's wrong clock cannot create indices for years ahead.
    pub accept_days_future: u32,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            index: "logwarden-events".to_owned(),
            group_id: "logwarden-sink".to_owned(),
            instance_id: None,
            batch_records: 5_000,
            batch_bytes: 5 * 1024 * 1024,
            batch_ms: 1_000,
            max_requests: 2,
            request_timeout_ms: 30_000,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            accept_days_past: 30,
            accept_days_future: 1,
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
    /// The events index and its template.
    pub index: EventsIndex,
    /// Consumer group.
    pub group_id: String,
    /// Static membership id.
    pub instance_id: String,
    /// Batch limits.
    pub batch: BatchLimits,
    /// Bulk requests in flight.
    pub max_requests: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Waits before retrying what OpenSearch could not take (`retry_initial_ms` doubling to
    /// `retry_max_ms`, jittered).
    pub backoff: Backoff,
    /// The days a record may be dated, around today.
    pub accept_days: AcceptedDays,
}

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records.
    pub records: usize,
    /// Bytes of documents.
    pub bytes: usize,
    /// Time since the first record.
    pub time: Duration,
}

impl Settings {
    /// Validates `raw`; `hostname` is the default instance id.
    pub fn from_raw(raw: RawConfig, hostname: Option<String>) -> Result<Self, ConfigError> {
        raw.kafka.validate()?;
        let s = raw.sink;
        let index = EventsIndex::new(&s.index, "sink.index")?;
        if s.group_id.trim().is_empty() {
            return Err(ConfigError::invalid(
                "sink.group_id",
                "is empty",
                "name the consumer group, e.g. logwarden-sink",
            ));
        }
        for (key, value) in [
            ("sink.batch_records", s.batch_records as u64),
            ("sink.batch_bytes", s.batch_bytes as u64),
            ("sink.batch_ms", s.batch_ms),
            ("sink.max_requests", s.max_requests as u64),
            ("sink.request_timeout_ms", s.request_timeout_ms),
            ("sink.retry_initial_ms", s.retry_initial_ms),
            ("sink.retry_max_ms", s.retry_max_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "is 0",
                    "give a value of at least 1",
                ));
            }
        }
        if s.retry_max_ms < s.retry_initial_ms {
            return Err(ConfigError::invalid(
                "sink.retry_max_ms",
                format!(
                    "({}) is less than sink.retry_initial_ms ({})",
                    s.retry_max_ms, s.retry_initial_ms
                ),
                "make the cap at least the first delay",
            ));
        }
        let instance_id = s
            .instance_id
            .or(hostname)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "sink-0".to_owned());
        Ok(Self {
            kafka: raw.kafka,
            telemetry: raw.telemetry,
            opensearch: raw.opensearch,
            index,
            group_id: s.group_id,
            instance_id,
            batch: BatchLimits {
                records: s.batch_records,
                bytes: s.batch_bytes,
                time: Duration::from_millis(s.batch_ms),
            },
            max_requests: s.max_requests,
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            backoff: Backoff::new(
                Duration::from_millis(s.retry_initial_ms),
                Duration::from_millis(s.retry_max_ms),
            ),
            accept_days: AcceptedDays {
                past: s.accept_days_past,
                future: s.accept_days_future,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_raw(RawConfig::default(), Some("sink-7".into())).expect("ok");
        assert_eq!(settings.index.alias(), "logwarden-events");
        assert_eq!(settings.instance_id, "sink-7");
        assert_eq!(settings.batch.records, 5_000);
        assert_eq!(
            settings.accept_days,
            AcceptedDays {
                past: 30,
                future: 1
            }
        );
        assert_eq!(
            settings.backoff,
            Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: [(&str, &str, &str); 4] = [
            ("LOGWARDEN_SINK__INDEX", "Events", "sink.index"),
            ("LOGWARDEN_SINK__BATCH_RECORDS", "0", "sink.batch_records"),
            ("LOGWARDEN_SINK__MAX_REQUESTS", "0", "sink.max_requests"),
            ("LOGWARDEN_SINK__RETRY_MAX_MS", "10", "sink.retry_max_ms"),
        ];
        for (variable, value, key) in cases {
            let raw: RawConfig =
                pipeline::config::load_from(None, [(variable.to_owned(), value.to_owned())])
                    .expect("parses");
            let err = Settings::from_raw(raw, None)
                .expect_err(variable)
                .to_string();
            assert!(err.contains(key), "{variable}={value}: {err}");
        }
        let err = pipeline::config::load_from::<RawConfig>(
            None,
            [("LOGWARDEN_SINK__BATCH_SIZE".to_owned(), "1".to_owned())],
        )
        .expect_err("unknown key")
        .to_string();
        assert!(err.contains("sink.batch_size"), "{err}");
    }
}
