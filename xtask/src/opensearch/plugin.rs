//! A plugin zip and the name OpenSearch lists it under, read from the zip's
//! `plugin-descriptor.properties`, so `stack up` can tell whether the install holds it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
