//! Each source end to end, in one test binary (`cargo test -p ingest --test sources`): a real
//! client of the source sends the producer's records of one scenario (normal traffic, one
//! injected indicator, normal traffic) to logwarden-ingest; the transformer's default rules, the
//! sink and the detector with the default spec's preset of that source run in-process on the
//! test's own topics and indices. Each test checks every record indexed once in the source's
//! indices, each record's indicators as its format says, and the preset monitor's alert for the
//! injected indicator at the test's webhook receiver (`run`).
//!
//! - `waf`: AWS WAF over Amazon Data Firehose (curl with the documented HTTP endpoint request).
//! - `cloudtrail`: gzip CloudTrail log files in the directory logwarden-ingest reads.
//! - `syslog`: util-linux `logger` over TCP, RFC 5424 and RFC 3164.
//! - `cloudwatch`: CloudWatch Logs subscription payloads over Firehose (curl).
//! - `splunk`: PyPI's splunk-hec-handler (`XTASK_HEC_PYTHON`, installed by `cargo xtask test`).

#[path = "../common/mod.rs"]
mod common;
mod run;

mod cloudtrail;
mod cloudwatch;
mod splunk;
mod syslog;
mod waf;
