//! The detector's live page, on its telemetry port: what OpenSearch's anomaly-detection plugin
//! shows on a detector's page, for clusters without the plugin or a dashboard tool.
//!
//! - `GET /`: one self-contained HTML document (inline CSS, JavaScript and SVG; no CDN, no web
//!   font, nothing fetched from another origin, which its Content-Security-Policy enforces). Its
//!   script polls `/api/status` and draws a compact row per detector (last value, expected,
//!   grade, a chart of the recent intervals with the flagged ones marked, the current episode),
//!   a larger chart and the flagged intervals of the detector picked, the recent alert
//!   deliveries, and the lease and readiness. Every text comes in as JSON and goes into the
//!   document as text (`textContent`, `setAttribute`), never as markup: detector names come
//!   from the spec.
//! - `GET /api/status`: that JSON ([`Recent`] plus the instance, readiness and checkpoint age).
//!
//! [`Board`] is what the service feeds: scored results once per round of closed intervals,
//! delivery outcomes, the lease. It holds a bounded [`Recent`] behind a mutex, so the scoring
//! loop pays one short lock per round, never per record.

mod recent;

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use pipeline::telemetry::Health;
use prometheus::IntGauge;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::alert::Outcome;
use crate::spec::Spec;
use crate::store::ResultDoc;

pub use recent::{
    ALERTS, COLUMNS, Delivery, DetectorHistory, Episode, FLAGGED, INTERVALS, Lease, Point, Recent,
};

/// The page's style and script, inlined into [`TEMPLATE`] at start-up.
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
const TEMPLATE: &str = include_str!("index.html");

/// The document and its Content-Security-Policy: only the inline style and script it carries
/// (by their SHA-256), requests to its own origin only.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| {
    let digest = |text: &str| {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    };
    let html = TEMPLATE
        .replacen("/*STYLE*/", STYLE, 1)
        .replacen("/*SCRIPT*/", SCRIPT, 1);
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        digest(SCRIPT),
        digest(STYLE)
    );
    (html, policy)
});

/// What the service feeds and the page reads.
#[derive(Debug, Clone)]
pub struct Board {
    recent: Arc<Mutex<Recent>>,
    instance: String,
    health: Arc<Health>,
    checkpoint_age: IntGauge,
}

impl Board {
    /// A board for `spec`'s detectors on replica `instance`; `/api/status` reports `health`'s
    /// checks and the `checkpoint_age` gauge.
    pub fn new(spec: &Spec, instance: &str, health: Arc<Health>, checkpoint_age: IntGauge) -> Self {
        Self {
            recent: Arc::new(Mutex::new(Recent::new(spec))),
            instance: instance.to_owned(),
            health,
            checkpoint_age,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Recent) -> T) -> T {
        f(&mut self.recent.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a round of scored intervals.
    pub fn scored(&self, results: &[ResultDoc]) {
        if !results.is_empty() {
            self.with(|r| r.scored(results));
        }
    }

    /// Records a delivery attempt's outcome.
    pub fn delivered(&self, outcome: &Outcome) {
        let now = chrono::Utc::now().timestamp_millis();
        self.with(|r| r.delivered(outcome, now));
    }

    /// Records the lease as this replica sees it.
    pub fn lease(&self, lease: Lease) {
        self.with(|r| r.lease = lease);
    }

    /// The `/api/status` document.
    pub fn status(&self) -> Vec<u8> {
        let (ready, checks) = self.health.report();
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let active = matches!(recent.lease, Lease::Active { .. });
        let status = Status {
            now: chrono::Utc::now().timestamp_millis(),
            instance: &self.instance,
            ready,
            checks: checks.lines().collect(),
            checkpoint_age_seconds: active.then(|| self.checkpoint_age.get()),
            columns: COLUMNS,
            recent: &recent,
        };
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// The page's routes, to mount on the telemetry server.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/api/status", get(status))
            .with_state(self.clone())
    }
}

/// `/api/status`.
#[derive(Serialize)]
struct Status<'a> {
    /// The detector's clock, epoch ms.
    now: i64,
    /// This replica's instance id.
    instance: &'a str,
    /// Whether `/readyz` passes.
    ready: bool,
    /// One line per readiness check (`lease: ok`).
    checks: Vec<&'a str>,
    /// Seconds since the last checkpoint, while active.
    checkpoint_age_seconds: Option<i64>,
    /// The names of each interval's elements.
    columns: [&'static str; 6],
    #[serde(flatten)]
    recent: &'a Recent,
}

async fn page() -> impl IntoResponse {
    let (html, policy) = &*PAGE;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, policy.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html.as_str(),
    )
}

async fn status(State(board): State<Board>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        board.status(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default spec's seed: its detectors without a filter (the presets for other log
    /// sources have one) and the monitors of those.
    pub(super) fn seed_spec() -> Spec {
        let mut spec = Spec::default_spec().expect("default spec");
        spec.detectors.retain(|d| d.feature.filter.is_none());
        let kept: Vec<String> = spec.detectors.iter().map(|d| d.name.clone()).collect();
        spec.monitors
            .retain(|m| m.detectors.iter().all(|d| kept.contains(d)));
        spec
    }

    #[test]
    fn the_document_is_self_contained_and_its_policy_names_what_it_inlines() {
        let (html, policy) = &*PAGE;
        assert!(html.contains(SCRIPT) && html.contains(STYLE));
        assert!(!html.contains("/*STYLE*/") && !html.contains("/*SCRIPT*/"));
        for external in [
            "https://",
            "<script src",
            "stylesheet",
            "@import",
            "url(",
            "@font-face",
        ] {
            assert!(
                !html.contains(external),
                "the page refers to something outside it: {external}"
            );
        }
        // The one `http://` is SVG's namespace name, which is never fetched.
        assert_eq!(
            html.matches("http://").count(),
            html.matches("\"http://www.w3.org/2000/svg\"").count()
        );
        // Two inline hashes and nothing else may run or style the page.
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
    }

    #[test]
    fn the_status_lists_every_detector_and_the_readiness() {
        let health = Arc::new(Health::default());
        health.register("lease", "standby: detector-1 holds the lease");
        let age = IntGauge::new("age", "age").expect("gauge");
        age.set(7);
        let spec = seed_spec();
        let board = Board::new(&spec, "detector-0", health, age);
        board.lease(Lease::Standby {
            holder: Some("detector-1".to_owned()),
        });
        let status: serde_json::Value =
            serde_json::from_slice(&board.status()).expect("status JSON");
        assert_eq!(status["instance"], "detector-0");
        assert_eq!(status["ready"], false);
        assert_eq!(
            status["checks"],
            serde_json::json!(["lease: standby: detector-1 holds the lease"])
        );
        assert_eq!(
            status["lease"],
            serde_json::json!({"role": "standby", "holder": "detector-1"})
        );
        assert_eq!(status["checkpoint_age_seconds"], serde_json::Value::Null);
        assert_eq!(status["detectors"].as_array().map(Vec::len), Some(5));
        board.lease(Lease::Active {
            generation: 3,
            shards: Vec::new(),
        });
        let status: serde_json::Value =
            serde_json::from_slice(&board.status()).expect("status JSON");
        assert_eq!(status["checkpoint_age_seconds"], 7);
        assert_eq!(
            status["lease"],
            serde_json::json!({"role": "active", "generation": 3})
        );
    }
}
