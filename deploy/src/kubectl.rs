//! kubectl on the project's kwok cluster (`cargo xtask k8s up`), and a namespace per test that
//! is deleted when the test ends, passed or failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::helm::Run;

/// A name no other test (of this run or an earlier one) uses: `<prefix>-<time><pid><n>`, a DNS
/// label of at most `prefix.len() + 17` characters.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 1_000_000);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{seconds:x}{:x}{n:x}", std::process::id())
}

/// kubectl with the cluster's kubeconfig and a private discovery cache.
#[derive(Debug)]
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    /// kubectl from `XTASK_KUBECTL` on the cluster of `XTASK_KUBECONFIG`; fails naming
    /// `cargo xtask k8s up` when either is not set.
    pub fn from_env() -> Self {
        let binary = crate::tool("XTASK_KUBECTL", "cargo xtask k8s up");
        let kubeconfig = crate::tool("XTASK_KUBECONFIG", "cargo xtask k8s up");
        let cache = tempfile::Builder::new()
            .prefix("logwarden-kubectl-")
            .tempdir()
            .unwrap_or_else(|err| panic!("a cache directory for kubectl: {err}"));
        Self {
            binary,
            kubeconfig,
            cache,
        }
    }

    /// The cluster's kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        command
    }

    /// Runs `kubectl <args>`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", self.binary.display()));
        Run::from(output)
    }

    /// Runs `kubectl <args>` with `input` on its standard input.
    pub fn run_with_input<I, S>(&self, args: I, input: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("running {}: {err}", self.binary.display()));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|err| panic!("writing to kubectl: {err}"));
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|err| panic!("waiting for kubectl: {err}"));
        Run::from(output)
    }

    /// `kubectl <args> -o json`, parsed; panics with kubectl's error when it fails.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let stdout = self
            .run(&all)
            .expect_success(&format!("kubectl {}", args.join(" ")));
        serde_json::from_str(&stdout).unwrap_or_else(|err| {
            panic!(
                "kubectl {} printed no JSON ({err}): {stdout}",
                args.join(" ")
            )
        })
    }

    /// A fresh namespace, deleted when the returned guard drops.
    pub fn namespace(&self, prefix: &str) -> Namespace<'_> {
        let name = unique(prefix);
        self.run(["create", "namespace", &name])
            .expect_success(&format!("creating namespace {name}"));
        Namespace {
            kubectl: self,
            name,
        }
    }
}

/// A namespace of one test: deleted (without waiting) when dropped.
#[derive(Debug)]
pub struct Namespace<'a> {
    kubectl: &'a Kubectl,
    /// Its name.
    pub name: String,
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .kubectl
            .run(["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Calls `check` every half second until it returns `Some`, or panics after `timeout` with
/// `what` and the last thing `check` saw (`Err`).
pub fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("{what}: not within {timeout:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}
