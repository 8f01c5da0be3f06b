//! Evicted entity models, kept in OpenSearch so that an entity that comes back goes on from its
//! own history ([`crate::entities`]): one document per detector and entity in the checkpoints
//! index (`_entity-<detector>-<hash of the entity>`, the entity and the detector spec's
//! fingerprint in it, so a model of another spec or a colliding entity is never restored).
//! Written in bulk after the intervals that evicted them, read with one multi-get for the
//! entities of the intervals about to close, and forgotten [`REMEMBER`] after they were stored.
//!
//! Best effort, like the rest of an entity's life: a failed write or read is logged and the
//! entity starts from the population's prior, as it would without this store.

use std::time::Duration;

use opensearch::{BulkParts, DeleteByQueryParts, MgetParts, OpenSearch};
use pipeline::search::{SearchError, bulk_refusal, json_answer};
use serde_json::{Value, json};

use crate::entities::Remembered;

/// How long a stored model is kept after it was evicted.
pub const REMEMBER: Duration = Duration::from_secs(7 * 24 * 3_600);

/// The documents' `kind`.
const KIND: &str = "entity";

/// 64-bit FNV-1a: a stable, short id for an entity value of any length.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The document id of `entity`'s model for `detector`.
pub fn doc_id(detector: &str, entity: &str) -> String {
    format!("_entity-{detector}-{:016x}", fnv1a(entity))
}

/// A short form of a detector spec's fingerprint.
pub fn spec_hash(fingerprint: &str) -> String {
    format!("{:016x}", fnv1a(fingerprint))
}

/// Stores `models` of `detector` (its spec hashed as [`spec_hash`]) at `now` (epoch ms).
pub async fn store(
    client: &OpenSearch,
    index: &str,
    (detector, spec): (&str, &str),
    models: &[Remembered],
    now: i64,
) -> Result<(), SearchError> {
    if models.is_empty() {
        return Ok(());
    }
    let mut body: Vec<opensearch::http::request::JsonBody<Value>> =
        Vec::with_capacity(models.len() * 2);
    for model in models {
        let state = serde_json::to_string(model).unwrap_or_default();
        body.push(
            json!({"index": {"_index": index, "_id": doc_id(detector, &model.entity)}}).into(),
        );
        body.push(
            json!({"kind": KIND, "detector": detector, "spec": spec, "saved_at": now, "state": state})
                .into(),
        );
    }
    let response = client.bulk(BulkParts::None).body(body).send().await;
    let answer = json_answer(response, "storing evicted entity models").await?;
    if answer["errors"] == true {
        let reason = bulk_refusal(&answer, "index").unwrap_or_default();
        return Err(SearchError::Refused {
            what: "storing evicted entity models".to_owned(),
            status: opensearch::http::StatusCode::OK,
            reason,
        });
    }
    Ok(())
}

/// The stored models of `entities` for `detector` (saved for the same spec), those found.
pub async fn load(
    client: &OpenSearch,
    index: &str,
    (detector, spec): (&str, &str),
    entities: &[String],
) -> Result<Vec<Remembered>, SearchError> {
    if entities.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = entities.iter().map(|e| doc_id(detector, e)).collect();
    let response = client
        .mget(MgetParts::Index(index))
        .body(json!({"ids": ids}))
        .send()
        .await;
    let answer = json_answer(response, "reading stored entity models").await?;
    Ok(found(&answer, detector, spec))
}

/// The models in a multi-get answer that are of `detector` and `spec`, and whose entity is the
/// one the id was made from.
fn found(answer: &Value, detector: &str, spec: &str) -> Vec<Remembered> {
    answer["docs"]
        .as_array()
        .map(|docs| {
            docs.iter()
                .filter(|doc| doc["found"] == true)
                .filter_map(|doc| {
                    let source = &doc["_source"];
                    if source["detector"] != detector || source["spec"] != spec {
                        return None;
                    }
                    let model: Remembered = serde_json::from_str(source["state"].as_str()?).ok()?;
                    (doc["_id"].as_str()? == doc_id(detector, &model.entity)).then_some(model)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes the models stored before `before` (epoch ms); how many.
pub async fn forget(client: &OpenSearch, index: &str, before: i64) -> Result<u64, SearchError> {
    let response = client
        .delete_by_query(DeleteByQueryParts::Index(&[index]))
        .conflicts(opensearch::params::Conflicts::Proceed)
        .body(json!({"query": {"bool": {"filter": [
            {"term": {"kind": KIND}},
            {"range": {"saved_at": {"lt": before}}}
        ]}}}))
        .send()
        .await;
    let answer = json_answer(response, "forgetting old entity models").await?;
    Ok(answer["deleted"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::spec::ModelSpec;

    #[test]
    fn only_a_model_of_the_same_detector_spec_and_entity_is_restored() {
        let model = |entity: &str| Remembered {
            entity: entity.to_owned(),
            model: Model::for_entity(&ModelSpec::default(), 5.0, 1.0),
            last_seen: 60_000,
        };
        let doc = |id: String, detector: &str, spec: &str, entity: &str| {
            json!({"_id": id, "found": true, "_source": {
                "kind": "entity", "detector": detector, "spec": spec,
                "state": serde_json::to_string(&model(entity)).expect("serializes")
            }})
        };
        let answer = json!({"docs": [
            doc(doc_id("d", "10.0.0.1"), "d", "s1", "10.0.0.1"),
            // Saved for another spec of the detector.
            doc(doc_id("d", "10.0.0.2"), "d", "s0", "10.0.0.2"),
            // Another detector's.
            doc(doc_id("e", "10.0.0.3"), "e", "s1", "10.0.0.3"),
            // An id that is not this entity's (a hash collision).
            doc(doc_id("d", "10.0.0.4"), "d", "s1", "10.0.0.5"),
            {"_id": doc_id("d", "10.0.0.6"), "found": false},
        ]});
        let restored: Vec<String> = found(&answer, "d", "s1")
            .into_iter()
            .map(|r| r.entity)
            .collect();
        assert_eq!(restored, ["10.0.0.1"]);
        assert_eq!(doc_id("d", "x"), doc_id("d", "x"));
        assert_ne!(doc_id("d", "x"), doc_id("d", "y"));
        assert_eq!(doc_id("d", "").len(), "_entity-d-".len() + 16);
    }
}
