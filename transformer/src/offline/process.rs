//! One worker's job: a batch of lines in, the enriched lines, the dead-letter lines and the
//! counts out, exactly as a line-by-line run writes and counts them.

use std::borrow::Cow;
use std::io::{self, Write};

use base64::Engine as _;
use pipeline::wire::{DeadLetterReason, SourcePosition};
use serde::Serialize;

use super::batch::Batch;
use super::{ApplyCounts, STDIN_TOPIC};
use crate::rules::CompiledRules;
use crate::transform::Rejection;

/// What a batch came to.
#[derive(Debug, Default)]
pub(super) struct Processed {
    /// The enriched records, one per line.
    pub(super) enriched: Vec<u8>,
    /// The dead letters, one JSON object per line (empty when they are only counted).
    pub(super) dead_letters: Vec<u8>,
    /// The batch's share of the counts.
    pub(super) counts: ApplyCounts,
}

/// One dead letter as `apply` writes it.
#[derive(Debug, Serialize)]
struct DeadLetterLine<'a> {
    reason: DeadLetterReason,
    detail: &'a str,
    line: u64,
    raw: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_base64: Option<String>,
}

/// A batch and what it came to, passed from the reader to a worker and back, so that their
/// buffers serve batch after batch (fresh megabyte buffers would cost page faults each time).
#[derive(Debug, Default)]
pub(super) struct Job {
    /// The lines.
    pub(super) batch: Batch,
    /// What they came to.
    pub(super) processed: Processed,
}

/// Applies `rules` to every line of `job.batch`, replacing `job.processed`; dead letters are
/// written only if `keep_dead`.
pub(super) fn process(rules: &CompiledRules, job: &mut Job, keep_dead: bool) -> io::Result<()> {
    let limit = rules.max_record_bytes();
    let Job { batch, processed } = job;
    processed.enriched.clear();
    processed.dead_letters.clear();
    processed.counts = ApplyCounts::default();
    // Enriching adds about a quarter to a seed record.
    processed.enriched.reserve(batch.len() + batch.len() / 2);
    let counts = &mut processed.counts;
    let mut position = SourcePosition {
        topic: STDIN_TOPIC.to_owned(),
        partition: 0,
        offset: 0,
    };
    for (index, line, length) in batch.lines() {
        if line.iter().all(u8::is_ascii_whitespace) && length == line.len() {
            counts.blank_lines += 1;
            continue;
        }
        counts.records_in += 1;
        position.offset = i64::try_from(index).unwrap_or(i64::MAX);
        let result = if length > limit {
            Err(Rejection::oversized(length, limit))
        } else {
            // On a rejection `apply` leaves the buffer as it was.
            rules.apply(line, &position, &mut processed.enriched)
        };
        match result {
            Ok(()) => {
                processed.enriched.push(b'\n');
                counts.records_out += 1;
            }
            Err(rejection) => {
                counts.count_dead(rejection.reason);
                if keep_dead {
                    write_dead_letter(&mut processed.dead_letters, &rejection, index + 1, line)?;
                }
            }
        }
    }
    Ok(())
}

fn write_dead_letter(
    out: &mut impl Write,
    rejection: &Rejection,
    line: u64,
    raw: &[u8],
) -> io::Result<()> {
    let exact = std::str::from_utf8(raw).is_ok();
    let record = DeadLetterLine {
        reason: rejection.reason,
        detail: &rejection.detail,
        line,
        raw: String::from_utf8_lossy(raw),
        raw_base64: (!exact).then(|| base64::engine::general_purpose::STANDARD.encode(raw)),
    };
    serde_json::to_writer(&mut *out, &record)?;
    out.write_all(b"\n")
}
