//! Time as the service counts it: event times, interval bounds, the watermark and checkpoint
//! stamps are all epoch milliseconds, so the wall clock and the spec's durations are turned into
//! milliseconds here, once, the same way everywhere.

use std::time::Duration;

/// `duration` in milliseconds, saturating at `i64::MAX` (a duration that long means "never").
pub(super) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wall clock, epoch milliseconds.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_milliseconds_and_saturate() {
        let cases = [
            (Duration::ZERO, 0),
            (Duration::from_micros(1_999), 1),
            (Duration::from_secs(90), 90_000),
            (Duration::from_secs(u64::MAX), i64::MAX),
            (Duration::MAX, i64::MAX),
        ];
        for (duration, expected) in cases {
            assert_eq!(millis(duration), expected, "{duration:?}");
        }
    }
}
