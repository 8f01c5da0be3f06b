//! The bulk response read back, item by item, into what to do with each document (the rules
//! are in the parent module's docs). No IO here.

use pipeline::search::{describe_error, error_reason};
use pipeline::wire::DeadLetterReason;
use serde::Deserialize;
use serde_json::Value;

use super::Unusable;

/// What to do with one document after a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Indexed: done.
    Indexed,
    /// Try again later; the reason is OpenSearch's.
    Retry(String),
    /// OpenSearch refuses it for good: `rejected` with OpenSearch's reason, or `index_blocked`.
    Rejected(Unusable),
}

/// What to do after a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// One outcome per document sent, in the order sent.
    Items(Vec<Outcome>),
    /// Nothing was processed and trying again later may work (unreachable, 429, 5xx).
    RetryAll(String),
    /// The request as a whole was refused (400, 413): send its documents in smaller requests.
    Split(String),
}

#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Judges a bulk response (HTTP `status` and `body`) to a request of `sent` documents.
pub fn classify(status: u16, body: &[u8], sent: usize) -> Verdict {
    if status == 429 || status >= 500 {
        return Verdict::RetryAll(format!(
            "OpenSearch answered {status}: {}",
            error_reason(&String::from_utf8_lossy(body))
        ));
    }
    let parsed = serde_json::from_slice::<BulkResponse>(body);
    match parsed {
        Ok(response) if (200..300).contains(&status) => {
            if !response.errors && response.items.is_empty() {
                // A filtered response with nothing to report about any item.
                return Verdict::Items(vec![Outcome::Indexed; sent]);
            }
            if response.items.len() != sent {
                return Verdict::RetryAll(format!(
                    "the bulk response has {} items for {sent} documents",
                    response.items.len()
                ));
            }
            Verdict::Items(
                response
                    .items
                    .iter()
                    .map(|item| match item.values().next() {
                        Some(item) => classify_item(item.status, item.error.as_ref()),
                        None => Outcome::Retry("an empty bulk response item".to_owned()),
                    })
                    .collect(),
            )
        }
        _ if status == 400 || status == 413 => Verdict::Split(format!(
            "OpenSearch refused the request ({status}): {}",
            error_reason(&String::from_utf8_lossy(body))
        )),
        // Auth, a wrong path behind a proxy, a garbled body: nothing was indexed, and the
        // documents are not at fault. Retry (the back-pressure metric and `/readyz` show it).
        _ => Verdict::RetryAll(format!(
            "OpenSearch answered {status}: {}",
            error_reason(&String::from_utf8_lossy(body))
        )),
    }
}

/// Judges one bulk response item.
pub fn classify_item(status: u16, error: Option<&Value>) -> Outcome {
    if (200..300).contains(&status) && error.is_none() {
        return Outcome::Indexed;
    }
    let reason = error.map_or_else(|| format!("status {status}"), describe_error);
    let kind = error
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if is_index_blocked(kind, &reason) {
        return Outcome::Rejected(Unusable::new(DeadLetterReason::IndexBlocked, reason));
    }
    let transient_kind = matches!(
        kind,
        "cluster_block_exception"
            | "es_rejected_execution_exception"
            | "rejected_execution_exception"
            | "circuit_breaking_exception"
            | "unavailable_shards_exception"
            | "process_cluster_event_timeout_exception"
            | "version_conflict_engine_exception"
            | "timeout_exception"
            | "node_not_connected_exception"
            | "no_shard_available_action_exception"
    );
    if status == 429 || status >= 500 || status == 409 || status == 408 || transient_kind {
        Outcome::Retry(reason)
    } else {
        Outcome::Rejected(Unusable::new(DeadLetterReason::Rejected, reason))
    }
}

/// Whether an item failed because an operator closed or froze its index: closed
/// (`index_closed_exception`, or the `index closed` block), `index.blocks.write` (`index write
/// (api)`) or `index.blocks.read_only` (`index read-only (api)`). Not the flood-stage block
/// (`read-only / allow delete`), which OpenSearch lifts by itself once disk is freed, nor
/// cluster-wide blocks (no cluster manager, state not recovered): those are retried.
fn is_index_blocked(kind: &str, reason: &str) -> bool {
    match kind {
        "index_closed_exception" => true,
        "cluster_block_exception" => {
            !reason.contains("allow delete")
                && ["index closed", "index write (api)", "index read-only (api)"]
                    .iter()
                    .any(|block| reason.contains(block))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_judged_one_by_one_even_in_a_200() {
        let body = json!({
            "errors": true,
            "items": [
                {"index": {"status": 201}},
                {"index": {"status": 200}},
                {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
                {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [B_action] of type [integer]", "caused_by": {"type": "number_format_exception", "reason": "For input string: \"x\""}}}},
                {"index": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}},
                {"index": {"status": 403, "error": {"type": "cluster_block_exception", "reason": "index [x] blocked by: [FORBIDDEN/8/index write (api)];"}}},
                {"index": {"status": 400, "error": {"type": "illegal_argument_exception", "reason": "id [...] is too long"}}},
            ]
        });
        let verdict = classify(200, body.to_string().as_bytes(), 7);
        let Verdict::Items(outcomes) = verdict else {
            panic!("expected items, got {verdict:?}")
        };
        assert_eq!(outcomes[0], Outcome::Indexed);
        assert_eq!(outcomes[1], Outcome::Indexed);
        assert!(matches!(&outcomes[2], Outcome::Retry(r) if r.contains("queue full")));
        assert_eq!(
            outcomes[3],
            Outcome::Rejected(Unusable::new(
                DeadLetterReason::Rejected,
                "mapper_parsing_exception: failed to parse field [B_action] of type [integer] (caused by number_format_exception: For input string: \"x\")"
            ))
        );
        assert!(matches!(&outcomes[4], Outcome::Retry(_)));
        assert_eq!(
            outcomes[5],
            Outcome::Rejected(Unusable::new(
                DeadLetterReason::IndexBlocked,
                "cluster_block_exception: index [x] blocked by: [FORBIDDEN/8/index write (api)];"
            ))
        );
        assert!(
            matches!(&outcomes[6], Outcome::Rejected(u) if u.reason == DeadLetterReason::Rejected && u.detail.contains("too long"))
        );
    }

    /// Blocks an operator set stay until lifted: dead letters. Blocks OpenSearch lifts by
    /// itself, and cluster-wide ones, are waited out.
    #[test]
    fn blocked_indices_are_told_from_passing_blocks() {
        let block = |kind: &str, reason: &str, status: u16| {
            classify_item(status, Some(&json!({"type": kind, "reason": reason})))
        };
        let blocked = |outcome: &Outcome| matches!(outcome, Outcome::Rejected(u) if u.reason == DeadLetterReason::IndexBlocked);
        let cases = [
            (block("index_closed_exception", "closed", 400), true),
            (
                block(
                    "cluster_block_exception",
                    "index [e-2026.01.01] blocked by: [FORBIDDEN/4/index closed];",
                    403,
                ),
                true,
            ),
            (
                block(
                    "cluster_block_exception",
                    "index [e-2026.01.01] blocked by: [FORBIDDEN/8/index write (api)];",
                    403,
                ),
                true,
            ),
            (
                block(
                    "cluster_block_exception",
                    "index [e-2026.01.01] blocked by: [FORBIDDEN/5/index read-only (api)];",
                    403,
                ),
                true,
            ),
            (
                block(
                    "cluster_block_exception",
                    "index [e-2026.01.01] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];",
                    429,
                ),
                false,
            ),
            (
                block(
                    "cluster_block_exception",
                    "index [e] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];",
                    403,
                ),
                false,
            ),
            (
                block(
                    "cluster_block_exception",
                    "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];",
                    503,
                ),
                false,
            ),
        ];
        for (i, (outcome, want)) in cases.iter().enumerate() {
            assert_eq!(blocked(outcome), *want, "case {i}: {outcome:?}");
            assert!(
                *want || matches!(outcome, Outcome::Retry(_)),
                "case {i}: {outcome:?}"
            );
        }
    }

    #[test]
    fn whole_responses_are_judged_by_status() {
        assert_eq!(
            classify(200, br#"{"errors":false}"#, 3),
            Verdict::Items(vec![Outcome::Indexed; 3])
        );
        assert!(matches!(
            classify(429, br#"{"error":{"type":"circuit_breaking_exception","reason":"too big"}}"#, 2),
            Verdict::RetryAll(r) if r.contains("429") && r.contains("circuit_breaking_exception")
        ));
        assert!(matches!(
            classify(502, b"Bad Gateway", 2),
            Verdict::RetryAll(r) if r.contains("Bad Gateway")
        ));
        assert!(matches!(classify(413, b"", 2), Verdict::Split(r) if r.contains("413")));
        assert!(matches!(
            classify(400, br#"{"error":{"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline"}}"#, 2),
            Verdict::Split(r) if r.contains("terminated by a newline")
        ));
        assert!(matches!(
            classify(401, br#"{"error":"unauthorized"}"#, 2),
            Verdict::RetryAll(r) if r.contains("401")
        ));
        assert!(matches!(
            classify(200, br#"{"errors":true,"items":[{"index":{"status":201}}]}"#, 2),
            Verdict::RetryAll(r) if r.contains("1 items for 2")
        ));
        assert!(matches!(classify(200, b"<html>", 2), Verdict::RetryAll(_)));
    }
}
