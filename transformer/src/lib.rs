//! The transformer's pure core: declarative indicator rules and the per-record transform that
//! applies them, plus the offline `apply` and `check` commands built on them.
//!
//! The seed's Firehose Lambda hard-coded five fields; here a rules file ([`rules`]) declares
//! which fields are monitored, which values are good or bad, and what happens to a value that is
//! neither or a field that is missing. [`rules::CompiledRules::apply`] ([`transform`]) turns one
//! raw record into its enriched form (the original bytes plus indicators, `@timestamp` from
//! [`timestamp`] and `event_id`) or a dead-letter [`transform::Rejection`]. Nothing here touches
//! Kafka, the clock or the network, so the service, the offline commands ([`offline`]), the
//! tests and the benchmark all run the very same code.

//!
//! Imports run one way: `transform` uses `rules`, the private JSON scanner (`json`) and
//! `timestamp`; `rules` knows neither the scanner nor the transform; the scanner knows nothing
//! of the crate. `escape` (JSON string escaping) is the one thing the rules and the transform
//! share.

mod escape;
mod json;
pub mod offline;
pub mod rules;
pub mod service;
pub mod settings;
pub mod timestamp;
pub mod transform;

pub use rules::{CompiledRules, Rules, RulesError, RulesSummary};
pub use transform::Rejection;
