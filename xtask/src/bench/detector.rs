//! The detector's share of `cargo xtask bench cpu`: records per CPU-second into the detector.
//!
//! A backlog cannot be used as for the other stages: on a cold start the detector reads from a
//! minute before its first open interval (by record timestamp), and historical event times would
//! count as late. So the detector starts first, with a private spec (the seed's five detectors at
//! 5-second intervals) over the private events index the sink just loaded as its history; then
//! the producer sends live traffic (event time = now) through the transformer, and the run waits
//! until every detector's `scored_until` passes the traffic's end, which means it read every
//! record. The detector's CPU over that span, less what it spends idle at the same time (measured
//! for a few seconds before the traffic), divided by the records, is its cost per record.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::bench::private::Private;
use crate::bench::scrape;
use crate::bench::services::Service;

/// The detectors' interval and window delay, in seconds: short, so the wait after the traffic is.
const INTERVAL_S: u64 = 5;
const WINDOW_DELAY_S: u64 = 2;
/// How long the idle detector is watched before the traffic.
const IDLE: Duration = Duration::from_secs(5);

/// What the detector did.
pub struct DetectorStage {
    /// Records of live traffic it read.
    pub records: u64,
    /// CPU over the traffic span, as measured.
    pub cpu: Duration,
    /// CPU over the same span when idle (from the idle rate before the traffic).
    pub idle: Duration,
    /// Peak resident memory.
    pub memory: Option<u64>,
    /// With split reading, the reader's CPU over the span and its idle cost.
    pub reader: Option<(Duration, Duration)>,
}

/// Runs the detector over `records` records of live traffic sent at `rate` per second.
pub fn stage(
    target: &Path,
    private: &Private,
    logs: &Path,
    records: u64,
    rate: u64,
    projected: bool,
) -> Result<DetectorStage> {
    let spec = logs.join("detection.yaml");
    std::fs::write(&spec, spec_yaml(private)).context("writing the detection spec")?;
    let mut env = private.env("detector");
    env.push((
        "LOGWARDEN_DETECTOR__SPEC".to_owned(),
        spec.display().to_string(),
    ));
    env.push((
        "LOGWARDEN_DETECTOR__INSTANCE_ID".to_owned(),
        format!("{}detector-0", private.prefix),
    ));
    let mut transformer = Service::start(
        target,
        "transformer",
        &["run"],
        &private.env("transformer"),
        logs,
    )?;
    let mut reader = None;
    if projected {
        env.push((
            "LOGWARDEN_DETECTOR__INPUT".to_owned(),
            "projected".to_owned(),
        ));
        env.push((
            "LOGWARDEN_DETECTOR__READER__GROUP".to_owned(),
            format!("{}detector-readers", private.prefix),
        ));
        let mut started = Service::start_logged(
            target,
            "detector",
            &["read"],
            &env,
            &logs.join("detector-reader.log"),
        )?;
        started.wait_started(Duration::from_secs(90))?;
        reader = Some(started);
    }
    let mut detector = Service::start(target, "detector", &["run"], &env, logs)?;
    transformer.wait_started(Duration::from_secs(90))?;
    detector.wait_started(Duration::from_secs(90))?;
    // Active (lease taken, models restored or trained) and scoring.
    wait_for(&mut detector, Duration::from_secs(120), |page| {
        let active = scrape::sample(page, "logwarden_detector_active") == Some(1.0);
        Ok(active && !scrape::samples(page, "logwarden_detector_scored_until_seconds").is_empty())
    })?;
    // The reader projects the stages' backlog of `enriched` first: its idle cost is measured
    // once that is done (its record count still for two seconds).
    if let Some(reader) = reader.as_mut() {
        let mut last = (f64::NAN, 0);
        let started = Instant::now();
        while last.1 < 4 {
            if started.elapsed() > Duration::from_secs(300) {
                bail!(
                    "the reader did not finish the backlog; {}",
                    reader.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
            let page = reader.metrics()?;
            let count =
                scrape::sample(&page, "logwarden_detector_reader_records_total").unwrap_or(0.0);
            last = if count == last.0 {
                (count, last.1 + 1)
            } else {
                (count, 0)
            };
        }
    }
    let reader_cpu = |reader: &Option<Service>| reader.as_ref().map(Service::cpu_time).transpose();
    let idle_from = (Instant::now(), detector.cpu_time()?, reader_cpu(&reader)?);
    std::thread::sleep(IDLE);
    let traffic_from = (Instant::now(), detector.cpu_time()?, reader_cpu(&reader)?);
    let idle_span = (traffic_from.0 - idle_from.0).as_secs_f64();
    let idle_rate = (traffic_from.1 - idle_from.1).as_secs_f64() / idle_span;
    let reader_idle_rate = match (idle_from.2, traffic_from.2) {
        (Some(from), Some(to)) => (to - from).as_secs_f64() / idle_span,
        _ => 0.0,
    };

    let seconds = (records / rate.max(1)).max(1);
    let duration = format!("{seconds}s");
    let rate_arg = rate.to_string();
    let mut producer = Service::start(
        target,
        "producer",
        &["--rate", &rate_arg, "--duration", &duration, "--seed", "2"],
        &private.env("producer"),
        logs,
    )?;
    let started = Instant::now();
    while producer.exited()?.is_none() {
        if started.elapsed() > Duration::from_secs(seconds + 120) {
            bail!("the producer did not finish; {}", producer.log_tail());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    producer.stop()?;
    let traffic_end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs_f64();
    // Every detector scored past the traffic: every record was read.
    wait_for(&mut detector, Duration::from_secs(300), |page| {
        let scored = scrape::samples(page, "logwarden_detector_scored_until_seconds");
        Ok(!scored.is_empty()
            && scored
                .iter()
                .all(|&until| until >= traffic_end + INTERVAL_S as f64))
    })?;
    let traffic_to = (Instant::now(), detector.cpu_time()?, reader_cpu(&reader)?);
    let memory = detector.peak_memory();
    let span = (traffic_to.0 - traffic_from.0).as_secs_f64();
    detector.stop()?;
    if let Some(reader) = reader.as_mut() {
        reader.stop()?;
    }
    transformer.stop()?;
    Ok(DetectorStage {
        records,
        cpu: traffic_to.1.saturating_sub(traffic_from.1),
        idle: Duration::from_secs_f64(idle_rate * span),
        memory,
        reader: match (traffic_from.2, traffic_to.2) {
            (Some(from), Some(to)) => Some((
                to.saturating_sub(from),
                Duration::from_secs_f64(reader_idle_rate * span),
            )),
            _ => None,
        },
    })
}

/// Polls the detector's metrics every 250 ms until `done` holds.
fn wait_for(
    detector: &mut Service,
    timeout: Duration,
    mut done: impl FnMut(&str) -> Result<bool>,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if detector.exited()?.is_some() {
            bail!("the detector exited; {}", detector.log_tail());
        }
        if let Ok(page) = detector.metrics()
            && done(&page)?
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!(
        "the detector did not get there within {timeout:?}; {}",
        detector.log_tail()
    )
}

/// The seed's five detectors at short intervals, on the run's private indices, no monitors.
fn spec_yaml(private: &Private) -> String {
    let prefix = &private.prefix;
    let mut spec = format!(
        "events: {}\nresults: {prefix}results\ncheckpoints: {prefix}checkpoints\ndetectors:\n",
        private.alias
    );
    for (name, field) in [
        ("action-anomaly-detector", "B_action"),
        ("source-anomaly-detector", "UNK_source"),
        ("httpstatus-anomaly-detector", "B_httpstatus"),
        ("country-anomaly-detector", "UNK_country"),
        ("method-anomaly-detector", "uncommon_method"),
    ] {
        spec.push_str(&format!(
            "  - {{name: {name}, feature: {{field: {field}}}, interval: {INTERVAL_S}s, window_delay: {WINDOW_DELAY_S}s}}\n"
        ));
    }
    spec
}
