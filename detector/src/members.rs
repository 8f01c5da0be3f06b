//! The live detector replicas, for sharing shards ([`crate::shards`]): each replica renews a
//! member document (`_member-<instance>` in the checkpoints index) with an expiry, as a lease
//! without exclusivity, and counts the documents that have not expired. A replica that stops
//! renewing drops out of the count one lease period later, when its shards' leases expire too.
//! At shutdown it deletes its own, so the others grow their share at once.

use opensearch::{DeleteParts, IndexParts, OpenSearch, SearchParts};
use pipeline::search::{SearchError, json_answer};
use serde_json::json;

/// The member documents' `kind`.
const KIND: &str = "member";

fn id(instance: &str) -> String {
    format!("_member-{instance}")
}

/// Announces `instance` as live until `expires_at` (epoch ms), with the shard count it runs
/// with (so that a replica configured otherwise is visible).
pub async fn announce(
    client: &OpenSearch,
    index: &str,
    instance: &str,
    expires_at: i64,
    shards: usize,
) -> Result<(), SearchError> {
    let response = client
        .index(IndexParts::IndexId(index, &id(instance)))
        .body(json!({"kind": KIND, "holder": instance, "expires_at": expires_at, "shards": shards}))
        .send()
        .await;
    json_answer(response, "announcing this replica")
        .await
        .map(drop)
}

/// The live members at `now` (epoch ms): each one's name and shard count, by name.
pub async fn live(
    client: &OpenSearch,
    index: &str,
    now: i64,
) -> Result<Vec<(String, usize)>, SearchError> {
    // The members just announced are searchable only after a refresh (1 s): a newcomer counts a
    // round later, which only delays the hand-over by a round.
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(json!({
            "size": 1000,
            "_source": ["holder", "shards"],
            "query": {"bool": {"filter": [
                {"term": {"kind": KIND}},
                {"range": {"expires_at": {"gt": now}}}
            ]}}
        }))
        .send()
        .await;
    let body = json_answer(response, "counting the live replicas").await?;
    let mut members: Vec<(String, usize)> = body["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|hit| {
                    let source = &hit["_source"];
                    let shards = usize::try_from(source["shards"].as_u64()?).ok()?;
                    Some((source["holder"].as_str()?.to_owned(), shards))
                })
                .collect()
        })
        .unwrap_or_default();
    members.sort();
    Ok(members)
}

/// Withdraws `instance` (at shutdown; best effort: otherwise it expires).
pub async fn withdraw(client: &OpenSearch, index: &str, instance: &str) {
    let _ = client
        .delete(DeleteParts::IndexId(index, &id(instance)))
        .send()
        .await;
}
