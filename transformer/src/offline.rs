//! The offline commands: `logwarden-transformer apply` runs the transform over NDJSON, and
//! `logwarden-transformer check` validates and summarises a rules file.
//!
//! `apply` lets a person try rules on a log file without Kafka, and gives tests and demos the
//! exact transform the service runs. It streams, so files of any length go through, and uses
//! every core: the calling thread reads batches of lines (`batch`, each line at most the record
//! size limit), hands them in turn to one worker per core (`process`), and writes their results
//! back in the same turn, so the output is in input order and identical to a line-by-line run.
//! A few batches (of about a megabyte each) per worker are in memory at once. Records are
//! positioned as if they came from partition 0 of a topic named [`STDIN_TOPIC`] with the line
//! index (0-based) as offset, so their event ids are stable across runs over the same file.
//!
//! Each dead letter is one JSON object per line: `{"reason": "not_json", "detail": "...",
//! "line": 3, "raw": "..."}`, where `line` is 1-based (as editors and `grep -n` count; the
//! event-id offset is `line - 1`) and `raw` is the input line without its line ending. A line
//! that is not UTF-8 cannot be a JSON string faithfully, so `raw` then holds it decoded lossily
//! (invalid bytes become U+FFFD) for reading and `raw_base64` holds its exact bytes (standard
//! base64 with padding). An oversized line's `raw` holds only its first `max_record_bytes`
//! bytes. Whitespace-only lines are skipped and counted as blank.

mod batch;
mod process;

use std::fmt;
use std::io::{self, BufRead, BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::mpsc;

use pipeline::wire::DeadLetterReason;

use self::process::{Job, process};
use crate::rules::{CompiledRules, RulesError, RulesSummary};

/// The topic offline records are positioned in, for their event ids.
pub const STDIN_TOPIC: &str = "stdin";

/// What an `apply` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Records read: non-blank lines.
    pub records_in: u64,
    /// Enriched records written.
    pub records_out: u64,
    /// Whitespace-only lines, skipped.
    pub blank_lines: u64,
    /// Dead letters, indexed like [`DeadLetterReason::ALL`].
    dead: [u64; DeadLetterReason::ALL.len()],
}

impl ApplyCounts {
    /// Dead letters with `reason`.
    pub fn dead(&self, reason: DeadLetterReason) -> u64 {
        reason_index(reason)
            .and_then(|i| self.dead.get(i).copied())
            .unwrap_or(0)
    }

    /// All dead letters.
    pub fn dead_total(&self) -> u64 {
        self.dead.iter().sum()
    }

    /// The reasons that occurred, with their counts, in [`DeadLetterReason::ALL`] order.
    pub fn dead_by_reason(&self) -> impl Iterator<Item = (DeadLetterReason, u64)> + '_ {
        DeadLetterReason::ALL
            .into_iter()
            .zip(self.dead)
            .filter(|(_, count)| *count > 0)
    }

    fn count_dead(&mut self, reason: DeadLetterReason) {
        if let Some(count) = reason_index(reason).and_then(|i| self.dead.get_mut(i)) {
            *count += 1;
        }
    }

    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Self) {
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.blank_lines += other.blank_lines;
        for (count, more) in self.dead.iter_mut().zip(other.dead) {
            *count += more;
        }
    }
}

fn reason_index(reason: DeadLetterReason) -> Option<usize> {
    DeadLetterReason::ALL.iter().position(|r| *r == reason)
}

impl fmt::Display for ApplyCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records in, {} enriched, {} dead letters",
            self.records_in,
            self.records_out,
            self.dead_total()
        )?;
        let mut reasons = self.dead_by_reason().peekable();
        if reasons.peek().is_some() {
            let list: Vec<String> = reasons.map(|(r, n)| format!("{r} {n}")).collect();
            write!(f, " ({})", list.join(", "))?;
        }
        if self.blank_lines > 0 {
            write!(f, "; {} blank lines skipped", self.blank_lines)?;
        }
        Ok(())
    }
}

/// Why an `apply` run stopped early. Records are not a reason: bad ones are dead letters.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The input could not be read.
    #[error("cannot read input line {line}: {error}")]
    Read {
        /// The 1-based line being read.
        line: u64,
        /// The IO error.
        error: io::Error,
    },
    /// The enriched output could not be written.
    #[error("cannot write enriched output: {0}")]
    Write(io::Error),
    /// The dead-letter output could not be written.
    #[error("cannot write dead letters: {0}")]
    WriteDeadLetters(io::Error),
}

/// Batches handed to a worker and not yet written, per worker: one being processed, one
/// waiting, so a worker never waits for the reader.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// Enriches NDJSON: each line of `input` is a raw record; each enriched record is written to
/// `output` as one line; each rejected line goes to `dead_letters` as a JSON object (see the
/// module docs), or is only counted if there is none. Returns the counts; stops only when a
/// read or write fails (what was read before a failed read is written first).
pub fn apply(
    rules: &CompiledRules,
    mut input: impl BufRead,
    output: impl Write,
    dead_letters: Option<&mut dyn Write>,
) -> Result<ApplyCounts, OfflineError> {
    let mut output = BufWriter::new(output);
    let mut dead_letters = dead_letters.map(BufWriter::new);
    let keep_dead = dead_letters.is_some();
    let limit = rules.max_record_bytes();
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    std::thread::scope(|scope| {
        // One lane per worker: jobs go in, come back processed, in the same order.
        let lanes: Vec<_> = (0..workers)
            .map(|_| {
                let (to_worker, jobs) = mpsc::sync_channel::<Job>(IN_FLIGHT_PER_WORKER);
                let (done, from_worker) = mpsc::sync_channel(IN_FLIGHT_PER_WORKER);
                scope.spawn(move || {
                    for mut job in jobs {
                        let result = process(rules, &mut job, keep_dead);
                        // The receiver is gone only when `apply` returns early.
                        if done.send((job, result)).is_err() {
                            break;
                        }
                    }
                });
                (to_worker, from_worker)
            })
            .collect();
        let mut counts = ApplyCounts::default();
        // Writes the result of the job sent in turn `turn` and keeps its buffers in `spare`.
        let mut write_next = |turn: usize, spare: &mut Vec<Job>| -> Result<(), OfflineError> {
            let Some((_, from_worker)) = lanes.get(turn % workers) else {
                return Ok(());
            };
            // A worker stops early only if its lane is dropped, which happens after this.
            let Ok((job, result)) = from_worker.recv() else {
                return Ok(());
            };
            result.map_err(OfflineError::WriteDeadLetters)?;
            output
                .write_all(&job.processed.enriched)
                .map_err(OfflineError::Write)?;
            if let Some(dead) = dead_letters.as_mut() {
                dead.write_all(&job.processed.dead_letters)
                    .map_err(OfflineError::WriteDeadLetters)?;
            }
            counts.add(&job.processed.counts);
            spare.push(job);
            Ok(())
        };
        let mut spare = Vec::new();
        let (mut sent, mut written) = (0usize, 0usize);
        let mut next_line = 0u64;
        let failed = loop {
            if sent - written == workers * IN_FLIGHT_PER_WORKER {
                write_next(written, &mut spare)?;
                written += 1;
            }
            let mut job: Job = spare.pop().unwrap_or_default();
            let failed = job.batch.fill(&mut input, next_line, limit);
            if !job.batch.is_empty() {
                next_line = job.batch.end();
                if let Some((to_worker, _)) = lanes.get(sent % workers)
                    && to_worker.send(job).is_ok()
                {
                    sent += 1;
                }
            } else if failed.is_none() {
                break None;
            }
            if failed.is_some() {
                break failed;
            }
        };
        while written < sent {
            write_next(written, &mut spare)?;
            written += 1;
        }
        if let Some((line, error)) = failed {
            return Err(OfflineError::Read { line, error });
        }
        output.flush().map_err(OfflineError::Write)?;
        if let Some(dead) = dead_letters.as_mut() {
            dead.flush().map_err(OfflineError::WriteDeadLetters)?;
        }
        Ok(counts)
    })
}

/// Validates a rules file and summarises it, for `logwarden-transformer check --rules <file>`.
pub fn check(path: &Path) -> Result<RulesSummary, RulesError> {
    CompiledRules::load(path).map(|rules| rules.summary())
}
