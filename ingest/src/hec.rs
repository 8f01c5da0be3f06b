//! The Splunk HTTP Event Collector: `/services/collector[/event]` (JSON envelopes),
//! `/services/collector/raw` (lines), `/services/collector/ack` (indexer acknowledgements) and
//! `/services/collector/health`, with `Authorization: Splunk <token>` and HEC's documented
//! responses (`{"text":"Success","code":0}`, its error codes). Records go to `raw` with source
//! `splunk`.

pub mod channels;
pub mod parse;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pipeline::wire::Source;
use serde::Deserialize;
use serde_json::json;

use crate::http::App;
use crate::http::refusal::{Reason, Refusal};

const RECEIVER: &str = "hec";

/// HEC's code and text for a refusal.
pub fn code(reason: Reason) -> (u16, &'static str) {
    match reason {
        Reason::TokenRequired => (2, "Token is required"),
        Reason::InvalidAuthorization => (3, "Invalid authorization"),
        Reason::InvalidToken => (4, "Invalid token"),
        Reason::NoData => (5, "No data"),
        Reason::InvalidData | Reason::BadEncoding | Reason::UnknownSource => {
            (6, "Invalid data format")
        }
        Reason::BodyTooLarge | Reason::EventTooLarge => (6, "Content too large"),
        Reason::KafkaRefused => (8, "Internal server error"),
        Reason::QueueFull | Reason::KafkaUnavailable | Reason::TooManyChannels => {
            (9, "Server is busy")
        }
        Reason::ChannelMissing => (10, "Data channel is missing"),
        Reason::InvalidChannel => (11, "Invalid data channel"),
        Reason::EventRequired => (12, "Event field is required"),
        Reason::EventBlank => (13, "Event field cannot be blank"),
        Reason::AckDisabled => (14, "ACK is disabled"),
        Reason::IndexedFields => (15, "Error in handling indexed fields"),
    }
}

fn refuse(app: &App, refusal: Refusal) -> Response {
    app.count(RECEIVER, &refusal);
    let (code, text) = code(refusal.reason);
    let mut body = json!({ "text": text, "code": code });
    if let Some(index) = refusal.event {
        body["invalid-event-number"] = json!(index);
    }
    let response = (refusal.reason.status(), Json(body)).into_response();
    app.with_retry_after(&refusal, response)
}

fn authenticate(app: &App, headers: &HeaderMap) -> Result<(), Refusal> {
    crate::http::authorize(app, headers, "Splunk")
}

/// The query parameters HEC reads.
#[derive(Debug, Default, Deserialize)]
pub struct HecQuery {
    /// The acknowledgement channel, when not in `X-Splunk-Request-Channel`.
    channel: Option<String>,
    #[serde(flatten)]
    meta: parse::RawMeta,
}

/// The request's channel, when acknowledgements are on: required, and a GUID.
fn channel(app: &App, headers: &HeaderMap, query: &HecQuery) -> Result<Option<String>, Refusal> {
    let Some(channels) = &app.get().channels else {
        return Ok(None);
    };
    let channel = headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.channel.clone())
        .ok_or_else(|| Refusal::new(Reason::ChannelMissing, "acknowledgements need a channel"))?;
    if uuid::Uuid::parse_str(&channel).is_err() {
        return Err(Refusal::new(
            Reason::InvalidChannel,
            "the channel is not a GUID",
        ));
    }
    if !channels.admits(&channel) {
        return Err(Refusal::new(
            Reason::TooManyChannels,
            "too many channels (ingest.http.max_channels)",
        ));
    }
    Ok(Some(channel))
}

async fn accept(
    app: &App,
    headers: &HeaderMap,
    query: &HecQuery,
    body: Body,
    raw: bool,
) -> Result<Response, Refusal> {
    authenticate(app, headers)?;
    let channel = channel(app, headers, query)?;
    let state = app.get();
    let bytes = crate::http::body::read(headers, body, state.max_body).await?;
    let records = if raw {
        parse::raw_events(&bytes, &query.meta, now_seconds(), state.max_event)?
    } else {
        parse::events(&bytes, state.max_event)?
    };
    state.writer.write(Source::Splunk, &records).await?;
    let mut body = json!({ "text": "Success", "code": 0 });
    if let (Some(channels), Some(channel)) = (&state.channels, channel) {
        let id = channels.issue(&channel).map_err(|_| {
            Refusal::new(
                Reason::TooManyChannels,
                "too many channels (ingest.http.max_channels)",
            )
        })?;
        body["ackId"] = json!(id);
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `POST /services/collector[/event]`: JSON envelopes.
pub async fn event(
    State(app): State<App>,
    Query(query): Query<HecQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(&app, &headers, &query, body, false)
        .await
        .unwrap_or_else(|refusal| refuse(&app, refusal))
}

/// `POST /services/collector/raw`: lines of text.
pub async fn raw(
    State(app): State<App>,
    Query(query): Query<HecQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(&app, &headers, &query, body, true)
        .await
        .unwrap_or_else(|refusal| refuse(&app, refusal))
}

#[derive(Deserialize)]
struct AckRequest {
    acks: Vec<u64>,
}

/// `POST /services/collector/ack`: `{"acks":[0,1]}` → `{"acks":{"0":true,"1":false}}`.
pub async fn ack(
    State(app): State<App>,
    Query(query): Query<HecQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        authenticate(&app, &headers)?;
        let Some(channels) = &app.get().channels else {
            return Err(Refusal::new(
                Reason::AckDisabled,
                "acknowledgements are off",
            ));
        };
        let channel = channel(&app, &headers, &query)?.unwrap_or_default();
        let bytes = crate::http::body::read(&headers, body, app.get().max_body).await?;
        let request: AckRequest = serde_json::from_slice(&bytes).map_err(|err| {
            Refusal::new(
                Reason::InvalidData,
                format!("expected {{\"acks\":[ids]}}: {err}"),
            )
        })?;
        let acks = channels
            .status(&channel, &request.acks)
            .ok_or_else(|| Refusal::new(Reason::InvalidChannel, "no request on this channel"))?;
        Ok((StatusCode::OK, Json(json!({ "acks": acks }))).into_response())
    };
    answer.await.unwrap_or_else(|refusal| refuse(&app, refusal))
}

/// `GET /services/collector/health`: healthy while the `kafka` check passes.
pub async fn health(State(app): State<App>) -> Response {
    if app.get().health.is_ready() {
        (
            StatusCode::OK,
            Json(json!({"text": "HEC is healthy", "code": 17})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"text": "HEC is unhealthy, queues are full", "code": 18})),
        )
            .into_response()
    }
}

fn now_seconds() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_millis() as f64) / 1000.0
}
