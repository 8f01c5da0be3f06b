//! Which shards this replica scores ([`crate::shards`]): every third of the lease's time to live
//! it announces itself ([`crate::members`], when there is more than one shard), looks at the
//! leases of the shards it does not run, and takes or hands back shards to reach its fair share.
//! Each shard it holds runs as its own session (a task: its lease renewed apart, its checkpoint,
//! its reader of `enriched`), which ends on a hand-back (checkpointed, lease released), on
//! shutdown, or when its lease is lost. With one shard this is the single active replica and its
//! standbys: `/readyz` is down and says who holds the lease until this replica holds it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use opensearch::OpenSearch;
use pipeline::search::SearchError;
use pipeline::telemetry::Health;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lease::{Attempt, Lease};
use crate::members;
use crate::page::{self, Board};
use crate::settings::Settings;
use crate::shards::{self, Part, Seen};

use super::clock::now_ms;
use super::error::ServiceError;
use super::metrics::Metrics;
use super::readiness::LEASE_CHECK;
use super::tenure::Tenure;
use super::{Context, Ended};

/// What every session of this replica shares.
pub(super) struct Shared {
    pub(super) client: OpenSearch,
    pub(super) health: Arc<Health>,
    pub(super) metrics: Metrics,
    pub(super) board: Board,
}

/// A shard's session, running.
struct Running {
    /// Ends the session gracefully (hand-back or shutdown).
    stop: CancellationToken,
    handle: JoinHandle<Result<Ended, ServiceError>>,
    generation: i64,
    /// Being handed back: it checkpoints and releases, then ends.
    handing_back: bool,
}

/// The sessions of this replica, by shard.
struct Holdings {
    /// Each shard's settings: its part of the spec.
    parts: Vec<Arc<Settings>>,
    running: BTreeMap<usize, Running>,
    /// When each shard this replica does not run was first seen free.
    free_since: BTreeMap<usize, Instant>,
    /// Live replicas, this one included, as last counted.
    members: usize,
    /// The replicas holding the shards this one does not run, as last seen.
    holders: BTreeSet<String>,
    /// Whether this replica said it is on standby (said once until it holds a shard).
    told_standby: bool,
    /// A replica with another shard count, once warned about.
    told_mismatch: bool,
}

/// Where this replica starts looking for a shard: spread by its name, so replicas starting
/// together try different shards first.
fn offset(instance: &str, shards: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    instance.hash(&mut hasher);
    usize::try_from(hasher.finish() % shards.max(1) as u64).unwrap_or(0)
}

/// Scores this replica's share of the shards until `shutdown`; an error from any session stops
/// the others (checkpointed) and ends the service with it.
pub(super) async fn run(
    settings: &Settings,
    shared: Arc<Shared>,
    shutdown: &CancellationToken,
) -> Result<(), ServiceError> {
    let shards = settings.shards.max(1);
    let parts = shards::split(&settings.spec, shards)
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            Arc::new(Settings {
                spec,
                part: Part { index, of: shards },
                ..settings.clone()
            })
        })
        .collect();
    let mut holdings = Holdings {
        parts,
        running: BTreeMap::new(),
        free_since: BTreeMap::new(),
        members: 1,
        holders: BTreeSet::new(),
        told_standby: false,
        told_mismatch: false,
    };
    shared
        .health
        .register(LEASE_CHECK, "standby: waiting for the lease");
    shared.board.lease(page::Lease::Standby { holder: None });
    shared
        .metrics
        .shards
        .set(i64::try_from(shards).unwrap_or(i64::MAX));
    let start = offset(&settings.instance_id, shards);
    let every = settings.lease_ttl / 3;
    let ended = loop {
        if let Err(err) = holdings.reap(&shared).await {
            break Err(err);
        }
        if shutdown.is_cancelled() {
            break Ok(());
        }
        match holdings.round(settings, &shared, start, shutdown).await {
            Ok(()) => {}
            Err(err) if err.is_transient() => {
                tracing::warn!(%err, "Sharing the shards: waiting for OpenSearch.");
            }
            Err(err) => break Err(err.into()),
        }
        holdings.publish(&shared);
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(every) => {}
        }
    };
    // Shutdown or a failure: every session checkpoints and releases its lease.
    for running in holdings.running.values() {
        running.stop.cancel();
    }
    let last = holdings.reap_all(&shared).await;
    if shards > 1 {
        members::withdraw(
            &shared.client,
            &settings.spec.checkpoints,
            &settings.instance_id,
        )
        .await;
    }
    shared.metrics.active.set(0);
    ended.and(last)
}

impl Holdings {
    fn shards(&self) -> usize {
        self.parts.len()
    }

    /// One round: count the members, look at the other shards' leases, take or hand back.
    async fn round(
        &mut self,
        settings: &Settings,
        shared: &Arc<Shared>,
        start: usize,
        shutdown: &CancellationToken,
    ) -> Result<(), SearchError> {
        let client = &shared.client;
        let index = settings.spec.checkpoints.as_str();
        let shards = self.shards();
        if shards > 1 {
            let expires_at = now_ms() + super::clock::millis(settings.lease_ttl);
            members::announce(client, index, &settings.instance_id, expires_at, shards).await?;
            let live = members::live(client, index, now_ms()).await?;
            let others = live
                .iter()
                .filter(|(name, _)| *name != settings.instance_id);
            self.members = 1 + others.clone().count();
            if let Some((name, count)) = others.clone().find(|(_, count)| *count != shards)
                && !self.told_mismatch
            {
                tracing::error!(replica = %name, shards = count, ours = shards, "Another detector replica splits the spec into another number of shards: both score some detectors. Give every replica the same detector.shards.");
                self.told_mismatch = true;
            }
        }
        let now = Instant::now();
        let mut seen = BTreeMap::new();
        let mut holders = BTreeSet::new();
        // The free shards' leases as read: taking one writes over what was read.
        let mut observed = BTreeMap::new();
        for shard in (0..shards).filter(|s| !self.running.contains_key(s)) {
            let id = self.parts[shard].part.lease_id();
            let lease = Lease::observe(client, (index, &id)).await?;
            match lease
                .holder(now_ms())?
                // Ours without a session: this replica restarted under the same name (a
                // container restarted in its pod) and may take it back at once.
                .filter(|holder| *holder != settings.instance_id)
            {
                Some(holder) => {
                    self.free_since.remove(&shard);
                    holders.insert(holder.clone());
                    seen.insert(shard, Seen::Held(holder));
                }
                None => {
                    let since = *self.free_since.entry(shard).or_insert(now);
                    seen.insert(shard, Seen::Free(since));
                    observed.insert(shard, lease);
                }
            }
        }
        let running: BTreeSet<usize> = self
            .running
            .iter()
            .filter(|(_, r)| !r.handing_back)
            .map(|(shard, _)| *shard)
            .collect();
        let moves = shards::plan(
            &running,
            &seen,
            shards,
            self.members,
            start,
            now,
            settings.lease_ttl * 2,
        );
        if let Some(shard) = moves.hand_back
            && let Some(session) = self.running.get_mut(&shard)
        {
            tracing::info!(shard = %self.parts[shard].part, members = self.members, "Handing a shard back for another replica to take: checkpointing and releasing its lease.");
            session.handing_back = true;
            session.stop.cancel();
        }
        for shard in moves.take {
            let part = Arc::clone(&self.parts[shard]);
            let id = part.part.lease_id();
            let key = (index, id.as_str());
            let (holder, ttl) = (settings.instance_id.as_str(), settings.lease_ttl);
            // The plan takes only shards seen free, each observed above.
            let Some(lease) = observed.remove(&shard) else {
                continue;
            };
            match Lease::try_acquire(client, key, holder, ttl, lease).await? {
                Ok(lease) => {
                    self.free_since.remove(&shard);
                    self.told_standby = false;
                    if shards == 1 {
                        tracing::info!(instance = %settings.instance_id, "Holding the lease: this replica scores and alerts.");
                    } else {
                        tracing::info!(instance = %settings.instance_id, shard = %part.part, detectors = part.spec.detectors.len(), "Holding the lease of a shard: this replica scores its detectors and alerts for them.");
                    }
                    self.start(shard, shared, part, lease, shutdown);
                }
                Err(Attempt::HeldBy(holder, until)) => {
                    holders.insert(holder.clone());
                    tracing::debug!(%holder, until, shard, "Another replica took the shard first.");
                }
            }
        }
        if self.running.is_empty() && !self.told_standby {
            let holder = holders.iter().next().cloned().unwrap_or_default();
            tracing::info!(%holder, "Standby: another replica holds the lease.");
            self.told_standby = true;
        }
        self.holders = holders;
        Ok(())
    }

    /// Starts scoring `shard` under `lease`, as a task of its own.
    fn start(
        &mut self,
        shard: usize,
        shared: &Arc<Shared>,
        settings: Arc<Settings>,
        lease: Lease,
        shutdown: &CancellationToken,
    ) {
        let stop = shutdown.child_token();
        let generation = lease.generation();
        let shared = Arc::clone(shared);
        let token = stop.clone();
        let handle = tokio::spawn(async move {
            let tenure = Tenure::start(lease, shared.client.clone(), token.child_token());
            let context = Context {
                settings: &settings,
                client: &shared.client,
                health: &shared.health,
                metrics: &shared.metrics,
                shutdown: &token,
                board: &shared.board,
            };
            let ended = context.session(&tenure).await;
            tenure.release(&shared.client).await;
            ended
        });
        self.running.insert(
            shard,
            Running {
                stop,
                handle,
                generation,
                handing_back: false,
            },
        );
    }

    /// Collects the sessions that ended; the first error, if any ended with one.
    async fn reap(&mut self, shared: &Shared) -> Result<(), ServiceError> {
        let ended: Vec<usize> = self
            .running
            .iter()
            .filter(|(_, r)| r.handle.is_finished())
            .map(|(shard, _)| *shard)
            .collect();
        let mut first = Ok(());
        for shard in ended {
            if let Some(running) = self.running.remove(&shard) {
                let outcome = self.ended(shard, running, shared).await;
                first = first.and(outcome);
            }
        }
        first
    }

    /// Waits for every session to end (they were told to stop); the first error, if any.
    async fn reap_all(&mut self, shared: &Shared) -> Result<(), ServiceError> {
        let mut first = Ok(());
        while let Some((shard, running)) = self.running.pop_first() {
            let outcome = self.ended(shard, running, shared).await;
            first = first.and(outcome);
        }
        first
    }

    /// What a session's end means for this replica.
    async fn ended(
        &mut self,
        shard: usize,
        running: Running,
        shared: &Shared,
    ) -> Result<(), ServiceError> {
        let part = self.parts[shard].part;
        // Its detectors are no longer this replica's to report on.
        if part.of > 1 {
            shared
                .health
                .inform(&super::no_data_note(part), "none (not scored here)");
        }
        match running.handle.await {
            Ok(Ok(Ended::Shutdown)) => Ok(()),
            Ok(Ok(Ended::LeaseLost)) => {
                shared.metrics.lease_lost.inc();
                if self.running.is_empty() {
                    shared
                        .health
                        .not_ready(LEASE_CHECK, "lost the lease: stopped scoring, on standby");
                }
                tracing::warn!(shard = %part, "Lost the lease: stopped scoring; back on standby.");
                Ok(())
            }
            Ok(Err(err)) => Err(err),
            Err(join) => {
                tracing::error!(%join, shard = %part, "A shard's session ended abnormally.");
                Err(ServiceError::Session(join.to_string()))
            }
        }
    }

    /// The metrics, `/readyz` and the page, from what runs now.
    fn publish(&self, shared: &Shared) {
        let scoring: Vec<(usize, i64)> = self
            .running
            .iter()
            .filter(|(_, r)| !r.handing_back)
            .map(|(shard, r)| (*shard, r.generation))
            .collect();
        shared
            .metrics
            .active
            .set(i64::try_from(scoring.len()).unwrap_or(i64::MAX));
        if self.running.is_empty() {
            let holders = &self.holders;
            let said = match holders.len() {
                0 => "standby: waiting for the lease".to_owned(),
                1 if self.shards() == 1 => format!(
                    "standby: {} holds the lease",
                    holders.iter().next().map_or("", String::as_str)
                ),
                _ => format!(
                    "standby: every shard is held ({})",
                    holders.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            shared.health.not_ready(LEASE_CHECK, &said);
            shared.board.lease(page::Lease::Standby {
                holder: holders.iter().next().cloned(),
            });
            return;
        }
        if scoring.is_empty() {
            // Every session is being handed back: what was said stays until they end.
            return;
        }
        shared.health.ready(LEASE_CHECK);
        shared.board.lease(page::Lease::Active {
            generation: scoring.iter().map(|(_, g)| *g).max().unwrap_or(0),
            shards: if self.shards() > 1 {
                scoring.iter().map(|(shard, _)| *shard).collect()
            } else {
                Vec::new()
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_start_looking_at_different_shards() {
        assert_eq!(offset("any", 1), 0);
        let starts: BTreeSet<usize> = (0..16)
            .map(|i| offset(&format!("logwarden-detector-{i}"), 4))
            .collect();
        assert!(starts.len() > 1, "{starts:?}");
        assert!(starts.iter().all(|s| *s < 4));
        assert_eq!(offset("a", 4), offset("a", 4), "stable for a name");
    }
}
