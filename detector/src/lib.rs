//! logwarden's detector: streaming anomaly detection and alerting on the enriched stream.
//!
//! - [`spec`]: the detection spec (detectors, monitors, channels), strict, with the seed's five
//!   detectors as the default.
//! - [`window`]: event-time intervals that close after a window delay, quiet ones with 0.
//! - [`event_time`]: which records are scored (not too far in the future) and the watermark
//!   (the slowest partition with a backlog).
//! - [`measure`]: an interval's feature value (a rate per second, a ratio over its events) and
//!   its judgement by the model; a ratio over too few events is not judged.
//! - [`novelty`]: a `new_values` detector's known values (learned from history, bounded) and
//!   each interval's new ones.
//! - [`model`]: a random cut forest per detector with a thresholding layer: grade, confidence.
//! - [`store`]: OpenSearch: history for a cold start, results, the checkpoints index.
//! - [`checkpoints`]: the one checkpoint document, saved atomically and fenced by the holder.
//! - [`features`]: the hot path: a plan of the paths the detectors read, compiled once; a
//!   record's event time ([`rfc3339`], cheaply), its wanted values (no `serde_json::Value`), and
//!   its contribution and entity per detector.
//! - [`entities`]: a category detector's per-entity models (bounded, idle ones evicted) and
//!   its interval summary; [`remembered`]: evicted models stored in OpenSearch and restored
//!   when their entity comes back.
//! - [`dedupe`]: event ids seen per open event-time bucket, so a replayed record counts once.
//! - [`alert`]: monitors and episodes (pure), the outbox of notifications (pure, checkpointed),
//!   one delivery worker per channel (webhook, Slack, e-mail), and the record of deliveries in
//!   the alerts index.
//! - [`evaluate`]: precision, recall, false alerts per hour of normal traffic and time to detect
//!   (to the interval's end and to the alert's delivery) against the producer's labels, as a
//!   table, Markdown or HTML; and historical analysis of a past range.
//! - [`lease`]: one active replica per shard at a time (a lease document with optimistic
//!   concurrency).
//! - [`shards`]: the spec split into shards (whole monitor groups), and which ones a replica
//!   takes or hands back to get its fair share among the live replicas ([`members`]).
//! - [`page`]: the live page on the telemetry port (recent intervals, episodes, alerts, lease).
//! - [`settings`], [`service`]: the Kafka service.

pub mod alert;
pub mod checkpoints;
pub mod dedupe;
pub mod entities;
pub mod evaluate;
pub mod event_time;
pub mod features;
pub mod lease;
pub mod measure;
pub mod members;
pub mod model;
pub mod novelty;
pub mod page;
pub mod projection;
pub mod reader;
pub mod remembered;
pub mod rfc3339;
pub mod service;
pub mod settings;
pub mod shards;
pub mod store;
pub mod window;

/// The detection spec lives in `pipeline` because the provisioner reads it too.
pub use pipeline::spec;
