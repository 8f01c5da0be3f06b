//! Scoring closed intervals: the watermark closes a detector's intervals, each one's feature value
//! ([`crate::measure`]) is judged by the detector's model, and becomes a result document. The
//! results are returned, not sent: where they go (monitors, `anomalies`, the results index) is
//! the loop's business, so scoring can be tested with a model and a window alone.
//!
//! A category detector's interval is judged per entity ([`crate::entities`]): each flagged
//! entity gets a result naming it, and the interval one summary result (the feature over all
//! its records, the highest entity grade, the flagged entities), which is what monitors see, so
//! one alert names many entities. Unflagged entities' results are not written: thousands of
//! entities per interval would dwarf the events.

use super::live::Extra;
use crate::entities::{self, Entities, Judged};
use crate::measure;
use crate::model::{Model, Scored};
use crate::novelty::Novelty;
use crate::spec::{Category, DetectorSpec};
use crate::store::FeatureData;
use crate::store::{self, ResultDoc};
use crate::window::Interval;
use pipeline::wire::Attribution;
use pipeline::wire::EntityValue;

use super::live::Live;
use super::metrics::Metrics;

/// Closes every interval of `live` that `watermark` passed and scores it, in order; `started` is
/// when this round of scoring began (epoch ms). Counts what it scored and flagged. An interval
/// the model fails to score is logged and skipped.
pub(super) fn score(
    live: &mut Live,
    watermark: i64,
    started: i64,
    metrics: &Metrics,
) -> Vec<ResultDoc> {
    let Live {
        spec,
        model,
        window,
        entities,
        novelty,
        extra,
    } = live;
    let closed = window.close(watermark);
    // Each extra feature's window closes the same intervals (same length, delay and start).
    let mut extra_closed: Vec<std::vec::IntoIter<Interval>> = extra
        .iter_mut()
        .map(|e| e.window.close(watermark).into_iter())
        .collect();
    match (&spec.category, entities) {
        (Some(category), Some(entities)) => {
            let results = closed
                .into_iter()
                .flat_map(|interval| {
                    score_entities(spec, category, entities, interval, started, metrics)
                })
                .collect();
            metrics.entities(&spec.name, entities.report());
            results
        }
        _ => closed
            .into_iter()
            .filter_map(|interval| {
                let extra_intervals: Vec<Option<Interval>> =
                    extra_closed.iter_mut().map(Iterator::next).collect();
                let mut result = score_one(spec, model, interval, started, metrics)?;
                if let Some(novelty) = novelty {
                    judge_novelty(spec, model, novelty, &mut result);
                }
                if !extra.is_empty() {
                    let main_grade = result.anomaly_grade;
                    judge_extra(spec, extra, extra_intervals, &mut result);
                    let name = [spec.name.as_str()];
                    if main_grade == 0.0 && result.anomaly_grade > 0.0 {
                        metrics.anomalies.with_label_values(&name).inc();
                    }
                    metrics
                        .last
                        .grade
                        .with_label_values(&name)
                        .set(result.anomaly_grade);
                }
                Some(result)
            })
            .collect(),
    }
}

/// Adds the extra features' verdicts to an interval's `result`: their values in
/// `feature_data`, the highest grade of all (with its rule and score), and each feature's share
/// of the grade in `relevant_attribution`. An extra interval that does not line up with the
/// main one (it cannot, as the windows close together; a restored old checkpoint might) is
/// skipped.
pub(crate) fn judge_extra(
    spec: &DetectorSpec,
    extra: &mut [Extra],
    intervals: Vec<Option<Interval>>,
    result: &mut ResultDoc,
) {
    let mut grades = vec![(spec.feature_name(), result.anomaly_grade)];
    let mut top: Option<(f64, Scored, f64)> = None;
    for (extra, interval) in extra.iter_mut().zip(intervals) {
        let Some(interval) = interval.filter(|i| i.start == result.data_start_time) else {
            continue;
        };
        let name = extra.view.feature_name();
        match measure::judge(&extra.view, &mut extra.model, &interval) {
            Ok((measured, scored)) => {
                result.feature_data.push(FeatureData {
                    feature_id: name.clone(),
                    feature_name: name.clone(),
                    data: measured.value,
                });
                grades.push((name, scored.grade));
                if scored.grade > result.anomaly_grade
                    && top.is_none_or(|(grade, _, _)| scored.grade > grade)
                {
                    top = Some((scored.grade, scored, measured.value));
                }
            }
            Err(err) => {
                tracing::error!(detector = %spec.name, feature = name, %err, start = interval.start, "Scoring an extra feature failed; the interval is judged without it.");
            }
        }
    }
    // The result's value and expected value are the driving feature's.
    if let Some((_, scored, value)) = top {
        result.anomaly_grade = scored.grade;
        result.value = value;
        result.expected_value = scored.expected;
        result.anomaly_score = result.anomaly_score.max(scored.score);
        result.confidence = scored.confidence;
        result.rule = scored
            .rule
            .map(|rule| format!("{rule:?}").to_ascii_lowercase());
    }
    let total: f64 = grades.iter().map(|(_, g)| g).sum();
    result.relevant_attribution = Some(
        grades
            .into_iter()
            .map(|(feature_id, grade)| Attribution {
                feature_id,
                data: if total > 0.0 { grade / total } else { 0.0 },
            })
            .collect(),
    );
}

/// A `new_values` interval's verdict: flagged when it has a new value and the detector has
/// learned what is usual (from history, or over its first `baseline` intervals); the new
/// values are named in `entities`.
fn judge_novelty(
    spec: &DetectorSpec,
    model: &Model,
    novelty: &mut Novelty,
    result: &mut ResultDoc,
) {
    let fresh = novelty.close(result.data_start_time);
    let learned = novelty.learned() || model.seen() > spec.model.baseline as u64;
    let new = result.value;
    let flagged = learned && new >= 1.0;
    result.anomaly_grade = if flagged { 1.0 - (-new).exp() } else { 0.0 };
    result.anomaly_score = new;
    result.expected_value = 0.0;
    result.confidence = if learned { 1.0 } else { 0.0 };
    result.rule = flagged.then(|| "new".to_owned());
    result.entities = Some(fresh);
    if flagged {
        tracing::info!(detector = %spec.name, new, values = ?result.entities.as_ref().map(|e| &e.top), start = result.data_start_time, "New values.");
    }
}

/// A category detector's closed interval: each flagged entity's result, then the summary.
fn score_entities(
    spec: &DetectorSpec,
    category: &Category,
    entities: &mut Entities,
    interval: Interval,
    started: i64,
    metrics: &Metrics,
) -> Vec<ResultDoc> {
    let (judged, failed) = entities.close(spec, category, &interval);
    for (entity, err) in failed {
        tracing::error!(detector = %spec.name, entity, %err, start = interval.start, "Scoring an entity's interval failed; it gets no result. If this repeats, report it with this log and the detector's spec.");
    }
    let mut results: Vec<ResultDoc> = judged
        .iter()
        .filter(|j| j.scored.grade > 0.0)
        .map(|Judged { entity, interval: measured, scored }| {
            tracing::info!(detector = %spec.name, entity, value = measured.value, expected = scored.expected, grade = scored.grade, rule = ?scored.rule, start = interval.start, "Anomaly of an entity.");
            let mut result = store::result(spec, measured, scored, started, None);
            result.entity = Some(vec![EntityValue {
                name: category.field.clone(),
                value: entity.clone(),
            }]);
            result
        })
        .collect();
    let measured = measure::measure(spec, &interval);
    let top = judged
        .iter()
        .max_by(|a, b| a.scored.grade.total_cmp(&b.scored.grade))
        .map(|j| j.scored);
    let scored = Scored {
        score: top.map_or(0.0, |s| s.score),
        grade: top.map_or(0.0, |s| s.grade),
        confidence: top.map_or(0.0, |s| s.confidence),
        expected: top.map_or(0.0, |s| s.expected),
        rule: top.and_then(|s| s.rule),
    };
    let whole = Interval {
        value: measured.value,
        ..interval
    };
    let mut summary = store::result(spec, &whole, &scored, started, None);
    summary.entities = Some(entities::summary(category, &judged));
    metrics.scored(&spec.name, whole.value, interval.events, &scored);
    metrics
        .scored_until
        .with_label_values(&[&spec.name])
        .set(interval.end / 1_000);
    results.push(summary);
    results
}

fn score_one(
    spec: &DetectorSpec,
    model: &mut Model,
    interval: Interval,
    started: i64,
    metrics: &Metrics,
) -> Option<ResultDoc> {
    let (scored_interval, scored) = match measure::judge(spec, model, &interval) {
        Ok(judged) => judged,
        Err(err) => {
            tracing::error!(detector = %spec.name, %err, start = interval.start, "Scoring an interval failed; it gets no result. If this repeats, report it with this log and the detector's spec.");
            return None;
        }
    };
    let value = scored_interval.value;
    let result = store::result(spec, &scored_interval, &scored, started, None);
    metrics.scored(&spec.name, value, interval.events, &scored);
    metrics
        .scored_until
        .with_label_values(&[&spec.name])
        .set(interval.end / 1_000);
    if result.anomaly_grade > 0.0 {
        tracing::info!(detector = %spec.name, value, expected = scored.expected, grade = scored.grade, confidence = scored.confidence, rule = ?scored.rule, start = interval.start, "Anomaly.");
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use prometheus::Registry;

    use super::*;
    use crate::service::live::testing;
    use crate::spec::Aggregation;

    #[test]
    fn closed_intervals_are_scored_in_order_and_counted() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut spec = testing::spec("rate-detector");
        spec.feature.aggregation = Aggregation::Rate;
        let mut live = testing::live(spec, Some(0))?;
        for (time, value) in [(1_000, 30.0), (59_999, 30.0), (61_000, 120.0)] {
            assert!(live.window.add(time, value));
        }
        let metrics = Metrics::register(&Registry::new())?;

        // The second minute ends at 120 s; with the 10 s delay it closes at 130 s, not before.
        let results = score(&mut live, 129_999, 5, &metrics);
        let scored: Vec<_> = results
            .iter()
            .map(|r| {
                (
                    r.data_start_time,
                    r.data_end_time,
                    r.value,
                    r.events,
                    r.execution_start_time,
                )
            })
            .collect();
        assert_eq!(scored, vec![(0, 60_000, 1.0, 2, 5)]);
        let results = score(&mut live, 200_000, 6, &metrics);
        let scored: Vec<_> = results
            .iter()
            .map(|r| (r.data_start_time, r.value, r.events, r.feature_data[0].data))
            .collect();
        // Quiet minutes close with 0 too.
        assert_eq!(scored, vec![(60_000, 2.0, 1, 2.0), (120_000, 0.0, 0, 0.0)]);
        assert!(
            score(&mut live, 200_000, 7, &metrics).is_empty(),
            "each interval is scored once"
        );

        assert_eq!(live.model.seen(), 3);
        let name = ["rate-detector"];
        assert_eq!(metrics.intervals.with_label_values(&name).get(), 3);
        assert_eq!(metrics.scored_until.with_label_values(&name).get(), 180);
        assert_eq!(metrics.anomalies.with_label_values(&name).get(), 0);
        // The last interval shown: the quiet third minute, after one with records.
        assert_eq!(metrics.last.value.with_label_values(&name).get(), 0.0);
        assert_eq!(metrics.last.empty.with_label_values(&name).get(), 1);
        Ok(())
    }

    #[test]
    fn a_second_feature_can_drive_the_grade_and_says_so() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut spec = testing::spec("two-features");
        spec.extra_features = vec![crate::spec::Feature {
            field: None,
            aggregation: Aggregation::Count,
            filter: None,
            min_count: None,
        }];
        let mut live = testing::live(spec, Some(0))?;
        let metrics = Metrics::register(&Registry::new())?;
        let minute = 60_000;
        // 40 quiet minutes: one bad request among ten; then a minute of 200 requests, one bad.
        for m in 0..41 {
            let requests = if m == 40 { 200 } else { 10 };
            for r in 0..requests {
                let time = m * minute + r;
                let bad = f64::from(u8::from(r == 0));
                for extra in &mut live.extra {
                    extra.window.add(time, 1.0);
                }
                live.window.add(time, bad);
            }
        }
        let results = score(&mut live, 41 * minute + 10_000, 1, &metrics);
        assert_eq!(results.len(), 41);
        let quiet = &results[..40];
        assert!(quiet.iter().all(|r| r.anomaly_grade == 0.0));
        let last = &results[40];
        let features: Vec<(&str, f64)> = last
            .feature_data
            .iter()
            .map(|f| (f.feature_name.as_str(), f.data))
            .collect();
        assert_eq!(features, [("sum_UNK_country", 1.0), ("count", 200.0)]);
        assert!(last.anomaly_grade > 0.5, "{last:?}");
        assert_eq!((last.value, last.expected_value.round()), (200.0, 10.0));
        let shares: Vec<(&str, f64)> = last
            .relevant_attribution
            .iter()
            .flatten()
            .map(|a| (a.feature_id.as_str(), a.data))
            .collect();
        assert_eq!(shares, [("sum_UNK_country", 0.0), ("count", 1.0)]);
        assert_eq!(
            metrics.anomalies.with_label_values(&["two-features"]).get(),
            1
        );
        Ok(())
    }
}
