//! `k8s up|down|status` and the cluster `cargo xtask test` uses: a kwok cluster (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler and the kwok controller as local
//! processes, started detached by `kwokctl --runtime binary`) with two fake nodes.
//!
//! `up` is idempotent: a cluster that answers and has its nodes Ready is kept; one that exists
//! but does not answer (its processes died, say after a reboot) is deleted and created again.
//! Creation and deletion happen under a lock; each test run also holds a shared lock while it
//! uses the cluster, and the run that created it deletes it afterwards only if no other run
//! holds one.

use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::config::{self, CLUSTER, Layout, NODES, NODES_JSONPATH, Ports};
use super::lock::{self, Lock};
use super::tools::{self, Tools};
use crate::Ctx;
use crate::process;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The cluster's tools and state.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Where its state lives.
    pub layout: Layout,
    /// The built binaries.
    pub tools: Tools,
    ports: Ports,
}

/// How the cluster is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    /// kwokctl knows no cluster of that name.
    Absent,
    /// It exists, but its API server does not answer.
    Down(String),
    /// Its API server is ready; `ready` of `total` nodes are Ready.
    Up { total: usize, ready: usize },
}

impl Cluster {
    fn new(ctx: &Ctx, tools: Tools) -> Self {
        Self {
            layout: Layout::new(&ctx.dirs.k8s()),
            tools,
            ports: Ports::DEFAULT,
        }
    }

    /// `kubectl` against this cluster.
    fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.tools.bin("kubectl"));
        cmd.arg("--kubeconfig")
            .arg(self.layout.kubeconfig())
            .arg("--request-timeout=10s")
            .env("KUBECACHEDIR", self.layout.kube_cache());
        cmd
    }

    /// `kwokctl --name logwarden <args>` with the built binaries.
    fn kwokctl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.tools.bin("kwokctl"));
        cmd.args(["--name", CLUSTER])
            .args(args)
            .envs(config::kwokctl_env(&self.layout, &self.tools));
        cmd
    }

    fn health(&self) -> Health {
        if !self.layout.cluster_dir().exists() {
            return Health::Absent;
        }
        let ready = output(self.kubectl().args(["get", "--raw", "/readyz"]));
        match ready {
            Some(text) if text.trim() == "ok" => {}
            Some(text) => return Health::Down(format!("its API server says {:?}", text.trim())),
            None => return Health::Down("its API server does not answer".to_owned()),
        }
        let nodes = output(self.kubectl().args(["get", "nodes", "-o", NODES_JSONPATH]));
        let (total, ready) = config::ready_nodes(&nodes.unwrap_or_default());
        Health::Up { total, ready }
    }

    /// Creates the cluster unless it is up; `Ok(true)` if this call created it.
    fn ensure(&self) -> Result<bool> {
        let started = Instant::now();
        match self.health() {
            Health::Up { total, ready } if total == NODES && ready == NODES => {
                println!("k8s: cluster `{CLUSTER}` already up ({ready} nodes Ready)");
                return Ok(false);
            }
            Health::Up { total, ready } => {
                println!(
                    "k8s: cluster `{CLUSTER}` is up with {ready} of {total} nodes Ready; scaling to {NODES}…"
                );
                self.scale_nodes()?;
                return Ok(false);
            }
            Health::Down(why) => {
                println!("k8s: cluster `{CLUSTER}` exists but {why}; creating it again…");
                self.delete()?;
            }
            Health::Absent => {}
        }
        let busy: Vec<u16> = self
            .ports
            .all()
            .into_iter()
            .filter(|&p| process::port_in_use(p))
            .collect();
        if !busy.is_empty() {
            bail!(
                "ports {busy:?} on 127.0.0.1, which the cluster `{CLUSTER}` binds, are taken by \
                 another program; stop it (see `ss -ltnp`) and retry"
            );
        }
        crate::paths::create_shared_dir(&self.layout.state)?;
        let config = self.layout.config();
        std::fs::write(&config, config::kwokctl_config(&self.ports))
            .with_context(|| format!("writing {}", config.display()))?;
        println!(
            "k8s: creating cluster `{CLUSTER}` (kwok, binary runtime, API server on https://127.0.0.1:{})…",
            self.ports.apiserver
        );
        let kubeconfig = self.layout.kubeconfig();
        process::run(
            &mut self.kwokctl(&[
                "create",
                "cluster",
                "--config",
                &config.to_string_lossy(),
                "--kubeconfig",
                &kubeconfig.to_string_lossy(),
            ]),
            "kwokctl create cluster",
        )
        .with_context(|| {
            format!(
                "creating the kwok cluster; its components' logs are in {}",
                self.layout.cluster_dir().join("logs").display()
            )
        })?;
        self.wait_api_ready()?;
        self.scale_nodes()?;
        println!(
            "k8s: cluster `{CLUSTER}` up in {:.1} s ({NODES} nodes Ready)",
            started.elapsed().as_secs_f64()
        );
        Ok(true)
    }

    fn wait_api_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(text) = output(self.kubectl().args(["get", "--raw", "/readyz"]))
                && text.trim() == "ok"
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the cluster's API server is not ready after {} s; see the logs in {}",
                    READY_TIMEOUT.as_secs(),
                    self.layout.cluster_dir().join("logs").display()
                );
            }
            sleep(Duration::from_millis(250));
        }
    }

    /// `kwokctl scale node --replicas 2`, then waits until both are Ready.
    fn scale_nodes(&self) -> Result<()> {
        process::run(
            &mut self.kwokctl(&["scale", "node", "--replicas", &NODES.to_string()]),
            "kwokctl scale node",
        )?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let listing = output(self.kubectl().args(["get", "nodes", "-o", NODES_JSONPATH]));
            let (total, ready) = config::ready_nodes(&listing.unwrap_or_default());
            if total == NODES && ready == NODES {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{ready} of {total} nodes are Ready after {} s (want {NODES}); see the kwok \
                     controller's log in {}",
                    READY_TIMEOUT.as_secs(),
                    self.layout.cluster_dir().join("logs").display()
                );
            }
            sleep(Duration::from_millis(250));
        }
    }

    /// `kwokctl delete cluster`, then waits until its ports are free (kwokctl returns before
    /// the processes have exited).
    fn delete(&self) -> Result<()> {
        let started = Instant::now();
        process::run(
            &mut self.kwokctl(&[
                "delete",
                "cluster",
                "--kubeconfig",
                &self.layout.kubeconfig().to_string_lossy(),
            ]),
            "kwokctl delete cluster",
        )?;
        process::wait_ports_free(&self.ports.all(), Duration::from_secs(30))?;
        println!(
            "k8s: cluster `{CLUSTER}` deleted in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The `export XTASK_...=...` lines for a shell.
    pub fn env_lines(&self) -> Vec<String> {
        config::test_env(&self.layout, &self.tools)
            .into_iter()
            .map(|(key, value)| format!("export {key}={}", value.display()))
            .collect()
    }

    /// What the deploy tests get from `cargo xtask test`.
    pub fn test_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = config::test_env(&self.layout, &self.tools)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.display().to_string()))
            .collect();
        env.push((
            "KUBECACHEDIR".to_owned(),
            self.layout.kube_cache().display().to_string(),
        ));
        env
    }
}

/// A command's stdout if it succeeded.
fn output(cmd: &mut Command) -> Option<String> {
    let out: Output = cmd.stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `k8s up`: the tools, then the cluster; prints the tests' environment.
pub fn up(ctx: &Ctx) -> Result<Cluster> {
    let cluster = Cluster::new(ctx, tools::ensure(&ctx.dirs.cache)?);
    crate::paths::create_shared_dir(&cluster.layout.state)?;
    let _change = lock::exclusive(&cluster.layout.change_lock(), "the cluster")?;
    cluster.ensure()?;
    println!();
    for line in cluster.env_lines() {
        println!("{line}");
    }
    Ok(cluster)
}

/// `k8s down`: deletes the cluster, whoever started it.
pub fn down(ctx: &Ctx) -> Result<()> {
    let cluster = Cluster::new(ctx, tools::Tools::at(&ctx.dirs.cache));
    if !cluster.layout.cluster_dir().exists() {
        println!("k8s: no cluster `{CLUSTER}` (nothing to do)");
        return Ok(());
    }
    if !cluster.tools.bin("kwokctl").is_file() {
        bail!(
            "the cluster `{CLUSTER}` exists in {} but kwokctl is not built; run `cargo xtask k8s tools` and retry",
            cluster.layout.workdir().display()
        );
    }
    let _change = lock::exclusive(&cluster.layout.change_lock(), "the cluster")?;
    cluster.delete()
}

/// `k8s status`: the tools and the cluster; `Ok(false)` unless everything is built and up.
pub fn status(ctx: &Ctx) -> Result<bool> {
    let cluster = Cluster::new(ctx, tools::Tools::at(&ctx.dirs.cache));
    let mut ok = true;
    for tool in tools::TOOLS {
        let path = cluster.tools.path(tool);
        let state = if cluster.tools.is_built(tool) {
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            format!("{} ({})", path.display(), process::human_bytes(size))
        } else {
            ok = false;
            "not built (`cargo xtask k8s tools`)".to_owned()
        };
        println!("{:<25}{:<9}{state}", tool.name, tool.version);
    }
    let health = if cluster.tools.bin("kubectl").is_file() {
        cluster.health()
    } else {
        Health::Absent
    };
    let line = match &health {
        Health::Absent => "not running (`cargo xtask k8s up`)".to_owned(),
        Health::Down(why) => format!("exists but {why} (`cargo xtask k8s up` recreates it)"),
        Health::Up { total, ready } => format!(
            "up: API server https://127.0.0.1:{}, {ready} of {total} nodes Ready",
            cluster.ports.apiserver
        ),
    };
    println!("{:<25}{line}", format!("cluster {CLUSTER}"));
    println!("{:<25}{}", "state", cluster.layout.state.display());
    let up = matches!(health, Health::Up { total, ready } if total == NODES && ready == NODES);
    if up {
        println!(
            "{:<25}{}",
            "kubeconfig",
            cluster.layout.kubeconfig().display()
        );
    }
    Ok(ok && up)
}

/// The cluster as one `cargo xtask test` run uses it.
#[derive(Debug)]
pub struct InUse {
    /// The cluster.
    pub cluster: Cluster,
    /// Whether this run created it (and so deletes it afterwards).
    pub started: bool,
    /// Held while the run's tests may use the cluster.
    users: Lock,
}

/// For `cargo xtask test`: a running cluster, created if needed, with the built `tools`.
pub fn use_for_tests(ctx: &Ctx, tools: Tools) -> Result<InUse> {
    let cluster = Cluster::new(ctx, tools);
    crate::paths::create_shared_dir(&cluster.layout.state)?;
    let change = lock::exclusive(&cluster.layout.change_lock(), "the cluster")?;
    let started = cluster.ensure()?;
    let users = lock::shared(&cluster.layout.users_lock())?;
    drop(change);
    Ok(InUse {
        cluster,
        started,
        users,
    })
}

/// After the tests: deletes the cluster if this run created it and no other run uses it.
pub fn release(in_use: InUse) -> Result<()> {
    let InUse {
        cluster,
        started,
        users,
    } = in_use;
    drop(users);
    if !started {
        println!("test: leaving the Kubernetes cluster running (it was up before)");
        return Ok(());
    }
    let _change = lock::exclusive(&cluster.layout.change_lock(), "the cluster")?;
    match lock::try_exclusive(&cluster.layout.users_lock())? {
        Some(_alone) => {
            println!("test: deleting the Kubernetes cluster this run created…");
            cluster.delete()
        }
        None => {
            println!(
                "test: leaving the Kubernetes cluster running: another `cargo xtask test` uses it"
            );
            Ok(())
        }
    }
}
