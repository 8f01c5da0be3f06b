//! The producer's configuration: the raw form (YAML file, `LOGWARDEN_*` environment, command-line
//! flags on top) and the validated [`Settings`] the run loop sees.
//!
//! Generator choices live under `generator` in the config so a Kubernetes deployment can set them
//! with environment variables (`LOGWARDEN_GENERATOR__RATE=200`); the same choices as flags win
//! over the config for one-off runs.

use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, OpenSearchConfig};
use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::TelemetryConfig;
use pipeline::wire::{MonitoredField, Source};
use serde::Deserialize;

use crate::scenario::{Phase, PhaseKind, Scenario, ScenarioError, check_rate, parse_duration};
use crate::schedule::Options;

/// Default telemetry port of the producer.
pub const TELEMETRY_PORT: u16 = 9101;

/// Events per second when nothing sets a rate.
pub const DEFAULT_RATE: f64 = 20.0;

/// How long an anomaly run lasts when no duration is given.
pub const DEFAULT_ANOMALY_DURATION: Duration = Duration::from_secs(300);

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
    /// Accepted so one environment can configure every service; the producer does not use it.
    #[serde(default)]
    pub opensearch: OpenSearchConfig,
    /// What to generate.
    #[serde(default)]
    pub generator: GeneratorConfig,
}

/// What to generate; every key can also be given as a flag of the same name.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Events per second per producer instance (each replica produces this rate).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Generate this real source's records instead of the seed's: waf, cloudtrail, syslog,
    /// cloudwatch or splunk. Kafka output carries it in the `logwarden-source` header, as
    /// logwarden-ingest writes; stdout gets the records as their senders send them.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Inject an anomaly on this field (action, httpSourceName, httpStatus, country,
    /// httpMethod) or on `random` (one of them picked from the seed), for `--duration`; with
    /// `--source`, one of the source's indicators (e.g. `syslog_auth_failure`).
    #[arg(long, value_name = "FIELD")]
    pub anomaly: Option<String>,
    /// How long to run: the anomaly phase's length with `--anomaly` (default 5m), otherwise how
    /// long normal traffic runs (default: until stopped). e.g. `90s`, `5m`, `1h`.
    #[arg(long)]
    pub duration: Option<String>,
    /// A scenario file (YAML list of phases); overrides `--anomaly`.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Write history instead of live traffic: this span ending now, as fast as the output takes
    /// it, then exit. With `--scenario`, the scenario is laid over the past.
    #[arg(long, value_name = "SPAN")]
    pub backfill: Option<String>,
    /// Seed of the generator: the same seed and start give identical output.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Event time of the first record, epoch milliseconds (default: now). Fixing it with
    /// `--seed` makes output reproducible byte for byte.
    #[arg(long, value_name = "EPOCH_MS")]
    pub start_ms: Option<i64>,
    /// `kafka` (default) or `stdout` (NDJSON, for offline use).
    #[arg(long, value_enum)]
    pub output: Option<OutputKind>,
    /// With `--output stdout`: write ground-truth labels (NDJSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// This producer instance's name, unique among replicas (default: `$HOSTNAME`, the pod name
    /// in Kubernetes).
    #[arg(long)]
    pub instance: Option<String>,
    /// The run id carried by labels and request ids (default: derived from the start time).
    #[arg(long)]
    pub run_id: Option<String>,
}

impl GeneratorConfig {
    /// `self`, with every field `flags` sets replaced by the flag's value.
    pub fn overridden_by(self, flags: GeneratorConfig) -> Self {
        Self {
            rate: flags.rate.or(self.rate),
            source: flags.source.or(self.source),
            anomaly: flags.anomaly.or(self.anomaly),
            duration: flags.duration.or(self.duration),
            scenario: flags.scenario.or(self.scenario),
            count: flags.count.or(self.count),
            backfill: flags.backfill.or(self.backfill),
            seed: flags.seed.or(self.seed),
            start_ms: flags.start_ms.or(self.start_ms),
            output: flags.output.or(self.output),
            labels_file: flags.labels_file.or(self.labels_file),
            instance: flags.instance.or(self.instance),
            run_id: flags.run_id.or(self.run_id),
        }
    }
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// The `raw` topic; labels to the `labels` topic.
    Kafka,
    /// NDJSON on standard output; labels to `--labels-file`.
    Stdout,
}

/// Live traffic paced by the wall clock, or history written as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timeline {
    /// Starting at the given time, each record sent when its timestamp comes.
    Live {
        /// First event time, epoch ms.
        start_ms: i64,
    },
    /// The span ending at `now_ms`.
    Backfill {
        /// End of the history, epoch ms.
        now_ms: i64,
        /// Its length.
        span: Duration,
    },
}

/// Validated settings: nothing downstream sees the raw form.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Brokers and topics.
    pub kafka: KafkaConfig,
    /// Logs and the metrics server.
    pub telemetry: TelemetryConfig,
    /// The phases to run.
    pub scenario: Scenario,
    /// Live or backfill.
    pub timeline: Timeline,
    /// Seed, default rate, count.
    pub options: Options,
    /// Where records go.
    pub output: OutputKind,
    /// Where labels go in stdout mode.
    pub labels_file: Option<PathBuf>,
    /// This instance's name.
    pub instance: String,
    /// This run's id.
    pub run_id: String,
}

impl Settings {
    /// Validates `raw` (flags already merged into `raw.generator`), with `now_ms` as the clock
    /// and `hostname` as the default instance name.
    pub fn from_raw(
        raw: RawConfig,
        now_ms: i64,
        hostname: Option<String>,
    ) -> Result<Self, ConfigError> {
        raw.kafka.validate()?;
        let g = raw.generator;
        let rate = match g.rate {
            Some(rate) => check_rate(rate).map_err(|err| {
                ConfigError::invalid(
                    "generator.rate",
                    err.to_string(),
                    "give events per second above 0, e.g. 50",
                )
            })?,
            None => DEFAULT_RATE,
        };
        let duration = g
            .duration
            .as_deref()
            .map(|text| {
                parse_duration(text).map_err(|err| {
                    ConfigError::invalid("generator.duration", err.to_string(), "e.g. 90s, 5m, 1h")
                })
            })
            .transpose()?;
        let source = g
            .source
            .as_deref()
            .map(|name| {
                Source::parse(name)
                    .filter(|s| crate::indicators::GENERATED.contains(s))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "generator.source",
                            format!("`{name}` is not a source the producer generates"),
                            "give waf, cloudtrail, syslog, cloudwatch or splunk (or leave it out for the seed's records)",
                        )
                    })
            })
            .transpose()?;
        let invalid = |err: ScenarioError| {
            ConfigError::invalid("generator", err.to_string(), "fix the value")
        };
        let scenario = match (&g.scenario, &g.anomaly, source) {
            (Some(path), _, _) => {
                let scenario = Scenario::load(path).map_err(|err| {
                    ConfigError::invalid(
                        "generator.scenario",
                        err.to_string(),
                        "fix the scenario file",
                    )
                })?;
                if source.is_some() && source != scenario.source {
                    return Err(ConfigError::invalid(
                        "generator.source",
                        format!(
                            "differs from the scenario file's `source:` ({:?})",
                            scenario.source.map(|s| s.as_str())
                        ),
                        "leave --source out: the scenario file names its source",
                    ));
                }
                scenario
            }
            (None, Some(target), Some(source)) => {
                let duration = duration.unwrap_or(DEFAULT_ANOMALY_DURATION);
                let indicator = crate::indicators::find(source, target).ok_or_else(|| {
                    ConfigError::invalid(
                        "generator.anomaly",
                        format!("`{target}` is not a {source} indicator"),
                        format!("name one of {}", crate::indicators::of(source).join(", ")),
                    )
                })?;
                Scenario::sourced(
                    source,
                    format!("{source}-{indicator}"),
                    Some(rate),
                    vec![Phase::inject(indicator, duration)],
                )
                .map_err(invalid)?
            }
            (None, None, Some(source)) => {
                let phase = Phase::new(PhaseKind::Normal, duration);
                Scenario::sourced(source, source.as_str(), Some(rate), vec![phase])
                    .map_err(invalid)?
            }
            (None, Some(target), None) => {
                let duration = duration.unwrap_or(DEFAULT_ANOMALY_DURATION);
                let built = if target.eq_ignore_ascii_case("random") {
                    Scenario::random_anomaly(duration, rate)
                } else {
                    let field = MonitoredField::parse(target).map_err(|err| {
                        ConfigError::invalid(
                            "generator.anomaly",
                            err.to_string(),
                            "name one of those fields, or `random`",
                        )
                    })?;
                    Scenario::anomaly(field, duration, rate)
                };
                built.map_err(|err| {
                    ConfigError::invalid("generator", err.to_string(), "fix the value")
                })?
            }
            (None, None, None) => Scenario::normal(rate, duration).map_err(invalid)?,
        };
        if g.count == Some(0) {
            return Err(ConfigError::invalid(
                "generator.count",
                "is 0",
                "give at least 1, or leave it out",
            ));
        }
        let timeline = match g.backfill.as_deref() {
            Some(text) => Timeline::Backfill {
                now_ms: g.start_ms.unwrap_or(now_ms),
                span: parse_duration(text).map_err(|err| {
                    ConfigError::invalid("generator.backfill", err.to_string(), "e.g. 60m or 2h")
                })?,
            },
            None => Timeline::Live {
                start_ms: g.start_ms.unwrap_or(now_ms),
            },
        };
        let output = g.output.unwrap_or(OutputKind::Kafka);
        if g.labels_file.is_some() && output == OutputKind::Kafka {
            return Err(ConfigError::invalid(
                "generator.labels_file",
                "only applies to `--output stdout`",
                "leave it out: with Kafka output, labels go to the labels topic",
            ));
        }
        let instance = g
            .instance
            .or(hostname)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "producer-0".to_owned());
        if instance.contains('/') {
            return Err(ConfigError::invalid(
                "generator.instance",
                format!("`{instance}` contains `/`"),
                "use a name without `/`, e.g. the pod name",
            ));
        }
        let run_id = g.run_id.unwrap_or_else(|| format!("run-{now_ms}"));
        Ok(Self {
            kafka: raw.kafka,
            telemetry: raw.telemetry,
            scenario,
            timeline,
            options: Options {
                seed: g.seed.unwrap_or(now_ms.unsigned_abs()),
                default_rate: Some(rate),
                count: g.count,
            },
            output,
            labels_file: g.labels_file,
            instance,
            run_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(generator: GeneratorConfig) -> Result<Settings, ConfigError> {
        let raw = RawConfig {
            generator,
            ..RawConfig::default()
        };
        Settings::from_raw(raw, 1_700_000_000_000, Some("pod-a".to_owned()))
    }

    #[test]
    fn defaults_are_live_normal_traffic_to_kafka() {
        let s = settings(GeneratorConfig::default()).expect("valid");
        assert_eq!(s.output, OutputKind::Kafka);
        assert_eq!(s.instance, "pod-a");
        assert_eq!(
            s.timeline,
            Timeline::Live {
                start_ms: 1_700_000_000_000
            }
        );
        assert_eq!(
            s.scenario.duration(),
            None,
            "normal traffic runs until stopped"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_valid_ones() {
        let cases = [
            (
                GeneratorConfig {
                    anomaly: Some("colour".into()),
                    ..Default::default()
                },
                ["generator.anomaly", "colour", "httpMethod"],
            ),
            (
                GeneratorConfig {
                    rate: Some(0.0),
                    ..Default::default()
                },
                ["generator.rate", "0", "above 0"],
            ),
            (
                GeneratorConfig {
                    rate: Some(-5.0),
                    ..Default::default()
                },
                ["generator.rate", "-5", "above 0"],
            ),
            (
                GeneratorConfig {
                    backfill: Some("soon".into()),
                    ..Default::default()
                },
                ["generator.backfill", "soon", "60m"],
            ),
            (
                GeneratorConfig {
                    scenario: Some("/nonexistent/scenario.yaml".into()),
                    ..Default::default()
                },
                [
                    "generator.scenario",
                    "/nonexistent/scenario.yaml",
                    "scenario",
                ],
            ),
        ];
        for (generator, needles) in cases {
            let err = settings(generator.clone())
                .expect_err("invalid")
                .to_string();
            for needle in needles {
                assert!(
                    err.contains(needle),
                    "{generator:?}: `{needle}` not in: {err}"
                );
            }
        }
    }

    #[test]
    fn flags_override_the_config() {
        let config = GeneratorConfig {
            rate: Some(5.0),
            seed: Some(1),
            ..Default::default()
        };
        let flags = GeneratorConfig {
            rate: Some(9.0),
            ..Default::default()
        };
        let merged = config.overridden_by(flags);
        assert_eq!(merged.rate, Some(9.0));
        assert_eq!(merged.seed, Some(1));
    }

    #[test]
    fn durations_and_spans_use_the_workspace_grammar() {
        for (text, seconds) in [("3m", 180), ("60m", 3_600), ("1h 30m", 5_400), ("90s", 90)] {
            let s = settings(GeneratorConfig {
                duration: Some(text.into()),
                backfill: Some(text.into()),
                ..Default::default()
            })
            .expect("valid");
            let expected = Duration::from_secs(seconds);
            assert_eq!(s.scenario.duration(), Some(expected), "{text}");
            assert_eq!(
                s.timeline,
                Timeline::Backfill {
                    now_ms: 1_700_000_000_000,
                    span: expected
                },
                "{text}"
            );
        }
        let err = settings(GeneratorConfig {
            duration: Some("5 parsecs".into()),
            ..Default::default()
        })
        .expect_err("invalid")
        .to_string();
        assert!(
            err.contains("generator.duration")
                && err.contains("invalid duration `5 parsecs`: unknown time unit \"parsecs\""),
            "{err}"
        );
    }

    #[test]
    fn a_source_run_injects_its_indicators_only() {
        let s = settings(GeneratorConfig {
            source: Some("cloudtrail".into()),
            anomaly: Some("ct_access_denied".into()),
            duration: Some("1m".into()),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(s.scenario.source, Some(Source::Cloudtrail));
        assert_eq!(
            s.scenario.phases[0].kind,
            crate::scenario::PhaseKind::Inject("ct_access_denied")
        );
        for (source, anomaly, says) in [
            (
                "nginx",
                None,
                "generator.source` `nginx` is not a source the producer generates",
            ),
            (
                "syslog",
                Some("country"),
                "`country` is not a syslog indicator",
            ),
            (
                "ndjson",
                None,
                "waf, cloudtrail, syslog, cloudwatch or splunk",
            ),
        ] {
            let err = settings(GeneratorConfig {
                source: Some(source.into()),
                anomaly: anomaly.map(Into::into),
                ..Default::default()
            })
            .expect_err("invalid")
            .to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn an_anomaly_run_is_one_phase_of_the_given_length() {
        let s = settings(GeneratorConfig {
            anomaly: Some("country".into()),
            duration: Some("2m".into()),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(s.scenario.duration(), Some(Duration::from_secs(120)));
        assert_eq!(s.scenario.phases.len(), 1);
    }
}
