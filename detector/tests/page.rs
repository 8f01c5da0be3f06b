//! The detector's live page in a real browser: Debian's chromium, driven over the DevTools
//! protocol (`chromiumoxide`), on the real stack (`cargo xtask test`).
//!
//! The producer's generator writes WAF traffic to `raw`, the transformer enriches it, and the
//! detector scores the default spec's seed (its five detectors without a filter, at 1-second
//! intervals) plus [`IDLE`] idle detectors whose filter no record matches, as a spec with presets
//! for other log sources has; one of them is named with markup. All on the test's own topics and
//! indices. The page must load with no console error, no exception and no request outside its
//! origin, show the five with data and fold the idle ones behind one row; unfolded, they are
//! listed, marked "no data", the markup one as text. After an injected country anomaly it must
//! show the country detector's flagged intervals inside the anomaly (read from the DOM, after
//! clicking the row as a user would) and list as delivered the notifications the test's webhook
//! receiver got (the country monitor's alert among them), by their keys.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::EventEntryAdded;
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::js_protocol::runtime::{EventConsoleApiCalled, EventExceptionThrown};
use detector::spec::{Filter, Secret, Spec};
use futures::StreamExt;
use pipeline::testkit;
use pipeline::wire::MonitoredField;
use producer::generate::Generator;
use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};

/// A detector name that would be markup if the page did not escape it.
const MARKUP: &str = "<img src=x onerror=\"document.title='pwned'\">&amp;";

/// Idle detectors beside the seed's five (the default spec's presets are about 30).
const IDLE: usize = 31;

/// The seed's detectors, in the spec's order.
const SEED: [&str; 5] = [
    "action-anomaly-detector",
    "source-anomaly-detector",
    "httpstatus-anomaly-detector",
    "country-anomaly-detector",
    "method-anomaly-detector",
];

/// Debian's chromium, or where `XTASK_CHROMIUM` says it is.
fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("XTASK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    assert!(
        path.is_file(),
        "no chromium at {}: run the tests with `cargo xtask test`, which installs Debian's chromium",
        path.display()
    );
    path
}

/// The default spec's seed (its detectors without a filter and their monitors) at 1-second
/// intervals on `name`'s indices, without history, alerting `hook`; plus [`IDLE`] detectors whose
/// filter no record matches, the last named [`MARKUP`].
fn spec(name: &str, hook: &str) -> Spec {
    let mut spec = Spec::default_spec().expect("default spec");
    spec.detectors.retain(|d| d.feature.filter.is_none());
    let seed: Vec<String> = spec.detectors.iter().map(|d| d.name.clone()).collect();
    assert_eq!(seed, SEED, "the default spec's detectors without a filter");
    spec.monitors
        .retain(|m| m.detectors.iter().all(|d| seed.contains(d)));
    spec.events = format!("{name}events");
    spec.results = format!("{name}results");
    spec.checkpoints = format!("{name}checkpoints");
    for detector in &mut spec.detectors {
        detector.interval = Duration::from_secs(1);
        detector.window_delay = Duration::from_secs(1);
        detector.model.history = 0;
        detector.model.baseline = 10;
    }
    for i in 1..=IDLE {
        let mut idle = spec.detectors[3].clone();
        idle.name = if i == IDLE {
            MARKUP.to_owned()
        } else {
            format!("source{i}-country-detector")
        };
        idle.feature.filter = Some(Filter {
            field: "logwarden_source".to_owned(),
            value: json!(format!("source{i}")),
        });
        // The smallest model: they score nothing but zeros, and a debug build must keep up.
        idle.model.trees = 1;
        idle.model.sample_size = 8;
        idle.model.shingle_size = 1;
        spec.detectors.push(idle);
    }
    spec.channels[0].webhook = Some(Secret {
        env: None,
        file: None,
        value: Some(hook.to_owned()),
    });
    spec
}

/// Writes `seconds` of generated traffic to `raw` at 50 records a second, stamped now, with
/// `anomaly` injected; returns the time span it covered (epoch ms).
async fn traffic(
    producer: &FutureProducer,
    topic: &str,
    generator: &mut Generator,
    seconds: u64,
    anomaly: Option<MonitoredField>,
) -> (i64, i64) {
    let started = chrono::Utc::now().timestamp_millis();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..seconds * 10 {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        let batch: Vec<Vec<u8>> = (0..5)
            .map(|j| serde_json::to_vec(&generator.next(now + j * 20, anomaly)).expect("json"))
            .collect();
        common::send(producer, topic, &batch).await;
    }
    (started, chrono::Utc::now().timestamp_millis())
}

/// Evaluates `expression` in the page until `done` holds for its value (60 s at most).
async fn wait_for(
    page: &Page,
    what: &str,
    expression: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let value: Value = page
            .evaluate(expression)
            .await
            .ok()
            .and_then(|v| v.into_value().ok())
            .unwrap_or(Value::Null);
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never showed {what}; last read: {value}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a listener received so far (the browser is closed: nothing more comes).
fn drained<T>(stream: &mut (impl futures::Stream<Item = T> + Unpin)) -> Vec<T> {
    let mut all = Vec::new();
    while let Some(Some(item)) = futures::FutureExt::now_or_never(stream.next()) {
        all.push(item);
    }
    all
}

/// Clicks what `selector` finds, then waits (2 s) for `expression` to be true in the page; clicks
/// again if it is not (the page redraws every 2 s, which may replace the element between
/// finding and clicking it). 30 s at most.
async fn click_until(page: &Page, selector: &str, expression: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(element) = page.find_element(selector).await {
            let _ = element.click().await;
        }
        for _ in 0..8 {
            let done = page
                .evaluate(expression)
                .await
                .ok()
                .and_then(|v| v.into_value::<bool>().ok());
            if done == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "clicking {selector} never made {expression} true"
        );
    }
}

/// The detectors' rows as the page shows them.
const ROWS: &str =
    "[...document.querySelectorAll('#detectors tbody tr[data-detector]')].map(tr => ({
    name: tr.dataset.detector, state: tr.dataset.state, hidden: tr.hidden,
    text: tr.querySelector('td.name').textContent,
    flagged: Number(tr.querySelector('td.flagged').textContent)}))";

/// The alerts' rows.
const ALERTS: &str = "[...document.querySelectorAll('#alerts tbody tr')].map(tr => ({
    key: tr.dataset.key, outcome: tr.dataset.outcome, channel: tr.dataset.channel,
    monitor: tr.querySelector('td.monitor').textContent}))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_every_detector_then_the_injected_anomaly_flagged_and_its_alert() {
    let chromium = chromium();
    let url = testkit::require_opensearch().await;
    let kafka = testkit::kafka_with_private_topics("page", 2).await;
    let name = testkit::unique_name("page");
    let http = reqwest::Client::new();
    let producer: FutureProducer = kafka.producer_config("page").create().expect("producer");
    let mut generator = Generator::new(7, "page-0", "page").expect("generator");

    let (transformer_stop, transformer) = common::run_transformer(&kafka).await;
    let (hook, inbox) = common::receiver().await;
    let placeholder = common::spec(&name, "placeholder", "{field: UNK_country}", "1s", None);
    let mut settings = common::settings(&kafka, &url, &placeholder, "page-0");
    settings.spec = spec(&name, &hook);
    let (detector_stop, detector, telemetry_addr) = {
        let (service, stop) = testkit::service("detector").await;
        let addr = service.server.local_addr;
        let task = tokio::spawn(async move { detector::service::run(settings, &service).await });
        (stop, task, addr)
    };
    let origin = format!("http://{telemetry_addr}");

    let profile = std::env::temp_dir().join(&name);
    let config = BrowserConfig::builder()
        .chrome_executable(&chromium)
        .new_headless_mode()
        .no_sandbox()
        .user_data_dir(&profile)
        .arg("--disable-gpu")
        .window_size(1280, 900)
        .build()
        .expect("browser config");
    let (mut browser, mut handler) = Browser::launch(config)
        .await
        .unwrap_or_else(|err| panic!("starting {}: {err}", chromium.display()));
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.expect("a tab");
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .expect("console events");
    let mut exceptions = page
        .event_listener::<EventExceptionThrown>()
        .await
        .expect("exception events");
    let mut logged = page
        .event_listener::<EventEntryAdded>()
        .await
        .expect("log events");
    let mut requests = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .expect("network events");
    page.goto(format!("{origin}/"))
        .await
        .expect("the page loads");

    // Normal traffic: the five detectors fill in, the idle ones stay without data, folded.
    traffic(&producer, &kafka.topics.raw, &mut generator, 15, None).await;
    let rows = wait_for(
        &page,
        "every row, the seed's five with data",
        ROWS,
        |rows| {
            rows.as_array().is_some_and(|r| {
                r.len() == 5 + IDLE && r[..5].iter().all(|row| row["state"] != "no-data")
            })
        },
    )
    .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = rows.iter().filter_map(|row| row["name"].as_str()).collect();
    assert_eq!(names[..5], SEED);
    assert_eq!(names.last().copied(), Some(MARKUP));
    let shown: Vec<&str> = rows
        .iter()
        .filter(|row| row["hidden"] == false)
        .filter_map(|row| row["name"].as_str())
        .collect();
    assert_eq!(shown, SEED, "the idle detectors are folded");
    assert!(
        rows[5..].iter().all(|row| row["state"] == "no-data"),
        "{rows:?}"
    );
    let fold: Value = page
        .evaluate("document.getElementById('fold').textContent")
        .await
        .expect("the fold row")
        .into_value()
        .expect("its text");
    assert_eq!(fold, format!("▸ show {IDLE} detectors with no data"));
    click_until(
        &page,
        "#fold",
        "[...document.querySelectorAll('#detectors tbody tr[data-detector]')].every(tr => !tr.hidden)",
    )
    .await;
    let rows: Value = page
        .evaluate(ROWS)
        .await
        .expect("rows")
        .into_value()
        .expect("rows JSON");
    let markup_row = rows
        .as_array()
        .and_then(|r| r.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(markup_row["name"], MARKUP);
    assert_eq!(markup_row["hidden"], false);
    assert_eq!(markup_row["state"], "no-data");
    assert_eq!(
        markup_row["text"],
        format!("{MARKUP} no data"),
        "the name is shown as text"
    );
    let markup_ran: Value = page
        .evaluate("document.title + ' ' + document.querySelectorAll('#detectors img').length")
        .await
        .expect("title")
        .into_value()
        .expect("title text");
    assert_eq!(markup_ran, "logwarden detector 0");

    // The anomaly, then quiet again.
    let (from, to) = traffic(
        &producer,
        &kafka.topics.raw,
        &mut generator,
        6,
        Some(MonitoredField::Country),
    )
    .await;
    traffic(&producer, &kafka.topics.raw, &mut generator, 4, None).await;
    wait_for(&page, "the country detector flagged", ROWS, |rows| {
        rows.as_array().is_some_and(|r| {
            r.iter()
                .any(|row| row["name"] == "country-anomaly-detector" && row["flagged"] != 0)
        })
    })
    .await;
    wait_for(&page, "the country alert delivered", ALERTS, |rows| {
        rows.as_array().is_some_and(|r| {
            r.iter()
                .any(|a| a["monitor"] == "UNK_country-Monitor" && a["outcome"] == "delivered")
        })
    })
    .await;
    let country = "country-anomaly-detector";
    click_until(
        &page,
        &format!("#detectors tr[data-detector=\"{country}\"]"),
        &format!("document.getElementById('detail-title').textContent.startsWith('{country}')"),
    )
    .await;
    let flagged = wait_for(
        &page,
        "the country detector's flagged intervals",
        "[...document.querySelectorAll('#flagged tbody tr')].map(tr => Number(tr.dataset.start))",
        |starts| starts.as_array().is_some_and(|s| !s.is_empty()),
    )
    .await;
    let title: Value = page
        .evaluate("document.getElementById('detail-title').textContent")
        .await
        .expect("detail title")
        .into_value()
        .expect("text");
    let rows: Value = page
        .evaluate(ROWS)
        .await
        .expect("rows")
        .into_value()
        .expect("rows JSON");

    // What the receiver got, and what the browser saw: the page lists a delivery after the
    // receiver acknowledged it, at its next poll.
    let received: Vec<Value> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .map(|(_, body)| body.clone())
        .collect();
    let arrived: Vec<String> = received
        .iter()
        .filter_map(|b| b["idempotency_key"].as_str().map(str::to_owned))
        .collect();
    let alerts = wait_for(
        &page,
        "every notification the receiver got",
        ALERTS,
        |rows| {
            let shown = delivered_keys(rows);
            arrived.iter().all(|key| shown.contains(key))
        },
    )
    .await;
    let _ = browser.close().await;
    let _ = browser.wait().await;
    events.abort();
    let console: Vec<String> = drained(&mut console)
        .iter()
        .map(|e| format!("{:?}: {:?}", e.r#type, e.args))
        .collect();
    let exceptions: Vec<String> = drained(&mut exceptions)
        .iter()
        .map(|e| format!("{:?}", e.exception_details))
        .collect();
    let logged: Vec<String> = drained(&mut logged)
        .iter()
        .map(|e| format!("{:?} {:?}: {}", e.entry.level, e.entry.url, e.entry.text))
        .collect();
    let requested: Vec<String> = drained(&mut requests)
        .iter()
        .map(|e| e.request.url.clone())
        .collect();

    detector_stop.cancel();
    transformer_stop.cancel();
    let stopped = detector.await.expect("the detector task");
    let _ = transformer.await;
    let topics = kafka.topics.all();
    testkit::delete_topics(&kafka, &topics).await;
    common::clean(
        &http,
        &url,
        &[
            format!("{name}events*"),
            format!("{name}results"),
            format!("{name}checkpoints"),
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&profile);
    stopped.expect("the detector runs and stops cleanly");

    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(exceptions.is_empty(), "exceptions: {exceptions:?}");
    assert!(logged.is_empty(), "browser log entries: {logged:?}");
    let elsewhere: Vec<&String> = requested
        .iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")) && !u.starts_with("data:"))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests outside {origin}: {elsewhere:?}"
    );
    assert!(
        requested.contains(&format!("{origin}/api/status")),
        "the page polls its status: {requested:?}"
    );

    // The flagged intervals lie in the anomaly (an interval overlapping it counts).
    let starts: Vec<i64> = flagged
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let outside: Vec<&i64> = starts
        .iter()
        .filter(|&&s| s + 1_000 <= from || s >= to + 1_000)
        .collect();
    assert!(
        outside.is_empty(),
        "flagged outside the anomaly {from}..{to}: {outside:?} of {starts:?}"
    );
    let country_row = rows
        .as_array()
        .and_then(|r| r.iter().find(|row| row["name"] == country))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        country_row["flagged"].as_u64(),
        Some(starts.len() as u64),
        "the row counts the flagged intervals the detail lists: {country_row}"
    );
    assert!(
        title.as_str().is_some_and(|t| t.starts_with(country)),
        "the detail is the country detector's: {title}"
    );

    // The alerts on the page are the ones that arrived: the country monitor's among them.
    assert!(
        received
            .iter()
            .any(|b| b["kind"] == "alert" && b["monitor"] == "UNK_country-Monitor"),
        "alerts received: {received:?}"
    );
    // Every notification the receiver had got is listed; nothing listed is unknown to it (more
    // may have arrived after the page was last read, before the detector stopped).
    let shown = delivered_keys(&alerts);
    let all_arrived: Vec<String> = inbox
        .lock()
        .expect("inbox")
        .iter()
        .filter_map(|(_, b)| b["idempotency_key"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = arrived.iter().filter(|k| !shown.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "not on the page: {missing:?} (listed: {shown:?})"
    );
    let unknown: Vec<&String> = shown.iter().filter(|k| !all_arrived.contains(k)).collect();
    assert!(
        unknown.is_empty(),
        "listed as delivered, never received: {unknown:?}"
    );
}

/// The keys of the deliveries the page lists as delivered.
fn delivered_keys(rows: &Value) -> Vec<String> {
    rows.as_array()
        .map(|r| {
            r.iter()
                .filter(|a| a["outcome"] == "delivered")
                .filter_map(|a| a["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
