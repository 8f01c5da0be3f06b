//! Event-time intervals: each record's value is added to the interval its `@timestamp` falls in;
//! an interval closes once the watermark passes its end plus the window delay, and closes with
//! 0 when nothing fell in it (a quiet minute is a data point too). Records older than the first
//! open interval are late: counted, not scored (the interval was already judged).
//!
//! The watermark is the service's business: the latest event time seen, moved on by the wall
//! clock while the stream is idle, so intervals close both when replaying a backlog at full
//! speed and when live traffic stops.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most intervals one [`Window::close`] returns.
pub const MAX_CLOSED_PER_CALL: usize = 10_000;

/// A closed interval: `[start, end)` in epoch milliseconds, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, inclusive.
    pub start: i64,
    /// End, exclusive.
    pub end: i64,
    /// The aggregated value.
    pub value: f64,
    /// Events that fell in it.
    pub events: u64,
}

/// The open intervals of one detector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    interval_ms: i64,
    delay_ms: i64,
    /// The first interval not yet closed (aligned), once known.
    next: Option<i64>,
    /// Open intervals by start: (value, events).
    open: BTreeMap<i64, (f64, u64)>,
}

impl Window {
    /// A window of `interval_ms` intervals (aligned to the epoch), closing `delay_ms` after their
    /// end; `resume` is the first interval to score (e.g. just after the history trained on).
    pub fn new(interval_ms: i64, delay_ms: i64, resume: Option<i64>) -> Self {
        let interval_ms = interval_ms.max(1);
        Self {
            interval_ms,
            delay_ms: delay_ms.max(0),
            next: resume.map(|t| t.div_euclid(interval_ms) * interval_ms),
            open: BTreeMap::new(),
        }
    }

    /// The interval length, in milliseconds.
    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    /// The start of the interval containing `time`.
    pub fn align(&self, time: i64) -> i64 {
        time.div_euclid(self.interval_ms) * self.interval_ms
    }

    /// The first interval not yet closed, once known.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// Adds `value` at event time `time`; `false` when the record is late (its interval closed).
    pub fn add(&mut self, time: i64, value: f64) -> bool {
        let start = self.align(time);
        if self.next.is_some_and(|next| start < next) {
            return false;
        }
        let slot = self.open.entry(start).or_insert((0.0, 0));
        slot.0 += value;
        slot.1 += 1;
        true
    }

    /// Closes every interval whose end plus the delay is at or before `watermark`, in order,
    /// including empty ones since the last closed interval; at most [`MAX_CLOSED_PER_CALL`] at a
    /// time (the rest on the next call), so memory stays bounded whatever the watermark.
    pub fn close(&mut self, watermark: i64) -> Vec<Interval> {
        let limit = watermark - self.delay_ms;
        let next = match self.next {
            Some(next) => next,
            // Nothing closed yet: start at the earliest data, or at the watermark.
            None => match self.open.keys().next() {
                Some(&first) => first,
                None => self.align(limit),
            },
        };
        let mut closed = Vec::new();
        let mut start = next;
        while start + self.interval_ms <= limit && closed.len() < MAX_CLOSED_PER_CALL {
            let (value, events) = self.open.remove(&start).unwrap_or((0.0, 0));
            closed.push(Interval {
                start,
                end: start + self.interval_ms,
                value,
                events,
            });
            start += self.interval_ms;
        }
        self.next = Some(start);
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_close_after_the_delay_with_zeros_for_quiet_ones() {
        let mut window = Window::new(1_000, 500, None);
        assert!(window.add(10_100, 1.0));
        assert!(window.add(10_900, 1.0));
        assert!(window.add(13_200, 1.0));
        assert!(
            window.close(11_400).is_empty(),
            "not yet: 11,000 + 500 delay"
        );
        let closed = window.close(13_600);
        assert_eq!(
            closed,
            vec![
                Interval {
                    start: 10_000,
                    end: 11_000,
                    value: 2.0,
                    events: 2
                },
                Interval {
                    start: 11_000,
                    end: 12_000,
                    value: 0.0,
                    events: 0
                },
                Interval {
                    start: 12_000,
                    end: 13_000,
                    value: 0.0,
                    events: 0
                },
            ]
        );
        assert!(!window.add(12_999, 1.0), "its interval is closed: late");
        assert!(window.add(13_000, 1.0));
        let closed = window.close(14_500);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].value, 2.0);
    }

    #[test]
    fn a_resumed_window_skips_what_was_scored_and_aligns() {
        let mut window = Window::new(60_000, 0, Some(120_001));
        assert_eq!(window.next(), Some(120_000));
        assert!(!window.add(119_999, 1.0));
        assert!(window.add(120_000, 1.0));
        let closed = window.close(240_000);
        assert_eq!(closed.len(), 2);
        assert_eq!((closed[0].start, closed[0].value), (120_000, 1.0));
    }

    #[test]
    fn a_watermark_far_ahead_closes_in_bounded_steps() {
        let mut window = Window::new(1_000, 0, Some(0));
        let far = 1_000 * (MAX_CLOSED_PER_CALL as i64) * 3 + 500;
        let sizes: Vec<usize> = (0..4).map(|_| window.close(far).len()).collect();
        assert_eq!(
            sizes,
            [
                MAX_CLOSED_PER_CALL,
                MAX_CLOSED_PER_CALL,
                MAX_CLOSED_PER_CALL,
                0
            ]
        );
        assert_eq!(window.next(), Some(far - 500));
    }

    #[test]
    fn an_idle_start_begins_at_the_watermark() {
        let mut window = Window::new(1_000, 0, None);
        assert!(window.close(5_500).is_empty());
        assert_eq!(window.next(), Some(5_000));
        let closed = window.close(7_000);
        assert_eq!(closed.len(), 2);
    }
}
