//! The image smoke test: the pipeline as containers of `cargo xtask image`'s image against the
//! local stack (`cargo xtask stack up`), the way a user runs it.
//!
//! The provisioner converges OpenSearch; the transformer, the sink and the detector run as
//! background containers; the producer writes 30 minutes of history, then a live minute with an
//! anomaly on `country`. Every container runs with `--network host --read-only --user
//! 65532:65532`, configured only through `LOGWARDEN_*` variables and mounted files, on this
//! test's own topics and indices. What a user would check: OpenSearch holds exactly the records
//! the producer wrote, an alert for the injected anomaly reaches a webhook receiver on loopback,
//! the image runs as 65532 and its root filesystem cannot be written.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deploy::podman::{Container, Podman};
use pipeline::kafka::{KafkaConfig, topic_size};
use pipeline::testkit;
use serde_json::Value;

/// The detectors at 5-second intervals (as `cargo xtask demo` runs them), so the live minute
/// has twelve; the webhook URL comes from a `LOGWARDEN_SECRET_*` variable, as in a pod.
fn spec(name: &str) -> String {
    let detectors = [
        ("action-anomaly-detector", "B_action", "B_action-Monitor"),
        (
            "source-anomaly-detector",
            "UNK_source",
            "UNK_source-Monitor",
        ),
        (
            "httpstatus-anomaly-detector",
            "B_httpstatus",
            "B_httpstatus-Monitor",
        ),
        (
            "country-anomaly-detector",
            "UNK_country",
            "UNK_country-Monitor",
        ),
        (
            "method-anomaly-detector",
            "uncommon_method",
            "uncommon_method-Monitor",
        ),
    ];
    let mut spec =
        format!("events: {name}events\nresults: {name}results\ncheckpoints: {name}checkpoints\n");
    spec.push_str("detectors:\n");
    for (detector, field, _) in detectors {
        spec.push_str(&format!(
            "  - {{name: {detector}, feature: {{field: {field}}}, interval: 5s, window_delay: 2s, model: {{history: 360}}}}\n"
        ));
    }
    spec.push_str("monitors:\n");
    for (detector, _, monitor) in detectors {
        spec.push_str(&format!(
            "  - {{name: {monitor}, detectors: [{detector}], channels: [receiver]}}\n"
        ));
    }
    spec.push_str(
        "channels:\n  - {name: receiver, webhook: {env: LOGWARDEN_SECRET_ALERT_WEBHOOK_URL}}\n",
    );
    spec.push_str(&format!(
        "provisioning: {{target: builtin, owner: {name}}}\n"
    ));
    spec
}

/// Quiet, 20 seconds of unknown countries, quiet: at the history's rate.
const LIVE: &str = "\
name: image-live
rate: 20
phases:
  - normal: 20s
  - anomaly: country
    duration: 20s
  - normal: 10s
";

/// A free port on loopback for a container's telemetry (four share the host's network).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("finding a free port: {err}"))
}

/// What every container of the test gets: host network, read-only root, user 65532, the
/// stack's addresses, the test's topics, a telemetry port of its own, the config directory.
fn options(kafka: &KafkaConfig, url: &str, config: &Path, extra: &[(&str, String)]) -> Vec<String> {
    let mut options: Vec<String> = [
        "--rm",
        "--network=host",
        "--read-only",
        "--user=65532:65532",
    ]
    .map(String::from)
    .to_vec();
    options.push(format!("--volume={}:/config:ro", config.display()));
    let topics = &kafka.topics;
    let env = [
        ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.clone()),
        ("LOGWARDEN_KAFKA__TOPICS__RAW", topics.raw.clone()),
        ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", topics.enriched.clone()),
        (
            "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
            topics.dead_letter.clone(),
        ),
        ("LOGWARDEN_KAFKA__TOPICS__LABELS", topics.labels.clone()),
        (
            "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
            topics.anomalies.clone(),
        ),
        ("LOGWARDEN_OPENSEARCH__URL", url.to_owned()),
        (
            "LOGWARDEN_TELEMETRY__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        ),
    ];
    for (key, value) in env.iter().chain(extra) {
        options.push(format!("--env={key}={value}"));
    }
    options
}

/// The count after `Done: every record delivered. records=` in a producer's output.
fn records_written(output: &str) -> u64 {
    output
        .lines()
        .find(|line| line.contains("Done: every record delivered."))
        .and_then(|line| line.split("records=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the producer did not report what it wrote:\n{output}"))
}

/// Runs the producer container to its end (on a blocking thread: the receiver keeps serving);
/// what it wrote.
async fn produce(podman: &Podman, name: String, options: Vec<String>, args: &[&str]) -> u64 {
    let podman = podman.clone();
    let mut command = vec!["logwarden-producer".to_owned()];
    command.extend(args.iter().map(|arg| (*arg).to_owned()));
    let (code, output) = tokio::task::spawn_blocking(move || {
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        podman.run(&name, &options, &command)
    })
    .await
    .expect("the producer's container ran");
    assert_eq!(code, Some(0), "the producer failed:\n{output}");
    records_written(&output)
}

/// The documents under `alias` (refreshed first), 0 while it does not exist.
async fn count(http: &reqwest::Client, url: &str, alias: &str) -> u64 {
    let _ = http.post(format!("{url}/{alias}/_refresh")).send().await;
    match http.get(format!("{url}/{alias}/_count")).send().await {
        Ok(response) => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// Waits until `alias` holds `expected` documents; fails if it holds more, or not within
/// `timeout`, or a service container stopped.
async fn wait_for_count(
    http: &reqwest::Client,
    url: &str,
    alias: &str,
    expected: u64,
    services: &[&Container],
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = count(http, url, alias).await;
        assert!(
            now <= expected,
            "{alias} holds {now} documents, more than the {expected} written"
        );
        if now == expected {
            return;
        }
        for service in services {
            assert!(service.running(), "the {} container stopped", service.name);
        }
        assert!(
            Instant::now() < deadline,
            "{alias} holds {now} of the {expected} records written after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The test's webhook receiver on loopback: every JSON body it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let inbox: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = Arc::clone(&inbox);
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<Value>| async move {
            store.lock().expect("inbox").push(body.0);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

fn epoch_ms(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("not an RFC 3339 time: {text:?}: {err}"))
        .timestamp_millis()
}

/// What the test creates besides containers: its indices, templates, topics and config
/// directory, deleted when dropped (also when the test fails).
struct Cleanup {
    url: String,
    name: String,
    kafka: KafkaConfig,
    config: PathBuf,
}

impl Cleanup {
    async fn run(&self) {
        let http = reqwest::Client::new();
        for index in ["events-*", "results", "checkpoints"] {
            let _ = http
                .delete(format!("{}/{}{index}", self.url, self.name))
                .send()
                .await;
        }
        // The events, results and checkpoints templates, and the sources' events templates.
        pipeline::testkit::delete_index_templates(&self.url, &self.name).await;
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        let admin = self
            .kafka
            .client_config("image-test")
            .create::<AdminClient<DefaultClientContext>>();
        if let Ok(admin) = admin {
            let _ = admin
                .delete_topics(&self.kafka.topics.all(), &AdminOptions::new())
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be the one unwinding: a runtime of its own.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(self.run());
                }
            });
        });
    }
}

#[test]
fn the_image_runs_as_65532_with_a_read_only_root_and_no_default_entrypoint() {
    let podman = Podman::from_env();
    let name = testkit::unique_name("image-props");
    let options: Vec<String> = [
        "--rm",
        "--network=none",
        "--read-only",
        "--user=65532:65532",
    ]
    .map(String::from)
    .to_vec();

    // The image's configuration, as `podman image inspect` shows it.
    assert_eq!(podman.image_field("{{.Config.User}}"), "65532:65532");
    assert_eq!(
        podman.image_field("{{.Config.WorkingDir}}"),
        "/var/lib/logwarden"
    );
    assert_eq!(
        podman.image_field("{{json .Config.ExposedPorts}}"),
        r#"{"9464/tcp":{}}"#
    );
    assert_eq!(podman.image_field("{{json .Config.Entrypoint}}"), "null");
    assert_eq!(
        podman.image_field("{{json .Config.Cmd}}"),
        r#"["logwarden-transformer","--help"]"#
    );
    let env = podman.image_field("{{json .Config.Env}}");
    for var in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(env.contains(var), "{var} is not in the image's env {env}");
    }

    // Every binary is on PATH and finds its libraries.
    for service in ["producer", "transformer", "sink", "detector", "provisioner"] {
        let binary = format!("logwarden-{service}");
        let (code, version) = podman.run(
            &format!("{name}{service}"),
            &options,
            &[&binary, "--version"],
        );
        assert_eq!(
            (code, version.trim()),
            (
                Some(0),
                format!("{binary} {}", env!("CARGO_PKG_VERSION")).as_str()
            )
        );
    }
    let (code, help) = podman.run(
        &format!("{name}help"),
        &options,
        &["logwarden-provisioner", "--help"],
    );
    assert_eq!(code, Some(0), "{help}");
    for command in ["apply", "plan", "status", "spec"] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "no `{command}` in:\n{help}"
        );
    }

    // The root filesystem is read-only: the producer cannot write a file even where user 65532
    // may (its state directory), and can without --read-only.
    let write = [
        "logwarden-producer",
        "--output=stdout",
        "--count=1",
        "--labels-file=/var/lib/logwarden/labels.ndjson",
    ];
    let (code, refused) = podman.run(&format!("{name}read-only"), &options, &write);
    assert_eq!(code, Some(1), "{refused}");
    assert!(
        refused.contains("writing /var/lib/logwarden/labels.ndjson: Read-only file system"),
        "{refused}"
    );
    assert_eq!(
        refused.matches("Read-only file system").count(),
        1,
        "the cause is said once: {refused}"
    );
    let writable: Vec<String> = options
        .iter()
        .filter(|&option| option != "--read-only")
        .cloned()
        .collect();
    let (code, written) = podman.run(&format!("{name}writable"), &writable, &write);
    assert_eq!(code, Some(0), "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_from_the_image_as_read_only_non_root_containers() {
    let started = Instant::now();
    let podman = Podman::from_env();
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("image", 2).await;
    let name = testkit::unique_name("image");
    let http = reqwest::Client::new();
    let config = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&name);
    let _cleanup = Cleanup {
        url: url.clone(),
        name: name.clone(),
        kafka: kafka.clone(),
        config: config.clone(),
    };
    std::fs::create_dir_all(&config).expect("the test's config directory");
    std::fs::write(config.join("spec.yaml"), spec(&name)).expect("writing the spec");
    std::fs::write(config.join("live.yaml"), LIVE).expect("writing the scenario");
    let events = format!("{name}events");

    // OpenSearch converged to the test's spec, as the chart's hook Job does first.
    let (code, applied) = podman.run(
        &format!("{name}provisioner"),
        &options(&kafka, &url, &config, &[]),
        &[
            "logwarden-provisioner",
            "apply",
            "--spec",
            "/config/spec.yaml",
        ],
    );
    assert_eq!(code, Some(0), "{applied}");
    assert!(
        applied.contains(&format!("index template  {events}")),
        "the provisioner did not create the events template:\n{applied}"
    );

    // The services, in the background.
    let logs = |service: &str| config.join(format!("{service}.log"));
    let transformer = podman.start(
        &format!("{name}transformer"),
        &logs("transformer"),
        &options(
            &kafka,
            &url,
            &config,
            &[(
                "LOGWARDEN_TRANSFORMER__GROUP_ID",
                format!("{name}transformer"),
            )],
        ),
        &["logwarden-transformer", "run"],
    );
    let sink = podman.start(
        &format!("{name}sink"),
        &logs("sink"),
        &options(
            &kafka,
            &url,
            &config,
            &[
                ("LOGWARDEN_SINK__GROUP_ID", format!("{name}sink")),
                ("LOGWARDEN_SINK__INDEX", events.clone()),
            ],
        ),
        &["logwarden-sink"],
    );
    let uid = std::fs::read_to_string(format!("/proc/{}/status", transformer.pid()))
        .expect("the transformer's /proc status");
    assert!(
        uid.lines().any(|line| line
            .split_whitespace()
            .eq(["Uid:", "65532", "65532", "65532", "65532"])),
        "the transformer does not run as 65532:\n{uid}"
    );

    // History: 30 minutes at 20 events/s, all of it in OpenSearch before the detector starts.
    let history = produce(
        &podman,
        format!("{name}backfill"),
        options(&kafka, &url, &config, &[]),
        &["--backfill", "30m", "--rate", "20", "--seed", "14"],
    )
    .await;
    assert_eq!(history, 36_000);
    wait_for_count(&http, &url, &events, history, &[&transformer, &sink]).await;

    let (hook, inbox) = receiver().await;
    let detector_env = [
        ("LOGWARDEN_DETECTOR__SPEC", "/config/spec.yaml".to_owned()),
        ("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL", hook.clone()),
    ];
    let detector = podman.start(
        &format!("{name}detector"),
        &logs("detector"),
        &options(&kafka, &url, &config, &detector_env),
        &["logwarden-detector", "run"],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !detector.logs().contains("Detecting.") {
        assert!(detector.running(), "the detector container stopped");
        assert!(
            Instant::now() < deadline,
            "the detector did not start within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A live minute with the anomaly.
    let live = produce(
        &podman,
        format!("{name}live"),
        options(&kafka, &url, &config, &[]),
        &[
            "--scenario",
            "/config/live.yaml",
            "--seed",
            "15",
            "--run-id",
            &name,
        ],
    )
    .await;
    let written = history + live;
    let raw = topic_size(&kafka, &kafka.topics.raw, Duration::from_secs(10))
        .await
        .expect("the raw topic's size");
    assert_eq!(
        u64::try_from(raw).ok(),
        Some(written),
        "raw holds {raw}, the producer wrote {written}"
    );
    wait_for_count(
        &http,
        &url,
        &events,
        written,
        &[&transformer, &sink, &detector],
    )
    .await;

    // The ground truth the producer published, and the alert for it.
    let labels = testkit::consume(
        &kafka,
        &kafka.topics.labels,
        3,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    // A label per phase with an end: the anomaly's, and the normal ones around it.
    let labels: Vec<Value> = labels
        .iter()
        .map(|l| serde_json::from_str(testkit::payload_text(l)).expect("label JSON"))
        .collect();
    let anomalies: Vec<&Value> = labels.iter().filter(|l| l["kind"].is_null()).collect();
    assert_eq!(
        (labels.len(), anomalies.len()),
        (3, 1),
        "normal, anomaly, normal: {labels:?}"
    );
    let label = anomalies[0];
    assert_eq!(label["field"], "country");
    let (phase_start, phase_end) = (label["start_ms"].as_i64(), label["end_ms"].as_i64());
    let (phase_start, phase_end) = (phase_start.expect("start_ms"), phase_end.expect("end_ms"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        let received = inbox.lock().expect("inbox").clone();
        if let Some(alert) = received.iter().find(|body| body["kind"] == "alert") {
            break alert.clone();
        }
        assert!(detector.running(), "the detector container stopped");
        assert!(
            Instant::now() < deadline,
            "no alert within 60 s of the live minute's end"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(alert["monitor"], "UNK_country-Monitor", "{alert}");
    assert_eq!(alert["detector"], "country-anomaly-detector", "{alert}");
    let (start, end) = (
        epoch_ms(&alert["interval"]["start"]),
        epoch_ms(&alert["interval"]["end"]),
    );
    assert_eq!(end - start, 5_000, "{alert}");
    assert!(
        start < phase_end && end > phase_start,
        "the alerted interval [{start}, {end}) is outside the anomaly [{phase_start}, {phase_end}): {alert}"
    );
    let others: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .filter(|body| body["kind"] == "alert" && body["monitor"] != "UNK_country-Monitor")
        .cloned()
        .collect();
    assert!(others.is_empty(), "alerts without an anomaly: {others:?}");

    eprintln!(
        "image smoke test: {written} records, alert at {}, {:.0} s in all",
        alert["interval"]["start"],
        started.elapsed().as_secs_f64()
    );
}
