//! Pure: syslog over TCP split into messages. RFC 6587 allows two framings and senders pick
//! one per connection (rsyslog and `logger --octet-count` count octets, most others end lines):
//! a frame that starts with a digit is octet-counted (`<length> <message>`), else it ends at a
//! newline (a trailing `\r` removed). A message longer than the limit is cut to it (and flagged,
//! never dropped); the rest of it is skipped, so a hostile length or an endless line costs at
//! most the limit in memory.

use bytes::{Buf, BytesMut};

/// One message read off a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message's bytes (at most the limit).
    pub bytes: Vec<u8>,
    /// Whether the message was longer and was cut.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of a cut octet-counted message.
    Bytes(usize),
    /// The rest of a cut line.
    ToNewline,
}

/// The framing state of one connection.
#[derive(Debug)]
pub struct Framer {
    buffer: BytesMut,
    max: usize,
    skip: Skip,
}

/// Longest octet count accepted (10 digits cover any length up to the limit's type).
const MAX_LENGTH_DIGITS: usize = 10;

impl Framer {
    /// A framer cutting messages at `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buffer: BytesMut::with_capacity(8192),
            max: max.max(1),
            skip: Skip::Nothing,
        }
    }

    /// Bytes read off the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete message, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if !self.skip_pending() {
                return None;
            }
            let first = *self.buffer.first()?;
            let frame = if first.is_ascii_digit() && first != b'0' {
                match self.octet_counted() {
                    Counted::Frame(frame) => Some(frame),
                    Counted::NeedMore => return None,
                    Counted::Newline => self.line(),
                }
            } else {
                self.line()
            };
            match frame {
                Some(frame) if frame.bytes.is_empty() => {}
                other => return other,
            }
        }
    }

    /// At the end of the connection: what is left, as a last message.
    pub fn finish(&mut self) -> Option<Frame> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        if !self.skip_pending() || self.buffer.is_empty() {
            return None;
        }
        let rest = self.buffer.split().freeze();
        let text = rest.strip_suffix(b"\r").unwrap_or(&rest);
        let truncated = text.len() > self.max;
        let bytes = text[..text.len().min(self.max)].to_vec();
        (!bytes.trim_ascii().is_empty()).then_some(Frame { bytes, truncated })
    }

    /// Drops what a cut message left; whether the buffer is now at a message's start.
    fn skip_pending(&mut self) -> bool {
        match self.skip {
            Skip::Nothing => true,
            Skip::Bytes(n) => {
                let dropped = n.min(self.buffer.len());
                self.buffer.advance(dropped);
                self.skip = if dropped == n {
                    Skip::Nothing
                } else {
                    Skip::Bytes(n - dropped)
                };
                self.skip == Skip::Nothing
            }
            Skip::ToNewline => match memchr(b'\n', &self.buffer) {
                Some(at) => {
                    self.buffer.advance(at + 1);
                    self.skip = Skip::Nothing;
                    true
                }
                None => {
                    self.buffer.clear();
                    false
                }
            },
        }
    }

    fn octet_counted(&mut self) -> Counted {
        let digits = self
            .buffer
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        match self.buffer.get(digits) {
            None if digits <= MAX_LENGTH_DIGITS => return Counted::NeedMore,
            Some(b' ') if digits <= MAX_LENGTH_DIGITS => {}
            _ => return Counted::Newline,
        }
        let length: usize = std::str::from_utf8(&self.buffer[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(usize::MAX);
        let kept = length.min(self.max);
        if self.buffer.len() < digits + 1 + kept {
            return Counted::NeedMore;
        }
        self.buffer.advance(digits + 1);
        let bytes = self.buffer.split_to(kept).to_vec();
        if length > kept {
            self.skip = Skip::Bytes(length - kept);
        }
        Counted::Frame(Frame {
            bytes: trim_line_end(bytes),
            truncated: length > kept,
        })
    }

    fn line(&mut self) -> Option<Frame> {
        match memchr(b'\n', &self.buffer) {
            Some(at) => {
                let line = self.buffer.split_to(at + 1);
                let text = &line[..at];
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                let truncated = text.len() > self.max;
                Some(Frame {
                    bytes: text[..text.len().min(self.max)].to_vec(),
                    truncated,
                })
            }
            None if self.buffer.len() > self.max => {
                let bytes = self.buffer.split_to(self.max).to_vec();
                self.skip = Skip::ToNewline;
                Some(Frame {
                    bytes,
                    truncated: true,
                })
            }
            None => None,
        }
    }
}

/// What the start of the buffer is, read as an octet count.
enum Counted {
    /// A complete octet-counted message.
    Frame(Frame),
    /// An octet count whose message has not fully arrived.
    NeedMore,
    /// Not an octet count: a newline-framed message.
    Newline,
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

/// Octet-counted senders may still end a message with a newline: it is not part of it.
fn trim_line_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], max: usize) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame() {
                out.push(frame);
            }
        }
        out.extend(framer.finish());
        out.into_iter()
            .map(|f| (String::from_utf8_lossy(&f.bytes).into_owned(), f.truncated))
            .collect()
    }

    fn kept(texts: &[&str]) -> Vec<(String, bool)> {
        texts.iter().map(|t| ((*t).to_owned(), false)).collect()
    }

    #[test]
    fn both_framings_in_any_chunking() {
        let stream: &[u8] =
            b"<13>Dec  5 06:00:00 h app: one\r\n\n19 <13>1 - - - - - two<14>three\n";
        let expected = kept(&[
            "<13>Dec  5 06:00:00 h app: one",
            "<13>1 - - - - - two",
            "<14>three",
        ]);
        assert_eq!(frames(&[stream], 100), expected);
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(&bytewise, 100), expected);
    }

    #[test]
    fn a_last_line_without_newline_is_kept() {
        assert_eq!(frames(&[b"<13>a\n<13>b"], 100), kept(&["<13>a", "<13>b"]));
        assert_eq!(frames(&[b"12 <13>cut"], 100), kept(&["12 <13>cut"]));
    }

    #[test]
    fn long_messages_are_cut_and_flagged_and_the_rest_skipped() {
        assert_eq!(
            frames(&[b"<13>abcdefgh\n<13>ok\n"], 6),
            [("<13>ab".to_owned(), true), ("<13>ok".to_owned(), false)]
        );
        assert_eq!(
            frames(&[b"<13>abc", b"defgh", b"ij\n<13>ok\n"], 6),
            [("<13>ab".to_owned(), true), ("<13>ok".to_owned(), false)]
        );
        assert_eq!(
            frames(&[b"12 <13>abcdefgh", b"6 <13>ok"], 6),
            [("<13>ab".to_owned(), true), ("<13>ok".to_owned(), false)]
        );
        assert_eq!(
            frames(&[b"99999999999999999999 x\n<13>ok\n"], 100),
            kept(&["99999999999999999999 x", "<13>ok"])
        );
    }
}
