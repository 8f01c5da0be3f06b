//! The ingest service's configuration: the raw form (YAML file and `LOGWARDEN_*` environment) and
//! the validated [`Settings`] the receivers see. Tokens are resolved here, once: from the config
//! (`ingest.tokens.<name>.token`, a secret never printed) or from a `LOGWARDEN_SECRET_*` variable
//! the config names (`ingest.tokens.<name>.env`), so a Kubernetes Secret can hold them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, SECRET_ENV_PREFIX, SecretString};
use pipeline::kafka::KafkaConfig;
use pipeline::telemetry::TelemetryConfig;
use serde::Deserialize;

use crate::auth::Tokens;

/// Default telemetry port of the ingest service.
pub const TELEMETRY_PORT: u16 = 9105;

/// The config file and environment, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Brokers and topics (writes `raw`).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Logs and the metrics server.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Accepted so that one shared environment serves every service; unused here.
    #[serde(default)]
    pub opensearch: pipeline::config::OpenSearchConfig,
    /// The receivers.
    #[serde(default)]
    pub ingest: IngestConfig,
}

/// The `ingest` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// The HTTP receivers (HEC, Firehose, NDJSON).
    pub http: HttpConfig,
    /// The syslog receivers; off unless `tcp` or `udp` is set.
    pub syslog: SyslogConfig,
    /// The file receiver; off unless `directory` is set.
    pub files: FilesConfig,
    /// The bucket receiver (S3-compatible); off unless set.
    pub bucket: Option<crate::files::bucket_config::BucketConfig>,
    /// Valid tokens by name (the name is what logs and metrics show): HEC's
    /// `Authorization: Splunk <token>`, Firehose's access key, NDJSON's `Bearer <token>`.
    pub tokens: BTreeMap<String, TokenSource>,
    /// Longest wait for Kafka to acknowledge a request's records before the sender is told to
    /// retry (503), in milliseconds; also librdkafka's `message.timeout.ms`, so a record is
    /// not delivered after its sender was told it failed. At most the drain deadline (20 s), so
    /// a request in progress at shutdown is answered before the process exits.
    pub ack_timeout_ms: u64,
    /// The `Retry-After` a sender is given with a 503, in seconds.
    pub retry_after_s: u64,
    /// Largest single event (one record on `raw`), in bytes; larger ones are refused (413).
    pub max_event_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            files: FilesConfig::default(),
            bucket: None,
            tokens: BTreeMap::new(),
            ack_timeout_ms: 15_000,
            retry_after_s: 5,
            max_event_bytes: 1_000_000,
        }
    }
}

/// Where a token comes from: exactly one of `token` and `env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// The token itself (set it from a Secret, e.g. `LOGWARDEN_INGEST__TOKENS__FORWARDERS__TOKEN`).
    #[serde(default)]
    pub token: Option<SecretString>,
    /// The name of a `LOGWARDEN_SECRET_*` variable holding it.
    #[serde(default)]
    pub env: Option<String>,
}

/// The `ingest.http` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whether the HTTP receivers run.
    pub enabled: bool,
    /// Address to listen on (HEC's usual port is 8088).
    pub listen: SocketAddr,
    /// Largest request body, in bytes, before and after gzip decoding (413 beyond).
    pub max_body_bytes: usize,
    /// HEC indexer acknowledgements: requests then need a channel and get an `ackId`.
    pub hec_acknowledgements: bool,
    /// Most HEC channels remembered for acknowledgements; a new channel beyond is refused (503).
    pub max_channels: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            max_body_bytes: 10 * 1024 * 1024,
            hec_acknowledgements: false,
            max_channels: 10_000,
        }
    }
}

/// The `ingest.syslog` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// TCP address (newline or RFC 6587 octet-counting framing), e.g. `0.0.0.0:6514`.
    pub tcp: Option<SocketAddr>,
    /// UDP address, e.g. `0.0.0.0:514`.
    pub udp: Option<SocketAddr>,
    /// TLS on the TCP listener.
    pub tls: Option<SyslogTls>,
}

/// The `ingest.files` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// The directory to read log files from.
    pub directory: Option<PathBuf>,
    /// The source of NDJSON files' records (CloudTrail documents are always `cloudtrail`).
    pub source: String,
    /// How often the directory is listed, in milliseconds.
    pub poll_ms: u64,
    /// The checkpoint file (default `<directory>/.logwarden-ingest-done`).
    pub checkpoint_file: Option<PathBuf>,
    /// Largest file, decompressed, in bytes.
    pub max_file_bytes: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            directory: None,
            source: "waf".to_owned(),
            poll_ms: 5_000,
            checkpoint_file: None,
            max_file_bytes: 256 * 1024 * 1024,
        }
    }
}

/// TLS for the syslog TCP listener: PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTls {
    /// The server's certificate chain.
    pub certificate_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Brokers and topics.
    pub kafka: KafkaConfig,
    /// Logs and metrics.
    pub telemetry: TelemetryConfig,
    /// The HTTP receivers, if on.
    pub http: Option<HttpConfig>,
    /// The syslog receivers.
    pub syslog: SyslogConfig,
    /// The file receiver, if on: directory, checkpoint, source of NDJSON files.
    pub files: Option<(PathBuf, PathBuf, pipeline::wire::Source)>,
    /// `ingest.files.poll_ms`.
    pub files_poll: Duration,
    /// `ingest.files.max_file_bytes`.
    pub max_file_bytes: usize,
    /// The bucket receiver, if on.
    pub bucket: Option<crate::files::bucket_config::BucketSettings>,
    /// Valid tokens.
    pub tokens: Tokens,
    /// How long a request waits for Kafka.
    pub ack_timeout: Duration,
    /// `Retry-After` with a 503.
    pub retry_after: Duration,
    /// Largest event.
    pub max_event_bytes: usize,
}

impl Settings {
    /// Validates `raw`; `env` looks up the `LOGWARDEN_SECRET_*` variables tokens name.
    pub fn from_raw(
        raw: RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        raw.kafka.validate()?;
        let i = raw.ingest;
        let tokens = resolve_tokens(&i.tokens, env)?;
        if i.http.enabled {
            let http = &i.http;
            if tokens.is_empty() {
                return Err(ConfigError::invalid(
                    "ingest.tokens",
                    "is empty while ingest.http is on",
                    "name at least one token, e.g. ingest.tokens.forwarders.env: \
                     LOGWARDEN_SECRET_INGEST_FORWARDERS, or set ingest.http.enabled to false",
                ));
            }
            for (key, value) in [
                ("ingest.http.max_body_bytes", http.max_body_bytes as u64),
                ("ingest.http.max_channels", http.max_channels as u64),
            ] {
                if value == 0 {
                    return Err(ConfigError::invalid(
                        key,
                        "is 0",
                        "give a value of at least 1",
                    ));
                }
            }
        }
        if i.syslog.tls.is_some() && i.syslog.tcp.is_none() {
            return Err(ConfigError::invalid(
                "ingest.syslog.tls",
                "is set but ingest.syslog.tcp is not",
                "set ingest.syslog.tcp to the address TLS clients connect to",
            ));
        }
        for (key, value) in [
            ("ingest.ack_timeout_ms", i.ack_timeout_ms),
            ("ingest.retry_after_s", i.retry_after_s),
            ("ingest.max_event_bytes", i.max_event_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "is 0",
                    "give a value of at least 1",
                ));
            }
        }
        if i.ack_timeout_ms > pipeline::shutdown::DRAIN_DEADLINE.as_millis() as u64 {
            return Err(ConfigError::invalid(
                "ingest.ack_timeout_ms",
                format!(
                    "({}) is longer than the drain deadline ({} ms)",
                    i.ack_timeout_ms,
                    pipeline::shutdown::DRAIN_DEADLINE.as_millis()
                ),
                "give at most 20000, so requests in progress are answered at shutdown",
            ));
        }
        let files = match &i.files.directory {
            None => None,
            Some(directory) => {
                let source = pipeline::wire::Source::parse(&i.files.source).ok_or_else(|| {
                    ConfigError::invalid(
                        "ingest.files.source",
                        format!("`{}` is not a source", i.files.source),
                        "use waf, cloudtrail, syslog, cloudwatch, splunk or ndjson",
                    )
                })?;
                if i.files.poll_ms == 0 || i.files.max_file_bytes == 0 {
                    return Err(ConfigError::invalid(
                        "ingest.files",
                        "has poll_ms or max_file_bytes 0",
                        "give both a value of at least 1",
                    ));
                }
                let checkpoint = i
                    .files
                    .checkpoint_file
                    .clone()
                    .unwrap_or_else(|| directory.join(".logwarden-ingest-done"));
                Some((directory.clone(), checkpoint, source))
            }
        };
        let bucket = i.bucket.map(|b| b.validate()).transpose()?;
        if !i.http.enabled
            && i.syslog.tcp.is_none()
            && i.syslog.udp.is_none()
            && files.is_none()
            && bucket.is_none()
        {
            return Err(ConfigError::invalid(
                "ingest",
                "turns every receiver off",
                "enable ingest.http, set ingest.syslog.tcp or ingest.syslog.udp, \
                 ingest.files.directory or ingest.bucket",
            ));
        }
        Ok(Self {
            kafka: raw.kafka,
            telemetry: raw.telemetry,
            http: i.http.enabled.then_some(i.http),
            syslog: i.syslog,
            files,
            files_poll: Duration::from_millis(i.files.poll_ms),
            max_file_bytes: i.files.max_file_bytes,
            bucket,
            tokens,
            ack_timeout: Duration::from_millis(i.ack_timeout_ms),
            retry_after: Duration::from_secs(i.retry_after_s),
            max_event_bytes: i.max_event_bytes,
        })
    }
}

fn resolve_tokens(
    sources: &BTreeMap<String, TokenSource>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Tokens, ConfigError> {
    let mut tokens = Tokens::default();
    for (name, source) in sources {
        let key = format!("ingest.tokens.{name}");
        let secret = match (&source.token, &source.env) {
            (Some(token), None) => token.clone(),
            (None, Some(variable)) => {
                if !variable.starts_with(SECRET_ENV_PREFIX) {
                    return Err(ConfigError::invalid(
                        format!("{key}.env"),
                        format!("names `{variable}`, outside the secrets' namespace"),
                        format!("name the variable {SECRET_ENV_PREFIX}..."),
                    ));
                }
                SecretString::new(env(variable).ok_or_else(|| {
                    ConfigError::invalid(
                        format!("{key}.env"),
                        format!("names `{variable}`, which is not set"),
                        "set the variable (from a Secret) or remove the token",
                    )
                })?)
            }
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    "must have exactly one of `token` and `env`",
                    "set the token from a Secret, or name the LOGWARDEN_SECRET_* variable holding it",
                ));
            }
        };
        if secret.expose().trim().is_empty() {
            return Err(ConfigError::invalid(
                key,
                "is empty",
                "give the token a value (not shown: it is a secret)",
            ));
        }
        tokens.insert(name.clone(), secret);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let raw: RawConfig = pipeline::config::load_from(None, vars.clone())?;
        Settings::from_raw(raw, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn tokens_come_from_the_config_or_a_secret_variable() {
        let settings = load(&[
            ("LOGWARDEN_INGEST__TOKENS__A__TOKEN", "alpha-secret"),
            (
                "LOGWARDEN_INGEST__TOKENS__B__ENV",
                "LOGWARDEN_SECRET_INGEST_B",
            ),
            ("LOGWARDEN_SECRET_INGEST_B", "beta-secret"),
        ])
        .expect("valid");
        assert_eq!(settings.tokens.name_of("alpha-secret"), Some("a"));
        assert_eq!(settings.tokens.name_of("beta-secret"), Some("b"));
        assert_eq!(settings.tokens.name_of("gamma"), None);
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("alpha-secret") && !shown.contains("beta-secret"),
            "{shown}"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_never_the_secret() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "ingest.tokens"),
            (
                &[("LOGWARDEN_INGEST__TOKENS__A__ENV", "HOME")],
                "ingest.tokens.a.env",
            ),
            (
                &[("LOGWARDEN_INGEST__TOKENS__A__ENV", "LOGWARDEN_SECRET_NOPE")],
                "ingest.tokens.a.env",
            ),
            (
                &[
                    ("LOGWARDEN_INGEST__TOKENS__A__TOKEN", "s3cr3t-value"),
                    ("LOGWARDEN_INGEST__TOKENS__A__ENV", "LOGWARDEN_SECRET_X"),
                ],
                "ingest.tokens.a",
            ),
            (
                &[
                    ("LOGWARDEN_INGEST__TOKENS__A__TOKEN", "s3cr3t-value"),
                    ("LOGWARDEN_INGEST__HTTP__MAX_BODY_BYTES", "0"),
                ],
                "ingest.http.max_body_bytes",
            ),
            (
                &[
                    ("LOGWARDEN_INGEST__HTTP__ENABLED", "false"),
                    ("LOGWARDEN_INGEST__SYSLOG__TLS__CERTIFICATE_FILE", "/c.pem"),
                    ("LOGWARDEN_INGEST__SYSLOG__TLS__KEY_FILE", "/k.pem"),
                ],
                "ingest.syslog.tls",
            ),
        ];
        for (vars, key) in cases {
            let err = load(vars).expect_err(key).to_string();
            assert!(err.contains(&format!("`{key}`")), "{vars:?}: {err}");
            assert!(!err.contains("s3cr3t-value"), "{err}");
        }
        let err = load(&[("LOGWARDEN_INGEST__HTTP__LISTN", "x")])
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("ingest.http.listn"), "{err}");
    }
}
