//! The distribution and the job-scheduler zip, fetched once per version into the cache, and the
//! install: an unpacked copy of the distribution with its plugins, re-created only when the
//! version or the set of plugins changes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::config::write_jvm_options;
use super::layout::Layout;
use super::plugin::Plugin;
use super::{DEFAULT_VERSION, JOB_SCHEDULER};
use crate::paths;
use crate::prereq::{Java, Maven};
use crate::process;

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

/// The content of an install: re-created when it changes.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct InstallRecord {
    /// The OpenSearch version.
    pub(super) version: String,
    /// The plugins installed besides the distribution's own.
    pub(super) plugins: Vec<Plugin>,
}

/// Unpacks the distribution and installs the plugins, unless the install already holds exactly
/// this version and these plugins.
pub(super) fn install(
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
