//! Replay deduplication: the transformer re-sends up to its in-flight window after a crash, so
//! the same enriched record (the same `event_id`, which is also its document `_id`) can reach
//! the detector twice. OpenSearch keeps it once; the detector must count it once too, or an
//! interval's sum exceeds what the index holds and a replay can raise a false alert.
//!
//! [`Seen`] keeps the ids of the records in every event-time bucket that some detector has not
//! yet closed (a bucket is as long as the shortest detector interval), as 64-bit FNV-1a hashes
//! (a stable hash, so the set survives a checkpoint and a restart under a new build). A bucket
//! is forgotten once every detector has closed the intervals it covers: a copy arriving after
//! that is late for every detector anyway. Memory is about 9 bytes per open id (a hash set of
//! `u64`: one control byte per slot, load factor ⅞, capacity a power of two), 1.2 to 2.3 MB per
//! 100,000 open events (see the test). A hash collision (about 1 in 3·10⁹ at 100,000 ids)
//! would drop one distinct record: accepted.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

/// Event ids seen, per open event-time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SavedSeen", into = "SavedSeen")]
pub struct Seen {
    bucket_ms: i64,
    /// Buckets starting before this time are forgotten: nothing is remembered for them.
    horizon: Option<i64>,
    buckets: BTreeMap<i64, HashSet<u64>>,
}

/// The saved form: ids sorted, so a checkpoint is deterministic.
#[derive(Serialize, Deserialize)]
struct SavedSeen {
    bucket_ms: i64,
    horizon: Option<i64>,
    buckets: BTreeMap<i64, Vec<u64>>,
}

impl From<SavedSeen> for Seen {
    fn from(saved: SavedSeen) -> Self {
        Self {
            bucket_ms: saved.bucket_ms.max(1),
            horizon: saved.horizon,
            buckets: saved
                .buckets
                .into_iter()
                .map(|(start, ids)| (start, ids.into_iter().collect()))
                .collect(),
        }
    }
}

impl From<Seen> for SavedSeen {
    fn from(seen: Seen) -> Self {
        Self {
            bucket_ms: seen.bucket_ms,
            horizon: seen.horizon,
            buckets: seen
                .buckets
                .into_iter()
                .map(|(start, ids)| {
                    let mut ids: Vec<u64> = ids.into_iter().collect();
                    ids.sort_unstable();
                    (start, ids)
                })
                .collect(),
        }
    }
}

/// The stable 64-bit hash of an event id: what [`Seen`] remembers, and what a projected row
/// carries instead of the id ([`crate::projection::Row::id`]).
pub fn hash(id: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(id.as_bytes());
    hasher.finish()
}

impl Seen {
    /// Buckets of `bucket_ms` (the shortest detector interval), aligned to the epoch.
    pub fn new(bucket_ms: i64) -> Self {
        Self {
            bucket_ms: bucket_ms.max(1),
            horizon: None,
            buckets: BTreeMap::new(),
        }
    }

    /// The bucket length.
    pub fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    /// Whether this is the first time the record `id` stamped `time` is seen (it is remembered);
    /// `false` for a repeat. A record before the horizon is not remembered (every detector has
    /// closed its interval: it is late however often it comes).
    pub fn first(&mut self, id: &str, time: i64) -> bool {
        self.first_hashed(hash(id), time)
    }

    /// [`Seen::first`] for an id already hashed ([`hash`]).
    pub fn first_hashed(&mut self, id: u64, time: i64) -> bool {
        let start = time.div_euclid(self.bucket_ms) * self.bucket_ms;
        if self.horizon.is_some_and(|horizon| start < horizon) {
            return true;
        }
        self.buckets.entry(start).or_default().insert(id)
    }

    /// Forgets the buckets that end at or before `time` (the earliest interval some detector
    /// still has open).
    pub fn forget_before(&mut self, time: i64) {
        let horizon = time.div_euclid(self.bucket_ms) * self.bucket_ms;
        if self.horizon.is_some_and(|current| current >= horizon) {
            return;
        }
        self.horizon = Some(horizon);
        self.buckets = self.buckets.split_off(&horizon);
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.buckets.values().map(HashSet::len).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The heap the id sets take, in bytes (slots of 8 bytes plus a control byte each).
    pub fn heap_bytes(&self) -> usize {
        self.buckets
            .values()
            .map(|ids| {
                let slots = (ids.capacity() * 8 / 7).next_power_of_two();
                slots * (std::mem::size_of::<u64>() + 1)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_seen_once_per_open_bucket() {
        let mut seen = Seen::new(1_000);
        assert!(seen.first("a", 10_100));
        assert!(!seen.first("a", 10_100), "the replay");
        assert!(seen.first("b", 10_100));
        // The same id stamped in another bucket is another record's id hash only by accident;
        // it is remembered per bucket.
        assert!(seen.first("a", 11_000));
        assert_eq!(seen.len(), 3);

        seen.forget_before(11_500);
        assert_eq!(seen.len(), 1, "the bucket ending at 11,000 is forgotten");
        assert!(
            seen.first("a", 10_100),
            "before the horizon nothing is remembered: late for every detector"
        );
        assert_eq!(seen.len(), 1);
        assert!(!seen.first("a", 11_999));
        seen.forget_before(5_000);
        assert!(!seen.first("a", 11_000), "the horizon never moves back");
    }

    #[test]
    fn the_set_survives_a_checkpoint() -> Result<(), serde_json::Error> {
        let mut seen = Seen::new(60_000);
        for i in 0..100 {
            seen.first(&format!("enriched-0-{i}"), 120_000 + i);
        }
        seen.forget_before(60_000);
        let text = serde_json::to_string(&seen)?;
        let mut restored: Seen = serde_json::from_str(&text)?;
        assert_eq!(restored, seen);
        assert_eq!(serde_json::to_string(&restored)?, text, "deterministic");
        assert!(!restored.first("enriched-0-7", 120_007));
        assert!(restored.first("enriched-0-100", 120_100));
        Ok(())
    }

    #[test]
    fn memory_per_hundred_thousand_open_events() {
        let mut seen = Seen::new(60_000);
        for i in 0..100_000 {
            assert!(seen.first(&format!("logwarden-enriched-3-{i}"), 60_000));
        }
        assert_eq!(seen.len(), 100_000, "no collision among these ids");
        let bytes = seen.heap_bytes();
        // 131,072 slots of 9 bytes at least; at most twice that right after a growth.
        assert!(
            (1_179_648..=2_359_296).contains(&bytes),
            "{bytes} bytes per 100,000 ids"
        );
        let saved = serde_json::to_string(&seen).map(|t| t.len()).unwrap_or(0);
        eprintln!("100,000 open ids: {bytes} bytes in memory, {saved} bytes in the checkpoint");
    }
}
