//! The one retry policy: how long to wait before trying again something that failed for a
//! reason time can fix (OpenSearch unreachable or overloaded, a Kafka delivery that timed out, a
//! webhook that did not answer).
//!
//! Exponential and capped: the longest wait before retry `n` is `initial * 2^(n-1)`, never more
//! than `max`, so a long outage costs few requests and a recovery is noticed within `max`.
//! Jittered: the wait is drawn uniformly between half and all of that ceiling, so replicas that
//! lost the same dependency at the same moment do not all come back at the same instant, and no
//! retry fires at once.
//!
//! [`Backoff`] is the policy, a pure function of the attempt number, for callers that keep their
//! own counts (the sink counts attempts per batch). [`Retries`] counts the consecutive failures
//! of one thing for callers that do not, and is reset when it succeeds.
//!
//! Hand-written rather than taken from a crate: `backon`, the well-kept one, adds its jitter on
//! top of the delay (so a wait can reach twice the cap) and keeps its count inside an iterator,
//! where the sink's pure ledger needs "the delay for attempt `n`"; the policy is this one file.

use std::time::Duration;

use rand::Rng;

/// The shortest ceiling: a zero `initial` still waits, so a retry loop never spins.
const MIN_CEILING: Duration = Duration::from_millis(1);

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits of up to `initial` before the first retry, doubling per attempt, never more than
    /// `max` (which wins when it is below `initial`).
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The ceiling of the first wait.
    pub const fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The longest wait before retry number `attempt` (1-based; 0 counts as 1):
    /// `initial * 2^(attempt-1)`, capped at `max`, at least 1 ms.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial
            .saturating_mul(factor)
            .min(self.max)
            .max(MIN_CEILING)
    }

    /// The wait before retry number `attempt`: uniformly random between half and all of
    /// [`Self::ceiling`].
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        rng.random_range(ceiling / 2..=ceiling)
    }
}

/// The consecutive failures of one thing, and the wait before its next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    backoff: Backoff,
    /// Failures since the last success (or the start): the attempt the next wait is for.
    failures: u32,
}

impl Retries {
    /// No failures yet.
    pub const fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            failures: 0,
        }
    }

    /// Counts a failure and returns how long to wait before trying again.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(&mut rand::rng())
    }

    /// [`Self::next_delay`] drawing from `rng`.
    pub fn next_delay_with(&mut self, rng: &mut impl Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures, rng)
    }

    /// Failures since the last success.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits as little as the first one did.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn ceilings_double_from_initial_up_to_the_cap() {
        // (initial, max, attempt, ceiling)
        let cases = [
            (100, 5_000, 0, 100),
            (100, 5_000, 1, 100),
            (100, 5_000, 2, 200),
            (100, 5_000, 6, 3_200),
            (100, 5_000, 7, 5_000),
            (100, 5_000, 40, 5_000),
            (100, 5_000, u32::MAX, 5_000),
            // The Kafka delivery retry: 200 ms doubling to 30 s.
            (200, 30_000, 8, 25_600),
            (200, 30_000, 9, 30_000),
            // The alert delivery retry: 1 s doubling to 60 s.
            (1_000, 60_000, 6, 32_000),
            (1_000, 60_000, 7, 60_000),
            // A cap below the first wait wins; a zero first wait still waits 1 ms.
            (500, 300, 1, 300),
            (0, 5_000, 3, 1),
            // Large products saturate instead of overflowing.
            (u64::MAX / 4, u64::MAX, 64, u64::MAX),
        ];
        for (initial, max, attempt, ceiling) in cases {
            let backoff = Backoff::new(ms(initial), ms(max));
            assert_eq!(
                backoff.ceiling(attempt),
                ms(ceiling),
                "initial {initial} ms, max {max} ms, attempt {attempt}"
            );
        }
    }

    #[test]
    fn delays_stay_between_half_and_all_of_the_ceiling_and_vary() {
        let mut rng = StdRng::seed_from_u64(16);
        for (initial, max, attempt) in [(100, 5_000, 1), (100, 5_000, 3), (200, 30_000, 50)] {
            let backoff = Backoff::new(ms(initial), ms(max));
            let ceiling = backoff.ceiling(attempt);
            let delays: Vec<Duration> = (0..1_000)
                .map(|_| backoff.delay(attempt, &mut rng))
                .collect();
            for delay in &delays {
                assert!(
                    (ceiling / 2..=ceiling).contains(delay),
                    "attempt {attempt}: {delay:?} outside {:?}..={ceiling:?}",
                    ceiling / 2
                );
            }
            // Jittered, over the whole range: some waits in the lower tenth, some in the upper.
            let low = ceiling / 2 + ceiling / 20;
            let high = ceiling - ceiling / 20;
            assert!(
                delays.iter().any(|d| *d < low),
                "attempt {attempt}: none low"
            );
            assert!(
                delays.iter().any(|d| *d > high),
                "attempt {attempt}: none high"
            );
        }
    }

    #[test]
    fn retries_count_failures_and_reset_on_success() {
        let backoff = Backoff::new(ms(100), ms(1_000));
        let mut retries = Retries::new(backoff);
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let delay = retries.next_delay_with(&mut rng);
            let ceiling = backoff.ceiling(retries.failures());
            assert!((ceiling / 2..=ceiling).contains(&delay), "{delay:?}");
            ceilings.push(ceiling);
        }
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1_000, 1_000].map(ms),
            "one ceiling per failure"
        );
        assert_eq!(retries.failures(), 6);
        retries.reset();
        assert_eq!(retries.failures(), 0);
        let delay = retries.next_delay_with(&mut rng);
        assert_eq!(retries.failures(), 1);
        assert!(
            (ms(50)..=ms(100)).contains(&delay),
            "after a reset: {delay:?}"
        );
    }
}
