//! What the page shows, kept in memory (pure: no IO, no clock): each detector's last intervals
//! and flagged intervals, its current or last episode, the recent alert deliveries and the
//! lease. Everything is bounded: [`INTERVALS`] intervals and [`FLAGGED`] flagged ones per
//! detector, [`ALERTS`] deliveries; the page polls a snapshot of it ([`Recent`] serializes as the
//! `/api/status` JSON, with what the service adds).
//!
//! Fed by the scoring loop once per round of closed intervals and once per delivery outcome, so
//! its cost is per interval, never per record.

use std::collections::VecDeque;

use serde::Serialize;

use crate::alert::{Kind, Outcome};
use crate::spec::Spec;
use crate::store::ResultDoc;

/// Scored intervals kept per detector (two hours of 1-minute intervals).
pub const INTERVALS: usize = 120;

/// Flagged intervals kept per detector, however old.
pub const FLAGGED: usize = 20;

/// Alert deliveries kept (the latest outcome of each notification on each channel).
pub const ALERTS: usize = 50;

/// One scored interval, serialized as an array in the order of [`COLUMNS`] (compact: the page
/// polls every detector's history).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point(
    /// Start, epoch ms.
    pub i64,
    /// The feature's value.
    pub f64,
    /// What was expected (the baseline).
    pub f64,
    /// Anomaly grade, 0 when normal.
    pub f64,
    /// Confidence.
    pub f64,
    /// Events counted in it.
    pub u64,
);

/// The names of a [`Point`]'s elements.
pub const COLUMNS: [&str; 6] = [
    "start",
    "value",
    "expected",
    "grade",
    "confidence",
    "events",
];

impl Point {
    fn of(result: &ResultDoc) -> Self {
        Self(
            result.data_start_time,
            result.value,
            result.expected_value,
            result.anomaly_grade,
            result.confidence,
            result.events,
        )
    }

    fn start(&self) -> i64 {
        self.0
    }

    fn grade(&self) -> f64 {
        self.3
    }
}

/// A run of consecutive flagged intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Episode {
    /// Its first interval's start, epoch ms.
    pub start: i64,
    /// Its last flagged interval's end, epoch ms.
    pub end: i64,
    /// Flagged intervals in it.
    pub intervals: u64,
    /// The highest grade in it.
    pub peak_grade: f64,
    /// Whether it goes on (the last interval scored was flagged).
    pub open: bool,
}

/// One detector's recent work.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorHistory {
    /// Its name, from the spec.
    pub name: String,
    /// Its feature, e.g. `sum_UNK_country`.
    pub feature: String,
    /// Interval length, ms.
    pub interval_ms: i64,
    /// Intervals scored since start (or since this replica took the lease).
    pub scored: u64,
    /// Of those, flagged.
    pub flagged_total: u64,
    /// The last [`INTERVALS`] scored, oldest first.
    pub intervals: VecDeque<Point>,
    /// The last [`FLAGGED`] flagged, oldest first.
    pub flagged: VecDeque<Point>,
    /// The open episode, or the last one.
    pub episode: Option<Episode>,
}

impl DetectorHistory {
    fn record(&mut self, point: Point, end: i64, part: bool) {
        // A part of split entities: the interval is shown by its highest-graded part's summary
        // (a replica scoring several parts gets one per part).
        if part
            && self
                .intervals
                .back()
                .is_some_and(|p| p.start() == point.start() && p.grade() >= point.grade())
        {
            return;
        }
        // Scored again (a new session restored an earlier checkpoint): the new scores replace.
        while self
            .intervals
            .back()
            .is_some_and(|p| p.start() >= point.start())
        {
            self.intervals.pop_back();
        }
        while self
            .flagged
            .back()
            .is_some_and(|p| p.start() >= point.start())
        {
            self.flagged.pop_back();
        }
        push_bounded(&mut self.intervals, point, INTERVALS);
        self.scored += 1;
        let flagged = point.grade() > 0.0;
        if flagged {
            self.flagged_total += 1;
            push_bounded(&mut self.flagged, point, FLAGGED);
        }
        self.episode = match (self.episode, flagged) {
            (Some(e), true) if e.open => Some(Episode {
                end,
                intervals: e.intervals + 1,
                peak_grade: e.peak_grade.max(point.grade()),
                ..e
            }),
            (_, true) => Some(Episode {
                start: point.start(),
                end,
                intervals: 1,
                peak_grade: point.grade(),
                open: true,
            }),
            (Some(e), false) => Some(Episode { open: false, ..e }),
            (None, false) => None,
        };
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, capacity: usize) {
    if queue.len() >= capacity {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The outcome of a notification's last delivery attempt on a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// When the outcome arrived, epoch ms.
    pub at: i64,
    /// The channel.
    pub channel: String,
    /// The monitor that notified.
    pub monitor: String,
    /// The detector whose result caused it.
    pub detector: String,
    /// `alert`, `renotify` or `recovery`.
    pub kind: Kind,
    /// The idempotency key (the same on every channel and attempt).
    pub key: String,
    /// `delivered` or `failed` (failed attempts are retried).
    pub outcome: &'static str,
    /// Failed attempts so far.
    pub failed_attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Whether this replica scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Lease {
    /// Preparing its indices, before asking for the lease.
    Starting,
    /// Waiting for the lease; `holder` is who has it, when known.
    Standby {
        /// The replica holding the lease.
        holder: Option<String>,
    },
    /// Holding the lease (of one shard or more): this replica scores and alerts.
    Active {
        /// The lease's generation (raised by each take-over; the highest of its shards').
        generation: i64,
        /// The shards it holds, when the spec is split into several.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        shards: Vec<usize>,
    },
}

/// What the page shows, fed by the service.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// Every detector of the spec, in its order (idle ones too).
    pub detectors: Vec<DetectorHistory>,
    /// The latest outcome per notification and channel, oldest first.
    pub alerts: VecDeque<Delivery>,
    /// The lease as this replica sees it.
    pub lease: Lease,
}

impl Recent {
    /// Nothing scored yet for `spec`'s detectors.
    pub fn new(spec: &Spec) -> Self {
        Self {
            detectors: spec
                .detectors
                .iter()
                .map(|d| DetectorHistory {
                    name: d.name.clone(),
                    feature: d.feature_name(),
                    interval_ms: i64::try_from(d.interval.as_millis()).unwrap_or(i64::MAX),
                    scored: 0,
                    flagged_total: 0,
                    intervals: VecDeque::new(),
                    flagged: VecDeque::new(),
                    episode: None,
                })
                .collect(),
            alerts: VecDeque::new(),
            lease: Lease::Starting,
        }
    }

    /// Adds scored intervals (results of detectors not in the spec are ignored, and so are a
    /// category detector's entity results: its interval summary stands for them).
    pub fn scored(&mut self, results: &[ResultDoc]) {
        for result in results.iter().filter(|r| r.entity.is_none()) {
            if let Some(d) = self
                .detectors
                .iter_mut()
                .find(|d| d.name == result.detector_id)
            {
                let part = (result.entities.as_ref()).is_some_and(|e| e.part.is_some());
                d.record(Point::of(result), result.data_end_time, part);
            }
        }
    }

    /// Records a delivery attempt's outcome at `now`, replacing the notification's earlier one
    /// on that channel.
    pub fn delivered(&mut self, outcome: &Outcome, now: i64) {
        if let Some(i) = self
            .alerts
            .iter()
            .position(|a| a.key == outcome.key && a.channel == outcome.channel)
        {
            self.alerts.remove(i);
        }
        let failed = outcome.failed_attempts;
        push_bounded(
            &mut self.alerts,
            Delivery {
                at: now,
                channel: outcome.channel.clone(),
                monitor: outcome.monitor.clone(),
                detector: outcome.detector.clone(),
                kind: outcome.kind,
                key: outcome.key.clone(),
                outcome: if failed.is_some() {
                    "failed"
                } else {
                    "delivered"
                },
                failed_attempts: failed.unwrap_or(0),
                error: outcome.error.clone(),
            },
            ALERTS,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Kind;

    fn result(detector: &str, start: i64, value: f64, grade: f64) -> ResultDoc {
        ResultDoc {
            detector_id: detector.to_owned(),
            detector_name: detector.to_owned(),
            feature_data: Vec::new(),
            data_start_time: start,
            data_end_time: start + 60_000,
            execution_start_time: start,
            execution_end_time: start,
            anomaly_score: 0.0,
            anomaly_grade: grade,
            confidence: 1.0,
            expected_value: 0.0,
            value,
            events: 0,
            rule: None,
            task_id: None,
            error: None,
            entity: None,
            entities: None,
            relevant_attribution: None,
        }
    }

    fn recent() -> Recent {
        Recent::new(&crate::page::tests::seed_spec())
    }

    #[test]
    fn every_detector_of_the_spec_is_listed_before_any_result() {
        let recent = recent();
        let names: Vec<&str> = recent.detectors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "action-anomaly-detector",
                "source-anomaly-detector",
                "httpstatus-anomaly-detector",
                "country-anomaly-detector",
                "method-anomaly-detector"
            ]
        );
        assert!(recent.detectors.iter().all(|d| d.intervals.is_empty()));
        assert_eq!(recent.lease, Lease::Starting);
    }

    #[test]
    fn episodes_follow_the_flagged_runs() {
        let country = "country-anomaly-detector";
        // (start, grade) → the episode after it: (start, end, intervals, peak, open).
        type Seen = (i64, i64, u64, f64, bool);
        let cases: [(i64, f64, Option<Seen>); 7] = [
            (0, 0.0, None),
            (60_000, 0.4, Some((60_000, 120_000, 1, 0.4, true))),
            (120_000, 0.9, Some((60_000, 180_000, 2, 0.9, true))),
            (180_000, 0.5, Some((60_000, 240_000, 3, 0.9, true))),
            (240_000, 0.0, Some((60_000, 240_000, 3, 0.9, false))),
            (300_000, 0.0, Some((60_000, 240_000, 3, 0.9, false))),
            (360_000, 0.3, Some((360_000, 420_000, 1, 0.3, true))),
        ];
        let mut recent = recent();
        for (start, grade, expected) in cases {
            recent.scored(&[result(country, start, 1.0, grade)]);
            let d = &recent.detectors[3];
            let episode = d
                .episode
                .map(|e| (e.start, e.end, e.intervals, e.peak_grade, e.open));
            assert_eq!(episode, expected, "after the interval at {start}");
        }
        let d = &recent.detectors[3];
        assert_eq!((d.scored, d.flagged_total), (7, 4));
        let flagged: Vec<i64> = d.flagged.iter().map(Point::start).collect();
        assert_eq!(flagged, [60_000, 120_000, 180_000, 360_000]);
        assert!(
            recent.detectors[0].intervals.is_empty(),
            "other detectors untouched"
        );
    }

    #[test]
    fn history_is_bounded_and_a_rescored_interval_replaces_the_later_ones() {
        let action = "action-anomaly-detector";
        let mut recent = recent();
        let results: Vec<ResultDoc> = (0..(INTERVALS + FLAGGED) as i64 * 2)
            .map(|i| {
                result(
                    action,
                    i * 1_000,
                    i as f64,
                    if i % 2 == 0 { 0.5 } else { 0.0 },
                )
            })
            .collect();
        recent.scored(&results);
        let d = &recent.detectors[0];
        assert_eq!(d.intervals.len(), INTERVALS);
        assert_eq!(d.flagged.len(), FLAGGED);
        let last = (INTERVALS + FLAGGED) as i64 * 2 - 1;
        assert_eq!(d.intervals.back().map(Point::start), Some(last * 1_000));
        assert_eq!(
            d.intervals.front().map(Point::start),
            Some((last + 1 - INTERVALS as i64) * 1_000)
        );

        // A new session restored an earlier checkpoint and scores from there again.
        recent.scored(&[result(action, (last - 3) * 1_000, 7.0, 0.0)]);
        let d = &recent.detectors[0];
        assert_eq!(
            d.intervals.back(),
            Some(&Point((last - 3) * 1_000, 7.0, 0.0, 0.0, 1.0, 0))
        );
        assert!(d.intervals.iter().all(|p| p.start() <= (last - 3) * 1_000));
        assert!(d.flagged.iter().all(|p| p.start() < (last - 3) * 1_000));
    }

    #[test]
    fn a_delivery_replaces_the_earlier_outcome_of_its_key_on_its_channel() {
        let outcome = |key: &str, channel: &str, failed: Option<u32>| Outcome {
            key: key.to_owned(),
            channel: channel.to_owned(),
            failed_attempts: failed,
            monitor: "UNK_country-Monitor".to_owned(),
            detector: "country-anomaly-detector".to_owned(),
            kind: Kind::Alert,
            error: failed.map(|n| format!("HTTP 503 ({n})")),
            episode_start: 0,
            interval: (0, 60_000),
            at: 0,
        };
        let mut recent = recent();
        recent.delivered(&outcome("k1", "hook", Some(1)), 1);
        recent.delivered(&outcome("k1", "mail", None), 2);
        recent.delivered(&outcome("k1", "hook", Some(2)), 3);
        recent.delivered(&outcome("k1", "hook", None), 4);
        let rows: Vec<(&str, &str, &str, u32, i64)> = recent
            .alerts
            .iter()
            .map(|a| {
                (
                    a.key.as_str(),
                    a.channel.as_str(),
                    a.outcome,
                    a.failed_attempts,
                    a.at,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("k1", "mail", "delivered", 0, 2),
                ("k1", "hook", "delivered", 0, 4)
            ]
        );
        for i in 0..ALERTS + 5 {
            recent.delivered(&outcome(&format!("n{i}"), "hook", None), 10 + i as i64);
        }
        assert_eq!(recent.alerts.len(), ALERTS);
        assert_eq!(
            recent.alerts.back().map(|a| a.key.as_str()),
            Some(format!("n{}", ALERTS + 4).as_str())
        );
    }
}
