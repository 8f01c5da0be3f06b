//! Which of an anomaly phase's events carry its anomaly, for an intensity below 1: spread evenly
//! and deterministically, with no random draw, so a count is exact and a test can name it.
//!
//! With the share `f(j)` of event `j`, the cumulative share `C(i) = Σ_{j<i} f(j)` is the number
//! of anomalous events the first `i` should hold, and event `i` is anomalous when `C` passes a
//! whole number between `i` and `i + 1`: `⌊C(i + 1)⌋ > ⌊C(i)⌋`. A constant share `f` gives
//! `C(i) = i · f`: the first `n` events hold exactly `⌊n · f⌋` anomalous ones (a 5% phase of
//! 15,000 events holds 750, events 19, 39, 59, ...). A ramp from `a` to `b` runs over the phase's
//! planned events `N` (linearly in time when the rate is constant), `C(i) = a · i + (b − a) ·
//! i² / 2N`, so the phase holds `⌊N · (a + b) / 2⌋`.

use crate::scenario::Intensity;

/// The tiny relative nudge that makes whole-number products in decimal (57 of 100 events at
/// 0.57, say) land on that whole number despite binary rounding.
const NUDGE: f64 = 1e-12;

/// An anomaly phase's intensity, laid over its planned events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// The share at the first event.
    from: f64,
    /// The share at the last planned event.
    to: f64,
    /// The phase's planned events (the ramp's length), at least 1.
    over: u64,
}

impl Mix {
    /// Every event anomalous.
    pub const FULL: Self = Self {
        from: 1.0,
        to: 1.0,
        over: 1,
    };

    /// `intensity` over a phase of `events` planned events.
    pub fn new(intensity: Intensity, events: u64) -> Self {
        let (from, to) = match intensity {
            Intensity::Constant(share) => (share, share),
            Intensity::Ramp { from, to } => (from, to),
        };
        Self {
            from,
            to,
            over: events.max(1),
        }
    }

    /// Whether every event is anomalous.
    pub fn is_full(&self) -> bool {
        self.from == 1.0 && self.to == 1.0
    }

    /// The label's `intensity`: the largest share, or `None` when every event is anomalous.
    pub fn intensity(&self) -> Option<f64> {
        (!self.is_full()).then_some(self.from.max(self.to))
    }

    /// The number of anomalous events among the first `i`, before rounding down: `C(i)`.
    pub fn expected(&self, i: u64) -> f64 {
        let i = i as f64;
        let exact = self.from * i + (self.to - self.from) * i * i / (2.0 * self.over as f64);
        exact * (1.0 + NUDGE)
    }

    /// Whether event `i` of the phase carries the anomaly.
    pub fn anomalous(&self, i: u64) -> bool {
        self.is_full() || self.expected(i.saturating_add(1)).floor() > self.expected(i).floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_share_marks_exactly_its_floor_evenly() {
        for (share, events, anomalous) in [
            (0.05, 15_000, 750),
            (0.05, 19, 0),
            (0.05, 20, 1),
            (0.57, 100, 57),
            (0.3, 10, 3),
            (1.0 / 3.0, 1_000, 333),
            (1.0, 1_234, 1_234),
        ] {
            let mix = Mix::new(Intensity::Constant(share), events);
            let marked: Vec<u64> = (0..events).filter(|&i| mix.anomalous(i)).collect();
            assert_eq!(marked.len() as u64, anomalous, "{share} of {events}");
            if share == 0.05 && events == 15_000 {
                assert_eq!(marked[..3], [19, 39, 59]);
                assert!(marked.windows(2).all(|w| w[1] - w[0] == 20));
            }
        }
    }

    #[test]
    fn a_ramp_marks_more_as_it_rises() {
        let mix = Mix::new(Intensity::ramp(0.0, 0.3), 15_000);
        let count = |range: std::ops::Range<u64>| range.filter(|&i| mix.anomalous(i)).count();
        assert_eq!(count(0..15_000), 2_250);
        let quarters: Vec<usize> = (0..4).map(|q| count(q * 3_750..(q + 1) * 3_750)).collect();
        // 0.3 · 3,750 · (1, 3, 5, 7) / 8: the share rises linearly.
        assert_eq!(quarters, [140, 422, 703, 985]);
        assert_eq!(mix.intensity(), Some(0.3));
        assert_eq!(Mix::FULL.intensity(), None);
    }
}
