//! Publishing anomalous results on the `anomalies` topic: the same document as in the results
//! index ([`crate::store::ResultDoc`], the wire format), keyed by the detector's name so that
//! one detector's anomalies share a partition and stay in order. A send that fails is logged and
//! not retried; the result is still written to the results index.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::store::ResultDoc;

/// Publishes an anomalous result to `topic` (the `anomalies` topic).
pub(super) async fn publish(producer: &FutureProducer, topic: &str, result: &ResultDoc) {
    let payload = serde_json::to_vec(result).unwrap_or_default();
    let record = FutureRecord::to(topic)
        .key(&result.detector_name)
        .payload(&payload);
    if let Err((err, _)) = producer.send(record, Duration::from_secs(30)).await {
        tracing::warn!(%err, "Publishing an anomaly failed.");
    }
}
