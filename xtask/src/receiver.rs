//! The demo's webhook receiver: an axum server on loopback that takes the detector's webhook
//! POSTs, prints each notification as it arrives and keeps it for the demo's summary.
//!
//! It runs on xtask's runtime for as long as the command does; the detector is pointed at
//! [`Receiver::url`] through the demo's spec. Every request gets `200 OK` (the detector retries
//! anything else, and the demo has nothing to reject); a body that is not JSON is not kept.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// The notifications received so far, in arrival order.
type Received = Arc<Mutex<Vec<Value>>>;

/// A running receiver.
#[derive(Debug)]
pub struct Receiver {
    /// Where to send notifications: `http://127.0.0.1:<port>/alerts`.
    pub url: String,
    received: Received,
}

impl Receiver {
    /// Binds an ephemeral port on loopback and serves on `rt` until the runtime stops.
    pub fn start(rt: &tokio::runtime::Handle) -> Result<Self> {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding the alert receiver")?;
        let url = format!(
            "http://{}/alerts",
            listener
                .local_addr()
                .context("the alert receiver's address")?
        );
        let received = Received::default();
        let app = Router::new()
            .route("/alerts", post(receive))
            .with_state(Arc::clone(&received));
        rt.spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("demo: the alert receiver stopped: {err}");
            }
        });
        Ok(Self { url, received })
    }

    /// Every notification received so far.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .map(|all| all.clone())
            .unwrap_or_default()
    }
}

/// One webhook POST: printed and kept if it is JSON; answered `200 OK` either way.
async fn receive(State(store): State<Received>, body: Bytes) -> StatusCode {
    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        println!(
            "demo: ALERT RECEIVED: {}",
            value["message"].as_str().unwrap_or("(no message)")
        );
        if let Ok(mut all) = store.lock() {
            all.push(value);
        }
    }
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_the_json_notifications_it_is_sent() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let receiver = Receiver::start(runtime.handle()).expect("starts");
        assert!(
            receiver.url.starts_with("http://127.0.0.1:") && receiver.url.ends_with("/alerts"),
            "{}",
            receiver.url
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .proxy(None)
            .build()
            .into();
        let alert = json!({"kind": "alert", "monitor": "UNK_country-Monitor", "message": "m"});
        let statuses = [
            agent.post(&receiver.url).send_json(&alert),
            agent
                .post(&receiver.url)
                .header("content-type", "text/plain")
                .send("not json"),
            agent
                .post(&receiver.url)
                .send_json(json!({"kind": "resolved"})),
        ]
        .map(|answer| answer.expect("answered").status().as_u16());
        assert_eq!(statuses, [200, 200, 200]);
        assert_eq!(receiver.received(), [alert, json!({"kind": "resolved"})]);
    }
}
