//! The scenario file (its format is in [`super`]'s docs): a raw serde form that rejects unknown
//! keys and reads durations as text, turned phase by phase into a [`Scenario`] whose errors say
//! where in the file the bad value is. The only IO in the scenario module, reading the file,
//! happens here.

use std::fmt;
use std::path::Path;

use pipeline::wire::{MonitoredField, Source};
use serde::Deserialize;

use super::error::ScenarioError;
use super::values::parse_duration;
use super::{CLIENT_POOL_SIZE, FromClient, Intensity, Phase, PhaseKind, RateCurve, Scenario};

impl Scenario {
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
        let source = raw
            .source
            .as_deref()
            .map(|name| {
                Source::parse(name.trim())
                    .filter(|s| crate::indicators::GENERATED.contains(s))
                    .ok_or_else(|| ScenarioError::UnknownSource {
                        at: format!("{origin}: source"),
                        value: name.to_owned(),
                    })
            })
            .transpose()?;
        let phases = raw
            .phases
            .into_iter()
            .enumerate()
            .map(|(index, phase)| phase.validate(&format!("{origin}: phases[{index}]"), source))
            .collect::<Result<Vec<_>, _>>()?;
        let clients = match raw.clients {
            None => CLIENT_POOL_SIZE,
            Some(clients) => usize::try_from(clients)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ScenarioError::Clients {
                    at: format!("{origin}: clients"),
                    value: clients.to_string(),
                })?,
        };
        let scenario = Self {
            name: raw.name.unwrap_or_else(|| default_name.to_owned()),
            source,
            rate: raw.rate,
            phases,
            clients,
        };
        scenario.validate_in(origin)?;
        Ok(scenario)
    }
}

/// The scenario file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    source: Option<String>,
    rate: Option<f64>,
    clients: Option<i64>,
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
    rate: Option<RawRate>,
    intensity: Option<RawIntensity>,
    from: Option<RawFrom>,
}

impl RawPhase {
    fn validate(self, at: &str, source: Option<Source>) -> Result<Phase, ScenarioError> {
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
            (None, Some(target), Some(text)) => (target_kind(target, at, source)?, duration(text)?),
        };
        let rate = self.rate.map(|rate| rate.curve(at)).transpose()?;
        let from = self.from.map(|from| from.client(at)).transpose()?;
        Ok(Phase {
            kind,
            duration: Some(duration),
            rate,
            intensity: self
                .intensity
                .map_or(Intensity::FULL, RawIntensity::intensity),
            from,
        })
    }
}

/// How to write a phase's rate, as shown in error messages.
const RATE_HELP: &str = "write events per second (`50`), a multiple of the scenario's rate \
                         (`3x`), a ramp (`{from: 20, to: 60}`) or a cycle (`{sine: {mean: 40, \
                         amplitude: 20, period: 10m}}`)";

/// A phase's `rate:` as written: a number, a multiple (`3x`), or a curve's map. Which of the
/// curve's keys go together, and the values' ranges, are checked after parsing, so the errors
/// name the phase and say what to write.
#[derive(Debug)]
enum RawRate {
    Number(f64),
    Text(String),
    Curve(RawCurve),
}

/// A rate curve's map: `from` and `to` (a ramp), or `sine`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCurve {
    from: Option<f64>,
    to: Option<f64>,
    sine: Option<RawSine>,
}

/// A sine cycle's keys, all required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSine {
    mean: f64,
    amplitude: f64,
    period: Text,
}

impl RawRate {
    /// The curve it describes; its values are checked with the scenario.
    fn curve(self, at: &str) -> Result<RateCurve, ScenarioError> {
        let fail = |problem: String| ScenarioError::Traffic {
            at: format!("{at}: rate"),
            problem,
        };
        match self {
            Self::Number(rate) => Ok(RateCurve::Constant(rate)),
            Self::Text(text) => {
                let trimmed = text.trim();
                if let Ok(rate) = trimmed.parse::<f64>() {
                    return Ok(RateCurve::Constant(rate));
                }
                trimmed
                    .strip_suffix(['x', 'X'])
                    .and_then(|factor| factor.trim().parse::<f64>().ok())
                    .map(RateCurve::Times)
                    .ok_or_else(|| fail(format!("invalid rate `{text}`: {RATE_HELP}")))
            }
            Self::Curve(RawCurve {
                from: Some(from),
                to: Some(to),
                sine: None,
            }) => Ok(RateCurve::Ramp { from, to }),
            Self::Curve(RawCurve {
                from: None,
                to: None,
                sine: Some(sine),
            }) => {
                let period =
                    parse_duration(&sine.period.0).map_err(|error| ScenarioError::Duration {
                        at: format!("{at}: rate.sine.period"),
                        error,
                    })?;
                Ok(RateCurve::Sine {
                    mean: sine.mean,
                    amplitude: sine.amplitude,
                    period,
                })
            }
            Self::Curve(RawCurve { sine: Some(_), .. }) => Err(fail(
                "a rate is a ramp (`{from: 20, to: 60}`) or a cycle (`{sine: {...}}`), not both"
                    .to_owned(),
            )),
            Self::Curve(_) => Err(fail(
                "a ramp needs both ends: `{from: 20, to: 60}` (events per second at the phase's \
                 start and end)"
                    .to_owned(),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a rate: {RATE_HELP}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawRate, E> {
                Ok(RawRate::Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawRate, E> {
                Ok(RawRate::Number(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawRate, A::Error> {
                RawCurve::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawRate::Curve)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A phase's `intensity:` as written: a share, or a ramp's map.
#[derive(Debug)]
enum RawIntensity {
    Share(f64),
    Ramp(RawIntensityRamp),
}

/// An intensity ramp's keys, both required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntensityRamp {
    from: f64,
    to: f64,
}

impl RawIntensity {
    /// The intensity it describes; its values are checked with the scenario.
    fn intensity(self) -> Intensity {
        match self {
            Self::Share(share) => Intensity::Constant(share),
            Self::Ramp(RawIntensityRamp { from, to }) => Intensity::Ramp { from, to },
        }
    }
}

impl<'de> Deserialize<'de> for RawIntensity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawIntensity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an intensity: the share of the phase's records that are anomalous, from 0 \
                     to 1 (`0.05`), or a ramp (`{from: 0, to: 0.3}`)",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawIntensity, E> {
                Ok(RawIntensity::Share(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawIntensity, E> {
                Ok(RawIntensity::Share(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawIntensity, E> {
                Ok(RawIntensity::Share(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawIntensity, A::Error> {
                RawIntensityRamp::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawIntensity::Ramp)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A phase's `from:` as written: `client`, or a map naming the client.
#[derive(Debug)]
enum RawFrom {
    Text(String),
    Named(RawNamedClient),
}

/// `from: {client: <address>}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedClient {
    client: String,
}

impl RawFrom {
    /// The client it names; an unknown word or an address that is not IPv4 is an error naming
    /// the key.
    fn client(self, at: &str) -> Result<FromClient, ScenarioError> {
        let fail = |problem: String| ScenarioError::From {
            at: format!("{at}: from"),
            problem,
        };
        match self {
            Self::Text(text) if text.trim().eq_ignore_ascii_case("client") => {
                Ok(FromClient::Picked)
            }
            Self::Text(text) => Err(fail(format!("unknown `from` value `{text}`"))),
            Self::Named(RawNamedClient { client }) => {
                client.trim().parse().map(FromClient::Address).map_err(|_| {
                    fail(format!(
                        "invalid client address `{client}`, not an IPv4 address"
                    ))
                })
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawFrom {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFrom;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "the client the anomaly comes from: `client` (a quiet client of the pool) \
                     or `{client: 198.51.100.7}`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawFrom, E> {
                Ok(RawFrom::Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawFrom, E> {
                Ok(RawFrom::Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawFrom, E> {
                Ok(RawFrom::Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawFrom, E> {
                Ok(RawFrom::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawFrom, E> {
                Ok(RawFrom::Text(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawFrom, A::Error> {
                RawNamedClient::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawFrom::Named)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The phase kind for an anomaly target name: with a source, one of its indicators (exact);
/// without, a monitored field (by name or path, any case) or `random`.
fn target_kind(target: &str, at: &str, source: Option<Source>) -> Result<PhaseKind, ScenarioError> {
    if let Some(source) = source {
        return crate::indicators::find(source, target.trim())
            .map(PhaseKind::Inject)
            .ok_or_else(|| ScenarioError::Target {
                at: at.to_owned(),
                problem: format!(
                    "`{target}` is not a {source} indicator; valid: {}",
                    crate::indicators::of(source).join(", ")
                ),
            });
    }
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
mod tests;
