//! `logwarden-ingest`: receivers that accept logs the way senders already send them and write
//! each record to the `raw` topic with its source in a header (`pipeline::wire::SOURCE_HEADER`).
//!
//! - [`http`]: one listener for [`hec`] (Splunk HTTP Event Collector), [`firehose`] (Amazon
//!   Data Firehose HTTP endpoint delivery, CloudWatch Logs subscriptions unpacked) and
//!   [`ndjson`]; a sender is answered only after Kafka acknowledged its records; 503 with
//!   `Retry-After` when Kafka cannot keep up; 413 beyond the size limits.
//! - [`syslog`]: TCP (newline and octet-counting framing, optional TLS) and UDP; messages
//!   parsed into fields, what cannot be parsed kept as the message. TCP reads pause while Kafka
//!   has not acknowledged what was read.
//! - [`files`]: log files from a directory (CloudTrail gzip JSON, NDJSON, gzip NDJSON), the
//!   names done checkpointed.
//! - [`writer`]: the producer every receiver shares.
//!
//! The parsers (`hec::parse`, `firehose::decode`, `ndjson::lines`, `syslog::frame`,
//! `syslog::parse`) are pure: no IO, no panics on input.

pub mod auth;
pub mod files;
pub mod firehose;
pub mod hec;
pub mod http;
pub mod metrics;
pub mod ndjson;
pub mod service;
pub mod settings;
pub mod syslog;
pub mod writer;
