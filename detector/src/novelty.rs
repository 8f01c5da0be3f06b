//! New values: a `new_values` detector (`feature: {field: awsRegion, aggregation: new_values}`)
//! remembers the values its field has had and counts, per interval, the records with a value it
//! had not seen before: "calls from a region not seen before". Pure: no IO, no clock.
//!
//! What it knows is learned from the events index's history at a cold start (the distinct
//! values of the history range, [`Novelty::learn`]) or, without history, over its first
//! `baseline` intervals, during which nothing is flagged. Afterwards every new value is flagged
//! and named in the interval's result and alert. Memory is bounded: at most [`MAX_KNOWN`] values,
//! the least recently seen forgotten first (a forgotten value that comes back counts as new).

use std::collections::{BTreeMap, HashMap};

use pipeline::wire::{EntitiesSummary, FlaggedEntity, MAX_FLAGGED_ENTITIES};
use serde::{Deserialize, Serialize};

/// The most values a detector remembers.
pub const MAX_KNOWN: usize = 10_000;

/// A `new_values` detector's memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Novelty {
    /// Each known value and the last event time it was seen (epoch ms).
    known: HashMap<String, i64>,
    /// The open intervals' new values by interval start, in order of arrival (at most
    /// [`MAX_FLAGGED_ENTITIES`] named per interval; the count is the window's).
    fresh: BTreeMap<i64, Vec<String>>,
    /// Whether the history taught it (then it flags from the start).
    learned: bool,
}

impl Novelty {
    /// Nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns `values` (a history's distinct values, seen at `time`); with any value, the
    /// detector counts as having learned.
    pub fn learn(&mut self, values: impl IntoIterator<Item = String>, time: i64) {
        for value in values {
            self.known.insert(value, time);
        }
        self.learned |= !self.known.is_empty();
        self.bound();
    }

    /// Whether the history taught it.
    pub fn learned(&self) -> bool {
        self.learned
    }

    /// Values remembered.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// Sees `value` at event time `time` in the interval starting at `start`: `true` when it is
    /// new (and remembers it).
    pub fn see(&mut self, start: i64, time: i64, value: &str) -> bool {
        if let Some(last) = self.known.get_mut(value) {
            *last = (*last).max(time);
            return false;
        }
        self.known.insert(value.to_owned(), time);
        let named = self.fresh.entry(start).or_default();
        if named.len() < MAX_FLAGGED_ENTITIES {
            named.push(value.to_owned());
        }
        self.bound();
        true
    }

    /// The closed interval starting at `start`: its new values, as a summary (the records
    /// with a new value are the window's count).
    pub fn close(&mut self, start: i64) -> EntitiesSummary {
        let named = self.fresh.remove(&start).unwrap_or_default();
        self.fresh = self.fresh.split_off(&start);
        EntitiesSummary {
            judged: 0,
            flagged: named.len() as u64,
            top: named
                .into_iter()
                .map(|value| FlaggedEntity {
                    value,
                    grade: 1.0,
                    data: 1.0,
                    expected: 0.0,
                })
                .collect(),
            part: None,
        }
    }

    /// Forgets the least recently seen beyond [`MAX_KNOWN`].
    fn bound(&mut self) {
        let excess = self.known.len().saturating_sub(MAX_KNOWN);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(i64, String)> = self
            .known
            .iter()
            .map(|(value, last)| (*last, value.clone()))
            .collect();
        by_age.select_nth_unstable(excess - 1);
        for (_, value) in by_age.into_iter().take(excess) {
            self.known.remove(&value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_new_once_and_named_in_its_interval() {
        let mut novelty = Novelty::new();
        novelty.learn(["us-east-1".to_owned(), "eu-west-1".to_owned()], 0);
        assert!(novelty.learned());
        let seen: Vec<bool> = [
            (60_000, "us-east-1"),
            (60_500, "ap-east-1"),
            (61_000, "ap-east-1"),
            (120_000, "me-south-1"),
        ]
        .into_iter()
        .map(|(time, value)| novelty.see(time / 60_000 * 60_000, time, value))
        .collect();
        assert_eq!(seen, [false, true, false, true]);
        let minute = novelty.close(60_000);
        assert_eq!(minute.flagged, 1);
        assert_eq!(minute.top[0].value, "ap-east-1");
        assert_eq!(novelty.close(120_000).top[0].value, "me-south-1");
        assert_eq!(novelty.close(180_000).flagged, 0);
        assert_eq!(novelty.known(), 4);
    }

    #[test]
    fn memory_is_bounded_and_the_least_recently_seen_is_forgotten() {
        let mut novelty = Novelty::new();
        for i in 0..(MAX_KNOWN as i64 + 10) {
            novelty.see(0, i, &format!("v{i}"));
        }
        assert_eq!(novelty.known(), MAX_KNOWN);
        // The first ten were forgotten: they are new again.
        assert!(novelty.see(0, 1_000_000, "v0"));
        assert!(!novelty.see(0, 1_000_000, "v20"));
        assert!(!novelty.learned(), "seeing is not learning from history");
    }
}
