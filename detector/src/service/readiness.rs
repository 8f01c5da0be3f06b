//! The service's readiness checks, by name: start-up, the results writer and the lease all mark
//! them, and `/readyz` reports them, so the names live in one place.

/// The readiness check for OpenSearch.
pub const OPENSEARCH_CHECK: &str = "opensearch";
/// The readiness check for the lease: not ready while on standby.
pub const LEASE_CHECK: &str = "lease";
