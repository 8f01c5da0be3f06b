//! The plugin tests' shared means: the recordings from OpenSearch 3.6.0 with its plugins
//! (`tests/fixtures/opensearch-3.6-plugins/`), a local HTTP server that replays them in order and
//! fails on any request it did not expect, and the recorded cluster's objects as a spec.

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
use pipeline::spec::Spec;
use provisioner::api::Api;
use provisioner::plan::Plan;
use provisioner::plugins::{PluginError, Plugins};
use serde_json::{Value, json};

pub fn recording(name: &str) -> Value {
    let path = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("tests/fixtures/opensearch-3.6-plugins")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading the recording {}: {err}", path.display()));
    serde_json::from_str(&text).expect("a recording is JSON")
}

/// One expected request and the response to give.
pub struct Exchange {
    method: &'static str,
    path: String,
    status: u16,
    body: Value,
}

impl Exchange {
    /// The recorded exchange `name`, as recorded.
    pub fn recorded(name: &str) -> Self {
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
    pub fn documented(method: &'static str, path: &str, status: u16, body: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            status,
            body,
        }
    }

    /// The recorded response, as the answer to another request.
    pub fn answering(mut self, method: &'static str, path: &str, status: u16) -> Self {
        self.method = method;
        self.status = status;
        self.at(path)
    }

    pub fn at(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    pub fn edit(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.body);
        self
    }
}

#[derive(Default)]
pub struct Script {
    expected: VecDeque<Exchange>,
    received: Vec<(String, String, Value)>,
    unexpected: Vec<String>,
}

pub async fn replay(
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
pub struct Replay {
    script: Arc<Mutex<Script>>,
    /// The provisioner's API client, pointed at this server.
    pub api: Api,
}

impl Replay {
    pub async fn start(exchanges: Vec<Exchange>) -> Self {
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
    pub fn finish(&self) -> Received {
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
pub type Received = Vec<(String, String, Value)>;

/// Converges the plugin objects of `spec` (as `owner`; `apply`, `prune`) against a server
/// replaying `exchanges`; checks that every expected request came and nothing else, and returns
/// the plan (as far as it got), the outcome and what the server received.
pub async fn converge(
    spec: &Spec,
    owner: &str,
    apply: bool,
    prune: bool,
    exchanges: Vec<Exchange>,
) -> (Plan, Result<(), PluginError>, Received) {
    let replay = Replay::start(exchanges).await;
    let mut plan = Plan::default();
    let result = Plugins::new(&replay.api, owner, apply, prune)
        .converge(spec, &mut plan)
        .await;
    let received = replay.finish();
    (plan, result, received)
}

pub const OWNER: &str = "contract";
pub const RUNNING: &str = "DZGUBaIB0uRsc8lyu1Ur";
pub const CREATED: &str = "GAuxBaIBAmw-9BUqe322";
pub const DETECTORS: &str = "/_plugins/_anomaly_detection/detectors";

/// The recorded cluster's objects as a spec: events `waf-logs`, the running detector
/// `waf-unk-country` (history 40 as recorded), the monitor and the webhook channel.
pub fn recorded_spec(extra: &str) -> Spec {
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

/// The exchanges up to a running detector's update: the channel list, the detector found by
/// name, its GET (the job enabled) and its stop; `update` answers the update that follows.
pub fn running_detector_exchanges(update: Exchange) -> Vec<Exchange> {
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

/// The recorded detector search, its detector edited to be exactly the declared
/// `waf-unk-country` of [`recorded_spec`] (owned, history 40, our feature name).
pub fn declared_detector_search() -> Exchange {
    Exchange::recorded("03-detector-search-by-name").edit(|b| {
        let source = &mut b["hits"]["hits"][0]["_source"];
        source["description"] = json!(format!("sum(UNK_country) per 1m (managed_by: {OWNER})"));
        source["history"] = json!(40);
        source["feature_attributes"][0]["feature_name"] = json!("sum_UNK_country");
        source["feature_attributes"][0]["aggregation_query"] =
            json!({"sum_UNK_country": {"sum": {"field": "UNK_country"}}});
    })
}
