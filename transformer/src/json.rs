//! A validating JSON scanner over a UTF-8 text's bytes: it checks RFC 8259 syntax exactly as
//! serde_json does (the tests compare the two on generated input), reads the few values asked
//! for, and skips the rest without building anything.
//!
//! It exists because it is faster than the well-kept libraries at this job, which is the only
//! reason to keep hand-written parsing. `benches/scanners.rs` runs, on the same 1,024
//! seed-shaped records (about 550 bytes), the job each way: validate the record and read the six
//! paths the default rules read. The last run (`cargo bench -p transformer --bench scanners --
//! --warm-up-time 1 --measurement-time 5`, 2-core machine shared with other builds, medians):
//!
//! | way                                           | records/s | of the scanner |
//! |-----------------------------------------------|-----------|----------------|
//! | this scanner (`CompiledRules::accepts`)       | 2,650,000 | 1.00           |
//! | simd-json 0.19, tape, buffers reused          | 1,850,000 | 0.70           |
//! | serde_json 1.0, struct of borrowed `Cow<str>` | 1,780,000 | 0.67           |
//! | serde_json 1.0, struct of `&RawValue`         | 1,610,000 | 0.61           |
//! | sonic-rs 0.5, `get_many` (lazy)               |   880,000 | 0.33           |
//! | simd-json 0.19, borrowed `Value`              |   740,000 | 0.28           |
//!
//! Over four runs the best library reached 0.67 to 0.82 of the scanner, short of the 0.85 that
//! would retire it, although each does less: none classifies or checks the timestamp,
//! `&RawValue` does not even unescape, and `get_many` stops reading once it has the paths
//! (the rest of the record is not validated). (sonic-rs is built for the baseline x86-64 CPU,
//! as the whole workspace is, so it uses SSE2; its AVX2 paths need `-C target-cpu=native`.)
//!
//! How it is fast: it is a set of functions from an offset to the offset after what they read,
//! so the position stays in a register. Strings, most of a WAF record, are scanned eight bytes
//! at a time for a quote, a backslash or a control character; nothing else inside them needs a
//! look, as the text is already known to be UTF-8. Containers are skipped
//! iteratively with a bit stack, so no input can exhaust the call stack. Nesting deeper than
//! [`MAX_DEPTH`] is refused (serde_json's own limit when it deserializes).
//!
//! It knows nothing of the rules: the transform walks a record with these functions and decides
//! what each value it finds means.

use std::borrow::Cow;
use std::fmt;

/// The kind of a JSON value, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    /// The kind with its article, as messages say it: `a string`, `null`.
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.with_article())
    }
}

/// A JSON number's value: an integer if it has no fraction or exponent and fits 64 bits (as an
/// `i128`, so its sign fits too), else a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// A number without fraction or exponent that fits 64 bits.
    Int(i128),
    /// Any other number (`inf` beyond f64's range).
    Float(f64),
}

/// The deepest nesting of arrays and objects accepted.
pub(crate) const MAX_DEPTH: usize = 128;

/// Where and why the text is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Error {
    /// Byte offset of the problem.
    pub(crate) at: usize,
    /// What was expected or found.
    pub(crate) what: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// The error `what` at byte `at`.
#[cold]
pub(crate) fn error(at: usize, what: &'static str) -> Error {
    Error { at, what }
}

/// The error for a container opened at `at` beyond [`MAX_DEPTH`].
#[cold]
pub(crate) fn too_deep(at: usize) -> Error {
    error(at, "nesting deeper than 128 levels")
}

/// A string as it appears in the text, between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Str {
    /// Byte offset of the opening quote.
    pub(crate) start: usize,
    /// Byte offset of the closing quote.
    pub(crate) end: usize,
    /// Whether the string holds a backslash escape.
    pub(crate) escaped: bool,
}

impl Str {
    /// The bytes between the quotes, escapes as written (`bytes` must be the text the
    /// string was read from).
    #[inline(always)]
    pub(crate) fn raw_bytes<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
        bytes
            .get(self.start + 1..self.end)
            .ok_or_else(|| error(self.start, "string out of bounds"))
    }

    /// The text between the quotes, escapes as written (quotes are ASCII, so these are
    /// char boundaries).
    #[inline]
    pub(crate) fn text<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start + 1..self.end).unwrap_or_default()
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is a quote, a backslash or below 0x20 (exact
/// for the lowest such byte, which is all that is used: a borrow only runs upwards from a
/// byte that is one of these). XOR with 2 maps the quote and the control characters, and
/// only them, below 0x21; the tests share the `!word` mask, as a byte with its high bit set
/// is none of these and XOR with an ASCII byte keeps that bit.
#[inline(always)]
fn specials(word: u64) -> u64 {
    let quote_or_control = (word ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (quote_or_control | backslash) & !word & HIGHS
}

/// JSON whitespace as a bit set over bytes up to the space.
const SPACES: u64 = 1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r';

/// The first byte at or after `pos` that is not JSON whitespace, with its offset; the byte
/// is 0 at the end of the text (a 0 byte is not JSON there either).
#[inline(always)]
pub(crate) fn space(bytes: &[u8], pos: usize) -> (usize, u8) {
    match bytes.get(pos) {
        // One comparison rules out every byte above the space, the usual case.
        Some(&byte) if byte > b' ' => (pos, byte),
        _ => space_slow(bytes, pos),
    }
}

#[inline(never)]
fn space_slow(bytes: &[u8], mut pos: usize) -> (usize, u8) {
    while let Some(&byte) = bytes.get(pos) {
        if byte > b' ' || SPACES >> byte & 1 == 0 {
            return (pos, byte);
        }
        pos += 1;
    }
    (pos, 0)
}

/// The string whose opening quote is at `start`.
#[inline(always)]
pub(crate) fn string(bytes: &[u8], start: usize) -> Result<Str, Error> {
    let mut pos = start + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time while none is special.
        if let Some(last) = bytes.len().checked_sub(8) {
            while pos <= last {
                let chunk = bytes.get(pos..pos + 8).unwrap_or_default();
                let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                let found = specials(word);
                if found != 0 {
                    let bit = found.trailing_zeros();
                    pos += (bit / 8) as usize;
                    // The special byte itself, without another load.
                    if (word >> (bit - 7)) as u8 == b'"' {
                        return Ok(Str {
                            start,
                            end: pos,
                            escaped,
                        });
                    }
                    break;
                }
                pos += 8;
            }
        }
        match bytes.get(pos) {
            Some(b'"') => {
                return Ok(Str {
                    start,
                    end: pos,
                    escaped,
                });
            }
            Some(b'\\') => {
                escaped = true;
                pos = escape(bytes, pos + 1)?;
            }
            Some(0..=0x1f) => return Err(error(pos, "control character in a string")),
            Some(_) => pos += 1,
            None => return Err(error(pos, "unterminated string")),
        }
    }
}

/// Checks the escape after a backslash, at `pos`; returns the offset after it.
#[inline(never)]
fn escape(bytes: &[u8], pos: usize) -> Result<usize, Error> {
    match bytes.get(pos) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 1),
        Some(b'u') => {
            let hex = bytes.get(pos + 1..pos + 5);
            if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                Ok(pos + 5)
            } else {
                Err(error(pos, "invalid \\u escape"))
            }
        }
        _ => Err(error(pos, "invalid escape")),
    }
}

/// The count and value of the decimal digits at `pos`, read eight at a time; `None` for 16
/// digits or more, or where fewer than eight bytes are left to read.
#[inline(always)]
pub(crate) fn leading_digits(bytes: &[u8], pos: usize) -> Option<(usize, u64)> {
    const POWERS: [u64; 8] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];
    let (count, value) = digits8(bytes, pos)?;
    if count < 8 {
        return Some((count, value));
    }
    let (more, low) = digits8(bytes, pos + 8)?;
    let scale = POWERS.get(more)?;
    Some((8 + more, value * scale + low))
}

/// The count and value of the decimal digits that start the eight bytes at `pos`.
#[inline(always)]
fn digits8(bytes: &[u8], pos: usize) -> Option<(usize, u64)> {
    let chunk = bytes.get(pos..pos + 8)?;
    let word = u64::from_le_bytes(chunk.try_into().ok()?);
    // Digits become 0 to 9; the high bit marks every byte that is not a digit (above 9),
    // with no carry between bytes.
    let values = word ^ (ONES * u64::from(b'0'));
    let not_digit = (((values & !HIGHS) + ONES * 0x76) | values) & HIGHS;
    let count = not_digit.trailing_zeros() / 8;
    if count == 0 {
        return Some((0, 0));
    }
    // The digits at the top, the first the most significant, after zeros.
    let digits = values << (64 - 8 * count);
    // Pairs, then fours, then all eight, by multiplications.
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    const LOW: u64 = 0x0000_00ff_0000_00ff;
    let value = ((pairs & LOW).wrapping_mul(100 + (1_000_000 << 32))
        + ((pairs >> 16) & LOW).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some((count as usize, value))
}

/// The offset after the number that starts at `start`.
#[inline]
pub(crate) fn number(bytes: &[u8], start: usize) -> Result<usize, Error> {
    let mut pos = start;
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match bytes.get(pos) {
        Some(b'0') => {
            pos += 1;
            if let Some(b'0'..=b'9') = bytes.get(pos) {
                return Err(error(pos, "invalid number: leading zero"));
            }
        }
        Some(b'1'..=b'9') => pos = digits(bytes, pos + 1),
        _ => return Err(error(pos, "invalid number")),
    }
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        if !matches!(bytes.get(pos), Some(b'0'..=b'9')) {
            return Err(error(pos, "invalid number: no digit after `.`"));
        }
        pos = digits(bytes, pos);
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        if !matches!(bytes.get(pos), Some(b'0'..=b'9')) {
            return Err(error(pos, "invalid number: no digit in the exponent"));
        }
        pos = digits(bytes, pos);
    }
    Ok(pos)
}

#[inline(always)]
fn digits(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b'0'..=b'9') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The offset after `word` (`true`, `false` or `null`), which must be at `pos`.
#[inline(always)]
pub(crate) fn literal(bytes: &[u8], pos: usize, word: &'static [u8]) -> Result<usize, Error> {
    if bytes.get(pos..pos + word.len()) == Some(word) {
        Ok(pos + word.len())
    } else {
        Err(error(pos, "expected a value"))
    }
}

/// Skips the scalar whose first byte `first` is at `pos`; returns its kind and the offset
/// after it.
#[inline(always)]
fn scalar(bytes: &[u8], pos: usize, first: u8) -> Result<(JsonKind, usize), Error> {
    match first {
        b'"' => string(bytes, pos).map(|s| (JsonKind::String, s.end + 1)),
        b'-' | b'0'..=b'9' => number(bytes, pos).map(|end| (JsonKind::Number, end)),
        b't' => literal(bytes, pos, b"true").map(|end| (JsonKind::Bool, end)),
        b'f' => literal(bytes, pos, b"false").map(|end| (JsonKind::Bool, end)),
        b'n' => literal(bytes, pos, b"null").map(|end| (JsonKind::Null, end)),
        _ if pos >= bytes.len() => Err(error(pos, "unexpected end while parsing a value")),
        _ => Err(error(pos, "expected a value")),
    }
}

/// Reads `"key" :` at `pos` (whose byte is `first`) inside an object; returns the key and
/// the offset and first byte of the member's value (after whitespace).
#[inline(always)]
pub(crate) fn member_key(bytes: &[u8], pos: usize, first: u8) -> Result<(Str, (usize, u8)), Error> {
    if first != b'"' {
        return Err(error(pos, "expected a string key"));
    }
    let key = string(bytes, pos)?;
    // Compact JSON, the usual case, has a string value right after the colon.
    if pair_at(bytes, key.end + 1) == Some(b":\"".as_slice()) {
        return Ok((key, (key.end + 2, b'"')));
    }
    match space(bytes, key.end + 1) {
        (colon, b':') => Ok((key, space(bytes, colon + 1))),
        (at, _) => Err(error(at, "expected `:`")),
    }
}

/// The two bytes at `pos`, if there are two.
#[inline(always)]
fn pair_at(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    bytes.get(pos..pos + 2)
}

/// After a member's value, which ends before `pos`: the offset and first byte of the next
/// member (after the comma and whitespace), or `None` with the offset after the closing
/// brace.
#[inline(always)]
pub(crate) fn next_member(bytes: &[u8], pos: usize) -> Result<(usize, Option<u8>), Error> {
    // Compact JSON, the usual case, has the next key right after the comma.
    if pair_at(bytes, pos) == Some(b",\"".as_slice()) {
        return Ok((pos + 1, Some(b'"')));
    }
    match space(bytes, pos) {
        (comma, b',') => {
            let (next, first) = space(bytes, comma + 1);
            Ok((next, Some(first)))
        }
        (close, b'}') => Ok((close + 1, None)),
        (at, _) => Err(error(at, "expected `,` or `}`")),
    }
}

/// After an array element, which ends before `pos`: the offset and first byte of the next
/// element (after the comma and whitespace), or `None` with the offset after the closing
/// bracket.
pub(crate) fn next_element(bytes: &[u8], pos: usize) -> Result<(usize, Option<u8>), Error> {
    match space(bytes, pos) {
        (comma, b',') => {
            let (next, first) = space(bytes, comma + 1);
            Ok((next, Some(first)))
        }
        (close, b']') => Ok((close + 1, None)),
        (at, _) => Err(error(at, "expected `,` or `]`")),
    }
}

/// Validates and skips the value whose first byte `first` (not whitespace) is at `pos`,
/// nested in `depth` containers already; returns its kind and the offset after it.
/// Iterative: containers are tracked in a bit stack, so depth costs no call stack. The bit
/// stack is one word while nesting is shallow (always, in logs); a value nested deeper, or
/// one that is not JSON, is read again with a stack as deep as [`MAX_DEPTH`].
pub(crate) fn skip(
    bytes: &[u8],
    pos: usize,
    first: u8,
    depth: usize,
) -> Result<(JsonKind, usize), Error> {
    let shallow = if depth <= MAX_DEPTH - Shallow::LEVELS {
        skip_in(bytes, pos, first, Shallow::EMPTY)
    } else {
        Err(too_deep(pos))
    };
    shallow.or_else(|_| {
        let deep = Deep {
            bits: 0,
            level: 0,
            room: MAX_DEPTH.saturating_sub(depth),
        };
        skip_in(bytes, pos, first, deep)
    })
}

/// The containers open around a value being skipped, innermost last.
trait Nesting: Copy {
    /// With one more container, an object or an array; `None` if there is no room.
    fn open(self, object: bool) -> Option<Self>;
    /// Without the innermost container.
    fn close(self) -> Self;
    /// Whether the innermost container is an object.
    fn in_object(self) -> bool;
    /// Whether no container is open.
    fn outside(self) -> bool;
}

/// Up to [`Shallow::LEVELS`] containers as bits (1 for an object) below a marker bit.
#[derive(Debug, Clone, Copy)]
struct Shallow(u64);

impl Shallow {
    const LEVELS: usize = 63;
    const EMPTY: Self = Self(1);
}

impl Nesting for Shallow {
    #[inline(always)]
    fn open(self, object: bool) -> Option<Self> {
        (self.0 >> Self::LEVELS == 0).then_some(Self(self.0 << 1 | u64::from(object)))
    }
    #[inline(always)]
    fn close(self) -> Self {
        Self(self.0 >> 1)
    }
    #[inline(always)]
    fn in_object(self) -> bool {
        self.0 & 1 == 1
    }
    #[inline(always)]
    fn outside(self) -> bool {
        self.0 == 1
    }
}

/// Up to `room` containers (at most [`MAX_DEPTH`]) as bits, 1 for an object.
#[derive(Debug, Clone, Copy)]
struct Deep {
    bits: u128,
    level: usize,
    room: usize,
}

impl Nesting for Deep {
    fn open(self, object: bool) -> Option<Self> {
        (self.level < self.room).then_some(Self {
            bits: self.bits << 1 | u128::from(object),
            level: self.level + 1,
            room: self.room,
        })
    }
    fn close(self) -> Self {
        Self {
            bits: self.bits >> 1,
            level: self.level.saturating_sub(1),
            room: self.room,
        }
    }
    fn in_object(self) -> bool {
        self.bits & 1 == 1
    }
    fn outside(self) -> bool {
        self.level == 0
    }
}

/// [`skip`] with the bit stack `N`, empty at the start; fails for a value nested deeper
/// than `N` holds.
#[inline(always)]
fn skip_in<N: Nesting>(
    bytes: &[u8],
    pos: usize,
    first: u8,
    mut stack: N,
) -> Result<(JsonKind, usize), Error> {
    let kind = match first {
        b'{' => JsonKind::Object,
        b'[' => JsonKind::Array,
        _ => return scalar(bytes, pos, first),
    };
    let (mut pos, mut byte) = (pos, first);
    loop {
        // `byte`, at `pos`, starts a value.
        match byte {
            b'"' => pos = string(bytes, pos)?.end + 1,
            b'{' | b'[' => {
                let is_object = byte == b'{';
                stack = stack.open(is_object).ok_or_else(|| too_deep(pos))?;
                let close = byte + 2; // `}` or `]`
                let (next, inner) = space(bytes, pos + 1);
                if inner == close {
                    pos = next + 1;
                    stack = stack.close();
                } else {
                    (pos, byte) = if is_object {
                        member_key(bytes, next, inner)?.1
                    } else {
                        (next, inner)
                    };
                    continue;
                }
            }
            _ => pos = scalar(bytes, pos, byte)?.1,
        }
        // After a value: a comma, or the end of the innermost container.
        loop {
            if stack.outside() {
                return Ok((kind, pos));
            }
            let in_object = stack.in_object();
            if in_object && pair_at(bytes, pos) == Some(b",\"".as_slice()) {
                (pos, byte) = member_key(bytes, pos + 1, b'"')?.1;
                break;
            }
            let (next, separator) = space(bytes, pos);
            if separator == b',' {
                let (next, first) = space(bytes, next + 1);
                (pos, byte) = if in_object {
                    member_key(bytes, next, first)?.1
                } else {
                    (next, first)
                };
                break;
            }
            let close = if in_object { b'}' } else { b']' };
            if separator != close {
                let what = if in_object {
                    "expected `,` or `}`"
                } else {
                    "expected `,` or `]`"
                };
                return Err(error(next, what));
            }
            pos = next + 1;
            stack = stack.close();
        }
    }
}

/// The text of a JSON string's contents (escapes as written, already validated), unescaped.
/// A `\u` escape that is half of a surrogate pair without its other half becomes U+FFFD.
pub(crate) fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next() {
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let high = hex4(&mut chars);
                match high {
                    Some(high @ 0xd800..=0xdbff) => {
                        let rest = chars.as_str();
                        let low = rest.strip_prefix("\\u").and_then(|r| {
                            let mut r = r.chars();
                            hex4(&mut r).filter(|l| (0xdc00..=0xdfff).contains(l))
                        });
                        match low {
                            Some(low) => {
                                chars = rest.get(6..).unwrap_or_default().chars();
                                let code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                                char::from_u32(code).unwrap_or('\u{fffd}')
                            }
                            None => '\u{fffd}',
                        }
                    }
                    Some(code) => char::from_u32(code).unwrap_or('\u{fffd}'),
                    None => '\u{fffd}',
                }
            }
            Some(other) => other, // `"`, `\`, `/`
            None => break,
        };
        out.push(decoded);
    }
    Cow::Owned(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut code = 0;
    for _ in 0..4 {
        code = code * 16 + chars.next()?.to_digit(16)?;
    }
    Some(code)
}

/// Whether `text` is exactly one JSON value, by this scanner.
#[cfg(test)]
pub(crate) fn validate(text: &str) -> Result<JsonKind, Error> {
    let bytes = text.as_bytes();
    let (pos, first) = space(bytes, 0);
    let (kind, end) = skip(bytes, pos, first, 0)?;
    match space(bytes, end) {
        (end, _) if end == bytes.len() => Ok(kind),
        (at, _) => Err(error(at, "trailing characters")),
    }
}

/// The value of a JSON number's text: an integer if it has no fraction or exponent and fits 64
/// bits (accumulated digit by digit, the common case), else a float (`inf` beyond f64's range).
pub(crate) fn parse_number(text: &[u8]) -> Number {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // Up to 19 digits cannot overflow a u64.
    if digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        let value = digits
            .iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        let value = i128::from(value);
        return Number::Int(if negative { -value } else { value });
    }
    let float = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);
    Number::Float(float)
}

/// Reads the number at `at`: its value, as [`parse_number`] gives it, and the offset after it.
/// A plain integer, such as the usual timestamp, is read eight digits at a time as it is
/// scanned.
#[inline(always)]
pub(crate) fn read_number(bytes: &[u8], at: usize) -> Result<(Number, usize), Error> {
    let negative = bytes.get(at) == Some(&b'-');
    let start = at + usize::from(negative);
    let (count, value) = match leading_digits(bytes, start) {
        Some(digits) => digits,
        None => {
            // Near the end of the text, or 16 digits or more: one digit at a time.
            let mut pos = start;
            let mut value = 0u64;
            while let Some(&byte) = bytes.get(pos) {
                let digit = byte.wrapping_sub(b'0');
                if digit > 9 {
                    break;
                }
                value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
                pos += 1;
            }
            (pos - start, value)
        }
    };
    let pos = start + count;
    // Up to 19 digits cannot overflow a u64; a leading zero must stand alone.
    let plain = (1..=19).contains(&count)
        && (count == 1 || bytes.get(start) != Some(&b'0'))
        && !matches!(bytes.get(pos), Some(b'.' | b'e' | b'E'));
    if plain {
        let value = i128::from(value);
        return Ok((Number::Int(if negative { -value } else { value }), pos));
    }
    let end = number(bytes, at)?;
    Ok((parse_number(bytes.get(at..end).unwrap_or_default()), end))
}

#[cfg(test)]
mod tests;
