//! Apache Kafka for the local stack: one KRaft node (broker and controller in one process) on
//! 127.0.0.1, run from the broker's jars on Maven Central rather than a release tarball.
//!
//! The jars are fetched once per version into the cache with Maven (`copy-dependencies` of a
//! throw-away pom). The node's configs, log dirs and log live in `<data>/kafka`; its storage is
//! formatted on first start. Readiness means a metadata request lists broker 1.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::{ClusterInfo, KafkaConfig, TopicNames, TopicOutcome};
use serde::{Deserialize, Serialize};

use crate::paths::{self, Dirs};
use crate::prereq::{Java, Maven};
use crate::process::{self, Running};

/// The Kafka version `stack up` runs unless told otherwise.
pub const DEFAULT_VERSION: &str = "4.4.0";

/// The maven-dependency-plugin used for every download, pinned so runs are reproducible.
pub const DEPENDENCY_PLUGIN: &str = "org.apache.maven.plugins:maven-dependency-plugin:3.7.1";

/// Kafka 4.x still logs through SLF4J 1.7, so the broker needs the `log4j-slf4j-impl` bridge at
/// the version of the log4j-core it brings in transitively (checked in its Maven pom). Versions
/// not listed here are resolved with `mvn dependency:list`, which costs one more Maven run.
const KNOWN_LOG4J: &[(&str, &str)] = &[("4.4.0", "2.25.5")];

/// How the Kafka node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSettings {
    /// Kafka version (`org.apache.kafka:kafka_2.13`).
    pub version: String,
    /// The client (PLAINTEXT) port.
    pub port: u16,
    /// The KRaft controller port.
    pub controller_port: u16,
    /// JVM heap (`-Xms` = `-Xmx`), e.g. `512m`.
    pub heap: String,
    /// The SASL_SSL listener's port (SCRAM-SHA-256/512 and PLAIN); 0 in the state of a broker
    /// started by an older xtask, which has no secure listeners.
    #[serde(default)]
    pub sasl_ssl_port: u16,
    /// The SSL listener's port that requires a client certificate (mutual TLS); 0 as above.
    #[serde(default)]
    pub mtls_port: u16,
}

impl KafkaSettings {
    /// The bootstrap servers clients use.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The SASL_SSL listener's address.
    pub fn sasl_ssl_brokers(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_ssl_port)
    }

    /// The mutual-TLS listener's address.
    pub fn mtls_brokers(&self) -> String {
        format!("127.0.0.1:{}", self.mtls_port)
    }

    /// What differs from `other`, for humans (empty when equal).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut check = |what: &str, mine: String, theirs: String| {
            if mine != theirs {
                diffs.push(format!("kafka {what} {mine} (asked: {theirs})"));
            }
        };
        check("version", self.version.clone(), other.version.clone());
        check("port", self.port.to_string(), other.port.to_string());
        check(
            "controller port",
            self.controller_port.to_string(),
            other.controller_port.to_string(),
        );
        check("heap", self.heap.clone(), other.heap.clone());
        check(
            "SASL_SSL port",
            self.sasl_ssl_port.to_string(),
            other.sasl_ssl_port.to_string(),
        );
        check(
            "mutual-TLS port",
            self.mtls_port.to_string(),
            other.mtls_port.to_string(),
        );
        diffs
    }
}

/// The server's log (log4j2, appended across starts).
pub fn server_log(dirs: &Dirs) -> PathBuf {
    dirs.kafka().join("logs/server.log")
}

/// The JVM's own stdout/stderr (crashes before logging starts), truncated at each start.
pub fn stdout_log(dirs: &Dirs) -> PathBuf {
    dirs.kafka().join("stdout.log")
}

/// The directory of Kafka's jars for `version`, downloaded with Maven on first use. The download
/// counts only once Maven succeeded and the jars check out (a marker file written last).
pub fn install(cache: &Path, mvn: &Maven, version: &str) -> Result<PathBuf> {
    let dir = cache.join(format!("kafka-{version}"));
    let lib = dir.join("lib");
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(lib);
    }
    println!("kafka: downloading Kafka {version} jars from Maven Central (first run only)…");
    let started = Instant::now();
    paths::create_shared_dir(&dir)?;
    if lib.exists() {
        std::fs::remove_dir_all(&lib)
            .with_context(|| format!("removing the incomplete {}", lib.display()))?;
    }
    let log4j = match KNOWN_LOG4J.iter().find(|(kafka, _)| *kafka == version) {
        Some((_, log4j)) => (*log4j).to_owned(),
        None => resolve_log4j_version(mvn, &dir, version)?,
    };
    let pom = dir.join("pom.xml");
    std::fs::write(&pom, render_pom(version, Some(&log4j)))
        .with_context(|| format!("writing {}", pom.display()))?;
    mvn.run(
        [
            OsString::from("-f"),
            pom.into_os_string(),
            format!("{DEPENDENCY_PLUGIN}:copy-dependencies").into(),
            format!("-DoutputDirectory={}", lib.display()).into(),
        ],
        &format!("downloading Kafka {version} with Maven"),
    )
    .with_context(|| {
        format!(
            "fetching Kafka {version} from Maven Central; check that the version exists and that \
             repo.maven.apache.org is reachable, then retry"
        )
    })?;
    check_jars(&lib, version, &log4j)?;
    std::fs::write(&marker, format!("log4j {log4j}\n"))
        .with_context(|| format!("writing {}", marker.display()))?;
    println!(
        "kafka: jars ready in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        lib.display()
    );
    Ok(lib)
}

/// Asks Maven which log4j-core Kafka `version` depends on.
fn resolve_log4j_version(mvn: &Maven, dir: &Path, version: &str) -> Result<String> {
    println!("kafka: resolving the log4j version of Kafka {version} with Maven…");
    let work = dir.join("resolve");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let pom = work.join("pom.xml");
    std::fs::write(&pom, render_pom(version, None))
        .with_context(|| format!("writing {}", pom.display()))?;
    let listing = work.join("log4j-core.txt");
    mvn.run(
        [
            OsString::from("-f"),
            pom.into_os_string(),
            format!("{DEPENDENCY_PLUGIN}:list").into(),
            "-DincludeArtifactIds=log4j-core".into(),
            format!("-DoutputFile={}", listing.display()).into(),
        ],
        &format!("listing the dependencies of Kafka {version}"),
    )
    .context("check that the Kafka version exists on Maven Central and retry")?;
    let text = std::fs::read_to_string(&listing)
        .with_context(|| format!("reading {}", listing.display()))?;
    log4j_core_version(&text).with_context(|| {
        format!(
            "Kafka {version} does not depend on log4j-core, so the stack cannot set up its \
             logging; use a Kafka 4.x version (see {})",
            listing.display()
        )
    })
}

/// The log4j-core version in `mvn dependency:list` output
/// (`org.apache.logging.log4j:log4j-core:jar:2.25.5:runtime -- module ...`).
fn log4j_core_version(listing: &str) -> Option<String> {
    listing.lines().find_map(|line| {
        let coordinates = line.split_whitespace().next()?;
        let mut parts = coordinates.split(':');
        let (group, artifact, _kind, version) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        (group == "org.apache.logging.log4j" && artifact == "log4j-core")
            .then(|| version.to_owned())
    })
}

/// Checks that the download holds the broker and a logging bridge matching log4j-core.
fn check_jars(lib: &Path, version: &str, log4j: &str) -> Result<()> {
    let names: Vec<String> = std::fs::read_dir(lib)
        .with_context(|| format!("listing {}", lib.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for jar in [
        format!("kafka_2.13-{version}.jar"),
        format!("log4j-slf4j-impl-{log4j}.jar"),
        format!("log4j-core-{log4j}.jar"),
    ] {
        if !names.contains(&jar) {
            bail!(
                "the Kafka download in {} lacks {jar} (log4j-core there: {:?}); if Kafka {version} \
                 moved to another log4j, fix KNOWN_LOG4J in xtask/src/kafka.rs",
                lib.display(),
                names
                    .iter()
                    .filter(|n| n.starts_with("log4j-core-"))
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}

/// A pom whose dependencies are the broker and, if known, the SLF4J → log4j2 bridge.
fn render_pom(kafka: &str, log4j: Option<&str>) -> String {
    let bridge = log4j
        .map(|v| {
            format!(
                "    <dependency>\n      <groupId>org.apache.logging.log4j</groupId>\n      \
                 <artifactId>log4j-slf4j-impl</artifactId>\n      <version>{v}</version>\n    \
                 </dependency>\n"
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by `cargo xtask stack up`: Kafka's runtime jars, fetched with copy-dependencies. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logwarden.stack</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
{bridge}  </dependencies>
</project>
"#
    )
}

/// The node's `server.properties`: one combined broker/controller, everything on 127.0.0.1, and
/// single-node replication for the internal topics (transactions hang without it). Besides the
/// plaintext listener: SASL_SSL (SCRAM-SHA-256/512 users from the metadata log, and PLAIN with
/// the same user in its JAAS line) and SSL requiring a client certificate signed by the stack's
/// CA (mutual TLS), both presenting the broker certificate from `tls`.
pub fn render_server_properties(
    settings: &KafkaSettings,
    log_dirs: &Path,
    tls: &crate::kafka_tls::TlsFiles,
) -> String {
    let KafkaSettings {
        port,
        controller_port,
        sasl_ssl_port,
        mtls_port,
        ..
    } = settings;
    let (user, password) = (
        crate::kafka_tls::SCRAM_USER,
        crate::kafka_tls::SCRAM_PASSWORD,
    );
    let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    format!(
        "# Generated by `cargo xtask stack up`; rewritten at every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},SASL_SSL://127.0.0.1:{sasl_ssl_port},MTLS://127.0.0.1:{mtls_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl_port},MTLS://127.0.0.1:{mtls_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
listener.name.mtls.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}=\"{password}\";
log.dirs={log_dirs}
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.segment.bytes=67108864
",
        log_dirs = log_dirs.display(),
        keystore = tls.broker_keystore().display(),
        ca = tls.ca().display(),
    )
}

/// A log4j2 configuration writing to one rolling file, without the broker's 400-line config dump
/// that `AbstractConfig` logs at INFO several times per start.
pub fn render_log4j2(log_file: &Path) -> String {
    let file = log_file.display();
    format!(
        "# Generated by `cargo xtask stack up`; rewritten at every start.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {file}
appender.file.filePattern = {file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"
    )
}

/// Writes the configs, formats the storage on first start and launches the node, detached.
pub fn start(dirs: &Dirs, settings: &KafkaSettings, java: &Java, lib: &Path) -> Result<Child> {
    let dir = dirs.kafka();
    let log_dirs = dir.join("data");
    for sub in [&log_dirs, &dir.join("logs")] {
        std::fs::create_dir_all(sub).with_context(|| format!("creating {}", sub.display()))?;
    }
    let properties = dir.join("server.properties");
    let log4j2 = dir.join("log4j2.properties");
    let tls = crate::kafka_tls::TlsFiles::new(dirs.kafka_tls());
    crate::kafka_tls::ensure_certificates(&tls)?;
    std::fs::write(
        &properties,
        render_server_properties(settings, &log_dirs, &tls),
    )
    .with_context(|| format!("writing {}", properties.display()))?;
    std::fs::write(&log4j2, render_log4j2(&server_log(dirs)))
        .with_context(|| format!("writing {}", log4j2.display()))?;
    let classpath = format!("{}/*", lib.display());

    if !log_dirs.join("meta.properties").exists() {
        println!("kafka: formatting storage (first start)…");
        let tool = |args: &[&str]| {
            let mut cmd = Command::new(java.bin());
            cmd.arg(format!("-Dlog4j2.configurationFile={}", log4j2.display()))
                .args(["-cp", &classpath, "kafka.tools.StorageTool"])
                .args(args)
                .current_dir(&dir);
            cmd
        };
        let output = process::run(&mut tool(&["random-uuid"]), "kafka-storage random-uuid")?;
        let cluster_id = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .map(str::to_owned)
            .context("kafka-storage random-uuid printed no id; see its output above")?;
        let properties = properties.to_string_lossy();
        // The SCRAM users go into the metadata log with the format (any Java will do); a stack
        // formatted before they existed gets them through the Admin API at start instead.
        let (user, password) = (
            crate::kafka_tls::SCRAM_USER,
            crate::kafka_tls::SCRAM_PASSWORD,
        );
        let scram: Vec<String> = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
            .iter()
            .map(|m| format!("{m}=[name={user},password={password}]"))
            .collect();
        process::run(
            &mut tool(&[
                "format",
                "-t",
                &cluster_id,
                "-c",
                &properties,
                "--ignore-formatted",
                "--add-scram",
                &scram[0],
                "--add-scram",
                &scram[1],
            ]),
            "kafka-storage format",
        )
        .with_context(|| {
            format!(
                "formatting {}; if it holds an old cluster, run `cargo xtask stack reset`",
                log_dirs.display()
            )
        })?;
        std::fs::write(crate::kafka_tls::scram_marker(&dir), "")
            .context("writing the SCRAM marker")?;
    }

    let mut cmd = Command::new(java.bin());
    cmd.arg(format!("-Xms{}", settings.heap))
        .arg(format!("-Xmx{}", settings.heap))
        .args(["-XX:+ExitOnOutOfMemoryError", "-XX:+UseG1GC"]);
    if java.major >= 19 {
        // Class-data sharing: the JVM records the classes it loads when it exits and maps them
        // at the next start, which roughly halves the time to a ready broker.
        let archive = lib
            .parent()
            .unwrap_or(lib)
            .join(format!("kafka-java{}.jsa", java.major));
        cmd.arg("-XX:+AutoCreateSharedArchive")
            .arg(format!("-XX:SharedArchiveFile={}", archive.display()));
    }
    cmd.arg(format!("-Dlog4j2.configurationFile={}", log4j2.display()))
        .args(["-cp", &classpath, "kafka.Kafka"])
        .arg(&properties)
        .current_dir(&dir);
    process::spawn_detached(&mut cmd, &stdout_log(dirs))
}

/// Asks the node for its metadata.
pub async fn probe(settings: &KafkaSettings, timeout: Duration) -> Result<ClusterInfo> {
    let config = KafkaConfig::new(settings.brokers());
    Ok(pipeline::kafka::cluster_info(&config, timeout).await?)
}

/// Waits until the port accepts connections and a metadata request lists broker 1; fails early
/// if the process exits, and with the log's last lines after `timeout`.
pub fn wait_ready(
    rt: &tokio::runtime::Handle,
    dirs: &Dirs,
    settings: &KafkaSettings,
    server: &mut Running,
    timeout: Duration,
) -> Result<ClusterInfo> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("the port never accepted a connection");
    let failure = |what: String| {
        anyhow::anyhow!(
            "kafka {what}\n  {}\n  {}\n  See `cargo xtask stack logs kafka`; after fixing the cause run \
             `cargo xtask stack down` and `cargo xtask stack up`.",
            process::log_excerpt(&server_log(dirs), 20),
            process::log_excerpt(&stdout_log(dirs), 10),
        )
    };
    loop {
        if let Some(exit) = server.exited() {
            return Err(failure(format!("exited during startup ({exit})")));
        }
        if Instant::now() >= deadline {
            return Err(failure(format!(
                "was not ready within {} s: {last}",
                timeout.as_secs()
            )));
        }
        if process::port_in_use(settings.port) {
            match rt.block_on(probe(settings, Duration::from_secs(2))) {
                Ok(info) if info.brokers.iter().any(|b| b.id == 1) => return Ok(info),
                Ok(_) => last = "metadata does not list broker 1 yet".to_owned(),
                Err(err) => last = format!("metadata request failed: {err:#}"),
            }
        }
        sleep(Duration::from_millis(250));
    }
}

/// Creates the pipeline's topics that do not exist yet.
pub fn ensure_topics(
    rt: &tokio::runtime::Handle,
    settings: &KafkaSettings,
    partitions: i32,
) -> Result<Vec<(String, TopicOutcome)>> {
    let config = KafkaConfig::new(settings.brokers());
    let specs = TopicNames::default().specs(partitions, 1);
    rt.block_on(pipeline::kafka::ensure_topics(&config, &specs))
        .context("creating the pipeline's topics; see `cargo xtask stack logs kafka`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            version: DEFAULT_VERSION.to_owned(),
            port: 19092,
            controller_port: 19093,
            heap: "512m".to_owned(),
            sasl_ssl_port: 19094,
            mtls_port: 19095,
        }
    }

    #[test]
    fn server_properties_use_the_ports_and_log_dirs() {
        let tls = crate::kafka_tls::TlsFiles::new(PathBuf::from("/d/kafka/tls"));
        let text = render_server_properties(&settings(), Path::new("/d/kafka/data"), &tls);
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            "process.roles=broker,controller",
            "node.id=1",
            "controller.quorum.voters=1@127.0.0.1:19093",
            "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:19094,MTLS://127.0.0.1:19095",
            "advertised.listeners=PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094,MTLS://127.0.0.1:19095",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
            "ssl.keystore.location=/d/kafka/tls/broker-keystore.pem",
            "ssl.truststore.location=/d/kafka/tls/ca.pem",
            "listener.name.mtls.ssl.client.auth=required",
            "log.dirs=/d/kafka/data",
            "auto.create.topics.enable=false",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
        ] {
            assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains(":9092"), "default port leaked into\n{text}");
    }

    #[test]
    fn log4j2_quiets_the_config_dump() {
        let text = render_log4j2(Path::new("/d/kafka/logs/server.log"));
        assert!(text.contains("appender.file.fileName = /d/kafka/logs/server.log"));
        assert!(
            text.contains("logger.config.name = org.apache.kafka.common.config.AbstractConfig")
        );
        assert!(text.contains("logger.config.level = WARN"));
    }

    #[test]
    fn pom_has_the_bridge_only_when_known() {
        let with = render_pom("4.4.0", Some("2.25.5"));
        assert!(with.contains("<artifactId>kafka_2.13</artifactId>"));
        assert!(with.contains("<artifactId>log4j-slf4j-impl</artifactId>"));
        assert!(with.contains("<version>2.25.5</version>"));
        assert!(with.contains("<packaging>pom</packaging>"));
        assert!(!render_pom("4.4.0", None).contains("log4j"));
    }

    #[test]
    fn reads_log4j_core_from_a_dependency_listing() {
        let listing = "\nThe following files have been resolved:\n   \
            org.apache.logging.log4j:log4j-api:jar:2.25.5:runtime -- module org.apache.logging.log4j\n   \
            org.apache.logging.log4j:log4j-core:jar:2.25.5:runtime -- module org.apache.logging.log4j.core\n";
        assert_eq!(log4j_core_version(listing).as_deref(), Some("2.25.5"));
        assert_eq!(log4j_core_version("nothing resolved"), None);
    }

    #[test]
    fn maven_agrees_with_the_known_log4j_versions() {
        let mvn = crate::prereq::maven(false).expect("mvn is installed");
        let dir = std::env::temp_dir().join(format!("xtask-log4j-{}", std::process::id()));
        for (kafka, log4j) in KNOWN_LOG4J {
            assert_eq!(
                resolve_log4j_version(&mvn, &dir, kafka).expect("resolves"),
                *log4j,
                "Kafka {kafka}"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn differences_name_each_setting() {
        let mut other = settings();
        assert!(settings().differences(&other).is_empty());
        other.port = 9092;
        other.heap = "1g".to_owned();
        let diffs = settings().differences(&other);
        assert_eq!(
            diffs,
            [
                "kafka port 19092 (asked: 9092)",
                "kafka heap 512m (asked: 1g)"
            ]
        );
    }
}
