//! What the producer should do, as a list of phases: normal traffic, or an anomaly on one field
//! (named, or picked at random as the seed did), each for a duration and at a rate.
//!
//! Every mode of the CLI is a scenario: plain normal traffic is one open-ended normal phase, a
//! forced anomaly is one anomaly phase, and a YAML file gives repeatable demos and tests. Input
//! is parsed in two stages, like the services' config: a raw serde form that rejects unknown
//! keys, then a validated [`Scenario`] whose errors ([`ScenarioError`]) name the bad key or value,
//! where it is, and the valid choices. Nothing here reads the clock or draws random numbers:
//! [`crate::schedule`] turns a scenario into event times and resolves random targets.
//!
//! This file holds the scenario as a type (phases, constructors, the invariants
//! [`Scenario::validate`] checks). Around it: `values` parses and checks the two scalars a
//! scenario holds (durations, rates), `error` is [`ScenarioError`], and `file` reads the YAML
//! form below, and `traffic` is how a phase's traffic moves ([`RateCurve`], [`Intensity`]).
//! Imports run one way: `file` builds on this file, `traffic`, `values` and `error`; this file
//! uses only `traffic`, `values` and `error`.
//!
//! # The scenario file
//!
//! ```yaml
//! name: five-fields   # optional; defaults to the file's stem
//! rate: 50            # optional default events/s for phases without their own
//! phases:
//!   - normal: 2m              # normal traffic for 2 minutes
//!   - anomaly: country        # action, httpSourceName, httpStatus, country, httpMethod, random
//!     duration: 3m
//!     rate: 80                # this phase's own rate, events/s
//!   - normal: 1m
//!   - anomaly: random         # one of the five, picked deterministically from --seed
//!     duration: 1m
//! ```
//!
//! A scenario of a real source names it with `source:` (`waf`, `cloudtrail`, `syslog`,
//! `cloudwatch`, `splunk`; without it, the seed's records) and injects that source's
//! indicators ([`crate::indicators`]), which are also its labels' names:
//!
//! ```yaml
//! source: syslog
//! rate: 20
//! phases:
//!   - normal: 10m
//!   - anomaly: syslog_auth_failure   # an sshd brute force against the bastion
//!     duration: 2m
//!   - normal: 5m
//! ```
//!
//! A phase's traffic can move, to show that a detector does not alert on a surge of normal
//! traffic or a smooth cycle, and an anomaly can be subtle, to show that it still catches a
//! campaign hidden in normal records or a slow ramp:
//!
//! ```yaml
//! name: moving-traffic
//! rate: 50
//! phases:
//!   - normal: 10m
//!   - normal: 5m
//!     rate: 3x                   # a surge: 3 times the scenario's rate (0.5x: half)
//!   - normal: 10m
//!     rate: {sine: {mean: 50, amplitude: 25, period: 10m}}   # 50/s ± 25, one cycle per 10m
//!   - anomaly: country
//!     duration: 5m
//!     intensity: 0.05            # 5% of the phase's records anomalous, the rest normal
//!   - normal: 5m
//!     rate: {from: 20, to: 60}   # the rate ramps from 20/s to 60/s over the phase
//!   - anomaly: httpStatus
//!     duration: 5m
//!     intensity: {from: 0, to: 0.3}   # the anomalous share ramps from 0 to 30%
//!   - normal: 5m
//! ```
//!
//! - `rate:` of a phase (normal or anomaly) is a number of events/s, `Nx` (`N` times the
//!   scenario's `rate:`, which it then needs), `{from: A, to: B}` (a linear ramp over the
//!   phase) or `{sine: {mean: M, amplitude: A, period: P}}` (`M + A · sin(2π t / P)` from the
//!   phase's start, so it starts at the mean, rising; `A` must be below `M`, so the rate stays
//!   above 0). Events follow the rate: event `i` is where the rate's integral reaches `i`
//!   ([`crate::schedule`]), so a constant rate spaces them exactly as before.
//! - `intensity:` of an anomaly phase is the share of its records drawn with the anomaly's
//!   weights, above 0 and at most 1 (1, every record, when absent), or `{from: A, to: B}`, a
//!   linear ramp over the phase's records (shares from 0 to 1). The anomalous records are
//!   spread evenly, with no random draw: a phase of `n` records at intensity `f` has exactly
//!   `⌊n · f⌋` (750 of 15,000 at 0.05), and a ramp `⌊n · (A + B) / 2⌋`.
//! - Labels: every anomaly phase has one, with `intensity` (its largest share) when below 1;
//!   every normal phase has one too, `kind: normal` with an empty `field`; either has `traffic`
//!   (`3x surge`, `sine 50±25/s over 10m`, `ramp 20→60/s`) when its rate moves.
//!
//! An anomaly can come from one client among thousands, so a per-entity detector (one model per
//! `httpRequest.clientIp`) has one entity to flag and many to leave alone:
//!
//! ```yaml
//! name: one-bad-client
//! clients: 10000        # the client pool: 1 to 100,000 distinct addresses (300 when absent)
//! rate: 200
//! phases:
//!   - normal: 10m
//!   - anomaly: country
//!     duration: 3m
//!     intensity: 0.02   # 720 of the phase's 36,000 records anomalous...
//!     from: client      # ...all from one quiet client of the pool, picked from the seed
//!   - normal: 5m
//! ```
//!
//! - `clients:` is how many distinct client addresses the seed's records draw from, with Zipf
//!   popularity. Pools are drawn in one order whatever their size, so the default 300 are the
//!   first 300 of any larger pool, and a scenario without `clients:` is unchanged.
//! - `from:` of an anomaly phase is `client` (a member of the pool's less popular half, picked
//!   from the seed and the phase's index: a quiet client that suddenly misbehaves) or `{client:
//!   198.51.100.7}` (that IPv4 address, in the pool or not). The phase's anomalous records all
//!   carry it; its other records (below full intensity) draw their clients as usual, and so may
//!   the quiet client's own normal records, rarely. The phase's label has it as `entity`.
//!   Only the seed's anomaly phases take a `from` (a source's records have no client pool yet).
//!
//! In code, the same phases are `Phase::normal(d).with_rate(RateCurve::times(3.0))`,
//! `.with_rate(RateCurve::sine(50.0, 25.0, d))`, `.with_rate(RateCurve::ramp(20.0, 60.0))` and
//! `Phase::anomaly(field, d).with_intensity(0.05)` or `.with_intensity(Intensity::ramp(0.0,
//! 0.3))` (see [`Phase`]); an entity phase is `Phase::anomaly(field, d).from_client(
//! FromClient::Picked)` or `FromClient::Address(ip)`, and a pool `Scenario::with_clients(n)`.
//!
//! Durations are written as everywhere else in logwarden (the spec, the detector's and the
//! provisioner's flags): humantime's grammar, numbers with units, combinable (`90s`, `5m`,
//! `1h30m`, `1h 30m`, `500ms`, `2d`).
//! Rates are events per second per producer instance (replicas each produce the rate).

mod error;
mod file;
mod traffic;
mod values;

use std::net::Ipv4Addr;
use std::time::Duration;

use pipeline::wire::{MonitoredField, Source};

pub use crate::clients::{CLIENT_POOL_SIZE, MAX_CLIENTS};

pub use error::ScenarioError;
pub use traffic::{Intensity, RateCurve};
pub use values::{InvalidDuration, InvalidRate, check_rate, parse_duration};

/// What a phase produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhaseKind {
    /// All five fields with their normal weights.
    Normal,
    /// This field with its anomaly weights, the others normal.
    Anomaly(MonitoredField),
    /// One of the five fields, picked uniformly (deterministically from the seed when the
    /// schedule is planned), with its anomaly weights.
    RandomAnomaly,
    /// A source scenario's phase raising this indicator of the source ([`crate::indicators`]).
    Inject(&'static str),
}

/// The one client an anomaly phase's anomalous records come from (YAML `from:`), so that a
/// per-entity detector (one model per `httpRequest.clientIp`) has one entity to flag among the
/// pool's others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FromClient {
    /// `from: client`: a quiet member of the scenario's client pool (one of its less popular
    /// half), picked from the seed and the phase's index when the schedule is planned, so it
    /// is a client that sent little until it misbehaves.
    Picked,
    /// `from: {client: 198.51.100.7}`: this address, in the pool or not.
    Address(Ipv4Addr),
}

/// One phase of a scenario.
///
/// Build one in code with a constructor and the `with_` methods:
///
/// ```
/// use std::time::Duration;
/// use pipeline::wire::MonitoredField;
/// use producer::scenario::{FromClient, Intensity, Phase, RateCurve, Scenario};
///
/// let minutes = |m: u64| Duration::from_secs(60 * m);
/// let scenario = Scenario::new(
///     "surge-and-subtle",
///     Some(50.0),
///     vec![
///         Phase::normal(minutes(10)),
///         Phase::normal(minutes(5)).with_rate(RateCurve::times(3.0)),
///         Phase::normal(minutes(10)).with_rate(RateCurve::sine(40.0, 20.0, minutes(10))),
///         Phase::anomaly(MonitoredField::Country, minutes(5)).with_intensity(0.05),
///         Phase::anomaly(MonitoredField::HttpStatus, minutes(5))
///             .with_intensity(Intensity::ramp(0.0, 0.3)),
///         Phase::normal(minutes(5)).with_rate(RateCurve::ramp(20.0, 60.0)),
///     ],
/// )?;
/// assert_eq!(scenario.duration(), Some(minutes(40)));
///
/// // One quiet client among 10,000 sends 2% of the records, all with odd countries.
/// let one_bad_client = Scenario::new(
///     "one-bad-client",
///     Some(200.0),
///     vec![
///         Phase::normal(minutes(10)),
///         Phase::anomaly(MonitoredField::Country, minutes(3))
///             .with_intensity(0.02)
///             .from_client(FromClient::Picked),
///         Phase::normal(minutes(5)),
///     ],
/// )?
/// .with_clients(10_000)?;
/// assert_eq!(one_bad_client.clients, 10_000);
/// # Ok::<(), producer::scenario::ScenarioError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// What it produces.
    pub kind: PhaseKind,
    /// How long it lasts in event time; `None` runs without end (only a last, normal phase).
    pub duration: Option<Duration>,
    /// Events per second per instance over the phase; `None` takes the scenario's rate.
    pub rate: Option<RateCurve>,
    /// The share of an anomaly phase's records drawn with the anomaly's weights;
    /// [`Intensity::FULL`] (every record) for normal phases and by default.
    pub intensity: Intensity,
    /// The one client an anomaly phase's anomalous records come from; `None` (each record's
    /// client drawn from the pool) for normal phases and by default.
    pub from: Option<FromClient>,
}

impl Phase {
    /// A phase of `kind` for `duration` (`None`: without end), at the scenario's rate, at full
    /// intensity.
    pub fn new(kind: PhaseKind, duration: Option<Duration>) -> Self {
        Self {
            kind,
            duration,
            rate: None,
            intensity: Intensity::FULL,
            from: None,
        }
    }

    /// Normal traffic for `duration`.
    pub fn normal(duration: Duration) -> Self {
        Self::new(PhaseKind::Normal, Some(duration))
    }

    /// An anomaly on `field` for `duration`.
    pub fn anomaly(field: MonitoredField, duration: Duration) -> Self {
        Self::new(PhaseKind::Anomaly(field), Some(duration))
    }

    /// A phase raising `indicator` (one of the scenario's source's), for `duration`.
    pub fn inject(indicator: &'static str, duration: Duration) -> Self {
        Self::new(PhaseKind::Inject(indicator), Some(duration))
    }

    /// An anomaly on a field picked at random, for `duration`.
    pub fn random_anomaly(duration: Duration) -> Self {
        Self::new(PhaseKind::RandomAnomaly, Some(duration))
    }

    /// This phase at its own rate: a number of events per second per instance, or a
    /// [`RateCurve`] (a ramp, a sine, a multiple of the scenario's rate).
    pub fn with_rate(self, rate: impl Into<RateCurve>) -> Self {
        Self {
            rate: Some(rate.into()),
            ..self
        }
    }

    /// This anomaly phase with only a share of its records anomalous: a number (`0.05`) or an
    /// [`Intensity::ramp`]. A normal phase with an intensity is invalid.
    pub fn with_intensity(self, intensity: impl Into<Intensity>) -> Self {
        Self {
            intensity: intensity.into(),
            ..self
        }
    }

    /// This anomaly phase's anomalous records all from one client: [`FromClient::Picked`] (a
    /// quiet client of the pool, from the seed) or [`FromClient::Address`]. Its other records
    /// (below full intensity) keep their drawn clients, and its label names the client as its
    /// `entity`. Only the seed's anomaly phases take one; a normal or a source's phase with
    /// one is invalid.
    pub fn from_client(self, from: FromClient) -> Self {
        Self {
            from: Some(from),
            ..self
        }
    }
}

/// A validated list of phases.
///
/// The fields are public for inspection and for building scenarios in code; [`Scenario::new`]
/// and the other constructors validate, and [`crate::schedule::Schedule`] validates again.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Shown in logs; not part of any record.
    pub name: String,
    /// The real source whose records it makes; `None` for the seed's records.
    pub source: Option<Source>,
    /// Default events per second per instance for phases without their own rate.
    pub rate: Option<f64>,
    /// The phases, run in order; a phase's index is its `phase` in labels.
    pub phases: Vec<Phase>,
    /// How many distinct client addresses the seed's records draw from (with Zipf popularity),
    /// 1 to [`MAX_CLIENTS`]; [`CLIENT_POOL_SIZE`] by default.
    pub clients: usize,
}

impl Scenario {
    /// A validated scenario.
    pub fn new(
        name: impl Into<String>,
        rate: Option<f64>,
        phases: Vec<Phase>,
    ) -> Result<Self, ScenarioError> {
        let scenario = Self {
            name: name.into(),
            source: None,
            rate,
            phases,
            clients: CLIENT_POOL_SIZE,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// A validated scenario of `source`'s records (its phases inject that source's
    /// indicators).
    pub fn sourced(
        source: Source,
        name: impl Into<String>,
        rate: Option<f64>,
        phases: Vec<Phase>,
    ) -> Result<Self, ScenarioError> {
        let scenario = Self {
            name: name.into(),
            source: Some(source),
            rate,
            phases,
            clients: CLIENT_POOL_SIZE,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// This scenario with a pool of `clients` distinct client addresses (1 to [`MAX_CLIENTS`])
    /// instead of [`CLIENT_POOL_SIZE`], validated.
    pub fn with_clients(self, clients: usize) -> Result<Self, ScenarioError> {
        let scenario = Self { clients, ..self };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Normal traffic at `rate` events/s, for `duration` or without end.
    pub fn normal(rate: f64, duration: Option<Duration>) -> Result<Self, ScenarioError> {
        let phase = Phase::new(PhaseKind::Normal, duration);
        Self::new("normal", Some(rate), vec![phase])
    }

    /// An anomaly on `field` at `rate` events/s for `duration`.
    pub fn anomaly(
        field: MonitoredField,
        duration: Duration,
        rate: f64,
    ) -> Result<Self, ScenarioError> {
        let name = format!("anomaly-{field}");
        Self::new(name, Some(rate), vec![Phase::anomaly(field, duration)])
    }

    /// The seed's random mode: an anomaly on one of the five fields, picked uniformly (from the
    /// seed, when scheduled), at `rate` events/s for `duration`.
    pub fn random_anomaly(duration: Duration, rate: f64) -> Result<Self, ScenarioError> {
        Self::new(
            "anomaly-random",
            Some(rate),
            vec![Phase::random_anomaly(duration)],
        )
    }

    /// Checks the invariants: at least one phase; every rate positive and finite, everywhere
    /// on its curve (a sine's trough included, a ramp only on a phase with an end); every
    /// intensity in `0..=1` and only on anomaly phases; a `from` only on the seed's anomaly
    /// phases; a client pool of 1 to [`MAX_CLIENTS`]; every duration at least 1 ms; only the
    /// last phase may be open-ended, and only if it is normal (an anomaly needs an end for its
    /// label); a source's scenario injects only its indicators, the seed's only its fields.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_in(&format!("scenario `{}`", self.name))
    }

    fn validate_in(&self, origin: &str) -> Result<(), ScenarioError> {
        if let Some(rate) = self.rate {
            check_rate(rate).map_err(|error| ScenarioError::Rate {
                at: format!("{origin}: rate"),
                error,
            })?;
        }
        if !(1..=MAX_CLIENTS).contains(&self.clients) {
            return Err(ScenarioError::Clients {
                at: format!("{origin}: clients"),
                value: self.clients.to_string(),
            });
        }
        if self.phases.is_empty() {
            return Err(ScenarioError::NoPhases {
                at: origin.to_owned(),
            });
        }
        let last = self.phases.len() - 1;
        for (index, phase) in self.phases.iter().enumerate() {
            let at = || format!("{origin}: phases[{index}]");
            self.check_target(phase.kind)
                .map_err(|problem| ScenarioError::Target { at: at(), problem })?;
            if let Some(rate) = phase.rate {
                rate.check(&at(), phase.duration.is_some())?;
            }
            if phase.kind == PhaseKind::Normal {
                if phase.intensity != Intensity::FULL {
                    return Err(ScenarioError::Phase {
                        at: format!("{}: intensity", at()),
                        problem: "a normal phase has no intensity: give it to an anomaly phase \
                                  (`anomaly: country` with `intensity: 0.05`)",
                    });
                }
            } else {
                phase.intensity.check(&at())?;
            }
            if phase.from.is_some() {
                let problem = match phase.kind {
                    PhaseKind::Normal => Some(
                        "a normal phase comes from every client: give `from` to an anomaly \
                         phase (`anomaly: country` with `from: client`)",
                    ),
                    PhaseKind::Inject(_) => Some(
                        "`from` picks a client of the seed's records, and a source's records \
                         have no client pool: remove `from`, or the scenario's `source:`",
                    ),
                    PhaseKind::Anomaly(_) | PhaseKind::RandomAnomaly => None,
                };
                if let Some(problem) = problem {
                    return Err(ScenarioError::Phase {
                        at: format!("{}: from", at()),
                        problem,
                    });
                }
            }
            match phase.duration {
                Some(duration) if duration.as_millis() == 0 => {
                    return Err(ScenarioError::Duration {
                        at: at(),
                        error: InvalidDuration {
                            value: format!("{duration:?}"),
                            reason: "it must be at least 1ms".to_owned(),
                        },
                    });
                }
                Some(duration) if i64::try_from(duration.as_millis()).is_err() => {
                    return Err(ScenarioError::Duration {
                        at: at(),
                        error: InvalidDuration {
                            value: format!("{duration:?}"),
                            reason: "it is too long".to_owned(),
                        },
                    });
                }
                Some(_) => {}
                None if phase.kind != PhaseKind::Normal => {
                    return Err(ScenarioError::Phase {
                        at: at(),
                        problem: "an anomaly phase needs a duration, e.g. `duration: 5m`",
                    });
                }
                None if index != last => {
                    return Err(ScenarioError::Phase {
                        at: at(),
                        problem: "only the last phase may run without end",
                    });
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Whether `kind` fits the scenario's source; if not, what to write instead.
    fn check_target(&self, kind: PhaseKind) -> Result<(), String> {
        match (self.source, kind) {
            (_, PhaseKind::Normal) => Ok(()),
            (None, PhaseKind::Anomaly(_) | PhaseKind::RandomAnomaly) => Ok(()),
            (None, PhaseKind::Inject(indicator)) => Err(format!(
                "`{indicator}` is a source's indicator: give the scenario its `source:`"
            )),
            (Some(source), PhaseKind::Inject(indicator))
                if crate::indicators::find(source, indicator).is_some() =>
            {
                Ok(())
            }
            (Some(source), _) => Err(format!(
                "a {source} scenario injects one of its indicators: {}",
                crate::indicators::of(source).join(", ")
            )),
        }
    }

    /// The total duration, or `None` if the last phase runs without end.
    pub fn duration(&self) -> Option<Duration> {
        self.phases.iter().try_fold(Duration::ZERO, |total, phase| {
            phase.duration.map(|d| total.saturating_add(d))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_cover_the_cli_modes() {
        let normal = Scenario::normal(50.0, None).expect("valid");
        assert_eq!(normal.duration(), None);
        let minute = Duration::from_secs(60);
        let anomaly = Scenario::anomaly(MonitoredField::Country, minute, 10.0).expect("valid");
        assert_eq!(
            anomaly.phases,
            [Phase::anomaly(MonitoredField::Country, minute)]
        );
        let random = Scenario::random_anomaly(minute, 10.0).expect("valid");
        assert_eq!(random.phases[0].kind, PhaseKind::RandomAnomaly);
        let seed_style = Scenario::new(
            "normal-then-anomaly",
            Some(20.0),
            vec![
                Phase::normal(minute),
                Phase::random_anomaly(minute).with_rate(40.0),
            ],
        )
        .expect("valid");
        assert_eq!(seed_style.duration(), Some(2 * minute));
    }

    #[test]
    fn curves_and_intensities_built_in_code_are_checked_too() {
        let minute = Duration::from_secs(60);
        let cases = [
            (
                Phase::new(PhaseKind::Normal, None).with_rate(RateCurve::ramp(1.0, 2.0)),
                "phases[0]: rate: a ramp runs over the phase's duration, and this phase has none",
            ),
            (
                Phase::normal(minute).with_rate(RateCurve::sine(5.0, 1.0, Duration::ZERO)),
                "phases[0]: rate.sine.period: invalid duration",
            ),
            (
                Phase::normal(minute).with_rate(RateCurve::times(f64::NAN)),
                "invalid multiple `NaNx`",
            ),
            (
                Phase::normal(minute).with_intensity(0.5),
                "a normal phase has no intensity",
            ),
            (
                Phase::random_anomaly(minute).with_intensity(Intensity::ramp(-0.1, 0.2)),
                "phases[0]: intensity.from: invalid intensity `-0.1`",
            ),
        ];
        for (phase, says) in cases {
            let message = Scenario::new("s", Some(1.0), vec![phase])
                .expect_err("invalid")
                .to_string();
            assert!(message.contains(says), "{message}");
        }
        let open_sine =
            Phase::new(PhaseKind::Normal, None).with_rate(RateCurve::sine(5.0, 4.0, minute));
        assert!(Scenario::new("s", None, vec![open_sine]).is_ok());
    }

    #[test]
    fn only_a_last_normal_phase_may_be_open_ended() {
        let open = |kind| Phase::new(kind, None);
        let minute = Phase::normal(Duration::from_secs(60));
        let cases = [
            (vec![open(PhaseKind::Normal), minute], "only the last phase"),
            (
                vec![minute, open(PhaseKind::RandomAnomaly)],
                "needs a duration",
            ),
            (
                vec![Phase::normal(Duration::from_micros(10))],
                "at least 1ms",
            ),
        ];
        for (phases, says) in cases {
            let message = Scenario::new("s", Some(1.0), phases)
                .expect_err("invalid")
                .to_string();
            assert!(message.contains(says), "{message}");
        }
        assert!(Scenario::new("s", Some(1.0), vec![minute, open(PhaseKind::Normal)]).is_ok());
    }
}
