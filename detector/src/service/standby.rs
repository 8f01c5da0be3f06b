//! Standby: a replica scores only while it holds the lease ([`crate::lease`]), so that a single
//! one reads the stream and alerts. Until it takes the lease it waits here, polling every third
//! of the lease's time to live, with `/readyz` down and saying who holds it.

use opensearch::OpenSearch;
use pipeline::telemetry::Health;
use tokio_util::sync::CancellationToken;

use crate::lease::{Attempt, Lease};
use crate::page::{self, Board};
use crate::settings::Settings;

use super::error::ServiceError;
use super::readiness::LEASE_CHECK;

/// Waits on standby until this replica holds the lease; `None` if shut down first.
pub(super) async fn acquire(
    client: &OpenSearch,
    settings: &Settings,
    health: &Health,
    board: &Board,
    shutdown: &CancellationToken,
) -> Result<Option<Lease>, ServiceError> {
    health.register(LEASE_CHECK, "standby: waiting for the lease");
    board.lease(page::Lease::Standby { holder: None });
    let mut told = false;
    loop {
        match Lease::try_acquire(
            client,
            &settings.spec.checkpoints,
            &settings.instance_id,
            settings.lease_ttl,
        )
        .await
        {
            Ok(Ok(lease)) => {
                health.ready(LEASE_CHECK);
                tracing::info!(instance = %settings.instance_id, "Holding the lease: this replica scores and alerts.");
                return Ok(Some(lease));
            }
            Ok(Err(Attempt::HeldBy(holder, until))) => {
                if !told {
                    tracing::info!(%holder, until, "Standby: another replica holds the lease.");
                    told = true;
                }
                health.not_ready(LEASE_CHECK, &format!("standby: {holder} holds the lease"));
                board.lease(page::Lease::Standby {
                    holder: Some(holder),
                });
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(%err, "Taking the lease: waiting for OpenSearch.");
            }
            Err(err) => return Err(err.into()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(settings.lease_ttl / 3) => {}
        }
    }
}
