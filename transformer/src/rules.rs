//! Declarative indicator rules: the rules file, its validation, and the compiled form the
//! transform runs.
//!
//! The seed hard-coded its five monitored fields in Python; here a YAML file declares them, so
//! "monitor any field in your log file" is a matter of configuration. Input goes through two
//! stages, like the services' config: [`Rules`] is the file as written (serde, unknown keys
//! rejected), and [`Rules::compile`] checks it and builds [`CompiledRules`], once, at start-up.
//! Every mistake is reported as a [`RulesError`] naming the key path (`fields[2].bad.regex`),
//! what is wrong and the fix. The compiled form is shaped for the per-record hot path: paths are
//! split into a tree so the transform descends only into objects that hold a monitored field,
//! keys and short values compare by fingerprint, regexes are compiled, status classes are a
//! bitmap, and the indicators' output is a ready JSON template. This module does no IO except
//! [`CompiledRules::load`] and [`Rules::load`] reading the file.
//!
//! One job per file: `file` is the schema as written, `error` what can be wrong with it,
//! `compile` the checks that turn it into [`CompiledRules`] (`compiled`), `matcher` the classes'
//! hot-path matching, `tree` the monitored paths as a tree, and `summary` what `check` prints.
//! Nothing here knows the JSON scanner or the transform: the transform reads a record and asks
//! these types what the values it found mean.
//!
//! # The rules file
//!
//! ```yaml
//! fields:
//!   - path: httpRequest.country     # dotted path into nested objects
//!     good:                         # optional; at least one of good and bad
//!       indicator: K_country        # set to 1 when the value is in this class, else 0
//!       values: [US, UK, IN]        # exact text of a string, an integer, or true/false
//!     bad:
//!       indicator: UNK_country
//!       values: [XX, YY, ZZ, WW]
//!     unknown: bad                  # a value in neither class: bad | neither | dead_letter
//!     missing: dead_letter          # absent or null:            bad | neither | dead_letter
//!     wrong_type: dead_letter       # optional, this default: an object or array, or a
//!                                   # parent on the path that is not an object
//!   - path: httpStatus
//!     good: { indicator: G_httpstatus, status: [2xx, 3xx] }  # classes or codes like 404
//!     bad: { indicator: B_httpstatus, status: [4xx, 5xx] }
//!     unknown: neither
//!     missing: dead_letter
//!   - path: latencyMs
//!     bad: { indicator: slow, range: { min: 1000 } }          # inclusive bounds
//!     unknown: neither
//!     missing: neither
//!   - path: httpRequest.uri
//!     bad: { indicator: admin_uri, regex: '^/admin(/|$)' }    # unanchored search
//!     unknown: neither
//!     missing: dead_letter
//! ```
//!
//! A class matches a value when any of its matchers does:
//! - `values`: the value's text equals an entry: a JSON string's (unescaped) text, an integer's
//!   decimal digits, or `true`/`false`. So `values: [200]` matches both `200` and `"200"`.
//! - `status`: HTTP status classes `1xx`..`5xx` or codes `100`..`599`; matches an integer or a
//!   string of exactly three digits.
//! - `range`: `min` and/or `max`, both inclusive; matches a number, or a string holding one.
//! - `regex`: the `regex` crate's syntax, searched (not anchored) in string values.
//!
//! A value matching both classes counts as bad, so a broad good class never hides an anomaly.
//! The policies say what a value outside both classes, a missing (or `null`) field, and a value
//! of the wrong type do: `bad` sets the bad class's indicator (the field must have one),
//! `neither` leaves both indicators 0, and `dead_letter` sends the record to the dead-letter
//! topic with reason `unknown_value`, `missing_field` or `wrong_type`.
//!
//! Reserved names: `timestamp` (read for `@timestamp`), `@timestamp` and `event_id` (written by
//! the transformer) cannot be monitored paths or indicator names, and an indicator cannot be
//! named like the first segment of a monitored path. Keys containing a dot cannot be addressed;
//! arrays on a path are a `wrong_type`.

mod compile;
mod compiled;
mod error;
mod file;
mod matcher;
mod summary;
mod tree;

pub use compiled::CompiledRules;
pub use error::RulesError;
pub use file::{
    ClassRule, FieldRule, Policy, RangeRule, Rules, Scalar, SourceRules, TimestampRule, WhenRule,
};
pub use summary::{ClassSummary, FieldSummary, RulesSummary, SectionSummary};

pub(crate) use compiled::Section;
pub(crate) use matcher::{Class, CompiledField, Value};
pub(crate) use tree::{Node, Target};

/// The default rules: the seed's ten indicators and every source's preset
/// (`transformer/rules/default.yaml`, embedded).
pub const DEFAULT_RULES_YAML: &str = include_str!("../rules/default.yaml");

/// The largest record accepted unless [`CompiledRules::with_max_record_bytes`] says otherwise:
/// 1 MiB, Kafka's default `message.max.bytes`.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The top-level field the event time is read from.
pub const TIMESTAMP_FIELD: &str = "timestamp";

/// The field a source's records carry their source in (`waf`, `syslog`, ...); records without
/// a source header get none, so the seed's documents are unchanged.
pub const SOURCE_OUTPUT_FIELD: &str = pipeline::wire::SOURCE_FIELD;

/// The field the event time is written to, as RFC 3339.
pub const TIMESTAMP_OUTPUT_FIELD: &str = "@timestamp";

/// Where the default rules come from, as error messages name it.
const DEFAULT_ORIGIN: &str = "default rules (transformer/rules/default.yaml)";

/// Where rules given as text come from, as error messages name it.
const TEXT_ORIGIN: &str = "rules";
