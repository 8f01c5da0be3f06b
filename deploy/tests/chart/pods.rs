//! A rendered pod as its container would see it: the files its volumes mount (written under a
//! temporary root, paths in its config rewritten to point there), its environment, and the
//! binary's own config loader run on both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use deploy::manifests::{Manifests, Pod, get, seq, text};
use serde_norway::Value;

/// What a container reads.
#[derive(Debug)]
pub struct Container {
    /// `kind/name` of the workload and the container's name.
    pub id: String,
    /// The binary (`logwarden-sink`).
    pub binary: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment: literal values; secret references as the rendered Secret's value or,
    /// for a Secret the chart does not render, `from-secret:<name>/<key>`.
    pub env: Vec<(String, String)>,
    /// The files its volumes hold, under this root.
    pub root: tempfile::TempDir,
}

impl Container {
    /// The path a container path maps to.
    pub fn path(&self, container_path: &str) -> PathBuf {
        self.root
            .path()
            .join(container_path.trim_start_matches('/'))
    }

    /// The `--config` file.
    pub fn config(&self) -> PathBuf {
        let at = self
            .args
            .iter()
            .position(|arg| arg == "--config")
            .unwrap_or_else(|| panic!("{}: no --config in {:?}", self.id, self.args));
        self.path(&self.args[at + 1])
    }
}

fn decode(value: &Value) -> String {
    let encoded = value.as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|err| panic!("Secret data is not base64 ({err}): {encoded}"));
    String::from_utf8(bytes).expect("Secret data is text")
}

/// The data of a Secret the chart renders, decoded; `None` for a Secret it does not render.
pub fn secret_data(manifests: &Manifests, name: &str) -> Option<BTreeMap<String, String>> {
    let secret = manifests.find("Secret", name)?;
    let data = get(secret, &["data"])
        .and_then(Value::as_mapping)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), decode(v)))
                .collect()
        })
        .unwrap_or_default();
    Some(data)
}

/// The files of a pod's volumes and its (first) container's command, env and mounts.
pub fn materialize(manifests: &Manifests, pod: &Pod<'_>) -> Container {
    let container = *pod.containers().first().expect("a container");
    let root = tempfile::Builder::new()
        .prefix("logwarden-pod-")
        .tempdir()
        .expect("temporary root");
    let id = format!(
        "{} ({})",
        pod.id(),
        text(container, &["name"]).unwrap_or("?")
    );
    let volumes: BTreeMap<&str, &Value> = pod
        .volumes()
        .into_iter()
        .map(|volume| (text(volume, &["name"]).expect("volume name"), volume))
        .collect();
    let mut config_files = Vec::new();
    for mount in seq(container, &["volumeMounts"]) {
        let name = text(mount, &["name"]).expect("mount name");
        let dir = root.path().join(
            text(mount, &["mountPath"])
                .expect("mountPath")
                .trim_start_matches('/'),
        );
        std::fs::create_dir_all(&dir).expect("mount directory");
        let volume = volumes
            .get(name)
            .unwrap_or_else(|| panic!("{id}: mount {name} has no volume"));
        if let Some(configmap) = text(volume, &["configMap", "name"]) {
            for item in seq(volume, &["configMap", "items"]) {
                let key = text(item, &["key"]).expect("item key");
                let path = dir.join(text(item, &["path"]).expect("item path"));
                std::fs::write(&path, manifests.config_text(configmap, key)).expect("write");
                config_files.push(path);
            }
        } else if let Some(secret) = text(volume, &["secret", "secretName"]) {
            // A Secret the user provides holds the keys the chart documents.
            let files = secret_data(manifests, secret).unwrap_or_else(|| {
                ["ca.crt", "tls.crt", "tls.key"]
                    .into_iter()
                    .map(|key| (key.to_owned(), format!("from-secret:{secret}/{key}")))
                    .collect()
            });
            for (key, content) in files {
                std::fs::write(dir.join(key), content).expect("write");
            }
        }
    }
    // The config names files by their container paths: point them into the root.
    let prefix = format!("{}/etc/logwarden/", root.path().display());
    for path in config_files {
        let content = std::fs::read_to_string(&path).expect("read back");
        std::fs::write(&path, content.replace("/etc/logwarden/", &prefix)).expect("rewrite");
    }
    let env = seq(container, &["env"])
        .into_iter()
        .map(|var| {
            let name = text(var, &["name"]).expect("env name").to_owned();
            let value = if let Some(value) = text(var, &["value"]) {
                value.to_owned()
            } else if let Some(reference) = get(var, &["valueFrom", "secretKeyRef"]) {
                let secret = text(reference, &["name"]).expect("secret name");
                let key = text(reference, &["key"]).expect("secret key");
                secret_data(manifests, secret)
                    .and_then(|data| data.get(key).cloned())
                    .unwrap_or_else(|| format!("from-secret:{secret}/{key}"))
            } else {
                "from-the-downward-api".to_owned()
            };
            (name, value)
        })
        .collect();
    let command = seq(container, &["command"]);
    let binary = command
        .first()
        .and_then(|c| c.as_str())
        .and_then(|c| Path::new(c).file_name()?.to_str())
        .unwrap_or_else(|| panic!("{id}: no command"))
        .to_owned();
    let args = seq(container, &["args"])
        .into_iter()
        .map(|arg| arg.as_str().expect("string args").to_owned())
        .collect();
    Container {
        id,
        binary,
        args,
        env,
        root,
    }
}

/// Loads the container's config with its binary's own loader and validation, as it does at
/// start-up: unknown keys, wrong types, unreadable files, bad rules or a bad spec fail here.
pub fn load_like_the_binary(container: &Container) -> Result<(), String> {
    let file = container.config();
    let env = container.env.clone();
    let file = Some(file.as_path());
    let hostname = Some("pod-0".to_owned());
    let subcommand = container.args.first().map(String::as_str);
    let result = match (container.binary.as_str(), subcommand) {
        ("logwarden-transformer", Some("run")) => {
            pipeline::config::load_from::<transformer::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    transformer::settings::Settings::from_raw(raw, hostname)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
        }
        ("logwarden-sink", _) => {
            pipeline::config::load_from::<sink::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    sink::settings::Settings::from_raw(raw, hostname)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
        }
        ("logwarden-detector", Some("run" | "read")) => {
            pipeline::config::load_from::<detector::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    detector::settings::Settings::from_raw(raw, hostname)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
        }
        ("logwarden-producer", _) => {
            pipeline::config::load_from::<producer::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    producer::settings::Settings::from_raw(raw, 1_800_000_000_000, hostname)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
        }
        ("logwarden-provisioner", Some("topics")) => {
            pipeline::config::load_from::<provisioner::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| raw.kafka.validate().map_err(|e| e.to_string()))
        }
        ("logwarden-provisioner", Some("apply" | "verify")) => {
            pipeline::config::load_from::<provisioner::settings::RawConfig>(file, env)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    provisioner::settings::Settings::from_raw(
                        raw,
                        provisioner::settings::Overrides::default(),
                    )
                    .map(drop)
                    .map_err(|e| e.to_string())
                })
        }
        ("logwarden-ingest", _) => load_ingest(container).map(drop),
        (binary, subcommand) => panic!("{}: no loader for {binary} {subcommand:?}", container.id),
    };
    result.map_err(|err| format!("{}: {err}", container.id))
}

/// The ingest container's settings, loaded as `logwarden-ingest` loads them (its tokens'
/// `LOGWARDEN_SECRET_*` variables looked up in the container's environment).
pub fn load_ingest(container: &Container) -> Result<ingest::settings::Settings, String> {
    let env = container.env.clone();
    pipeline::config::load_from::<ingest::settings::RawConfig>(Some(&container.config()), env)
        .map_err(|e| e.to_string())
        .and_then(|raw| {
            ingest::settings::Settings::from_raw(raw, |name| {
                container
                    .env
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
            .map_err(|e| e.to_string())
        })
}
