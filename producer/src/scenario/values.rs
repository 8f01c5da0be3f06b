//! The two scalar values of a scenario, shared with the producer's flags: a duration in
//! humantime's grammar (the one the spec and the other services' flags use) and a rate in events
//! per second. Each has its own error type, so a flag and a scenario file report a bad value in
//! the same words; [`super::ScenarioError`] adds where the value was.

use std::time::Duration;

/// How to write a duration, as shown in error messages.
const DURATION_HELP: &str =
    "write numbers with units (ms, s, m, h, d, ...), e.g. `500ms`, `30s`, `5m`, `1h30m`";

/// A duration that does not parse, or is not positive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{value}`: {reason}; {DURATION_HELP}")]
pub struct InvalidDuration {
    /// The text given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A rate that is not a positive, finite number of events per second.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "invalid rate `{0}`: the rate must be a number of events per second greater than 0, \
     e.g. `50` or `0.5`"
)]
pub struct InvalidRate(pub f64);

/// Parses a duration in humantime's grammar (`500ms`, `30s`, `5m`, `1h`, `2d`, `1h30m`,
/// `1h 30m`, ...), the one the rest of the workspace uses. Zero is rejected, and so is anything
/// longer than epoch milliseconds in an `i64` can hold.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let fail = |reason: String| InvalidDuration {
        value: text.to_owned(),
        reason,
    };
    let duration = humantime::parse_duration(text.trim()).map_err(|err| fail(err.to_string()))?;
    if duration.is_zero() {
        return Err(fail("it must be longer than 0".to_owned()));
    }
    if i64::try_from(duration.as_millis()).is_err() {
        return Err(fail("it is too long".to_owned()));
    }
    Ok(duration)
}

/// Checks that `rate` is a positive, finite number of events per second.
pub fn check_rate(rate: f64) -> Result<f64, InvalidRate> {
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(InvalidRate(rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("2d", 172_800_000),
            ("1h30m", 5_400_000),
            (" 1m 30s ", 90_000),
            ("1h 30min", 5_400_000),
            ("1.5s", 1_500),
            ("1w", 604_800_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }
}
