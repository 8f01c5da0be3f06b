//! Why the service stops with an error. Trouble the service waits out (OpenSearch unreachable
//! at start-up, a failed lease renewal or results write, a consumer error) is retried where it
//! happens; what reaches this type ends the run.

use pipeline::search::SearchError;
use rdkafka::error::KafkaError;

use crate::model::ModelError;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A Kafka client could not be created or assigned.
    #[error("Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// OpenSearch refused something for good.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// A model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The broker refused an anomaly or a dead letter for good after queueing it.
    #[error("the broker refused an anomaly or a dead letter for good (see the log above)")]
    OutputRefused,
    /// A channel cannot be used (its secret is missing).
    #[error("alert channels: {0}")]
    Channels(String),
    /// A shard's session panicked or was aborted (a bug: the log has its message).
    #[error("a shard's session ended abnormally: {0}")]
    Session(String),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
