//! Writing an enriched record: the record's own bytes, then the rules' indicator template with
//! the `1` digits patched in, `@timestamp` and `event_id`, mostly assembled on the stack and
//! appended at once. Also the slow path that rebuilds a record that already carries keys the
//! transformer writes.

use pipeline::wire::SourcePosition;

use super::scan::{Finding, State};
use crate::escape::{is_plain, write_json_string};
use crate::json;
use crate::rules::{Class, Section};
use crate::timestamp;

impl Section {
    /// Writes `,"K_action":1,...,"@timestamp":"...","event_id":"..."}` after the record's
    /// members (without the comma if the record had none).
    pub(super) fn write_additions(
        &self,
        state: &State,
        empty: bool,
        millis: i64,
        source: &SourcePosition,
        out: &mut Vec<u8>,
    ) {
        // Without the template's leading comma if the record has no member to follow.
        let skip = usize::from(empty);
        let suffix = self.suffix.get(skip..).unwrap_or_default();
        out.reserve(suffix.len() + TAIL_CAPACITY + source.topic.len());
        let base = out.len();
        out.extend_from_slice(suffix);
        let written = out.get_mut(base..).unwrap_or_default();
        for (offsets, finding) in self.digit_offsets.iter().zip(state.slots.as_slice()) {
            let offset = match finding {
                Finding::Class(Class::Good) => offsets[0],
                Finding::Class(Class::Bad) => offsets[1],
                _ => None,
            };
            if let Some(digit) = offset.and_then(|at| written.get_mut(at.wrapping_sub(skip))) {
                *digit = b'1';
            }
        }
        write_tail(millis, source, out);
    }
}

/// The most [`write_tail`] assembles on the stack: the timestamp, `","event_id":"`, a topic
/// of up to 64 bytes, two signed 64-bit numbers with their dashes, and `"}`.
const TAIL_CAPACITY: usize = timestamp::RFC3339_MILLIS_LEN + 14 + 64 + 2 * 21 + 2;

/// Appends the `@timestamp` value (its key is the template's end), the `event_id` member
/// and the closing brace: `2023-11-14T22:13:20.000Z","event_id":"raw-3-1234567"}`. The event
/// id is the text of [`pipeline::wire::event_id`] (`{topic}-{partition}-{offset}`, which a test
/// pins), written in place to spare the allocation that function makes for every record; all
/// of it is usually assembled on the stack and appended at once.
#[inline(always)]
fn write_tail(millis: i64, source: &SourcePosition, out: &mut Vec<u8>) {
    let mut tail = [0u8; TAIL_CAPACITY];
    let mut len = put(&mut tail, 0, &timestamp::rfc3339_millis(millis));
    len = put(&mut tail, len, b"\",\"event_id\":\"");
    let topic = source.topic.as_bytes();
    if topic.len() <= 64 && is_plain(topic) {
        len = put(&mut tail, len, topic);
    } else {
        // Without the opening quote, which `write_json_string` writes.
        out.extend_from_slice(tail.get(..len - 1).unwrap_or_default());
        write_json_string(&source.topic, out);
        out.pop(); // reopen the string after the topic
        len = 0;
    }
    // `-{partition}-{offset}"}`
    for value in [i64::from(source.partition), source.offset] {
        len = put(&mut tail, len, b"-");
        if value < 0 {
            len = put(&mut tail, len, b"-");
        }
        len = put_decimal(&mut tail, len, value.unsigned_abs());
    }
    len = put(&mut tail, len, b"\"}");
    out.extend_from_slice(tail.get(..len).unwrap_or_default());
}

/// Copies `bytes` into `buf` at `at` if they fit; returns the new end.
#[inline(always)]
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    match buf.get_mut(at..at + bytes.len()) {
        Some(slot) => {
            slot.copy_from_slice(bytes);
            at + bytes.len()
        }
        None => at,
    }
}

/// Writes `value` in decimal into `buf` at `at` if it fits; returns the new end.
fn put_decimal(buf: &mut [u8], at: usize, mut value: u64) -> usize {
    const PAIRS: &[u8; 200] = crate::timestamp::DIGIT_PAIRS;
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let Some(digits) = buf.get_mut(at..at + len) else {
        return at;
    };
    // From the last digit back, two at a time.
    let mut end = len;
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        end = end.saturating_sub(2);
        if let (Some(slot), Some(pair)) = (digits.get_mut(end..end + 2), PAIRS.get(pair..pair + 2))
        {
            slot.copy_from_slice(pair);
        }
    }
    if value >= 10 {
        let pair = value as usize * 2;
        if let (Some(slot), Some(pair)) = (digits.get_mut(..2), PAIRS.get(pair..pair + 2)) {
            slot.copy_from_slice(pair);
        }
    } else if let Some(slot) = digits.first_mut() {
        *slot = b'0' + value as u8;
    }
    at + len
}

/// The slow path for a record that already has keys the transformer writes: appends the
/// record's opening brace and its members except those keys (each kept byte for byte, joined by
/// commas). Returns whether no member was kept; `out` is left as it was on an error (which the
/// validated JSON this is given cannot cause).
pub(super) fn write_without_outputs(
    text: &str,
    output_keys: &[Box<str>],
    out: &mut Vec<u8>,
) -> Result<bool, json::Error> {
    let start = out.len();
    let result = (|| {
        let bytes = text.as_bytes();
        let (open, byte) = json::space(bytes, 0);
        if byte != b'{' {
            return Err(json::error(open, "expected `{`"));
        }
        out.push(b'{');
        let mut kept = 0usize;
        let (mut pos, mut byte) = json::space(bytes, open + 1);
        if byte == b'}' {
            return Ok(true);
        }
        loop {
            let (key, (value, first)) = json::member_key(bytes, pos, byte)?;
            let (_, end) = json::skip(bytes, value, first, 1)?;
            let name = json::unescape(key.text(text));
            if !output_keys.iter().any(|k| **k == *name) {
                if kept > 0 {
                    out.push(b',');
                }
                let member = text.get(key.start..end).unwrap_or_default();
                out.extend_from_slice(member.as_bytes());
                kept += 1;
            }
            (pos, byte) = match json::next_member(bytes, end)? {
                (next, Some(first)) => (next, first),
                (_, None) => return Ok(kept == 0),
            };
        }
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_other_than_the_outputs_are_kept_byte_for_byte() {
        let keys: Vec<Box<str>> = vec!["K".into(), "event_id".into()];
        let mut out = b"prefix".to_vec();
        let text =
            r#" {"a":1, "K" : {"x":[1,"]}"]} ,"d\"e":"x\\" , "event_\u0069d":"old","z" : null } "#;
        let empty = write_without_outputs(text, &keys, &mut out).expect("valid");
        assert!(!empty);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#"prefix{"a":1,"d\"e":"x\\","z" : null"#
        );
        let mut out = Vec::new();
        assert_eq!(
            write_without_outputs(r#"{"K":1}"#, &keys, &mut out),
            Ok(true)
        );
        assert_eq!(out, b"{");
        let mut out = b"kept".to_vec();
        assert!(write_without_outputs(r#"{"a":1,"K"}"#, &keys, &mut out).is_err());
        assert_eq!(out, b"kept");
    }

    #[test]
    fn decimals_are_written_exactly() {
        for value in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            1_234_567,
            u64::MAX,
            10u64.pow(19),
        ] {
            let mut buf = *b"[........................]";
            let end = put_decimal(&mut buf, 1, value);
            assert_eq!(&buf[1..end], value.to_string().as_bytes());
            assert_eq!(&buf[end..], &b"........................]"[end - 1..]);
            let late = buf.len() + 1 - (end - 1);
            assert_eq!(put_decimal(&mut buf, late, value), late, "does not fit");
        }
    }
}
