//! Scoring one detector against its ground truth (pure: no IO, no clock).
//!
//! The evaluated span is every stretch of time a run labelled ([`span`]): its anomaly phases and
//! its normal phases. Within it every flagged interval counts, so a flag far from any anomaly is
//! a false flag and lowers precision. A flag is true when it overlaps one of the detector's
//! phases or the interval right after one (the tail of an anomaly spills into the next interval).
//!
//! An alert episode is a maximal run of consecutive flagged intervals (what a monitor turns into
//! one alert); a false alert is an episode that touches none of the detector's phases (with the
//! same one-interval grace). Normal traffic is the span minus the detector's phases, so another
//! detector's anomaly counts as normal traffic here.
//!
//! Time to detect is measured twice per phase: to the end of the first flagged interval (the
//! earliest an alert can leave) and to the first delivery of an alert whose episode began in
//! the phase (what people actually received, from the alerts index).
//!
//! A category detector ([`score_category`]) is also scored per entity, from its entity results
//! (one per flagged entity and interval). A phase labelled with an entity (the one client the
//! anomaly came from) belongs to that entity: its row counts the entity's flags inside its phases
//! (with the same grace) as true and its other flags as false, and detects the phase when it
//! flagged the entity in it. Every other entity flagged in the span gets a row whose flags are
//! all false (the most flagged [`ENTITY_ROWS`] each, the rest summed in one row). A phase
//! without an entity belongs to no entity: any entity's flag in it is true, and it is scored on
//! the detector's row only.
//!
//! For a category detector, precision counts entity flags, not interval summaries: a flag is one
//! entity in one interval, true when that entity is the phase's labelled entity (or the phase has
//! none) and the interval is in the phase or right after it; false for any other entity, and for
//! the labelled entity outside its phases. Its other figures (detected phases, time to detect,
//! episodes, false alerts) stay the summaries' (the intervals a monitor alerts on).

use std::collections::{BTreeMap, BTreeSet};

/// One labelled anomaly phase of a detector's ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The producer run it belongs to.
    pub run_id: String,
    /// Its index in the run's scenario.
    pub phase: usize,
    /// The label field (the detector's `ground_truth`).
    pub field: String,
    /// Start, epoch ms, inclusive.
    pub start_ms: i64,
    /// End, epoch ms, exclusive.
    pub end_ms: i64,
    /// The share of the phase's records drawn with the anomaly's weights, when labelled.
    pub intensity: Option<f64>,
    /// The one entity the anomaly came from, when labelled.
    pub entity: Option<String>,
    /// How the phase's rate moved, when it was not constant.
    pub traffic: Option<String>,
}

/// An alert a channel accepted: its episode's first interval `[start, end)` and when it was
/// delivered, epoch ms. One per channel; the earliest counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The episode's first interval.
    pub interval: (i64, i64),
    /// When the channel accepted it.
    pub delivered_at: i64,
}

/// One phase's outcome for one detector.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseScore {
    /// The phase.
    pub phase: Phase,
    /// From the phase's start to the end of its first flagged interval, ms; `None` when missed.
    pub ttd_ms: Option<i64>,
    /// From the phase's start to the first delivery of an alert whose episode began in it, ms;
    /// `None` when no such delivery is recorded.
    pub ttd_delivery_ms: Option<i64>,
}

impl PhaseScore {
    /// Whether at least one interval was flagged in it.
    pub fn detected(&self) -> bool {
        self.ttd_ms.is_some()
    }
}

/// What one detector (or one entity of a category detector) is scored from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The detector.
    pub detector: &'a str,
    /// The entity, for one entity's row of a category detector; `None` for a detector.
    pub entity: Option<&'a str>,
    /// The `[start, end)` of its anomalous intervals (any order).
    pub flagged: &'a [(i64, i64)],
    /// Its labelled phases.
    pub phases: &'a [Phase],
    /// Its delivered alerts.
    pub deliveries: &'a [Delivered],
    /// The evaluated span (see [`span`]), merged.
    pub span: &'a [(i64, i64)],
    /// Its interval, ms.
    pub interval_ms: i64,
}

/// One detector's (or entity's) figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The detector.
    pub detector: String,
    /// The entity, for one entity's row of a category detector; `None` for a detector as a
    /// whole (and for the row that sums up `others`).
    pub entity: Option<String>,
    /// How many entities the row sums up: the unlabelled flagged entities beyond the report's
    /// [`ENTITY_ROWS`]; 0 for a detector and for one entity.
    pub others: usize,
    /// Its phases, each with its times to detect.
    pub phases: Vec<PhaseScore>,
    /// Flagged intervals in the span.
    pub flagged: usize,
    /// Flagged intervals inside a phase (or within one interval after it).
    pub true_flags: usize,
    /// Alert episodes (maximal runs of consecutive flagged intervals) in the span.
    pub episodes: usize,
    /// Episodes that touch none of its phases.
    pub false_alerts: usize,
    /// Milliseconds of the span.
    pub span_ms: i64,
    /// Milliseconds of normal traffic: the span minus its phases.
    pub normal_ms: i64,
}

impl Score {
    /// Phases with at least one flagged interval.
    pub fn detected(&self) -> usize {
        self.phases.iter().filter(|p| p.detected()).count()
    }

    /// Flagged intervals that were not in a phase.
    pub fn false_flags(&self) -> usize {
        self.flagged - self.true_flags
    }

    /// Flagged intervals that were in a phase; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| self.true_flags as f64 / self.flagged as f64)
    }

    /// Phases detected; `None` without phases.
    pub fn recall(&self) -> Option<f64> {
        (!self.phases.is_empty()).then(|| self.detected() as f64 / self.phases.len() as f64)
    }

    /// Median time to the end of the first flagged interval, ms, over the detected phases.
    pub fn median_ttd_ms(&self) -> Option<i64> {
        median(self.phases.iter().filter_map(|p| p.ttd_ms).collect())
    }

    /// Median time to the first delivered alert, ms, over the phases with one.
    pub fn median_ttd_delivery_ms(&self) -> Option<i64> {
        median(
            self.phases
                .iter()
                .filter_map(|p| p.ttd_delivery_ms)
                .collect(),
        )
    }

    /// False alerts per hour of normal traffic; `None` without normal traffic.
    pub fn false_alerts_per_hour(&self) -> Option<f64> {
        (self.normal_ms > 0).then(|| self.false_alerts as f64 * 3_600_000.0 / self.normal_ms as f64)
    }
}

/// The middle value (the upper of the two middle ones for an even count).
fn median(mut values: Vec<i64>) -> Option<i64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// Whether `[start, end)` overlaps `phase` or the interval after it.
fn in_phase((start, end): (i64, i64), phase: &Phase, interval_ms: i64) -> bool {
    start < phase.end_ms.saturating_add(interval_ms) && end > phase.start_ms
}

/// `spans` sorted and merged (overlapping or touching ones become one); empty ones dropped.
pub fn merge(spans: impl IntoIterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = spans.into_iter().filter(|(s, e)| s < e).collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The length of merged `spans`, ms.
fn length(spans: &[(i64, i64)]) -> i64 {
    spans.iter().map(|(s, e)| e - s).sum()
}

/// The evaluated span of a run's labels (`(start, end, normal)`), merged: the union of every
/// label's span when the run labelled its normal traffic; otherwise (an older producer, or a run
/// of anomalies only) the labels' extent with `margin` either side.
pub fn span(labels: &[(i64, i64, bool)], margin: i64) -> Vec<(i64, i64)> {
    if labels.iter().any(|&(_, _, normal)| normal) {
        return merge(labels.iter().map(|&(s, e, _)| (s, e)));
    }
    let from = labels.iter().map(|l| l.0).min();
    let to = labels.iter().map(|l| l.1).max();
    match (from, to) {
        (Some(from), Some(to)) => merge([(from.saturating_sub(margin), to.saturating_add(margin))]),
        _ => Vec::new(),
    }
}

/// Scores one detector.
pub fn score(input: &Input<'_>) -> Score {
    let Input {
        detector,
        entity,
        flagged,
        phases,
        deliveries,
        span,
        interval_ms,
    } = *input;
    let is_true = |f: (i64, i64)| phases.iter().any(|p| in_phase(f, p, interval_ms));
    let mut counted: Vec<(i64, i64)> = flagged
        .iter()
        .copied()
        .filter(|&(s, e)| span.iter().any(|&(from, to)| s < to && e > from) || is_true((s, e)))
        .collect();
    counted.sort_unstable();
    counted.dedup();
    let true_flags = counted.iter().filter(|&&f| is_true(f)).count();

    let mut episodes: Vec<(i64, i64)> = Vec::new();
    for &(start, end) in &counted {
        match episodes.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => episodes.push((start, end)),
        }
    }
    let false_alerts = episodes.iter().filter(|&&e| !is_true(e)).count();

    let phase_spans = merge(phases.iter().map(|p| (p.start_ms, p.end_ms)));
    let inside: Vec<(i64, i64)> = span
        .iter()
        .flat_map(|&(from, to)| {
            phase_spans
                .iter()
                .map(move |&(s, e)| (s.max(from), e.min(to)))
        })
        .collect();
    let span_ms = length(span);
    let normal_ms = span_ms - length(&merge(inside));

    let phases = phases
        .iter()
        .map(|p| PhaseScore {
            ttd_ms: counted
                .iter()
                .filter(|&&f| in_phase(f, p, interval_ms))
                .map(|&(_, end)| (end - p.start_ms).max(0))
                .min(),
            ttd_delivery_ms: deliveries
                .iter()
                .filter(|d| in_phase(d.interval, p, interval_ms))
                .map(|d| (d.delivered_at - p.start_ms).max(0))
                .min(),
            phase: p.clone(),
        })
        .collect();
    Score {
        detector: detector.to_owned(),
        entity: entity.map(str::to_owned),
        others: 0,
        phases,
        flagged: counted.len(),
        true_flags,
        episodes: episodes.len(),
        false_alerts,
        span_ms,
        normal_ms,
    }
}

/// How many unlabelled entities a category detector's report shows one by one (the most
/// flagged); the rest are summed up in one row.
pub const ENTITY_ROWS: usize = 10;

/// One flagged interval `[start, end)` of one entity (a category detector's entity result).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntityFlag {
    /// The entity.
    pub entity: String,
    /// Its interval.
    pub interval: (i64, i64),
}

/// Scores a category detector: its row (precision from `flags`, the rest from the summaries in
/// `input.flagged`), then a row per labelled entity, then a row per other flagged entity (the
/// most flagged `rows`; the rest in one row with `others` set).
pub fn score_category(input: &Input<'_>, flags: &[EntityFlag], rows: usize) -> Vec<Score> {
    let Input {
        phases,
        deliveries,
        span,
        interval_ms,
        ..
    } = *input;
    let mut detector = score(input);
    let in_span = |(s, e): (i64, i64)| span.iter().any(|&(from, to)| s < to && e > from);
    let true_for = |flag: &EntityFlag| {
        phases.iter().any(|p| {
            p.entity.as_ref().is_none_or(|e| *e == flag.entity)
                && in_phase(flag.interval, p, interval_ms)
        })
    };
    let mut counted: Vec<&EntityFlag> = flags
        .iter()
        .filter(|f| in_span(f.interval) || true_for(f))
        .collect();
    counted.sort_unstable();
    counted.dedup();
    detector.flagged = counted.len();
    detector.true_flags = counted.iter().filter(|f| true_for(f)).count();

    let mut by_entity: BTreeMap<&str, Vec<(i64, i64)>> = Default::default();
    for flag in &counted {
        by_entity
            .entry(flag.entity.as_str())
            .or_default()
            .push(flag.interval);
    }
    let labelled: BTreeSet<&str> = phases.iter().filter_map(|p| p.entity.as_deref()).collect();
    let unlabelled_phases: Vec<Phase> = phases
        .iter()
        .filter(|p| p.entity.is_none())
        .cloned()
        .collect();
    let one = |entity: &str, phases: &[Phase]| {
        let flagged = by_entity.get(entity).map_or(&[][..], Vec::as_slice);
        // The detector's alerts whose episode began with this entity flagged.
        let deliveries: Vec<Delivered> = deliveries
            .iter()
            .filter(|d| flagged.contains(&d.interval))
            .copied()
            .collect();
        score(&Input {
            entity: Some(entity),
            flagged,
            phases,
            deliveries: &deliveries,
            ..*input
        })
    };
    let mut scores = vec![detector];
    for &entity in &labelled {
        // Its own phases, and those without an entity (a flag in them is true, as on the
        // detector's row), which it is not scored on.
        let own: Vec<Phase> = phases
            .iter()
            .filter(|p| p.entity.as_deref().is_none_or(|e| e == entity))
            .cloned()
            .collect();
        let mut row = one(entity, &own);
        row.phases.retain(|p| p.phase.entity.is_some());
        scores.push(row);
    }
    let mut others: Vec<Score> = by_entity
        .keys()
        .filter(|e| !labelled.contains(*e))
        .map(|e| Score {
            // Their flags in a phase without an entity are true; the phase is not theirs.
            phases: Vec::new(),
            ..one(e, &unlabelled_phases)
        })
        .collect();
    others.sort_by(|a, b| b.flagged.cmp(&a.flagged).then(a.entity.cmp(&b.entity)));
    let rest = others.split_off(rows.min(others.len()));
    scores.extend(others);
    if let Some(first) = rest.first() {
        scores.push(Score {
            entity: None,
            others: rest.len(),
            flagged: rest.iter().map(|s| s.flagged).sum(),
            true_flags: rest.iter().map(|s| s.true_flags).sum(),
            episodes: rest.iter().map(|s| s.episodes).sum(),
            false_alerts: rest.iter().map(|s| s.false_alerts).sum(),
            ..first.clone()
        });
    }
    scores
}

#[cfg(test)]
mod tests {
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
}
