//! Scaling out: the spec's detectors split into `detector.shards` shards, each owned by one
//! replica at a time through its own lease and saved in its own checkpoint, so that several
//! replicas share the scoring and a replica that dies hands its shards to the others.
//!
//! A shard is a set of whole monitor groups: a monitor and every detector it watches stay in one
//! shard (its episodes and its one alert for many detectors need them together). A category
//! detector whose entities are split (`category.parts: P`, which no monitor joins with another)
//! is P such units, each part in a shard of its own, scoring only the entities of its part. Groups go to
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

    /// Whether this is the whole spec, unsplit.
    pub fn single(self) -> bool {
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

/// How many parts a detector's entities are split into (1 for all but a category detector with
/// `category.parts`).
fn parts(spec: &Spec, detector: usize) -> usize {
    spec.detectors[detector]
        .category
        .as_ref()
        .map_or(1, |c| c.parts.max(1))
}

/// One piece of the split: a monitor group, or one part of the entities of a category detector
/// split by `category.parts` (which no monitor joins with another: the spec's check sees to it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    detectors: Vec<usize>,
    /// The part of the group's one detector, when its entities are split.
    part: Option<usize>,
}

/// The pieces `spec` is split into: each monitor group, its parts for a split detector.
fn units(spec: &Spec) -> Vec<Unit> {
    groups(spec)
        .into_iter()
        .flat_map(|detectors| match detectors.as_slice() {
            [only] if parts(spec, *only) > 1 => (0..parts(spec, *only))
                .map(|part| Unit {
                    detectors: detectors.clone(),
                    part: Some(part),
                })
                .collect(),
            _ => vec![Unit {
                detectors,
                part: None,
            }],
        })
        .collect()
}

/// How many shards `spec` can be split into at most: its monitor groups, a split detector's
/// group counting once per part.
pub fn most(spec: &Spec) -> usize {
    units(spec).len()
}

/// How many shards `spec` needs at least: its most `category.parts`, as each part of a
/// detector's entities goes to a shard of its own.
pub fn least(spec: &Spec) -> usize {
    (0..spec.detectors.len())
        .map(|d| parts(spec, d))
        .max()
        .unwrap_or(1)
}

/// `spec` split into `count` shards ([`least`] ≤ `count` ≤ [`most`]): each shard's spec holds
/// its detectors (in spec order), the monitors watching them, and every channel. A shard with a
/// part of a split detector's entities scores that part only (`category.part`), and its
/// monitors of that detector are named with the part (`<monitor> (entities 1/4)`), as each part
/// alerts on its own entities.
pub fn split(spec: &Spec, count: usize) -> Vec<Spec> {
    let mut units = units(spec);
    let count = count.clamp(least(spec), units.len().max(1));
    let weigh = |unit: &Unit| {
        unit.detectors
            .iter()
            .map(|&i| weight(spec, i))
            .sum::<usize>()
    };
    // Heaviest first; equal weights keep spec order (the sort is stable).
    units.sort_by_key(|unit| std::cmp::Reverse(weigh(unit)));
    let mut load = vec![0_usize; count];
    let mut members: Vec<BTreeMap<usize, Option<usize>>> = vec![BTreeMap::new(); count];
    for unit in &units {
        // A split detector's parts go to different shards: there are at least as many shards
        // as parts, so one is always left.
        let lightest = (0..count)
            .filter(|&s| !members[s].contains_key(&unit.detectors[0]))
            .min_by_key(|&s| (load[s], s))
            .unwrap_or(0);
        load[lightest] += weigh(unit);
        members[lightest].extend(unit.detectors.iter().map(|&d| (d, unit.part)));
    }
    members.into_iter().map(|held| shard(spec, &held)).collect()
}

/// The spec of a shard holding `held`: detectors by index, each with its part when split.
fn shard(spec: &Spec, held: &BTreeMap<usize, Option<usize>>) -> Spec {
    let mut shard = spec.clone();
    shard.detectors = held
        .iter()
        .map(|(&i, &part)| {
            let mut detector = spec.detectors[i].clone();
            if let Some(category) = detector.category.as_mut() {
                category.part = part;
            }
            detector
        })
        .collect();
    let split: BTreeMap<&str, (usize, usize)> = shard
        .detectors
        .iter()
        .filter_map(|d| {
            let c = d.category.as_ref()?;
            Some((d.name.as_str(), (c.part?, c.parts)))
        })
        .collect();
    let names: BTreeSet<&str> = shard.detectors.iter().map(|d| d.name.as_str()).collect();
    shard.monitors = spec
        .monitors
        .iter()
        .filter(|m| {
            m.detectors
                .first()
                .is_some_and(|name| names.contains(name.as_str()))
        })
        .map(|m| {
            let mut monitor = m.clone();
            if let Some((part, parts)) = m.detectors.first().and_then(|d| split.get(d.as_str())) {
                monitor.name = format!("{} (entities {part}/{parts})", m.name);
            }
            monitor
        })
        .collect();
    shard
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
