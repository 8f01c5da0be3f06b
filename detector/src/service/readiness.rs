//! The service's readiness checks, by name: start-up, the results writer and the lease all mark
//! them, and `/readyz` reports them, so the names live in one place. `no_data` is a note, not a
//! check: it never makes `/readyz` fail ([`super::no_data`]).

/// The readiness check for OpenSearch.
pub const OPENSEARCH_CHECK: &str = "opensearch";
/// The readiness check for the lease: not ready while on standby.
pub const LEASE_CHECK: &str = "lease";
/// The `/readyz` note listing the detectors without data (never gates readiness).
pub const NO_DATA_NOTE: &str = "no_data";

/// The `/readyz` note of `part`'s detectors without data: [`NO_DATA_NOTE`] for the whole spec,
/// else naming the shard.
pub fn no_data_note(part: crate::shards::Part) -> String {
    if part.single() {
        NO_DATA_NOTE.to_owned()
    } else {
        format!("{NO_DATA_NOTE} (shard {})", part.index)
    }
}
