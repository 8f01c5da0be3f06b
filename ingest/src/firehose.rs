//! Amazon Data Firehose's HTTP endpoint delivery: `POST /firehose/<source>` with the access key
//! in `X-Amz-Firehose-Access-Key` and an optional `Content-Encoding: gzip`. The answer is
//! Firehose's documented one: `{"requestId","timestamp"}` with 200 once Kafka has every record,
//! else `{"requestId","timestamp","errorMessage"}` with the refusal's status (Firehose retries
//! on anything but 200). Decoding is in [`decode`].

pub mod decode;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::App;
use crate::http::refusal::{Reason, Refusal};

const RECEIVER: &str = "firehose";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `POST /firehose/<source>`.
pub async fn receive(
    State(app): State<App>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut request_id = headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let answer = async {
        let source = crate::http::source(&source)?;
        let key = headers
            .get("x-amz-firehose-access-key")
            .map(|v| v.to_str().unwrap_or(""))
            .ok_or_else(|| {
                Refusal::new(Reason::TokenRequired, "no X-Amz-Firehose-Access-Key header")
            })?;
        app.get()
            .tokens
            .name_of(key)
            .ok_or_else(|| Refusal::new(Reason::InvalidToken, "unknown access key"))?;
        let state = app.get();
        let bytes = crate::http::body::read(&headers, body, state.max_body).await?;
        if let Some(id) = decode::request_id(&bytes) {
            request_id = id;
        }
        let decoded = decode::decode(&bytes, source, state.max_event)?;
        if !decoded.records.is_empty() {
            state.writer.write(source, &decoded.records).await?;
        }
        if decoded.control_messages > 0 {
            state
                .metrics
                .skipped
                .with_label_values(&["control_message"])
                .inc_by(decoded.control_messages as u64);
        }
        Ok::<_, Refusal>(decoded.request_id)
    };
    match answer.await {
        Ok(id) => (
            StatusCode::OK,
            Json(json!({ "requestId": id, "timestamp": now_ms() })),
        )
            .into_response(),
        Err(refusal) => {
            app.count(RECEIVER, &refusal);
            let body = json!({
                "requestId": request_id,
                "timestamp": now_ms(),
                "errorMessage": format!("{}: {}", refusal.reason.as_str(), refusal.detail),
            });
            let response = (refusal.reason.status(), Json(body)).into_response();
            app.with_retry_after(&refusal, response)
        }
    }
}
