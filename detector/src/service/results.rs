//! Writing results to the results index. Results OpenSearch did not take (it was unreachable or
//! refused the batch) are kept and sent again with the next batch, in order; a result's id is
//! `detector-start`, so writing one twice overwrites it. `/readyz` follows the last attempt.

use opensearch::OpenSearch;
use pipeline::telemetry::Health;

use crate::store::{self, ResultDoc};

use super::readiness::OPENSEARCH_CHECK;

/// Results scored but not yet written.
#[derive(Debug, Default)]
pub(super) struct Unwritten {
    results: Vec<ResultDoc>,
}

impl Unwritten {
    /// Whether every result scored so far is written.
    pub(super) fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Writes the results still waiting, then `batch`, to `index`; on failure keeps them all for
    /// the next call and marks OpenSearch not ready.
    pub(super) async fn write(
        &mut self,
        batch: Vec<ResultDoc>,
        client: &OpenSearch,
        index: &str,
        health: &Health,
    ) {
        self.results.extend(batch);
        match store::write_results(client, index, &self.results).await {
            Ok(()) => {
                self.results.clear();
                health.ready(OPENSEARCH_CHECK);
            }
            Err(err) => {
                health.not_ready(OPENSEARCH_CHECK, &err.to_string());
                tracing::warn!(%err, pending = self.results.len(), "Writing results failed; retrying with the next ones.");
            }
        }
    }
}
