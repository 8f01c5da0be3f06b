//! The local stack as a whole: `stack up`, `down`, `status`, `logs` and `reset`, and the state
//! file that lets later commands (and `test`, `demo`) find what `up` started.
//!
//! `up` is idempotent: servers that already run with the asked settings are kept, missing ones
//! are installed and started, both in parallel, and it returns only once Kafka lists broker 1
//! and OpenSearch is green or yellow with its plugins, then creates the pipeline's topics.
//! `down` stops what the state file lists plus any stray `java` process whose command line
//! points into the data directory, so a lost state file never leaks servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use pipeline::kafka::{TopicNames, TopicOutcome};

use crate::Ctx;
use crate::kafka::{self, KafkaSettings};
use crate::opensearch::{self, OpenSearchSettings, Plugin};
use crate::paths;
use crate::prereq::{self, Java, Maven};
use crate::process::{self, Running};

const KAFKA_READY_TIMEOUT: Duration = Duration::from_secs(120);
const OPENSEARCH_READY_TIMEOUT: Duration = Duration::from_secs(240);
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The settings of a stack, as `stack up`, `test` and `demo` take them.
#[derive(Debug, Clone, clap::Args)]
pub struct StackOptions {
    /// Apache Kafka version (Maven Central `org.apache.kafka:kafka_2.13`).
    #[arg(long, default_value = kafka::DEFAULT_VERSION, value_name = "VERSION")]
    pub kafka_version: String,
    /// Kafka's client port on 127.0.0.1.
    #[arg(long, default_value_t = 9092, value_name = "PORT")]
    pub kafka_port: u16,
    /// Kafka's KRaft controller port on 127.0.0.1.
    #[arg(long, default_value_t = 9093, value_name = "PORT")]
    pub kafka_controller_port: u16,
    /// Kafka's JVM heap.
    #[arg(long, default_value = "512m", value_name = "SIZE")]
    pub kafka_heap: String,
    /// Kafka's SASL_SSL port on 127.0.0.1 (SCRAM-SHA-256/512 and PLAIN, the stack's CA).
    #[arg(long, default_value_t = 9094, value_name = "PORT")]
    pub kafka_sasl_ssl_port: u16,
    /// Kafka's mutual-TLS port on 127.0.0.1 (SSL, client certificate required).
    #[arg(long, default_value_t = 9095, value_name = "PORT")]
    pub kafka_mtls_port: u16,
    /// OpenSearch version (Maven Central integ-test distribution; give an exact version).
    #[arg(long, default_value = opensearch::DEFAULT_VERSION, value_name = "VERSION")]
    pub opensearch_version: String,
    /// OpenSearch's REST port on 127.0.0.1.
    #[arg(long, default_value_t = 9200, value_name = "PORT")]
    pub opensearch_port: u16,
    /// OpenSearch's transport port on 127.0.0.1.
    #[arg(long, default_value_t = 9300, value_name = "PORT")]
    pub opensearch_transport_port: u16,
    /// OpenSearch's JVM heap.
    #[arg(long, default_value = "1g", value_name = "SIZE")]
    pub opensearch_heap: String,
    /// An OpenSearch plugin zip to install besides job-scheduler (repeatable), e.g. the
    /// anomaly-detection and alerting zips, which Maven Central does not publish.
    #[arg(long = "opensearch-plugin", value_name = "ZIP")]
    pub opensearch_plugins: Vec<PathBuf>,
    /// Partitions of each pipeline topic.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub partitions: i32,
}

impl StackOptions {
    fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            version: self.kafka_version.clone(),
            port: self.kafka_port,
            controller_port: self.kafka_controller_port,
            heap: self.kafka_heap.clone(),
            sasl_ssl_port: self.kafka_sasl_ssl_port,
            mtls_port: self.kafka_mtls_port,
        }
    }

    fn opensearch(&self) -> Result<OpenSearchSettings> {
        let extra_plugins = self
            .opensearch_plugins
            .iter()
            .map(|zip| {
                zip.canonicalize().with_context(|| {
                    format!(
                        "--opensearch-plugin {}: no such file; pass the path of a plugin zip",
                        zip.display()
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(OpenSearchSettings {
            version: self.opensearch_version.clone(),
            http_port: self.opensearch_port,
            transport_port: self.opensearch_transport_port,
            heap: self.opensearch_heap.clone(),
            extra_plugins,
        })
    }

    fn validate(&self) -> Result<()> {
        let ports = [
            ("--kafka-port", self.kafka_port),
            ("--kafka-controller-port", self.kafka_controller_port),
            ("--opensearch-port", self.opensearch_port),
            (
                "--opensearch-transport-port",
                self.opensearch_transport_port,
            ),
        ];
        for (i, (flag, port)) in ports.iter().enumerate() {
            if let Some((other, _)) = ports[i + 1..].iter().find(|(_, p)| p == port) {
                bail!("{flag} and {other} are both {port}; give each server port its own number");
            }
        }
        for (flag, heap) in [
            ("--kafka-heap", &self.kafka_heap),
            ("--opensearch-heap", &self.opensearch_heap),
        ] {
            if !is_heap_size(heap) {
                bail!("{flag} {heap:?} is not a JVM heap size; use e.g. 512m or 1g");
            }
        }
        if self.partitions < 1 {
            bail!(
                "--partitions {} must be at least 1; the default is 4",
                self.partitions
            );
        }
        Ok(())
    }
}

/// A JVM memory size: digits with an optional k/m/g suffix.
fn is_heap_size(size: &str) -> bool {
    let digits = size.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
    size.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The Kafka node `up` started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaState {
    /// How it runs.
    pub settings: KafkaSettings,
    /// The JVM's pid.
    pub pid: u32,
    /// The Java it runs on.
    pub java: Java,
    /// Partitions of each pipeline topic.
    pub partitions: i32,
}

/// The OpenSearch node `up` started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSearchState {
    /// How it runs.
    pub settings: OpenSearchSettings,
    /// The JVM's pid.
    pub pid: u32,
    /// The Java it runs on.
    pub java: Java,
    /// Names of the installed plugins.
    pub plugins: Vec<String>,
}

/// `stack.json`: what runs, so that `status`, `down`, `test` and `demo` need no flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The Kafka node, once spawned.
    pub kafka: Option<KafkaState>,
    /// The OpenSearch node, once spawned.
    pub opensearch: Option<OpenSearchState>,
}

impl State {
    /// Reads the state file; `None` if there is none.
    pub fn load(file: &Path) -> Result<Option<Self>> {
        match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "{} is not a valid stack state; `cargo xtask stack down` stops the servers \
                     anyway and removes it",
                    file.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", file.display())),
        }
    }

    /// Writes the state file atomically (a reader never sees half of it).
    pub fn save(&self, file: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the stack state")?;
        let partial = file.with_extension("json.partial");
        std::fs::write(&partial, json).with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))
    }

    /// The Kafka bootstrap servers, if Kafka was started.
    pub fn kafka_brokers(&self) -> Option<String> {
        self.kafka.as_ref().map(|k| k.settings.brokers())
    }

    /// The OpenSearch URL, if OpenSearch was started.
    pub fn opensearch_url(&self) -> Option<String> {
        self.opensearch.as_ref().map(|o| o.settings.url())
    }

    /// Java processes running from `data` that this state does not list (left by an interrupted
    /// `up` or a lost state file).
    fn strays(&self, data: &Path) -> Vec<u32> {
        let known = [
            self.kafka.as_ref().map(|k| k.pid),
            self.opensearch.as_ref().map(|o| o.pid),
        ];
        process::java_processes_under(data)
            .into_iter()
            .filter(|pid| !known.contains(&Some(*pid)))
            .collect()
    }

    /// Forgets servers whose process is gone (or whose pid now belongs to something else).
    fn live(mut self, data: &Path) -> Self {
        if self
            .kafka
            .as_ref()
            .is_some_and(|k| !process::runs_under(k.pid, data))
        {
            self.kafka = None;
        }
        if self
            .opensearch
            .as_ref()
            .is_some_and(|o| !process::runs_under(o.pid, data))
        {
            self.opensearch = None;
        }
        self
    }
}

/// What `up` did.
#[derive(Debug, Clone)]
pub struct Up {
    /// The running stack.
    pub state: State,
    /// Whether this run started Kafka (false: it was running already).
    pub started_kafka: bool,
    /// Whether this run started OpenSearch.
    pub started_opensearch: bool,
}

/// `stack up`: servers already running must have the asked settings.
pub fn up(ctx: &Ctx, options: &StackOptions) -> Result<Up> {
    bring_up(ctx, options, false)
}

/// For `test` and `demo`: servers already running are used as they are, whatever their settings;
/// missing ones are started with `options`.
pub fn ensure_up(ctx: &Ctx, options: &StackOptions) -> Result<Up> {
    bring_up(ctx, options, true)
}

fn bring_up(ctx: &Ctx, options: &StackOptions, adopt_running: bool) -> Result<Up> {
    let started = Instant::now();
    options.validate()?;
    let dirs = &ctx.dirs;
    let running = State::load(&dirs.state_file())?
        .unwrap_or_default()
        .live(&dirs.data);

    // Settings: what runs stays as it is (and must match unless adopted), the rest comes from
    // the options.
    let mut kafka_settings = options.kafka();
    let mut opensearch_settings = options.opensearch()?;
    let mut mismatches = Vec::new();
    if let Some(k) = &running.kafka {
        if k.settings.sasl_ssl_port == 0 {
            bail!(
                "the running Kafka (pid {}) was started by an older `cargo xtask` and has no \
                 TLS/SASL listeners; run `cargo xtask stack down` and retry",
                k.pid
            );
        }
        mismatches.extend(k.settings.differences(&kafka_settings));
        kafka_settings = k.settings.clone();
    }
    if let Some(o) = &running.opensearch {
        mismatches.extend(o.settings.differences(&opensearch_settings));
        opensearch_settings = o.settings.clone();
    }
    if !mismatches.is_empty() && !adopt_running {
        bail!(
            "the stack already runs with other settings: {}; run `cargo xtask stack down` first \
             (or repeat the running settings)",
            mismatches.join(", ")
        );
    }
    let strays = running.strays(&dirs.data);
    if !strays.is_empty() {
        bail!(
            "java processes {strays:?} run from {} but the state file does not list them (an \
             interrupted `stack up`?); run `cargo xtask stack down` first, it stops them",
            dirs.data.display()
        );
    }

    // Prerequisites, one at a time (apt must not run twice at once).
    if running.kafka.is_none() || running.opensearch.is_none() {
        paths::create_shared_dir(&dirs.cache)?;
        paths::create_shared_dir(&dirs.data)?;
    }
    let kafka_plan = match &running.kafka {
        Some(k) => Plan::Keep(k),
        None => {
            check_ports_free(
                "kafka",
                &[
                    kafka_settings.port,
                    kafka_settings.controller_port,
                    kafka_settings.sasl_ssl_port,
                    kafka_settings.mtls_port,
                ],
            )?;
            Plan::Start {
                mvn: prereq::maven(ctx.root)?,
                java: prereq::java_for_kafka(ctx.root)?,
            }
        }
    };
    let opensearch_plan = match &running.opensearch {
        Some(o) => Plan::Keep(o),
        None => {
            check_ports_free(
                "opensearch",
                &[
                    opensearch_settings.http_port,
                    opensearch_settings.transport_port,
                ],
            )?;
            if ctx.root {
                paths::check_traversable_by_others(&dirs.data, "--data-dir")?;
                prereq::ensure_system_user(prereq::OPENSEARCH_USER)?;
            }
            let java = prereq::java_for_opensearch(&dirs.cache)?;
            if ctx.root {
                paths::check_traversable_by_others(&java.bin(), "OPENSEARCH_JAVA_HOME")?;
            }
            Plan::Start {
                mvn: prereq::maven(ctx.root)?,
                java,
            }
        }
    };
    let starts_kafka = matches!(kafka_plan, Plan::Start { .. });
    let starts_opensearch = matches!(opensearch_plan, Plan::Start { .. });

    // Both servers in parallel; each records itself in the state file as soon as it is spawned,
    // so that `down` finds it even if the rest fails.
    let state_file = StateFile::new(dirs.state_file(), running.clone());
    let (kafka_result, opensearch_result) = thread::scope(|scope| {
        let kafka = scope.spawn(|| {
            kafka_up(
                ctx,
                &kafka_settings,
                kafka_plan,
                options.partitions,
                &state_file,
            )
        });
        let opensearch =
            scope.spawn(|| opensearch_up(ctx, &opensearch_settings, opensearch_plan, &state_file));
        (join(kafka), join(opensearch))
    });
    match (kafka_result, opensearch_result) {
        (Ok(()), Ok(())) => {}
        (Err(k), Err(o)) => bail!("{k:#}\n\n{o:#}"),
        (Err(err), Ok(())) | (Ok(()), Err(err)) => return Err(err),
    }
    let state = state_file.into_state();

    if let Some(k) = &state.kafka {
        let outcomes = kafka::ensure_topics(&ctx.rt, &k.settings, k.partitions)?;
        let created: Vec<&str> = outcomes
            .iter()
            .filter(|(_, o)| *o == TopicOutcome::Created)
            .map(|(name, _)| name.as_str())
            .collect();
        if !created.is_empty() {
            println!(
                "kafka: created topics {} ({} partitions each)",
                created.join(", "),
                k.partitions
            );
        }
    }
    if starts_kafka || starts_opensearch {
        println!("stack: up in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        println!("stack: already up (nothing to do)");
    }
    Ok(Up {
        state,
        started_kafka: starts_kafka,
        started_opensearch: starts_opensearch,
    })
}

/// What `up` does with one server.
#[derive(Debug)]
enum Plan<'a, S> {
    /// It runs already: wait until it is ready, nothing more.
    Keep(&'a S),
    /// Install it if needed and start it with this Java.
    Start { mvn: Maven, java: Java },
}

/// The state file while both servers are being started from two threads.
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    state: Mutex<State>,
}

impl StateFile {
    fn new(path: PathBuf, state: State) -> Self {
        Self {
            path,
            state: Mutex::new(state),
        }
    }

    /// Changes the state and writes the file at once.
    fn update(&self, change: impl FnOnce(&mut State)) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        state.save(&self.path)
    }

    fn into_state(self) -> State {
        self.state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn check_ports_free(server: &str, ports: &[u16]) -> Result<()> {
    let busy: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| process::port_in_use(p))
        .collect();
    if !busy.is_empty() {
        bail!(
            "{server}: ports {busy:?} on 127.0.0.1 are taken by another program; stop it (see \
             `ss -ltnp`) or choose other ports (`cargo xtask stack up --help`)"
        );
    }
    Ok(())
}

fn kafka_up(
    ctx: &Ctx,
    settings: &KafkaSettings,
    plan: Plan<'_, KafkaState>,
    partitions: i32,
    state_file: &StateFile,
) -> Result<()> {
    let started = Instant::now();
    let mut server = match &plan {
        Plan::Keep(k) => Running::Pid(k.pid),
        Plan::Start { mvn, java } => {
            let lib = kafka::install(&ctx.dirs.cache, mvn, &settings.version)?;
            println!(
                "kafka: starting Kafka {} on 127.0.0.1:{} (Java {})…",
                settings.version, settings.port, java.major
            );
            let child = kafka::start(&ctx.dirs, settings, java, &lib)?;
            let started = KafkaState {
                settings: settings.clone(),
                pid: child.id(),
                java: java.clone(),
                partitions,
            };
            state_file.update(|s| s.kafka = Some(started))?;
            Running::Child(child)
        }
    };
    kafka::wait_ready(
        &ctx.rt,
        &ctx.dirs,
        settings,
        &mut server,
        KAFKA_READY_TIMEOUT,
    )?;
    if let Plan::Start { mvn, java } = &plan {
        // SCRAM users live in the metadata log: upserted at every start, idempotently.
        let lib = kafka::install(&ctx.dirs.cache, mvn, &settings.version)?;
        crate::kafka_tls::ensure_scram_user(java, &lib, &ctx.dirs.kafka(), &settings.brokers())?;
    }
    match plan {
        Plan::Keep(_) => println!("kafka: already running (pid {})", server.pid()),
        Plan::Start { .. } => println!(
            "kafka: ready in {:.1} s (pid {})",
            started.elapsed().as_secs_f64(),
            server.pid()
        ),
    }
    Ok(())
}

fn opensearch_up(
    ctx: &Ctx,
    settings: &OpenSearchSettings,
    plan: Plan<'_, OpenSearchState>,
    state_file: &StateFile,
) -> Result<()> {
    let started = Instant::now();
    let (mut server, plugins) = match &plan {
        Plan::Keep(o) => (Running::Pid(o.pid), o.plugins.clone()),
        Plan::Start { mvn, java } => {
            let downloads = opensearch::download(&ctx.dirs.cache, mvn, &settings.version)?;
            let mut plugins = vec![Plugin::from_zip(&downloads.job_scheduler)?];
            for zip in &settings.extra_plugins {
                let plugin = Plugin::from_zip(zip)?;
                // A zip named on the command line replaces the default of the same name.
                plugins.retain(|p| p.name != plugin.name);
                plugins.push(plugin);
            }
            let user = if ctx.root {
                format!(", as user {}", prereq::OPENSEARCH_USER)
            } else {
                String::new()
            };
            println!(
                "opensearch: starting OpenSearch {} on 127.0.0.1:{} (Java {}{user})…",
                settings.version, settings.http_port, java.major,
            );
            let pid = opensearch::start(
                &ctx.dirs,
                settings,
                &downloads.distribution,
                &plugins,
                java,
                ctx.root,
            )?;
            let names: Vec<String> = plugins.into_iter().map(|p| p.name).collect();
            let started = OpenSearchState {
                settings: settings.clone(),
                pid,
                java: java.clone(),
                plugins: names.clone(),
            };
            state_file.update(|s| s.opensearch = Some(started))?;
            (Running::Pid(pid), names)
        }
    };
    let health = opensearch::wait_ready(
        &ctx.dirs,
        settings,
        &mut server,
        &plugins,
        OPENSEARCH_READY_TIMEOUT,
    )?;
    match plan {
        Plan::Keep(_) => println!(
            "opensearch: already running (pid {}, {})",
            server.pid(),
            health.status
        ),
        Plan::Start { .. } => println!(
            "opensearch: healthy ({}) in {:.1} s (pid {})",
            health.status,
            started.elapsed().as_secs_f64(),
            server.pid()
        ),
    }
    Ok(())
}

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

/// `stack status`: prints what runs where; `Ok(false)` unless both servers are up and healthy.
pub fn status(ctx: &Ctx) -> Result<bool> {
    let dirs = &ctx.dirs;
    let state = State::load(&dirs.state_file())?.unwrap_or_default();
    let kafka_ok = kafka_status(ctx, state.kafka.as_ref());
    let opensearch_ok = opensearch_status(ctx, state.opensearch.as_ref());
    let strays = state.strays(&dirs.data);
    if !strays.is_empty() {
        println!(
            "{:<12}java processes {strays:?} run from the data dir but are not in the state \
             file; `cargo xtask stack down` stops them",
            "strays"
        );
    }
    println!("{:<12}{}", "cache", dirs.cache.display());
    println!("{:<12}{}", "data", dirs.data.display());
    let up = kafka_ok && opensearch_ok;
    if up {
        println!("stop with `cargo xtask stack down`");
    } else {
        println!("start with `cargo xtask stack up`");
    }
    Ok(up)
}

fn process_line(pid: u32) -> String {
    let rss = process::rss_bytes(pid).map_or_else(|| "?".to_owned(), process::human_bytes);
    format!("pid {pid}, RSS {rss}")
}

/// The pipeline's topics with their partition counts, then how many others there are (tests
/// create many).
fn topic_summary(topics: &BTreeMap<String, usize>) -> String {
    let names = TopicNames::default();
    let mut parts: Vec<String> = names
        .all()
        .iter()
        .map(|name| match topics.get(*name) {
            Some(partitions) => format!("{name} ({partitions})"),
            None => format!("{name} (missing)"),
        })
        .collect();
    let others = topics
        .keys()
        .filter(|t| !names.all().contains(&t.as_str()))
        .count();
    if others > 0 {
        parts.push(format!("and {others} more"));
    }
    parts.join(", ")
}

fn java_line(java: &Java) -> String {
    format!("java {} at {}", java.major, java.home.display())
}

fn kafka_status(ctx: &Ctx, kafka: Option<&KafkaState>) -> bool {
    const INDENT: &str = "            ";
    let Some(k) = kafka.filter(|k| process::runs_under(k.pid, &ctx.dirs.data)) else {
        println!("{:<12}not running", "kafka");
        return false;
    };
    println!(
        "{:<12}running: Kafka {}, {}, heap {}",
        "kafka",
        k.settings.version,
        process_line(k.pid),
        k.settings.heap
    );
    println!(
        "{INDENT}brokers {} (controller port {})",
        k.settings.brokers(),
        k.settings.controller_port,
    );
    println!("{INDENT}{}", java_line(&k.java));
    println!("{INDENT}log {}", kafka::server_log(&ctx.dirs).display());
    match ctx
        .rt
        .block_on(kafka::probe(&k.settings, Duration::from_secs(3)))
    {
        Ok(info) => {
            let brokers: Vec<String> = info
                .brokers
                .iter()
                .map(|b| format!("{} at {}:{}", b.id, b.host, b.port))
                .collect();
            println!("{INDENT}metadata: broker {}", brokers.join(", "));
            println!("{INDENT}topics: {}", topic_summary(&info.topics));
            info.brokers.iter().any(|b| b.id == 1)
        }
        Err(err) => {
            println!("{INDENT}unhealthy: {err:#}");
            false
        }
    }
}

fn opensearch_status(ctx: &Ctx, opensearch: Option<&OpenSearchState>) -> bool {
    const INDENT: &str = "            ";
    let Some(o) = opensearch.filter(|o| process::runs_under(o.pid, &ctx.dirs.data)) else {
        println!("{:<12}not running", "opensearch");
        return false;
    };
    println!(
        "{:<12}running: OpenSearch {}, {}, heap {}",
        "opensearch",
        o.settings.version,
        process_line(o.pid),
        o.settings.heap
    );
    println!(
        "{INDENT}url {} (transport port {})",
        o.settings.url(),
        o.settings.transport_port,
    );
    println!("{INDENT}{}", java_line(&o.java));
    println!(
        "{INDENT}log {}",
        opensearch::server_log(&ctx.dirs).display()
    );
    match opensearch::health(&o.settings, Duration::from_secs(3)) {
        Ok(health) => {
            println!(
                "{INDENT}health {}, plugins: {}",
                health.status,
                health.plugins.join(", ")
            );
            health.is_healthy()
        }
        Err(err) => {
            println!("{INDENT}unhealthy: {err:#}");
            false
        }
    }
}

/// A server whose logs `stack logs` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// The Kafka node.
    Kafka,
    /// The OpenSearch node.
    Opensearch,
}

/// `stack logs`: the last `lines` lines of each chosen server's logs.
pub fn logs(ctx: &Ctx, server: Option<Server>, lines: usize) -> Result<()> {
    let mut files = Vec::new();
    if server != Some(Server::Opensearch) {
        files.push((kafka::server_log(&ctx.dirs), true));
        files.push((kafka::stdout_log(&ctx.dirs), false));
    }
    if server != Some(Server::Kafka) {
        files.push((opensearch::server_log(&ctx.dirs), true));
        files.push((opensearch::startup_log(&ctx.dirs), false));
    }
    for (file, main) in files {
        match process::tail(&file, lines) {
            // The JVM's own output matters only when it has something to say.
            Ok(tail) if tail.is_empty() && !main => {}
            Ok(tail) => {
                println!("==> {} <==", file.display());
                for line in tail {
                    println!("{line}");
                }
                println!();
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if main {
                    println!(
                        "==> {} <==\n(no log yet: start the stack with `cargo xtask stack up`)\n",
                        file.display()
                    );
                }
            }
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", file.display()));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        options: StackOptions,
    }

    fn options(args: &[&str]) -> StackOptions {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .expect("parses")
            .options
    }

    #[test]
    fn state_round_trips() {
        let state = State {
            kafka: Some(KafkaState {
                settings: options(&[]).kafka(),
                pid: 42,
                java: Java {
                    home: PathBuf::from("/usr/lib/jvm/temurin-25-jdk-amd64"),
                    major: 25,
                },
                partitions: 4,
            }),
            opensearch: Some(OpenSearchState {
                settings: options(&[]).opensearch().expect("no plugins to resolve"),
                pid: 43,
                java: Java {
                    home: PathBuf::from("/usr/lib/jvm/temurin-25-jdk-amd64"),
                    major: 25,
                },
                plugins: vec![opensearch::JOB_SCHEDULER.to_owned()],
            }),
        };
        let dir = std::env::temp_dir().join(format!("xtask-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("stack.json");
        assert_eq!(State::load(&file).expect("no file is fine"), None);
        state.save(&file).expect("save");
        assert_eq!(State::load(&file).expect("load"), Some(state.clone()));
        assert_eq!(state.kafka_brokers().as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(
            state.opensearch_url().as_deref(),
            Some("http://127.0.0.1:9200")
        );
        std::fs::write(&file, "{not json").expect("write");
        let err = format!("{:#}", State::load(&file).expect_err("invalid"));
        assert!(err.contains("cargo xtask stack down"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn options_are_validated() {
        assert!(options(&[]).validate().is_ok());
        let err = options(&["--kafka-port", "9200"])
            .validate()
            .expect_err("port clash")
            .to_string();
        assert!(err.contains("--kafka-port and --opensearch-port"), "{err}");
        assert!(options(&["--opensearch-heap", "1.5g"]).validate().is_err());
        assert!(options(&["--partitions", "0"]).validate().is_err());
    }

    #[test]
    fn topic_summary_lists_the_pipeline_topics_first() {
        let topics: BTreeMap<String, usize> = [
            ("__consumer_offsets", 4),
            ("raw", 4),
            ("enriched", 4),
            ("labels", 2),
            ("test-1-raw", 1),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
        assert_eq!(
            topic_summary(&topics),
            "raw (4), enriched (4), dead-letter (missing), labels (2), anomalies (missing), and 2 more"
        );
    }

    #[test]
    fn heap_sizes() {
        for ok in ["512m", "1g", "1G", "1048576", "64k"] {
            assert!(is_heap_size(ok), "{ok}");
        }
        for bad in ["", "m", "1gg", "1.5g", "-1g", "1 g"] {
            assert!(!is_heap_size(bad), "{bad}");
        }
    }

    #[test]
    fn missing_plugin_zips_are_reported_with_the_flag() {
        let err = format!(
            "{:#}",
            options(&["--opensearch-plugin", "/nonexistent/ad.zip"])
                .opensearch()
                .expect_err("missing zip")
        );
        assert!(
            err.contains("--opensearch-plugin /nonexistent/ad.zip"),
            "{err}"
        );
    }
}
