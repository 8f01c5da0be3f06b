//! When a phase's events happen: its rate curve resolved against the scenario's rate and the
//! phase's duration ([`Pace`]), and the arithmetic that turns it into event times.
//!
//! Event `i` of a phase is at the time `t_i` when the expected number of events since the
//! phase's start, the integral `Λ(t)` of the rate, reaches `i`; its timestamp is the start plus
//! `⌊t_i⌋` in milliseconds, and a span of `d` holds the `⌈Λ(d)⌉` events with `t_i < d`. For a
//! constant rate `r` that is the exact `⌊i · 1000 / r⌋` ms and `⌈r · d⌉` events. A ramp from `a`
//! to `b` over `D` inverts in closed form (`t_i = 2i / (a + √(a² + 2ki))`, `k = (b − a) / D`,
//! which holds whichever way it slopes); a sine has no closed inverse, so `t_i` is found by
//! Newton's method kept inside a bracket, to a nanosecond, with a fixed iteration limit. Nothing
//! here reads the clock or draws random numbers: the same scenario gives the same times.

use std::f64::consts::{PI, TAU};
use std::time::Duration;

use crate::scenario::RateCurve;

/// The tiny relative nudge of [`Pace::offset_ms`] and [`Pace::events_within`]: it makes products
/// that are whole numbers in decimal (3 events at 0.3/s, say) land on that whole number despite
/// binary rounding; it is far below a millisecond.
const NUDGE: f64 = 1e-12;

/// A phase's rate over its time, resolved: events per second per instance, `t` seconds from the
/// phase's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// `rate` throughout.
    Constant(f64),
    /// `rate` throughout: `factor` times the scenario's rate.
    Surge {
        /// The multiple written (`3x`).
        factor: f64,
        /// The resulting rate.
        rate: f64,
    },
    /// From `from` to `to`, linearly over `over_s` seconds (the phase's planned duration).
    Ramp {
        /// The rate at the start.
        from: f64,
        /// The rate at the planned end.
        to: f64,
        /// The phase's planned duration, seconds.
        over_s: f64,
    },
    /// `mean + amplitude · sin(2π t / period)`.
    Sine {
        /// The average rate.
        mean: f64,
        /// The swing either side of the mean (below the mean).
        amplitude: f64,
        /// One cycle.
        period: Duration,
    },
}

impl Pace {
    /// Resolves `curve` against the scenario's rate `base` (for a multiple) and the phase's
    /// planned `duration` (for a ramp); `None` if the one it needs is missing.
    pub fn resolve(
        curve: RateCurve,
        base: Option<f64>,
        duration: Option<Duration>,
    ) -> Option<Self> {
        Some(match curve {
            RateCurve::Constant(rate) => Self::Constant(rate),
            RateCurve::Times(factor) => Self::Surge {
                factor,
                rate: factor * base?,
            },
            RateCurve::Ramp { from, to } => Self::Ramp {
                from,
                to,
                over_s: duration?.as_secs_f64(),
            },
            RateCurve::Sine {
                mean,
                amplitude,
                period,
            } => Self::Sine {
                mean,
                amplitude,
                period,
            },
        })
    }

    /// The curve as a scenario writes it (a surge as its multiple).
    pub fn curve(&self) -> RateCurve {
        match *self {
            Self::Constant(rate) => RateCurve::Constant(rate),
            Self::Surge { factor, .. } => RateCurve::Times(factor),
            Self::Ramp { from, to, .. } => RateCurve::Ramp { from, to },
            Self::Sine {
                mean,
                amplitude,
                period,
            } => RateCurve::Sine {
                mean,
                amplitude,
                period,
            },
        }
    }

    /// How the rate moves, in words, for a label's `traffic`; `None` for a constant rate.
    pub fn traffic(&self) -> Option<String> {
        let curve = self.curve();
        curve.moves().then(|| curve.to_string())
    }

    /// The rate `t` seconds after the phase's start, events per second.
    pub fn rate_at(&self, t: f64) -> f64 {
        match *self {
            Self::Constant(rate) | Self::Surge { rate, .. } => rate,
            Self::Ramp { from, to, over_s } => from + (to - from) * t / over_s,
            Self::Sine {
                mean,
                amplitude,
                period,
            } => mean + amplitude * (TAU * t / period.as_secs_f64()).sin(),
        }
    }

    /// The expected number of events in the first `t` seconds of the phase: the rate's
    /// integral, `Λ(t)`.
    pub fn expected(&self, t: f64) -> f64 {
        match *self {
            Self::Constant(rate) | Self::Surge { rate, .. } => rate * t,
            Self::Ramp { from, to, over_s } => from * t + (to - from) * t * t / (2.0 * over_s),
            Self::Sine {
                mean,
                amplitude,
                period,
            } => {
                let period = period.as_secs_f64();
                mean * t + amplitude * period / TAU * (1.0 - (TAU * t / period).cos())
            }
        }
    }

    /// Seconds from the phase's start to its event `i`: where [`Self::expected`] reaches `i`.
    fn time_of(&self, i: u64) -> f64 {
        let i = i as f64;
        match *self {
            Self::Constant(rate) | Self::Surge { rate, .. } => i / rate,
            Self::Ramp { from, to, over_s } => {
                // The root of k/2 t² + from t − i = 0 in the form that does not cancel.
                let slope = (to - from) / over_s;
                let root = (from * from + 2.0 * slope * i).max(0.0).sqrt();
                2.0 * i / (from + root)
            }
            Self::Sine {
                mean,
                amplitude,
                period,
            } => {
                // Λ(t) lies between mean · t and mean · t + amplitude · period / π, which
                // brackets the answer; Newton's steps stay inside the bracket or bisect it.
                let swing = amplitude * period.as_secs_f64() / PI;
                let (mut low, mut high) = (((i - swing) / mean).max(0.0), i / mean);
                let mut t = high;
                for _ in 0..100 {
                    let error = self.expected(t) - i;
                    if error.abs() < 1e-9 || high - low < 1e-12 {
                        break;
                    }
                    if error > 0.0 {
                        high = t;
                    } else {
                        low = t;
                    }
                    let step = t - error / self.rate_at(t);
                    t = if step > low && step < high {
                        step
                    } else {
                        (low + high) / 2.0
                    };
                }
                t
            }
        }
    }

    /// Milliseconds from the phase's start to its event `i`: `⌊t_i · 1000⌋`, and for a constant
    /// rate `r` exactly `⌊i · 1000 / r⌋`.
    pub fn offset_ms(&self, i: u64) -> i64 {
        let exact = match *self {
            Self::Constant(rate) | Self::Surge { rate, .. } => i as f64 * 1000.0 / rate,
            _ => self.time_of(i) * 1000.0,
        };
        // `as` saturates for out-of-range floats.
        (exact * (1.0 + NUDGE)).floor() as i64
    }

    /// How many events fall in the first `span_ms` of the phase: `⌈Λ(span)⌉`, and for a
    /// constant rate `r` exactly `⌈r · span / 1000⌉`, with the nudge in the other direction.
    pub fn events_within(&self, span_ms: i64) -> u64 {
        let exact = match *self {
            Self::Constant(rate) | Self::Surge { rate, .. } => span_ms as f64 * rate / 1000.0,
            _ => self.expected(span_ms as f64 / 1000.0),
        };
        (exact * (1.0 - NUDGE)).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_count_inverts_to_the_event_times() {
        let minute = Duration::from_secs(60);
        for pace in [
            Pace::Constant(7.0),
            Pace::Ramp {
                from: 10.0,
                to: 30.0,
                over_s: 10.0,
            },
            Pace::Ramp {
                from: 60.0,
                to: 20.0,
                over_s: 300.0,
            },
            Pace::Sine {
                mean: 40.0,
                amplitude: 39.0,
                period: minute,
            },
        ] {
            for i in [0_u64, 1, 2, 17, 199, 1_000, 5_999] {
                let t = pace.time_of(i);
                assert!(
                    (pace.expected(t) - i as f64).abs() < 1e-6,
                    "{pace:?}: Λ({t}) = {} for event {i}",
                    pace.expected(t)
                );
            }
        }
    }
}
