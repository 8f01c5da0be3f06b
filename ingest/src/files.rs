//! Log files: CloudTrail's gzip JSON (`{"Records":[...]}`), NDJSON and gzip NDJSON (WAF logs
//! delivered to S3, for instance), from a directory (`ingest.files`, here) or from an
//! S3-compatible bucket (`ingest.bucket`, [`bucket`]). Both sources work the same way: every
//! poll they list what is there, and each file (key) not yet in the [`checkpoint`] is read,
//! decoded ([`decode`]), written to `raw` by [`FileIngest`] (retried until Kafka has it), and
//! only then recorded in the checkpoint: a restart skips what was done and redoes a file whose
//! records were written but not yet checkpointed (at least once, never skipped). A file that
//! cannot be decoded is checkpointed too, logged with its name and counted
//! (`logwarden_ingest_refused_total{receiver}`), so it does not block the others. Files are taken
//! in name order; names starting with `.` are ignored (partial uploads).

pub mod bucket;
pub mod bucket_config;
pub mod checkpoint;
pub mod decode;

use std::path::PathBuf;
use std::time::Duration;

use pipeline::wire::Source;
use tokio_util::sync::CancellationToken;

use crate::http::refusal::{Reason, Refusal};
use crate::metrics::Metrics;
use crate::writer::Writer;
use checkpoint::Checkpoint;

/// Most records written in one batch.
const BATCH: usize = 1_000;

/// What both file sources share: a file's bytes decoded and its records written to `raw`.
#[derive(Debug, Clone)]
pub struct FileIngest {
    /// The receiver's name in metrics and logs (`files`, `bucket`).
    pub receiver: &'static str,
    /// The source of NDJSON files' records (CloudTrail documents are always `cloudtrail`).
    pub source: Source,
    /// Largest file, decompressed.
    pub max_file: usize,
    /// Largest record.
    pub max_event: usize,
    /// The producer.
    pub writer: Writer,
    /// The metrics.
    pub metrics: Metrics,
    /// Longest wait between retries.
    pub retry_after: Duration,
}

impl FileIngest {
    /// Writes the records of the file `name` (its bytes, or why they could not be read); false
    /// when stopped before Kafka had them all. A file that cannot be read or decoded is counted
    /// as refused, logged with its name, and done (true).
    pub async fn ingest(
        &self,
        name: &str,
        bytes: Result<Vec<u8>, String>,
        shutdown: &CancellationToken,
    ) -> bool {
        let decoded = bytes
            .map_err(|err| Refusal::new(Reason::InvalidData, format!("cannot read: {err}")))
            .and_then(|bytes| decode::records(&bytes, self.source, self.max_file, self.max_event));
        let (source, records) = match decoded {
            Ok(decoded) => decoded,
            Err(refusal) => {
                self.metrics
                    .refused
                    .with_label_values(&[self.receiver, refusal.reason.as_str()])
                    .inc();
                tracing::error!(receiver = self.receiver, file = name, reason = refusal.reason.as_str(), detail = %refusal.detail, "File not ingested and marked done (it is not read again): fix it and add it under a new name.");
                return true;
            }
        };
        for batch in records.chunks(BATCH) {
            if !self
                .writer
                .write_until_done(source, batch, self.receiver, self.retry_after, shutdown)
                .await
            {
                return false;
            }
        }
        tracing::info!(receiver = self.receiver, file = name, records = records.len(), source = %source, "File ingested.");
        true
    }
}

/// The directory receiver.
#[derive(Debug, Clone)]
pub struct Files {
    /// The directory watched.
    pub directory: PathBuf,
    /// The checkpoint: names of the files done, loaded at start-up.
    pub checkpoint: Checkpoint,
    /// How often the directory is listed.
    pub poll: Duration,
    /// Decoding and writing.
    pub ingest: FileIngest,
}

impl Files {
    /// Reads the directory until `shutdown`.
    pub async fn serve(mut self, shutdown: CancellationToken) {
        loop {
            for name in self.pending() {
                if shutdown.is_cancelled() {
                    return;
                }
                let path = self.directory.join(&name);
                let bytes = std::fs::read(&path).map_err(|err| err.to_string());
                if !self.ingest.ingest(&name, bytes, &shutdown).await {
                    return;
                }
                if let Err(err) = self.checkpoint.record(&name) {
                    tracing::error!(%err, checkpoint = %self.checkpoint.path().display(), "Cannot write the files checkpoint; stopping the file receiver: make the checkpoint's directory writable and restart (files already sent are sent again).");
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    fn pending(&self) -> Vec<String> {
        let own = self.checkpoint.path().file_name().and_then(|n| n.to_str());
        let entries = match std::fs::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(err) => {
                tracing::warn!(%err, directory = %self.directory.display(), "Cannot list the files directory; trying again at the next poll: check that it exists and this user may read it.");
                return Vec::new();
            }
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                !n.starts_with('.') && Some(n.as_str()) != own && !self.checkpoint.contains(n)
            })
            .collect();
        names.sort();
        names
    }
}
