//! An interval's feature value, and its judgement by the detector's model: the one place that
//! says what a `rate`, a `ratio` or a sum is, for the live stream, a cold start's history and a
//! historical analysis alike. Pure.
//!
//! An interval holds the raw total of what its records contributed (`value`: the field's sum, or
//! the number of records for a count) and the number of records that passed the feature's
//! filter (`events`). A rate is the total per second; a ratio the total over the events (for a
//! 0/1 indicator, the share of bad events), judged only when the interval has at least the
//! feature's `min_count` events: a ratio over three requests says little.

use crate::model::{Model, ModelError, Scored};
use crate::spec::{Aggregation, DetectorSpec};
use crate::window::Interval;

/// An interval's feature value, and whether it has enough events to be judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The feature's value (a ratio over no events is 0).
    pub value: f64,
    /// False for a ratio over fewer than `min_count` events.
    pub judged: bool,
}

/// The feature's value of `interval` (its raw total and events).
pub fn measure(detector: &DetectorSpec, interval: &Interval) -> Measured {
    let value = match detector.feature.aggregation {
        Aggregation::Sum | Aggregation::Count | Aggregation::NewValues => interval.value,
        Aggregation::Rate => interval.value / detector.interval.as_secs_f64().max(0.001),
        Aggregation::Ratio if interval.events == 0 => 0.0,
        Aggregation::Ratio => interval.value / interval.events as f64,
    };
    Measured {
        value,
        judged: interval.events >= detector.min_count(),
    }
}

/// Judges `interval` with the detector's `model` (which learns it when judged): the interval
/// with its feature value in place of its raw total, and the model's verdict.
pub fn judge(
    detector: &DetectorSpec,
    model: &mut Model,
    interval: &Interval,
) -> Result<(Interval, Scored), ModelError> {
    let Measured { value, judged } = measure(detector, interval);
    let scored = if !judged {
        model.unjudged()
    } else if detector.feature.aggregation == Aggregation::Ratio {
        model.observe(value, Some(interval.events))?
    } else {
        model.observe(value, None)?
    };
    Ok((Interval { value, ..*interval }, scored))
}

/// Why an interval was not judged, for its result; `None` when it was.
pub fn unjudged_reason(detector: &DetectorSpec, interval: &Interval) -> Option<String> {
    let needed = detector.min_count();
    (interval.events < needed).then(|| {
        format!(
            "not judged: {} events in the interval, a ratio needs {needed} (feature.min_count)",
            interval.events
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::live::testing;

    fn interval(value: f64, events: u64) -> Interval {
        Interval {
            start: 0,
            end: 60_000,
            value,
            events,
        }
    }

    #[test]
    fn each_aggregation_has_its_value_and_only_a_thin_ratio_goes_unjudged() {
        let cases = [
            (
                Aggregation::Sum,
                None,
                Duration::from_secs(60),
                (120.0, 40),
                120.0,
                true,
            ),
            (
                Aggregation::Count,
                None,
                Duration::from_secs(60),
                (40.0, 40),
                40.0,
                true,
            ),
            (
                Aggregation::Rate,
                None,
                Duration::from_secs(60),
                (120.0, 40),
                2.0,
                true,
            ),
            (
                Aggregation::Rate,
                None,
                Duration::from_secs(5),
                (120.0, 40),
                24.0,
                true,
            ),
            // A zero-length interval cannot divide by zero: it counts as a millisecond.
            (
                Aggregation::Rate,
                None,
                Duration::ZERO,
                (120.0, 40),
                120_000.0,
                true,
            ),
            (
                Aggregation::Ratio,
                None,
                Duration::from_secs(60),
                (10.0, 40),
                0.25,
                true,
            ),
            (
                Aggregation::Ratio,
                None,
                Duration::from_secs(60),
                (1.0, 19),
                1.0 / 19.0,
                false,
            ),
            (
                Aggregation::Ratio,
                Some(5),
                Duration::from_secs(60),
                (1.0, 5),
                0.2,
                true,
            ),
            (
                Aggregation::Ratio,
                Some(5),
                Duration::from_secs(60),
                (0.0, 0),
                0.0,
                false,
            ),
            // Quiet intervals of the others are judged: a quiet minute is a data point.
            (
                Aggregation::Sum,
                None,
                Duration::from_secs(60),
                (0.0, 0),
                0.0,
                true,
            ),
        ];
        for (aggregation, min_count, length, (total, events), value, judged) in cases {
            let mut detector = testing::spec("d");
            detector.feature.aggregation = aggregation;
            detector.feature.min_count = min_count;
            detector.interval = length;
            let measured = measure(&detector, &interval(total, events));
            assert_eq!(
                measured,
                Measured { value, judged },
                "{aggregation:?} ({min_count:?}) per {length:?} of {total}/{events}"
            );
            assert_eq!(
                unjudged_reason(&detector, &interval(total, events)).is_none(),
                judged
            );
        }
    }

    #[test]
    fn an_unjudged_interval_teaches_the_model_nothing() -> Result<(), ModelError> {
        let mut detector = testing::spec("d");
        detector.feature.aggregation = Aggregation::Ratio;
        let mut model = Model::new(&detector.model, detector.min_rise(), 1)?;
        for _ in 0..10 {
            judge(&detector, &mut model, &interval(5.0, 100))?;
        }
        let (thin, scored) = judge(&detector, &mut model, &interval(3.0, 3))?;
        assert_eq!((thin.value, thin.events), (1.0, 3));
        assert_eq!((scored.grade, scored.confidence), (0.0, 0.0));
        assert!((scored.expected - 0.05).abs() < 1e-9, "{scored:?}");
        assert_eq!(model.seen(), 10, "not learnt");
        assert_eq!(
            unjudged_reason(&detector, &thin).as_deref(),
            Some("not judged: 3 events in the interval, a ratio needs 20 (feature.min_count)")
        );
        Ok(())
    }
}
