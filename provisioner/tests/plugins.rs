//! The plugin target against real exchanges recorded from OpenSearch 3.6.0 with its
//! anomaly-detection, alerting and notifications plugins (`tests/fixtures/opensearch-3.6-plugins/`,
//! whose README says how and what was recorded).
//!
//! Those plugins cannot be installed on this project's machines, so the code that speaks to them
//! is checked two ways:
//! - the bodies it sends, against the requests and stored objects the real plugins accepted and
//!   returned (so a second run against a real cluster finds nothing to change);
//! - its converge steps, against a local HTTP server that replays recorded responses in order
//!   and fails on any request it did not expect. Where a scenario needs a recorded response for
//!   another object (an id, a description), the test says which field it edits; the three
//!   responses no recording holds (channel update and delete, monitor delete) are the plugins'
//!   documented acknowledgements, marked as such.
//!
//! The tests are split by what they check: `plugins/bodies.rs` the bodies, `plugins/converge.rs`
//! the converge steps, `plugins/errors.rs` how the plugins' refusals and failures are reported;
//! `common/` holds the recordings and the replaying server they share.

mod common;

#[path = "plugins/bodies.rs"]
mod bodies;
#[path = "plugins/converge.rs"]
mod converge;
#[path = "plugins/errors.rs"]
mod errors;
