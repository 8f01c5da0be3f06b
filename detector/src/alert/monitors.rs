//! Monitors turn results into notifications, and record each one in the outbox in the same step
//! (pure: no IO, no clock).
//!
//! Episodes: a monitor's episode opens on the first result of one of its detectors that meets
//! the condition (grade ≥ `min_grade`, confidence ≥ `min_confidence`, not historical): that sends
//! one alert. While results keep meeting it, the episode stays open and re-notifies every
//! `renotify` of data time. The first result that does not meet it closes the episode with a
//! recovery message. So an alert is sent once per episode, however many intervals it lasts.
//!
//! The open episodes and the outbox are one state ([`Monitors::state`]), saved in the stream's
//! checkpoint: the checkpoint that records an episode as open also records its alert as pending,
//! so no checkpoint can say "notified" about an alert that was never sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::outbox::{Entry, Outbox, Recorded};
use crate::spec::{MonitorSpec, Spec};
use crate::store::ResultDoc;

/// What a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An episode began.
    Alert,
    /// An episode goes on (after `renotify`).
    Renotify,
    /// An episode ended.
    Recovery,
}

impl Kind {
    /// Its name on the wire: `alert`, `renotify` or `recovery`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Renotify => "renotify",
            Self::Recovery => "recovery",
        }
    }
}

/// One notification, for every channel of its monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Its idempotency key: the same for every channel and every attempt, across restarts
    /// ([`idempotency_key`]). Receivers deduplicate by it.
    pub key: String,
    /// Alert, re-notification or recovery.
    pub kind: Kind,
    /// The monitor's name.
    pub monitor: String,
    /// The detector's name.
    pub detector: String,
    /// The feature, e.g. `sum_UNK_country`.
    pub field: String,
    /// 1 (highest) to 5.
    pub severity: u8,
    /// The result's grade.
    pub grade: f64,
    /// The result's confidence.
    pub confidence: f64,
    /// The value and what was expected.
    pub value: f64,
    /// The baseline.
    pub expected: f64,
    /// The interval, epoch ms.
    pub interval_start: i64,
    /// The interval's end, epoch ms.
    pub interval_end: i64,
    /// When the episode began (its first interval's start), epoch ms.
    pub episode_start: i64,
    /// The sentence for people, like the seed's.
    pub message: String,
    /// For a category detector: the flagged entities of the interval, highest grade first (at
    /// most [`pipeline::wire::MAX_FLAGGED_ENTITIES`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// The channels to send it to (the outbox keeps one entry per channel instead).
    #[serde(skip)]
    pub channels: Vec<String>,
}

/// The idempotency key of a notification: 32 hex digits of the SHA-256 of what identifies it
/// (monitor, detector, the episode's first interval, the kind, and for a re-notification its
/// interval). Everything in it comes from event time, so scoring the same records again (after
/// a restart from an earlier checkpoint) yields the same key; hex digits are legal in any HTTP
/// header and in an e-mail `Message-ID`, which names are not.
pub fn idempotency_key(
    monitor: &str,
    detector: &str,
    episode_start: i64,
    kind: Kind,
    interval_start: i64,
) -> String {
    let identity = match kind {
        Kind::Alert => format!("{monitor}\u{1f}{detector}\u{1f}{episode_start}\u{1f}alert"),
        Kind::Recovery => format!("{monitor}\u{1f}{detector}\u{1f}{episode_start}\u{1f}recovery"),
        Kind::Renotify => format!(
            "{monitor}\u{1f}{detector}\u{1f}{episode_start}\u{1f}renotify\u{1f}{interval_start}"
        ),
    };
    let digest = Sha256::digest(identity.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// An open episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Episode {
    start: i64,
    notified_at: i64,
}

/// What [`Monitors::state`] saves: open episodes and the outbox, together.
#[derive(Serialize, Deserialize)]
struct State {
    episodes: BTreeMap<String, Episode>,
    outbox: Outbox,
}

/// Every monitor's episodes and the outbox of their notifications (checkpointed through
/// [`Monitors::state`]).
#[derive(Debug, Clone, Default)]
pub struct Monitors {
    monitors: Vec<MonitorSpec>,
    /// Open episodes by (monitor, detector).
    open: BTreeMap<String, Episode>,
    /// Notifications not yet delivered, and marks of the last ones delivered.
    outbox: Outbox,
}

impl Monitors {
    /// The spec's monitors, no episode open, nothing pending.
    pub fn new(spec: &Spec) -> Self {
        Self {
            monitors: spec.monitors.clone(),
            open: BTreeMap::new(),
            outbox: Outbox::default(),
        }
    }

    /// The episodes and the outbox (to checkpoint).
    pub fn state(&self) -> Value {
        serde_json::to_value(State {
            episodes: self.open.clone(),
            outbox: self.outbox.clone(),
        })
        .unwrap_or_default()
    }

    /// Restores what [`Monitors::state`] saved. A state saved before the outbox existed (the
    /// episodes alone) restores its episodes with an empty outbox.
    pub fn restore(&mut self, state: &Value) -> Result<(), serde_json::Error> {
        match serde_json::from_value::<State>(state.clone()) {
            Ok(saved) => {
                self.open = saved.episodes;
                self.outbox = saved.outbox.with_capacity(self.outbox.capacity());
                Ok(())
            }
            Err(err) => match serde_json::from_value(state.clone()) {
                Ok(open) => {
                    self.open = open;
                    Ok(())
                }
                Err(_) => Err(err),
            },
        }
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The outbox, to settle deliveries and drop entries of channels that no longer exist.
    pub fn outbox_mut(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Evaluates `result` (historical results never notify) and records every notification it
    /// causes in the outbox, one entry per channel; returns what was recorded and what the
    /// bounded outbox had to drop for it.
    pub fn evaluate(&mut self, result: &ResultDoc) -> Recorded {
        let mut recorded = Recorded::default();
        for notification in self.notifications(result) {
            for channel in &notification.channels {
                recorded.merge(
                    self.outbox
                        .record(Entry::new(channel, notification.clone())),
                );
            }
        }
        recorded
    }

    /// The notifications `result` causes, updating the episodes.
    fn notifications(&mut self, result: &ResultDoc) -> Vec<Notification> {
        // A historical analysis never alerts; an entity's own result is summed up in its
        // interval's summary, which the monitor judges, so many entities make one alert.
        if result.task_id.is_some() || result.entity.is_some() {
            return Vec::new();
        }
        let mut notifications = Vec::new();
        for monitor in &self.monitors {
            if !monitor.detectors.contains(&result.detector_name) {
                continue;
            }
            let key = format!("{}\u{1f}{}", monitor.name, result.detector_name);
            let meets = result.anomaly_grade >= monitor.min_grade
                && result.confidence >= monitor.builtin_min_confidence();
            let renotify = i64::try_from(monitor.renotify.as_millis()).unwrap_or(i64::MAX);
            let kind = match (self.open.get_mut(&key), meets) {
                (None, true) => {
                    self.open.insert(
                        key.clone(),
                        Episode {
                            start: result.data_start_time,
                            notified_at: result.data_end_time,
                        },
                    );
                    Some(Kind::Alert)
                }
                (Some(episode), true) => {
                    if renotify > 0 && result.data_end_time - episode.notified_at >= renotify {
                        episode.notified_at = result.data_end_time;
                        Some(Kind::Renotify)
                    } else {
                        None
                    }
                }
                (Some(_), false) => Some(Kind::Recovery),
                (None, false) => None,
            };
            let Some(kind) = kind else { continue };
            let episode_start = match kind {
                Kind::Recovery => self
                    .open
                    .remove(&key)
                    .map_or(result.data_start_time, |e| e.start),
                _ => self
                    .open
                    .get(&key)
                    .map_or(result.data_start_time, |e| e.start),
            };
            notifications.push(notification(monitor, result, kind, episode_start));
        }
        notifications
    }
}

fn notification(
    monitor: &MonitorSpec,
    result: &ResultDoc,
    kind: Kind,
    episode_start: i64,
) -> Notification {
    let message = match kind {
        Kind::Alert => format!(
            "Monitor {} just entered alert status. Please investigate the issue.",
            monitor.name
        ),
        Kind::Renotify => format!(
            "Monitor {} is still in alert status. Please investigate the issue.",
            monitor.name
        ),
        Kind::Recovery => format!(
            "Monitor {} has recovered: {} is back to normal.",
            monitor.name, result.detector_name
        ),
    };
    // With several features, the one that drove the grade (the largest attribution).
    let driver = result
        .relevant_attribution
        .iter()
        .flatten()
        .max_by(|a, b| a.data.total_cmp(&b.data))
        .and_then(|top| {
            result
                .feature_data
                .iter()
                .find(|f| f.feature_id == top.feature_id)
        })
        .or(result.feature_data.first());
    Notification {
        key: idempotency_key(
            &monitor.name,
            &result.detector_name,
            episode_start,
            kind,
            result.data_start_time,
        ),
        kind,
        monitor: monitor.name.clone(),
        detector: result.detector_name.clone(),
        field: driver.map(|f| f.feature_name.clone()).unwrap_or_default(),
        severity: monitor.severity,
        grade: result.anomaly_grade,
        confidence: result.confidence,
        value: result.value,
        expected: result.expected_value,
        interval_start: result.data_start_time,
        interval_end: result.data_end_time,
        episode_start,
        message,
        entities: result
            .entities
            .iter()
            .flat_map(|summary| summary.top.iter().map(|e| e.value.clone()))
            .collect(),
        channels: monitor.channels.clone(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::FeatureData;

    pub(in crate::alert) fn result(
        detector: &str,
        start: i64,
        grade: f64,
        confidence: f64,
    ) -> ResultDoc {
        ResultDoc {
            detector_id: detector.into(),
            detector_name: detector.into(),
            feature_data: vec![FeatureData {
                feature_id: "sum_UNK_source".into(),
                feature_name: "sum_UNK_source".into(),
                data: 30.0,
            }],
            data_start_time: start,
            data_end_time: start + 60_000,
            execution_start_time: 0,
            execution_end_time: 0,
            anomaly_score: 2.0,
            anomaly_grade: grade,
            confidence,
            expected_value: 0.3,
            value: 30.0,
            events: 100,
            rule: None,
            task_id: None,
            error: None,
            entity: None,
            entities: None,
            relevant_attribution: None,
        }
    }

    fn kinds(recorded: &Recorded) -> Vec<Kind> {
        recorded
            .entries
            .iter()
            .map(|e| e.notification.kind)
            .collect()
    }

    #[test]
    fn one_alert_per_episode_then_a_recovery() -> Result<(), Box<dyn std::error::Error>> {
        let spec = Spec::default_spec()?;
        let mut monitors = Monitors::new(&spec);
        let d = "source-anomaly-detector";
        assert!(
            monitors
                .evaluate(&result(d, 0, 0.0, 1.0))
                .entries
                .is_empty()
        );
        let first = monitors.evaluate(&result(d, 60_000, 0.8, 1.0));
        assert_eq!(kinds(&first), [Kind::Alert]);
        let alert = &first.entries[0];
        assert_eq!(
            alert.notification.message,
            "Monitor UNK_source-Monitor just entered alert status. Please investigate the issue."
        );
        assert_eq!(alert.channel, "security-team");
        for minute in 2..11 {
            assert!(
                monitors
                    .evaluate(&result(d, minute * 60_000, 0.6, 1.0))
                    .entries
                    .is_empty(),
                "minute {minute}: no second alert in one episode"
            );
        }
        // 10 minutes of data time after the alerted interval ended: a re-notification.
        let renotify = monitors.evaluate(&result(d, 11 * 60_000, 0.6, 1.0));
        assert_eq!(kinds(&renotify), [Kind::Renotify]);
        let recovery = monitors.evaluate(&result(d, 12 * 60_000, 0.0, 1.0));
        assert_eq!(kinds(&recovery), [Kind::Recovery]);
        assert_eq!(recovery.entries[0].notification.episode_start, 60_000);
        let keys =
            [alert, &renotify.entries[0], &recovery.entries[0]].map(|e| e.notification.key.clone());
        assert!(
            keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2],
            "each notification has its own key: {keys:?}"
        );
        let again = monitors.evaluate(&result(d, 13 * 60_000, 0.9, 1.0));
        assert_eq!(kinds(&again), [Kind::Alert], "a new episode alerts again");
        assert_ne!(again.entries[0].notification.key, keys[0]);
        assert_eq!(
            monitors.outbox().pending().count(),
            4,
            "nothing delivered yet: every notification is pending"
        );
        Ok(())
    }

    #[test]
    fn low_confidence_historical_and_other_detectors_do_not_alert()
    -> Result<(), Box<dyn std::error::Error>> {
        let spec = Spec::default_spec()?;
        let mut monitors = Monitors::new(&spec);
        assert!(
            monitors
                .evaluate(&result("source-anomaly-detector", 0, 0.9, 0.3))
                .entries
                .is_empty()
        );
        let mut historical = result("source-anomaly-detector", 0, 0.9, 1.0);
        historical.task_id = Some("historical-1".into());
        assert!(monitors.evaluate(&historical).entries.is_empty());
        let other = monitors.evaluate(&result("country-anomaly-detector", 0, 0.9, 1.0));
        assert_eq!(other.entries.len(), 1);
        assert_eq!(other.entries[0].notification.monitor, "UNK_country-Monitor");
        Ok(())
    }

    #[test]
    fn the_key_is_the_same_when_the_same_results_are_scored_again_after_a_restore()
    -> Result<(), Box<dyn std::error::Error>> {
        let spec = Spec::default_spec()?;
        let d = "source-anomaly-detector";
        let mut first = Monitors::new(&spec);
        let before = first.state();
        let alert = first
            .evaluate(&result(d, 60_000, 0.8, 1.0))
            .entries
            .remove(0);
        assert_eq!(
            alert.notification.key,
            idempotency_key("UNK_source-Monitor", d, 60_000, Kind::Alert, 60_000)
        );
        assert_eq!(alert.notification.key.len(), 32);

        // Restored from the checkpoint taken after the episode opened: the alert is pending,
        // with its key, and the open episode does not alert again.
        let mut restored = Monitors::new(&spec);
        restored.restore(&first.state())?;
        let pending: Vec<&Entry> = restored.outbox().pending().collect();
        assert_eq!(pending, [&alert]);
        assert!(
            restored
                .evaluate(&result(d, 120_000, 0.8, 1.0))
                .entries
                .is_empty()
        );

        // Restored from a checkpoint taken before it opened (a crash in between): scoring the
        // same interval again opens the same episode with the same key.
        let mut replayed = Monitors::new(&spec);
        replayed.restore(&before)?;
        let again = replayed
            .evaluate(&result(d, 60_000, 0.8, 1.0))
            .entries
            .remove(0);
        assert_eq!(again, alert);
        Ok(())
    }

    #[test]
    fn a_state_saved_before_the_outbox_existed_restores_its_episodes()
    -> Result<(), Box<dyn std::error::Error>> {
        let spec = Spec::default_spec()?;
        let d = "source-anomaly-detector";
        let old = serde_json::json!({
            format!("UNK_source-Monitor\u{1f}{d}"): {"start": 60_000, "notified_at": 120_000}
        });
        let mut monitors = Monitors::new(&spec);
        monitors.restore(&old)?;
        assert!(
            monitors
                .evaluate(&result(d, 120_000, 0.8, 1.0))
                .entries
                .is_empty()
        );
        let recovery = monitors.evaluate(&result(d, 180_000, 0.0, 1.0));
        assert_eq!(recovery.entries[0].notification.episode_start, 60_000);
        assert!(monitors.restore(&serde_json::json!([1, 2])).is_err());
        Ok(())
    }
}
