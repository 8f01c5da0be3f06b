//! One active detector per shard at a time: a lease, a document in the checkpoints index written with
//! optimistic concurrency (`if_seq_no` / `if_primary_term`), held by one instance and renewed
//! before it expires. Other replicas wait on standby and take over when the holder releases it
//! (at shutdown) or stops renewing it (a crash, a freeze).
//!
//! Each acquisition raises the lease's `generation` (released leases keep theirs, so it never
//! goes back). The lease alone cannot stop a frozen holder from writing after it lost the lease:
//! what fences it is the checkpoint, written only conditionally on the version its holder last
//! saw, which the next holder bumps when it takes over ([`crate::service`]'s `fence`). The
//! holder also stops by itself: [`Lease::trusted_until`] is when it must consider the lease
//! gone if no renewal succeeded since, a margin before any standby can see it expired.

use std::time::{Duration, Instant};

use opensearch::{CreateParts, GetParts, IndexParts, OpenSearch};
use pipeline::search::{SearchError, describe_error};
use serde_json::{Value, json};

/// A held lease.
#[derive(Debug, Clone)]
pub struct Lease {
    index: String,
    /// The lease document's id ([`crate::shards::Part::lease_id`]).
    id: String,
    holder: String,
    ttl: Duration,
    generation: i64,
    seq_no: i64,
    primary_term: i64,
    /// When the last successful write was sent: the lease is ours until `ttl` after it, by the
    /// clock of whoever reads `expires_at` (which was computed after this instant).
    written_at: Instant,
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

/// The lease document `id` as read: the answer's status and body.
async fn read(
    client: &OpenSearch,
    index: &str,
    id: &str,
) -> Result<(opensearch::http::StatusCode, Value), SearchError> {
    let current = client
        .get(GetParts::IndexId(index, id))
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = current.status_code();
    let found: Value = current.json().await.map_err(SearchError::Unreachable)?;
    Ok((status, found))
}

/// The body of the lease document.
fn body(holder: &str, expires_at: i64, generation: i64) -> Value {
    json!({"holder": holder, "expires_at": expires_at, "generation": generation})
}

/// A lease document as read: who holds it ([`Observed::holder`]), and what
/// [`Lease::try_acquire`] writes over (conditionally on it being unchanged).
#[derive(Debug)]
pub struct Observed {
    status: opensearch::http::StatusCode,
    found: Value,
}

impl Observed {
    /// Who holds the lease at `now` (epoch ms): `None` when nobody does (no lease yet,
    /// released, or expired).
    pub fn holder(&self, now: i64) -> Result<Option<String>, SearchError> {
        let Self { status, found } = self;
        if *status == opensearch::http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(refused("reading the lease", *status, found));
        }
        let expires = found["_source"]["expires_at"].as_i64().unwrap_or(0);
        Ok((expires > now).then(|| {
            found["_source"]["holder"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }))
    }
}

impl Lease {
    /// Reads the lease `id`.
    pub async fn observe(
        client: &OpenSearch,
        (index, id): (&str, &str),
    ) -> Result<Observed, SearchError> {
        let (status, found) = read(client, index, id).await?;
        Ok(Observed { status, found })
    }

    /// Tries once to take the lease `id` for `holder`, as `observed` a moment ago: free,
    /// expired or already ours (a restart under the same name). Taking it raises the
    /// generation; the write is conditional on the document being unchanged since it was
    /// observed, so a lease taken or renewed in between is not overwritten.
    pub async fn try_acquire(
        client: &OpenSearch,
        (index, id): (&str, &str),
        holder: &str,
        ttl: Duration,
        observed: Observed,
    ) -> Result<Result<Self, Attempt>, SearchError> {
        let Observed { status, found } = observed;
        let written_at = Instant::now();
        let (response, generation) = if status == opensearch::http::StatusCode::NOT_FOUND {
            let response = client
                .create(CreateParts::IndexId(index, id))
                .body(body(holder, now_ms() + ms(ttl), 1))
                .send()
                .await;
            (response, 1)
        } else if status.is_success() {
            let owner = found["_source"]["holder"].as_str().unwrap_or_default();
            let expires = found["_source"]["expires_at"].as_i64().unwrap_or(0);
            if owner != holder && expires > now_ms() {
                return Ok(Err(Attempt::HeldBy(owner.to_owned(), expires)));
            }
            let generation = found["_source"]["generation"].as_i64().unwrap_or(0) + 1;
            let response = client
                .index(IndexParts::IndexId(index, id))
                .if_seq_no(found["_seq_no"].as_i64().unwrap_or(0))
                .if_primary_term(found["_primary_term"].as_i64().unwrap_or(0))
                .body(body(holder, now_ms() + ms(ttl), generation))
                .send()
                .await;
            (response, generation)
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
            id: id.to_owned(),
            holder: holder.to_owned(),
            ttl,
            generation,
            seq_no: written["_seq_no"].as_i64().unwrap_or(0),
            primary_term: written["_primary_term"].as_i64().unwrap_or(0),
            written_at,
        }))
    }

    /// This holder's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The generation this holder took: higher than every earlier holder's.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// How often to renew: a quarter of the time to live, so that two renewals can fail before
    /// [`Self::trusted_until`].
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// Until when this holder may act on the lease: a quarter of the time to live before it can
    /// expire (the margin covers clock skew between replicas and the time a write takes to land).
    pub fn trusted_until(&self) -> Instant {
        self.written_at + self.ttl - self.ttl / 4
    }

    /// Extends the lease; `Ok(false)` when it was lost (another instance took it over).
    ///
    /// A conflict is not always a loss: a renewal that timed out on our side (OpenSearch frozen)
    /// may still have been applied when OpenSearch resumed, moving the version past the one we
    /// know. The lease is read back then: still ours at our generation (nobody acquired it in
    /// between, since acquiring raises the generation), it is renewed at its current version.
    pub async fn renew(&mut self, client: &OpenSearch) -> Result<bool, SearchError> {
        if self.renew_once(client).await? {
            return Ok(true);
        }
        let (status, found) = read(client, &self.index, &self.id).await?;
        if !status.is_success() {
            return Ok(false);
        }
        let source = &found["_source"];
        if source["holder"].as_str() != Some(self.holder.as_str())
            || source["generation"].as_i64() != Some(self.generation)
        {
            return Ok(false);
        }
        tracing::info!(
            generation = self.generation,
            "A renewal that timed out was applied after all: renewing at the lease's current version."
        );
        self.seq_no = found["_seq_no"].as_i64().unwrap_or(self.seq_no);
        self.primary_term = found["_primary_term"].as_i64().unwrap_or(self.primary_term);
        self.renew_once(client).await
    }

    /// One conditional write of the lease at the version this holder knows; `Ok(false)` on a
    /// version conflict.
    async fn renew_once(&mut self, client: &OpenSearch) -> Result<bool, SearchError> {
        let sent_at = Instant::now();
        let response = client
            .index(IndexParts::IndexId(&self.index, &self.id))
            .if_seq_no(self.seq_no)
            .if_primary_term(self.primary_term)
            .body(body(&self.holder, now_ms() + ms(self.ttl), self.generation))
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
        self.written_at = sent_at;
        Ok(true)
    }

    /// Gives the lease up so a standby takes over at once (best effort): it expires now, and
    /// keeps its generation so the next holder's is higher still.
    pub async fn release(self, client: &OpenSearch) {
        let _ = client
            .index(IndexParts::IndexId(&self.index, &self.id))
            .if_seq_no(self.seq_no)
            .if_primary_term(self.primary_term)
            .body(body(&self.holder, 0, self.generation))
            .send()
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_stops_trusting_its_lease_a_quarter_before_it_can_expire() {
        let written_at = Instant::now();
        let lease = Lease {
            index: "checkpoints".into(),
            id: "_lease".into(),
            holder: "a".into(),
            ttl: Duration::from_secs(30),
            generation: 4,
            seq_no: 0,
            primary_term: 1,
            written_at,
        };
        assert_eq!(lease.renew_every(), Duration::from_millis(7_500));
        assert_eq!(
            lease.trusted_until() - written_at,
            Duration::from_millis(22_500),
            "two renewals may fail before then"
        );
        assert_eq!((lease.holder(), lease.generation()), ("a", 4));
        assert_eq!(
            body("a", 5, 4),
            json!({"holder": "a", "expires_at": 5, "generation": 4})
        );
    }
}
