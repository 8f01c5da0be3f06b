//! Faults injected into the stack's own servers, for the fault suite: restart Kafka or
//! OpenSearch (gracefully or by SIGKILL) and freeze OpenSearch (SIGSTOP until resumed); and
//! the resident memory of the test process, for services run in-process.
//!
//! Both go through `$XTASK_STACK_CTL`, the script `cargo xtask test` writes (`stack-ctl restart
//! kafka`, `stack-ctl pid opensearch`), so the restart is the stack tooling's own (same settings,
//! ports and data, ready before it returns) and the pid is the current one, also after a restart.
//! Every other test talks to the same servers: a test binary that uses these must hold that one
//! test (cargo runs test binaries one after another).

use std::process::Command;
use std::time::{Duration, Instant};

/// The variable `cargo xtask test` sets to its `stack-ctl` script.
pub const STACK_CTL: &str = "XTASK_STACK_CTL";

/// One of the stack's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The Kafka node.
    Kafka,
    /// The OpenSearch node.
    OpenSearch,
}

impl Server {
    fn arg(self) -> &'static str {
        match self {
            Self::Kafka => "kafka",
            Self::OpenSearch => "opensearch",
        }
    }
}

/// How a server is stopped before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: it shuts down cleanly.
    Graceful,
    /// SIGKILL: a crash.
    Kill,
}

fn stack_ctl(args: &[&str]) -> String {
    let script = std::env::var_os(STACK_CTL).unwrap_or_else(|| {
        panic!(
            "{STACK_CTL} is not set: run the fault suite with `cargo xtask test` (e.g. `cargo \
             xtask test --no-lint -- -p <crate> --test <name>`), which names the stack's control \
             script"
        )
    });
    let output = Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running {} {args:?}: {err}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`stack {}` failed ({}):\n{text}",
        args.join(" "),
        output.status
    );
    text
}

/// Stops `server` and starts it again on the same data and ports; returns once it is ready, with
/// how long that took (also printed, with the tooling's own account of each phase).
///
/// # Panics
/// When `XTASK_STACK_CTL` is not set (naming `cargo xtask test`) or the restart fails.
pub async fn restart(server: Server, stop: Stop) -> Duration {
    let mut args = vec!["restart", server.arg()];
    if stop == Stop::Kill {
        args.push("--kill");
    }
    let started = Instant::now();
    let text = tokio::task::spawn_blocking(move || stack_ctl(&args))
        .await
        .unwrap_or_else(|err| panic!("the restart's thread failed: {err}"));
    let took = started.elapsed();
    eprintln!("{text}{} restarted ({stop:?}) in {took:?}", server.arg());
    took
}

/// The process id of `server` now (it changes at every restart).
///
/// # Panics
/// When `XTASK_STACK_CTL` is not set or the server is not running.
pub fn pid(server: Server) -> String {
    let text = stack_ctl(&["pid", server.arg()]);
    let pid = text.trim().to_owned();
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "`stack pid {}` printed no pid: {text}",
        server.arg()
    );
    pid
}

/// OpenSearch stopped (SIGSTOP: the process does not run at all, every request hangs); it runs
/// again (SIGCONT) on [`Frozen::resume`] or when this is dropped, also when the test fails midway.
#[derive(Debug)]
pub struct Frozen {
    pid: String,
    since: Instant,
}

/// Freezes the stack's OpenSearch until the returned guard is resumed or dropped.
///
/// # Panics
/// When `XTASK_STACK_CTL` is not set or the signal cannot be sent.
pub fn freeze_opensearch() -> Frozen {
    let pid = pid(Server::OpenSearch);
    signal("STOP", &pid);
    eprintln!("OpenSearch (pid {pid}) frozen");
    Frozen {
        pid,
        since: Instant::now(),
    }
}

impl Frozen {
    /// Lets OpenSearch run again; returns how long it was frozen.
    pub fn resume(self) -> Duration {
        self.since.elapsed()
        // Drop sends SIGCONT.
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("CONT", &self.pid);
        eprintln!(
            "OpenSearch (pid {}) resumed after {:?}",
            self.pid,
            self.since.elapsed()
        );
    }
}

fn signal(name: &str, pid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .unwrap_or_else(|err| panic!("running kill: {err}"));
    // In Drop (SIGCONT) a panic would abort a failing test: report instead.
    if !status.success() {
        eprintln!("SIG{name} to pid {pid} failed ({status})");
        assert!(name == "CONT", "SIG{name} to pid {pid} failed ({status})");
    }
}

/// Resident memory of this process in MiB, from `/proc/self/status` (0 if unreadable): a
/// service run in-process by a test shows its growth here.
pub fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}
