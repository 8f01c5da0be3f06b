//! SeaweedFS's `weed`: the S3-compatible server the bucket tests of logwarden-ingest run against
//! (Apache-2.0; MinIO is AGPL). Built from the Go module proxy like the Kubernetes tools, with
//! their code (`k8s::tools`: the same Go caches, lock and partial-directory build), into
//! `<cache>/seaweedfs/weed-<version>/weed`; a present binary means done. `go install` refuses
//! the module (its go.mod has replace directives), so it is built inside the downloaded module.
//! `cargo xtask test` hands the binary to the tests as `XTASK_WEED`; each test starts its own
//! `weed server` on free ports in a temporary directory.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::k8s::tools::{Source, Stamp, Tool, Tools, ensure_set};

/// The SeaweedFS build: the module has no release tags on the proxy, only pseudo-versions
/// (this one is SeaweedFS 4.53).
pub const WEED: Tool = Tool {
    name: "weed",
    version: "v0.0.0-20261109003541-7506e5f91cd6",
    source: Source::InModule {
        module: "github.com/seaweedfs/seaweedfs",
        package: "./weed",
    },
    stamp: Stamp::SeaweedFs,
    version_args: &["version"],
};

/// Builds `weed` unless it is cached; returns its path.
pub fn ensure(cache: &Path) -> Result<PathBuf> {
    let tools = ensure_set(
        cache,
        Tools::in_dir(cache, "seaweedfs"),
        &[WEED],
        "seaweedfs",
    )?;
    Ok(tools.path(&WEED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weed_is_cached_by_version_and_stamped_with_its_commit() {
        assert_eq!(
            Tools::in_dir(Path::new("/c"), "seaweedfs").path(&WEED),
            Path::new("/c/seaweedfs/weed-v0.0.0-20261109003541-7506e5f91cd6/weed")
        );
        assert_eq!(
            WEED.ldflags(),
            "-s -w -X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=7506e5f91cd6"
        );
    }
}
