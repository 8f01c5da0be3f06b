//! How logwarden authenticates to Kafka and encrypts the connection: the `kafka.tls` and
//! `kafka.sasl` sections, checked at start-up and turned into librdkafka properties.
//!
//! The protocol follows from what is configured, so it cannot contradict the settings:
//!
//! | `tls` | `sasl` | `security.protocol` |
//! |---|---|---|
//! | – | – | `PLAINTEXT` (or whatever `kafka.properties` says) |
//! | set | – | `SSL` (with a certificate and key: mutual TLS) |
//! | – | set | `SASL_PLAINTEXT`: refused unless `allow_insecure` |
//! | set | set | `SASL_SSL` |
//!
//! Credentials never go over plaintext unless `kafka.allow_insecure` says so (then a warning is
//! logged at start-up), and no password is ever printed: passwords are [`SecretString`]s, read
//! from `LOGWARDEN_KAFKA__SASL__PASSWORD` (a Kubernetes Secret as an environment variable) or from
//! a mounted file (`password_file`).

use std::fmt;
use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::config::{ConfigError, SecretString};

/// TLS to the brokers: the CA that signed their certificates and, for mutual TLS, this client's
/// certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTls {
    /// PEM bundle of the CA(s) to trust; the system's when unset.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one (mutual TLS).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The key's passphrase, if it is encrypted.
    #[serde(default)]
    pub key_password: Option<SecretString>,
    /// Check that the broker's certificate names the host connected to (default on; turning it
    /// off logs a warning at start-up).
    #[serde(default = "verify_by_default")]
    pub verify_hostname: bool,
}

fn verify_by_default() -> bool {
    true
}

/// A SASL mechanism librdkafka speaks without extra libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// The password itself, inside TLS.
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL authentication: a mechanism, a user, and a password from the environment or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The user.
    pub username: String,
    /// The password: set `LOGWARDEN_KAFKA__SASL__PASSWORD` from a Secret, never in a file.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Or a file holding the password (a mounted Secret; a trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl KafkaSasl {
    /// The password, from the variable or the file.
    pub fn password(&self) -> Result<SecretString, ConfigError> {
        if let Some(password) = &self.password {
            return Ok(password.clone());
        }
        let Some(path) = &self.password_file else {
            return Err(ConfigError::invalid(
                "kafka.sasl.password",
                "is not set",
                "set LOGWARDEN_KAFKA__SASL__PASSWORD (from a Secret) or kafka.sasl.password_file \
                 (a mounted Secret)",
            ));
        };
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigError::invalid(
                "kafka.sasl.password_file",
                format!("{} cannot be read ({err})", path.display()),
                "mount the password there, or set LOGWARDEN_KAFKA__SASL__PASSWORD instead",
            )
        })?;
        Ok(SecretString::new(text.trim_end_matches(['\n', '\r'])))
    }
}

/// The librdkafka properties that carry security settings: managed by `kafka.tls` and
/// `kafka.sasl` when those are used.
const SECURITY_PROPERTIES: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
];

/// Whether a librdkafka property holds a secret (never printed).
pub(crate) fn is_secret_property(key: &str) -> bool {
    key.contains("password") || key.contains("secret") || key.ends_with(".pem")
}

/// The security part of a Kafka config, as the service sees it after validation.
pub(crate) struct Security<'a> {
    pub tls: Option<&'a KafkaTls>,
    pub sasl: Option<&'a KafkaSasl>,
    pub allow_insecure: bool,
    pub properties: &'a std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for Security<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .field("allow_insecure", &self.allow_insecure)
            .finish_non_exhaustive()
    }
}

impl Security<'_> {
    /// The `security.protocol` the settings imply, if they imply one.
    pub fn protocol(&self) -> Option<&'static str> {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => None,
            (true, false) => Some("SSL"),
            (false, true) => Some("SASL_PLAINTEXT"),
            (true, true) => Some("SASL_SSL"),
        }
    }

    /// Checks the sections against each other, the files they name, and the plaintext rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if (self.tls.is_some() || self.sasl.is_some())
            && let Some(key) = SECURITY_PROPERTIES
                .iter()
                .find(|key| self.properties.contains_key(**key))
        {
            return Err(ConfigError::invalid(
                format!("kafka.properties.{key}"),
                "conflicts with kafka.tls / kafka.sasl",
                "set security through kafka.tls and kafka.sasl only, or only through \
                 kafka.properties",
            ));
        }
        if let Some(tls) = self.tls {
            for (key, file) in [
                ("kafka.tls.ca_file", &tls.ca_file),
                ("kafka.tls.certificate_file", &tls.certificate_file),
                ("kafka.tls.key_file", &tls.key_file),
            ] {
                if let Some(path) = file {
                    readable(key, path)?;
                }
            }
            if tls.certificate_file.is_some() != tls.key_file.is_some() {
                return Err(ConfigError::invalid(
                    "kafka.tls",
                    "has a client certificate without its key, or a key without its certificate",
                    "set both certificate_file and key_file (mutual TLS), or neither",
                ));
            }
        }
        if let Some(sasl) = self.sasl {
            if sasl.username.is_empty() {
                return Err(ConfigError::invalid(
                    "kafka.sasl.username",
                    "is empty",
                    "set the SASL user",
                ));
            }
            if sasl.password.is_some() && sasl.password_file.is_some() {
                return Err(ConfigError::invalid(
                    "kafka.sasl",
                    "has both password and password_file",
                    "keep one of them",
                ));
            }
            sasl.password()?;
        }
        if !self.allow_insecure && self.sends_credentials_in_plaintext() {
            return Err(ConfigError::invalid(
                "kafka.sasl",
                "would send credentials over a plaintext connection (SASL without TLS)",
                "add kafka.tls (the brokers' SASL_SSL listener), or set kafka.allow_insecure: true \
                 to accept it knowingly",
            ));
        }
        Ok(())
    }

    /// SASL over a connection without TLS, set either way.
    fn sends_credentials_in_plaintext(&self) -> bool {
        if self.sasl.is_some() {
            return self.tls.is_none();
        }
        self.properties
            .get("security.protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("sasl_plaintext"))
    }

    /// What an operator should know at start-up: weakened checks that were asked for.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.tls.is_some_and(|tls| !tls.verify_hostname) {
            warnings.push(
                "kafka.tls.verify_hostname is off: a broker certificate for another host is \
                 accepted"
                    .to_owned(),
            );
        }
        if self.allow_insecure && self.sends_credentials_in_plaintext() {
            warnings.push(
                "kafka.allow_insecure: SASL credentials go over a plaintext connection".to_owned(),
            );
        }
        warnings
    }

    /// Sets the librdkafka properties for the sections (before the user's `properties`).
    pub fn apply(&self, config: &mut ClientConfig) {
        if let Some(protocol) = self.protocol() {
            config.set("security.protocol", protocol);
        }
        if let Some(tls) = self.tls {
            let path = |p: &Path| p.display().to_string();
            if let Some(ca) = &tls.ca_file {
                config.set("ssl.ca.location", path(ca));
            }
            if let Some(certificate) = &tls.certificate_file {
                config.set("ssl.certificate.location", path(certificate));
            }
            if let Some(key) = &tls.key_file {
                config.set("ssl.key.location", path(key));
            }
            if let Some(password) = &tls.key_password {
                config.set("ssl.key.password", password.expose());
            }
            config.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname { "https" } else { "none" },
            );
        }
        if let Some(sasl) = self.sasl {
            config
                .set("sasl.mechanisms", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username);
            // Validated at start-up; a file that vanished since is reported by the broker as
            // failed authentication.
            if let Ok(password) = sasl.password() {
                config.set("sasl.password", password.expose());
            }
        }
    }
}

fn readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|err| {
        ConfigError::invalid(
            key,
            format!("{} cannot be read ({err})", path.display()),
            "mount the file there (a Secret or ConfigMap), or fix the path",
        )
    })
}
