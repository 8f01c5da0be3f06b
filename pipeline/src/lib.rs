//! The shared library of logwarden's services: what every service needs once.
//!
//! - [`config`]: YAML file + `LOGWARDEN_*` environment, unknown keys rejected, errors naming the key.
//! - [`kafka`]: client presets (idempotent producer, manual offset store), topic administration.
//! - [`backoff`]: the one retry policy: exponential, capped, jittered.
//! - [`delivery`]: pipelined Kafka deliveries that settle in send order, retried, never dropped.
//! - [`wire`]: what goes on each topic; the only place a wire format is defined.
//! - [`shutdown`]: SIGTERM/SIGINT → a cancellation token, and a drain deadline.
//! - [`telemetry`]: logs, a per-service metrics registry, `/metrics`, `/healthz`, `/readyz`.
//! - [`service`]: the start-up sequence every binary's `main` shares.
//! - `search` (feature `opensearch`): the OpenSearch client and the events index and template.
//! - `spec` (feature `spec`): the declarative spec the detector and the provisioner read.
//!
//! This crate does no work of its own at import time and holds no global state besides the log
//! subscriber [`telemetry::init_logging`] installs.

pub mod backoff;
pub mod config;
pub mod delivery;
pub mod kafka;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod wire;

#[cfg(feature = "opensearch")]
pub mod search;

#[cfg(feature = "spec")]
pub mod spec;

#[cfg(feature = "testkit")]
pub mod testkit;
