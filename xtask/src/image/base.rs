//! The image's base: Debian packages unpacked into a tar by mmdebstrap, made once and cached by
//! suite and package list (`<cache>/image/base-<suite>-<packages>.tar`).
//!
//! `--variant=extract` unpacks the packages and runs none of their scripts, so the tar holds the
//! libraries and data files and nothing else: no shell, no package manager, no CA bundle (the
//! Containerfile adds the host's) and no users (`docker/rootfs` adds them). No registry is
//! reachable here, so this replaces `FROM gcr.io/distroless/cc-debian12`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::process;

/// The Debian release the image is made of (the same as the Dockerfile's builder and runtime).
pub const SUITE: &str = "bookworm";

/// What the binaries load (`ldd`: libc, libgcc_s, libssl/libcrypto, libz) and the data files a
/// distroless base has (base-files' os-release, netbase's services, tzdata).
pub const PACKAGES: [&str; 7] = [
    "libc6",
    "libgcc-s1",
    "libssl3",
    "zlib1g",
    "base-files",
    "netbase",
    "tzdata",
];

/// Where the suite's packages come from: the release, its updates and its security fixes.
const SOURCES: [&str; 3] = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

/// The cached tar's path: the key is the suite and the package list.
pub fn path(cache: &Path) -> PathBuf {
    cache
        .join("image")
        .join(format!("base-{SUITE}-{}.tar", PACKAGES.join("-")))
}

/// The base tar, made with mmdebstrap unless it is cached (or `rebuild` asks for fresh
/// packages, e.g. for security updates).
pub fn ensure(cache: &Path, root: bool, rebuild: bool) -> Result<PathBuf> {
    let tar = path(cache);
    if tar.is_file() && !rebuild {
        return Ok(tar);
    }
    let dir = tar.parent().context("the base tar has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    println!(
        "image: unpacking {} from Debian {SUITE} with mmdebstrap (first run only)…",
        PACKAGES.join(" ")
    );
    let partial = tar.with_extension(format!("tar.{}.partial", std::process::id()));
    process::run(
        Command::new("mmdebstrap")
            .arg(if root {
                "--mode=root"
            } else {
                "--mode=unshare"
            })
            .args(["--variant=extract", "--format=tar", "--quiet"])
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(SUITE)
            .arg(&partial)
            .args(SOURCES),
        "making the image's base with mmdebstrap",
    )?;
    std::fs::rename(&partial, &tar)
        .with_context(|| format!("moving {} into place", partial.display()))?;
    Ok(tar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_the_suite_and_the_packages() {
        assert_eq!(
            path(Path::new("/c")),
            Path::new(
                "/c/image/base-bookworm-libc6-libgcc-s1-libssl3-zlib1g-base-files-netbase-tzdata.tar"
            )
        );
    }
}
