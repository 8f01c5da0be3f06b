//! What the delivery tests share: where the tools `cargo xtask test` built or installed are.
//!
//! Each tool comes from an `XTASK_*` variable that `cargo xtask test` sets. A test that runs
//! without it fails and names the command that provides it; it never skips.

use std::path::PathBuf;

pub mod helm;
pub mod kubectl;
pub mod manifests;
pub mod observe;
pub mod podman;

/// The repository's root (the workspace): the parent of the package directory cargo names at run
/// time (`cargo test` sets `CARGO_MANIFEST_DIR` for the test binary), not the one baked in at
/// compile time: one target directory serves several checkouts, and cargo reuses a binary built
/// in another one when the sources are older.
pub fn workspace() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The path in `var`, which `provider` (a command) sets up; panics naming both when unset.
pub fn tool(var: &str, provider: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{var} is not set: run the suite with `cargo xtask test`, or run `{provider}` and set {var} to what it prints"
        ),
    }
}
