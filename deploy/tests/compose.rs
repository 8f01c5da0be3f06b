//! `docker/compose.yaml` cannot run here (no Docker engine): what can be checked is checked,
//! against Docker Compose itself, the services' own config loader and the running local stack
//! (`cargo xtask stack up`), which the file mirrors.
//!
//! - `docker-compose config` (built by `cargo xtask image`) validates and resolves the file
//!   (schema, anchors, interpolation, profiles); everything below reads what it resolved;
//! - each logwarden service's command is accepted by the image's binary;
//! - each logwarden service's `environment` loads through that service's loader
//!   (`pipeline::config::load_from` with unknown keys rejected, then its `Settings::from_raw`),
//!   as at start-up, and sets the shared metrics port;
//! - the Kafka broker's settings are the stack broker's, setting for setting (the listeners
//!   aside), and the topics the services use exist on the stack with the partitions the topics
//!   job creates;
//! - OpenSearch is the stack's version with the stack's node settings and heap;
//! - Kafka and OpenSearch are published on the stack's ports.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use deploy::tool;
use pipeline::kafka::{KafkaConfig, TopicNames, cluster_info};
use pipeline::testkit;
use serde::Deserialize;
use serde_json::Value;

/// The parts of a resolved compose service the checks read (Compose writes `null` for what a
/// service does not set).
#[derive(Debug, Deserialize)]
struct Service {
    #[serde(default)]
    image: String,
    #[serde(default, deserialize_with = "or_default")]
    command: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    environment: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "or_default")]
    ports: Vec<Port>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    user: Option<String>,
}

fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A published port, as Compose resolves `"127.0.0.1:9092:9092"`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Port {
    host_ip: String,
    published: String,
    target: u16,
}

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
}

/// The webhook URL the checks give the detector (compose requires one).
const WEBHOOK: &str = "http://alerts.example.test/hook";

/// `docker-compose -f docker/compose.yaml --profile producer config --format json`, with
/// `ALERT_WEBHOOK_URL` set to `webhook` (or unset).
fn compose_config(webhook: Option<&str>) -> Output {
    let compose = tool("XTASK_DOCKER_COMPOSE", "cargo xtask image");
    let mut command = Command::new(&compose);
    command
        .current_dir(deploy::workspace())
        .args(["-f", "docker/compose.yaml", "--profile", "producer"])
        .args(["config", "--format", "json"])
        .env_remove("ALERT_WEBHOOK_URL")
        .env_remove("LOGWARDEN_VERSION");
    if let Some(url) = webhook {
        command.env("ALERT_WEBHOOK_URL", url);
    }
    command
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", compose.display()))
}

/// The file as Docker Compose resolves it.
fn compose() -> Compose {
    let output = compose_config(Some(WEBHOOK));
    assert!(
        output.status.success(),
        "docker-compose config refuses docker/compose.yaml:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("docker-compose config's JSON")
}

fn env(service: &Service) -> Vec<(String, String)> {
    service
        .environment
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The service's raw config from `env`, as its loader reads it (unknown keys refused).
fn raw<T: serde::de::DeserializeOwned>(name: &str, env: &[(String, String)]) -> T {
    pipeline::config::load_from(None, env.to_vec()).unwrap_or_else(|err| {
        panic!("compose service `{name}`: its environment is refused at start-up: {err}")
    })
}

/// What a service's loader makes of its environment: its Kafka settings and metrics address.
/// Panics with the loader's own error (the key and the fix) when it refuses.
fn load(name: &str, service: &Service) -> (KafkaConfig, Option<std::net::SocketAddr>) {
    let env = env(service);
    let fail = |err: &dyn std::fmt::Display| -> ! {
        panic!("compose service `{name}`: its environment is refused at start-up: {err}")
    };
    let binary = service
        .command
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    match binary {
        "logwarden-producer" => {
            let raw: producer::settings::RawConfig = raw(name, &env);
            let s = producer::settings::Settings::from_raw(raw, 0, Some(name.into()))
                .unwrap_or_else(|e| fail(&e));
            (s.kafka, s.telemetry.listen)
        }
        "logwarden-transformer" => {
            let raw: transformer::settings::RawConfig = raw(name, &env);
            let s = transformer::settings::Settings::from_raw(raw, Some(name.into()))
                .unwrap_or_else(|e| fail(&e));
            (s.kafka, s.telemetry.listen)
        }
        "logwarden-sink" => {
            let raw: sink::settings::RawConfig = raw(name, &env);
            let s = sink::settings::Settings::from_raw(raw, Some(name.into()))
                .unwrap_or_else(|e| fail(&e));
            (s.kafka, s.telemetry.listen)
        }
        "logwarden-detector" => {
            let raw: detector::settings::RawConfig = raw(name, &env);
            let s = detector::settings::Settings::from_raw(raw, Some(name.into()))
                .unwrap_or_else(|e| fail(&e));
            // Every secret the spec's channels name is in the environment.
            for channel in &s.spec.channels {
                for secret in [&channel.webhook, &channel.slack].into_iter().flatten() {
                    if let Some(var) = &secret.env {
                        assert!(
                            service.environment.contains_key(var),
                            "compose service `{name}`: channel `{}` reads {var}, which its \
                             environment does not set",
                            channel.name
                        );
                    }
                }
            }
            (s.kafka, s.telemetry.listen)
        }
        "logwarden-provisioner" => {
            let raw: provisioner::settings::RawConfig = raw(name, &env);
            raw.kafka.validate().unwrap_or_else(|e| fail(&e));
            (raw.kafka, raw.telemetry.listen)
        }
        other => panic!("compose service `{name}` runs `{other}`, not one of the image's binaries"),
    }
}

/// The logwarden services: those built from the image.
fn logwarden(compose: &Compose) -> Vec<(&String, &Service)> {
    compose
        .services
        .iter()
        .filter(|(_, service)| service.image.starts_with("logwarden:"))
        .collect()
}

#[test]
fn every_service_environment_is_accepted_by_that_service_loader() {
    let compose = compose();
    let services = logwarden(&compose);
    let names: Vec<&str> = services.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "detector",
            "producer",
            "provisioner",
            "sink",
            "topics",
            "transformer"
        ]
    );
    for (name, service) in services {
        let (kafka, listen) = load(name, service);
        assert_eq!(kafka.brokers, "kafka:19092", "{name}");
        assert_eq!(
            kafka.topics,
            TopicNames::default(),
            "{name}: the stack's topic names"
        );
        assert_eq!(
            listen.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:9464"),
            "{name}"
        );
        assert!(service.read_only, "{name}: read_only");
        assert_eq!(service.user.as_deref(), Some("65532:65532"), "{name}");
    }
}

#[test]
fn compose_refuses_to_start_without_a_webhook_for_the_alerts() {
    let output = compose_config(None);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(
            "required variable ALERT_WEBHOOK_URL is missing a value: set ALERT_WEBHOOK_URL to \
             the webhook that receives the alerts"
        ),
        "{error}"
    );
    let resolved = compose();
    assert_eq!(
        resolved.services["detector"].environment["LOGWARDEN_SECRET_ALERT_WEBHOOK_URL"],
        WEBHOOK
    );
}

#[test]
fn every_command_is_one_the_image_accepts() {
    let podman = deploy::podman::Podman::from_env();
    let compose = compose();
    for (name, service) in logwarden(&compose) {
        // Arguments are checked as they come; `--help` after them ends the parse successfully.
        let mut command: Vec<&str> = service.command.iter().map(String::as_str).collect();
        command.push("--help");
        let options = ["--rm", "--network=none", "--read-only"].map(String::from);
        let (code, output) = podman.run(
            &format!("{}{name}", testkit::unique_name("compose")),
            &options,
            &command,
        );
        assert_eq!(
            code,
            Some(0),
            "compose service `{name}`: the image refuses `{}`:\n{output}",
            service.command.join(" ")
        );
    }
}

#[test]
fn a_mistyped_key_in_the_compose_environment_would_be_refused() {
    let compose = compose();
    let mut sink = compose
        .services
        .get("sink")
        .map(env)
        .expect("a sink service");
    sink.push(("LOGWARDEN_SINK__BATCH_RECORD".into(), "500".into()));
    let refused = pipeline::config::load_from::<sink::settings::RawConfig>(None, sink)
        .expect_err("an unknown key is refused");
    assert!(
        refused
            .to_string()
            .starts_with("config key `sink.batch_record` unknown field `batch_record`"),
        "{refused}"
    );
}

/// `127.0.0.1:<port>:<port>`, as Compose resolves it.
fn published(port: &str) -> Port {
    Port {
        host_ip: "127.0.0.1".into(),
        published: port.into(),
        target: port.parse().expect("a port number"),
    }
}

/// The apache/kafka image's variable for a broker setting: `.` is `_`, `_` is `__`, `-` is `___`.
fn broker_setting(var: &str) -> Option<String> {
    let name = var.strip_prefix("KAFKA_")?;
    if name.ends_with("_OPTS") || name.starts_with("LOG4J_") {
        return None; // the JVM's and log4j's, not the broker's
    }
    Some(
        name.to_ascii_lowercase()
            .replace("___", "\u{1}")
            .replace("__", "\u{2}")
            .replace('_', ".")
            .replace('\u{1}', "-")
            .replace('\u{2}', "_"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_is_set_up_like_the_local_stack() {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;

    let compose = compose();
    let kafka = &compose.services["kafka"];
    assert_eq!(kafka.image, "apache/kafka:4.4.0");
    let stack = testkit::require_kafka().await;
    let port = stack.brokers.rsplit(':').next().expect("a port");
    assert_eq!(kafka.ports, [published(port)]);

    // Listeners differ by design: containers reach kafka:19092, the host localhost:9092.
    let by_design = [
        "listeners",
        "advertised.listeners",
        "controller.quorum.voters",
        "inter.broker.listener.name",
        "listener.security.protocol.map",
        "log.dirs",
    ];
    let declared: BTreeMap<String, String> = kafka
        .environment
        .iter()
        .filter_map(|(var, value)| Some((broker_setting(var)?, value.clone())))
        .filter(|(setting, _)| !by_design.contains(&setting.as_str()))
        .collect();
    assert!(declared.contains_key("num.partitions"), "{declared:?}");
    let admin: AdminClient<DefaultClientContext> = stack
        .client_config("compose-test")
        .create()
        .expect("an admin client");
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Broker(1)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("describing the stack's broker");
    let broker = described
        .into_iter()
        .next()
        .and_then(Result::ok)
        .expect("the stack's broker 1");
    let actual: BTreeMap<String, String> = broker
        .entries
        .into_iter()
        .map(|entry| (entry.name, entry.value.unwrap_or_default()))
        .collect();
    for (setting, value) in &declared {
        assert_eq!(
            actual.get(setting),
            Some(value),
            "compose sets {setting}={value}; the stack's broker has {:?}",
            actual.get(setting)
        );
    }

    // The topics job creates the services' topics with the stack's partition counts.
    let topics = &compose.services["topics"];
    let partitions = topics
        .command
        .iter()
        .position(|arg| arg == "--partitions")
        .and_then(|i| topics.command.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the topics job's --partitions");
    let info = cluster_info(&stack, Duration::from_secs(10))
        .await
        .expect("the stack's metadata");
    for topic in TopicNames::default().all() {
        assert_eq!(
            info.topics.get(topic),
            Some(&partitions),
            "topic `{topic}` on the stack vs --partitions {partitions} in compose"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_is_set_up_like_the_local_stack() {
    let compose = compose();
    let opensearch = &compose.services["opensearch"];
    let url = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("{url}{path}"));
        async move {
            request
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("OpenSearch answers")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };

    let version = get("/").await["version"]["number"].clone();
    assert_eq!(
        opensearch.image,
        format!(
            "opensearchproject/opensearch:{}",
            version.as_str().unwrap_or_default()
        )
    );
    let port = url.rsplit(':').next().expect("a port");
    assert_eq!(opensearch.ports, [published(port)]);

    let nodes = get("/_nodes/_local/settings,jvm?flat_settings=true").await;
    let node = nodes["nodes"]
        .as_object()
        .and_then(|nodes| nodes.values().next())
        .expect("the stack's node");
    let settings: Vec<(&String, &String)> = opensearch
        .environment
        .iter()
        .filter(|(key, _)| key.contains('.'))
        .collect();
    assert!(!settings.is_empty());
    for (key, value) in settings {
        assert_eq!(
            node["settings"][key.as_str()].as_str(),
            Some(value.as_str()),
            "compose sets {key}; the stack's node has {}",
            node["settings"][key.as_str()]
        );
    }
    let heap = &opensearch.environment["OPENSEARCH_JAVA_OPTS"];
    assert_eq!(heap, "-Xms1g -Xmx1g");
    assert_eq!(
        node["jvm"]["mem"]["heap_max_in_bytes"].as_u64(),
        Some(1 << 30),
        "the stack's heap"
    );
    // The stack has no security plugin: plain HTTP, no auth. So does compose.
    assert_eq!(opensearch.environment["DISABLE_SECURITY_PLUGIN"], "true");
    let plugins = get("/_cat/plugins?format=json").await;
    assert!(
        !plugins.to_string().contains("opensearch-security"),
        "{plugins}"
    );
}
