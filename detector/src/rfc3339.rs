//! An RFC 3339 timestamp to epoch milliseconds, cheaply: the form the transformer writes
//! (`YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`) is read by hand, with no allocation; anything else
//! (a lowercase `t` or `z`, a space for the `T`, a leap second, a date that does not exist, or
//! text that is not a timestamp at all) goes to chrono's RFC 3339 parser, so the result and the
//! error are exactly chrono's. Pure: no IO, no panic on any input.

/// `text`'s instant in epoch milliseconds (sub-millisecond digits truncated, as chrono's
/// `timestamp_millis` does), or chrono's reason it is not RFC 3339.
pub fn millis(text: &str) -> Result<i64, chrono::ParseError> {
    match fast(text.as_bytes()) {
        Some(millis) => Ok(millis),
        None => chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()),
    }
}

/// The fixed form, or `None` for anything else (the caller asks chrono).
fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut fraction_ms = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                fraction_ms = fraction_ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let taken = i - start;
        if taken == 0 {
            return None;
        }
        for _ in taken..3 {
            fraction_ms *= 10;
        }
    }
    let offset_s = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_s;
    Some(seconds * 1_000 + fraction_ms)
}

/// ASCII digits as a number; `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono(text: &str) -> Result<i64, String> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|err| err.to_string())
    }

    #[test]
    fn timestamps_read_as_chrono_reads_them() {
        let cases = [
            "2026-12-05T10:00:00Z",
            "2026-12-05T11:00:00.250+01:00",
            "2026-12-05T10:00:00.1Z",
            "2026-12-05T10:00:00.12Z",
            "2026-12-05T10:00:00.123456789Z",
            "2026-12-05T10:00:00.1234567891234Z",
            "2026-12-05T10:00:00.Z",
            "2026-12-05T10:00:00-05:30",
            "2026-12-05T10:00:00+23:59",
            "2026-12-05T10:00:00+24:00",
            "2026-12-05T10:00:00-00:00",
            "2026-12-05T10:00:00+0100",
            "2026-12-05t10:00:00z",
            "2026-12-05 10:00:00Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.500Z",
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-12-00T00:00:00Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T10:60:00Z",
            "1969-12-31T23:59:59.999Z",
            "1900-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999-23:59",
            "2026-12-05T10:00:00",
            "2026-12-05T10:00:00Zjunk",
            "2026-12-05T10:00:00+01:00 ",
            "+2026-12-05T10:00:00Z",
            "２026-12-05T10:00:00Z",
            "yesterday",
            "",
        ];
        for text in cases {
            assert_eq!(
                millis(text).map_err(|err| err.to_string()),
                chrono(text),
                "{text}"
            );
        }
        assert_eq!(millis("2026-12-05T10:00:00Z"), Ok(1_796_464_800_000));
        assert!(fast(b"2026-12-05T11:00:00.250+01:00").is_some());
    }

    #[test]
    fn generated_timestamps_read_as_chrono_reads_them() {
        // SplitMix64: the same timestamps every run.
        let mut state = 0x5eed_u64;
        let mut next = |bound: u64| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % bound
        };
        let mut fast_path = 0;
        for _ in 0..200_000 {
            let year = match next(4) {
                0 => next(10_000),
                _ => 1_960 + next(100),
            };
            let separator = ["T", "T", "T", "t", " "][next(5) as usize];
            let fraction = match next(4) {
                0 => String::new(),
                _ => {
                    let digits = next(13) as usize;
                    let text: String = (0..digits)
                        .map(|_| char::from(b'0' + next(10) as u8))
                        .collect();
                    format!(".{text}")
                }
            };
            let offset = match next(6) {
                0 | 1 => "Z".to_owned(),
                2 => "z".to_owned(),
                sign => format!(
                    "{}{:02}:{:02}",
                    if sign == 3 { '-' } else { '+' },
                    next(26),
                    next(62)
                ),
            };
            let text = format!(
                "{year:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}{fraction}{offset}",
                next(14),
                next(33),
                next(25),
                next(61),
                next(62),
            );
            if fast(text.as_bytes()).is_some() {
                fast_path += 1;
            }
            assert_eq!(
                millis(&text).map_err(|err| err.to_string()),
                chrono(&text),
                "{text}"
            );
        }
        // Most generated timestamps take the fast path: the comparison tests it, not chrono.
        assert!(fast_path > 50_000, "{fast_path}");
    }
}
