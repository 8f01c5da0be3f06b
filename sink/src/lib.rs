//! logwarden's sink: bulk-loads the `enriched` topic into OpenSearch with no loss and no
//! duplicates.
//!
//! - [`bulk`]: pure: an enriched record made into a bulk operation, and a bulk response judged
//!   item by item (indexed, retry, rejected).
//! - [`settings`]: the `sink` config section.
//! - [`service`]: the consumer group, batching, requests in flight, retries, back-pressure,
//!   dead letters and offsets.

pub mod bulk;
pub mod service;
pub mod settings;
