//! Graceful shutdown: SIGTERM and SIGINT become one [`CancellationToken`], and in-flight work
//! gets a deadline to drain.
//!
//! Kubernetes sends SIGTERM and, after the pod's grace period (30 s by default), SIGKILL. Each
//! service passes the token into its long-running tasks, which stop taking new work at a safe
//! point (between batches) and finish what is in flight: deliveries awaited, offsets committed.
//! [`drain`] bounds that phase so a stuck downstream cannot hold the process past the grace
//! period; the default [`DRAIN_DEADLINE`] is shorter than it. A second signal exits at once.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a service drains after the shutdown signal by default: under Kubernetes' default
/// 30-second grace period, with room for the process to exit.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// Exit status after a second, forcing signal (128 + SIGINT, as shells report it).
const FORCED_EXIT_STATUS: i32 = 130;

/// Installs SIGTERM and SIGINT handlers and returns the token they cancel. The first signal
/// cancels the token; a second one exits the process immediately. Must be called within a Tokio
/// runtime.
pub fn install() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};

    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "Shutting down: draining in-flight work.");
        cancel.cancel();
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::warn!("Second signal: exiting without draining.");
        std::process::exit(FORCED_EXIT_STATUS);
    });
    Ok(token)
}

/// The drain deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("drain did not finish within {0:?}")]
pub struct DrainTimeout(pub Duration);

/// Runs `work` (typically the tail of a service after its token was cancelled) for at most
/// `deadline`.
pub async fn drain<F: Future>(work: F, deadline: Duration) -> Result<F::Output, DrainTimeout> {
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| DrainTimeout(deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_returns_work_that_finishes_in_time() {
        let out = drain(
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                7
            },
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(out, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_at_the_deadline() {
        let out = drain(std::future::pending::<()>(), Duration::from_secs(3)).await;
        assert_eq!(out, Err(DrainTimeout(Duration::from_secs(3))));
    }

    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        let token = install().expect("signal handlers install");
        // The handler is registered by now, so SIGTERM is caught rather than fatal.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .expect("token cancelled after SIGTERM");
    }
}
