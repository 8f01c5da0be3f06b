//! The outbox: every notification not yet delivered, one entry per channel, and marks of the last
//! ones delivered (pure: no IO, no clock).
//!
//! It is part of the monitors' state, so it is saved in the stream's checkpoint with the episodes
//! that caused its entries: a restart re-sends whatever the last checkpoint holds as pending.
//! Entries are keyed by (idempotency key, channel); recording a key that is already pending or
//! was delivered recently changes nothing, so scoring the same records again after a restart
//! does not queue a second copy.
//!
//! Bounded: at most [`CAPACITY`] pending entries per channel (a receiver down for days while
//! anomalies keep coming). A new entry beyond that evicts the channel's oldest pending
//! re-notification (the episode's alert or a later re-notification says as much), or, if there
//! is none, its oldest pending entry; the caller counts and logs what was evicted. Delivered marks
//! are kept for the last [`DELIVERED_MARKS`] per channel; forgetting an older one loses nothing
//! (its episode's state already says it was notified).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::monitors::{Kind, Notification};

/// Pending entries per channel at most.
pub const CAPACITY: usize = 1_000;

/// Delivered marks kept per channel.
pub const DELIVERED_MARKS: usize = 100;

/// One notification for one channel, waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The channel's name.
    pub channel: String,
    /// What to send (the payload is built from it at each attempt).
    pub notification: Notification,
    /// Failed attempts so far, over every run (for logs; the retry delay restarts with each run,
    /// so a restarted detector tries at once).
    #[serde(default)]
    pub attempts: u32,
}

impl Entry {
    /// `notification` for `channel`, not yet tried.
    pub fn new(channel: &str, mut notification: Notification) -> Self {
        notification.channels = Vec::new();
        Self {
            channel: channel.to_owned(),
            notification,
            attempts: 0,
        }
    }

    /// The idempotency key.
    pub fn key(&self) -> &str {
        &self.notification.key
    }

    fn is(&self, key: &str, channel: &str) -> bool {
        self.notification.key == key && self.channel == channel
    }
}

/// A delivered notification: only its identity is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Delivered {
    key: String,
    channel: String,
}

/// What recording entries did.
#[derive(Debug, Default, PartialEq)]
pub struct Recorded {
    /// The new pending entries, to hand to their channels' workers.
    pub entries: Vec<Entry>,
    /// Pending entries evicted to stay within [`CAPACITY`]: never delivered.
    pub dropped: Vec<Entry>,
}

impl Recorded {
    /// Adds `other` to this.
    pub fn merge(&mut self, other: Self) {
        self.entries.extend(other.entries);
        self.dropped.extend(other.dropped);
    }
}

/// Pending entries, in the order they were recorded, and delivered marks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outbox {
    #[serde(default)]
    pending: Vec<Entry>,
    #[serde(default)]
    delivered: VecDeque<Delivered>,
    #[serde(skip, default = "capacity")]
    capacity: usize,
}

fn capacity() -> usize {
    CAPACITY
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            delivered: VecDeque::new(),
            capacity: CAPACITY,
        }
    }
}

impl Outbox {
    /// This outbox, holding at most `capacity` pending entries per channel from now on.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Pending entries per channel at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records `entry` as pending unless its key is already pending or delivered on its channel.
    pub fn record(&mut self, entry: Entry) -> Recorded {
        let (key, channel) = (entry.key(), entry.channel.as_str());
        if self.pending.iter().any(|e| e.is(key, channel))
            || self
                .delivered
                .iter()
                .any(|d| d.key == key && d.channel == channel)
        {
            return Recorded::default();
        }
        let mut dropped = Vec::new();
        let on_channel: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.pending[i].channel == channel)
            .collect();
        if on_channel.len() >= self.capacity {
            let victim = on_channel
                .iter()
                .copied()
                .find(|&i| self.pending[i].notification.kind == Kind::Renotify)
                .or_else(|| on_channel.first().copied());
            if let Some(i) = victim {
                dropped.push(self.pending.remove(i));
            }
        }
        self.pending.push(entry.clone());
        Recorded {
            entries: vec![entry],
            dropped,
        }
    }

    /// Marks `key` delivered on `channel`; `false` if it was not pending (already settled).
    pub fn delivered(&mut self, key: &str, channel: &str) -> bool {
        let Some(i) = self.pending.iter().position(|e| e.is(key, channel)) else {
            return false;
        };
        self.pending.remove(i);
        self.delivered.push_back(Delivered {
            key: key.to_owned(),
            channel: channel.to_owned(),
        });
        if self
            .delivered
            .iter()
            .filter(|d| d.channel == channel)
            .count()
            > DELIVERED_MARKS
            && let Some(oldest) = self.delivered.iter().position(|d| d.channel == channel)
        {
            self.delivered.remove(oldest);
        }
        true
    }

    /// Records a failed attempt of `key` on `channel` (the total is `attempts`).
    pub fn failed(&mut self, key: &str, channel: &str, attempts: u32) {
        if let Some(entry) = self.pending.iter_mut().find(|e| e.is(key, channel)) {
            entry.attempts = attempts;
        }
    }

    /// Removes and returns the pending entries of channels `known` does not accept (channels
    /// removed from the spec since the checkpoint: nothing can deliver them).
    pub fn drop_unknown(&mut self, known: impl Fn(&str) -> bool) -> Vec<Entry> {
        let (keep, unknown) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|e| known(&e.channel));
        self.pending = keep;
        unknown
    }

    /// Every pending entry, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Entry> {
        self.pending.iter()
    }

    /// How many entries are pending on `channel`.
    pub fn pending_on(&self, channel: &str) -> usize {
        self.pending.iter().filter(|e| e.channel == channel).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::monitors::{Monitors, tests::result};
    use crate::spec::Spec;

    /// The notifications of one episode of the default spec's source monitor: alert at minute 1,
    /// re-notifications every 10 minutes, a recovery.
    fn episode(start_minute: i64) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
        let mut monitors = Monitors::new(&Spec::default_spec()?);
        let d = "source-anomaly-detector";
        let mut entries = Vec::new();
        for minute in start_minute..start_minute + 22 {
            entries.extend(
                monitors
                    .evaluate(&result(d, minute * 60_000, 0.8, 1.0))
                    .entries,
            );
        }
        let end = (start_minute + 22) * 60_000;
        entries.extend(monitors.evaluate(&result(d, end, 0.0, 1.0)).entries);
        Ok(entries)
    }

    fn keys<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<(Kind, String)> {
        entries
            .into_iter()
            .map(|e| (e.notification.kind, e.key().to_owned()))
            .collect()
    }

    #[test]
    fn pending_until_delivered_then_a_mark_that_refuses_the_same_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let entries = episode(1)?;
        let kinds: Vec<Kind> = entries.iter().map(|e| e.notification.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Alert, Kind::Renotify, Kind::Renotify, Kind::Recovery]
        );
        let mut outbox = Outbox::default();
        for entry in &entries {
            assert_eq!(
                outbox.record(entry.clone()).entries,
                std::slice::from_ref(entry)
            );
        }
        let alert = &entries[0];
        assert_eq!(
            outbox.record(alert.clone()),
            Recorded::default(),
            "a pending key is not queued twice"
        );
        outbox.failed(alert.key(), "security-team", 3);
        assert_eq!(outbox.pending().next().map(|e| e.attempts), Some(3));
        assert!(outbox.delivered(alert.key(), "security-team"));
        assert!(
            !outbox.delivered(alert.key(), "security-team"),
            "settled once only"
        );
        assert!(!outbox.delivered(alert.key(), "another-channel"));
        assert_eq!(keys(outbox.pending()), keys(&entries[1..]));
        assert_eq!(
            outbox.record(alert.clone()),
            Recorded::default(),
            "a delivered key is not queued again (a replay after a restart)"
        );
        let mut elsewhere = alert.clone();
        elsewhere.channel = "pager".into();
        assert_eq!(
            outbox.record(elsewhere.clone()).entries,
            [elsewhere],
            "the key is per notification; the mark per channel"
        );
        Ok(())
    }

    #[test]
    fn the_state_survives_a_checkpoint_with_its_keys() -> Result<(), Box<dyn std::error::Error>> {
        let entries = episode(1)?;
        let mut outbox = Outbox::default();
        for entry in &entries {
            outbox.record(entry.clone());
        }
        outbox.delivered(entries[0].key(), "security-team");
        outbox.failed(entries[1].key(), "security-team", 7);
        let saved = serde_json::to_string(&outbox)?;
        let mut restored: Outbox = serde_json::from_str(&saved)?;
        assert_eq!(restored.capacity(), CAPACITY);
        assert_eq!(keys(restored.pending()), keys(outbox.pending()));
        assert_eq!(restored.pending().next().map(|e| e.attempts), Some(7));
        assert_eq!(
            restored.record(entries[0].clone()),
            Recorded::default(),
            "the delivered mark was saved too"
        );
        Ok(())
    }

    #[test]
    fn a_full_channel_drops_its_oldest_renotification_first_then_its_oldest_entry()
    -> Result<(), Box<dyn std::error::Error>> {
        let first = episode(1)?;
        let second = episode(100)?;
        let mut outbox = Outbox::default().with_capacity(3);
        for entry in &first[..3] {
            assert!(outbox.record(entry.clone()).dropped.is_empty());
        }
        let mut other = first[0].clone();
        other.channel = "pager".into();
        assert!(
            outbox.record(other).dropped.is_empty(),
            "the bound is per channel"
        );
        // Full: alert, renotify, renotify. The recovery evicts the oldest re-notification.
        let recorded = outbox.record(first[3].clone());
        assert_eq!(keys(&recorded.dropped), keys(&first[1..2]));
        // Alert, renotify, recovery: the next alert evicts the last re-notification.
        let recorded = outbox.record(second[0].clone());
        assert_eq!(keys(&recorded.dropped), keys(&first[2..3]));
        // Alert, recovery, alert: no re-notification left, so the oldest entry goes.
        let recorded = outbox.record(second[3].clone());
        assert_eq!(keys(&recorded.dropped), keys(&first[0..1]));
        assert_eq!(outbox.pending_on("security-team"), 3);
        assert_eq!(outbox.pending_on("pager"), 1);
        Ok(())
    }

    #[test]
    fn delivered_marks_are_bounded_per_channel_and_unknown_channels_are_dropped()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut outbox = Outbox::default();
        let mut monitors = Monitors::new(&Spec::default_spec()?);
        let d = "source-anomaly-detector";
        let mut first = None;
        for i in 0..=DELIVERED_MARKS as i64 {
            let entry = monitors
                .evaluate(&result(d, i * 120_000, 0.9, 1.0))
                .entries
                .remove(0);
            monitors.evaluate(&result(d, i * 120_000 + 60_000, 0.0, 1.0));
            outbox.record(entry.clone());
            outbox.delivered(entry.key(), &entry.channel);
            first.get_or_insert(entry);
        }
        let first = first.ok_or("no entry")?;
        assert_eq!(
            outbox.record(first.clone()).entries,
            std::slice::from_ref(&first),
            "the oldest mark was forgotten"
        );
        let mut gone = first.clone();
        gone.channel = "removed".into();
        outbox.record(gone.clone());
        assert_eq!(outbox.drop_unknown(|c| c != "removed"), [gone]);
        assert_eq!(keys(outbox.pending()), keys([&first]));
        Ok(())
    }
}
