//! Why a scenario was rejected: one error type for the file and for scenarios built in code,
//! whose messages are complete on their own so the CLI prints them as they are.

use std::path::PathBuf;

use super::MAX_CLIENTS;
use super::values::{InvalidDuration, InvalidRate};

/// Valid anomaly targets, as listed in error messages.
const VALID_TARGETS: &str = "action, httpSourceName, httpStatus, country, httpMethod, \
                             or `random` for one of them picked at random";

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
    /// A rate curve that would not stay positive, or cannot be laid out (a surge multiple that
    /// is not positive, a sine that dips to 0, a ramp without the phase's end).
    #[error("{at}: {problem}")]
    Traffic {
        /// Where, with the key (`phases[2]: rate.sine`).
        at: String,
        /// What is wrong, and what to write instead.
        problem: String,
    },
    /// An intensity outside 0..=1 (above 0 for a constant one), or one on a normal phase.
    #[error("{at}: {problem}")]
    Intensity {
        /// Where, with the key (`phases[3]: intensity.to`).
        at: String,
        /// What is wrong, and what to write instead.
        problem: String,
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
    /// An anomaly target that does not fit the scenario's source (a seed field in a source's
    /// scenario, an indicator of another source, or an indicator without a source).
    #[error("{at}: {problem}")]
    Target {
        /// Where.
        at: String,
        /// What is wrong, and the valid targets.
        problem: String,
    },
    /// A source the producer has no generator for.
    #[error(
        "{at}: unknown source `{value}`; valid sources: waf, cloudtrail, syslog, cloudwatch, \
         splunk (or no `source:` for the seed's records)"
    )]
    UnknownSource {
        /// Where.
        at: String,
        /// The name given.
        value: String,
    },
    /// A client pool size outside 1 to [`MAX_CLIENTS`].
    #[error(
        "{at}: invalid client pool size `{value}`: `clients:` is how many distinct client \
         addresses the records draw from, 1 to {MAX_CLIENTS} (e.g. `clients: 10000`; 300 when \
         absent)"
    )]
    Clients {
        /// Where (`demo.yaml: clients`).
        at: String,
        /// The size given.
        value: String,
    },
    /// A phase's `from:` that is neither `client` nor `{client: <IPv4 address>}`.
    #[error(
        "{at}: {problem}: write `from: client` (a quiet client of the pool, picked from the \
         seed) or `from: {{client: 198.51.100.7}}` (that address)"
    )]
    From {
        /// Where (`demo.yaml: phases[1]: from`).
        at: String,
        /// What is wrong with the value given.
        problem: String,
    },
    /// A scenario without phases.
    #[error("{at}: a scenario needs at least one phase under `phases:`")]
    NoPhases {
        /// Where.
        at: String,
    },
}
