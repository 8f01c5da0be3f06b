//! The start-up sequence every service binary shares, so each `main.rs` stays thin: load and
//! validate config, start logging, then [`Service::start`] (signals, metrics registry, the
//! telemetry server), then the service's own `run(config, service)`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio_util::sync::CancellationToken;

use crate::telemetry::{MetricsError, Telemetry, TelemetryConfig, TelemetryServer};

/// What a running service holds: its telemetry, the shutdown token, the telemetry server.
#[derive(Debug)]
pub struct Service {
    /// The service name, e.g. `producer`.
    pub name: &'static str,
    /// Metrics registry and health checks.
    pub telemetry: Telemetry,
    /// Cancelled on SIGTERM or SIGINT.
    pub shutdown: CancellationToken,
    /// The `/metrics`, `/healthz`, `/readyz` server.
    pub server: TelemetryServer,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// A metric could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// The telemetry address could not be bound.
    #[error(
        "cannot listen on {addr} for /metrics: {source} (set `telemetry.listen` to a free address)"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Service {
    /// Installs signal handling and serves telemetry on `telemetry.listen`, or on 127.0.0.1 at
    /// `default_port` when unset (in a cluster, set `0.0.0.0:<port>` so Prometheus can scrape).
    pub async fn start(
        name: &'static str,
        telemetry: &TelemetryConfig,
        default_port: u16,
    ) -> Result<Self, StartError> {
        Self::start_with(
            name,
            telemetry,
            default_port,
            crate::shutdown::install().map_err(StartError::Signals)?,
        )
        .await
    }

    /// As [`Service::start`], with a shutdown token of the caller's: how tests run a service
    /// in-process and stop it.
    pub async fn start_with(
        name: &'static str,
        telemetry: &TelemetryConfig,
        default_port: u16,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let addr = telemetry.listen.unwrap_or(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            default_port,
        ));
        let registry = Telemetry::new(name)?;
        let server = registry
            .serve(addr, shutdown.clone())
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        Ok(Self {
            name,
            telemetry: registry,
            shutdown,
            server,
        })
    }
}

impl Service {
    /// How long start-up waits for the brokers before leaving them to librdkafka's retries.
    pub const KAFKA_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    /// The start-up check of the brokers ([`crate::kafka::preflight`]): a refused password or an
    /// untrusted certificate stops the service here, with the reason, instead of a silent retry
    /// loop; `/readyz` says why.
    pub async fn check_kafka(
        &self,
        kafka: &crate::kafka::KafkaConfig,
    ) -> Result<(), crate::kafka::PreflightError> {
        crate::kafka::preflight(kafka, &self.telemetry.health, Self::KAFKA_PATIENCE).await
    }
}
