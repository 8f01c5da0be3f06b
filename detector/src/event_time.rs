//! Event time across partitions: which records are admitted, and how far the watermark may move.
//!
//! The watermark decides when an interval closes, so one wrong timestamp must not move it: a
//! record stamped far in the future would close every interval up to its date (the detector then
//! scores millions of empty intervals, or waits blind for that date). Two rules keep it honest:
//!
//! - A record more than `future_tolerance` ahead of the wall clock is *future*: it is counted and
//!   reported by the caller, and kept out of the windows and the watermark.
//! - The watermark is the *minimum* over the partitions still delivering a backlog of the latest
//!   event time each has delivered, so a fast partition cannot close intervals a slower one still
//!   has records for. A partition at its end (caught up, librdkafka's partition EOF) no longer
//!   holds it back; a partition that has not reported yet (just assigned) holds it until it
//!   delivers a record or reaches its end. When every partition is caught up the watermark is the
//!   latest event time of all, and the caller moves it on by the clock while the stream is idle.
//!
//! The watermark never moves backwards. This type does no IO: the service feeds it records,
//! partition ends and the clock, and it is tested here by playing those events.

use std::collections::BTreeMap;

/// Where a partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Assigned, nothing heard yet: holds the watermark.
    Pending,
    /// Delivering a backlog; the latest event time it delivered.
    Reading(i64),
    /// At its end; the latest event time it delivered, if any.
    CaughtUp(Option<i64>),
}

/// What happened to a record's event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// In range: goes to the windows.
    Admitted,
    /// Beyond the future tolerance: counted and reported, not scored.
    Future,
}

/// Per-partition event-time progress and the watermark derived from it.
#[derive(Debug, Clone)]
pub struct EventClock {
    future_tolerance_ms: i64,
    partitions: BTreeMap<i32, Progress>,
    watermark: Option<i64>,
}

impl EventClock {
    /// A clock over `partitions` (each pending until it reports), refusing event times more than
    /// `future_tolerance_ms` ahead of the wall clock.
    pub fn new(partitions: impl IntoIterator<Item = i32>, future_tolerance_ms: i64) -> Self {
        Self {
            future_tolerance_ms: future_tolerance_ms.max(0),
            partitions: partitions
                .into_iter()
                .map(|p| (p, Progress::Pending))
                .collect(),
            watermark: None,
        }
    }

    /// The latest event time that may be trusted at wall-clock time `now`.
    pub fn horizon(&self, now: i64) -> i64 {
        now.saturating_add(self.future_tolerance_ms)
    }

    /// A record of `partition` with event time `time`, read at wall-clock time `now`.
    pub fn admit(&mut self, partition: i32, time: i64, now: i64) -> Admission {
        if time > self.horizon(now) {
            return Admission::Future;
        }
        let progress = self
            .partitions
            .entry(partition)
            .or_insert(Progress::Pending);
        let latest = match *progress {
            Progress::Reading(t) | Progress::CaughtUp(Some(t)) => t.max(time),
            Progress::Pending | Progress::CaughtUp(None) => time,
        };
        *progress = Progress::Reading(latest);
        Admission::Admitted
    }

    /// `partition` reached its end: it no longer holds the watermark back.
    pub fn caught_up(&mut self, partition: i32) {
        let progress = self
            .partitions
            .entry(partition)
            .or_insert(Progress::Pending);
        *progress = Progress::CaughtUp(match *progress {
            Progress::Reading(t) | Progress::CaughtUp(Some(t)) => Some(t),
            Progress::Pending | Progress::CaughtUp(None) => None,
        });
    }

    /// Whether every partition is at its end (live, nothing to catch up on).
    pub fn all_caught_up(&self) -> bool {
        self.partitions
            .values()
            .all(|p| matches!(p, Progress::CaughtUp(_)))
    }

    /// The watermark after what was fed so far; `idle_now` (the wall clock, when the stream has
    /// been idle) moves it on when every partition is caught up. `None` until something is known.
    pub fn watermark(&mut self, idle_now: Option<i64>) -> Option<i64> {
        let mut reading = None::<i64>;
        let mut latest = None::<i64>;
        for progress in self.partitions.values() {
            match *progress {
                Progress::Pending => return self.watermark,
                Progress::Reading(t) => reading = Some(reading.map_or(t, |r| r.min(t))),
                Progress::CaughtUp(t) => latest = latest.max(t),
            }
        }
        let candidate = match reading {
            Some(t) => Some(t),
            None => match idle_now {
                Some(now) => Some(latest.map_or(now, |t| t.max(now))),
                None => latest,
            },
        };
        self.watermark = self.watermark.max(candidate);
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const TOLERANCE: i64 = 300_000;

    #[test]
    fn a_far_future_record_is_refused_and_moves_nothing() {
        let mut clock = EventClock::new([0, 1], TOLERANCE);
        assert_eq!(clock.admit(0, NOW - 5_000, NOW), Admission::Admitted);
        // 2090-01-01 and six hours ahead: both beyond five minutes of tolerance.
        assert_eq!(clock.admit(1, 3_786_912_000_000, NOW), Admission::Future);
        assert_eq!(clock.admit(1, NOW + 6 * 3_600_000, NOW), Admission::Future);
        assert_eq!(clock.admit(1, NOW - 4_000, NOW), Admission::Admitted);
        assert_eq!(clock.watermark(None), Some(NOW - 5_000));
        // Within the tolerance is admitted (a sender whose clock runs a little fast).
        assert_eq!(clock.admit(0, NOW + TOLERANCE, NOW), Admission::Admitted);
    }

    #[test]
    fn the_slowest_partition_with_a_backlog_holds_the_watermark() {
        let mut clock = EventClock::new([0, 1], TOLERANCE);
        clock.admit(0, 10_000, NOW);
        assert_eq!(clock.watermark(None), None, "partition 1 has not reported");
        clock.admit(1, 4_000, NOW);
        assert_eq!(clock.watermark(None), Some(4_000));
        clock.admit(1, 12_000, NOW);
        assert_eq!(clock.watermark(None), Some(10_000));
        // Partition 0 caught up: partition 1's backlog alone decides.
        clock.caught_up(0);
        clock.admit(1, 15_000, NOW);
        assert_eq!(clock.watermark(None), Some(15_000));
    }

    #[test]
    fn an_empty_partition_at_its_end_does_not_hold_it_back() {
        let mut clock = EventClock::new([0, 1, 2], TOLERANCE);
        clock.caught_up(2);
        clock.admit(0, 7_000, NOW);
        clock.admit(1, 9_000, NOW);
        assert_eq!(clock.watermark(None), Some(7_000));
        assert!(!clock.all_caught_up());
    }

    #[test]
    fn when_all_are_caught_up_the_latest_time_then_the_idle_clock_move_it() {
        let mut clock = EventClock::new([0, 1], TOLERANCE);
        clock.admit(0, 7_000, NOW);
        clock.admit(1, 9_000, NOW);
        clock.caught_up(0);
        clock.caught_up(1);
        assert!(clock.all_caught_up());
        assert_eq!(clock.watermark(None), Some(9_000));
        assert_eq!(clock.watermark(Some(20_000)), Some(20_000));
        // Never backwards: a later, older record does not pull it back.
        clock.admit(0, 8_000, NOW);
        assert_eq!(clock.watermark(None), Some(20_000));
    }

    #[test]
    fn nothing_known_means_no_watermark_until_the_clock_says_idle() {
        let mut clock = EventClock::new([0], TOLERANCE);
        assert_eq!(clock.watermark(Some(NOW)), None, "still pending");
        clock.caught_up(0);
        assert_eq!(clock.watermark(None), None);
        assert_eq!(clock.watermark(Some(NOW)), Some(NOW));
    }
}
