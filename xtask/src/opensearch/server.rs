//! Running the node: install if needed, render the configs, launch it detached (as the
//! `opensearch` user when root), then ask it for its health until it is ready.

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::OpenSearchSettings;
use super::config::{render_opensearch_yml, write_jvm_options};
use super::install::{InstallRecord, install};
use super::layout::{Layout, server_log, startup_log};
use super::plugin::Plugin;
use crate::paths::{self, Dirs};
use crate::prereq::{self, Java};
use crate::process::{self, Running};

/// Installs if needed, renders the configs and launches the node detached; returns its pid.
pub fn start(
    dirs: &Dirs,
    settings: &OpenSearchSettings,
    distribution: &Path,
    plugins: &[Plugin],
    java: &Java,
    root: bool,
) -> Result<u32> {
    let layout = Layout::new(dirs);
    for dir in [&layout.dir, &layout.data, &layout.logs, &layout.run] {
        paths::create_shared_dir(dir)?;
    }
    let record = InstallRecord {
        version: settings.version.clone(),
        plugins: plugins.to_vec(),
    };
    install(&layout, distribution, &record, java)?;

    let pristine = std::fs::read_to_string(layout.pristine_yml())
        .with_context(|| format!("reading {}", layout.pristine_yml().display()))?;
    let yml = layout.home.join("config/opensearch.yml");
    std::fs::write(
        &yml,
        render_opensearch_yml(&pristine, settings, &layout.data, &layout.logs),
    )
    .with_context(|| format!("writing {}", yml.display()))?;
    write_jvm_options(&layout, java)?;

    let pid_file = layout.pid_file();
    let _ = std::fs::remove_file(&pid_file);
    let java_opts = format!("-Xms{0} -Xmx{0}", settings.heap);
    let launcher = layout.home.join("bin/opensearch");
    let mut cmd = if root {
        let user = prereq::OPENSEARCH_USER;
        process::run(
            Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&layout.dir),
            &format!("giving {} to the {user} user", layout.dir.display()),
        )?;
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", user, "--", "env"])
            .arg(format!("OPENSEARCH_JAVA_HOME={}", java.home.display()))
            .arg(format!("OPENSEARCH_JAVA_OPTS={java_opts}"))
            .arg(&launcher);
        cmd
    } else {
        let mut cmd = Command::new(&launcher);
        cmd.env("OPENSEARCH_JAVA_HOME", &java.home)
            .env("OPENSEARCH_JAVA_OPTS", &java_opts);
        cmd
    };
    cmd.arg("-d")
        .arg("-p")
        .arg(&pid_file)
        .current_dir(&layout.home);

    // The launcher forks the JVM and exits within seconds; the JVM keeps running on its own.
    let mut launcher = process::spawn_detached(&mut cmd, &startup_log(dirs))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = launcher
            .try_wait()
            .context("waiting for the OpenSearch launcher")?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = launcher.kill();
            bail!(
                "the OpenSearch launcher did not return within 60 s\n  {}",
                process::log_excerpt(&startup_log(dirs), 20)
            );
        }
        sleep(Duration::from_millis(100));
    };
    if !status.success() {
        bail!(
            "the OpenSearch launcher failed ({status})\n  {}\n  {}",
            process::log_excerpt(&startup_log(dirs), 20),
            process::log_excerpt(&server_log(dirs), 20)
        );
    }
    let pid = process::java_processes_under(&layout.home)
        .first()
        .copied()
        .or_else(|| read_pid(&pid_file));
    pid.with_context(|| {
        format!(
            "OpenSearch exited right after its launcher\n  {}\n  {}",
            process::log_excerpt(&startup_log(dirs), 20),
            process::log_excerpt(&server_log(dirs), 20)
        )
    })
}

fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// What the node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `green`, `yellow` or `red`.
    pub status: String,
    /// Installed plugins (components), sorted.
    pub plugins: Vec<String>,
}

impl Health {
    /// Green or yellow: yellow is normal on one node (system indices with a replica).
    pub fn is_healthy(&self) -> bool {
        matches!(self.status.as_str(), "green" | "yellow")
    }
}

/// Asks the node for its cluster health and plugins.
pub fn health(settings: &OpenSearchSettings, timeout: Duration) -> Result<Health> {
    #[derive(Deserialize)]
    struct ClusterHealth {
        status: String,
    }
    #[derive(Deserialize)]
    struct CatPlugin {
        component: String,
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .build()
        .into();
    let base = settings.url();
    let status = agent
        .get(format!("{base}/_cluster/health"))
        .call()
        .with_context(|| format!("GET {base}/_cluster/health"))?
        .body_mut()
        .read_json::<ClusterHealth>()
        .context("reading the cluster health")?
        .status;
    let mut plugins: Vec<String> = agent
        .get(format!("{base}/_cat/plugins?format=json"))
        .call()
        .with_context(|| format!("GET {base}/_cat/plugins"))?
        .body_mut()
        .read_json::<Vec<CatPlugin>>()
        .context("reading the plugin list")?
        .into_iter()
        .map(|p| p.component)
        .collect();
    plugins.sort();
    plugins.dedup();
    Ok(Health { status, plugins })
}

/// Waits until the cluster is green or yellow and lists every expected plugin; fails early if the
/// process exits, and with the log's last lines after `timeout`.
pub fn wait_ready(
    dirs: &Dirs,
    settings: &OpenSearchSettings,
    server: &mut Running,
    expected_plugins: &[String],
    timeout: Duration,
) -> Result<Health> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("the REST port never accepted a connection");
    let failure = |what: String| {
        anyhow::anyhow!(
            "opensearch {what}\n  {}\n  {}\n  See `cargo xtask stack logs opensearch`; after fixing \
             the cause run `cargo xtask stack down` and `cargo xtask stack up`.",
            process::log_excerpt(&server_log(dirs), 20),
            process::log_excerpt(&startup_log(dirs), 10),
        )
    };
    loop {
        if let Some(exit) = server.exited() {
            return Err(failure(format!("exited during startup ({exit})")));
        }
        if Instant::now() >= deadline {
            return Err(failure(format!(
                "was not healthy within {} s: {last}",
                timeout.as_secs()
            )));
        }
        if process::port_in_use(settings.http_port) {
            match health(settings, Duration::from_secs(5)) {
                Ok(health) if health.is_healthy() => {
                    let missing: Vec<&String> = expected_plugins
                        .iter()
                        .filter(|p| !health.plugins.contains(p))
                        .collect();
                    if missing.is_empty() {
                        return Ok(health);
                    }
                    // Plugins are loaded before the REST layer opens: a missing one stays missing.
                    return Err(failure(format!(
                        "is up but lacks the plugins {missing:?} (it has {:?})",
                        health.plugins
                    )));
                }
                Ok(health) => last = format!("cluster health is {}", health.status),
                Err(err) => last = format!("{err:#}"),
            }
        }
        sleep(Duration::from_millis(500));
    }
}
