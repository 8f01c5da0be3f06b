//! JSON over HTTP to OpenSearch, for the provisioner: one call shape for the core APIs and the
//! plugins' REST APIs alike (the `opensearch` crate has no typed calls for the plugins).
//!
//! A call either gets an answer with a status, which the caller judges (a 404 is often "not
//! there yet"), or fails as [`ApiError::Unreachable`]. [`Api::ok`] turns an error status into
//! [`ApiError::Refused`] carrying OpenSearch's own reason.

use std::time::Duration;

use opensearch::OpenSearch;
use opensearch::http::headers::HeaderMap;
use opensearch::http::request::JsonBody;
use opensearch::http::{Method, StatusCode};
use pipeline::search::{describe_error, error_reason};
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer (connection refused, timeout, a failed TLS verification).
    #[error("{what}: {}", pipeline::search::unreachable_text(.source))]
    Unreachable {
        /// The request, e.g. `GET /_cat/plugins`.
        what: String,
        /// The client's error.
        #[source]
        source: opensearch::Error,
    },
    /// An error status; `reason` is OpenSearch's explanation.
    #[error("OpenSearch refused {what} ({status}): {reason}{}", pipeline::search::refusal_hint(*.status))]
    Refused {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// OpenSearch's error type and reason (the root cause), or the body.
        reason: String,
    },
}

/// An answer: its status and its JSON body (`null` when empty or not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client for JSON calls.
#[derive(Debug, Clone)]
pub struct Api {
    client: OpenSearch,
    timeout: Duration,
}

impl Api {
    /// Calls through `client`, each call bounded by `timeout`.
    pub fn new(client: OpenSearch, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// Sends one request (the path may carry a query string) and returns whatever status came.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ApiError> {
        let what = || format!("{} {path}", method_name(method));
        let response = self
            .client
            .send(
                method,
                path,
                HeaderMap::new(),
                Option::<&()>::None,
                body.map(|b| JsonBody::new(b.clone())),
                Some(self.timeout),
            )
            .await
            .map_err(|source| ApiError::Unreachable {
                what: what(),
                source,
            })?;
        let status = response.status_code().as_u16();
        let text = response
            .text()
            .await
            .map_err(|source| ApiError::Unreachable {
                what: what(),
                source,
            })?;
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        Ok(Reply { status, body })
    }

    /// Sends one request; an error status is [`ApiError::Refused`] with OpenSearch's reason.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let reply = self.call(method, path, body).await?;
        if reply.is_success() {
            Ok(reply.body)
        } else {
            Err(refused(method, path, &reply))
        }
    }

    /// Like [`Api::ok`], but a 404 is `None` (the object is not there).
    pub async fn found(&self, method: Method, path: &str) -> Result<Option<Value>, ApiError> {
        let reply = self.call(method, path, None).await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.is_success() => Ok(Some(reply.body)),
            _ => Err(refused(method, path, &reply)),
        }
    }
}

impl Api {
    /// How many documents of `index` (an index, alias or pattern) match `query` (a body with a
    /// `query`, or `{}` for all); `None` when the index does not exist. A search: a dry run may
    /// send it.
    pub async fn count(&self, index: &str, query: &Value) -> Result<Option<u64>, ApiError> {
        let path = format!("/{index}/_count");
        let reply = self.call(Method::Post, &path, Some(query)).await?;
        match reply.status {
            404 => Ok(None),
            _ if reply.is_success() => Ok(Some(reply.body["count"].as_u64().unwrap_or(0))),
            _ => Err(refused(Method::Post, &path, &reply)),
        }
    }
}

/// The error for an error reply.
pub fn refused(method: Method, path: &str, reply: &Reply) -> ApiError {
    let reason = match &reply.body {
        Value::String(text) => error_reason(text),
        body if body.get("error").is_some() => describe_error(&body["error"]),
        body => body.to_string(),
    };
    ApiError::Refused {
        what: format!("{} {path}", method_name(method)),
        status: reply.status,
        reason,
    }
}

/// Whether a 404 reply says an index is missing (a plugin's config index before its first
/// object), rather than the API itself.
pub fn index_missing(reply: &Reply) -> bool {
    reply.status == StatusCode::NOT_FOUND.as_u16()
        && reply.body["error"]["type"].as_str() == Some("index_not_found_exception")
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}
