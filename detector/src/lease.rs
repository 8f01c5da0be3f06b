//! One active detector at a time: a lease, a document in the checkpoints index written with
//! optimistic concurrency (`if_seq_no` / `if_primary_term`), held by one instance and renewed
//! before it expires. Other replicas wait on standby and take over when the holder releases it
//! (at shutdown) or stops renewing it (a crash): two replicas never score the same interval or
//! alert twice.

use std::time::Duration;

use opensearch::{CreateParts, DeleteParts, GetParts, IndexParts, OpenSearch};
use pipeline::search::{SearchError, describe_error};
use serde_json::{Value, json};

/// The lease document's id.
pub const LEASE_ID: &str = "_lease";

/// A held lease.
#[derive(Debug, Clone)]
pub struct Lease {
    index: String,
    holder: String,
    ttl: Duration,
    seq_no: i64,
    primary_term: i64,
}

/// What a try to acquire found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Another instance holds it until the given time (epoch ms).
    HeldBy(String, i64),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn refused(what: &str, status: opensearch::http::StatusCode, body: &Value) -> SearchError {
    SearchError::Refused {
        what: what.to_owned(),
        status,
        reason: describe_error(&body["error"]),
    }
}

impl Lease {
    /// Tries once to take the lease for `holder`: free, expired or already ours.
    pub async fn try_acquire(
        client: &OpenSearch,
        index: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Result<Self, Attempt>, SearchError> {
        let body = json!({"holder": holder, "expires_at": now_ms() + ms(ttl)});
        let current = client
            .get(GetParts::IndexId(index, LEASE_ID))
            .send()
            .await
            .map_err(SearchError::Unreachable)?;
        let status = current.status_code();
        let found: Value = current.json().await.map_err(SearchError::Unreachable)?;
        let response = if status == opensearch::http::StatusCode::NOT_FOUND {
            client
                .create(CreateParts::IndexId(index, LEASE_ID))
                .body(body)
                .send()
                .await
        } else if status.is_success() {
            let owner = found["_source"]["holder"].as_str().unwrap_or_default();
            let expires = found["_source"]["expires_at"].as_i64().unwrap_or(0);
            if owner != holder && expires > now_ms() {
                return Ok(Err(Attempt::HeldBy(owner.to_owned(), expires)));
            }
            client
                .index(IndexParts::IndexId(index, LEASE_ID))
                .if_seq_no(found["_seq_no"].as_i64().unwrap_or(0))
                .if_primary_term(found["_primary_term"].as_i64().unwrap_or(0))
                .body(body)
                .send()
                .await
        } else {
            return Err(refused("reading the lease", status, &found));
        };
        let response = response.map_err(SearchError::Unreachable)?;
        let status = response.status_code();
        let written: Value = response.json().await.map_err(SearchError::Unreachable)?;
        if status == opensearch::http::StatusCode::CONFLICT {
            // Someone else wrote it between our read and our write.
            return Ok(Err(Attempt::HeldBy(
                "another instance".into(),
                now_ms() + ms(ttl),
            )));
        }
        if !status.is_success() {
            return Err(refused("taking the lease", status, &written));
        }
        Ok(Ok(Self {
            index: index.to_owned(),
            holder: holder.to_owned(),
            ttl,
            seq_no: written["_seq_no"].as_i64().unwrap_or(0),
            primary_term: written["_primary_term"].as_i64().unwrap_or(0),
        }))
    }

    /// How often to renew: a third of the time to live.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Extends the lease; `Ok(false)` when it was lost (another instance took it over).
    pub async fn renew(&mut self, client: &OpenSearch) -> Result<bool, SearchError> {
        let response = client
            .index(IndexParts::IndexId(&self.index, LEASE_ID))
            .if_seq_no(self.seq_no)
            .if_primary_term(self.primary_term)
            .body(json!({"holder": self.holder, "expires_at": now_ms() + ms(self.ttl)}))
            .send()
            .await
            .map_err(SearchError::Unreachable)?;
        let status = response.status_code();
        let written: Value = response.json().await.map_err(SearchError::Unreachable)?;
        if status == opensearch::http::StatusCode::CONFLICT {
            return Ok(false);
        }
        if !status.is_success() {
            return Err(refused("renewing the lease", status, &written));
        }
        self.seq_no = written["_seq_no"].as_i64().unwrap_or(self.seq_no);
        self.primary_term = written["_primary_term"]
            .as_i64()
            .unwrap_or(self.primary_term);
        Ok(true)
    }

    /// Gives the lease up so a standby takes over at once (best effort).
    pub async fn release(self, client: &OpenSearch) {
        let _ = client
            .delete(DeleteParts::IndexId(&self.index, LEASE_ID))
            .if_seq_no(self.seq_no)
            .if_primary_term(self.primary_term)
            .send()
            .await;
    }
}
