//! The fault suite's shared harness: the pipeline (transformer, sink, detector) run in-process
//! on a test's own topics and indices of the real stack, traffic paced in event time, and the
//! verdict a user would check after a fault: what went into `raw` is exactly what OpenSearch
//! holds (id sets and counts), the detector scored every interval once with exactly what
//! OpenSearch's date histogram holds, and no interval was flagged.
//!
//! The faults themselves (restarting Kafka or OpenSearch, freezing OpenSearch) come from
//! `pipeline::testkit::faults`, through the stack tooling. Each test in `tests/` injects one
//! fault and is the only test of its binary, since every other test shares those servers.
//!
//! The parts: `stages` (the three services in-process, stopped and restarted), `traffic` (raw
//! records at a steady rate, stamped on a fixed grid so each interval gets the same count),
//! `search` (reading OpenSearch back: ids, the date histogram, results), `verdict` (waiting for
//! the pipeline to settle, then comparing). `verdict` uses the other three; they use none of
//! each other. `prometheus` runs a real Prometheus scraping the stages (the observability test).

pub mod prometheus;
pub mod search;
pub mod stages;
pub mod traffic;
pub mod verdict;

pub use stages::{Pipeline, Shape};
pub use traffic::Sent;
pub use verdict::{Verdict, restart_detector_then_settle, settle, settle_with};
