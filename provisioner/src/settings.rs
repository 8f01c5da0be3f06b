//! The provisioner's configuration: the raw form (YAML file and `LOGWARDEN_*` environment, the
//! same sections every logwarden service accepts) and the validated [`Settings`], with the spec
//! loaded and checked. Command-line flags override the file and the environment.

use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, OpenSearchConfig};
use pipeline::kafka::KafkaConfig;
use pipeline::spec::{Spec, SpecError, TargetChoice};
use pipeline::telemetry::TelemetryConfig;
use serde::Deserialize;

/// The config file and environment, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The brokers and topic names `topics` creates or checks (the section every service reads;
    /// the other commands ignore it, so one environment serves every service).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Logs (the provisioner serves no metrics: it is a Job).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The cluster to converge.
    #[serde(default)]
    pub opensearch: OpenSearchConfig,
    /// The provisioner itself.
    #[serde(default)]
    pub provisioner: ProvisionerConfig,
}

/// The `provisioner` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionerConfig {
    /// The spec; the embedded default (the seed's five detectors) when unset.
    pub spec: Option<PathBuf>,
    /// How long to wait for OpenSearch (and, for `opensearch-plugins`, its plugins), in
    /// milliseconds.
    pub wait_ms: u64,
    /// Timeout of each request, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for ProvisionerConfig {
    fn default() -> Self {
        Self {
            spec: None,
            wait_ms: 120_000,
            request_timeout_ms: 30_000,
        }
    }
}

/// Flags given on the command line, over the file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--spec`.
    pub spec: Option<PathBuf>,
    /// `--url`.
    pub url: Option<String>,
    /// `--target`.
    pub target: Option<TargetChoice>,
    /// `--wait`.
    pub wait: Option<Duration>,
}

/// Why the settings are unusable: a config key, or the spec (naming its own key).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A config key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// The cluster.
    pub opensearch: OpenSearchConfig,
    /// The spec, checked.
    pub spec: Spec,
    /// The target to converge (the spec's unless `--target` says otherwise).
    pub target: TargetChoice,
    /// How long to wait for the cluster and its plugins.
    pub wait: Duration,
    /// Timeout of each request.
    pub request_timeout: Duration,
}

impl Settings {
    /// Validates `raw` with the command line's `overrides`, and loads the spec.
    pub fn from_raw(raw: RawConfig, overrides: Overrides) -> Result<Self, SettingsError> {
        let p = raw.provisioner;
        if p.request_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "provisioner.request_timeout_ms",
                "is 0",
                "use a timeout in milliseconds, e.g. 30000",
            )
            .into());
        }
        let path = overrides.spec.or(p.spec);
        let spec = match &path {
            Some(path) => Spec::load(path),
            None => Spec::default_spec(),
        }?;
        let mut opensearch = raw.opensearch;
        if let Some(url) = overrides.url {
            opensearch.url = url;
        }
        Ok(Self {
            telemetry: raw.telemetry,
            opensearch,
            target: overrides.target.unwrap_or(spec.provisioning.target),
            spec,
            wait: overrides.wait.unwrap_or(Duration::from_millis(p.wait_ms)),
            request_timeout: Duration::from_millis(p.request_timeout_ms),
        })
    }
}

/// The validated settings of `topics`: only Kafka (the spec and OpenSearch are not read).
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// The brokers, their security and the topic names.
    pub kafka: KafkaConfig,
    /// How long to wait for the brokers to answer.
    pub wait: Duration,
}

impl KafkaSettings {
    /// Validates the `kafka` section of `raw`; `wait` is `--wait` (else `provisioner.wait_ms`).
    pub fn from_raw(raw: RawConfig, wait: Option<Duration>) -> Result<Self, SettingsError> {
        raw.kafka.validate()?;
        Ok(Self {
            telemetry: raw.telemetry,
            kafka: raw.kafka,
            wait: wait.unwrap_or(Duration::from_millis(raw.provisioner.wait_ms)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_spec_and_the_environment() {
        let raw: RawConfig = pipeline::config::load_from(
            None,
            [
                (
                    "LOGWARDEN_OPENSEARCH__URL".to_owned(),
                    "http://a:9200".to_owned(),
                ),
                (
                    "LOGWARDEN_PROVISIONER__WAIT_MS".to_owned(),
                    "5000".to_owned(),
                ),
            ],
        )
        .expect("valid");
        let settings = Settings::from_raw(
            raw,
            Overrides {
                url: Some("http://b:9200".into()),
                target: Some(TargetChoice::OpensearchPlugins),
                ..Overrides::default()
            },
        )
        .expect("valid");
        assert_eq!(settings.opensearch.url, "http://b:9200");
        assert_eq!(settings.target, TargetChoice::OpensearchPlugins);
        assert_eq!(settings.wait, Duration::from_secs(5));
        assert_eq!(
            settings.spec,
            pipeline::spec::Spec::default_spec().expect("valid"),
            "no --spec: the default spec"
        );
    }

    #[test]
    fn a_bad_spec_names_the_key_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("lw-prov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("spec.yaml");
        std::fs::write(
            &path,
            "detectors: [{name: a, feature: {field: x}}]\nprovisioning: {target: plugins}\n",
        )
        .expect("write");
        let err = Settings::from_raw(
            RawConfig::default(),
            Overrides {
                spec: Some(path),
                ..Overrides::default()
            },
        )
        .expect_err("bad target");
        let text = err.to_string();
        assert!(text.contains("provisioning.target"), "{text}");
        assert!(text.contains("opensearch-plugins"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
