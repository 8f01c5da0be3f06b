//! Log files from a directory (`ingest.files`): CloudTrail's gzip JSON (`{"Records":[...]}`),
//! NDJSON and gzip NDJSON (WAF logs delivered to S3 and synced down, for instance). Every
//! `poll_ms` the directory is listed; each file not yet in the checkpoint is read, decoded
//! ([`decode`]), written to `raw` (retried until Kafka has it), and only then its name is
//! appended to the checkpoint file and synced: a restart skips what was done and redoes a file
//! whose records were written but not yet checkpointed (at least once, never skipped). A file
//! that cannot be decoded is checkpointed too, logged and counted
//! (`logwarden_ingest_refused_total{receiver="files"}`), so it does not block the others.
//! Files are taken in name order; names starting with `.` are ignored (partial uploads).

pub mod decode;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pipeline::wire::Source;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::writer::Writer;

/// Most records written in one batch.
const BATCH: usize = 1_000;

/// The file receiver.
#[derive(Debug, Clone)]
pub struct Files {
    /// The directory watched.
    pub directory: PathBuf,
    /// The checkpoint: names of the files done, one per line.
    pub checkpoint: PathBuf,
    /// The source of NDJSON files' records.
    pub source: Source,
    /// How often the directory is listed.
    pub poll: Duration,
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

impl Files {
    /// Reads the directory until `shutdown`.
    pub async fn serve(self, shutdown: CancellationToken) {
        let mut done = read_checkpoint(&self.checkpoint);
        loop {
            for name in self.pending(&done) {
                if shutdown.is_cancelled() {
                    return;
                }
                if !self.ingest(&name, &shutdown).await {
                    return;
                }
                if let Err(err) = append_checkpoint(&self.checkpoint, &name) {
                    tracing::error!(%err, checkpoint = %self.checkpoint.display(), "Cannot write the files checkpoint; stopping the file receiver: make the checkpoint's directory writable and restart (files already sent are sent again).");
                    return;
                }
                done.insert(name);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    fn pending(&self, done: &BTreeSet<String>) -> Vec<String> {
        let checkpoint = self.checkpoint.file_name().and_then(|n| n.to_str());
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
            .filter(|n| !n.starts_with('.') && Some(n.as_str()) != checkpoint && !done.contains(n))
            .collect();
        names.sort();
        names
    }

    /// Writes one file's records; false when stopped before Kafka had them all.
    async fn ingest(&self, name: &str, shutdown: &CancellationToken) -> bool {
        let path = self.directory.join(name);
        let decoded = match std::fs::read(&path) {
            Ok(bytes) => decode::records(&bytes, self.source, self.max_file, self.max_event),
            Err(err) => Err(crate::http::refusal::Refusal::new(
                crate::http::refusal::Reason::InvalidData,
                format!("cannot read: {err}"),
            )),
        };
        let (source, records) = match decoded {
            Ok(decoded) => decoded,
            Err(refusal) => {
                self.metrics
                    .refused
                    .with_label_values(&["files", refusal.reason.as_str()])
                    .inc();
                tracing::error!(file = %path.display(), detail = %refusal.detail, "File not ingested and marked done (it is not read again): fix it and add it under a new name.");
                return true;
            }
        };
        for batch in records.chunks(BATCH) {
            if !self
                .writer
                .write_until_done(source, batch, "files", self.retry_after, shutdown)
                .await
            {
                return false;
            }
        }
        tracing::info!(file = %path.display(), records = records.len(), source = %source, "File ingested.");
        true
    }
}

fn read_checkpoint(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn append_checkpoint(path: &Path, name: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{name}")?;
    file.sync_all()
}
