//! The workspace's service binaries as processes of a measurement: built with the release
//! profile, started with their telemetry on a free loopback port and their output in a log
//! file, waited for (`/healthz`), read (`/metrics`, CPU time from `/proc`) and stopped the way
//! Kubernetes stops them (SIGTERM, then the drain).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::log_excerpt;

/// Builds `packages`' binaries (`logwarden-<package>`) with the release profile; returns the
/// directory they are in.
pub fn build_release(packages: &[&str]) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = crate::paths::workspace()?;
    let mut build = Command::new(&cargo);
    build
        .current_dir(&workspace)
        .args(["build", "--quiet", "--release"]);
    for package in packages {
        build.args([
            "--package",
            package,
            "--bin",
            &format!("logwarden-{package}"),
        ]);
    }
    let built = build.status().context("building the services")?;
    if !built.success() {
        bail!("building the services failed ({built})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    Ok(target.join("release"))
}

/// A service process of the run; killed when dropped without [`Service::stop`].
pub struct Service {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Service {
    /// Starts `<target>/logwarden-<name>` with `args` and `env`, its telemetry on a free
    /// loopback port, its output in `<logs>/<name>.log`.
    pub fn start(
        target: &Path,
        name: &'static str,
        args: &[&str],
        env: &[(String, String)],
        logs: &Path,
    ) -> Result<Self> {
        Self::start_logged(target, name, args, env, &logs.join(format!("{name}.log")))
    }

    /// [`Service::start`] with its output in `log`: for a second process of one binary.
    pub fn start_logged(
        target: &Path,
        name: &'static str,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let log = log.to_owned();
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating a log handle")?;
        let child = Command::new(target.join(format!("logwarden-{name}")))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("LOGWARDEN_TELEMETRY__LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        Ok(Self {
            name,
            child: Some(child),
            port,
            log,
        })
    }

    /// Waits until `/healthz` answers 200 (the service has started; `/readyz` is no use here:
    /// the stages report Kafka ready only after their first delivery); fails if the process
    /// exits first.
    pub fn wait_started(&mut self, timeout: Duration) -> Result<()> {
        let agent = agent(Duration::from_secs(2));
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.exited()? {
                bail!(
                    "the {} exited ({status}); {}",
                    self.name,
                    log_excerpt(&self.log, 30)
                );
            }
            let ready = agent
                .get(format!("http://127.0.0.1:{}/healthz", self.port))
                .call()
                .is_ok_and(|response| response.status().as_u16() == 200);
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "the {} did not start within {timeout:?}; {}",
            self.name,
            log_excerpt(&self.log, 30)
        )
    }

    /// How the process ended, if it did (without reaping it, so its CPU time stays readable).
    pub fn exited(&mut self) -> Result<Option<String>> {
        let Some(child) = &self.child else {
            return Ok(Some("stopped".to_owned()));
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .context("reading /proc/<pid>/stat")?;
        Ok(matches!(field(&stat, 3).as_deref(), Some("Z" | "X")).then(|| "exited".to_owned()))
    }

    /// The log's last lines, for an error message.
    pub fn log_tail(&self) -> String {
        log_excerpt(&self.log, 30)
    }

    /// CPU time (user + system) the process has used so far, also once it has exited and until
    /// it is stopped.
    pub fn cpu_time(&self) -> Result<Duration> {
        let child = self.child.as_ref().context("the service was stopped")?;
        cpu_time(child.id()).context("an unreadable /proc/<pid>/stat")
    }

    /// The process's peak resident memory (`VmHWM`), also once it has exited and until it is
    /// stopped.
    pub fn peak_memory(&self) -> Option<u64> {
        let child = self.child.as_ref()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The service's `/metrics` page.
    pub fn metrics(&self) -> Result<String> {
        agent(Duration::from_secs(10))
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .call()
            .context("reading metrics")?
            .body_mut()
            .read_to_string()
            .context("reading metrics")
    }

    /// SIGTERM, then waits for the drain (the services' deadline is 20 s); kills it after 30 s.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if child.try_wait().context("waiting for a service")?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().context("killing a service")?;
        child.wait().context("waiting for a service")?;
        bail!("the {} did not stop within 30 s of SIGTERM", self.name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP agent that returns error statuses as responses and uses no proxy.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

/// CPU time (user + system) process `pid` has used so far; `None` if it cannot be read.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = |n| -> Option<u64> { field(&stat, n)?.parse().ok() };
    let total = ticks(14)? + ticks(15)?;
    Some(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Field `n` (1-based, as `man proc` numbers them) of a `/proc/<pid>/stat` line; the command
/// name (field 2) may hold spaces and parentheses, so counting starts after its last `)`.
fn field(stat: &str, n: usize) -> Option<String> {
    if n < 3 {
        return None;
    }
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n - 3).map(str::to_owned)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_odd_command_names() {
        let stat = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0";
        let cases = [
            (1, None),
            (3, Some("S")),
            (4, Some("1")),
            (14, Some("250")),
            (15, Some("75")),
            (40, None),
        ];
        for (n, expected) in cases {
            assert_eq!(field(stat, n).as_deref(), expected, "field {n}");
        }
    }
}
