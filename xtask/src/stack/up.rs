//! `stack up`: idempotent bring-up. Servers that already run with the asked settings are kept,
//! missing ones are installed and started, both in parallel (one thread each, writing the state
//! file as each server starts), and it returns once both are ready; then it creates the
//! pipeline's topics.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use pipeline::kafka::TopicOutcome;

use super::join;
use super::options::StackOptions;
use super::state::{KafkaState, OpenSearchState, State, StateFile};
use crate::Ctx;
use crate::kafka::{self, KafkaSettings};
use crate::opensearch::{self, OpenSearchSettings, Plugin};
use crate::paths;
use crate::prereq::{self, Java, Maven};
use crate::process::{self, Running};

const KAFKA_READY_TIMEOUT: Duration = Duration::from_secs(120);
const OPENSEARCH_READY_TIMEOUT: Duration = Duration::from_secs(240);

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
pub(super) enum Plan<'a, S> {
    /// It runs already: wait until it is ready, nothing more.
    Keep(&'a S),
    /// Install it if needed and start it with this Java.
    Start { mvn: Maven, java: Java },
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

pub(super) fn kafka_up(
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
        // SCRAM users live in the metadata log: added at format, or once here for older stacks.
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

pub(super) fn opensearch_up(
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
