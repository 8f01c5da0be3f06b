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
//! Durations are written as everywhere else in logwarden (the spec, the detector's and the
//! provisioner's flags): humantime's grammar, numbers with units, combinable (`90s`, `5m`,
//! `1h30m`, `1h 30m`, `500ms`, `2d`).
//! Rates are events per second per producer instance (replicas each produce the rate).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pipeline::wire::MonitoredField;
use serde::Deserialize;

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
}

/// One phase of a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// What it produces.
    pub kind: PhaseKind,
    /// How long it lasts in event time; `None` runs without end (only a last, normal phase).
    pub duration: Option<Duration>,
    /// Events per second per instance; `None` takes the scenario's rate.
    pub rate: Option<f64>,
}

impl Phase {
    /// Normal traffic for `duration`.
    pub fn normal(duration: Duration) -> Self {
        Self {
            kind: PhaseKind::Normal,
            duration: Some(duration),
            rate: None,
        }
    }

    /// An anomaly on `field` for `duration`.
    pub fn anomaly(field: MonitoredField, duration: Duration) -> Self {
        Self {
            kind: PhaseKind::Anomaly(field),
            duration: Some(duration),
            rate: None,
        }
    }

    /// An anomaly on a field picked at random, for `duration`.
    pub fn random_anomaly(duration: Duration) -> Self {
        Self {
            kind: PhaseKind::RandomAnomaly,
            duration: Some(duration),
            rate: None,
        }
    }

    /// This phase at its own `rate` (events per second per instance).
    pub fn with_rate(self, rate: f64) -> Self {
        Self {
            rate: Some(rate),
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
    /// Default events per second per instance for phases without their own rate.
    pub rate: Option<f64>,
    /// The phases, run in order; a phase's index is its `phase` in labels.
    pub phases: Vec<Phase>,
}

/// Valid anomaly targets, as listed in error messages.
const VALID_TARGETS: &str = "action, httpSourceName, httpStatus, country, httpMethod, \
                             or `random` for one of them picked at random";

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

/// Why a scenario was rejected. Each message names the bad value, where it is (`at`, such as
/// `demo.yaml: phases[1]`), and the valid values; it is complete on its own (no `source()` to
/// append), so a CLI prints it as is.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// Not YAML, not the scenario's shape, or an unknown key (the parser's message names the
    /// key, the expected keys and the line).
    #[error("{origin}: {message}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// An anomaly target that is not a monitored field or `random`.
    #[error("{at}: unknown field `{value}`; valid fields: {VALID_TARGETS}")]
    UnknownField {
        /// Where.
        at: String,
        /// The name given.
        value: String,
    },
    /// A rate that is zero, negative or not finite.
    #[error("{at}: {error}")]
    Rate {
        /// Where.
        at: String,
        /// The rate given.
        error: InvalidRate,
    },
    /// A duration that does not parse or is zero.
    #[error("{at}: {error}")]
    Duration {
        /// Where.
        at: String,
        /// The duration given.
        error: InvalidDuration,
    },
    /// A phase that is neither or both of `normal` and `anomaly`, or is missing its duration.
    #[error("{at}: {problem}")]
    Phase {
        /// Where.
        at: String,
        /// What is wrong, and what to write instead.
        problem: &'static str,
    },
    /// A scenario without phases.
    #[error("{at}: a scenario needs at least one phase under `phases:`")]
    NoPhases {
        /// Where.
        at: String,
    },
}

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

impl Scenario {
    /// A validated scenario.
    pub fn new(
        name: impl Into<String>,
        rate: Option<f64>,
        phases: Vec<Phase>,
    ) -> Result<Self, ScenarioError> {
        let scenario = Self {
            name: name.into(),
            rate,
            phases,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Normal traffic at `rate` events/s, for `duration` or without end.
    pub fn normal(rate: f64, duration: Option<Duration>) -> Result<Self, ScenarioError> {
        let phase = Phase {
            kind: PhaseKind::Normal,
            duration,
            rate: None,
        };
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

    /// Reads and validates a scenario file (see the module docs for its format). The name
    /// defaults to the file's stem.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            path: path.to_owned(),
            error,
        })?;
        let stem = path
            .file_stem()
            .map_or_else(|| "scenario".into(), |stem| stem.to_string_lossy());
        Self::parse(&text, &path.display().to_string(), &stem)
    }

    /// Parses and validates a scenario from YAML text (see the module docs for its format).
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        Self::parse(text, "scenario", "scenario")
    }

    /// Parses `text`, naming `origin` in errors and `default_name` if the text has none.
    fn parse(text: &str, origin: &str, default_name: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario =
            serde_norway::from_str(text).map_err(|error| ScenarioError::Syntax {
                origin: origin.to_owned(),
                message: error.to_string(),
            })?;
        let phases = raw
            .phases
            .into_iter()
            .enumerate()
            .map(|(index, phase)| phase.validate(&format!("{origin}: phases[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let scenario = Self {
            name: raw.name.unwrap_or_else(|| default_name.to_owned()),
            rate: raw.rate,
            phases,
        };
        scenario.validate_in(origin)?;
        Ok(scenario)
    }

    /// Checks the invariants: at least one phase; every rate positive and finite; every
    /// duration at least 1 ms; only the last phase may be open-ended, and only if it is normal
    /// (an anomaly needs an end for its label).
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
        if self.phases.is_empty() {
            return Err(ScenarioError::NoPhases {
                at: origin.to_owned(),
            });
        }
        let last = self.phases.len() - 1;
        for (index, phase) in self.phases.iter().enumerate() {
            let at = || format!("{origin}: phases[{index}]");
            if let Some(rate) = phase.rate {
                check_rate(rate).map_err(|error| ScenarioError::Rate { at: at(), error })?;
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

    /// The total duration, or `None` if the last phase runs without end.
    pub fn duration(&self) -> Option<Duration> {
        self.phases.iter().try_fold(Duration::ZERO, |total, phase| {
            phase.duration.map(|d| total.saturating_add(d))
        })
    }
}

/// The scenario file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    rate: Option<f64>,
    phases: Vec<RawPhase>,
}

/// One phase as written: exactly one of `normal` (with the duration as its value) and
/// `anomaly` (with the field as its value and a `duration` key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    normal: Option<Text>,
    anomaly: Option<String>,
    duration: Option<Text>,
    rate: Option<f64>,
}

impl RawPhase {
    fn validate(self, at: &str) -> Result<Phase, ScenarioError> {
        let duration = |text: &Text| {
            parse_duration(&text.0).map_err(|error| ScenarioError::Duration {
                at: at.to_owned(),
                error,
            })
        };
        let phase = |problem| ScenarioError::Phase {
            at: at.to_owned(),
            problem,
        };
        let (kind, duration) = match (&self.normal, &self.anomaly, &self.duration) {
            (Some(_), Some(_), _) => {
                return Err(phase(
                    "a phase is either `normal: <duration>` or `anomaly: <field>`, not both",
                ));
            }
            (None, None, _) => {
                return Err(phase(
                    "a phase needs `normal: <duration>` or `anomaly: <field>` with `duration: <duration>`",
                ));
            }
            (Some(_), None, Some(_)) => {
                return Err(phase(
                    "a normal phase takes its duration as its value (`normal: 2m`), not a `duration` key",
                ));
            }
            (None, Some(_), None) => {
                return Err(phase(
                    "an anomaly phase needs a duration, e.g. `duration: 5m`",
                ));
            }
            (Some(normal), None, None) => (PhaseKind::Normal, duration(normal)?),
            (None, Some(target), Some(text)) => (target_kind(target, at)?, duration(text)?),
        };
        Ok(Phase {
            kind,
            duration: Some(duration),
            rate: self.rate,
        })
    }
}

/// The phase kind for an anomaly target name: a monitored field (by name or path, any case) or
/// `random`.
fn target_kind(target: &str, at: &str) -> Result<PhaseKind, ScenarioError> {
    if target.trim().eq_ignore_ascii_case("random") {
        return Ok(PhaseKind::RandomAnomaly);
    }
    MonitoredField::parse(target.trim())
        .map(PhaseKind::Anomaly)
        .map_err(|_| ScenarioError::UnknownField {
            at: at.to_owned(),
            value: target.to_owned(),
        })
}

/// A scalar read as text, so that `normal: 30` reaches the duration parser (and gets its
/// "time unit needed" message) instead of a type error.
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `30s` or `5m`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EXAMPLE: &str = "\
name: five-fields
rate: 50          # default events/s for phases without their own
phases:
  - normal: 2m
  - anomaly: country
    duration: 3m
    rate: 80
  - normal: 1m
  - anomaly: random
    duration: 1m
";

    fn error(text: &str) -> String {
        Scenario::from_yaml(text)
            .expect_err("the scenario is rejected")
            .to_string()
    }

    #[test]
    fn parses_the_documented_example() {
        let scenario = Scenario::from_yaml(EXAMPLE).expect("valid");
        let minutes = |m: u64| Some(Duration::from_secs(60 * m));
        assert_eq!(
            scenario,
            Scenario {
                name: "five-fields".into(),
                rate: Some(50.0),
                phases: vec![
                    Phase {
                        kind: PhaseKind::Normal,
                        duration: minutes(2),
                        rate: None
                    },
                    Phase {
                        kind: PhaseKind::Anomaly(MonitoredField::Country),
                        duration: minutes(3),
                        rate: Some(80.0),
                    },
                    Phase {
                        kind: PhaseKind::Normal,
                        duration: minutes(1),
                        rate: None
                    },
                    Phase {
                        kind: PhaseKind::RandomAnomaly,
                        duration: minutes(1),
                        rate: None
                    },
                ],
            }
        );
        assert_eq!(scenario.duration(), minutes(7));
    }

    #[test]
    fn the_module_docs_example_parses() {
        let docs = include_str!("scenario.rs");
        let start = docs.find("//! ```yaml\n").expect("has an example") + "//! ```yaml\n".len();
        let end = start + docs[start..].find("//! ```\n").expect("closed");
        let yaml: String = docs[start..end]
            .lines()
            .map(|line| line.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
            .collect();
        let scenario = Scenario::from_yaml(&yaml).expect("the documented example is valid");
        assert_eq!(scenario.phases.len(), 4);
    }

    #[test]
    fn fields_are_named_as_users_type_them() {
        for (target, kind) in [
            ("action", PhaseKind::Anomaly(MonitoredField::Action)),
            (
                "httpSourceName",
                PhaseKind::Anomaly(MonitoredField::HttpSourceName),
            ),
            ("httpstatus", PhaseKind::Anomaly(MonitoredField::HttpStatus)),
            (
                "httpRequest.country",
                PhaseKind::Anomaly(MonitoredField::Country),
            ),
            ("httpMethod", PhaseKind::Anomaly(MonitoredField::HttpMethod)),
            ("Random", PhaseKind::RandomAnomaly),
        ] {
            let text = format!("rate: 1\nphases:\n  - anomaly: {target}\n    duration: 1s\n");
            let scenario = Scenario::from_yaml(&text).expect("valid");
            assert_eq!(scenario.phases[0].kind, kind, "{target}");
        }
    }

    #[test]
    fn an_unknown_field_is_named_with_the_valid_ones() {
        let message = error("phases:\n  - normal: 1m\n  - anomaly: colour\n    duration: 1m\n");
        assert!(message.contains("phases[1]"), "{message}");
        assert!(message.contains("unknown field `colour`"), "{message}");
        for valid in [
            "action",
            "httpSourceName",
            "httpStatus",
            "country",
            "httpMethod",
            "random",
        ] {
            assert!(message.contains(valid), "{message} lacks {valid}");
        }
    }

    #[test]
    fn zero_and_negative_rates_are_rejected_by_value() {
        for (text, shown, at) in [
            (
                "rate: 0\nphases:\n  - normal: 1m\n",
                "`0`",
                "scenario: rate",
            ),
            (
                "rate: -5\nphases:\n  - normal: 1m\n",
                "`-5`",
                "scenario: rate",
            ),
            (
                "phases:\n  - normal: 1m\n    rate: -5\n",
                "`-5`",
                "phases[0]",
            ),
            (
                "phases:\n  - normal: 1m\n    rate: .nan\n",
                "`NaN`",
                "phases[0]",
            ),
        ] {
            let message = error(text);
            assert!(message.contains(shown), "{message}");
            assert!(message.contains(at), "{message}");
            assert!(message.contains("greater than 0"), "{message}");
        }
        assert!(Scenario::normal(0.0, None).is_err());
        assert!(Scenario::anomaly(MonitoredField::Action, Duration::from_secs(1), -5.0).is_err());
    }

    #[test]
    fn bad_durations_are_rejected_with_the_units() {
        for (duration, shown, reason) in [
            ("5x", "`5x`", "unknown time unit \"x\""),
            ("30", "`30`", "time unit needed, for example 30sec or 30ms"),
            ("0s", "`0s`", "it must be longer than 0"),
            ("0", "`0`", "it must be longer than 0"),
            ("soon", "`soon`", "expected number at 0"),
            ("''", "``", "value was empty"),
            (
                "99999999999999999999d",
                "`99999999999999999999d`",
                "number is too large",
            ),
            ("999999999y", "`999999999y`", "it is too long"),
        ] {
            let message = error(&format!("rate: 1\nphases:\n  - normal: {duration}\n"));
            assert!(
                message.contains(&format!("phases[0]: invalid duration {shown}: {reason}")),
                "{message}"
            );
            assert!(
                message.ends_with("; write numbers with units (ms, s, m, h, d, ...), e.g. `500ms`, `30s`, `5m`, `1h30m`"),
                "{message}"
            );
        }
    }

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

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let message = error("rate: 1\nphases:\n  - normal: 1m\n    colour: red\n");
        assert!(message.contains("unknown field `colour`"), "{message}");
        assert!(
            message.contains("anomaly"),
            "lists the valid keys: {message}"
        );
        let message = error("rate: 1\nspeed: 3\nphases:\n  - normal: 1m\n");
        assert!(message.contains("unknown field `speed`"), "{message}");
    }

    #[test]
    fn malformed_phases_say_what_to_write() {
        for (phases, says) in [
            ("  - anomaly: action\n", "needs a duration"),
            (
                "  - normal: 1m\n    anomaly: action\n    duration: 1m\n",
                "not both",
            ),
            (
                "  - rate: 5\n",
                "needs `normal: <duration>` or `anomaly: <field>`",
            ),
            (
                "  - normal: 1m\n    duration: 1m\n",
                "takes its duration as its value",
            ),
        ] {
            let message = error(&format!("rate: 1\nphases:\n{phases}"));
            assert!(
                message.contains("phases[0]") && message.contains(says),
                "{message}"
            );
        }
        assert!(error("rate: 1\nphases: []\n").contains("at least one phase"));
        assert!(error("rate: 1\n").contains("phases"));
        assert!(error("- 1\n- 2\n").starts_with("scenario: "));
    }

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
    fn only_a_last_normal_phase_may_be_open_ended() {
        let open = |kind| Phase {
            kind,
            duration: None,
            rate: None,
        };
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

    #[test]
    fn files_are_read_and_named_after_their_stem() {
        let path = std::env::temp_dir().join(format!("logwarden-{}-demo.yaml", std::process::id()));
        std::fs::write(&path, "rate: 5\nphases:\n  - normal: 1s\n").expect("writes");
        let scenario = Scenario::load(&path);
        std::fs::remove_file(&path).expect("removes");
        let scenario = scenario.expect("valid");
        assert!(scenario.name.ends_with("-demo"), "{}", scenario.name);

        let missing = Path::new("/nonexistent/logwarden/missing.yaml");
        let message = Scenario::load(missing).expect_err("unreadable").to_string();
        assert!(message.contains("cannot read scenario file /nonexistent/logwarden/missing.yaml"));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
            let _ = Scenario::from_yaml(&text);
            let _ = parse_duration(&text);
        }

        #[test]
        fn parsing_arbitrary_values_in_a_scenario_never_panics(
            value in "[ -~]{0,20}",
            key in prop::sample::select(vec!["normal", "anomaly", "duration", "rate", "name"]),
        ) {
            let text = format!("rate: 1\nphases:\n  - normal: 1m\n  - {key}: {value}\n");
            let _ = Scenario::from_yaml(&text);
        }
    }
}
