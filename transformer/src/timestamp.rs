//! Event time: reading the record's `timestamp` number and writing `@timestamp` as RFC 3339.
//!
//! Real AWS WAF logs carry `timestamp` as integer epoch milliseconds; the seed's generator wrote
//! fractional epoch seconds (`1669682102.123015`), which is why its dashboards showed 1970. Both
//! are accepted, told apart by magnitude alone, because the two readings of one number can never
//! both be plausible: a number whose absolute value is below [`SECONDS_BELOW`] (10^11) is read as
//! seconds, any other as milliseconds. 10^11 seconds is the year 5138 and 10^11 milliseconds is
//! 1973-03-03, both outside the accepted range [2000-01-01, 2100-01-01), so no timestamp that
//! passes the range check could have meant the other unit.
//!
//! Fractional seconds are first rounded to the nearest microsecond (which undoes binary
//! floating-point noise such as `1669682102.123` being stored as `…102.12299999`), then
//! truncated to the millisecond; fractional milliseconds are truncated. Everything here is
//! arithmetic on integers and floats: no allocation, no clock, no time-zone database, so it is
//! cheap enough to run on every record.

use std::fmt;

/// Numbers whose absolute value is below this are epoch seconds; others are epoch milliseconds.
pub const SECONDS_BELOW: f64 = 1e11;

/// The earliest accepted event time, 2000-01-01T00:00:00Z, in epoch milliseconds (inclusive).
pub const MIN_EPOCH_MS: i64 = 946_684_800_000;

/// The end of the accepted event times, 2100-01-01T00:00:00Z, in epoch milliseconds
/// (exclusive).
pub const MAX_EPOCH_MS: i64 = 4_102_444_800_000;

/// The length of a timestamp written by [`write_rfc3339_millis`]: `2026-11-23T10:00:00.123Z`.
pub const RFC3339_MILLIS_LEN: usize = 24;

/// A `timestamp` value as JSON gave it: an integer, or a number with a fraction or exponent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EpochNumber {
    /// An integer (JSON numbers without fraction or exponent that fit 64 bits).
    Int(i128),
    /// Any other number.
    Float(f64),
}

impl fmt::Display for EpochNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Int(value) => write!(f, "{value}"),
            // Rust prints 1e300 with all its 301 digits; keep huge and tiny values readable.
            Self::Float(value) if value != 0.0 && !(1e-4..1e16).contains(&value.abs()) => {
                write!(f, "{value:e}")
            }
            Self::Float(value) => write!(f, "{value}"),
        }
    }
}

/// Which unit a number was read in, by the magnitude rule in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// Epoch seconds (absolute value below 10^11).
    Seconds,
    /// Epoch milliseconds.
    Milliseconds,
}

impl fmt::Display for EpochUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Seconds => "epoch seconds",
            Self::Milliseconds => "epoch milliseconds",
        })
    }
}

/// Why a `timestamp` cannot be an event time. Its message is the dead letter's detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimestampError {
    /// The record has no `timestamp`, or it is `null`.
    #[error("timestamp is missing; expected epoch milliseconds or seconds as a JSON number")]
    Missing,
    /// `timestamp` is not a JSON number; the field holds the JSON kind (`a string`, ...).
    #[error("timestamp is {0}; expected epoch milliseconds or seconds as a JSON number")]
    NotANumber(&'static str),
    /// NaN or infinite (impossible in JSON, possible through the API).
    #[error("timestamp {0} is not a finite number")]
    NotFinite(f64),
    /// Before 2000-01-01.
    #[error("timestamp {value} is before 2000-01-01 (read as {unit})")]
    TooEarly {
        /// The value given.
        value: EpochNumber,
        /// How it was read.
        unit: EpochUnit,
    },
    /// On or after 2100-01-01.
    #[error("timestamp {value} is after 2100-01-01 (read as {unit})")]
    TooLate {
        /// The value given.
        value: EpochNumber,
        /// How it was read.
        unit: EpochUnit,
    },
}

/// The event time of a `timestamp` number, in epoch milliseconds, by the rules in the module
/// docs: seconds or milliseconds by magnitude, within [2000-01-01, 2100-01-01).
pub fn epoch_millis(value: EpochNumber) -> Result<i64, TimestampError> {
    let (unit, millis) = match value {
        EpochNumber::Int(int) => {
            if (int.unsigned_abs() as f64) < SECONDS_BELOW {
                // |int| < 10^11, so the product fits easily in i128.
                (EpochUnit::Seconds, int * 1000)
            } else {
                (EpochUnit::Milliseconds, int)
            }
        }
        EpochNumber::Float(float) => {
            if !float.is_finite() {
                return Err(TimestampError::NotFinite(float));
            }
            if float.abs() < SECONDS_BELOW {
                // Below 10^17 microseconds: exact in f64's integer range after rounding.
                let micros = (float * 1e6).round();
                (EpochUnit::Seconds, (micros as i128).div_euclid(1000))
            } else {
                // `as` saturates, and saturated values are far outside the range below.
                (EpochUnit::Milliseconds, float.floor() as i128)
            }
        }
    };
    if millis < i128::from(MIN_EPOCH_MS) {
        Err(TimestampError::TooEarly { value, unit })
    } else if millis >= i128::from(MAX_EPOCH_MS) {
        Err(TimestampError::TooLate { value, unit })
    } else {
        // In range, hence within i64.
        i64::try_from(millis).map_err(|_| TimestampError::TooLate { value, unit })
    }
}

/// The event time a string gives, in epoch milliseconds: an RFC 3339 time
/// (`2026-12-05T06:00:00.123Z`, `2026-12-05T07:00:00+01:00`), or an epoch number written as
/// text (`"1700000000.5"`, read by the magnitude rule like a number). For sections whose rules
/// read string timestamps; the error is what is wrong, to follow the field and its value.
pub fn text_millis(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    let numeric = trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && !trimmed.contains(['T', 't', ':']);
    let millis = if numeric {
        let number = match trimmed.parse::<i128>() {
            Ok(int) => EpochNumber::Int(int),
            Err(_) => {
                EpochNumber::Float(trimmed.parse::<f64>().map_err(|_| NOT_A_TIME.to_owned())?)
            }
        };
        return epoch_millis(number).map_err(|error| match error {
            TimestampError::TooEarly { unit, .. } => {
                format!("is before 2000-01-01 (read as {unit})")
            }
            TimestampError::TooLate { unit, .. } => {
                format!("is after 2100-01-01 (read as {unit})")
            }
            _ => NOT_A_TIME.to_owned(),
        });
    } else {
        chrono::DateTime::parse_from_rfc3339(trimmed)
            .map_err(|_| NOT_A_TIME.to_owned())?
            .timestamp_millis()
    };
    if millis < MIN_EPOCH_MS {
        Err("is before 2000-01-01".to_owned())
    } else if millis >= MAX_EPOCH_MS {
        Err("is after 2100-01-01".to_owned())
    } else {
        Ok(millis)
    }
}

/// What [`text_millis`] says of a string that is no time.
const NOT_A_TIME: &str = "is not an RFC 3339 time or an epoch number";

/// Appends `millis` (epoch milliseconds, UTC) to `out` as RFC 3339 with milliseconds, e.g.
/// `2026-11-23T10:00:00.123Z`: always [`RFC3339_MILLIS_LEN`] bytes for years 0 to 9999.
///
/// Years outside 0..=9999 are clamped to those bounds' digits rather than widened, so the output
/// length never changes; [`epoch_millis`] only yields years 2000 to 2099.
pub fn write_rfc3339_millis(millis: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(&rfc3339_millis(millis));
}

/// The text [`write_rfc3339_millis`] writes, on the stack.
pub(crate) fn rfc3339_millis(millis: i64) -> [u8; RFC3339_MILLIS_LEN] {
    let (year, month, day) = civil_from_days(millis.div_euclid(86_400_000));
    // In [0, 86_400_000), so it fits a u32.
    let ms_of_day = millis.rem_euclid(86_400_000) as u32;
    let year = year.clamp(0, 9999) as u32;
    let seconds_of_day = ms_of_day / 1000;
    let ms = ms_of_day % 1000;
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    put_pair(&mut buf, 0, year / 100);
    put_pair(&mut buf, 2, year % 100);
    put_pair(&mut buf, 5, month);
    put_pair(&mut buf, 8, day);
    put_pair(&mut buf, 11, seconds_of_day / 3600);
    put_pair(&mut buf, 14, seconds_of_day / 60 % 60);
    put_pair(&mut buf, 17, seconds_of_day % 60);
    put_pair(&mut buf, 20, ms / 10);
    put_pair(&mut buf, 22, ms % 10 * 10); // the second digit is overwritten by the `Z` below
    buf[23] = b'Z';
    buf
}

/// "00" to "99", so two digits cost one lookup.
pub(crate) const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                               2021222324252627282930313233343536373839\
                                               4041424344454647484950515253545556575859\
                                               6061626364656667686970717273747576777879\
                                               8081828384858687888990919293949596979899";

/// Writes the two decimal digits of `value % 100` at `at` in `buf`.
#[inline]
fn put_pair(buf: &mut [u8], at: usize, value: u32) {
    let pair = (value % 100) as usize * 2;
    if let (Some(slot), Some(digits)) = (buf.get_mut(at..at + 2), DIGIT_PAIRS.get(pair..pair + 2)) {
        slot.copy_from_slice(digits);
    }
}

/// Eras of 400 years (146,097 days each) added before the computation so that every day count
/// [`civil_from_days`] can be given (any `i64` milliseconds, divided into days) is positive,
/// and taken off the year after: the calendar repeats every era.
const SHIFT_ERAS: u64 = 1_000_000;

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01, for any day
/// count within ±(2^63 / 86,400,000) (every `i64` of milliseconds): Neri and Schneider's
/// Euclidean affine functions ("Euclidean affine functions and their application to calendar
/// algorithms", 2022) in unsigned arithmetic, which costs multiplications and shifts instead of
/// signed divisions. A test checks it against chrono.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Days since 0000-03-01, SHIFT_ERAS eras earlier, in which a year starts in March so the
    // leap day ends it. |days| < 1.1e11 and the shift is 1.5e11, so `n` is positive and
    // `4 * n + 3` stays far below 2^64.
    let n = days.wrapping_add_unsigned(719_468 + SHIFT_ERAS * 146_097) as u64;
    let n1 = 4 * n + 3;
    let century = n1 / 146_097;
    let day_of_century = (n1 % 146_097 / 4) as u32;
    let n2 = 4 * day_of_century + 3;
    let p2 = 2_939_745 * u64::from(n2);
    let year_of_century = (p2 >> 32) as u32;
    let day_of_year = (p2 as u32) / 2_939_745 / 4; // [0, 365], from March 1
    let n3 = 2141 * day_of_year + 197_913;
    let month = n3 >> 16; // [3, 14], March-based
    let day = (n3 & 0xffff) / 2141 + 1;
    let january_or_february = day_of_year >= 306;
    let year = (100 * century) as i64 - (400 * SHIFT_ERAS) as i64
        + i64::from(year_of_century)
        + i64::from(january_or_february);
    let month = if january_or_february {
        month - 12
    } else {
        month
    };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(millis: i64) -> String {
        let mut out = Vec::new();
        write_rfc3339_millis(millis, &mut out);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn formats_known_instants() {
        let table = [
            (0, "1970-01-01T00:00:00.000Z"),
            (MIN_EPOCH_MS, "2000-01-01T00:00:00.000Z"),
            (MAX_EPOCH_MS - 1, "2099-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"), // leap day of a 400-year leap year
            (1_576_280_412_771, "2019-12-13T23:40:12.771Z"),
            (1_669_682_102_123, "2022-11-29T00:35:02.123Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
            (1_795_428_000_123, "2026-11-23T10:00:00.123Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"), // 2100 is not a leap year
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "9999-01-01T00:00:00.000Z"), // 10000: the year is clamped
            (-62_167_219_200_001, "0000-12-31T23:59:59.999Z"), // -1: the year is clamped
        ];
        for (millis, expected) in table {
            assert_eq!(rfc3339(millis), expected, "{millis}");
            assert_eq!(expected.len(), RFC3339_MILLIS_LEN);
        }
    }

    /// chrono's (year, month, day) of a day count since 1970-01-01 (within its ±262,000 years).
    fn chrono_civil(days: i64) -> (i64, u32, u32) {
        use chrono::Datelike;
        let date = chrono::NaiveDate::from_num_days_from_ce_opt(
            i32::try_from(days + 719_163).expect("within chrono's range"),
        )
        .expect("within chrono's range");
        (i64::from(date.year()), date.month(), date.day())
    }

    #[test]
    fn every_day_of_the_accepted_range_is_chronos_date() {
        let first = MIN_EPOCH_MS / 86_400_000;
        let end = MAX_EPOCH_MS / 86_400_000;
        assert_eq!((first, end), (10_957, 47_482));
        for day in first..end {
            assert_eq!(civil_from_days(day), chrono_civil(day), "day {day}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_calendar_agrees_with_chrono(day in -95_000_000i64..95_000_000) {
            proptest::prop_assert_eq!(civil_from_days(day), chrono_civil(day));
        }

        #[test]
        fn the_calendar_repeats_every_400_years_over_all_of_i64_millis(
            millis in i64::MIN + 146_097 * 86_400_000..=i64::MAX,
        ) {
            let day = millis.div_euclid(86_400_000);
            let (year, month, date) = civil_from_days(day);
            let (earlier, month_before, date_before) = civil_from_days(day - 146_097);
            proptest::prop_assert_eq!((earlier + 400, month_before, date_before), (year, month, date));
            proptest::prop_assert!((1..=12).contains(&month) && (1..=31).contains(&date));
        }

        #[test]
        fn accepted_instants_are_written_as_chrono_writes_them(
            millis in MIN_EPOCH_MS..MAX_EPOCH_MS,
        ) {
            let expected = chrono::DateTime::from_timestamp_millis(millis)
                .expect("in range")
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            proptest::prop_assert_eq!(rfc3339(millis), expected);
        }
    }

    #[test]
    fn reads_every_timestamp_form() {
        let ok = [
            (EpochNumber::Int(1_700_000_000_000), 1_700_000_000_000), // int ms
            (EpochNumber::Int(1_700_000_000), 1_700_000_000_000),     // int s
            (EpochNumber::Float(1_669_682_102.123_015), 1_669_682_102_123), // the seed's form
            (EpochNumber::Float(1_669_682_102.123), 1_669_682_102_123), // binary noise undone
            (
                EpochNumber::Float(1_669_682_102.999_999_9),
                1_669_682_103_000,
            ), // rounds to µs
            (EpochNumber::Float(1_700_000_000_000.9), 1_700_000_000_000), // fractional ms
            (EpochNumber::Float(1.7e12), 1_700_000_000_000),          // exponent form
            (EpochNumber::Int(i128::from(MIN_EPOCH_MS)), MIN_EPOCH_MS),
            (EpochNumber::Int(946_684_800), MIN_EPOCH_MS),
            (
                EpochNumber::Int(i128::from(MAX_EPOCH_MS) - 1),
                MAX_EPOCH_MS - 1,
            ),
        ];
        for (value, expected) in ok {
            assert_eq!(epoch_millis(value), Ok(expected), "{value:?}");
        }
    }

    #[test]
    fn rejects_impossible_timestamps_with_a_reason() {
        let bad = [
            (
                EpochNumber::Int(0),
                "timestamp 0 is before 2000-01-01 (read as epoch seconds)",
            ),
            (
                EpochNumber::Int(-5),
                "timestamp -5 is before 2000-01-01 (read as epoch seconds)",
            ),
            (
                EpochNumber::Int(946_684_799),
                "timestamp 946684799 is before 2000-01-01 (read as epoch seconds)",
            ),
            (
                EpochNumber::Int(i128::from(MAX_EPOCH_MS)),
                "timestamp 4102444800000 is after 2100-01-01 (read as epoch milliseconds)",
            ),
            (
                EpochNumber::Int(5_000_000_000),
                "timestamp 5000000000 is after 2100-01-01 (read as epoch seconds)",
            ),
            (
                EpochNumber::Int(i128::from(u64::MAX)),
                "timestamp 18446744073709551615 is after 2100-01-01 (read as epoch milliseconds)",
            ),
            (
                EpochNumber::Float(1e300),
                "timestamp 1e300 is after 2100-01-01 (read as epoch milliseconds)",
            ),
            (
                EpochNumber::Float(-1e300),
                "timestamp -1e300 is before 2000-01-01 (read as epoch milliseconds)",
            ),
            (
                EpochNumber::Float(946_684_799.999),
                "timestamp 946684799.999 is before 2000-01-01 (read as epoch seconds)",
            ),
            (
                EpochNumber::Float(f64::NAN),
                "timestamp NaN is not a finite number",
            ),
            (
                EpochNumber::Float(f64::INFINITY),
                "timestamp inf is not a finite number",
            ),
        ];
        for (value, message) in bad {
            let error = epoch_millis(value).expect_err("impossible");
            assert_eq!(error.to_string(), message, "{value:?}");
        }
    }
}
