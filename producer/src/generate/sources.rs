//! Records of the real sources (AWS WAF, CloudTrail, syslog, CloudWatch Logs, Splunk HEC), one
//! module per source, behind one [`SourceGenerator`].
//!
//! Each source generator draws normal traffic from a weighted mix of realistic record kinds (a
//! few of which raise an indicator now and then, so every detector has a non-flat baseline),
//! and, in an anomaly phase, makes [`INJECT_SHARE`] of the records ones that raise the injected
//! indicator (named as in [`crate::indicators`]; the rest stay normal). Randomness comes from
//! the same seeded streams as the seed's generator, so output is reproducible.
//!
//! A [`SourceRecord`] holds the record twice: as its sender sends it (`line`: a WAF or
//! CloudTrail record, a syslog line, a CloudWatch Logs event, a HEC event envelope) and as
//! `logwarden-ingest` writes it to `raw` (`raw`: the same bytes, except for syslog, which the
//! receiver parses into fields).

use std::fmt::Write as _;

use pipeline::wire::Source;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::InvalidInstance;
use super::{cloudtrail, cloudwatch, splunk, syslog, waf};
use crate::rng::{Stream, seeded_rng};

/// The share of an anomaly phase's records that raise the injected indicator.
pub const INJECT_SHARE: f64 = 0.5;

/// One generated record of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Unique within a run: the Kafka key, and what a test finds the record by (WAF
    /// `httpRequest.requestId`, CloudTrail `eventID`, syslog `procid`, CloudWatch `id`, HEC
    /// `event.trace_id`).
    pub key: String,
    /// The record as its sender sends it, one line (no newline).
    pub line: String,
    /// The record as `logwarden-ingest` writes it to `raw`.
    pub raw: Vec<u8>,
    /// The indicators this record raises, as the preset's rules should find them (a test's
    /// oracle, written from each format's documentation).
    pub indicators: Vec<&'static str>,
}

/// The generator of one source.
#[derive(Debug, Clone)]
pub enum SourceGenerator {
    /// AWS WAF.
    Waf(waf::Waf),
    /// CloudTrail.
    Cloudtrail(cloudtrail::CloudTrail),
    /// Syslog.
    Syslog(syslog::Syslog),
    /// CloudWatch Logs.
    Cloudwatch(cloudwatch::CloudWatch),
    /// Splunk HEC.
    Splunk(splunk::Splunk),
}

/// A source the producer has no generator for (`ndjson`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the producer has no generator for source `{0}`: choose waf, cloudtrail, syslog, cloudwatch \
     or splunk"
)]
pub struct NoGenerator(pub Source);

/// Why a source generator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The instance id.
    #[error(transparent)]
    Instance(#[from] InvalidInstance),
    /// The source.
    #[error(transparent)]
    Source(#[from] NoGenerator),
}

impl SourceGenerator {
    /// A generator of `source` for producer instance `instance` in run `run_id`, seeded with
    /// `seed` (the same rules as [`super::Generator::new`]).
    pub fn new(
        source: Source,
        seed: u64,
        instance: &str,
        run_id: &str,
    ) -> Result<Self, SourceError> {
        if instance.is_empty() || instance.contains('/') {
            return Err(InvalidInstance(instance.to_owned()).into());
        }
        let common = Common {
            rng: seeded_rng(seed, Stream::Records, instance),
            prefix: format!("{run_id}/{instance}/"),
            generated: 0,
        };
        Ok(match source {
            Source::Waf => Self::Waf(waf::Waf::new(common)),
            Source::Cloudtrail => Self::Cloudtrail(cloudtrail::CloudTrail::new(common)),
            Source::Syslog => Self::Syslog(syslog::Syslog::new(common)),
            Source::Cloudwatch => Self::Cloudwatch(cloudwatch::CloudWatch::new(common)),
            Source::Splunk => Self::Splunk(splunk::Splunk::new(common)),
            Source::Ndjson => return Err(NoGenerator(source).into()),
        })
    }

    /// The source it generates.
    pub fn source(&self) -> Source {
        match self {
            Self::Waf(_) => Source::Waf,
            Self::Cloudtrail(_) => Source::Cloudtrail,
            Self::Syslog(_) => Source::Syslog,
            Self::Cloudwatch(_) => Source::Cloudwatch,
            Self::Splunk(_) => Source::Splunk,
        }
    }

    /// The next record, at `timestamp_ms`, raising `inject` (one of the source's indicators in
    /// [`crate::indicators`]) with probability [`INJECT_SHARE`]; normal otherwise.
    pub fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        match self {
            Self::Waf(g) => g.next(timestamp_ms, inject),
            Self::Cloudtrail(g) => g.next(timestamp_ms, inject),
            Self::Syslog(g) => g.next(timestamp_ms, inject),
            Self::Cloudwatch(g) => g.next(timestamp_ms, inject),
            Self::Splunk(g) => g.next(timestamp_ms, inject),
        }
    }
}

/// What every source generator holds: its random stream and its record counter.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    /// The record stream, keyed by seed and instance.
    pub rng: ChaCha8Rng,
    /// `{run_id}/{instance}/`, the start of every key.
    pub prefix: String,
    /// Records generated so far.
    pub generated: u64,
}

impl Common {
    /// The next unique key, `{run_id}/{instance}/{counter as 16 hex digits}`, as the seed's
    /// request ids.
    pub fn key(&mut self) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 16);
        key.push_str(&self.prefix);
        let _ = write!(key, "{:016x}", self.generated);
        self.generated += 1;
        key
    }

    /// Whether this record of an anomaly phase raises the injected indicator.
    pub fn injects<'a>(&mut self, inject: Option<&'a str>) -> Option<&'a str> {
        // Always draw, so a record consumes the same randomness in either mode.
        let roll = self.rng.random_bool(INJECT_SHARE);
        inject.filter(|_| roll)
    }

    /// One of `items`, by weight.
    pub fn pick<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for (item, weight) in items {
            if roll < *weight {
                return item;
            }
            roll -= weight;
        }
        &items[items.len() - 1].0
    }

    /// One of `items`, uniformly.
    pub fn one<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// A random integer in `range`.
    pub fn int(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.rng.random_range(range)
    }

    /// A random version-4 UUID (lowercase, hyphenated), as AWS request and event ids are.
    pub fn uuid(&mut self) -> String {
        let bits: u128 = self.rng.random();
        let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let hex = format!("{bits:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    /// A public-looking IPv4 address from documentation and cloud ranges.
    pub fn public_ip(&mut self) -> String {
        const PREFIXES: &[&str] = &[
            "198.51.100",
            "203.0.113",
            "192.0.2",
            "52.94.76",
            "34.201.12",
        ];
        format!("{}.{}", self.one(PREFIXES), self.int(1..255))
    }
}

/// RFC 3339 in UTC with milliseconds (`2026-12-05T09:21:06.123Z`).
pub(crate) fn rfc3339_ms(timestamp_ms: i64) -> String {
    utc(timestamp_ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// RFC 3339 in UTC to the second (`2026-12-05T09:21:06Z`), as CloudTrail's `eventTime`.
pub(crate) fn rfc3339_s(timestamp_ms: i64) -> String {
    utc(timestamp_ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The time `timestamp_ms` in UTC (the epoch when out of range).
pub(crate) fn utc(timestamp_ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::indicators;

    pub const T0: i64 = 1_764_926_466_123;

    /// `n` records of `source` with `inject`, seed 7.
    pub fn records(source: Source, n: i64, inject: Option<&str>) -> Vec<SourceRecord> {
        let mut generator = SourceGenerator::new(source, 7, "producer-0", "run-1").expect("valid");
        (0..n)
            .map(|i| generator.next(T0 + i * 50, inject))
            .collect()
    }

    /// How many of `records` raise each indicator.
    pub fn tally(records: &[SourceRecord]) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for record in records {
            for indicator in &record.indicators {
                *counts.entry(*indicator).or_default() += 1;
            }
        }
        counts
    }

    #[test]
    fn every_source_is_reproducible_keyed_uniquely_and_one_line() {
        for source in indicators::GENERATED {
            let a = records(source, 2_000, None);
            assert_eq!(a, records(source, 2_000, None), "{source}");
            let keys: HashSet<&str> = a.iter().map(|r| r.key.as_str()).collect();
            assert_eq!(keys.len(), a.len(), "{source}: keys are unique");
            for record in &a {
                assert!(!record.line.contains('\n'), "{source}: {}", record.line);
                let raw: serde_json::Value =
                    serde_json::from_slice(&record.raw).expect("raw is JSON");
                assert!(raw.is_object(), "{source}: {raw}");
            }
        }
    }

    #[test]
    fn normal_traffic_raises_indicators_rarely_and_injection_raises_its_own_often() {
        for source in indicators::GENERATED {
            let normal = tally(&records(source, 4_000, None));
            for indicator in indicators::of(source) {
                let n = normal.get(indicator).copied().unwrap_or(0);
                assert!(
                    n < 4_000 / 25,
                    "{source}: {indicator} in {n} of 4000 normal records"
                );
                let injected = tally(&records(source, 4_000, Some(indicator)));
                let m = injected.get(indicator).copied().unwrap_or(0);
                assert!(
                    m > 1_600 && m > 10 * n.max(1),
                    "{source}: {indicator} in {m} of 4000 injected records (normal {n})"
                );
            }
            for indicator in normal.keys() {
                assert!(
                    indicators::of(source).contains(indicator),
                    "{source}: raises {indicator}, not one of its own"
                );
            }
        }
    }

    #[test]
    fn ndjson_and_bad_instances_have_no_generator() {
        let error = SourceGenerator::new(Source::Ndjson, 1, "p", "r").expect_err("no generator");
        assert!(
            error
                .to_string()
                .contains("no generator for source `ndjson`"),
            "{error}"
        );
        assert!(SourceGenerator::new(Source::Waf, 1, "a/b", "r").is_err());
    }

    #[test]
    fn uuids_are_version_4() {
        let mut generator = SourceGenerator::new(Source::Cloudtrail, 1, "p", "r").expect("valid");
        let SourceGenerator::Cloudtrail(ct) = &mut generator else {
            unreachable!()
        };
        let id = ct.common.uuid();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert!("89ab".contains(&id[19..20]), "{id}");
    }
}
