//! OpenSearch's anomaly-detection, alerting and notifications plugins: the only module that
//! speaks their REST APIs, so a real cluster with the plugins can be pointed at it
//! (`--target opensearch-plugins --url ...`).
//!
//! The spec's detectors become single-stream plugin detectors (one feature, the interval in
//! whole minutes), its monitors query-level monitors reading the plugin's results, its channels
//! notification configs. Objects are found by name (channels by id, which is the name), compared
//! with [`crate::compare::differences`] against what the plugin returns, and created, updated or
//! left alone. A running detector is stopped, updated and started again, because the plugin
//! refuses to update a running one ("Job is running"). Ownership is marked on each object
//! (`managed_by: <owner>` at the end of a detector's or channel's description, as the first line
//! of a monitor's trigger script), and only marked objects are ever pruned.
//!
//! What was measured on a real OpenSearch 3.6.0 with the plugins shapes the bodies: monitors
//! exclude historical-analysis results (`must_not exists task_id`) and window on `data_end_time`
//! (after a restart the plugin re-scores recent history, so a window on execution time would fire
//! on old anomalies again); detectors train on `model.history` intervals (120 by default, not the
//! plugin's 40) and monitors default to [`PLUGIN_MIN_CONFIDENCE`], because the plugin's
//! confidence is 0.3–0.4 right after a cold start and rises only about 0.01 a minute (with
//! `history: 115` and 120 minutes of history in the index it was 0.76 at start).
//!
//! [`PLUGIN_MIN_CONFIDENCE`]: pipeline::spec::PLUGIN_MIN_CONFIDENCE
//!
//! The bodies are built by pure functions (`bodies`: no IO), tested against the requests recorded
//! from a real OpenSearch 3.6.0 with the plugins; the client that finds, creates, updates and
//! prunes objects (`client`: [`Plugins`]) calls them and is tested against the recorded
//! responses, served by a local HTTP server. Imports run one way: `client` uses `bodies`, and
//! both use only this file's API paths; `bodies` knows nothing of the client.

mod bodies;
mod client;

pub use bodies::{
    ChannelKind, channel_configs, detector_body, interval_minutes, mark, monitor_body,
};
pub use client::{PluginError, Plugins, profile_detail, profile_state};

/// The anomaly-detection plugin's detectors API.
pub const DETECTORS: &str = "/_plugins/_anomaly_detection/detectors";
/// The alerting plugin's monitors API.
pub const MONITORS: &str = "/_plugins/_alerting/monitors";
/// The notifications plugin's configs API.
pub const CONFIGS: &str = "/_plugins/_notifications/configs";
/// Where the anomaly-detection plugin writes its results.
pub const RESULTS_PATTERN: &str = ".opendistro-anomaly-results*";
/// The plugins the target needs, as `_cat/plugins` names them.
pub const REQUIRED: [&str; 3] = [
    "opensearch-anomaly-detection",
    "opensearch-alerting",
    "opensearch-notifications",
];
