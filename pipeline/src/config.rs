//! Configuration loading: a YAML file, then `LOGWARDEN_*` environment variables on top, checked
//! strictly against the service's raw config struct.
//!
//! Every service reads its config the same way: [`load`] merges the file and the environment into
//! one YAML tree and deserializes it with unknown keys rejected, so a typo fails at start-up with
//! the full key path (`kafka.brokerz`) instead of being ignored. Environment variables name keys
//! with `__` between levels (`LOGWARDEN_KAFKA__BROKERS` sets `kafka.brokers`) and their values
//! are read as YAML scalars (`4` is a number, `true` a boolean). Each service then validates the
//! raw struct into the form the rest of its code sees; [`ConfigError::invalid`] is how those
//! cross-field checks name a key and its fix.
//!
//! One namespace is reserved: variables named `LOGWARDEN_SECRET_*` are never config keys. They
//! hold the secrets that the spec references by name (a channel's webhook URL, an SMTP password),
//! so one environment (a pod's, a shell's) can carry both without the strict loader rejecting the
//! spec's secrets as unknown keys. The spec refuses references to other `LOGWARDEN_*` names.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_norway::{Mapping, Value};

/// Prefix of the environment variables that set config keys.
pub const ENV_PREFIX: &str = "LOGWARDEN_";

/// Separator between key levels in an environment variable name.
pub const ENV_SEPARATOR: &str = "__";

/// Prefix of the environment variables that hold secrets the spec references by name: the loader
/// skips them, they are not config keys.
pub const SECRET_ENV_PREFIX: &str = "LOGWARDEN_SECRET_";

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not YAML.
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key has a value that cannot be used.
    #[error("config key `{key}` {problem}: {fix}")]
    Invalid {
        /// Dotted path of the key, e.g. `kafka.brokers`.
        key: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
}

impl ConfigError {
    /// A key whose value is wrong, what is wrong with it, and the fix.
    pub fn invalid(
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The offending key, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}

/// A secret read from config (a password): any YAML scalar, kept as its text (so a password of
/// `123456`, which an environment variable turns into a number, is still a password, and no
/// parse error ever shows it), never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the client that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl serde::de::Visitor<'_> for Scalar {
            type Value = SecretString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret (text)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
                Ok(SecretString(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretString, E> {
                Ok(SecretString(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SecretString, E> {
                Ok(SecretString(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SecretString, E> {
                Ok(SecretString(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SecretString, E> {
                Ok(SecretString(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SecretString, E> {
                Ok(SecretString(v.to_string()))
            }
        }
        deserializer.deserialize_any(Scalar)
    }
}

/// Whether a config key holds a secret, by its last segment: its value never appears in errors.
pub fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|word| last.contains(word))
}

/// Where OpenSearch is: a section every service's config accepts, so that one environment (a
/// shared ConfigMap) can serve them all; services that do not talk to OpenSearch ignore it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenSearchConfig {
    /// Base URL, e.g. `http://127.0.0.1:9200` or `https://search.example.com`.
    pub url: String,
    /// Basic-auth user, if the cluster needs one.
    pub username: Option<String>,
    /// Basic-auth password; set it through `LOGWARDEN_OPENSEARCH__PASSWORD` (a Secret), not in a
    /// file. Never logged.
    pub password: Option<SecretString>,
    /// PEM bundle of the CA(s) that signed the cluster's certificate (an `https` URL); the
    /// system's roots when unset.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for clusters that authenticate clients by certificate.
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Verify the cluster's certificate (default on). Off, nothing about the certificate is
    /// checked (the TLS library here cannot check the CA without the host name): a warning is
    /// logged at start-up.
    pub verify_certificates: bool,
    /// Accept sending the password over plain `http`; a warning is logged at start-up.
    pub allow_insecure: bool,
    /// Sign requests with AWS SigV4 (Amazon OpenSearch Service or Serverless) instead of basic
    /// auth; credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, for temporary
    /// ones, `AWS_SESSION_TOKEN`.
    pub aws_sigv4: Option<AwsSigV4>,
}

/// AWS request signing for Amazon OpenSearch Service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4 {
    /// The domain's region, e.g. `eu-west-1`.
    pub region: String,
    /// `es` (a managed domain, the default) or `aoss` (Serverless).
    #[serde(default = "default_sigv4_service")]
    pub service: String,
}

fn default_sigv4_service() -> String {
    "es".to_owned()
}

impl Default for OpenSearchConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9200".to_owned(),
            username: None,
            password: None,
            ca_file: None,
            certificate_file: None,
            key_file: None,
            verify_certificates: true,
            allow_insecure: false,
            aws_sigv4: None,
        }
    }
}

impl fmt::Debug for OpenSearchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSearchConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password)
            .field("ca_file", &self.ca_file)
            .field("certificate_file", &self.certificate_file)
            .field("key_file", &self.key_file)
            .field("verify_certificates", &self.verify_certificates)
            .field("allow_insecure", &self.allow_insecure)
            .field("aws_sigv4", &self.aws_sigv4)
            .finish()
    }
}

/// A URL as it may be shown: credentials embedded in it (`https://user:pass@host`) replaced.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Where a config value came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    File(&'a Path),
    Defaults,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{} or {ENV_PREFIX}* variables", path.display()),
            Self::Defaults => write!(f, "{ENV_PREFIX}* variables"),
        }
    }
}

/// Loads `T` from an optional YAML file and the process environment.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, ConfigError> {
    load_from(file, std::env::vars())
}

/// Loads `T` from an optional YAML file and the given environment: the testable core of [`load`].
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut tree = match file {
        Some(path) => read_yaml(path)?,
        None => Value::Mapping(Mapping::new()),
    };
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !name.starts_with(SECRET_ENV_PREFIX))
        .collect();
    env.sort();
    for (name, raw) in env {
        let path = env_key_path(&name);
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                name,
                "has an empty key segment",
                format!("name keys like {ENV_PREFIX}KAFKA{ENV_SEPARATOR}BROKERS"),
            ));
        }
        set_path(&mut tree, &path, env_value(&raw)).map_err(|parent| {
            ConfigError::invalid(
                path.join("."),
                format!("(from {name}) sits under `{parent}`, which is not a map"),
                "set either the parent key or its children, not both",
            )
        })?;
    }
    let origin = file.map_or(Origin::Defaults, Origin::File);
    serde_path_to_error::deserialize(tree).map_err(|err| {
        let key = err.path().to_string();
        let inner = if is_secret_key(&key) {
            "has a value that cannot be used (not shown: it is a secret)".to_owned()
        } else {
            err.into_inner().to_string()
        };
        ConfigError::invalid(
            if key == "." { "(root)".to_owned() } else { key },
            inner,
            format!("fix it in {origin}"),
        )
    })
}

fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value: Value = serde_norway::from_str(&text).map_err(|err| ConfigError::Syntax {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    // An empty file is an empty config.
    Ok(match value {
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    })
}

/// `LOGWARDEN_KAFKA__BROKERS` → `["kafka", "brokers"]`.
fn env_key_path(name: &str) -> Vec<String> {
    name[ENV_PREFIX.len()..]
        .split(ENV_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// An environment value read as a YAML scalar; anything that is not a plain scalar stays a string,
/// so `a: b` or `[x` in a variable is taken literally.
fn env_value(raw: &str) -> Value {
    match serde_norway::from_str::<Value>(raw) {
        Ok(value @ (Value::Bool(_) | Value::Number(_))) => value,
        Ok(Value::Null) if raw.trim().is_empty() => Value::String(String::new()),
        _ => Value::String(raw.to_owned()),
    }
}

/// Sets `path` in `tree`, creating maps on the way. On a conflict (a scalar where a map should
/// be) returns the dotted path of that scalar.
fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = tree;
    for (depth, segment) in path.iter().enumerate() {
        let Value::Mapping(map) = node else {
            return Err(path[..depth].join("."));
        };
        let key = Value::String(segment.clone());
        if depth + 1 == path.len() {
            map.insert(key, value);
            return Ok(());
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde::Deserialize;

    use super::*;
    use crate::kafka::KafkaConfig;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        kafka: KafkaConfig,
        #[serde(default = "default_rate")]
        rate: f64,
        #[serde(default)]
        enabled: bool,
    }

    fn default_rate() -> f64 {
        10.0
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn yaml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn the_opensearch_password_is_never_printed() {
        let config = OpenSearchConfig {
            password: Some(SecretString::new("hunter2")),
            ..OpenSearchConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && printed.contains("<redacted>"),
            "{printed}"
        );
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let sample: Sample = load_from(None, env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(sample.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(sample.kafka.topics.raw, "raw");
        assert!((sample.rate - 10.0).abs() < f64::EPSILON);
    }

    #[test]
    fn env_overrides_file_and_values_are_typed() {
        let file = yaml_file("rate: 5\nkafka:\n  brokers: file:9092\n  topics:\n    raw: r1\n");
        let sample: Sample = load_from(
            Some(file.path()),
            env(&[
                ("LOGWARDEN_KAFKA__BROKERS", "env:9092"),
                ("LOGWARDEN_RATE", "2.5"),
                ("LOGWARDEN_ENABLED", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(sample.kafka.brokers, "env:9092");
        assert_eq!(
            sample.kafka.topics.raw, "r1",
            "file values survive beside env"
        );
        assert!((sample.rate - 2.5).abs() < f64::EPSILON);
        assert!(sample.enabled);
    }

    #[test]
    fn unknown_key_in_file_names_the_full_path() {
        let file = yaml_file("kafka:\n  brokerz: x:1\n");
        let err = load_from::<Sample>(Some(file.path()), env(&[])).unwrap_err();
        assert_eq!(err.key(), Some("kafka.brokerz"));
        let text = err.to_string();
        assert!(text.contains("unknown field `brokerz`"), "{text}");
        assert!(text.contains("expected one of `brokers`"), "{text}");
        assert!(text.contains(&file.path().display().to_string()), "{text}");
    }

    #[test]
    fn unknown_env_key_is_rejected_too() {
        let err = load_from::<Sample>(None, env(&[("LOGWARDEN_RATEE", "1")])).unwrap_err();
        assert_eq!(err.key(), Some("ratee"));
        assert!(err.to_string().contains("LOGWARDEN_"), "{err}");
    }

    #[test]
    fn secret_variables_are_not_config_keys() {
        let sample: Sample = load_from(
            None,
            env(&[
                (
                    "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
                    "https://hooks.example/T0K3N",
                ),
                ("LOGWARDEN_KAFKA__BROKERS", "env:9092"),
            ]),
        )
        .unwrap();
        assert_eq!(sample.kafka.brokers, "env:9092");
        // A look-alike outside the reserved prefix is still a (misspelled) key.
        let err = load_from::<Sample>(None, env(&[("LOGWARDEN_SECRETS_X", "1")])).unwrap_err();
        assert_eq!(err.key(), Some("secrets_x"));
    }

    #[test]
    fn a_numeric_password_is_a_password_and_no_error_shows_a_secret() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct WithSecret {
            #[serde(default)]
            opensearch: OpenSearchConfig,
        }
        let loaded: WithSecret =
            load_from(None, env(&[("LOGWARDEN_OPENSEARCH__PASSWORD", "123456")])).unwrap();
        assert_eq!(
            loaded
                .opensearch
                .password
                .as_ref()
                .map(SecretString::expose),
            Some("123456")
        );
        assert!(!format!("{loaded:?}").contains("123456"));
        // A secret where a map is expected: the error names the key, not the value.
        let err = load_from::<WithSecret>(
            None,
            env(&[("LOGWARDEN_OPENSEARCH__PASSWORD__X", "s3cr3t-value")]),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
        assert!(is_secret_key("kafka.sasl.password"));
        assert!(is_secret_key("kafka.tls.key_password"));
        assert!(!is_secret_key("kafka.brokers"));
    }

    #[test]
    fn credentials_in_a_url_are_never_shown() {
        assert_eq!(
            redact_url("https://admin:s3cr3t@search.example.com:9200/x"),
            "https://<redacted>@search.example.com:9200/x"
        );
        assert_eq!(redact_url("http://127.0.0.1:9200"), "http://127.0.0.1:9200");
        let config = OpenSearchConfig {
            url: "https://admin:s3cr3t@search.example.com".into(),
            ..OpenSearchConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load_from::<Sample>(None, env(&[("LOGWARDEN_RATE", "fast")])).unwrap_err();
        assert_eq!(err.key(), Some("rate"));
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn env_under_a_scalar_is_a_clear_conflict() {
        let err = load_from::<Sample>(
            None,
            env(&[("LOGWARDEN_RATE", "1"), ("LOGWARDEN_RATE__X", "2")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a map"), "{err}");
    }

    #[test]
    fn bad_yaml_and_missing_file_are_reported_with_the_path() {
        let file = yaml_file("kafka: [unclosed\n");
        let err = load_from::<Sample>(Some(file.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        let err =
            load_from::<Sample>(Some(Path::new("/nonexistent/lw.yaml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/lw.yaml"), "{err}");
    }

    #[test]
    fn env_strings_that_look_like_yaml_stay_strings() {
        assert_eq!(env_value("a: b"), Value::String("a: b".into()));
        assert_eq!(env_value("[x"), Value::String("[x".into()));
        assert_eq!(
            env_value("42"),
            serde_norway::from_str::<Value>("42").unwrap()
        );
        assert_eq!(env_value(""), Value::String(String::new()));
    }
}
