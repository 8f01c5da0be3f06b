//! The plugin target against real exchanges recorded from OpenSearch 3.6.0 with its
//! anomaly-detection, alerting and notifications plugins (`tests/fixtures/opensearch-3.6-plugins/`,
//! whose README says how and what was recorded).
//!
//! Those plugins cannot be installed on this project's machines, so the code that speaks to them
//! is checked two ways:
//! - the bodies it sends, against the requests and stored objects the real plugins accepted and
//!   returned (so a second run against a real cluster finds nothing to change);
//! - its converge steps, against a local HTTP server that replays recorded responses in order
//!   and fails on any request it did not expect. Where a scenario needs a recorded response for
//!   another object (an id, a description), the test says which field it edits; the three
//!   responses no recording holds (channel update and delete, monitor delete) are the plugins'
//!   documented acknowledgements, marked as such.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pipeline::config::OpenSearchConfig;
use pipeline::spec::{Spec, TargetChoice};
use provisioner::api::Api;
use provisioner::compare::differences;
use provisioner::plan::{Action, Plan};
use provisioner::plugins::{self, ChannelKind, Plugins};
use provisioner::target::{self, Target};
use serde_json::{Value, json};

fn recording(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opensearch-3.6-plugins")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading the recording {}: {err}", path.display()));
    serde_json::from_str(&text).expect("a recording is JSON")
}

/// One expected request and the response to give.
struct Exchange {
    method: &'static str,
    path: String,
    status: u16,
    body: Value,
}

impl Exchange {
    /// The recorded exchange `name`, as recorded.
    fn recorded(name: &str) -> Self {
        let r = recording(name);
        Self {
            method: match r["request"]["method"].as_str().expect("method") {
                "GET" => "GET",
                "POST" => "POST",
                "PUT" => "PUT",
                "DELETE" => "DELETE",
                other => panic!("method {other}"),
            },
            path: r["request"]["path"].as_str().expect("path").to_owned(),
            status: u16::try_from(r["response"]["status"].as_u64().expect("status"))
                .expect("status"),
            body: r["response"]["body"].clone(),
        }
    }

    /// A documented acknowledgement no recording holds.
    fn documented(method: &'static str, path: &str, status: u16, body: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            status,
            body,
        }
    }

    /// The recorded response, as the answer to another request.
    fn answering(mut self, method: &'static str, path: &str, status: u16) -> Self {
        self.method = method;
        self.status = status;
        self.at(path)
    }

    fn at(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    fn edit(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.body);
        self
    }
}

#[derive(Default)]
struct Script {
    expected: VecDeque<Exchange>,
    received: Vec<(String, String, Value)>,
    unexpected: Vec<String>,
}

async fn replay(
    State(script): State<Arc<Mutex<Script>>>,
    method: HttpMethod,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut script = script.lock().expect("lock");
    script
        .received
        .push((method.to_string(), path.clone(), body));
    match script.expected.pop_front() {
        Some(next) if next.method == method.as_str() && next.path == path => {
            let status = StatusCode::from_u16(next.status).expect("status");
            (status, axum::Json(next.body)).into_response()
        }
        next => {
            let wanted = next.map_or("nothing".to_owned(), |n| format!("{} {}", n.method, n.path));
            script
                .unexpected
                .push(format!("got {method} {path}, expected {wanted}"));
            (StatusCode::IM_A_TEAPOT, "unexpected request").into_response()
        }
    }
}

/// A replaying server on loopback.
struct Replay {
    script: Arc<Mutex<Script>>,
    api: Api,
}

impl Replay {
    async fn start(exchanges: Vec<Exchange>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            expected: exchanges.into(),
            ..Script::default()
        }));
        let app = Router::new().fallback(replay).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = OpenSearchConfig {
            url: format!("http://{addr}"),
            ..OpenSearchConfig::default()
        };
        let client = pipeline::search::client(&config, Duration::from_secs(10)).expect("client");
        Self {
            script,
            api: Api::new(client, Duration::from_secs(10)),
        }
    }

    /// Asserts every expected request came, and nothing else; returns what was received.
    fn finish(&self) -> Received {
        let script = self.script.lock().expect("lock");
        assert!(script.unexpected.is_empty(), "{:#?}", script.unexpected);
        let left: Vec<String> = script
            .expected
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(left.is_empty(), "never requested: {left:#?}");
        script.received.clone()
    }
}

/// What the server received: method, path (with query) and body.
type Received = Vec<(String, String, Value)>;

/// Converges the plugin objects of `spec` (as `owner`; `apply`, `prune`) against a server
/// replaying `exchanges`; checks that every expected request came and nothing else, and returns
/// the plan (as far as it got), the outcome and what the server received.
async fn converge(
    spec: &Spec,
    owner: &str,
    apply: bool,
    prune: bool,
    exchanges: Vec<Exchange>,
) -> (Plan, Result<(), plugins::PluginError>, Received) {
    let replay = Replay::start(exchanges).await;
    let mut plan = Plan::default();
    let result = Plugins::new(&replay.api, owner, apply, prune)
        .converge(spec, &mut plan)
        .await;
    let received = replay.finish();
    (plan, result, received)
}

const OWNER: &str = "contract";
const RUNNING: &str = "DZGUBaIB0uRsc8lyu1Ur";
const CREATED: &str = "GAuxBaIBAmw-9BUqe322";
const DETECTORS: &str = "/_plugins/_anomaly_detection/detectors";

/// The recorded cluster's objects as a spec: events `waf-logs`, the running detector
/// `waf-unk-country` (history 40 as recorded), the monitor and the webhook channel.
fn recorded_spec(extra: &str) -> Spec {
    Spec::parse(
        &format!(
            "events: waf-logs
detectors:
  - name: waf-unk-country
    feature: {{field: UNK_country, aggregation: sum}}
    interval: 1m
    window_delay: 1m
    model: {{history: 40}}
{extra}
provisioning: {{owner: {OWNER}, target: opensearch-plugins}}
"
        ),
        "contract",
    )
    .expect("valid spec")
}

#[test]
fn detector_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec("");
    let ours = plugins::detector_body(&spec.detectors[0], 0, "waf-logs", OWNER).expect("body");
    // Against the detector as the real plugin returns it: only what we mean to differ.
    let stored = &recording("04-detector-get")["response"]["body"]["anomaly_detector"];
    let mut found = differences(&ours, stored);
    found.sort();
    assert_eq!(
        found,
        [
            "description",
            "feature_attributes[0].aggregation_query.sum_UNK_country",
            "feature_attributes[0].feature_name",
        ],
        "the rest (indices, time field, intervals in Minutes, filter, shingle size, history) must be the plugin's own form"
    );
    // Every field of the recorded create request is one we send, with the same value.
    let request = &recording("10-detector-create")["request"]["body"];
    let mut renamed = ours.clone();
    renamed["name"] = json!("recording-create");
    let mut found = differences(request, &renamed);
    found.sort();
    assert_eq!(
        found,
        [
            "description",
            "feature_attributes[0].aggregation_query.unk_country_sum",
            "feature_attributes[0].feature_name",
        ]
    );
}

#[test]
fn monitor_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec(
        "monitors: [{name: waf-unk-source-monitor, detectors: [waf-unk-country], channels: [waf-webhook], min_grade: 0.1}]
channels: [{name: waf-webhook, webhook: {value: 'http://127.0.0.1:8089/alert'}}]",
    );
    let ours = plugins::monitor_body(
        &spec.monitors[0],
        &["hZGZBaIB0uRsc8ly11du".to_owned()],
        1,
        &[("waf-webhook".to_owned(), ChannelKind::Webhook)],
        OWNER,
    );
    let stored = &recording("23-monitor-get")["response"]["body"]["monitor"];
    let found = differences(&ours, stored);
    // The input (results index, the data_end_time window, the detector, historical results
    // excluded, sort and aggregation), the schedule and the type are exactly the plugin's
    // stored form; only the trigger's own wording and the actions' templates differ.
    let trigger = "triggers[0].query_level_trigger";
    for path in &found {
        assert!(
            path == &format!("{trigger}.name")
                || path == &format!("{trigger}.condition.script.source")
                || path.starts_with(&format!("{trigger}.actions[0].")),
            "unexpected difference at {path}: {found:#?}"
        );
    }
    assert!(found.contains(&format!("{trigger}.condition.script.source")));
}

#[test]
fn channel_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec(
        "channels: [{name: waf-webhook, webhook: {value: 'http://127.0.0.1:8089/alert'}}]",
    );
    let (kind, configs) = plugins::channel_configs(&spec.channels[0], 0, OWNER).expect("configs");
    assert_eq!(kind, ChannelKind::Webhook);
    let stored = &recording("20-channel-get")["response"]["body"]["config_list"][0]["config"];
    assert_eq!(
        differences(&configs[0].1["config"], stored),
        ["description"]
    );
    // The create request as the recorded (duplicate) one: the same fields and values.
    let request = &recording("21-channel-create-duplicate")["request"]["body"];
    let mut found = differences(request, &configs[0].1);
    found.sort();
    assert_eq!(found, ["config.description"]);
}

#[tokio::test]
async fn auto_chooses_the_plugins_from_the_recorded_cat_plugins() {
    let replay = Replay::start(vec![Exchange::recorded("02-cat-plugins")]).await;
    let installed = provisioner::installed_plugins(&replay.api)
        .await
        .expect("plugins");
    replay.finish();
    assert_eq!(installed.len(), 5);
    let choice = target::choose(TargetChoice::Auto, &installed).expect("choice");
    assert_eq!(choice.target, Target::Plugins);
}

#[tokio::test]
async fn a_fresh_detector_and_monitor_are_created_and_started() {
    let spec = Spec::parse(
        &format!(
            "events: waf-logs
detectors: [{{name: recording-create, feature: {{field: UNK_country}}, interval: 1m, window_delay: 1m}}]
monitors: [{{name: recording-monitor, detectors: [recording-create], channels: [waf-webhook]}}]
channels: [{{name: waf-webhook, webhook: {{value: 'http://127.0.0.1:8089/alert'}}}}]
provisioning: {{owner: {OWNER}}}
"
        ),
        "contract",
    )
    .expect("valid");
    let (plan, result, received) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            // The recorded channel list: waf-webhook exists with another description.
            Exchange::recorded("19-channel-list"),
            Exchange::documented(
                "PUT",
                "/_plugins/_notifications/configs/waf-webhook",
                200,
                json!({"config_id": "waf-webhook"}),
            ),
            // Only waf-unk-country exists (not ours: no mark), so recording-create is created.
            Exchange::recorded("03-detector-search-by-name"),
            Exchange::recorded("10-detector-create"),
            Exchange::recorded("12-detector-start"),
            // The recorded monitor search: waf-unk-source-monitor, not ours.
            Exchange::recorded("24-monitor-search-by-name"),
            // The create answer has the GET's shape (`_id`, versions, `monitor`).
            Exchange::recorded("23-monitor-get").answering(
                "POST",
                "/_plugins/_alerting/monitors",
                201,
            ),
        ],
    )
    .await;
    result.expect("converges");
    let action = |kind, name| plan.step(kind, name).map(|s| s.action);
    assert_eq!(action("channel", "waf-webhook"), Some(Action::Update));
    assert_eq!(action("detector", "recording-create"), Some(Action::Create));
    assert_eq!(action("monitor", "recording-monitor"), Some(Action::Create));
    assert_eq!(plan.count(Action::Delete), 0);
    assert_eq!(plan.steps.len(), 3, "{}", plan.table());
    // The channel update sends the config only; the monitor watches the created detector's id.
    assert_eq!(
        received[1].2["config"]["webhook"]["url"],
        "http://127.0.0.1:8089/alert"
    );
    let monitor = &received[6].2;
    assert_eq!(
        monitor["inputs"][0]["search"]["query"]["query"]["bool"]["filter"][1]["term"]["detector_id"]
            ["value"],
        CREATED
    );
    assert_eq!(
        monitor["triggers"][0]["query_level_trigger"]["actions"][0]["destination_id"],
        "waf-webhook"
    );
    // The search asks for every detector, not one name.
    assert_eq!(
        received[2].2,
        json!({"size": 1000, "query": {"match_all": {}}})
    );
}

fn running_detector_exchanges(update: Exchange) -> Vec<Exchange> {
    vec![
        Exchange::recorded("19-channel-list"),
        Exchange::recorded("03-detector-search-by-name"),
        // The recorded GET of this detector: its job is enabled.
        Exchange::recorded("04-detector-get"),
        Exchange::recorded("14-detector-stop")
            .at(&format!("{DETECTORS}/{RUNNING}/_stop"))
            .edit(|b| b["_id"] = json!(RUNNING)),
        update,
    ]
}

#[tokio::test]
async fn a_running_detector_that_differs_is_stopped_updated_and_started() {
    let spec = recorded_spec("");
    let mut exchanges = running_detector_exchanges(
        // The recorded update of a stopped detector, answered for this one.
        Exchange::recorded("11-detector-update-stopped")
            .at(&format!(
                "{DETECTORS}/{RUNNING}?if_seq_no=0&if_primary_term=1"
            ))
            .edit(|b| b["_id"] = json!(RUNNING)),
    );
    exchanges.push(
        Exchange::recorded("12-detector-start")
            .at(&format!("{DETECTORS}/{RUNNING}/_start"))
            .edit(|b| b["_id"] = json!(RUNNING)),
    );
    exchanges.push(Exchange::recorded("24-monitor-search-by-name"));
    let (plan, result, received) = converge(&spec, OWNER, true, false, exchanges).await;
    result.expect("converges");
    let step = plan.step("detector", "waf-unk-country").expect("step");
    assert_eq!(step.action, Action::Update);
    assert!(
        step.detail.contains("(stop, update, start)"),
        "{}",
        step.detail
    );
    assert!(step.detail.starts_with("description"), "{}", step.detail);
    assert_eq!(received[4].2["history"], 40);
    assert_eq!(received[4].2["indices"], json!(["waf-logs*"]));
}

#[tokio::test]
async fn a_refused_update_shows_the_plugins_reason() {
    let spec = recorded_spec("");
    let (plan, result, _) = converge(
        &spec,
        OWNER,
        true,
        false,
        running_detector_exchanges(
            // What the plugin answers when the detector is (still) running.
            Exchange::recorded("13-detector-update-while-running").at(&format!(
                "{DETECTORS}/{RUNNING}?if_seq_no=0&if_primary_term=1"
            )),
        ),
    )
    .await;
    let err = result.expect_err("refused");
    assert!(
        plan.step("detector", "waf-unk-country").is_none(),
        "a failed step is reported as done: {}",
        plan.table()
    );
    let text = err.to_string();
    assert!(
        text.contains("status_exception: Job is running: GAuxBaIBAmw-9BUqe322"),
        "{text}"
    );
    assert!(
        text.contains(&format!("PUT {DETECTORS}/{RUNNING}")),
        "{text}"
    );
    assert!(text.contains("400"), "{text}");
}

#[tokio::test]
async fn a_name_taken_meanwhile_and_a_bad_monitor_show_the_plugins_reasons() {
    let spec = recorded_spec("");
    let replay = Replay::start(vec![
        Exchange::recorded("19-channel-list"),
        // The search found nothing (edited: no hits), but the create finds the name taken.
        Exchange::recorded("03-detector-search-by-name").edit(|b| {
            b["hits"]["hits"] = json!([]);
            b["hits"]["total"]["value"] = json!(0);
        }),
        Exchange::recorded("09-detector-create-duplicate-name"),
    ])
    .await;
    let err = Plugins::new(&replay.api, OWNER, true, false)
        .converge(&spec, &mut Plan::default())
        .await
        .expect_err("duplicate");
    replay.finish();
    assert!(
        err.to_string().contains(
            "Cannot create anomaly detector with name [waf-unk-country] as it's already used by another detector"
        ),
        "{err}"
    );

    let spec = recorded_spec(
        "monitors: [{name: recording-bad, detectors: [waf-unk-country], channels: []}]",
    );
    let (plan, result, _) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            Exchange::recorded("19-channel-list"),
            declared_detector_search(),
            Exchange::recorded("04-detector-get"),
            Exchange::recorded("24-monitor-search-by-name"),
            Exchange::recorded("27-monitor-create-bad-schedule"),
        ],
    )
    .await;
    let err = result.expect_err("bad monitor");
    assert!(
        err.to_string()
            .contains("alerting_exception: Interval is not allowed to be 0 or negative"),
        "{err}"
    );
    // The detector, edited to be exactly the declared one and running, was left alone.
    assert_eq!(
        plan.step("detector", "waf-unk-country").map(|s| s.action),
        Some(Action::Unchanged)
    );
}

/// The recorded detector search, its detector edited to be exactly the declared
/// `waf-unk-country` of [`recorded_spec`] (owned, history 40, our feature name).
fn declared_detector_search() -> Exchange {
    Exchange::recorded("03-detector-search-by-name").edit(|b| {
        let source = &mut b["hits"]["hits"][0]["_source"];
        source["description"] = json!(format!("sum(UNK_country) per 1m (managed_by: {OWNER})"));
        source["history"] = json!(40);
        source["feature_attributes"][0]["feature_name"] = json!("sum_UNK_country");
        source["feature_attributes"][0]["aggregation_query"] =
            json!({"sum_UNK_country": {"sum": {"field": "UNK_country"}}});
    })
}

#[tokio::test]
async fn a_monitor_on_another_detector_is_updated_in_place() {
    let spec = recorded_spec(
        "monitors: [{name: waf-unk-source-monitor, detectors: [waf-unk-country], channels: []}]",
    );
    let (plan, result, received) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            Exchange::recorded("19-channel-list"),
            declared_detector_search(),
            Exchange::recorded("04-detector-get"),
            // The recorded monitor watches detector hZGZ...; the spec's watches waf-unk-country.
            Exchange::recorded("24-monitor-search-by-name"),
            // The update answer has the GET's shape (documented; no recording holds one).
            Exchange::recorded("23-monitor-get").answering(
                "PUT",
                "/_plugins/_alerting/monitors/utypBaIBjm7DZZbaeRK4?if_seq_no=5&if_primary_term=3",
                200,
            ),
        ],
    )
    .await;
    result.expect("converges");
    let step = plan
        .step("monitor", "waf-unk-source-monitor")
        .expect("step");
    assert_eq!(step.action, Action::Update);
    assert!(step.detail.contains("inputs[0].search"), "{}", step.detail);
    let sent = &received[4].2;
    assert_eq!(
        sent["inputs"][0]["search"]["query"]["query"]["bool"]["filter"][1]["term"]["detector_id"]["value"],
        RUNNING
    );
    assert_eq!(sent["name"], "waf-unk-source-monitor");
}

/// The recorded objects, edited to carry this owner's mark, as leftovers of an empty-ish spec.
fn owned_leftovers() -> Vec<Exchange> {
    vec![
        Exchange::recorded("19-channel-list").edit(|b| {
            b["config_list"][0]["config"]["description"] =
                json!(format!("logwarden alerts (managed_by: {OWNER})"));
        }),
        Exchange::recorded("03-detector-search-by-name").edit(|b| {
            b["hits"]["hits"][0]["_source"]["name"] = json!("left-the-spec");
            b["hits"]["hits"][0]["_source"]["description"] =
                json!(format!("sum(UNK_country) per 1m (managed_by: {OWNER})"));
        }),
    ]
}

#[tokio::test]
async fn prune_deletes_only_owned_leftovers_monitors_first() {
    // The spec keeps one detector (created here), so the recorded ones are leftovers.
    let spec = Spec::parse(
        &format!(
            "events: waf-logs
detectors: [{{name: recording-create, feature: {{field: UNK_country}}, interval: 1m, window_delay: 1m}}]
provisioning: {{owner: {OWNER}}}
"
        ),
        "contract",
    )
    .expect("valid");
    let mut exchanges = owned_leftovers();
    exchanges.extend([
        Exchange::recorded("10-detector-create"),
        Exchange::recorded("12-detector-start"),
        Exchange::recorded("24-monitor-search-by-name").edit(|b| {
            let script = &mut b["hits"]["hits"][0]["_source"]["triggers"][0]["query_level_trigger"]
                ["condition"]["script"]["source"];
            *script = json!(format!(
                "// managed_by: {OWNER}\n{}",
                script.as_str().unwrap_or("")
            ));
        }),
        // Prune: the monitor, then the detector (stopped first: it runs), then the channel.
        Exchange::documented(
            "DELETE",
            "/_plugins/_alerting/monitors/utypBaIBjm7DZZbaeRK4",
            200,
            json!({"_id": "utypBaIBjm7DZZbaeRK4", "_version": 2}),
        ),
        Exchange::recorded("04-detector-get"),
        Exchange::recorded("14-detector-stop").at(&format!("{DETECTORS}/{RUNNING}/_stop")),
        Exchange::recorded("15-detector-delete").at(&format!("{DETECTORS}/{RUNNING}")),
        Exchange::documented(
            "DELETE",
            "/_plugins/_notifications/configs/waf-webhook",
            200,
            json!({"delete_response_list": {"waf-webhook": "OK"}}),
        ),
    ]);
    let (plan, result, _) = converge(&spec, OWNER, true, true, exchanges).await;
    result.expect("converges");
    let deleted: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Delete)
        .map(|s| (s.kind, s.name.as_str()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("monitor", "waf-unk-source-monitor"),
            ("detector", "left-the-spec"),
            ("channel", "waf-webhook")
        ]
    );
}

#[tokio::test]
async fn without_prune_owned_leftovers_are_listed_and_kept_and_a_dry_run_writes_nothing() {
    let spec = recorded_spec("");
    let mut exchanges = owned_leftovers();
    // The declared detector is missing (the search's only hit is the leftover): a dry run
    // plans its creation without asking for anything but lists.
    exchanges.push(Exchange::recorded("24-monitor-search-by-name"));
    let (plan, result, received) = converge(&spec, OWNER, false, false, exchanges).await;
    result.expect("plans");
    assert!(
        received
            .iter()
            .all(|(method, path, _)| method == "GET" || path.ends_with("/_search")),
        "a dry run only reads: {received:#?}"
    );
    assert_eq!(
        plan.step("detector", "waf-unk-country").map(|s| s.action),
        Some(Action::Create)
    );
    for (kind, name) in [("detector", "left-the-spec"), ("channel", "waf-webhook")] {
        let step = plan.step(kind, name).expect("listed");
        assert_eq!(step.action, Action::Unchanged);
        assert!(step.detail.contains("--prune"), "{}", step.detail);
    }
    assert_eq!(plan.count(Action::Delete), 0);
}

#[tokio::test]
async fn status_reads_state_and_init_progress_from_the_profile() {
    let spec = recorded_spec("");
    let replay = Replay::start(vec![
        Exchange::recorded("03-detector-search-by-name"),
        Exchange::recorded("05-detector-profile"),
    ])
    .await;
    let states = Plugins::new(&replay.api, OWNER, false, false)
        .detector_states(&spec)
        .await
        .expect("states");
    replay.finish();
    assert_eq!(states.len(), 1);
    let (name, state, detail) = &states[0];
    assert_eq!(name, "waf-unk-country");
    assert_eq!(state, "RUNNING");
    assert!(detail.starts_with("initialized 100%"), "{detail}");
    assert!(detail.contains("Invalid search query"), "{detail}");
}

#[tokio::test]
async fn a_missing_object_is_none_and_other_errors_carry_the_reason() {
    let replay = Replay::start(vec![
        Exchange::recorded("06-detector-get-missing"),
        Exchange::recorded("22-channel-test"),
    ])
    .await;
    let missing = replay
        .api
        .found(
            opensearch::http::Method::Get,
            &format!("{DETECTORS}/doesnotexist"),
        )
        .await
        .expect("answered");
    assert_eq!(missing, None);
    let err = replay
        .api
        .ok(
            opensearch::http::Method::Get,
            "/_plugins/_notifications/feature/test/waf-webhook",
            None,
        )
        .await
        .expect_err("500");
    replay.finish();
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[tokio::test]
async fn the_default_spec_plans_the_seeds_five_detectors_monitors_and_a_webhook_on_an_empty_cluster()
 {
    let mut spec = Spec::default_spec().expect("valid");
    // The default channel reads its URL from LOGWARDEN_SECRET_ALERT_WEBHOOK_URL; here it is given inline.
    spec.channels[0].webhook = Some(pipeline::spec::Secret {
        env: None,
        file: None,
        value: Some("http://127.0.0.1:8089/alert".into()),
    });
    let (plan, result, _) = converge(
        &spec,
        "logwarden",
        false,
        false,
        vec![
            // The recorded answers, edited to an empty cluster: no configs, no detectors, no monitors.
            Exchange::recorded("19-channel-list").edit(|b| {
                b["config_list"] = json!([]);
                b["total_hits"] = json!(0);
            }),
            Exchange::recorded("03-detector-search-by-name")
                .edit(|b| b["hits"]["hits"] = json!([])),
            Exchange::recorded("24-monitor-search-by-name").edit(|b| b["hits"]["hits"] = json!([])),
        ],
    )
    .await;
    result.expect("plans");
    let created = |kind: &str| -> Vec<String> {
        plan.steps
            .iter()
            .filter(|s| s.kind == kind && s.action == Action::Create)
            .map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(created("channel"), ["security-team"]);
    assert_eq!(
        created("detector"),
        [
            "action-anomaly-detector",
            "source-anomaly-detector",
            "httpstatus-anomaly-detector",
            "country-anomaly-detector",
            "method-anomaly-detector"
        ]
    );
    assert_eq!(
        created("monitor"),
        [
            "B_action-Monitor",
            "UNK_source-Monitor",
            "B_httpstatus-Monitor",
            "UNK_country-Monitor",
            "uncommon_method-Monitor"
        ]
    );
    assert_eq!(plan.steps.len(), 11, "{}", plan.table());
    // Each seed field, summed per minute over the events alias, trained on 120 intervals.
    for (d, field) in spec.detectors.iter().zip([
        "B_action",
        "UNK_source",
        "B_httpstatus",
        "UNK_country",
        "uncommon_method",
    ]) {
        let body = plugins::detector_body(d, 0, &spec.events, "logwarden").expect("body");
        assert_eq!(body["indices"], json!(["logwarden-events*"]));
        assert_eq!(body["detection_interval"]["period"]["interval"], 1);
        assert_eq!(body["history"], 120);
        assert_eq!(
            body["feature_attributes"][0]["aggregation_query"][format!("sum_{field}")]["sum"]["field"],
            field
        );
    }
}

#[test]
fn an_unset_channel_secret_names_the_channel_and_the_variable() {
    let spec = Spec::parse(
        "detectors: [{name: a, feature: {field: x}}]\nchannels: [{name: c, webhook: {env: LOGWARDEN_SECRET_TEST_SURELY_UNSET_URL}}]",
        "t",
    )
    .expect("valid");
    let err = plugins::channel_configs(&spec.channels[0], 0, "o").expect_err("unset");
    assert_eq!(err.key, "channels[0].webhook");
    assert!(
        err.to_string()
            .contains("LOGWARDEN_SECRET_TEST_SURELY_UNSET_URL"),
        "{err}"
    );
}
