//! Scoring closed intervals: the watermark closes a detector's intervals, each one's feature value
//! ([`crate::measure`]) is judged by the detector's model, and becomes a result document. The
//! results are returned, not sent: where they go (monitors, `anomalies`, the results index) is
//! the loop's business, so scoring can be tested with a model and a window alone.

use crate::measure;
use crate::model::Model;
use crate::spec::DetectorSpec;
use crate::store::{self, ResultDoc};
use crate::window::Interval;

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
    } = live;
    window
        .close(watermark)
        .into_iter()
        .filter_map(|interval| score_one(spec, model, interval, started, metrics))
        .collect()
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
}
