//! The record of deliveries: each notification a channel accepted becomes an [`AlertDoc`] in the
//! alerts index (`alerts` in the spec, `logwarden-alerts` by default), so that
//! `logwarden-detector evaluate` can measure the time from an anomaly's start to the alert
//! people received. Nothing else persists when a delivery happened: the outbox keeps only marks
//! of which keys were delivered, and the live page's list lives in memory.
//!
//! Best-effort and non-blocking, because it is a measurement, not part of the guarantee: the
//! loop hands a record to a bounded queue and goes on ([`DeliveryLog::record`]); a full queue
//! drops the record with a warning. One task creates the index template (unless one exists) and
//! then writes what is queued in bulk `create` requests, by [`AlertDoc::id`] (one per
//! notification and channel), so a notification delivered again after a restart keeps its
//! first delivery's time. A write that fails is logged and not retried. At the end of a session
//! the task gets [`CLOSE_DEADLINE`] to write what it still holds.

use std::time::Duration;

use opensearch::{BulkParts, OpenSearch};
use pipeline::search::{alerts_template, describe_error, ensure_template};
use pipeline::wire::AlertDoc;
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, Receiver, Sender, error::TrySendError};
use tokio::task::JoinHandle;

/// Records queued at most; beyond that a record is dropped (OpenSearch is down or slow).
pub const QUEUE: usize = 1_000;

/// Records written in one bulk request at most.
const BATCH: usize = 500;

/// How long a closing log waits for its task to write what is queued.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// The queue of delivery records and the task that writes them.
#[derive(Debug)]
pub struct DeliveryLog {
    queue: Sender<AlertDoc>,
    task: JoinHandle<()>,
}

impl DeliveryLog {
    /// Starts the task that writes records to `index`.
    pub fn start(client: OpenSearch, index: String) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let task = tokio::spawn(writer(client, index, inbox));
        Self { queue, task }
    }

    /// Queues `record` for writing; never waits.
    pub fn record(&self, record: AlertDoc) {
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record)) => {
                tracing::warn!(key = %record.key, channel = %record.channel, queued = QUEUE, "The record of deliveries is behind (OpenSearch slow or down): this delivery is not recorded.");
            }
            Err(TrySendError::Closed(record)) => {
                tracing::warn!(key = %record.key, channel = %record.channel, "The record of deliveries has stopped: this delivery is not recorded.");
            }
        }
    }

    /// Stops taking records and waits up to [`CLOSE_DEADLINE`] for the queued ones to be written.
    pub async fn close(self) {
        let Self { queue, mut task } = self;
        drop(queue);
        if tokio::time::timeout(CLOSE_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            tracing::warn!(
                "The record of deliveries did not finish writing in time: the last deliveries may be unrecorded."
            );
        }
    }
}

async fn writer(client: OpenSearch, index: String, mut inbox: Receiver<AlertDoc>) {
    if let Err(err) = ensure_template(&client, &index, alerts_template(&index)).await {
        tracing::warn!(%err, %index, "Creating the alerts index template failed; deliveries are recorded with dynamic mappings.");
    }
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match inbox.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        if let Err(reason) = write(&client, &index, &batch).await {
            tracing::warn!(%index, records = batch.len(), %reason, "Recording deliveries failed; they are not retried.");
        }
    }
}

/// Creates `records` in `index`; a record that exists already (the same notification delivered
/// again) is not an error.
async fn write(client: &OpenSearch, index: &str, records: &[AlertDoc]) -> Result<(), String> {
    let mut body: Vec<opensearch::http::request::JsonBody<Value>> =
        Vec::with_capacity(records.len() * 2);
    for record in records {
        body.push(json!({"create": {"_index": index, "_id": record.id()}}).into());
        body.push(serde_json::to_value(record).unwrap_or_default().into());
    }
    let response = client
        .bulk(BulkParts::None)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status_code();
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            describe_error(&answer["error"])
        ));
    }
    match first_refusal(&answer) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// The first item error of a bulk answer other than "already exists" (409).
fn first_refusal(answer: &Value) -> Option<String> {
    answer["items"].as_array()?.iter().find_map(|item| {
        let result = &item["create"];
        (result["status"].as_u64() != Some(409))
            .then(|| result.get("error").map(describe_error))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_that_exists_already_is_not_a_refusal() {
        let answer = json!({"errors": true, "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
        ]});
        assert_eq!(first_refusal(&answer), None);
        let refused = json!({"errors": true, "items": [
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}},
        ]});
        assert!(
            first_refusal(&refused).is_some_and(|r| r.contains("bad")),
            "{refused}"
        );
    }
}
