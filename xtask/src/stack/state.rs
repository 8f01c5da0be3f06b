//! `stack.json`, the state file: which servers `up` started, with which settings, pid and Java,
//! so that `status`, `down`, `test` and `demo` need no flags; and the shared handle `up`'s two
//! threads write it through.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::kafka::KafkaSettings;
use crate::opensearch::OpenSearchSettings;
use crate::prereq::Java;
use crate::process;

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
    pub(super) fn strays(&self, data: &Path) -> Vec<u32> {
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
    pub(super) fn live(mut self, data: &Path) -> Self {
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

/// The state file while both servers are being started from two threads.
#[derive(Debug)]
pub(super) struct StateFile {
    path: PathBuf,
    state: Mutex<State>,
}

impl StateFile {
    pub(super) fn new(path: PathBuf, state: State) -> Self {
        Self {
            path,
            state: Mutex::new(state),
        }
    }

    /// Changes the state and writes the file at once.
    pub(super) fn update(&self, change: impl FnOnce(&mut State)) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        state.save(&self.path)
    }

    pub(super) fn into_state(self) -> State {
        self.state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opensearch;
    use crate::stack::StackOptions;

    fn options(args: &[&str]) -> StackOptions {
        StackOptions::from_args(args)
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
}
