//! OpenSearch for the local stack: one single-node cluster on 127.0.0.1 with the job-scheduler
//! plugin (and any plugin zips the user names), run from the integ-test distribution on Maven
//! Central rather than a release tarball.
//!
//! The distribution and the job-scheduler zip are fetched once per version into the cache. The
//! install is an unpacked copy in `<data>/opensearch/home`, because installing plugins modifies
//! it; it is re-created when the version or the set of plugins changes. Configs are rendered from
//! the distribution's pristine copies at every start, so ports can change between runs. As root,
//! the server runs as the `opensearch` system user, which owns everything under
//! `<data>/opensearch`.
//!
//! The parts, each a file: `plugin` (a plugin zip and its name), `layout` (where a node's files
//! live), `install` (downloads and the unpacked install with its plugins), `config` (rendering
//! `opensearch.yml` and `jvm.options`) and `server` (start, health, readiness). Imports run one
//! way: `server` uses `install`, `config` and `layout`; `install` uses `config`, `layout` and
//! `plugin`; `config` uses `layout`; `plugin` and `layout` use nothing of the others. This file
//! holds the settings and constants they share.

mod config;
mod install;
mod layout;
mod plugin;
mod server;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use install::download;
pub use layout::{server_log, startup_log};
pub use plugin::Plugin;
pub use server::{health, start, wait_ready};

/// The OpenSearch version `stack up` runs unless told otherwise.
pub const DEFAULT_VERSION: &str = "3.6.0";

/// The plugin every stack has (the anomaly-detection and alerting plugins build on it).
pub const JOB_SCHEDULER: &str = "opensearch-job-scheduler";

/// How the OpenSearch node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSearchSettings {
    /// OpenSearch version.
    pub version: String,
    /// The REST port.
    pub http_port: u16,
    /// The transport (node-to-node) port.
    pub transport_port: u16,
    /// JVM heap (`-Xms` = `-Xmx`), e.g. `1g`.
    pub heap: String,
    /// Plugin zips installed besides job-scheduler, as absolute paths.
    pub extra_plugins: Vec<PathBuf>,
}

impl OpenSearchSettings {
    /// The REST endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// What differs from `other`, for humans (empty when equal).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut check = |what: &str, mine: String, theirs: String| {
            if mine != theirs {
                diffs.push(format!("opensearch {what} {mine} (asked: {theirs})"));
            }
        };
        check("version", self.version.clone(), other.version.clone());
        check(
            "port",
            self.http_port.to_string(),
            other.http_port.to_string(),
        );
        check(
            "transport port",
            self.transport_port.to_string(),
            other.transport_port.to_string(),
        );
        check("heap", self.heap.clone(), other.heap.clone());
        let zips = |s: &Self| format!("{:?}", s.extra_plugins);
        check("extra plugins", zips(self), zips(other));
        diffs
    }
}

#[cfg(test)]
impl OpenSearchSettings {
    /// Settings on ports no real stack uses, for tests.
    fn example() -> Self {
        Self {
            version: DEFAULT_VERSION.to_owned(),
            http_port: 19200,
            transport_port: 19300,
            heap: "1g".to_owned(),
            extra_plugins: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OpenSearchSettings {
        OpenSearchSettings::example()
    }

    #[test]
    fn differences_include_plugins() {
        let mut other = settings();
        other.extra_plugins.push(PathBuf::from("/z/ad.zip"));
        let diffs = settings().differences(&other);
        assert_eq!(diffs.len(), 1);
        assert!(
            diffs[0].starts_with("opensearch extra plugins"),
            "{diffs:?}"
        );
    }
}
