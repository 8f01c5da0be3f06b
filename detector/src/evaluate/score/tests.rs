use super::*;

const MINUTE: i64 = 60_000;

fn phase(start_minute: i64, end_minute: i64) -> Phase {
    Phase {
        run_id: "r".into(),
        phase: 0,
        field: "country".into(),
        start_ms: start_minute * MINUTE,
        end_ms: end_minute * MINUTE,
        intensity: None,
        traffic: None,
        entity: None,
    }
}

fn minutes(flags: &[i64]) -> Vec<(i64, i64)> {
    flags
        .iter()
        .map(|&m| (m * MINUTE, (m + 1) * MINUTE))
        .collect()
}

struct Case {
    name: &'static str,
    flagged: Vec<i64>,
    phases: Vec<(i64, i64)>,
    span: Vec<(i64, i64)>,
    deliveries: Vec<(i64, i64)>,
    /// flagged, true flags, detected, episodes, false alerts, normal minutes
    counts: (usize, usize, usize, usize, usize, i64),
    precision: Option<f64>,
    recall: Option<f64>,
    false_per_hour: Option<f64>,
    /// Median TTD to the interval's end and to delivery, in seconds.
    ttd: (Option<i64>, Option<i64>),
}

#[test]
fn scores_over_the_whole_span() {
    let cases = [
        Case {
            name: "two phases, the second missed; a flag far away is false",
            // Phase 10..15 flagged at 11, 12 and its tail 15 (two episodes); a lone flag at
            // 50 (a third, false); the span (normal and anomaly labels) is 0..60.
            flagged: vec![11, 12, 15, 50],
            phases: vec![(10, 15), (30, 33)],
            span: vec![(0, 60)],
            deliveries: vec![],
            counts: (4, 3, 1, 3, 1, 60 - 5 - 3),
            precision: Some(0.75),
            recall: Some(0.5),
            false_per_hour: Some(60.0 / 52.0),
            ttd: (Some(120), None),
        },
        Case {
            name: "flags far from any phase, all in the span, all count",
            // Before: only the window around the labels was read, and 2, 40 and 41 were
            // never counted. Now: precision 2/5, and two false episodes (2, and 40-41).
            flagged: vec![2, 11, 12, 40, 41],
            phases: vec![(10, 15)],
            span: vec![(0, 60)],
            deliveries: vec![],
            counts: (5, 2, 1, 3, 2, 55),
            precision: Some(0.4),
            recall: Some(1.0),
            false_per_hour: Some(2.0 * 60.0 / 55.0),
            ttd: (Some(120), None),
        },
        Case {
            name: "flags outside the span (another run's time) do not count",
            flagged: vec![11, 100, 200],
            phases: vec![(10, 15)],
            span: vec![(0, 30), (60, 90)],
            deliveries: vec![],
            counts: (1, 1, 1, 1, 0, 55),
            precision: Some(1.0),
            recall: Some(1.0),
            false_per_hour: Some(0.0),
            ttd: (Some(120), None),
        },
        Case {
            name: "a phase's tail beyond the span's end is still true",
            flagged: vec![29, 30],
            phases: vec![(20, 30)],
            span: vec![(0, 30)],
            deliveries: vec![],
            counts: (2, 2, 1, 1, 0, 20),
            precision: Some(1.0),
            recall: Some(1.0),
            false_per_hour: Some(0.0),
            ttd: (Some(600), None),
        },
        Case {
            name: "time to delivery: the earliest channel of an alert begun in the phase",
            // Phase 10..15 flagged from minute 11 (TTD 120 s to the interval's end); its
            // alert (episode from 11) delivered at 12:30 and 13:00: TTD 150 s. A delivery of
            // the false episode at 50 does not count.
            flagged: vec![11, 12, 50],
            phases: vec![(10, 15)],
            span: vec![(0, 60)],
            deliveries: vec![(11, 12 * 60 + 30), (11, 13 * 60), (50, 51 * 60)],
            counts: (3, 2, 1, 2, 1, 55),
            precision: Some(2.0 / 3.0),
            recall: Some(1.0),
            false_per_hour: Some(60.0 / 55.0),
            ttd: (Some(120), Some(150)),
        },
        Case {
            name: "nothing flagged, no phases: no precision, no recall",
            flagged: vec![],
            phases: vec![],
            span: vec![(0, 60)],
            deliveries: vec![],
            counts: (0, 0, 0, 0, 0, 60),
            precision: None,
            recall: None,
            false_per_hour: Some(0.0),
            ttd: (None, None),
        },
        Case {
            name: "all anomaly: no normal traffic, no rate",
            flagged: vec![1],
            phases: vec![(0, 10)],
            span: vec![(0, 10)],
            deliveries: vec![],
            counts: (1, 1, 1, 1, 0, 0),
            precision: Some(1.0),
            recall: Some(1.0),
            false_per_hour: None,
            ttd: (Some(120), None),
        },
    ];
    for case in cases {
        let phases: Vec<Phase> = case.phases.iter().map(|&(s, e)| phase(s, e)).collect();
        let span: Vec<(i64, i64)> = case
            .span
            .iter()
            .map(|&(s, e)| (s * MINUTE, e * MINUTE))
            .collect();
        let deliveries: Vec<Delivered> = case
            .deliveries
            .iter()
            .map(|&(minute, at_s)| Delivered {
                interval: (minute * MINUTE, (minute + 1) * MINUTE),
                delivered_at: at_s * 1_000,
            })
            .collect();
        let flagged = minutes(&case.flagged);
        let s = score(&Input {
            detector: "d",
            entity: None,
            flagged: &flagged,
            phases: &phases,
            deliveries: &deliveries,
            span: &span,
            interval_ms: MINUTE,
        });
        assert_eq!(
            (
                s.flagged,
                s.true_flags,
                s.detected(),
                s.episodes,
                s.false_alerts,
                s.normal_ms / MINUTE
            ),
            case.counts,
            "{}",
            case.name
        );
        assert_eq!(s.false_flags(), s.flagged - s.true_flags);
        assert_eq!(s.precision(), case.precision, "{}", case.name);
        assert_eq!(s.recall(), case.recall, "{}", case.name);
        assert_eq!(
            s.false_alerts_per_hour(),
            case.false_per_hour,
            "{}",
            case.name
        );
        assert_eq!(
            (
                s.median_ttd_ms().map(|ms| ms / 1_000),
                s.median_ttd_delivery_ms().map(|ms| ms / 1_000)
            ),
            case.ttd,
            "{}",
            case.name
        );
    }
}

#[test]
fn the_span_is_every_label_or_a_window_around_anomalies_alone() {
    let labelled = [
        (0, 10, true),
        (10, 20, false),
        (30, 40, true),
        (35, 50, false),
    ];
    assert_eq!(span(&labelled, 5), [(0, 20), (30, 50)]);
    let anomalies_only = [(10, 20, false), (30, 40, false)];
    assert_eq!(span(&anomalies_only, 5), [(5, 45)]);
    assert!(span(&[], 5).is_empty());
    assert_eq!(merge([(5, 6), (0, 2), (2, 3), (4, 4)]), [(0, 3), (5, 6)]);
}

fn flags(entity: &str, minutes: &[i64]) -> Vec<EntityFlag> {
    minutes
        .iter()
        .map(|&m| EntityFlag {
            entity: entity.into(),
            interval: (m * MINUTE, (m + 1) * MINUTE),
        })
        .collect()
}

/// A row's entity (or `+N` for the row summing up N), phases, detected, flagged, true
/// flags, episodes, false alerts, normal minutes, precision, recall, median TTD (s).
type Row = (
    String,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    i64,
    Option<f64>,
    Option<f64>,
    Option<i64>,
);

fn row(s: &Score) -> Row {
    (
        match (&s.entity, s.others) {
            (Some(e), _) => e.clone(),
            (None, 0) => "-".into(),
            (None, n) => format!("+{n}"),
        },
        s.phases.len(),
        s.detected(),
        s.flagged,
        s.true_flags,
        s.episodes,
        s.false_alerts,
        s.normal_ms / MINUTE,
        s.precision(),
        s.recall(),
        s.median_ttd_ms().map(|ms| ms / 1_000),
    )
}

#[test]
fn a_category_detector_is_scored_per_entity() {
    struct Case {
        name: &'static str,
        /// Phases: start and end minute, and the labelled entity.
        phases: Vec<(i64, i64, Option<&'static str>)>,
        /// Each entity's flagged minutes (the summaries: every minute any is flagged).
        flags: Vec<(&'static str, Vec<i64>)>,
        rows: usize,
        expected: Vec<Row>,
    }
    let r = |e: &str,
             counts: (usize, usize, usize, usize, usize, usize, i64),
             precision: Option<f64>,
             recall: Option<f64>,
             ttd: Option<i64>| {
        let (phases, detected, flagged, true_flags, episodes, false_alerts, normal) = counts;
        (
            e.to_owned(),
            phases,
            detected,
            flagged,
            true_flags,
            episodes,
            false_alerts,
            normal,
            precision,
            recall,
            ttd,
        )
    };
    let cases = [
        Case {
            name: "the labelled client flagged in 3 of its 5 intervals, another once",
            phases: vec![(10, 15, Some("10.0.0.1"))],
            flags: vec![("10.0.0.1", vec![10, 12, 14]), ("10.0.0.2", vec![40])],
            rows: ENTITY_ROWS,
            expected: vec![
                // Precision 3 of 4 entity flags; four summary episodes, one false.
                r("-", (1, 1, 4, 3, 4, 1, 55), Some(0.75), Some(1.0), Some(60)),
                r(
                    "10.0.0.1",
                    (1, 1, 3, 3, 3, 0, 55),
                    Some(1.0),
                    Some(1.0),
                    Some(60),
                ),
                r("10.0.0.2", (0, 0, 1, 0, 1, 1, 60), Some(0.0), None, None),
            ],
        },
        Case {
            name: "the labelled client outside its phase, and another in it, are false",
            // 15 is the phase's tail (true); 30 is not. 10.0.0.3 at 12 is the wrong client.
            phases: vec![(10, 15, Some("10.0.0.1"))],
            flags: vec![("10.0.0.1", vec![15, 30]), ("10.0.0.3", vec![12])],
            rows: ENTITY_ROWS,
            expected: vec![
                r(
                    "-",
                    (1, 1, 3, 1, 3, 1, 55),
                    Some(1.0 / 3.0),
                    Some(1.0),
                    Some(180),
                ),
                r(
                    "10.0.0.1",
                    (1, 1, 2, 1, 2, 1, 55),
                    Some(0.5),
                    Some(1.0),
                    Some(360),
                ),
                r("10.0.0.3", (0, 0, 1, 0, 1, 1, 60), Some(0.0), None, None),
            ],
        },
        Case {
            name: "the labelled client missed; other entities beyond the cap summed up",
            phases: vec![(10, 15, Some("10.0.0.1"))],
            flags: vec![
                ("a", vec![40]),
                ("b", vec![40, 41]),
                ("c", vec![50]),
                ("d", vec![50]),
            ],
            rows: 2,
            expected: vec![
                r("-", (1, 0, 5, 0, 2, 2, 55), Some(0.0), Some(0.0), None),
                r("10.0.0.1", (1, 0, 0, 0, 0, 0, 55), None, Some(0.0), None),
                r("b", (0, 0, 2, 0, 1, 1, 60), Some(0.0), None, None),
                r("a", (0, 0, 1, 0, 1, 1, 60), Some(0.0), None, None),
                r("+2", (0, 0, 2, 0, 2, 2, 60), Some(0.0), None, None),
            ],
        },
        Case {
            name: "a phase without an entity: any entity's flag in it is true",
            phases: vec![(10, 15, None)],
            flags: vec![("a", vec![11]), ("b", vec![11, 40])],
            rows: ENTITY_ROWS,
            expected: vec![
                r(
                    "-",
                    (1, 1, 3, 2, 2, 1, 55),
                    Some(2.0 / 3.0),
                    Some(1.0),
                    Some(120),
                ),
                r("b", (0, 0, 2, 1, 2, 1, 55), Some(0.5), None, None),
                r("a", (0, 0, 1, 1, 1, 0, 55), Some(1.0), None, None),
            ],
        },
    ];
    for case in cases {
        let phases: Vec<Phase> = case
            .phases
            .iter()
            .map(|&(s, e, entity)| Phase {
                entity: entity.map(str::to_owned),
                ..phase(s, e)
            })
            .collect();
        let all: Vec<EntityFlag> = case.flags.iter().flat_map(|(e, m)| flags(e, m)).collect();
        let mut summaries: Vec<(i64, i64)> = all.iter().map(|f| f.interval).collect();
        summaries.sort_unstable();
        summaries.dedup();
        let span = [(0, 60 * MINUTE)];
        let scores = score_category(
            &Input {
                detector: "d",
                entity: None,
                flagged: &summaries,
                phases: &phases,
                deliveries: &[],
                span: &span,
                interval_ms: MINUTE,
            },
            &all,
            case.rows,
        );
        assert_eq!(
            scores.iter().map(row).collect::<Vec<_>>(),
            case.expected,
            "{}",
            case.name
        );
        assert!(scores.iter().all(|s| s.detector == "d"));
    }
}
