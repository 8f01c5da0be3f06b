//! How a phase's traffic moves, as written: its rate over time ([`RateCurve`]: constant, a
//! multiple of the scenario's rate, a linear ramp, a sine cycle) and the share of its records
//! that carry its anomaly ([`Intensity`]: constant or a linear ramp). Each checks itself and
//! says which key is wrong and what to write; [`crate::schedule`] does the arithmetic (event
//! times from the rate's integral, which events are anomalous).

use std::fmt;
use std::time::Duration;

use super::error::ScenarioError;
use super::values::{InvalidDuration, check_rate};

/// A phase's rate in events per second per instance, over the phase's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateCurve {
    /// The same rate throughout (`rate: 50`).
    Constant(f64),
    /// A multiple of the scenario's rate (`rate: 3x`, a surge; `0.5x` a lull), constant.
    Times(f64),
    /// From `from` at the phase's start to `to` at its end, linearly (`rate: {from: 20, to:
    /// 60}`). Needs the phase's duration.
    Ramp {
        /// The rate at the start.
        from: f64,
        /// The rate at the end.
        to: f64,
    },
    /// A smooth cycle, `mean + amplitude · sin(2π · t / period)` with `t` from the phase's start
    /// (`rate: {sine: {mean: 40, amplitude: 20, period: 10m}}`): starts at the mean, rising.
    Sine {
        /// The average rate.
        mean: f64,
        /// How far above and below the mean it swings; below `mean`, so the rate stays positive.
        amplitude: f64,
        /// The length of one cycle.
        period: Duration,
    },
}

impl From<f64> for RateCurve {
    fn from(rate: f64) -> Self {
        Self::Constant(rate)
    }
}

impl RateCurve {
    /// A linear ramp of the rate from `from` to `to` events/s over the phase.
    pub fn ramp(from: f64, to: f64) -> Self {
        Self::Ramp { from, to }
    }

    /// A sine cycle of the rate around `mean` events/s, `amplitude` either side, every `period`.
    pub fn sine(mean: f64, amplitude: f64, period: Duration) -> Self {
        Self::Sine {
            mean,
            amplitude,
            period,
        }
    }

    /// `factor` times the scenario's rate (3 for a surge of three times the usual traffic).
    pub fn times(factor: f64) -> Self {
        Self::Times(factor)
    }

    /// Whether the rate moves, relative to the scenario's: anything but [`Self::Constant`]
    /// (a surge is constant in itself, but it is not the scenario's usual traffic).
    pub fn moves(&self) -> bool {
        !matches!(self, Self::Constant(_))
    }

    /// Checks that the rate is positive and finite everywhere; `at` names the phase (the error
    /// adds the key, such as `rate.sine.amplitude`).
    pub(super) fn check(&self, at: &str, has_end: bool) -> Result<(), ScenarioError> {
        let rate = |key: &str, value: f64| {
            check_rate(value).map_err(|error| ScenarioError::Rate {
                at: format!("{at}{key}"),
                error,
            })
        };
        let traffic = |key: &str, problem: String| ScenarioError::Traffic {
            at: format!("{at}: {key}"),
            problem,
        };
        match *self {
            Self::Constant(value) => rate("", value).map(drop),
            Self::Times(factor) if factor.is_finite() && factor > 0.0 => Ok(()),
            Self::Times(factor) => Err(traffic(
                "rate",
                format!(
                    "invalid multiple `{factor}x`: a surge is a multiple of the scenario's rate \
                     greater than 0, e.g. `3x` (three times the traffic) or `0.5x` (half)"
                ),
            )),
            Self::Ramp { .. } if !has_end => Err(traffic(
                "rate",
                "a ramp runs over the phase's duration, and this phase has none: give it one \
                 (`normal: 10m`), or use a constant rate or a sine"
                    .to_owned(),
            )),
            Self::Ramp { from, to } => {
                rate(": rate.from", from)?;
                rate(": rate.to", to).map(drop)
            }
            Self::Sine {
                mean,
                amplitude,
                period,
            } => {
                rate(": rate.sine.mean", mean)?;
                if !(amplitude.is_finite() && amplitude >= 0.0) {
                    return Err(traffic(
                        "rate.sine.amplitude",
                        format!(
                            "invalid amplitude `{amplitude}`: how far the rate swings either \
                             side of the mean, in events per second, 0 or more, e.g. `20`"
                        ),
                    ));
                }
                if amplitude >= mean {
                    return Err(traffic(
                        "rate.sine",
                        format!(
                            "the rate would fall to {mean} - {amplitude} = {}/s at the cycle's \
                             trough, and a rate must stay above 0: make `amplitude` smaller than \
                             `mean` (below {mean}), or raise `mean` above {amplitude}",
                            mean - amplitude
                        ),
                    ));
                }
                if period.as_millis() == 0 {
                    return Err(ScenarioError::Duration {
                        at: format!("{at}: rate.sine.period"),
                        error: InvalidDuration {
                            value: format!("{period:?}"),
                            reason: "it must be at least 1ms".to_owned(),
                        },
                    });
                }
                Ok(())
            }
        }
    }
}

/// Describes the curve as a label's `traffic` does: `ramp 20→60/s`, `sine 40±20/s over 10m`,
/// `3x surge` (`0.5x lull` below 1), `50/s`.
impl fmt::Display for RateCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Constant(rate) => write!(f, "{rate}/s"),
            Self::Times(factor) if *factor >= 1.0 => write!(f, "{factor}x surge"),
            Self::Times(factor) => write!(f, "{factor}x lull"),
            Self::Ramp { from, to } => write!(f, "ramp {from}→{to}/s"),
            Self::Sine {
                mean,
                amplitude,
                period,
            } => write!(
                f,
                "sine {mean}±{amplitude}/s over {}",
                humantime::format_duration(*period)
            ),
        }
    }
}

/// The share of an anomaly phase's records drawn with the anomaly's weights (the others are
/// normal), spread evenly and deterministically over the phase ([`crate::schedule`] says how).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intensity {
    /// The same share throughout (`intensity: 0.05`); [`Intensity::FULL`] by default.
    Constant(f64),
    /// From `from` at the phase's first record to `to` at its last, linearly over its records
    /// (`intensity: {from: 0, to: 0.3}`).
    Ramp {
        /// The share at the start.
        from: f64,
        /// The share at the end.
        to: f64,
    },
}

impl Default for Intensity {
    fn default() -> Self {
        Self::FULL
    }
}

impl From<f64> for Intensity {
    fn from(share: f64) -> Self {
        Self::Constant(share)
    }
}

impl Intensity {
    /// Every record of the phase anomalous: what a phase without `intensity` does.
    pub const FULL: Self = Self::Constant(1.0);

    /// A linear ramp of the share from `from` to `to` over the phase.
    pub fn ramp(from: f64, to: f64) -> Self {
        Self::Ramp { from, to }
    }

    /// The largest share over the phase (a label's `intensity`).
    pub fn peak(&self) -> f64 {
        match *self {
            Self::Constant(share) => share,
            Self::Ramp { from, to } => from.max(to),
        }
    }

    /// Whether every record is anomalous.
    pub fn is_full(&self) -> bool {
        *self == Self::FULL || *self == Self::Ramp { from: 1.0, to: 1.0 }
    }

    /// Checks that the shares are between 0 and 1 and that some record is anomalous; `at` names
    /// the phase.
    pub(super) fn check(&self, at: &str) -> Result<(), ScenarioError> {
        let fail = |key: &str, problem: String| ScenarioError::Intensity {
            at: format!("{at}: {key}"),
            problem,
        };
        let share = |key: &str, value: f64, zero_ok: bool| {
            let low_ok = if zero_ok { value >= 0.0 } else { value > 0.0 };
            if value.is_finite() && low_ok && value <= 1.0 {
                return Ok(());
            }
            let range = if zero_ok {
                "from 0 to 1"
            } else {
                "above 0 and at most 1"
            };
            Err(fail(
                key,
                format!(
                    "invalid intensity `{value}`: the share of the phase's records drawn with the \
                     anomaly's weights is a number {range}, e.g. `0.05` for 5% (1, all of \
                     them, when absent)"
                ),
            ))
        };
        match *self {
            Self::Constant(value) => share("intensity", value, false),
            Self::Ramp { from, to } => {
                share("intensity.from", from, true)?;
                share("intensity.to", to, true)?;
                if from.max(to) > 0.0 {
                    Ok(())
                } else {
                    Err(fail(
                        "intensity",
                        "a ramp from 0 to 0 makes no anomalous record: give `to` above 0, e.g. \
                         `{from: 0, to: 0.3}`"
                            .to_owned(),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_describe_themselves_as_labels_do() {
        for (curve, says) in [
            (RateCurve::ramp(20.0, 60.0), "ramp 20→60/s"),
            (
                RateCurve::sine(40.0, 20.0, Duration::from_secs(600)),
                "sine 40±20/s over 10m",
            ),
            (RateCurve::times(3.0), "3x surge"),
            (RateCurve::times(0.5), "0.5x lull"),
            (RateCurve::Constant(2.5), "2.5/s"),
        ] {
            assert_eq!(curve.to_string(), says);
        }
    }

    #[test]
    fn intensities_peak_at_their_largest_share() {
        assert_eq!(Intensity::default().peak(), 1.0);
        assert!(Intensity::default().is_full());
        assert_eq!(Intensity::ramp(0.3, 0.1).peak(), 0.3);
        assert!(!Intensity::from(0.05).is_full());
    }
}
