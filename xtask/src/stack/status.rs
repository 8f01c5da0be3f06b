//! `stack status` and `stack logs`: what runs where, whether it is healthy, and the tail of each
//! server's logs. Read-only: neither changes the stack or the state file.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use pipeline::kafka::TopicNames;

use super::state::{KafkaState, OpenSearchState, State};
use crate::Ctx;
use crate::kafka;
use crate::opensearch;
use crate::prereq::Java;
use crate::process;

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

#[cfg(test)]
mod tests {
    use super::*;

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
            "raw (4), enriched (4), dead-letter (missing), labels (2), anomalies (missing), projected (missing), and 2 more"
        );
    }
}
