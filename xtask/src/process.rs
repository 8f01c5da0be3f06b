//! Operating-system processes: running a tool to completion, spawning a server that outlives
//! `cargo xtask`, finding the servers again (pid, or a scan of `/proc` for strays), stopping them,
//! their memory, their ports and their logs.
//!
//! Everything here reads `/proc` directly: the stack is Linux-only, like the machines it runs on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs a command to completion with its output captured; on failure the error shows the
/// command's last lines of output. `what` says what the command was for.
pub fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let output = cmd.stdin(Stdio::null()).output().with_context(|| {
        format!(
            "{what}: cannot run `{}`",
            cmd.get_program().to_string_lossy()
        )
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let lines: Vec<&str> = text.lines().collect();
        let last = lines[lines.len().saturating_sub(25)..].join("\n  ");
        bail!("{what} failed ({}):\n  {last}", output.status);
    }
    Ok(output)
}

/// Spawns a server in its own process group (so a Ctrl-C in the terminal does not reach it) with
/// stdin closed and stdout/stderr going to `log` (truncated). The caller does not wait for it:
/// it keeps running after `cargo xtask` exits.
pub fn spawn_detached(cmd: &mut Command, log: &Path) -> Result<Child> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("duplicating the handle of {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting `{}`", cmd.get_program().to_string_lossy()))
}

/// A server being waited for: our own child (its early exit is seen, and reaped, at once) or a
/// process known by pid only.
#[derive(Debug)]
pub enum Running {
    /// Spawned by this run of xtask.
    Child(Child),
    /// Started earlier, or by a launcher that exited.
    Pid(u32),
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        match self {
            Self::Child(child) => child.id(),
            Self::Pid(pid) => *pid,
        }
    }

    /// How the process ended, if it did.
    pub fn exited(&mut self) -> Option<String> {
        match self {
            Self::Child(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(err) => Some(format!("cannot be waited for: {err}")),
            },
            Self::Pid(pid) => (!is_alive(*pid)).then(|| format!("process {pid} is gone")),
        }
    }
}

/// Whether the process exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_state(&stat))
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

/// The state letter from `/proc/<pid>/stat` (the field after the parenthesised command name,
/// which may itself contain spaces and parentheses).
fn stat_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The process's arguments, `argv[0]` first.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
    )
}

/// Whether a command line mentions a path inside `dir` (or `dir` itself).
fn mentions_dir(args: &[String], dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    let inside = format!("{dir}/");
    args.iter()
        .any(|arg| arg.contains(&inside) || arg == dir || arg.ends_with(&format!("={dir}")))
}

/// Whether `pid` is a live process whose command line mentions `dir`: guards against a recorded
/// pid that was reused by an unrelated process.
pub fn runs_under(pid: u32, dir: &Path) -> bool {
    is_alive(pid) && cmdline(pid).is_some_and(|args| mentions_dir(&args, dir))
}

/// Every live `java` process whose command line mentions `dir`: finds servers whose pid was lost.
pub fn java_processes_under(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && is_alive(pid))
        .filter(|&pid| {
            cmdline(pid).is_some_and(|args| {
                args.first()
                    .is_some_and(|argv0| Path::new(argv0).file_name() == Some("java".as_ref()))
                    && mentions_dir(&args, dir)
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// How [`stop`] ended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Gracefully,
    /// It ignored SIGTERM for too long and was killed.
    Killed,
    /// It was already gone.
    AlreadyGone,
}

/// Sends SIGTERM, waits up to `grace` for the process to exit, then sends SIGKILL and waits again.
pub fn stop(pid: u32, grace: Duration) -> Result<Stopped> {
    if !is_alive(pid) {
        return Ok(Stopped::AlreadyGone);
    }
    signal(pid, "TERM")?;
    if wait_gone(pid, grace) {
        return Ok(Stopped::Gracefully);
    }
    signal(pid, "KILL")?;
    if wait_gone(pid, Duration::from_secs(10)) {
        return Ok(Stopped::Killed);
    }
    bail!(
        "process {pid} survived SIGKILL for 10 s (stuck in the kernel?); check `ps -o stat,cmd -p {pid}`"
    )
}

/// Sends SIGKILL (no chance to flush or deregister: a crash) and waits until the process is gone.
pub fn kill(pid: u32) -> Result<Stopped> {
    if !is_alive(pid) {
        return Ok(Stopped::AlreadyGone);
    }
    signal(pid, "KILL")?;
    if wait_gone(pid, Duration::from_secs(10)) {
        return Ok(Stopped::Killed);
    }
    bail!(
        "process {pid} survived SIGKILL for 10 s (stuck in the kernel?); check `ps -o stat,cmd -p {pid}`"
    )
}

fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .context("running `kill`")?;
    if !status.success() && is_alive(pid) {
        bail!("cannot send SIG{name} to process {pid}; are you its owner (or root)?");
    }
    Ok(())
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
    true
}

/// Resident memory in bytes, from `VmRSS` in `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_rss(&status)
}

fn vm_rss(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes for humans: `412 MB`, `1.3 GB`.
pub fn human_bytes(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let mb = bytes as f64 / MB;
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.0} MB")
    }
}

/// Whether something accepts connections on `127.0.0.1:port`.
pub fn port_in_use(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Waits until nothing listens on any of the ports any more.
pub fn wait_ports_free(ports: &[u16], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let busy: Vec<u16> = ports.iter().copied().filter(|&p| port_in_use(p)).collect();
        if busy.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "ports {busy:?} on 127.0.0.1 are still in use {} s after the servers stopped; \
                 find the owner with `ss -ltnp` and stop it",
                timeout.as_secs()
            );
        }
        sleep(Duration::from_millis(200));
    }
}

/// The last `n` lines of a file, reading backwards from its end (server logs grow large).
pub fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    const CHUNK: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let mut start = file.metadata()?.len();
    let mut buf: Vec<u8> = Vec::new();
    while start > 0 && buf.iter().filter(|&&b| b == b'\n').count() <= n {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(start - from).unwrap_or(0)];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect())
}

/// The last lines of a log, formatted for an error message.
pub fn log_excerpt(path: &Path, n: usize) -> String {
    match tail(path, n) {
        Ok(lines) if lines.is_empty() => format!("({} is empty)", path.display()),
        Ok(lines) => format!(
            "last lines of {}:\n    {}",
            path.display(),
            lines.join("\n    ")
        ),
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_after_odd_command_names() {
        assert_eq!(stat_state("42 (java) S 1 42 42 0"), Some('S'));
        assert_eq!(stat_state("42 (a) b (c)) Z 1 42"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn matches_paths_inside_the_directory_only() {
        let dir = Path::new("/var/lib/logwarden/stack");
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(mentions_dir(
            &args(&[
                "java",
                "kafka.Kafka",
                "/var/lib/logwarden/stack/kafka/server.properties"
            ]),
            dir
        ));
        assert!(mentions_dir(
            &args(&[
                "java",
                "-Dopensearch.path.home=/var/lib/logwarden/stack/opensearch/home"
            ]),
            dir
        ));
        assert!(!mentions_dir(
            &args(&["java", "/var/lib/logwarden/stack2/kafka/server.properties"]),
            dir
        ));
        assert!(!mentions_dir(&args(&["java", "-version"]), dir));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tjava\nVmPeak:\t 9999 kB\nVmRSS:\t  409600 kB\n";
        assert_eq!(vm_rss(status), Some(409_600 * 1024));
        assert_eq!(human_bytes(409_600 * 1024), "400 MB");
        assert_eq!(human_bytes(1_395_864_371), "1.3 GB");
    }

    #[test]
    fn tails_long_files() {
        let path = std::env::temp_dir().join(format!("xtask-tail-{}.log", std::process::id()));
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write temp file");
        let last = tail(&path, 3).expect("tail");
        assert_eq!(last, ["line 49997", "line 49998", "line 49999"]);
        assert_eq!(tail(&path, 0).expect("tail").len(), 0);
        std::fs::write(&path, "only\n").expect("write temp file");
        assert_eq!(tail(&path, 5).expect("tail"), ["only"]);
        std::fs::remove_file(&path).expect("remove temp file");
    }
}
