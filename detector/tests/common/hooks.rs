//! A webhook receiver the test controls: it accepts (200), refuses (503), holds a request until
//! the test changes its mode (then refuses it), or answers slowly; and it records every request
//! with its `Idempotency-Key` header, its body, what it answered and when.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Accept,
    /// 503 at once: the receiver is down.
    Unavailable,
    /// No answer until the mode changes, then 503: a request in flight when the sender dies.
    Hold,
    /// 200 after this long.
    Slow(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The `Idempotency-Key` header.
    pub header_key: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// What the receiver answered; `None` while it has not (or never did: the sender left).
    pub status: Option<u16>,
    /// When it arrived.
    pub arrived: Instant,
    /// When the receiver answered or the request was abandoned.
    pub ended: Option<Instant>,
}

impl Request {
    /// The body's idempotency key.
    pub fn key(&self) -> &str {
        self.body["idempotency_key"].as_str().unwrap_or_default()
    }

    /// The notification's kind (`alert`, `renotify`, `recovery`).
    pub fn kind(&self) -> &str {
        self.body["kind"].as_str().unwrap_or_default()
    }

    /// Answered with a 2xx: delivered, from the receiver's side.
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

struct Shared {
    requests: Mutex<Vec<Request>>,
    mode: watch::Sender<Mode>,
}

/// Marks a request ended when its handler finishes or is dropped (the connection closed).
struct Ending {
    shared: Arc<Shared>,
    index: usize,
    status: Option<u16>,
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Ok(mut requests) = self.shared.requests.lock()
            && let Some(request) = requests.get_mut(self.index)
        {
            request.status = self.status;
            request.ended = Some(Instant::now());
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> StatusCode {
    let index = {
        let mut requests = shared.requests.lock().expect("requests");
        requests.push(Request {
            header_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.0,
            status: None,
            arrived: Instant::now(),
            ended: None,
        });
        requests.len() - 1
    };
    let mut ending = Ending {
        shared: shared.clone(),
        index,
        status: None,
    };
    let mode = *shared.mode.borrow();
    let status = match mode {
        Mode::Accept => StatusCode::OK,
        Mode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Mode::Hold => {
            let mut changes = shared.mode.subscribe();
            let _ = changes.wait_for(|m| *m != Mode::Hold).await;
            StatusCode::SERVICE_UNAVAILABLE
        }
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    };
    ending.status = Some(status.as_u16());
    status
}

/// The receiver.
pub struct Hook {
    /// Where the detector posts (a spec's webhook URL).
    pub url: String,
    shared: Arc<Shared>,
}

impl Hook {
    /// Starts a receiver on a free loopback port, answering as `mode` says.
    pub async fn start(mode: Mode) -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::default(),
            mode: watch::Sender::new(mode),
        });
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// Answers as `mode` says from now on (a held request is released with a 503).
    pub fn set(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// Waits until `done` holds for the requests (checked every 5 ms); returns them.
    ///
    /// # Panics
    /// After `timeout`, naming `what` and listing the requests.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; the receiver got {}",
                summary(&requests)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// One line per request: kind, key, answer.
pub fn summary(requests: &[Request]) -> String {
    let lines: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {} → {:?}", r.kind(), r.key(), r.status))
        .collect();
    format!("{} request(s):\n{}", requests.len(), lines.join("\n"))
}
