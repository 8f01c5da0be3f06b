//! `k8s tools`: helm, kubectl, actionlint and a control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok, kwokctl) built from the Go module proxy and
//! cached by version.
//!
//! Each binary lands in `<cache>/k8s/<name>-<version>/<name>`. A build happens in a
//! `.partial-<name>-<version>` directory that is renamed into place only once the binary runs
//! and reports its version, so an interrupted build is redone and never half-used; a present
//! directory means done. One build at a time (kube-apiserver alone peaks at ~2 GB), under a
//! lock on the Go caches (`<cache>/go/.lock`) so that two xtask runs do not build the same tool
//! and no run deletes the build cache under another's build (SeaweedFS's `weed` is built the
//! same way, `crate::seaweedfs`). Once something was built, the Go build cache (~5 GB) is
//! deleted; the module cache (~2 GB) is kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::go::Go;
use super::gomod::{self, Wrapper};
use super::lock;
use crate::process;

/// How a tool's Go source becomes a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `go install <package>@<version>`.
    Install(&'static str),
    /// `go build ./cmd/<name>` in a wrapper module (see [`gomod`]).
    Wrapper(Wrapper),
    /// `go build <package>` inside the module itself, downloaded into the module cache: for a
    /// module that `go install` refuses because its go.mod has replace directives (SeaweedFS).
    /// Its own go.sum pins every dependency (`-mod=readonly`).
    InModule {
        /// The module path.
        module: &'static str,
        /// The main package, relative to the module (`./weed`).
        package: &'static str,
    },
}

/// Which version variables the linker sets, so that the binary reports its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The module's own version is enough (etcd, kwok, actionlint read it from the build).
    None,
    /// Helm reads `internal/version.version` (else it says `v3.22`).
    Helm,
    /// Kubernetes' `gitVersion`/`gitMajor`/`gitMinor` (else `v0.0.0-master`, which kwokctl
    /// cannot parse when it asks the servers for `--version`).
    Kubernetes,
    /// SeaweedFS's `version.COMMIT`, set to the pseudo-version's commit (its `weed version`
    /// prints it; the module has no release tags).
    SeaweedFs,
}

/// One binary to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The binary's name, also its cache directory's.
    pub name: &'static str,
    /// The release, as its module proxy tag (`v1.36.3`).
    pub version: &'static str,
    /// How it is built.
    pub source: Source,
    /// Its version variables.
    pub stamp: Stamp,
    /// The arguments that make it print its version, checked after the build.
    pub version_args: &'static [&'static str],
}

const KUBERNETES: &str = "v1.36.3";
const KWOK: &str = "v0.8.0";

/// Every tool, in build order (small and needed-by-everyone first).
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "actionlint",
        version: "v1.7.12",
        source: Source::Install("github.com/rhysd/actionlint/cmd/actionlint"),
        stamp: Stamp::None,
        version_args: &["-version"],
    },
    Tool {
        name: "helm",
        version: "v3.22.0",
        source: Source::Install("helm.sh/helm/v3/cmd/helm"),
        stamp: Stamp::Helm,
        version_args: &["version", "--short"],
    },
    Tool {
        name: "kubectl",
        version: KUBERNETES,
        source: Source::Wrapper(Wrapper::Kubectl),
        stamp: Stamp::Kubernetes,
        version_args: &["version", "--client"],
    },
    Tool {
        name: "etcd",
        version: "v3.6.16",
        source: Source::Wrapper(Wrapper::Etcd),
        stamp: Stamp::None,
        version_args: &["--version"],
    },
    Tool {
        name: "kube-apiserver",
        version: KUBERNETES,
        source: Source::Wrapper(Wrapper::Kubernetes),
        stamp: Stamp::Kubernetes,
        version_args: &["--version"],
    },
    Tool {
        name: "kube-controller-manager",
        version: KUBERNETES,
        source: Source::Wrapper(Wrapper::Kubernetes),
        stamp: Stamp::Kubernetes,
        version_args: &["--version"],
    },
    Tool {
        name: "kube-scheduler",
        version: KUBERNETES,
        source: Source::Wrapper(Wrapper::Kubernetes),
        stamp: Stamp::Kubernetes,
        version_args: &["--version"],
    },
    Tool {
        name: "kwok",
        version: KWOK,
        source: Source::Install("sigs.k8s.io/kwok/cmd/kwok"),
        stamp: Stamp::None,
        version_args: &["--version"],
    },
    Tool {
        name: "kwokctl",
        version: KWOK,
        source: Source::Install("sigs.k8s.io/kwok/cmd/kwokctl"),
        stamp: Stamp::None,
        version_args: &["--version"],
    },
];

impl Tool {
    /// `<name>-<version>`: the cache key.
    pub fn key(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The linker flags: stripped, with the version variables of its stamp.
    pub fn ldflags(&self) -> String {
        let mut flags = vec!["-s".to_owned(), "-w".to_owned()];
        let mut set = |var: &str, value: &str| flags.push(format!("-X {var}={value}"));
        match self.stamp {
            Stamp::None => {}
            Stamp::Helm => set("helm.sh/helm/v3/internal/version.version", self.version),
            Stamp::SeaweedFs => set(
                "github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT",
                pseudo_commit(self.version),
            ),
            Stamp::Kubernetes => {
                let (major, minor) = major_minor(self.version);
                for package in [
                    "k8s.io/component-base/version",
                    "k8s.io/client-go/pkg/version",
                ] {
                    set(&format!("{package}.gitVersion"), self.version);
                    set(&format!("{package}.gitMajor"), &major);
                    set(&format!("{package}.gitMinor"), &minor);
                    set(&format!("{package}.gitTreeState"), "clean");
                }
            }
        }
        flags.join(" ")
    }

    /// What its version output must contain (etcd prints `3.6.16`, without the `v`).
    fn expected_version(&self) -> &'static str {
        match self.stamp {
            Stamp::None if self.name == "etcd" => self.version.trim_start_matches('v'),
            Stamp::SeaweedFs => pseudo_commit(self.version),
            _ => self.version,
        }
    }
}

/// `v0.0.0-20261109003541-7506e5f91cd6` → `7506e5f91cd6` (a Go pseudo-version's commit).
fn pseudo_commit(version: &str) -> &str {
    version.rsplit('-').next().unwrap_or(version)
}

/// `v1.36.3` → ("1", "36").
fn major_minor(version: &str) -> (String, String) {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or_default().to_owned();
    let minor = parts.next().unwrap_or_default().to_owned();
    (major, minor)
}

/// Where a set of tools lives: `<cache>/k8s` for the Kubernetes tools.
#[derive(Debug, Clone)]
pub struct Tools {
    dir: PathBuf,
}

impl Tools {
    /// The Kubernetes tools under `cache` (built or not).
    pub fn at(cache: &Path) -> Self {
        Self::in_dir(cache, "k8s")
    }

    /// The tools in `<cache>/<name>` (built or not).
    pub fn in_dir(cache: &Path, name: &str) -> Self {
        Self {
            dir: cache.join(name),
        }
    }

    /// The cached binary of `tool`.
    pub fn path(&self, tool: &Tool) -> PathBuf {
        self.dir.join(tool.key()).join(tool.name)
    }

    /// The cached binary of the tool named `name`.
    pub fn bin(&self, name: &str) -> PathBuf {
        match TOOLS.iter().find(|tool| tool.name == name) {
            Some(tool) => self.path(tool),
            None => self.dir.join(name),
        }
    }

    /// Whether `tool` is built.
    pub fn is_built(&self, tool: &Tool) -> bool {
        self.path(tool).is_file()
    }

    fn partial(&self, tool: &Tool) -> PathBuf {
        self.dir.join(format!(".partial-{}", tool.key()))
    }

    fn wrapper_dir(&self, wrapper: Wrapper, version: &str) -> PathBuf {
        self.dir
            .join("src")
            .join(format!("{}-{version}", wrapper.dir_name()))
    }
}

/// `k8s tools`: builds what is missing, one tool at a time; says so in one line for each tool
/// that is cached already.
pub fn ensure(cache: &Path) -> Result<Tools> {
    ensure_set(cache, Tools::at(cache), TOOLS, "k8s")
}

/// Builds what is missing of `set` into `tools` (output lines start with `label`), under
/// the Go caches' lock; the Go caches are `cache`'s.
pub fn ensure_set(cache: &Path, tools: Tools, set: &[Tool], label: &str) -> Result<Tools> {
    if set.iter().all(|tool| tools.is_built(tool)) {
        for tool in set {
            println!(
                "{label}: {} {} cached ({})",
                tool.name,
                tool.version,
                tools.path(tool).display()
            );
        }
        return Ok(tools);
    }
    crate::paths::create_shared_dir(&tools.dir)?;
    let go = Go::find(cache)?;
    // One lock for every set built with Go: they share the Go build cache, which a finished
    // build deletes (the Kubernetes tools' and SeaweedFS's builds take turns).
    crate::paths::create_shared_dir(&go.root)?;
    let _lock = lock::exclusive(
        &go.root.join(".lock"),
        &format!("the Go build cache ({label} tools)"),
    )?;
    let started = Instant::now();
    let mut built = 0;
    for tool in set {
        if tools.is_built(tool) {
            println!(
                "{label}: {} {} cached ({})",
                tool.name,
                tool.version,
                tools.path(tool).display()
            );
            continue;
        }
        println!(
            "{label}: building {} {} with {} (first run only)…",
            tool.name, tool.version, go.version
        );
        let took = build(&go, &tools, tool)
            .with_context(|| format!("building {} {}", tool.name, tool.version))?;
        let size = std::fs::metadata(tools.path(tool)).map_or(0, |m| m.len());
        println!(
            "{label}: {} {} built in {} ({})",
            tool.name,
            tool.version,
            minutes(took),
            process::human_bytes(size)
        );
        built += 1;
    }
    if built > 0 {
        println!(
            "{label}: {built} tool(s) built in {}; deleting the Go build cache {} ({}; the module \
             cache {} stays)…",
            minutes(started.elapsed()),
            go.build_cache.display(),
            process::human_bytes(dir_size(&go.build_cache)),
            go.mod_cache.display()
        );
        if go.build_cache.exists() {
            std::fs::remove_dir_all(&go.build_cache)
                .with_context(|| format!("removing {}", go.build_cache.display()))?;
        }
    }
    Ok(tools)
}

/// Builds one tool into its partial directory, checks it, and renames it into place.
fn build(go: &Go, tools: &Tools, tool: &Tool) -> Result<Duration> {
    let started = Instant::now();
    let partial = tools.partial(tool);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the interrupted build {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let out = partial.join(tool.name);
    match tool.source {
        Source::Install(package) => {
            process::run(
                go.command(&tools.dir)
                    .args(["install", "-trimpath", "-ldflags", &tool.ldflags()])
                    .arg(format!("{package}@{}", tool.version))
                    .env("GOBIN", &partial),
                &format!("go install {package}@{}", tool.version),
            )?;
        }
        Source::Wrapper(wrapper) => {
            let dir = prepare_wrapper(go, tools, wrapper, tool.version)?;
            process::run(
                go.command(&dir)
                    .args(["build", "-trimpath", "-ldflags", &tool.ldflags(), "-o"])
                    .arg(&out)
                    .arg(format!("./cmd/{}", tool.name)),
                &format!("go build {} in {}", tool.name, dir.display()),
            )?;
        }
        Source::InModule { module, package } => {
            let module = format!("{module}@{}", tool.version);
            let dir = download(go, &tools.dir, &module)?.dir;
            process::run(
                go.command(&dir)
                    .env("GOFLAGS", "-mod=readonly")
                    .args(["build", "-trimpath", "-ldflags", &tool.ldflags(), "-o"])
                    .arg(&out)
                    .arg(package),
                &format!("go build {package} in {}", dir.display()),
            )?;
        }
    }
    check_version(&out, tool)?;
    let done = tools.path(tool);
    let dir = done.parent().context("a tool path has a directory")?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&partial, dir)
        .with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    Ok(started.elapsed())
}

/// Writes the wrapper module for `version` and resolves its requirements (`go mod tidy`).
fn prepare_wrapper(go: &Go, tools: &Tools, wrapper: Wrapper, version: &str) -> Result<PathBuf> {
    let dir = tools.wrapper_dir(wrapper, version);
    let replaces = match wrapper.staging_source(version) {
        Some(module) => {
            let go_mod = download(go, &tools.dir, &module)?.go_mod;
            let upstream = std::fs::read_to_string(&go_mod)
                .with_context(|| format!("reading {}", go_mod.display()))?;
            let replaces = gomod::staging_replaces(&upstream, &gomod::staging_version(version));
            if replaces.is_empty() {
                bail!("{module}'s go.mod lists no ./staging modules; cannot pin them");
            }
            replaces
        }
        None => Vec::new(),
    };
    let binaries: Vec<&str> = TOOLS
        .iter()
        .filter(|t| t.source == Source::Wrapper(wrapper) && t.version == version)
        .map(|t| t.name)
        .collect();
    let go_mod = gomod::render_go_mod(wrapper, &wrapper.requires(version), &replaces);
    gomod::write(&dir, wrapper, &go_mod, &binaries)?;
    process::run(
        go.command(&dir).args(["mod", "tidy"]),
        &format!("go mod tidy in {}", dir.display()),
    )?;
    Ok(dir)
}

/// A module downloaded into the module cache (`go mod download -json`'s answer).
#[derive(Debug, serde::Deserialize)]
struct Download {
    /// Its `go.mod`.
    #[serde(rename = "GoMod")]
    go_mod: PathBuf,
    /// Its unpacked source (read-only).
    #[serde(rename = "Dir")]
    dir: PathBuf,
}

/// Downloads `module@version` into the module cache.
fn download(go: &Go, dir: &Path, module: &str) -> Result<Download> {
    let output = process::run(
        go.command(dir).args(["mod", "download", "-json", module]),
        &format!("go mod download {module}"),
    )?;
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading `go mod download -json {module}`"))
}

/// Runs the new binary and checks that it reports the version it was built as.
fn check_version(bin: &Path, tool: &Tool) -> Result<()> {
    let output = process::run(
        std::process::Command::new(bin).args(tool.version_args),
        &format!("{} {}", bin.display(), tool.version_args.join(" ")),
    )?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if !text.contains(tool.expected_version()) {
        bail!(
            "{} was built but reports {:?}, not {}; its version flags need updating in xtask's k8s::tools",
            tool.name,
            text.trim(),
            tool.version
        );
    }
    Ok(())
}

/// The bytes of the files below `dir` (0 if it is missing).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// `3m 58s` or `12.3 s`.
pub fn minutes(took: Duration) -> String {
    let secs = took.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1} s", took.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> &'static Tool {
        TOOLS.iter().find(|t| t.name == name).expect("a tool")
    }

    #[test]
    fn tools_are_keyed_by_version() {
        let tools = Tools::at(Path::new("/c"));
        assert_eq!(
            tools.path(tool("helm")),
            Path::new("/c/k8s/helm-v3.22.0/helm")
        );
        assert_eq!(
            tools.bin("kube-apiserver"),
            Path::new("/c/k8s/kube-apiserver-v1.36.3/kube-apiserver")
        );
        assert_eq!(
            tools.partial(tool("kwokctl")),
            Path::new("/c/k8s/.partial-kwokctl-v0.8.0")
        );
        assert_eq!(
            tools.wrapper_dir(Wrapper::Kubernetes, "v1.36.3"),
            Path::new("/c/k8s/src/kubernetes-v1.36.3")
        );
        let mut keys: Vec<String> = TOOLS.iter().map(Tool::key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), TOOLS.len(), "one cache directory per tool");
    }

    #[test]
    fn stamps_the_versions_kwokctl_and_users_read() {
        assert_eq!(
            tool("helm").ldflags(),
            "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0"
        );
        let apiserver = tool("kube-apiserver").ldflags();
        for expected in [
            "-X k8s.io/component-base/version.gitVersion=v1.36.3",
            "-X k8s.io/component-base/version.gitMajor=1",
            "-X k8s.io/component-base/version.gitMinor=36",
            "-X k8s.io/client-go/pkg/version.gitVersion=v1.36.3",
            "-X k8s.io/client-go/pkg/version.gitMinor=36",
        ] {
            assert!(apiserver.contains(expected), "{expected} in {apiserver}");
        }
        assert_eq!(tool("kwok").ldflags(), "-s -w");
        assert_eq!(tool("etcd").expected_version(), "3.6.16");
        assert_eq!(tool("kubectl").expected_version(), "v1.36.3");
    }

    #[test]
    fn every_wrapper_binary_has_its_main() {
        for tool in TOOLS {
            if let Source::Wrapper(wrapper) = tool.source {
                assert!(wrapper.main_go(tool.name).is_some(), "{}", tool.name);
            }
        }
    }

    #[test]
    fn formats_build_times() {
        assert_eq!(minutes(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(minutes(Duration::from_secs(238)), "3m 58s");
    }
}
