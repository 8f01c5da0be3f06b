//! Holding the lease while scoring: a task renews it every quarter of its time to live, apart
//! from the loop, so a slow call in the loop (a checkpoint, a results write) never makes the
//! lease lapse. The loop asks [`Tenure::held`] before anything that goes out (results,
//! anomalies, alerts, checkpoints): held means not lost to another replica and renewed recently
//! enough that no standby can yet see the lease expired ([`crate::lease::Lease::trusted_until`]).
//! A holder frozen past that point (SIGSTOP, a long pause) finds on waking that it no longer
//! holds the lease before it writes anything, and its checkpoint writes are fenced anyway
//! ([`crate::checkpoints`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opensearch::OpenSearch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lease::Lease;

/// The lease, held and renewed in the background.
pub(super) struct Tenure {
    /// Until when the lease may be acted on; `None` once lost.
    trusted_until: Arc<Mutex<Option<Instant>>>,
    /// Cancelled when the lease is lost (and on shutdown): ends the session's waits.
    lost: CancellationToken,
    /// Ends the renewals (at release).
    stop: CancellationToken,
    renewals: JoinHandle<Lease>,
    holder: String,
    generation: i64,
}

impl Tenure {
    /// Starts renewing `lease`; `session` is cancelled if it is lost.
    pub(super) fn start(lease: Lease, client: OpenSearch, session: CancellationToken) -> Self {
        let trusted_until = Arc::new(Mutex::new(Some(lease.trusted_until())));
        let stop = CancellationToken::new();
        let holder = lease.holder().to_owned();
        let generation = lease.generation();
        let renewals = tokio::spawn(renew(
            lease,
            client,
            Arc::clone(&trusted_until),
            session.clone(),
            stop.clone(),
        ));
        Self {
            trusted_until,
            lost: session,
            stop,
            renewals,
            holder,
            generation,
        }
    }

    /// Whether this replica still holds the lease and may write.
    pub(super) fn held(&self) -> bool {
        let trusted = self.trusted_until.lock().map(|t| *t).unwrap_or(None);
        let held = trusted.is_some_and(|until| Instant::now() < until);
        if !held {
            self.lost.cancel();
        }
        held
    }

    /// Marks the lease lost (another replica fenced the checkpoint).
    pub(super) fn lose(&self) {
        if let Ok(mut t) = self.trusted_until.lock() {
            *t = None;
        }
        self.lost.cancel();
    }

    /// When the lease stops being trusted unless renewed first (now, once lost).
    pub(super) fn trusted_until(&self) -> Instant {
        self.trusted_until
            .lock()
            .map(|t| *t)
            .unwrap_or(None)
            .unwrap_or_else(Instant::now)
    }

    /// The session's token: cancelled when the lease is lost or on shutdown.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The holder's name, as in the lease.
    pub(super) fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease's generation for this holder.
    pub(super) fn generation(&self) -> i64 {
        self.generation
    }

    /// Stops renewing and gives the lease up (if still held) so a standby takes over at once.
    pub(super) async fn release(self, client: &OpenSearch) {
        let held = self.held();
        self.stop.cancel();
        if let Ok(lease) = self.renewals.await
            && held
        {
            lease.release(client).await;
        }
    }
}

/// Renews `lease` every quarter of its time to live until `stop`; on loss (a conflict, or no
/// renewal before it stops being trusted) clears `trusted_until` and cancels `lost`.
async fn renew(
    mut lease: Lease,
    client: OpenSearch,
    trusted_until: Arc<Mutex<Option<Instant>>>,
    lost: CancellationToken,
    stop: CancellationToken,
) -> Lease {
    let every = lease.renew_every();
    let give_up = |why: &str| {
        if let Ok(mut t) = trusted_until.lock() {
            *t = None;
        }
        tracing::warn!(why, "Lost the lease: this replica stops scoring.");
        lost.cancel();
    };
    let marked_lost = || trusted_until.lock().map(|t| t.is_none()).unwrap_or(true);
    // Renewals go on after a shutdown cancelled the session, until `stop` (the release): the
    // shutdown still closes intervals, drains alerts and saves the last checkpoint, all of which
    // need the lease held.
    loop {
        tokio::select! {
            () = stop.cancelled() => return lease,
            () = tokio::time::sleep(every) => {}
        }
        if marked_lost() {
            // Fenced by another replica's checkpoint ([`Tenure::lose`]): never renewed again.
            return lease;
        }
        if Instant::now() >= lease.trusted_until() {
            give_up("not renewed in time (was this process paused?)");
            return lease;
        }
        // A renewal may take until the lease stops being trusted; later is as good as failed.
        let left = lease
            .trusted_until()
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        match tokio::time::timeout(left, lease.renew(&client)).await {
            Ok(Ok(true)) => {
                if let Ok(mut t) = trusted_until.lock()
                    && t.is_some()
                {
                    *t = Some(lease.trusted_until());
                }
            }
            Ok(Ok(false)) => {
                give_up("another replica took it over");
                return lease;
            }
            Ok(Err(err)) => tracing::warn!(%err, "Renewing the lease failed; retrying."),
            Err(_) => tracing::warn!("Renewing the lease timed out; retrying."),
        }
        if Instant::now() >= lease.trusted_until() {
            give_up("OpenSearch did not take a renewal in time");
            return lease;
        }
    }
}
