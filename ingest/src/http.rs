//! The HTTP receivers on one listener: Splunk HEC (`/services/collector...`), Amazon Data
//! Firehose (`/firehose/<source>`) and plain NDJSON (`/ingest/<source>`). Each handler
//! authenticates, reads the body within the limits, turns it into records (pure functions in
//! each receiver's module), writes them through the [`Writer`] and answers only after Kafka
//! acknowledged them. Every refusal is counted by receiver and reason.

pub mod body;
pub mod refusal;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pipeline::telemetry::Health;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthFailure, Tokens, check_scheme};
use crate::hec::channels::Channels;
use crate::metrics::Metrics;
use crate::writer::Writer;
use pipeline::wire::Source;
use refusal::{Reason, Refusal};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// The state behind [`App`].
#[derive(Debug)]
pub struct Inner {
    /// The producer to `raw`.
    pub writer: Writer,
    /// Valid tokens.
    pub tokens: Tokens,
    /// The service's metrics.
    pub metrics: Metrics,
    /// Readiness (HEC's health endpoint answers from it).
    pub health: Arc<Health>,
    /// `ingest.http.max_body_bytes`.
    pub max_body: usize,
    /// `ingest.max_event_bytes`.
    pub max_event: usize,
    /// The `Retry-After` of a 503.
    pub retry_after: Duration,
    /// HEC acknowledgement channels, when acknowledgements are on.
    pub channels: Option<Channels>,
}

impl App {
    /// Shares `inner` with every handler.
    pub fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The shared state.
    pub fn get(&self) -> &Inner {
        &self.inner
    }

    /// Counts `refusal` for `receiver` and logs it.
    pub fn count(&self, receiver: &str, refusal: &Refusal) {
        self.inner
            .metrics
            .refused
            .with_label_values(&[receiver, refusal.reason.as_str()])
            .inc();
        tracing::debug!(receiver, reason = refusal.reason.as_str(), detail = %refusal.detail, "Request refused.");
    }

    /// `response` with `Retry-After` when `refusal` asks the sender to retry.
    pub fn with_retry_after(&self, refusal: &Refusal, mut response: Response) -> Response {
        if refusal.reason.is_retriable()
            && let Ok(value) = HeaderValue::from_str(&self.inner.retry_after.as_secs().to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Checks `Authorization: <scheme> <token>` against the tokens.
pub fn authorize(app: &App, headers: &HeaderMap, scheme: &str) -> Result<(), Refusal> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    check_scheme(&app.inner.tokens, header, scheme)
        .map(|_name| ())
        .map_err(|failure| match failure {
            AuthFailure::Missing => Refusal::new(Reason::TokenRequired, "no Authorization header"),
            AuthFailure::Malformed => Refusal::new(
                Reason::InvalidAuthorization,
                format!("expected `Authorization: {scheme} <token>`"),
            ),
            AuthFailure::Unknown => Refusal::new(Reason::InvalidToken, "unknown token"),
        })
}

/// The source a URL names (`/ingest/<source>`, `/firehose/<source>`).
pub fn source(name: &str) -> Result<Source, Refusal> {
    Source::parse(name).ok_or_else(|| {
        Refusal::new(
            Reason::UnknownSource,
            format!(
                "unknown source `{name}` (waf, cloudtrail, syslog, cloudwatch, splunk, ndjson)"
            ),
        )
    })
}

/// Every HTTP route.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/services/collector", post(crate::hec::event))
        .route("/services/collector/event", post(crate::hec::event))
        .route("/services/collector/event/1.0", post(crate::hec::event))
        .route("/services/collector/raw", post(crate::hec::raw))
        .route("/services/collector/raw/1.0", post(crate::hec::raw))
        .route("/services/collector/ack", post(crate::hec::ack))
        .route("/services/collector/health", get(crate::hec::health))
        .route("/services/collector/health/1.0", get(crate::hec::health))
        .route("/firehose/{source}", post(crate::firehose::receive))
        .route("/ingest/{source}", post(crate::ndjson::receive))
        .fallback(|| async {
            (axum::http::StatusCode::NOT_FOUND, "no such endpoint\n").into_response()
        })
        .with_state(app)
}

/// Serves the receivers on `listener` until `shutdown`; requests in progress finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
