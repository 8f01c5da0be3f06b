//! The checkpoint in OpenSearch: one document per shard (`_checkpoint` in the checkpoints index
//! with one shard, [`crate::shards::Part::checkpoint_id`]) holding everything a restart of the
//! shard needs (stream positions, monitors, every detector's model and window), so it is
//! written in one request and a restore never mixes two checkpoints.
//!
//! It is also the fence against a stale holder. Every save is conditional on the document's
//! version (`if_seq_no` / `if_primary_term`) that this holder last wrote or read; a new holder
//! first [`fence`]s it (bumps its version, stamping its name and lease generation), so a holder
//! that lost the lease (frozen past its expiry, say) can never save again: its next save is
//! refused with a conflict ([`Saved::Fenced`]), and it stops.

use opensearch::{CreateParts, GetParts, IndexParts, OpenSearch};
use pipeline::search::{SearchError, describe_error};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The checkpoint document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointDoc {
    /// The replica that wrote it (or fenced it).
    pub holder: String,
    /// That replica's lease generation.
    pub generation: i64,
    /// When the state was saved, epoch ms (0 when there is none yet).
    pub saved_at: i64,
    /// The saved state (JSON text, not indexed); `None` until the first save.
    #[serde(default)]
    pub state: Option<String>,
}

/// The document's version: what the next save is conditional on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// `_seq_no`.
    pub seq_no: i64,
    /// `_primary_term`.
    pub primary_term: i64,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Written; the new version.
    Written(Version),
    /// Refused: another holder fenced the checkpoint since this one last wrote it.
    Fenced,
}

fn version_of(answer: &Value) -> Version {
    Version {
        seq_no: answer["_seq_no"].as_i64().unwrap_or(0),
        primary_term: answer["_primary_term"].as_i64().unwrap_or(0),
    }
}

async fn answer(
    response: Result<opensearch::http::response::Response, opensearch::Error>,
    what: impl FnOnce() -> String,
) -> Result<Option<Value>, SearchError> {
    let response = response.map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    let body: Value = response.json().await.map_err(SearchError::Unreachable)?;
    if status == opensearch::http::StatusCode::CONFLICT {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(SearchError::Refused {
            what: what(),
            status,
            reason: describe_error(&body["error"]),
        });
    }
    Ok(Some(body))
}

/// The checkpoint and its version, if there is one.
pub async fn load(
    client: &OpenSearch,
    (index, id): (&str, &str),
) -> Result<Option<(CheckpointDoc, Version)>, SearchError> {
    let response = client
        .get(GetParts::IndexId(index, id))
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    if status == opensearch::http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: Value = response.json().await.map_err(SearchError::Unreachable)?;
    if !status.is_success() {
        return Err(SearchError::Refused {
            what: format!("loading the checkpoint from {index}"),
            status,
            reason: describe_error(&body["error"]),
        });
    }
    let doc = serde_json::from_value(body["_source"].clone()).unwrap_or(CheckpointDoc {
        holder: String::new(),
        generation: 0,
        saved_at: 0,
        state: None,
    });
    Ok(Some((doc, version_of(&body))))
}

/// Takes the checkpoint over for `holder` at lease `generation`: reads it and rewrites it,
/// conditionally, stamped with the new holder (created empty if there is none). From then on a
/// save by any earlier holder is refused. Returns the state as read and the version to save on.
pub async fn fence(
    client: &OpenSearch,
    (index, id): (&str, &str),
    holder: &str,
    generation: i64,
) -> Result<(CheckpointDoc, Version), SearchError> {
    loop {
        let current = load(client, (index, id)).await?;
        let (request, doc) = match current {
            None => {
                let doc = CheckpointDoc {
                    holder: holder.to_owned(),
                    generation,
                    saved_at: 0,
                    state: None,
                };
                let request = client
                    .create(CreateParts::IndexId(index, id))
                    .body(doc.clone())
                    .send()
                    .await;
                (request, doc)
            }
            Some((mut doc, version)) => {
                doc.holder = holder.to_owned();
                doc.generation = generation;
                let request = client
                    .index(IndexParts::IndexId(index, id))
                    .if_seq_no(version.seq_no)
                    .if_primary_term(version.primary_term)
                    .body(doc.clone())
                    .send()
                    .await;
                (request, doc)
            }
        };
        // A conflict: the previous holder saved in between; read its state again.
        if let Some(body) = answer(request, || format!("fencing the checkpoint in {index}")).await?
        {
            return Ok((doc, version_of(&body)));
        }
    }
}

/// Saves `doc` if the checkpoint is still at `version` (this holder's last write).
pub async fn save(
    client: &OpenSearch,
    (index, id): (&str, &str),
    doc: &CheckpointDoc,
    version: Version,
) -> Result<Saved, SearchError> {
    let request = client
        .index(IndexParts::IndexId(index, id))
        .if_seq_no(version.seq_no)
        .if_primary_term(version.primary_term)
        .body(doc)
        .send()
        .await;
    Ok(
        match answer(request, || format!("saving the checkpoint in {index}")).await? {
            Some(body) => Saved::Written(version_of(&body)),
            None => Saved::Fenced,
        },
    )
}
