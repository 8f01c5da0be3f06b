//! What a latency run recorded per record, and the table made from it.
//!
//! Pure: the run (`latency::observe`) fills in one [`Timeline`] per record with times measured
//! from one monotonic start; this module turns them into nearest-rank percentiles per stage. Kept
//! apart from the IO so that the arithmetic a reader takes on trust is tested on its own.

use std::time::Duration;

/// When one record passed each point, measured from the run's start. `None`: never seen there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Handed to the producer; its event time (the record's `timestamp`) is this instant.
    pub sent: Duration,
    /// The broker acknowledged it (`acks=all`).
    pub acked: Option<Duration>,
    /// Its enriched record reached a `read_committed` consumer of `enriched`.
    pub enriched: Option<Duration>,
    /// A `_search` on the events alias first returned its document.
    pub searchable: Option<Duration>,
}

/// One row of the table: a span between two points of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// What the row measures, e.g. `end to end (sent → searchable)`.
    pub name: &'static str,
    /// How many records had both points.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The slowest record.
    pub max: Duration,
}

/// A point of the timeline.
type Point = fn(&Timeline) -> Option<Duration>;

/// The rows the run prints: each stage alone, then the two cumulative spans.
const SPANS: [(&str, Point, Point); 5] = [
    ("produce ack (sent → acked)", |t| Some(t.sent), |t| t.acked),
    (
        "transformer (acked → enriched)",
        |t| t.acked,
        |t| t.enriched,
    ),
    (
        "sink + refresh (enriched → searchable)",
        |t| t.enriched,
        |t| t.searchable,
    ),
    (
        "to enriched (sent → enriched)",
        |t| Some(t.sent),
        |t| t.enriched,
    ),
    (
        "end to end (sent → searchable)",
        |t| Some(t.sent),
        |t| t.searchable,
    ),
];

/// The nearest-rank percentile `per_mille`/1000 of `sorted` (ascending): the smallest value with
/// at least that share of values at or below it. `None` for no values.
pub fn percentile(sorted: &[Duration], per_mille: usize) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (per_mille.min(1000) * n).div_ceil(1000).max(1);
    sorted.get(rank - 1).copied()
}

/// The table for the records sent at or after `warmup` (earlier ones pay for start-up: the
/// index being created, connections being opened). A span that ends before it starts (clocks
/// are one monotonic clock, so only an observer's lag can cause it) counts as zero.
pub fn spans(records: &[Timeline], warmup: Duration) -> Vec<Span> {
    let measured: Vec<&Timeline> = records.iter().filter(|t| t.sent >= warmup).collect();
    SPANS
        .iter()
        .filter_map(|(name, from, to)| {
            let mut values: Vec<Duration> = measured
                .iter()
                .filter_map(|t| Some(to(t)?.saturating_sub(from(t)?)))
                .collect();
            values.sort_unstable();
            Some(Span {
                name,
                count: values.len(),
                p50: percentile(&values, 500)?,
                p90: percentile(&values, 900)?,
                p99: percentile(&values, 990)?,
                max: *values.last()?,
            })
        })
        .collect()
}

/// How many of the records sent at or after `warmup` never reached each point:
/// `(measured, not acked, not enriched, not searchable)`.
pub fn missing(records: &[Timeline], warmup: Duration) -> (usize, usize, usize, usize) {
    let measured: Vec<&Timeline> = records.iter().filter(|t| t.sent >= warmup).collect();
    let count = |point: Point| measured.iter().filter(|t| point(t).is_none()).count();
    (
        measured.len(),
        count(|t| t.acked),
        count(|t| t.enriched),
        count(|t| t.searchable),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<Duration> = (1..=100).map(ms).collect();
        let cases: [(&[Duration], usize, Option<Duration>); 9] = [
            (&[], 500, None),
            (&[ms(7)], 0, Some(ms(7))),
            (&[ms(7)], 990, Some(ms(7))),
            (&hundred, 500, Some(ms(50))),
            (&hundred, 900, Some(ms(90))),
            (&hundred, 990, Some(ms(99))),
            (&hundred, 1000, Some(ms(100))),
            (&hundred[..10], 990, Some(ms(10))),
            (&hundred[..3], 500, Some(ms(2))),
        ];
        for (values, per_mille, expected) in cases {
            assert_eq!(
                percentile(values, per_mille),
                expected,
                "p{per_mille}/1000 of {} values",
                values.len()
            );
        }
    }

    #[test]
    fn spans_skip_the_warmup_and_records_missing_a_point() {
        let record = |sent, acked, enriched: Option<u64>, searchable: Option<u64>| Timeline {
            sent: ms(sent),
            acked: Some(ms(acked)),
            enriched: enriched.map(ms),
            searchable: searchable.map(ms),
        };
        let records = [
            // Warm-up: would dominate every percentile if counted.
            record(0, 900, Some(5_000), Some(9_000)),
            record(1_000, 1_002, Some(1_010), Some(1_500)),
            record(1_001, 1_004, Some(1_020), Some(2_001)),
            // Never searchable: counted in the first rows only.
            record(1_002, 1_003, Some(1_030), None),
        ];
        let table = spans(&records, ms(1_000));
        let row = |name: &str| *table.iter().find(|s| s.name.starts_with(name)).unwrap();
        let produce = row("produce ack");
        assert_eq!((produce.count, produce.p50, produce.max), (3, ms(2), ms(3)));
        let transformer = row("transformer");
        assert_eq!(
            (transformer.count, transformer.p50, transformer.max),
            (3, ms(16), ms(27))
        );
        let end_to_end = row("end to end");
        assert_eq!(
            (end_to_end.count, end_to_end.p50, end_to_end.p99),
            (2, ms(500), ms(1_000))
        );
        assert_eq!(missing(&records, ms(1_000)), (3, 0, 0, 1));
    }

    #[test]
    fn a_point_seen_before_the_previous_one_counts_as_zero() {
        let records = [Timeline {
            sent: ms(10),
            acked: Some(ms(30)),
            enriched: Some(ms(25)),
            searchable: None,
        }];
        let table = spans(&records, Duration::ZERO);
        assert_eq!(table[1].name, "transformer (acked → enriched)");
        assert_eq!(table[1].max, Duration::ZERO);
        // No searchable point: its rows are left out rather than printed as zeros.
        assert_eq!(table.len(), 3);
    }
}
