//! The detection spec: which detectors watch which indicator, how often, with which model
//! settings, and which monitors alert whom. One YAML file, read by the detector service and by
//! the provisioner. The default spec ([`Spec::default_spec`], `spec/default.yaml`)
//! reproduces the seed (five detectors, one per monitored field, each with a monitor), then adds
//! each source's preset: a detector per indicator of the transformer's default rules for that
//! source, filtered on the records' `logwarden_source`, each with a monitor.
//!
//! A spec is read strictly (unknown keys are errors naming the key path) and then checked as a
//! whole ([`Spec::validate`]): names unique, monitors naming existing detectors and channels,
//! intervals sensible. Secrets (webhook URLs with tokens, SMTP passwords) are never in the file:
//! a channel names the environment variable or file that holds them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::SECRET_ENV_PREFIX;

pub mod rules;
mod validate;
pub use validate::MAX_ENTITY_PARTS;

/// The default spec, embedded: the seed's five detectors and monitors, each source's preset
/// detectors and monitors, one webhook channel.
pub const DEFAULT_SPEC: &str = include_str!("../spec/default.yaml");

/// Why a spec is unusable: the key path, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec {origin}: `{key}` {problem}: {fix}")]
pub struct SpecError {
    /// Where the spec came from (a path, or "default").
    pub origin: String,
    /// The offending key, e.g. `detectors[2].interval`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// The whole spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The events alias the sink writes (history for the cold start).
    #[serde(default = "default_events")]
    pub events: String,
    /// The index anomaly results are written to.
    #[serde(default = "default_results")]
    pub results: String,
    /// The index model checkpoints are written to.
    #[serde(default = "default_checkpoints")]
    pub checkpoints: String,
    /// The index each delivered notification is recorded in ([`crate::wire::AlertDoc`]: which
    /// monitor and detector, which episode, which channel, when it was delivered), so that
    /// `logwarden-detector evaluate` can measure the time to an alert's delivery.
    #[serde(default = "default_alerts")]
    pub alerts: String,
    /// The detectors.
    pub detectors: Vec<DetectorSpec>,
    /// The monitors: conditions on results, and whom to tell.
    #[serde(default)]
    pub monitors: Vec<MonitorSpec>,
    /// Where alerts go.
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
    /// How `logwarden-provisioner` prepares OpenSearch (the detector ignores it).
    #[serde(default)]
    pub provisioning: Provisioning,
}

/// What the provisioner converges, besides the detectors, monitors and channels above.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// Where detection runs: logwarden's own detector, OpenSearch's plugins, or whichever the
    /// cluster supports.
    #[serde(default)]
    pub target: TargetChoice,
    /// How long data is kept.
    #[serde(default)]
    pub retention: Retention,
    /// The mark on every object the provisioner creates (`managed_by: <owner>`); `--prune`
    /// deletes only objects with this mark. Two deployments sharing a cluster need two owners.
    #[serde(default = "default_owner")]
    pub owner: String,
}

fn default_owner() -> String {
    "logwarden".to_owned()
}

impl Default for Provisioning {
    fn default() -> Self {
        Self {
            target: TargetChoice::default(),
            retention: Retention::default(),
            owner: default_owner(),
        }
    }
}

/// The provisioning target as declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetChoice {
    /// `opensearch-plugins` when the cluster has the anomaly-detection, alerting and
    /// notifications plugins, else `builtin`.
    #[default]
    Auto,
    /// logwarden's own detector scores and alerts; OpenSearch gets templates, the results index
    /// and retention.
    Builtin,
    /// The detectors, monitors and channels are created in OpenSearch's plugins.
    OpensearchPlugins,
}

impl fmt::Display for TargetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Builtin => "builtin",
            Self::OpensearchPlugins => "opensearch-plugins",
        })
    }
}

/// Data retention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Daily event indices older than this (by the day in their name) are deleted; `null` keeps
    /// them forever.
    #[serde(default = "default_events_retention", with = "humantime_serde::option")]
    pub events: Option<Duration>,
    /// Results in the results index whose interval ended longer ago than this are deleted (by
    /// `data_end_time`), and so are the alert deliveries recorded longer ago in the alerts index
    /// (by `delivered_at`); `null` keeps them forever.
    #[serde(
        default = "default_results_retention",
        with = "humantime_serde::option"
    )]
    pub results: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            events: default_events_retention(),
            results: default_results_retention(),
        }
    }
}

fn default_events_retention() -> Option<Duration> {
    Some(Duration::from_secs(30 * 86_400))
}

fn default_results_retention() -> Option<Duration> {
    Some(Duration::from_secs(90 * 86_400))
}

fn default_events() -> String {
    "logwarden-events".to_owned()
}
fn default_results() -> String {
    "logwarden-anomaly-results".to_owned()
}
fn default_alerts() -> String {
    "logwarden-alerts".to_owned()
}
fn default_checkpoints() -> String {
    "logwarden-detector-checkpoints".to_owned()
}

/// One detector: one feature of the event stream, scored per interval.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// Unique name, e.g. `country-anomaly-detector`.
    pub name: String,
    /// The feature: which field, aggregated how.
    pub feature: Feature,
    /// Further features scored with `feature`, each by its own thresholding (up to five
    /// features in all, as OpenSearch's plugin allows): the interval's grade is the highest,
    /// and its result says which feature drove it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_features: Vec<Feature>,
    /// One model per value of this field (a client address, a host, an account): the
    /// detector judges each entity against its own history, and names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// Interval length (e.g. `1m`; sub-minute intervals such as `5s` are allowed).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long after an interval ends to wait for late events before scoring it.
    #[serde(default = "default_window_delay", with = "humantime_serde")]
    pub window_delay: Duration,
    /// Model settings.
    #[serde(default)]
    pub model: ModelSpec,
    /// The field of the producer's ground-truth labels whose phases are this detector's
    /// anomalies (`action`, `httpSourceName`, `httpStatus`, `country`, `httpMethod` for the
    /// seed's records; a preset's indicator, e.g. `syslog_auth_failure`, for a source's), for
    /// `logwarden-detector evaluate`.
    #[serde(default, skip_serializing)]
    pub ground_truth: Option<String>,
    /// After this many consecutive closed intervals without a record, the detector is reported
    /// as having no data (`/readyz`, `logwarden_detector_no_data`); 0 never. Not part of what
    /// the detector scores, so not serialized (its checkpoints' fingerprint ignores it).
    #[serde(default = "default_no_data_after", skip_serializing)]
    pub no_data_after: u32,
}

/// The default [`DetectorSpec::no_data_after`]: 10 intervals.
pub const DEFAULT_NO_DATA_AFTER: u32 = 10;

fn default_no_data_after() -> u32 {
    DEFAULT_NO_DATA_AFTER
}

impl DetectorSpec {
    /// The name of the detector's feature, e.g. `sum_UNK_country` (`count` alone when it has no
    /// field): in results, and as the plugin detector's feature name.
    pub fn feature_name(&self) -> String {
        let aggregation = match self.feature.aggregation {
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
            Aggregation::Rate => "rate",
            Aggregation::Ratio => "ratio",
            Aggregation::NewValues => "new_values",
        };
        match &self.feature.field {
            Some(field) => format!("{aggregation}_{field}"),
            None => aggregation.to_owned(),
        }
    }

    /// Every feature: `feature`, then `extra_features`.
    pub fn features(&self) -> impl Iterator<Item = &Feature> {
        std::iter::once(&self.feature).chain(&self.extra_features)
    }

    /// The detector as seen by its extra feature `i` (0-based): the same detector with that
    /// feature as its only one, and the model's `min_rise` only when it is in that feature's
    /// units (the default of its aggregation otherwise).
    pub fn extra_view(&self, i: usize) -> Option<DetectorSpec> {
        let feature = self.extra_features.get(i)?.clone();
        let mut view = self.clone();
        if feature.aggregation != self.feature.aggregation {
            view.model.min_rise = None;
        }
        view.feature = feature;
        view.extra_features = Vec::new();
        Some(view)
    }

    /// The least rise that can be an anomaly, in the feature's units: the model's `min_rise`, or
    /// by default [`DEFAULT_MIN_RISE`] for counts, sums and rates and [`DEFAULT_MIN_RISE_RATIO`]
    /// for a ratio.
    pub fn min_rise(&self) -> f64 {
        self.model
            .min_rise
            .unwrap_or(match self.feature.aggregation {
                Aggregation::Ratio => DEFAULT_MIN_RISE_RATIO,
                _ => DEFAULT_MIN_RISE,
            })
    }

    /// The fewest events an interval of a `ratio` needs to be judged ([`DEFAULT_MIN_COUNT`]
    /// unless the feature says); 0 for the other aggregations, which judge every interval.
    pub fn min_count(&self) -> u64 {
        match self.feature.aggregation {
            Aggregation::Ratio => self.feature.min_count.unwrap_or(DEFAULT_MIN_COUNT),
            _ => 0,
        }
    }
}

/// The default least rise of a count, sum or rate: 5 events (or units) above the baseline.
pub const DEFAULT_MIN_RISE: f64 = 5.0;
/// The default least rise of a ratio: 2 points (0.02) above the baseline's share.
pub const DEFAULT_MIN_RISE_RATIO: f64 = 0.02;
/// The default fewest events an interval of a ratio needs to be judged.
pub const DEFAULT_MIN_COUNT: u64 = 20;

/// A detector's category field: one model per entity value, their number bounded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Dotted path of the field whose values are the entities, e.g. `httpRequest.clientIp`.
    pub field: String,
    /// The most entities with a model at once; beyond it the least recently seen is evicted.
    #[serde(default = "default_max_entities")]
    pub max_entities: usize,
    /// An entity without records for this long is evicted (its model forgotten).
    #[serde(default = "default_entity_idle", with = "humantime_serde")]
    pub idle: Duration,
    /// How many parts its entities are split into, by a hash of the value, so that
    /// `detector.shards` can give each part to a different replica; 1 (the default) keeps them
    /// together.
    #[serde(default = "one_part", skip_serializing_if = "is_one_part")]
    pub parts: usize,
    /// The part this detector scores, of [`Self::parts`]: set by the detector's split among
    /// shards, never read from a spec file; `None` scores every entity.
    #[serde(skip)]
    pub part: Option<usize>,
}

impl Category {
    /// Whether `entity` belongs to the part this detector scores ([`Self::part`]).
    pub fn holds(&self, entity: &str) -> bool {
        self.part
            .is_none_or(|part| crate::wire::entity_part(entity, self.parts) == part)
    }
}

fn one_part() -> usize {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one_part(parts: &usize) -> bool {
    *parts == 1
}

/// The default cap on a category detector's entities with a model.
pub const DEFAULT_MAX_ENTITIES: usize = 1_000;

fn default_max_entities() -> usize {
    DEFAULT_MAX_ENTITIES
}

fn default_entity_idle() -> Duration {
    Duration::from_secs(3_600)
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_window_delay() -> Duration {
    Duration::from_secs(10)
}

/// What a detector measures per interval.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// The numeric field (an indicator such as `UNK_country`); for `count`, optional.
    #[serde(default)]
    pub field: Option<String>,
    /// `sum` of the field, `count` of events, `rate` (sum per second), or `ratio` (the sum over
    /// the number of events: the share of bad events for a 0/1 indicator).
    #[serde(default)]
    pub aggregation: Aggregation,
    /// Only events whose field equals the value count: `{field: ..., value: ...}`.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// For a `ratio`: the fewest events an interval needs to be judged (fewer, and the interval
    /// gets a result saying so, with no grade); [`DEFAULT_MIN_COUNT`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u64>,
}

/// How values are aggregated per interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The sum of the field over the interval.
    #[default]
    Sum,
    /// The number of (matching) events.
    Count,
    /// The sum per second.
    Rate,
    /// The sum over the number of (matching) events: for a 0/1 indicator, the share of events
    /// that are bad, which a surge of normal traffic leaves unchanged.
    Ratio,
    /// The records whose field has a value the detector has not seen before (a region, an
    /// account, a user agent): learned from the history at a cold start or over the first
    /// `baseline` intervals, then any new value is flagged and named.
    NewValues,
}

/// An equality filter on one field (a string, number or boolean).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Dotted path, e.g. `httpRequest.country`.
    pub field: String,
    /// The value it must have.
    pub value: serde_json::Value,
}

/// Forest and thresholding settings; the defaults are the plugin's where it has one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// Consecutive intervals the forest sees as one point.
    pub shingle_size: usize,
    /// Trees in the forest.
    pub trees: usize,
    /// Points each tree keeps.
    pub sample_size: usize,
    /// Past intervals to train on at a cold start.
    pub history: usize,
    /// Intervals the baseline (mean and spread of normal values) looks back over.
    pub baseline: usize,
    /// The least rise above the baseline, in the feature's units, that can be an anomaly
    /// (keeps tiny absolute changes on near-zero series quiet); unset, it is
    /// [`DEFAULT_MIN_RISE`], or [`DEFAULT_MIN_RISE_RATIO`] for a ratio
    /// ([`DetectorSpec::min_rise`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rise: Option<f64>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            shingle_size: 8,
            trees: 50,
            sample_size: 256,
            history: 120,
            baseline: 60,
            min_rise: None,
        }
    }
}

/// A monitor: when a detector's results meet a condition, tell the channels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Unique name, e.g. `UNK_country-Monitor` (it appears in the alert's sentence).
    pub name: String,
    /// The detectors it watches.
    pub detectors: Vec<String>,
    /// Least anomaly grade that triggers (0 < grade ≤ 1).
    #[serde(default = "default_min_grade")]
    pub min_grade: f64,
    /// Least confidence that triggers. Unset, it is [`BUILTIN_MIN_CONFIDENCE`] for logwarden's
    /// detector and [`PLUGIN_MIN_CONFIDENCE`] for the plugin's, whose confidence starts low.
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// Severity, 1 (highest) to 5, as in the seed's monitors.
    #[serde(default = "default_severity")]
    pub severity: u8,
    /// While an episode lasts, notify again this often (`0s`: never).
    #[serde(default = "default_renotify", with = "humantime_serde")]
    pub renotify: Duration,
    /// The channels to tell, by name.
    pub channels: Vec<String>,
}

fn default_min_grade() -> f64 {
    0.1
}
/// The least confidence a monitor of logwarden's detector needs by default. Its model is restored
/// from checkpoints or trained on history, so confidence is high from the start.
pub const BUILTIN_MIN_CONFIDENCE: f64 = 0.5;

/// The least confidence a plugin monitor needs by default. Measured on OpenSearch 3.6's
/// anomaly-detection plugin: right after a cold start its confidence is about 0.3–0.4 and rises
/// about 0.01 per interval, so the dashboards' usual 0.7 would stay silent for hours.
pub const PLUGIN_MIN_CONFIDENCE: f64 = 0.2;

impl MonitorSpec {
    /// The confidence threshold logwarden's detector applies.
    pub fn builtin_min_confidence(&self) -> f64 {
        self.min_confidence.unwrap_or(BUILTIN_MIN_CONFIDENCE)
    }
}
fn default_severity() -> u8 {
    1
}
fn default_renotify() -> Duration {
    Duration::from_secs(600)
}

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Unique name.
    pub name: String,
    /// A generic webhook: a JSON body per alert.
    #[serde(default)]
    pub webhook: Option<Secret>,
    /// A Slack incoming webhook.
    #[serde(default)]
    pub slack: Option<Secret>,
    /// E-mail over SMTP.
    #[serde(default)]
    pub email: Option<EmailSpec>,
}

/// A secret value: from an environment variable, a file (a mounted Secret), or, for values that
/// are not secret (a receiver on loopback), inline. Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The variable holding it.
    #[serde(default)]
    pub env: Option<String>,
    /// The file holding it (trailing newline ignored).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The value itself (only for values that are not secret).
    #[serde(default)]
    pub value: Option<String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("env", &self.env)
            .field("file", &self.file)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Secret {
    /// Reads the secret; the error says which source failed and how to provide it, never the
    /// value.
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(value) = &self.value {
            return Ok(value.clone());
        }
        if let Some(variable) = &self.env {
            return match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Ok(value),
                Ok(_) => Err(format!(
                    "the environment variable {variable} is empty: set it to the secret, or mount \
                     the secret as a file and reference it with `file: /path`"
                )),
                Err(_) => Err(format!(
                    "the environment variable {variable} is not set: set it (in Kubernetes, from \
                     a Secret), or mount the secret as a file and reference it with `file: /path`"
                )),
            };
        }
        if let Some(path) = &self.file {
            return std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|err| {
                    format!(
                        "reading {}: {err}: mount the secret there, or reference an environment \
                         variable with `env: {SECRET_ENV_PREFIX}...`",
                        path.display()
                    )
                });
        }
        Err("no source given (set one of env, file, value)".to_owned())
    }
}

/// SMTP delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// SMTP server host.
    pub host: String,
    /// SMTP port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `none` (plain, e.g. a relay on loopback), `starttls` or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login, if the server wants one.
    #[serde(default)]
    pub username: Option<Secret>,
    /// Password, if the server wants one.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Accept logging in over a plaintext connection (`tls: none` with a username or password).
    #[serde(default)]
    pub allow_insecure: bool,
}

fn default_smtp_port() -> u16 {
    25
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// Upgrade with STARTTLS.
    Starttls,
    /// TLS from the start (port 465).
    Tls,
}

impl Spec {
    /// The embedded default spec.
    pub fn default_spec() -> Result<Self, SpecError> {
        Self::parse(DEFAULT_SPEC, "default")
    }

    /// Reads and checks the spec at `path`.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| SpecError {
            origin: origin.clone(),
            key: "(file)".into(),
            problem: format!("cannot be read: {err}"),
            fix: "give the path of a readable spec file".into(),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses and checks a spec's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SpecError> {
        let deserializer = serde_norway::Deserializer::from_str(text);
        let spec: Spec = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            SpecError {
                origin: origin.to_owned(),
                key: if key == "." { "(top)".into() } else { key },
                problem: err.into_inner().to_string(),
                fix: "see the default spec (`logwarden-detector spec`) for the format".into(),
            }
        })?;
        spec.validate(origin)?;
        Ok(spec)
    }

    /// Checks every detector's feature field against what `rules` produce ([`rules::check`]):
    /// the first error, or the warnings for fields read from the record itself.
    pub fn check_fields(
        &self,
        rules: &rules::RulesFields,
        origin: &str,
    ) -> Result<Vec<String>, SpecError> {
        rules::check(self, rules, origin)
    }

    /// The detector named `name`.
    pub fn detector(&self, name: &str) -> Option<&DetectorSpec> {
        self.detectors.iter().find(|d| d.name == name)
    }

    /// Keeps the detectors `keep` accepts, and the monitors whose detectors are all kept, so the
    /// spec stays whole (e.g. the seed's five: `|d| d.feature.filter.is_none()`, or one source's
    /// preset).
    pub fn retain_detectors(&mut self, keep: impl FnMut(&DetectorSpec) -> bool) {
        self.detectors.retain(keep);
        let names: BTreeSet<&str> = self.detectors.iter().map(|d| d.name.as_str()).collect();
        self.monitors
            .retain(|m| m.detectors.iter().all(|d| names.contains(d.as_str())));
    }
}

#[cfg(test)]
mod tests;
