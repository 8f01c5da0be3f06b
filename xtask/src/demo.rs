//! `cargo xtask demo`: logwarden running on this machine, end to end.
//!
//! Today the demo covers what exists: the stack comes up, the transformer and the sink start, the
//! producer writes 30 minutes of history (a backfill, as fast as the broker takes it) and then a
//! minute of live traffic with a country anomaly in the middle, the transformer enriches all of
//! it, the sink loads it into OpenSearch, and the demo reports what landed on each topic, what
//! OpenSearch holds (counts per indicator, the anomaly as it shows in the data) and where to look.
//! Then the detector starts (the seed's five detectors at 5-second intervals), trains on the
//! history in OpenSearch, scores the live minute, and its alert for the injected anomaly arrives
//! at a webhook receiver the demo runs on loopback. The demo ends with the address of the
//! detector's live page (its telemetry port), kept up until Enter is pressed when the demo runs
//! on a terminal; `--screenshot FILE` saves a picture of that page (Debian's chromium).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::{KafkaConfig, group_lag, topic_size};

use crate::Ctx;
use crate::receiver::Receiver;
use crate::stack::{self, StackOptions, State};

/// The transformer's consumer group (its default).
const TRANSFORMER_GROUP: &str = "logwarden-transformer";
/// The sink's consumer group (its default).
const SINK_GROUP: &str = "logwarden-sink";
/// The events alias the sink writes under (its default).
const EVENTS: &str = "logwarden-events";

/// The live part: quiet, an anomaly on `country`, quiet again.
const LIVE_SCENARIO: &str = "\
name: demo-live
rate: 20
phases:
  - normal: 20s
  - anomaly: country
    duration: 20s
  - normal: 20s
";

/// `cargo xtask demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Build and run the services with the release profile (slower to build, realistic speed).
    #[arg(long)]
    pub release: bool,
    /// Save a screenshot of the detector's live page (PNG) at the end, with Debian's chromium.
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub stack: StackOptions,
}

/// Whether the demo runs release builds (set once, at its start).
static RELEASE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Runs `cargo xtask demo`.
pub fn run(ctx: &Ctx, args: &DemoArgs) -> Result<()> {
    RELEASE.get_or_init(|| args.release);
    let options = &args.stack;
    let up = stack::ensure_up(ctx, options)?;
    let state = &up.state;
    let brokers = state
        .kafka_brokers()
        .context("the stack has no Kafka after `up`")?;
    let kafka = KafkaConfig::new(&brokers);
    let before = topic_sizes(ctx, &kafka)?;

    let alerts = Receiver::start(&ctx.rt)?;
    let spec = ctx.dirs.data.join("demo-detection.yaml");
    std::fs::write(&spec, demo_spec(&alerts.url))
        .with_context(|| format!("writing {}", spec.display()))?;
    println!(
        "\ndemo: the provisioner converges OpenSearch to the spec (index templates, results index, retention)…"
    );
    let provisioned = binary(
        state,
        "provisioner",
        &["apply", "--spec", &spec.display().to_string()],
    )?
    .status()
    .context("running the provisioner")?;
    if !provisioned.success() {
        bail!("the provisioner failed ({provisioned}); its output is above");
    }

    println!("\ndemo: starting the transformer (raw → enriched, with the seed's indicator rules)…");
    let mut transformer = service(state, "transformer", &["run"])?;
    println!("demo: starting the sink (enriched → OpenSearch `{EVENTS}`)…");
    let mut sink = service(state, "sink", &[])?;

    println!("\ndemo: the producer writes 30 minutes of history (20 events/s) into `raw`…");
    let mut backfill = binary(state, "producer", &["--backfill", "30m", "--rate", "20"])?;
    let backfill_started = Instant::now();
    let status = backfill.status().context("running the producer")?;
    if !status.success() {
        bail!("the producer failed ({status}); its log is above");
    }
    println!("\ndemo: waiting for the history to reach OpenSearch (consumer lag 0)…");
    if !(wait_for_lag(ctx, &kafka, TRANSFORMER_GROUP, &kafka.topics.raw)?
        && wait_for_lag(ctx, &kafka, SINK_GROUP, &kafka.topics.enriched)?)
    {
        stop(&mut transformer, "transformer")?;
        stop(&mut sink, "sink")?;
        bail!("the pipeline did not catch up within 2 minutes; the services' logs are above");
    }
    let through = backfill_started.elapsed();
    println!(
        "demo: 36000 records from the producer through the transformer and the sink into OpenSearch in {:.1} s: {:.0} events/s end to end ({} builds; the lag is polled every 250 ms)",
        through.as_secs_f64(),
        36_000.0 / through.as_secs_f64(),
        if args.release { "release" } else { "debug" }
    );

    if let Some(url) = state.opensearch_url() {
        // A cold start every time: the detector trains on the history just written.
        let _ = ureq::delete(format!("{url}/{DEMO_CHECKPOINTS}")).call();
    }
    println!(
        "\ndemo: starting the detector (the seed's five detectors at 5-second intervals, trained on that history; alerts to {})…",
        alerts.url
    );
    let mut detector = StopOnDrop(
        binary(state, "detector", &["run"])?
            .env("LOGWARDEN_DETECTOR__SPEC", &spec)
            .env("LOGWARDEN_TELEMETRY__LISTEN", DETECTOR_TELEMETRY)
            .spawn()
            .context("starting the detector")?,
        "detector",
    );
    std::thread::sleep(Duration::from_secs(5));

    let scenario = ctx.dirs.data.join("demo-live.yaml");
    std::fs::write(&scenario, LIVE_SCENARIO)
        .with_context(|| format!("writing {}", scenario.display()))?;
    println!(
        "\ndemo: one minute of live traffic (20 events/s, the history's rate) with a 20-second anomaly on `country`…"
    );
    let run_id = format!(
        "demo-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    producer(
        state,
        &[
            "--scenario",
            &scenario.display().to_string(),
            "--run-id",
            &run_id,
        ],
    )?;

    println!("\ndemo: waiting for the transformer and the sink to catch up (consumer lag 0)…");
    let caught_up = wait_for_lag(ctx, &kafka, TRANSFORMER_GROUP, &kafka.topics.raw)?
        && wait_for_lag(ctx, &kafka, SINK_GROUP, &kafka.topics.enriched)?;
    // The last intervals close (5 s + 2 s delay) and their alerts go out.
    std::thread::sleep(Duration::from_secs(10));
    stop(&mut transformer, "transformer")?;
    stop(&mut sink, "sink")?;
    if !caught_up {
        stop(&mut detector.0, "detector")?;
        bail!("the pipeline did not catch up within 2 minutes; the services' logs are above");
    }

    let after = topic_sizes(ctx, &kafka)?;
    println!("\ndemo: what the topics gained:");
    for ((topic, was), (_, is)) in before.iter().zip(&after) {
        println!("  {topic:<12} +{} records ({is} in all)", is - was);
    }
    if let Some(url) = state.opensearch_url() {
        opensearch_report(&url)?;
    }
    let received = alerts.received();
    println!(
        "\ndemo: the local receiver got {} notification(s) from the detector:",
        received.len()
    );
    for body in &received {
        println!(
            "  [{}] {} (detector {}, grade {:.2}, confidence {:.2}, value {} vs expected {:.1}, interval {})",
            body["kind"].as_str().unwrap_or("?"),
            body["message"].as_str().unwrap_or("?"),
            body["detector"].as_str().unwrap_or("?"),
            body["grade"].as_f64().unwrap_or(0.0),
            body["confidence"].as_f64().unwrap_or(0.0),
            body["value"],
            body["expected"].as_f64().unwrap_or(0.0),
            body["interval"]["start"].as_str().unwrap_or("?"),
        );
    }
    if let Some(url) = state.opensearch_url() {
        println!(
            "  every scored interval: curl -s '{url}/{DEMO_RESULTS}/_search?q=anomaly_grade:>0&sort=data_start_time:desc&pretty'"
        );
    }
    println!(
        "\ndemo: the detector scored against the producer's ground truth (`logwarden-detector evaluate --run-id {run_id}`):"
    );
    let evaluated = binary(state, "detector", &["evaluate", "--run-id", &run_id])?
        .env("LOGWARDEN_DETECTOR__SPEC", &spec)
        .status()
        .context("running the evaluation")?;
    if !evaluated.success() {
        println!("demo: the evaluation failed ({evaluated}); its error is above");
    }
    report(ctx, state)?;
    let page = format!("http://{DETECTOR_TELEMETRY}/");
    if let Some(file) = &args.screenshot {
        screenshot(ctx, &page, file)?;
    }
    page_until_enter(&mut detector.0, &page)?;
    if !received
        .iter()
        .any(|b| b["kind"] == "alert" && b["monitor"] == "UNK_country-Monitor")
    {
        bail!("no alert for the injected country anomaly arrived; the detector's log is above");
    }
    Ok(())
}

/// A service the demo started: stopped when dropped if it still runs, so that an error on the
/// way out does not leave it running (it serves the page until the demo's end).
struct StopOnDrop(Child, &'static str);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = stop(&mut self.0, self.1);
        }
    }
}

/// Where the demo's detector serves `/metrics` and its live page (its default port).
const DETECTOR_TELEMETRY: &str = "127.0.0.1:9104";

/// Prints the page's address last; on a terminal the detector keeps serving it until Enter.
fn page_until_enter(detector: &mut Child, page: &str) -> Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        println!("\ndemo: the detector keeps running; press Enter to stop it.");
        println!("demo: the detector's live page: {page}");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stop(detector, "detector")?;
    } else {
        stop(detector, "detector")?;
        println!(
            "\ndemo: the detector's live page was at {page} (run the demo on a terminal to keep it up)."
        );
    }
    Ok(())
}

/// A screenshot of the page by Debian's chromium, after its script drew the status.
fn screenshot(ctx: &Ctx, page: &str, file: &Path) -> Result<()> {
    crate::prereq::chromium(ctx.root)?;
    let file =
        std::path::absolute(file).with_context(|| format!("resolving {}", file.display()))?;
    let profile = ctx.dirs.data.join("demo-chromium");
    let mut command = Command::new("/usr/bin/chromium");
    command.args([
        "--headless=new",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1100",
        // Lets the page's first status requests finish before the picture is taken.
        "--virtual-time-budget=5000",
    ]);
    if ctx.root {
        command.arg("--no-sandbox");
    }
    let status = command
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", file.display()))
        .arg(page)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running chromium")?;
    if !status.success() || !file.is_file() {
        bail!("chromium could not take the screenshot ({status})");
    }
    println!("demo: a screenshot of the page is at {}", file.display());
    Ok(())
}

/// The demo's results and checkpoints indices.
const DEMO_RESULTS: &str = "logwarden-demo-anomaly-results";
const DEMO_CHECKPOINTS: &str = "logwarden-demo-detector-checkpoints";

/// The default spec's seed (its five detectors without a filter and their monitors, written out
/// here so that the default spec's presets for other log sources stay out of the demo and its
/// page), at 5-second intervals so the demo's one live minute has 12 of them, with its channel
/// pointed at the demo's receiver.
fn demo_spec(receiver: &str) -> String {
    let detectors = [
        (
            "action-anomaly-detector",
            "B_action",
            "B_action-Monitor",
            "action",
        ),
        (
            "source-anomaly-detector",
            "UNK_source",
            "UNK_source-Monitor",
            "httpSourceName",
        ),
        (
            "httpstatus-anomaly-detector",
            "B_httpstatus",
            "B_httpstatus-Monitor",
            "httpStatus",
        ),
        (
            "country-anomaly-detector",
            "UNK_country",
            "UNK_country-Monitor",
            "country",
        ),
        (
            "method-anomaly-detector",
            "uncommon_method",
            "uncommon_method-Monitor",
            "httpMethod",
        ),
    ];
    let mut spec = format!(
        "events: {EVENTS}\nresults: {DEMO_RESULTS}\ncheckpoints: {DEMO_CHECKPOINTS}\ndetectors:\n"
    );
    for (name, field, _, truth) in detectors {
        spec.push_str(&format!(
            "  - {{name: {name}, feature: {{field: {field}, aggregation: ratio}}, interval: 5s, window_delay: 2s, model: {{history: 360}}, ground_truth: {truth}}}\n"
        ));
    }
    spec.push_str("monitors:\n");
    for (name, _, monitor, _) in detectors {
        spec.push_str(&format!(
            "  - {{name: {monitor}, detectors: [{name}], channels: [demo-receiver]}}\n"
        ));
    }
    spec.push_str(&format!(
        "channels:\n  - {{name: demo-receiver, webhook: {{value: \"{receiver}\"}}}}\n"
    ));
    spec.push_str("provisioning: {target: builtin, owner: logwarden-demo}\n");
    spec
}

/// Waits (2 minutes at most) until `group` has consumed all of `topic`; says whether it did.
fn wait_for_lag(ctx: &Ctx, kafka: &KafkaConfig, group: &str, topic: &str) -> Result<bool> {
    wait_until(Duration::from_secs(120), || {
        let lag = ctx
            .rt
            .block_on(group_lag(kafka, group, topic, Duration::from_secs(10)))
            .with_context(|| format!("reading the lag of `{group}`"))?;
        Ok(lag == 0)
    })
}

/// What OpenSearch holds: documents, indicator totals, the live minute in 10-second steps.
fn opensearch_report(url: &str) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .proxy(None)
        .build()
        .into();
    agent
        .post(format!("{url}/{EVENTS}/_refresh"))
        .send_empty()
        .with_context(|| format!("refreshing {EVENTS}"))?;
    let indicators = pipeline::search::SEED_INDICATORS;
    let mut aggregations = serde_json::Map::new();
    for name in indicators {
        aggregations.insert(
            name.to_owned(),
            serde_json::json!({ "sum": { "field": name } }),
        );
    }
    aggregations.insert(
        "live".to_owned(),
        serde_json::json!({
            "filter": { "range": { "@timestamp": { "gte": "now-90s" } } },
            "aggs": { "steps": {
                "date_histogram": { "field": "@timestamp", "fixed_interval": "10s" },
                "aggs": { "UNK_country": { "sum": { "field": "UNK_country" } } }
            } }
        }),
    );
    let answer: serde_json::Value = agent
        .post(format!("{url}/{EVENTS}/_search"))
        .send_json(serde_json::json!({
            "size": 0,
            "track_total_hits": true,
            "aggs": aggregations,
        }))
        .with_context(|| format!("searching {EVENTS}"))?
        .body_mut()
        .read_json()
        .context("reading the search answer")?;
    let total = &answer["hits"]["total"]["value"];
    println!(
        "\ndemo: OpenSearch holds {total} documents under the alias `{EVENTS}` (daily indices `{EVENTS}-YYYY.MM.DD`)."
    );
    println!("  documents with each indicator set:");
    for pair in indicators.chunks(2) {
        let cells: Vec<String> = pair
            .iter()
            .map(|name| {
                let sum = answer["aggregations"][*name]["value"]
                    .as_f64()
                    .unwrap_or(0.0);
                format!("{name:<16}{sum:>9.0}")
            })
            .collect();
        println!("    {}", cells.join("    "));
    }
    println!("  the live minute, 10 s at a time (UNK_country: the injected country anomaly):");
    let steps = answer["aggregations"]["live"]["steps"]["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for step in steps {
        let when = step["key_as_string"].as_str().unwrap_or("?");
        let count = step["doc_count"].as_u64().unwrap_or(0);
        let unknown = step["UNK_country"]["value"].as_f64().unwrap_or(0.0);
        let bar = "#".repeat((unknown / 10.0).ceil() as usize);
        println!("    {when}  {count:>4} events  UNK_country {unknown:>4.0}  {bar}");
    }
    println!("  a sample query (one unknown-country event):");
    println!(
        "    curl -s '{url}/{EVENTS}/_search?q=UNK_country:1&size=1&sort=@timestamp:desc&pretty'"
    );
    Ok(())
}

fn topic_sizes(ctx: &Ctx, kafka: &KafkaConfig) -> Result<Vec<(String, i64)>> {
    kafka
        .topics
        .all()
        .iter()
        .map(|topic| Ok(((*topic).to_owned(), topic_size_of(ctx, kafka, topic)?)))
        .collect()
}

/// The topic's size; retried for up to 30 s, because a broker that just started can answer
/// "not leader for partition" while it takes leadership of its partitions.
fn topic_size_of(ctx: &Ctx, kafka: &KafkaConfig, topic: &str) -> Result<i64> {
    let started = Instant::now();
    loop {
        match ctx
            .rt
            .block_on(topic_size(kafka, topic, Duration::from_secs(10)))
        {
            Ok(size) => return Ok(size),
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(err) => {
                return Err(err).with_context(|| format!("reading the size of `{topic}`"));
            }
        }
    }
}

/// Polls `done` until it holds or `timeout` passes; says which.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if done()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(false)
}

/// One of the workspace's binaries, built by cargo and pointed at the stack.
fn binary(state: &State, package: &str, args: &[&str]) -> Result<Command> {
    let release = RELEASE.get().copied().unwrap_or(false);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = crate::paths::workspace()?;
    let name = format!("logwarden-{package}");
    let built = Command::new(&cargo)
        .current_dir(&workspace)
        .args(["build", "--quiet", "--package", package, "--bin", &name])
        .args(release.then_some("--release"))
        .status()
        .with_context(|| format!("building {name}"))?;
    if !built.success() {
        bail!("building {name} failed ({built})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    let profile = if release { "release" } else { "debug" };
    let mut command = Command::new(target.join(profile).join(&name));
    command.args(args);
    if let Some(brokers) = state.kafka_brokers() {
        command.env("LOGWARDEN_KAFKA__BROKERS", brokers);
    }
    if let Some(url) = state.opensearch_url() {
        command.env("LOGWARDEN_OPENSEARCH__URL", url);
    }
    Ok(command)
}

/// Runs `logwarden-producer` to its end.
fn producer(state: &State, args: &[&str]) -> Result<()> {
    let status = binary(state, "producer", args)?
        .status()
        .context("running the producer")?;
    if !status.success() {
        bail!("the producer failed ({status}); its log is above");
    }
    Ok(())
}

/// Starts a long-running service in the background; its log goes to this terminal.
fn service(state: &State, package: &str, args: &[&str]) -> Result<Child> {
    binary(state, package, args)?
        .spawn()
        .with_context(|| format!("starting the {package}"))
}

/// Stops a service the way Kubernetes does: SIGTERM; it drains, commits and exits.
fn stop(child: &mut Child, name: &str) -> Result<()> {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .with_context(|| format!("signalling the {name}"))?;
    let status = child
        .wait()
        .with_context(|| format!("waiting for the {name}"))?;
    println!("demo: {name} stopped ({status})");
    Ok(())
}

/// What runs where, how to point a service at it, how to stop it.
fn report(ctx: &Ctx, state: &State) -> Result<()> {
    println!();
    stack::status(ctx)?;
    println!();
    println!("To run a service against this stack:");
    if let Some(brokers) = state.kafka_brokers() {
        println!("  export LOGWARDEN_KAFKA__BROKERS={brokers}");
    }
    if let Some(url) = state.opensearch_url() {
        println!("  export LOGWARDEN_OPENSEARCH__URL={url}");
    }
    println!("Stop everything: cargo xtask stack down");
    Ok(())
}
