//! With `detector.input: projected`, the readers' progress as a session sees it: a partition of
//! `projected` that reached its end is caught up only once the readers' group has committed its
//! `enriched` partition to the end too. Until then it waits here, holding the watermark back, so
//! a dead or slow reader delays intervals rather than making its records late. A partition that
//! waits for a minute is logged (at most once a minute), naming the group: readers that are not
//! running look like this.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::event_time::EventClock;

use super::assign::Assigned;

/// How often the readers' lag is asked at most.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long a partition waits before the session says so.
const PATIENCE: Duration = Duration::from_secs(60);

/// Partitions of `projected` at their end whose readers have not caught up, and since when.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    since: BTreeMap<i32, Instant>,
    probed: Option<Instant>,
    warned: Option<Instant>,
}

impl Waiting {
    /// `partition` reached its end.
    pub(super) fn ended(&mut self, partition: i32) {
        self.since.entry(partition).or_insert_with(Instant::now);
    }

    /// A batch of `partition` arrived: it has a backlog again.
    pub(super) fn read(&mut self, partition: i32) {
        self.since.remove(&partition);
    }

    /// Marks caught up in `clock` the waiting partitions whose readers have caught up (asking
    /// the broker at most every [`PROBE_EVERY`]); says so when one waited [`PATIENCE`].
    pub(super) async fn release(
        &mut self,
        assigned: &Assigned,
        clock: &mut EventClock,
        group: &str,
    ) {
        if self.since.is_empty() || self.probed.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
            return;
        }
        let Some(lagging) = assigned.readers_lagging().await else {
            return;
        };
        self.probed = Some(Instant::now());
        self.since.retain(|partition, _| {
            let done = !lagging.contains(partition);
            if done {
                clock.caught_up(*partition);
            }
            !done
        });
        let stuck: Vec<i32> = (self.since.iter())
            .filter(|(_, since)| since.elapsed() >= PATIENCE)
            .map(|(&partition, _)| partition)
            .collect();
        if !stuck.is_empty() && self.warned.is_none_or(|at| at.elapsed() >= PATIENCE) {
            self.warned = Some(Instant::now());
            tracing::warn!(
                ?stuck,
                group,
                "For a minute the readers have not projected what these partitions of enriched hold, so their intervals wait: check that `logwarden-detector read` runs in this group (detector.reader.group) and with this spec."
            );
        }
    }
}
