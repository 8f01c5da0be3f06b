//! Logs, metrics and health, the same in every service.
//!
//! - Logs: `tracing`, human-readable by default and JSON when asked (`telemetry.log_format:
//!   json`), filtered by `RUST_LOG` or `telemetry.log_level`. librdkafka's own logs arrive through
//!   the `log` crate and are bridged in.
//! - Metrics: each service owns a [`Telemetry`] with its own `prometheus::Registry` (no global
//!   registry), registers its metric structs there and passes them around by `Arc`.
//! - Health: `/healthz` says the process serves; `/readyz` says every readiness check the service
//!   registered in [`Health`] passes (e.g. "kafka": brokers reachable), and lists the failing
//!   ones, so `kubectl describe` shows why a pod is not ready. A service may also add notes
//!   ([`Health::inform`]): lines `/readyz` shows that never make it fail (the detector's
//!   detectors without data).
//! - Extra routes: a service may [`Telemetry::mount`] a router of its own on the same server
//!   (the detector's live page), answered when no built-in route matches.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// The `telemetry` section every service config has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address of the HTTP server with `/metrics`, `/healthz` and `/readyz`; each service has its
    /// own default port so that several can run on one host.
    pub listen: Option<SocketAddr>,
    /// `human` (default) or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `info,rdkafka=debug`; `RUST_LOG` takes precedence.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            listen: None,
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
        }
    }
}

impl TelemetryConfig {
    /// The log filter this config asks for, checked; `RUST_LOG` wins when set.
    pub fn filter(&self) -> Result<EnvFilter, ConfigError> {
        self.filter_with(std::env::var(EnvFilter::DEFAULT_ENV).ok())
    }

    fn filter_with(&self, rust_log: Option<String>) -> Result<EnvFilter, ConfigError> {
        if let Some(from_env) = rust_log {
            return EnvFilter::try_new(&from_env).map_err(|err| {
                ConfigError::invalid(
                    "RUST_LOG",
                    format!("`{from_env}` is not a log filter ({err})"),
                    "use a level like `info` or directives like `info,rdkafka=debug`",
                )
            });
        }
        EnvFilter::try_new(&self.log_level).map_err(|err| {
            ConfigError::invalid(
                "telemetry.log_level",
                format!("`{}` is not a log filter ({err})", self.log_level),
                "use a level like `info` or directives like `info,rdkafka=debug`",
            )
        })
    }
}

/// Installs the global log subscriber. Call once, first thing in `main`.
pub fn init_logging(config: &TelemetryConfig) -> Result<(), ConfigError> {
    let filter = config.filter()?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already initialised (e.g. by a test harness): keep the existing subscriber.
    if let Err(err) = result {
        tracing::debug!(%err, "Log subscriber already installed.");
    }
    Ok(())
}

/// Readiness checks a service registers and updates; `/readyz` passes when all do.
#[derive(Debug, Default)]
pub struct Health {
    checks: Mutex<BTreeMap<String, Check>>,
}

#[derive(Debug, Clone)]
struct Check {
    ready: bool,
    detail: String,
    /// Whether it decides readiness; a note ([`Health::inform`]) does not.
    gates: bool,
}

impl Health {
    /// Registers a check that starts as not ready, with why (e.g. "connecting").
    pub fn register(&self, name: &str, detail: &str) {
        self.set(name, false, detail);
    }

    /// Marks a check as passing.
    pub fn ready(&self, name: &str) {
        self.set(name, true, "ok");
    }

    /// Marks a check as failing, with the reason `/readyz` shows.
    pub fn not_ready(&self, name: &str, reason: &str) {
        self.set(name, false, reason);
    }

    /// Shows `detail` on `/readyz` under `name` without deciding readiness: something an
    /// operator should see that is no reason to take the pod out of its Services.
    pub fn inform(&self, name: &str, detail: &str) {
        self.insert(name, true, detail, false);
    }

    fn set(&self, name: &str, ready: bool, detail: &str) {
        self.insert(name, ready, detail, true);
    }

    fn insert(&self, name: &str, ready: bool, detail: &str, gates: bool) {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        checks.insert(
            name.to_owned(),
            Check {
                ready,
                detail: detail.to_owned(),
                gates,
            },
        );
    }

    /// Whether every check passes, and one line per check or note (`kafka: ok`). With no check
    /// registered yet the service is still starting: not ready (the telemetry server answers
    /// before the service's start-up registers its checks).
    pub fn report(&self) -> (bool, String) {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        if !checks.values().any(|c| c.gates) {
            return (false, "starting: no check registered yet\n".to_owned());
        }
        let ready = checks.values().all(|c| c.ready || !c.gates);
        let text = checks
            .iter()
            .map(|(name, c)| format!("{name}: {}\n", c.detail))
            .collect();
        (ready, text)
    }

    /// Whether every check passes.
    pub fn is_ready(&self) -> bool {
        self.report().0
    }
}

/// A service's metrics registry and health, served over HTTP by [`Telemetry::serve`].
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The service's own registry: metric structs register here. Every metric it holds is
    /// prefixed `logwarden_`.
    pub registry: Registry,
    /// The process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...)
    /// under their standard, unprefixed names, which dashboards and alerts expect: apart from
    /// `registry`, whose prefix would rename them.
    process: Registry,
    /// Readiness checks.
    pub health: Arc<Health>,
    /// Routes a service mounted after the server started ([`Telemetry::mount`]).
    extra: Arc<Mutex<Option<Router>>>,
}

/// The running telemetry HTTP server.
#[derive(Debug)]
pub struct TelemetryServer {
    /// The address it listens on (useful when the configured port was 0).
    pub local_addr: SocketAddr,
    /// The server task; it ends when the shutdown token is cancelled.
    pub task: JoinHandle<()>,
}

/// The error of [`Telemetry::new`]: a metric could not be registered.
pub type MetricsError = prometheus::Error;

impl Telemetry {
    /// A registry for `service` (e.g. `producer`), holding `logwarden_build_info{service,
    /// version}`, and the process metrics beside it.
    pub fn new(service: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some("logwarden".to_owned()), None)?;
        let process = Registry::new();
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Which logwarden service and version this is."),
            &["service", "version"],
        )?;
        build_info
            .with_label_values(&[service, env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        Ok(Self {
            registry,
            process,
            health: Arc::new(Health::default()),
            extra: Arc::default(),
        })
    }

    /// Serves `routes` beside `/metrics`, `/healthz` and `/readyz` (which take precedence), from
    /// now on; a later call replaces them. The server starts before a service knows what it will
    /// show, hence a mount instead of a parameter of [`Telemetry::serve`].
    pub fn mount(&self, routes: Router) {
        *self.extra.lock().unwrap_or_else(PoisonError::into_inner) = Some(routes);
    }

    /// The service's metrics and the process metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut buffer = Vec::new();
        // Encoding into a Vec fails only on a metric family that violates the format, which the
        // registry already refuses at registration.
        if let Err(err) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(%err, "Encoding metrics failed.");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listen` until `shutdown` is cancelled.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<TelemetryServer> {
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .fallback(mounted)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        tracing::info!(%local_addr, "Serving /metrics, /healthz, /readyz.");
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(err) = served {
                tracing::error!(%err, "Telemetry server failed: /metrics, /healthz and /readyz no longer answer; restart the service.");
            }
        });
        Ok(TelemetryServer { local_addr, task })
    }
}

async fn metrics(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        telemetry.render(),
    )
}

/// Any other path: the mounted routes, if any.
async fn mounted(State(telemetry): State<Telemetry>, request: Request) -> Response {
    let routes = telemetry
        .extra
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match routes {
        Some(routes) => match routes.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn readyz(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    let (ready, text) = telemetry.health.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, text)
}

/// Registers each listed metric (a clone of it: metrics share their values) in a registry,
/// stopping at the first error: `register_metrics!(registry, metrics.a, metrics.b)?`.
#[macro_export]
macro_rules! register_metrics {
    ($registry:expr, $($metric:expr),+ $(,)?) => {
        (|| -> ::prometheus::Result<()> {
            $( $registry.register(::std::boxed::Box::new($metric.clone()))?; )+
            Ok(())
        })()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get as get_route;

    #[test]
    fn health_is_ready_only_when_every_check_passes() {
        let health = Health::default();
        assert_eq!(
            health.report(),
            (false, "starting: no check registered yet\n".to_owned()),
            "no check yet: the service is starting"
        );
        health.register("kafka", "connecting");
        health.register("opensearch", "connecting");
        health.ready("kafka");
        let (ready, text) = health.report();
        assert!(!ready);
        assert_eq!(text, "kafka: ok\nopensearch: connecting\n");
        health.ready("opensearch");
        assert!(health.is_ready());
        health.not_ready("kafka", "broker unreachable");
        assert!(!health.is_ready());
    }

    #[test]
    fn a_note_is_shown_but_never_decides_readiness() {
        let health = Health::default();
        health.inform("no_data", "none");
        assert_eq!(
            health.report(),
            (false, "starting: no check registered yet\n".to_owned()),
            "a note alone is no check"
        );
        health.register("kafka", "connecting");
        health.inform(
            "no_data",
            "2 detectors: a for 10 intervals, b for 12 intervals",
        );
        assert_eq!(
            health.report(),
            (
                false,
                "kafka: connecting\nno_data: 2 detectors: a for 10 intervals, b for 12 intervals\n"
                    .to_owned()
            )
        );
        health.ready("kafka");
        assert_eq!(
            health.report(),
            (
                true,
                "kafka: ok\nno_data: 2 detectors: a for 10 intervals, b for 12 intervals\n"
                    .to_owned()
            )
        );
    }

    #[test]
    fn registry_renders_build_info_with_prefix_and_process_metrics_without() {
        let telemetry = Telemetry::new("producer").expect("registry");
        let text = telemetry.render();
        assert!(
            text.contains("logwarden_build_info{service=\"producer\""),
            "{text}"
        );
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(!text.contains("logwarden_process_"), "{text}");
    }

    #[tokio::test]
    async fn mounted_routes_answer_beside_the_built_in_ones()
    -> Result<(), Box<dyn std::error::Error>> {
        let telemetry = Telemetry::new("detector")?;
        let stop = CancellationToken::new();
        let server = telemetry
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)), stop.clone())
            .await?;
        let get = |path: &str| {
            let url = format!("http://{}{path}", server.local_addr);
            async move {
                let response = reqwest::get(url).await?;
                Ok::<_, reqwest::Error>((response.status().as_u16(), response.text().await?))
            }
        };
        assert_eq!(get("/page").await?.0, 404, "nothing mounted yet");
        telemetry.mount(Router::new().route("/page", get_route(|| async { "the page" })));
        assert_eq!(get("/page").await?, (200, "the page".to_owned()));
        assert_eq!(get("/healthz").await?, (200, "ok\n".to_owned()));
        assert_eq!(get("/other").await?.0, 404);
        stop.cancel();
        server.task.await?;
        Ok(())
    }

    #[test]
    fn a_bad_log_level_names_the_key() {
        let config = TelemetryConfig {
            log_level: "info,=[".to_owned(),
            ..TelemetryConfig::default()
        };
        let err = config
            .filter_with(None)
            .expect_err("invalid filter")
            .to_string();
        assert!(err.contains("telemetry.log_level"), "{err}");
        let err = TelemetryConfig::default()
            .filter_with(Some("=[".to_owned()))
            .expect_err("invalid RUST_LOG")
            .to_string();
        assert!(err.contains("RUST_LOG"), "{err}");
    }
}
