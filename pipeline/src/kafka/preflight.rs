//! The start-up check every service runs before it builds its clients: can it reach the brokers,
//! and do they accept its TLS and credentials?
//!
//! librdkafka retries forever and reports a refused password or an untrusted certificate only
//! through its error callback; the API call itself just says "Broker transport failure". So a
//! service with a wrong password would sit in a silent retry loop. [`preflight`] asks for metadata
//! with a client whose context records those callbacks: authentication and TLS failures end the
//! start-up at once with librdkafka's own reason and the keys to check, and mark `/readyz` with
//! it; brokers that merely do not answer yet are reported and left to librdkafka's retries.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{KAFKA_CHECK, KafkaConfig};
use crate::telemetry::Health;

/// Why a service cannot start against its brokers.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The brokers refused the credentials.
    #[error(
        "Kafka at {brokers} refused the credentials: {reason}; check kafka.sasl (mechanism, \
         username, and the password in LOGWARDEN_KAFKA__SASL__PASSWORD or kafka.sasl.password_file)"
    )]
    Authentication {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The TLS handshake failed (an untrusted CA, a certificate for another host, a client
    /// certificate the broker rejects).
    #[error(
        "TLS with Kafka at {brokers} failed: {reason}; check kafka.tls.ca_file (the CA that signed \
         the brokers' certificates), kafka.tls.certificate_file and key_file (mutual TLS), and \
         that kafka.brokers names the brokers' TLS listener"
    )]
    Tls {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The client could not be built from the settings.
    #[error("Kafka client settings: {0}")]
    Client(#[source] KafkaError),
}

/// An error librdkafka reported through its callback: its code and reason.
type Reported = (Option<RDKafkaErrorCode>, String);

/// Records librdkafka's error callbacks.
#[derive(Debug, Clone, Default)]
struct Recorder {
    errors: Arc<Mutex<Vec<Reported>>>,
}

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((error.rdkafka_error_code(), reason.to_owned()));
    }

    // A failed TLS handshake reaches the log callback only (as a broker transport failure).
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, _facility: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as Level;
        if matches!(
            level,
            Level::Emerg | Level::Alert | Level::Critical | Level::Error | Level::Warning
        ) {
            self.errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((None, message.to_owned()));
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Recorder {}

impl Recorder {
    /// The first authentication or TLS failure seen, as the error to stop with.
    fn fatal(&self, brokers: &str) -> Option<PreflightError> {
        let errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        errors.iter().find_map(|(code, reason)| {
            let brokers = brokers.to_owned();
            let reason = reason.clone();
            match code {
                Some(RDKafkaErrorCode::Authentication) => {
                    Some(PreflightError::Authentication { brokers, reason })
                }
                Some(RDKafkaErrorCode::SSL) => Some(PreflightError::Tls { brokers, reason }),
                // A failed handshake, or a TLS 1.3 alert after it (e.g. "certificate required"
                // from a broker that wants a client certificate).
                _ if ["SSL handshake failed", "SSL routines", "SSL alert"]
                    .iter()
                    .any(|words| reason.contains(words)) =>
                {
                    Some(PreflightError::Tls { brokers, reason })
                }
                _ if reason.contains("SASL authentication error") => {
                    Some(PreflightError::Authentication { brokers, reason })
                }
                _ => None,
            }
        })
    }

    fn last(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        errors.last().map(|(_, reason)| reason.clone())
    }
}

/// Checks that the brokers answer and accept this service's TLS and credentials, for up to
/// `patience`. Logs the settings' security warnings first. The `kafka` check is not ready while it
/// runs and ready when the brokers answered. An authentication or TLS failure is an error (and
/// `/readyz` says why); brokers that do not answer within `patience` are logged and left to
/// librdkafka's retries (`/readyz` says so until they do).
pub async fn preflight(
    kafka: &KafkaConfig,
    health: &Health,
    patience: Duration,
) -> Result<(), PreflightError> {
    for warning in kafka.security_warnings() {
        tracing::warn!("{warning}");
    }
    // Until the brokers answer, the service is not ready (a health with no check would be).
    health.register(KAFKA_CHECK, "connecting");
    let recorder = Recorder::default();
    let consumer: BaseConsumer<Recorder> = kafka
        .client_config("logwarden-preflight")
        .create_with_context(recorder.clone())
        .map_err(PreflightError::Client)?;
    let brokers = kafka.brokers.clone();
    let deadline = Instant::now() + patience;
    let outcome = tokio::task::spawn_blocking(move || {
        loop {
            let answered = consumer.fetch_metadata(None, Duration::from_millis(500));
            // Serves librdkafka's queued events: that is when the error callback runs.
            let _ = consumer.poll(Duration::from_millis(50));
            if let Some(fatal) = recorder.fatal(&brokers) {
                return Err(fatal);
            }
            if answered.is_ok() {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Ok(Some(recorder.last().unwrap_or_else(|| {
                    answered
                        .err()
                        .map_or_else(String::new, |err| err.to_string())
                })));
            }
        }
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    match outcome {
        Ok(None) => {
            health.ready(KAFKA_CHECK);
            Ok(())
        }
        Ok(Some(reason)) => {
            health.not_ready(KAFKA_CHECK, &format!("unreachable: {reason}"));
            tracing::warn!(brokers = %kafka.brokers, %reason, "Kafka does not answer yet; librdkafka keeps retrying.");
            Ok(())
        }
        Err(err) => {
            health.not_ready(KAFKA_CHECK, &err.to_string());
            Err(err)
        }
    }
}
