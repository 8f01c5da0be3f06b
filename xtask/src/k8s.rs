//! `cargo xtask k8s tools|up|down|status`: the Kubernetes tier of the tests, built and run by
//! the project itself.
//!
//! helm, kubectl, actionlint and a control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok, kwokctl) are built from the Go module proxy and cached by version; the
//! control plane runs as a kwok cluster on loopback, detached, so that the deploy tests can
//! `helm install` onto a real API server. `cargo xtask test` brings both up and hands the tests
//! `XTASK_HELM`, `XTASK_KUBECTL`, `XTASK_KUBECONFIG` and `XTASK_ACTIONLINT`.
//!
//! The parts, each a file: `go` (the toolchain and its caches), `gomod` (the wrapper modules'
//! texts, pure), `tools` (what is built, how, and the cache), `config` (the cluster's ports,
//! state layout and kwokctl configuration, pure), `lock` (file locks between xtask runs) and
//! `cluster` (up, down, status, and the cluster a test run uses). Imports run one way:
//! `cluster` uses `tools` and `config`; `tools` uses `go` and `gomod`.

mod cluster;
mod config;
mod go;
mod gomod;
mod lock;
pub mod tools;

pub use cluster::{down, release, status, up, use_for_tests};
pub use tools::ensure as tools;

use anyhow::Result;

use crate::Ctx;

/// The `k8s` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum K8sCommand {
    /// Build helm, kubectl, actionlint and the control plane from the Go module proxy (cached
    /// by version; a no-op when all are built).
    Tools,
    /// Build the tools if needed and start the kwok cluster `logwarden` with 2 Ready nodes; a
    /// no-op if it is up. Prints the XTASK_* variables the deploy tests read.
    Up,
    /// Delete the cluster and wait until its ports are free.
    Down,
    /// Show the tools and the cluster; fails unless both are ready.
    Status,
}

/// Runs a `k8s` subcommand; `Ok(false)` when `status` finds something missing.
pub fn run(ctx: &Ctx, command: &K8sCommand) -> Result<bool> {
    match command {
        K8sCommand::Tools => tools(&ctx.dirs.cache).map(|_| true),
        K8sCommand::Up => up(ctx).map(|_| true),
        K8sCommand::Down => down(ctx).map(|()| true),
        K8sCommand::Status => status(ctx),
    }
}
