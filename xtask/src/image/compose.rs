//! Docker Compose, built from the Go module proxy: `docker-compose config` parses, validates and
//! resolves `docker/compose.yaml` without a Docker engine, which is all the tests can ask of it
//! here (there is no engine to run it on).
//!
//! `go install` refuses the module (its go.mod has `exclude` directives), so the module is
//! downloaded and its `./cmd` built inside the module cache, as upstream's Makefile does. The
//! binary is cached by version.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::prereq::find_on_path;
use crate::process;

/// The Compose release (one that builds with the machine's Go).
pub const VERSION: &str = "v5.6.0";

const MODULE: &str = "github.com/docker/compose/v5";

/// The `docker-compose` binary in `<cache>/docker-compose-<version>`, built on first use.
pub fn ensure(cache: &Path) -> Result<PathBuf> {
    let bin = cache
        .join(format!("docker-compose-{VERSION}"))
        .join("docker-compose");
    if bin.is_file() {
        return Ok(bin);
    }
    let go = find_on_path("go")
        .or_else(|| Some(PathBuf::from("/usr/local/go/bin/go")).filter(|go| go.is_file()))
        .context("Go is needed to build docker compose and is not on PATH; install Go 1.26+")?;
    println!("image: building docker compose {VERSION} from the Go module proxy (first run only)…");
    let go_env = |command: &mut Command| {
        command
            .env("GOMODCACHE", cache.join("go/mod"))
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0");
    };
    let mut download = Command::new(&go);
    download.args(["mod", "download", "-json", &format!("{MODULE}@{VERSION}")]);
    go_env(&mut download);
    let listing = process::run(&mut download, "downloading docker compose's module")?;
    let module: serde_json::Value =
        serde_json::from_slice(&listing.stdout).context("reading `go mod download -json`")?;
    let dir = module["Dir"]
        .as_str()
        .context("`go mod download` named no module directory")?;
    let parent = bin.parent().context("the binary has a directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = bin.with_extension(format!("{}.partial", std::process::id()));
    let mut build = Command::new(&go);
    build
        .current_dir(dir)
        .args(["build", "-trimpath", "-ldflags"])
        .arg(format!("-s -w -X {MODULE}/internal.Version={VERSION}"))
        .arg("-o")
        .arg(&partial)
        .arg("./cmd");
    go_env(&mut build);
    process::run(&mut build, "building docker compose")?;
    std::fs::rename(&partial, &bin)
        .with_context(|| format!("moving {} into place", bin.display()))?;
    Ok(bin)
}
