//! The offline commands: `logwarden-transformer apply` runs the transform over NDJSON, and
//! `logwarden-transformer check` validates and summarises a rules file.
//!
//! `apply` lets a person try rules on a log file without Kafka, and gives tests and demos the
//! exact transform the service runs. It streams: one line in memory at a time (at most the
//! record size limit of it), buffered writes, so files of any length go through. Records are
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

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use pipeline::wire::{DeadLetterReason, SourcePosition};
use serde::Serialize;

use crate::rules::{CompiledRules, RulesError, RulesSummary};
use crate::transform::Rejection;

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

/// Enriches NDJSON: each line of `input` is a raw record; each enriched record is written to
/// `output` as one line; each rejected line goes to `dead_letters` as a JSON object (see the
/// module docs), or is only counted if there is none. Returns the counts; stops only when a
/// read or write fails.
pub fn apply(
    rules: &CompiledRules,
    mut input: impl BufRead,
    output: impl Write,
    dead_letters: Option<&mut dyn Write>,
) -> Result<ApplyCounts, OfflineError> {
    let mut output = BufWriter::new(output);
    let mut dead_letters = dead_letters.map(BufWriter::new);
    let mut counts = ApplyCounts::default();
    let mut line = Vec::new();
    let mut enriched = Vec::new();
    let mut position = SourcePosition {
        topic: STDIN_TOPIC.to_owned(),
        partition: 0,
        offset: 0,
    };
    let limit = rules.max_record_bytes();
    for index in 0u64.. {
        let number = index + 1;
        line.clear();
        let Some(length) = read_line_bounded(&mut input, &mut line, limit).map_err(|error| {
            OfflineError::Read {
                line: number,
                error,
            }
        })?
        else {
            break;
        };
        if line.iter().all(u8::is_ascii_whitespace) && length == line.len() {
            counts.blank_lines += 1;
            continue;
        }
        counts.records_in += 1;
        position.offset = i64::try_from(index).unwrap_or(i64::MAX);
        enriched.clear();
        let result = if length > limit {
            Err(Rejection::oversized(length, limit))
        } else {
            rules.apply(&line, &position, &mut enriched)
        };
        match result {
            Ok(()) => {
                enriched.push(b'\n');
                output.write_all(&enriched).map_err(OfflineError::Write)?;
                counts.records_out += 1;
            }
            Err(rejection) => {
                counts.count_dead(rejection.reason);
                if let Some(dead) = dead_letters.as_mut() {
                    write_dead_letter(dead, &rejection, number, &line)
                        .map_err(OfflineError::WriteDeadLetters)?;
                }
            }
        }
    }
    output.flush().map_err(OfflineError::Write)?;
    if let Some(dead) = dead_letters.as_mut() {
        dead.flush().map_err(OfflineError::WriteDeadLetters)?;
    }
    Ok(counts)
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

/// Reads one line into `buf` without its `\n` or `\r\n`, keeping at most `limit + 1` bytes of
/// it (enough to tell it is over the limit) and skipping the rest. Returns the line's full
/// length without the line ending, or `None` at the end of the input.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<usize>> {
    let mut length = 0usize;
    let mut read_any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if chunk.is_empty() {
            break;
        }
        read_any = true;
        let (part, consumed, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => (chunk.get(..newline).unwrap_or_default(), newline + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = (limit + 1).saturating_sub(buf.len());
        buf.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        length += part.len();
        input.consume(consumed);
        if ended {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') && length == buf.len() {
        buf.pop();
        length -= 1;
    }
    Ok(Some(length))
}

/// Validates a rules file and summarises it, for `logwarden-transformer check --rules <file>`.
pub fn check(path: &Path) -> Result<RulesSummary, RulesError> {
    CompiledRules::load(path).map(|rules| rules.summary())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], limit: usize) -> Vec<(Vec<u8>, usize)> {
        let mut input = io::BufReader::with_capacity(3, text);
        let mut all = Vec::new();
        let mut buf = Vec::new();
        while let Some(length) = read_line_bounded(&mut input, &mut buf, limit).expect("reads") {
            all.push((buf.clone(), length));
            buf.clear();
        }
        all
    }

    #[test]
    fn lines_are_split_and_bounded() {
        assert_eq!(
            lines(b"ab\r\ncdefgh\n\nij", 4),
            [
                (b"ab".to_vec(), 2),
                (b"cdefg".to_vec(), 6),
                (Vec::new(), 0),
                (b"ij".to_vec(), 2)
            ]
        );
        assert_eq!(lines(b"", 4), []);
        assert_eq!(lines(b"x\n", 4), [(b"x".to_vec(), 1)]);
    }
}
