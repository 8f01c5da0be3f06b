//! The settings of a stack as `stack up`, `test` and `demo` take them (clap flags), checked
//! once, and turned into each server's settings.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::kafka::{self, KafkaSettings};
use crate::opensearch::{self, OpenSearchSettings};

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
    pub(super) fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            version: self.kafka_version.clone(),
            port: self.kafka_port,
            controller_port: self.kafka_controller_port,
            heap: self.kafka_heap.clone(),
            sasl_ssl_port: self.kafka_sasl_ssl_port,
            mtls_port: self.kafka_mtls_port,
        }
    }

    pub(super) fn opensearch(&self) -> Result<OpenSearchSettings> {
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

    pub(super) fn validate(&self) -> Result<()> {
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

#[cfg(test)]
impl StackOptions {
    /// The options as `args` (flags only) give them.
    pub(super) fn from_args(args: &[&str]) -> Self {
        use clap::Parser;

        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            options: StackOptions,
        }

        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .expect("parses")
            .options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> StackOptions {
        StackOptions::from_args(args)
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
