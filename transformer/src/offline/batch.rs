//! Reading NDJSON in batches of lines, for the workers: each line bounded to the record size
//! limit (the rest of a longer line is skipped, only its length kept), line endings (`\n` or
//! `\r\n`) removed, blank lines kept in place so line numbers stay exact.

use std::io::{self, BufRead};

/// A batch is handed to a worker when its lines hold this many bytes...
const BATCH_BYTES: usize = 1 << 20;

/// ...or when it has this many lines.
const BATCH_LINES: usize = 8192;

/// Consecutive lines of the input, in one buffer.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The 0-based index of the first line in the input.
    pub(super) first: u64,
    /// The lines' bytes, one after another, without line endings, each cut at `limit + 1`
    /// bytes (enough to tell it is over the limit).
    bytes: Vec<u8>,
    /// For each line: where it ends in `bytes` (it starts where the previous one ends) and its
    /// full length in the input, without its line ending.
    ends: Vec<(usize, usize)>,
}

impl Batch {
    /// Replaces the batch's lines with those from `first` on, until the batch is full or the
    /// input ends (the batch is then empty if no line was left). Returns the error that stopped
    /// reading, if one did, with the 1-based number of the line being read. The buffers are
    /// reused from batch to batch.
    pub(super) fn fill(
        &mut self,
        input: &mut impl BufRead,
        first: u64,
        limit: usize,
    ) -> Option<(u64, io::Error)> {
        self.first = first;
        self.bytes.clear();
        self.ends.clear();
        self.bytes.reserve(BATCH_BYTES + limit.min(BATCH_BYTES));
        self.ends.reserve(BATCH_LINES);
        while self.bytes.len() < BATCH_BYTES && self.ends.len() < BATCH_LINES {
            match read_line_bounded(input, &mut self.bytes, limit) {
                Ok(Some(length)) => self.ends.push((self.bytes.len(), length)),
                Ok(None) => break,
                Err(error) => return Some((self.end() + 1, error)),
            }
        }
        None
    }

    /// Whether the batch has no line.
    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The 0-based index of the line after the batch.
    pub(super) fn end(&self) -> u64 {
        self.first + self.ends.len() as u64
    }

    /// The bytes kept of the input.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Each line: its 0-based index in the input, the bytes kept of it, and its full length.
    pub(super) fn lines(&self) -> impl Iterator<Item = (u64, &[u8], usize)> {
        let mut start = 0;
        (self.first..)
            .zip(self.ends.iter())
            .map(move |(index, &(end, length))| {
                let line = self.bytes.get(start..end).unwrap_or_default();
                start = end;
                (index, line, length)
            })
    }
}

/// Appends one line to `buf` without its `\n` or `\r\n`, keeping at most `limit + 1` bytes of
/// it (enough to tell it is over the limit) and skipping the rest. Returns the line's full
/// length without the line ending, or `None` at the end of the input.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<usize>> {
    let start = buf.len();
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
        let (part, consumed, ended) = match memchr::memchr(b'\n', chunk) {
            Some(newline) => (chunk.get(..newline).unwrap_or_default(), newline + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = (limit + 1).saturating_sub(buf.len() - start);
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
    if buf.last() == Some(&b'\r') && length == buf.len() - start {
        buf.pop();
        length -= 1;
    }
    Ok(Some(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], limit: usize) -> Vec<(Vec<u8>, usize)> {
        let mut input = io::BufReader::with_capacity(3, text);
        let mut all = Vec::new();
        let mut buf = b"earlier lines".to_vec();
        let mut start = buf.len();
        while let Some(length) = read_line_bounded(&mut input, &mut buf, limit).expect("reads") {
            all.push((buf[start..].to_vec(), length));
            start = buf.len();
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

    #[test]
    fn batches_hold_consecutive_lines_and_stop_at_an_error() {
        struct Failing<'a>(&'a [u8]);
        impl io::Read for Failing<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk gone"));
                }
                let n = out.len().min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut batch = Batch::default();
        let mut input = io::BufReader::with_capacity(4, b"old\n".as_slice());
        assert!(batch.fill(&mut input, 3, 8).is_none());
        assert!(batch.fill(&mut input, 4, 8).is_none() && batch.is_empty());
        let mut input = io::BufReader::with_capacity(4, Failing(b"a\r\n\nbc\n"));
        let failed = batch.fill(&mut input, 10, 8);
        let lines: Vec<(u64, &[u8], usize)> = batch.lines().collect();
        assert_eq!(
            lines,
            [
                (10, b"a".as_slice(), 1),
                (11, b"".as_slice(), 0),
                (12, b"bc".as_slice(), 2)
            ]
        );
        assert_eq!((batch.end(), batch.len()), (13, 3));
        let (line, error) = failed.expect("the read failed");
        assert_eq!((line, error.to_string()), (14, "disk gone".to_owned()));
    }
}
