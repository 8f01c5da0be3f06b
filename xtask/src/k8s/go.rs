//! The Go toolchain the Kubernetes tools are built with: found on `PATH`, checked to be new
//! enough, and run with the project's own caches so that nothing lands in `~/go`.
//!
//! Every `go` command gets the same environment: `CGO_ENABLED=0` (static binaries, no C
//! toolchain), `GOMODCACHE` and `GOCACHE` under `<cache>/go`, `GOFLAGS=-mod=mod` (the wrapper
//! modules' `go.sum` is written as they build), `GOTOOLCHAIN=local` (a module asking for a newer
//! Go fails instead of downloading a toolchain) and no workspace file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::prereq::find_on_path;
use crate::process;

/// The oldest Go that builds every tool (k8s.io/kubernetes v1.36 and helm v3.22 need 1.26).
pub const MIN_GO: (u32, u32) = (1, 26);

/// A checked Go toolchain and the caches it uses.
#[derive(Debug, Clone)]
pub struct Go {
    /// The `go` binary.
    bin: PathBuf,
    /// Its version, as `go env GOVERSION` prints it (`go1.26.8`).
    pub version: String,
    /// `<cache>/go`: the caches below, and the lock builds take turns on.
    pub root: PathBuf,
    /// `GOMODCACHE`: downloaded modules, kept (a rebuild needs no network).
    pub mod_cache: PathBuf,
    /// `GOCACHE`: compiled packages, ~5 GB after a full build; deleted once all tools are built.
    pub build_cache: PathBuf,
}

impl Go {
    /// The `go` on `PATH` (or in `/usr/local/go/bin`), if it is at least [`MIN_GO`].
    pub fn find(cache: &Path) -> Result<Self> {
        let bin = find_on_path("go")
            .or_else(|| Some(PathBuf::from("/usr/local/go/bin/go")).filter(|p| p.is_file()))
            .with_context(install_hint)?;
        let output = process::run(
            Command::new(&bin)
                .args(["env", "GOVERSION"])
                .env("GOTOOLCHAIN", "local"),
            "asking Go for its version",
        )?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        match parse_version(&version) {
            Some(found) if found >= MIN_GO => {}
            Some(_) => bail!(
                "{} is {version}; the Kubernetes tools need Go {}.{} or newer. {}",
                bin.display(),
                MIN_GO.0,
                MIN_GO.1,
                install_hint()
            ),
            None => bail!(
                "cannot read the version of {} (`go env GOVERSION` printed {version:?}). {}",
                bin.display(),
                install_hint()
            ),
        }
        let root = cache.join("go");
        Ok(Self {
            bin,
            version,
            mod_cache: root.join("mod"),
            build_cache: root.join("build"),
            root,
        })
    }

    /// A `go` command with the project's environment, run in `dir`.
    pub fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(dir)
            .env("CGO_ENABLED", "0")
            .env("GOMODCACHE", &self.mod_cache)
            .env("GOCACHE", &self.build_cache)
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env_remove("GOBIN")
            .env_remove("GOPATH");
        cmd
    }
}

fn install_hint() -> String {
    format!(
        "Go {}.{}+ is needed to build the Kubernetes tools (helm, kubectl, the control plane): \
         download it from https://go.dev/dl/, unpack it with \
         `tar -C /usr/local -xzf go1.26.<n>.linux-amd64.tar.gz` and put /usr/local/go/bin on PATH",
        MIN_GO.0, MIN_GO.1
    )
}

/// `go1.26.8` → (1, 26); `go1.27rc1` → (1, 27); `devel ...` → None.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let rest = version.trim().strip_prefix("go")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_versions() {
        assert_eq!(parse_version("go1.26.8"), Some((1, 26)));
        assert_eq!(parse_version("go1.26"), Some((1, 26)));
        assert_eq!(parse_version("go1.27rc1\n"), Some((1, 27)));
        assert_eq!(parse_version("go1.9.2"), Some((1, 9)));
        assert_eq!(parse_version("devel go1.27-abc"), None);
        assert!(parse_version("go1.25.3").is_some_and(|v| v < MIN_GO));
        assert!(parse_version("go1.26.0").is_some_and(|v| v >= MIN_GO));
    }
}
