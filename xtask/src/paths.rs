//! Where the local stack lives on disk.
//!
//! Two roots: the *cache* holds what is downloaded once and shared by every run (Kafka's jars, the
//! OpenSearch distribution and plugin zips, a fallback JDK), and the *data* directory holds one
//! stack's state (configs, the OpenSearch install with its plugins, Kafka's log dirs, indices,
//! server logs, pid files and `stack.json`). `stack reset` wipes the data directory and keeps the
//! cache. As root both live outside `/root`, because OpenSearch runs as a separate system user that
//! must be able to traverse to every path it uses.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The two roots of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// Downloads, kept across `stack reset`.
    pub cache: PathBuf,
    /// One stack's state, wiped by `stack reset`.
    pub data: PathBuf,
}

impl Dirs {
    /// The directories for this user, with the command line's overrides applied. Relative
    /// overrides are taken from the current directory.
    pub fn resolve(cache: Option<&Path>, data: Option<&Path>, root: bool) -> Result<Self> {
        let env = |key: &str| std::env::var_os(key).map(PathBuf::from);
        let defaults = Self::defaults(root, env);
        let pick = |flag: Option<&Path>, default: Option<PathBuf>, what: &str, option: &str| match (
            flag, default,
        ) {
            (Some(path), _) => std::path::absolute(path)
                .with_context(|| format!("resolving {option} {}", path.display())),
            (None, Some(path)) => Ok(path),
            (None, None) => bail!(
                "cannot tell where the {what} directory goes: HOME is not set; \
                     set HOME or pass {option} <dir>"
            ),
        };
        Ok(Self {
            cache: pick(cache, defaults.0, "cache", "--cache-dir")?,
            data: pick(data, defaults.1, "data", "--data-dir")?,
        })
    }

    /// Default cache and data directories: system-wide for root, XDG directories otherwise.
    /// `env` looks up an environment variable (a parameter so that tests need no process state).
    fn defaults(
        root: bool,
        env: impl Fn(&str) -> Option<PathBuf>,
    ) -> (Option<PathBuf>, Option<PathBuf>) {
        if root {
            return (
                Some(PathBuf::from("/var/cache/logwarden")),
                Some(PathBuf::from("/var/lib/logwarden/stack")),
            );
        }
        let absolute = |key: &str| env(key).filter(|p| p.is_absolute());
        let home = absolute("HOME");
        let cache = absolute("XDG_CACHE_HOME")
            .or_else(|| home.as_ref().map(|h| h.join(".cache")))
            .map(|base| base.join("logwarden"));
        let data = absolute("XDG_DATA_HOME")
            .or_else(|| home.as_ref().map(|h| h.join(".local/share")))
            .map(|base| base.join("logwarden/stack"));
        (cache, data)
    }

    /// `stack.json`: what `stack up` started, for `status`, `down`, `test` and `demo`.
    pub fn state_file(&self) -> PathBuf {
        self.data.join("stack.json")
    }

    /// Kafka's configs, log dirs and server log.
    pub fn kafka(&self) -> PathBuf {
        self.data.join("kafka")
    }

    /// The local Kafka's TLS material (CA, broker and client certificates).
    pub fn kafka_tls(&self) -> PathBuf {
        self.kafka().join("tls")
    }

    /// OpenSearch's install (with plugins), data, logs and pid file.
    pub fn opensearch(&self) -> PathBuf {
        self.data.join("opensearch")
    }

    /// The kwok cluster's state (`cargo xtask k8s`): the data directory's sibling `k8s`, so
    /// that `stack reset` leaves it alone.
    pub fn k8s(&self) -> PathBuf {
        self.data
            .parent()
            .map_or_else(|| self.data.join("k8s"), |parent| parent.join("k8s"))
    }
}

/// Creates a directory (and its parents) readable and traversable by everyone: the OpenSearch
/// user must reach paths below it even when the process umask is strict.
pub fn create_shared_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "creating {}; check its parent's permissions or choose another directory",
            dir.display()
        )
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} traversable (mode 755)", dir.display()))
}

/// Fails unless every ancestor of `dir` lets other users traverse it, naming the first that
/// does not (typically `/root`, mode 700).
pub fn check_traversable_by_others(dir: &Path, option: &str) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue; // not created yet: it will be created with mode 755
        };
        if meta.permissions().mode() & 0o001 == 0 {
            bail!(
                "{} is not traversable by other users (mode {:o}), so the `opensearch` user \
                 cannot reach {}; pass a {option} outside it (the default as root is under \
                 /var/lib and /var/cache)",
                ancestor.display(),
                meta.permissions().mode() & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

/// The workspace's root, the parent of xtask's manifest directory. Taken from
/// `CARGO_MANIFEST_DIR` as `cargo xtask` (`cargo run`) sets it for this run, not as it was when
/// xtask was compiled: one target directory serves several checkouts, and a binary built in
/// another checkout would otherwise build and run that checkout's code.
pub fn workspace() -> Result<PathBuf> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask is not inside a workspace (CARGO_MANIFEST_DIR has no parent)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<PathBuf> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| PathBuf::from(v))
        }
    }

    #[test]
    fn root_uses_system_directories() {
        let (cache, data) = Dirs::defaults(true, env_of(&[("HOME", "/root")]));
        assert_eq!(cache, Some(PathBuf::from("/var/cache/logwarden")));
        assert_eq!(data, Some(PathBuf::from("/var/lib/logwarden/stack")));
    }

    #[test]
    fn users_get_xdg_directories() {
        let (cache, data) = Dirs::defaults(false, env_of(&[("HOME", "/home/u")]));
        assert_eq!(cache, Some(PathBuf::from("/home/u/.cache/logwarden")));
        assert_eq!(
            data,
            Some(PathBuf::from("/home/u/.local/share/logwarden/stack"))
        );

        let (cache, data) = Dirs::defaults(
            false,
            env_of(&[
                ("HOME", "/home/u"),
                ("XDG_CACHE_HOME", "/c"),
                ("XDG_DATA_HOME", "relative/is/ignored"),
            ]),
        );
        assert_eq!(cache, Some(PathBuf::from("/c/logwarden")));
        assert_eq!(
            data,
            Some(PathBuf::from("/home/u/.local/share/logwarden/stack"))
        );
    }

    #[test]
    fn flags_override_and_become_absolute() {
        let dirs = Dirs::resolve(Some(Path::new("/x/cache")), Some(Path::new("d")), false)
            .expect("resolves");
        assert_eq!(dirs.cache, PathBuf::from("/x/cache"));
        assert!(dirs.data.is_absolute() && dirs.data.ends_with("d"));
        assert_eq!(dirs.state_file(), dirs.data.join("stack.json"));
        let root = Dirs::resolve(None, None, true).expect("resolves");
        assert_eq!(root.k8s(), PathBuf::from("/var/lib/logwarden/k8s"));
    }
}
