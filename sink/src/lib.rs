//! logwarden's sink: bulk-loads the `enriched` topic into OpenSearch with no loss and no
//! duplicates.
//!
//! - [`bulk`]: pure: an enriched record made into a bulk operation, and a bulk response judged
//!   item by item (indexed, retry, rejected).
//! - [`ledger`]: pure: the batches between the consumer and the stored offsets: which settle,
//!   which offsets may be stored (from the front only), what is sent again, split or rejected,
//!   and when the sink is in back-pressure.
//! - [`settings`]: the `sink` config section.
//! - [`metrics`]: the sink's metrics.
//! - [`service`]: the loop around the ledger: the consumer group, bulk requests in flight,
//!   backoff, dead letters, offsets stored, readiness.

pub mod bulk;
pub mod ledger;
pub mod metrics;
pub mod service;
pub mod settings;
