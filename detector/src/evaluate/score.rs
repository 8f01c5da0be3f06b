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
mod tests;
