//! The producer: the seed's WAF log generator, faithful and controllable, with ground truth for
//! every injected anomaly.
//!
//! The generation core is pure (no IO but reading a scenario file, no clock, no thread RNG):
//!
//! - [`model`]: the seed's value sets and normal and anomaly weights, as data.
//! - [`generate`]: [`generate::Generator`] turns an event into a [`pipeline::wire::RawLog`];
//!   [`generate::SourceGenerator`] makes the real sources' records (WAF, CloudTrail, syslog,
//!   CloudWatch Logs, Splunk HEC), with [`indicators`] named as the presets' indicator fields.
//! - [`scenario`]: what to produce, as phases (normal, or an anomaly on a field), from YAML or
//!   code.
//! - [`schedule`]: a scenario laid out in event time: the events and the [`pipeline::wire::Label`]s.
//! - `rng`: the seeded random streams both [`generate`] and [`schedule`] draw from; `clients`:
//!   the client address pool both draw from (records, and the client an entity phase picks).
//!
//! Around it, the service: [`settings`] (config, flags, validation), [`output`] (the `raw` and
//! `labels` topics with pipelined deliveries, or NDJSON on stdout) and [`run`] (pacing, labels,
//! drain).
//!
//! ```
//! use producer::{generate::Generator, scenario::Scenario, schedule::{Options, Schedule}};
//! use std::time::Duration;
//!
//! let scenario = Scenario::anomaly(
//!     pipeline::wire::MonitoredField::Country,
//!     Duration::from_secs(2),
//!     5.0,
//! )?;
//! let schedule = Schedule::live(&scenario, 1_700_000_000_000, &Options::default())?;
//! let mut generator = Generator::new(42, "producer-0", "run-1")?;
//! let records: Vec<_> = schedule.events().map(|event| generator.record(&event)).collect();
//! assert_eq!(records.len(), 10);
//! assert_eq!(schedule.labels("run-1", "producer-0").len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clients;
pub mod generate;
pub mod indicators;
pub mod model;
pub mod output;
mod rng;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod settings;
