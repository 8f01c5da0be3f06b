//! Plain NDJSON over HTTP, for anything else: `POST /ingest/<source>` with
//! `Authorization: Bearer <token>`, one JSON object per line; each line becomes one record of
//! `<source>` (any of `pipeline::wire::Source`), its bytes as sent. All or nothing, like HEC.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::IgnoredAny;
use serde_json::json;

use crate::http::App;
use crate::http::refusal::{Reason, Refusal};

const RECEIVER: &str = "ndjson";

/// Pure: the non-blank lines of `body`, each a JSON object of at most `max_event` bytes.
pub fn lines(body: &[u8], max_event: usize) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut records = Vec::new();
    for (number, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let index = records.len();
        if line.len() > max_event {
            return Err(Refusal::at(
                Reason::EventTooLarge,
                index,
                format!(
                    "line {} is {} bytes, over {max_event}",
                    number + 1,
                    line.len()
                ),
            ));
        }
        if !line.starts_with(b"{") {
            return Err(Refusal::at(
                Reason::InvalidData,
                index,
                format!("line {} is not a JSON object", number + 1),
            ));
        }
        serde_json::from_slice::<IgnoredAny>(line).map_err(|err| {
            Refusal::at(
                Reason::InvalidData,
                index,
                format!("line {} is not JSON: {err}", number + 1),
            )
        })?;
        records.push(line.to_vec());
    }
    if records.is_empty() {
        return Err(Refusal::new(Reason::NoData, "the body holds no line"));
    }
    Ok(records)
}

fn refuse(app: &App, refusal: Refusal) -> Response {
    app.count(RECEIVER, &refusal);
    let mut body = json!({ "error": refusal.reason.as_str(), "detail": refusal.detail });
    if let Some(index) = refusal.event {
        body["event"] = json!(index);
    }
    let response = (refusal.reason.status(), Json(body)).into_response();
    app.with_retry_after(&refusal, response)
}

/// `POST /ingest/<source>`.
pub async fn receive(
    State(app): State<App>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let source = crate::http::source(&source)?;
        crate::http::authorize(&app, &headers, "Bearer")?;
        let state = app.get();
        let bytes = crate::http::body::read(&headers, body, state.max_body).await?;
        let records = lines(&bytes, state.max_event)?;
        state.writer.write(source, &records).await?;
        Ok::<_, Refusal>(
            (StatusCode::OK, Json(json!({ "accepted": records.len() }))).into_response(),
        )
    };
    answer.await.unwrap_or_else(|refusal| refuse(&app, refusal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_objects_kept_as_sent() {
        let records = lines(b"{\"a\":1}\r\n\n  {\"b\":[2]}  \n", 100).expect("valid");
        assert_eq!(records, [b"{\"a\":1}".to_vec(), b"{\"b\":[2]}".to_vec()]);
        let cases: [(&[u8], Reason, Option<usize>); 4] = [
            (b"\n \n", Reason::NoData, None),
            (b"{\"a\":1}\n[1]", Reason::InvalidData, Some(1)),
            (b"{\"a\":1}\n{\"a\":", Reason::InvalidData, Some(1)),
            (b"{\"a\":\"0123456789\"}", Reason::EventTooLarge, Some(0)),
        ];
        for (body, reason, event) in cases {
            let refusal = lines(body, 16).expect_err("refused");
            assert_eq!(
                (refusal.reason, refusal.event),
                (reason, event),
                "{refusal:?}"
            );
        }
    }
}
