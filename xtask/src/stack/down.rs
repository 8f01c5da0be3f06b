//! `stack down` and `stack reset`: stop what the state file lists plus any stray `java` process
//! whose command line points into the data directory (so a lost state file never leaks
//! servers), wait for the ports, and update or remove the state file.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::join;
use super::state::State;
use crate::Ctx;
use crate::process;

const STOP_GRACE: Duration = Duration::from_secs(30);

/// Which servers to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Which {
    /// The Kafka node.
    pub kafka: bool,
    /// The OpenSearch node.
    pub opensearch: bool,
}

impl Which {
    /// Both servers, and any stray server process found in the data directory.
    pub const ALL: Self = Self {
        kafka: true,
        opensearch: true,
    };
}

/// `stack down`: stops every server of the stack and removes the state file.
pub fn down(ctx: &Ctx) -> Result<()> {
    stop(ctx, Which::ALL)
}

/// Stops the chosen servers (both: also strays), waits for their ports, updates the state file.
pub fn stop(ctx: &Ctx, which: Which) -> Result<()> {
    let dirs = &ctx.dirs;
    let state = match State::load(&dirs.state_file()) {
        Ok(state) => state.unwrap_or_default(),
        Err(_) if which == Which::ALL => {
            // The stray scan below finds the servers by their command line.
            println!(
                "stack: ignoring the unreadable {}",
                dirs.state_file().display()
            );
            State::default()
        }
        Err(err) => return Err(err),
    };
    let mut targets: Vec<(String, u32)> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    if let Some(k) = state.kafka.as_ref().filter(|_| which.kafka) {
        ports.extend([k.settings.port, k.settings.controller_port]);
        if process::runs_under(k.pid, &dirs.data) {
            targets.push(("kafka".to_owned(), k.pid));
        }
    }
    if let Some(o) = state.opensearch.as_ref().filter(|_| which.opensearch) {
        ports.extend([o.settings.http_port, o.settings.transport_port]);
        if process::runs_under(o.pid, &dirs.data) {
            targets.push(("opensearch".to_owned(), o.pid));
        }
    }
    if which == Which::ALL {
        for pid in process::java_processes_under(&dirs.data) {
            if targets.iter().all(|(_, known)| *known != pid) {
                let name = if process::runs_under(pid, &dirs.kafka()) {
                    "kafka (stray)"
                } else if process::runs_under(pid, &dirs.opensearch()) {
                    "opensearch (stray)"
                } else {
                    "java (stray)"
                };
                targets.push((name.to_owned(), pid));
            }
        }
    }
    if targets.is_empty() {
        println!("stack: nothing running");
    }
    let results: Vec<Result<()>> = thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(name, pid)| {
                scope.spawn(move || {
                    let started = Instant::now();
                    println!("{name}: stopping (pid {pid})…");
                    let how = process::stop(*pid, STOP_GRACE)
                        .with_context(|| format!("stopping {name}"))?;
                    let how = match how {
                        process::Stopped::Gracefully => "",
                        process::Stopped::Killed => ", killed after ignoring SIGTERM",
                        process::Stopped::AlreadyGone => ", was already gone",
                    };
                    println!(
                        "{name}: stopped in {:.1} s{how}",
                        started.elapsed().as_secs_f64()
                    );
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    process::wait_ports_free(&ports, Duration::from_secs(30))?;

    let remaining = State {
        kafka: state.kafka.filter(|_| !which.kafka),
        opensearch: state.opensearch.filter(|_| !which.opensearch),
    };
    if remaining == State::default() {
        match std::fs::remove_file(dirs.state_file()) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("removing {}", dirs.state_file().display()));
            }
        }
    } else {
        remaining.save(&dirs.state_file())?;
    }
    Ok(())
}

/// `stack reset`: stops the stack and deletes its data directory; the cache stays.
pub fn reset(ctx: &Ctx) -> Result<()> {
    down(ctx)?;
    let data = &ctx.dirs.data;
    if data.exists() {
        std::fs::remove_dir_all(data).with_context(|| format!("removing {}", data.display()))?;
        println!("stack: removed {}", data.display());
    }
    println!(
        "stack: cache kept at {} (delete it by hand to download everything again)",
        ctx.dirs.cache.display()
    );
    Ok(())
}
