//! Helm as a user runs it, on the repository's chart, with its own home: each [`Helm`] keeps
//! its cache, config and data (repositories, plugins, registry logins) in a temporary directory,
//! so the tests never read or write the user's, and run in parallel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::manifests::Manifests;

/// The chart under test: `helm/logwarden` in the repository.
pub fn chart() -> PathBuf {
    crate::workspace().join("helm").join("logwarden")
}

/// The chart's CI values files (`helm/logwarden/ci/*.yaml`), by name without the extension.
pub fn ci_values() -> Vec<(String, PathBuf)> {
    let dir = chart().join("ci");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_owned();
            Some((name, path))
        })
        .collect();
    files.sort();
    files
}

/// The path of one CI values file, e.g. `ci("keda")`.
pub fn ci(name: &str) -> PathBuf {
    chart().join("ci").join(format!("{name}.yaml"))
}

/// What a helm command printed and whether it succeeded.
#[derive(Debug)]
pub struct Run {
    /// Exit status was 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Stdout, or a panic showing what helm said when it failed.
    pub fn expect_success(self, what: &str) -> String {
        assert!(
            self.success,
            "{what} failed:\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// The helm binary `cargo xtask k8s up` built, with a private home.
#[derive(Debug)]
pub struct Helm {
    binary: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: Option<PathBuf>,
}

impl Helm {
    /// Helm from `XTASK_HELM`; fails naming `cargo xtask k8s up` when it is not set.
    pub fn from_env() -> Self {
        let binary = crate::tool("XTASK_HELM", "cargo xtask k8s up");
        let home = tempfile::Builder::new()
            .prefix("logwarden-helm-")
            .tempdir()
            .unwrap_or_else(|err| panic!("a temporary home for helm: {err}"));
        Self {
            binary,
            home,
            kubeconfig: None,
        }
    }

    /// The same, talking to the cluster of `kubeconfig`.
    pub fn with_kubeconfig(mut self, kubeconfig: &Path) -> Self {
        self.kubeconfig = Some(kubeconfig.to_owned());
        self
    }

    /// Runs `helm <args>`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let home = self.home.path();
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"));
        match &self.kubeconfig {
            Some(path) => command.env("KUBECONFIG", path),
            // No cluster: helm must not find one by accident.
            None => command.env("KUBECONFIG", home.join("no-kubeconfig")),
        };
        let output = command
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", self.binary.display()));
        Run::from(output)
    }

    /// `helm template <release> <chart> -f <values>... <extra>...`: the rendered objects, or
    /// helm's error text.
    pub fn template(
        &self,
        release: &str,
        values: &[&Path],
        extra: &[&str],
    ) -> Result<Manifests, String> {
        self.template_chart(&chart(), release, values, extra)
    }

    /// [`Helm::template`] of another copy of the chart.
    pub fn template_chart(
        &self,
        chart: &Path,
        release: &str,
        values: &[&Path],
        extra: &[&str],
    ) -> Result<Manifests, String> {
        let mut args: Vec<std::ffi::OsString> = vec!["template".into(), release.into()];
        args.push(chart.into());
        for file in values {
            args.push("-f".into());
            args.push((*file).into());
        }
        args.extend(extra.iter().map(Into::into));
        let run = self.run(&args);
        if !run.success {
            return Err(run.stderr);
        }
        Ok(Manifests::parse(&run.stdout))
    }
}
