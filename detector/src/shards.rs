//! Scaling out: the spec's detectors split into `detector.shards` shards, each owned by one
//! replica at a time through its own lease and saved in its own checkpoint, so that several
//! replicas share the scoring and a replica that dies hands its shards to the others.
//!
//! A shard is a set of whole monitor groups: a monitor and every detector it watches stay in one
//! shard (its episodes and its one alert for many detectors need them together). Groups go to
//! the least-loaded shard, largest first, by the work they weigh (a detector and each of its
//! extra features count one each, a category detector four), in a way that depends on the spec
//! alone, so every replica computes the same split.
//!
//! Who holds what is decided by each replica for itself ([`plan`]): it announces itself (a
//! member document renewed like a lease), counts the live members, and aims at its fair share,
//! `ceil(shards / members)`. Above it, it hands one shard back at a time (checkpointed and
//! released, so another replica takes it over where it stopped); below it, it takes free shards.
//! A shard nobody took for two lease periods is taken by anyone, whatever its share, so a member
//! that announces itself but takes nothing cannot strand a shard. With one shard (the default)
//! this is the single active replica of before, with the same lease and checkpoint documents.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::spec::Spec;

/// Which shard a session runs, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Part {
    /// The shard's number, from 0.
    pub index: usize,
    /// How many shards the spec is split into (0 is read as 1).
    pub of: usize,
}

impl Part {
    /// The whole spec as one shard.
    pub const WHOLE: Self = Self { index: 0, of: 1 };

    fn single(self) -> bool {
        self.of <= 1
    }

    /// The lease document's id: `_lease` for a single shard (as before shards existed), else
    /// `_lease-<index>-of-<of>`.
    pub fn lease_id(self) -> String {
        self.doc_id("_lease")
    }

    /// The checkpoint document's id, named as [`Self::lease_id`].
    pub fn checkpoint_id(self) -> String {
        self.doc_id("_checkpoint")
    }

    /// The `/readyz` note of this shard's detectors without data.
    pub fn no_data_note(self) -> String {
        if self.single() {
            crate::service::NO_DATA_NOTE.to_owned()
        } else {
            format!("{} (shard {})", crate::service::NO_DATA_NOTE, self.index)
        }
    }

    fn doc_id(self, base: &str) -> String {
        if self.single() {
            base.to_owned()
        } else {
            format!("{base}-{}-of-{}", self.index, self.of)
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of.max(1))
    }
}

/// The groups of detectors that must stay together: each detector with every detector a monitor
/// of it also watches. Indices into `spec.detectors`, each group in spec order, groups ordered
/// by their first detector.
fn groups(spec: &Spec) -> Vec<Vec<usize>> {
    let position: BTreeMap<&str, usize> = spec
        .detectors
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    // Union-find over detectors, joined by monitors.
    let mut parent: Vec<usize> = (0..spec.detectors.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for monitor in &spec.monitors {
        let mut watched = monitor
            .detectors
            .iter()
            .filter_map(|name| position.get(name.as_str()).copied());
        let Some(first) = watched.next() else {
            continue;
        };
        for other in watched {
            let (a, b) = (root(&mut parent, first), root(&mut parent, other));
            // The lower index stays the root: the group is named by its first detector.
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..spec.detectors.len() {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(i);
    }
    by_root.into_values().collect()
}

/// The work a detector weighs in the split.
fn weight(spec: &Spec, detector: usize) -> usize {
    let d = &spec.detectors[detector];
    let category = if d.category.is_some() { 3 } else { 0 };
    1 + d.extra_features.len() + category
}

/// How many shards `spec` can be split into at most: its monitor groups.
pub fn most(spec: &Spec) -> usize {
    groups(spec).len()
}

/// `spec` split into `count` shards (1 ≤ `count` ≤ [`most`]): each shard's spec holds its
/// detectors (in spec order), the monitors watching them, and every channel.
pub fn split(spec: &Spec, count: usize) -> Vec<Spec> {
    let count = count.clamp(1, most(spec).max(1));
    let mut groups = groups(spec);
    let weigh = |group: &[usize]| group.iter().map(|&i| weight(spec, i)).sum::<usize>();
    // Heaviest first; equal weights keep spec order (the sort is stable).
    groups.sort_by_key(|group| std::cmp::Reverse(weigh(group)));
    let mut load = vec![0_usize; count];
    let mut members: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
    for group in &groups {
        let lightest = (0..count).min_by_key(|&s| (load[s], s)).unwrap_or(0);
        load[lightest] += weigh(group);
        members[lightest].extend(group.iter().copied());
    }
    members
        .into_iter()
        .map(|detectors| {
            let mut part = spec.clone();
            part.detectors = detectors
                .iter()
                .map(|&i| spec.detectors[i].clone())
                .collect();
            let names: BTreeSet<&str> = part.detectors.iter().map(|d| d.name.as_str()).collect();
            part.monitors.retain(|m| {
                m.detectors
                    .first()
                    .is_some_and(|name| names.contains(name.as_str()))
            });
            part
        })
        .collect()
}

/// A replica's fair share: `ceil(shards / members)`.
pub fn share(shards: usize, members: usize) -> usize {
    shards.div_ceil(members.max(1))
}

/// What a replica sees of one shard it does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Another replica holds its lease.
    Held(String),
    /// Nobody does (no lease yet, expired, or released), since the given instant.
    Free(Instant),
}

/// What to do this round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Moves {
    /// Shards to try to take.
    pub take: Vec<usize>,
    /// A shard to hand back (checkpointed and released).
    pub hand_back: Option<usize>,
}

/// This round's moves for a replica running `running` (its sessions not being handed back),
/// among `members` live replicas, seeing `others` (the shards it has no session for) at `now`. It takes free
/// shards up to its share, starting at `start` (a per-replica offset, so that replicas starting
/// together try different shards first), and any shard free for more than `orphaned`; above its
/// share it hands back its highest one.
pub fn plan(
    running: &BTreeSet<usize>,
    others: &BTreeMap<usize, Seen>,
    shards: usize,
    members: usize,
    start: usize,
    now: Instant,
    orphaned: Duration,
) -> Moves {
    let target = share(shards, members);
    if running.len() > target {
        return Moves {
            take: Vec::new(),
            hand_back: running.last().copied(),
        };
    }
    let mut room = target - running.len();
    let mut take = Vec::new();
    for offset in 0..shards {
        let shard = (start + offset) % shards;
        let Some(Seen::Free(since)) = others.get(&shard) else {
            continue;
        };
        if room > 0 {
            room -= 1;
            take.push(shard);
        } else if now.saturating_duration_since(*since) > orphaned {
            take.push(shard);
        }
    }
    Moves {
        take,
        hand_back: None,
    }
}

#[cfg(test)]
mod tests;
