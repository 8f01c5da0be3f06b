//! The `ingest.bucket` section (log files from an S3-compatible bucket) as written, and the
//! validated [`BucketSettings`] the receiver sees. Credentials come from the config (the access
//! key id, and the secret from a Secret: `LOGWARDEN_INGEST__BUCKET__SECRET_ACCESS_KEY` or a
//! mounted file) or, when none is given, from AWS's own chain (`AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`, a web identity token as EKS gives a pod, the instance's metadata).
//! The secret is never printed: not in errors, not in `Debug`.

use std::path::PathBuf;
use std::time::Duration;

use pipeline::config::{ConfigError, SecretString};
use pipeline::wire::Source;
use serde::Deserialize;

/// The `ingest.bucket` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The bucket's name.
    pub name: String,
    /// The folder read, e.g. `AWSLogs/123456789012/CloudTrail/` (every key below it, at any
    /// depth); the whole bucket when empty.
    #[serde(default)]
    pub prefix: String,
    /// The S3 API's URL of an S3-compatible server (SeaweedFS, Ceph, ...), e.g.
    /// `http://seaweedfs:8333`; AWS's endpoint for the region when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers
    /// need; default: on with an `endpoint`, off (virtual-hosted style) for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// The access key id; set it with the secret key, or neither (AWS's own chain).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret key (set it from a Secret, `LOGWARDEN_INGEST__BUCKET__SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
    /// A file holding the secret key (a mounted Secret), instead of `secret_access_key`.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// The source of NDJSON files' records (CloudTrail documents are always `cloudtrail`).
    #[serde(default = "default_source")]
    pub source: String,
    /// How often the prefix is listed, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// The checkpoint: the keys done, one per line. Keep it on a persistent volume: without
    /// it, a restart reads the bucket again from the start.
    #[serde(default)]
    pub checkpoint_file: Option<PathBuf>,
    /// Largest object, compressed and decompressed, in bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: usize,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_source() -> String {
    "waf".to_owned()
}

fn default_poll_ms() -> u64 {
    30_000
}

fn default_max_file_bytes() -> usize {
    256 * 1024 * 1024
}

/// Where the receiver's credentials come from.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An access key from the config.
    Key {
        /// The access key id (shown in errors: it names the key, it is not the secret).
        access_key_id: String,
        /// The secret key.
        secret_access_key: SecretString,
    },
    /// AWS's own chain: its environment variables, web identity, instance metadata.
    Aws,
}

impl Credentials {
    /// What errors call them: the access key id, or `AWS's credential chain`.
    pub fn describe(&self) -> String {
        match self {
            Self::Key { access_key_id, .. } => format!("access key `{access_key_id}`"),
            Self::Aws => "the credentials of AWS's chain (AWS_ACCESS_KEY_ID, web identity, instance metadata)".to_owned(),
        }
    }
}

/// Validated `ingest.bucket`.
#[derive(Debug, Clone)]
pub struct BucketSettings {
    /// The bucket.
    pub name: String,
    /// The folder read.
    pub prefix: String,
    /// An S3-compatible server's URL.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// Path-style requests.
    pub path_style: bool,
    /// The credentials.
    pub credentials: Credentials,
    /// The source of NDJSON files.
    pub source: Source,
    /// How often the prefix is listed.
    pub poll: Duration,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// Largest object.
    pub max_file_bytes: usize,
}

impl BucketConfig {
    /// Validates the section; reads the secret key's file if one is named.
    pub fn validate(self) -> Result<BucketSettings, ConfigError> {
        let invalid = |key: &str, problem: String, fix: &str| {
            ConfigError::invalid(format!("ingest.bucket.{key}"), problem, fix)
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "is empty".into(), "give the bucket's name"));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(invalid(
                "endpoint",
                format!("`{endpoint}` is not an http(s) URL"),
                "give the S3 API's URL, e.g. http://seaweedfs:8333, or unset it for AWS",
            ));
        }
        let source = Source::parse(&self.source).ok_or_else(|| {
            invalid(
                "source",
                format!("`{}` is not a source", self.source),
                "use waf, cloudtrail, syslog, cloudwatch, splunk or ndjson",
            )
        })?;
        if self.poll_ms == 0 || self.max_file_bytes == 0 {
            return Err(ConfigError::invalid(
                "ingest.bucket",
                "has poll_ms or max_file_bytes 0",
                "give both a value of at least 1",
            ));
        }
        let checkpoint = self.checkpoint_file.clone().ok_or_else(|| {
            invalid(
                "checkpoint_file",
                "is not set".into(),
                "name a file on a persistent volume (the keys done are kept there), \
                 e.g. /var/lib/logwarden-ingest/bucket-done",
            )
        })?;
        let credentials = self.credentials()?;
        Ok(BucketSettings {
            path_style: self.path_style.unwrap_or(self.endpoint.is_some()),
            name: self.name,
            prefix: self.prefix,
            endpoint: self.endpoint,
            region: self.region,
            credentials,
            source,
            poll: Duration::from_millis(self.poll_ms),
            checkpoint,
            max_file_bytes: self.max_file_bytes,
        })
    }

    fn credentials(&self) -> Result<Credentials, ConfigError> {
        let secret = match (&self.secret_access_key, &self.secret_access_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "ingest.bucket.secret_access_key",
                    "is set together with ingest.bucket.secret_access_key_file",
                    "keep one of the two",
                ));
            }
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|err| {
                    ConfigError::invalid(
                        "ingest.bucket.secret_access_key_file",
                        format!("cannot be read ({}: {err})", file.display()),
                        "mount the Secret holding the key there, or fix the path",
                    )
                })?;
                Some(SecretString::new(text.trim().to_owned()))
            }
            (None, None) => None,
        };
        match (&self.access_key_id, secret) {
            (None, None) => Ok(Credentials::Aws),
            (Some(id), Some(secret)) => {
                if id.trim().is_empty() || secret.expose().trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "ingest.bucket.access_key_id",
                        "or its secret key is empty",
                        "give both a value (the secret is not shown)",
                    ));
                }
                Ok(Credentials::Key {
                    access_key_id: id.trim().to_owned(),
                    secret_access_key: secret,
                })
            }
            (Some(_), None) => Err(ConfigError::invalid(
                "ingest.bucket.secret_access_key",
                "is not set while ingest.bucket.access_key_id is",
                "set it from a Secret (LOGWARDEN_INGEST__BUCKET__SECRET_ACCESS_KEY) or \
                 name a file holding it (ingest.bucket.secret_access_key_file)",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "ingest.bucket.access_key_id",
                "is not set while the secret key is",
                "set the access key id that goes with the secret key",
            )),
        }
    }
}
