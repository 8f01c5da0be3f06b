//! buildah and podman as this machine kind needs them: a storage root of the project's own (in
//! the cache, vfs driver, so nothing depends on `/var/lib/containers`), runc with cgroupfs (crun
//! fails on hybrid cgroups), and a containers.conf without default ulimits (podman's are refused
//! here: `setrlimit RLIMIT_NOFILE: Operation not permitted`).
//!
//! The tests run podman with the same settings through [`Engine::env`]: `XTASK_PODMAN` (the
//! binary), `XTASK_PODMAN_ARGS` (the global flags, space-separated) and `XTASK_PODMAN_CONF`
//! (the file for `CONTAINERS_CONF`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::prereq::find_on_path;

/// What podman needs besides the storage flags: no default ulimits.
const CONTAINERS_CONF: &str = "[containers]\ndefault_ulimits = []\n";

/// buildah and podman with the project's storage and runtime settings.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The podman binary.
    pub podman: PathBuf,
    /// The buildah binary.
    buildah: PathBuf,
    /// Image and container storage (`--root`).
    root: PathBuf,
    /// Runtime state: locks, mounts (`--runroot`).
    runroot: PathBuf,
    /// The file `CONTAINERS_CONF` names.
    pub conf: PathBuf,
}

impl Engine {
    /// The engine with its storage under `<cache>/containers`, creating the directories and the
    /// containers.conf file.
    pub fn new(cache: &Path) -> Result<Self> {
        let dir = cache.join("containers");
        let engine = Self {
            podman: find_on_path("podman").context("podman is not on PATH")?,
            buildah: find_on_path("buildah").context("buildah is not on PATH")?,
            root: dir.join("storage"),
            runroot: dir.join("run"),
            conf: dir.join("containers.conf"),
        };
        for path in [&engine.root, &engine.runroot] {
            if path.to_string_lossy().contains(char::is_whitespace) {
                bail!(
                    "{} contains whitespace, which XTASK_PODMAN_ARGS cannot carry; pass a \
                     --cache-dir without spaces",
                    path.display()
                );
            }
            std::fs::create_dir_all(path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        if std::fs::read_to_string(&engine.conf).ok().as_deref() != Some(CONTAINERS_CONF) {
            std::fs::write(&engine.conf, CONTAINERS_CONF)
                .with_context(|| format!("writing {}", engine.conf.display()))?;
        }
        Ok(engine)
    }

    /// The storage flags buildah and podman share.
    fn storage_args(&self) -> Vec<String> {
        vec![
            format!("--root={}", self.root.display()),
            format!("--runroot={}", self.runroot.display()),
            "--storage-driver=vfs".to_owned(),
        ]
    }

    /// podman's global flags: the storage, runc, cgroupfs.
    pub fn podman_args(&self) -> Vec<String> {
        let mut args = self.storage_args();
        args.extend(["--runtime=runc", "--cgroup-manager=cgroupfs"].map(String::from));
        args
    }

    /// `podman <global flags>` with `CONTAINERS_CONF` set.
    pub fn podman(&self) -> Command {
        let mut command = Command::new(&self.podman);
        command
            .args(self.podman_args())
            .env("CONTAINERS_CONF", &self.conf);
        command
    }

    /// `buildah <storage flags>` with `CONTAINERS_CONF` set.
    pub fn buildah(&self) -> Command {
        let mut command = Command::new(&self.buildah);
        command
            .args(self.storage_args())
            .env("CONTAINERS_CONF", &self.conf);
        command
    }

    /// The variables the tests run podman with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("XTASK_PODMAN", self.podman.display().to_string()),
            ("XTASK_PODMAN_ARGS", self.podman_args().join(" ")),
            ("XTASK_PODMAN_CONF", self.conf.display().to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_get_the_same_flags_as_single_tokens() {
        let engine = Engine {
            podman: PathBuf::from("/usr/bin/podman"),
            buildah: PathBuf::from("/usr/bin/buildah"),
            root: PathBuf::from("/c/containers/storage"),
            runroot: PathBuf::from("/c/containers/run"),
            conf: PathBuf::from("/c/containers/containers.conf"),
        };
        assert_eq!(
            engine.env(),
            [
                ("XTASK_PODMAN", "/usr/bin/podman".to_owned()),
                (
                    "XTASK_PODMAN_ARGS",
                    "--root=/c/containers/storage --runroot=/c/containers/run \
                     --storage-driver=vfs --runtime=runc --cgroup-manager=cgroupfs"
                        .to_owned()
                ),
                (
                    "XTASK_PODMAN_CONF",
                    "/c/containers/containers.conf".to_owned()
                ),
            ]
        );
        let buildah: Vec<String> = engine
            .buildah()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(buildah, engine.podman_args()[..3]);
    }
}
