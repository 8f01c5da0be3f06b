//! Detectors without data: a detector whose last `no_data_after` closed intervals (its spec;
//! 0 never) all had no record is reported, so that it does not look like a quiet, healthy one
//! (a source that stopped sending, a transformer that stopped, a filter that no longer matches,
//! or a preset for a source this deployment does not have).
//!
//! The count of consecutive intervals without a record is the `logwarden_detector_empty_intervals`
//! gauge ([`super::metrics::Metrics::scored`] keeps it); after each round of scoring,
//! [`publish`] sets `logwarden_detector_no_data` (1/0) per detector and the `no_data` note on
//! `/readyz` (one per shard, `no_data (shard N)`, when the spec is split). A note, not a readiness check: the detector serves nothing through a Service, and a
//! preset for a source that is not deployed would otherwise keep the pod unready forever; the
//! note and the gauge make it visible, the `LogwardenDetectorNoData` alert pages on it.

use pipeline::telemetry::Health;

use super::metrics::Metrics;

/// Whether `empty` consecutive intervals without a record mean no data, for a detector that
/// says so after `after` (0: never).
pub(super) fn flagged(empty: i64, after: u32) -> bool {
    after > 0 && empty >= i64::from(after)
}

/// The `/readyz` note for the detectors without data (name, intervals without a record).
pub(super) fn note(quiet: &[(&str, i64)]) -> String {
    if quiet.is_empty() {
        return "none".to_owned();
    }
    let list: Vec<String> = quiet
        .iter()
        .map(|(name, empty)| format!("{name} for {empty} intervals"))
        .collect();
    let count = quiet.len();
    format!(
        "{count} detector{} without records: {}",
        if count == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// Sets each detector's `no_data` gauge from its count of intervals without a record, and the
/// `/readyz` note; `detectors` are (name, `no_data_after`).
pub(super) fn publish<'a>(
    detectors: impl IntoIterator<Item = (&'a str, u32)>,
    metrics: &Metrics,
    (health, note_name): (&Health, &str),
) {
    let mut quiet = Vec::new();
    for (name, after) in detectors {
        let empty = metrics.last.empty.with_label_values(&[name]).get();
        let flag = flagged(empty, after);
        metrics
            .no_data
            .with_label_values(&[name])
            .set(i64::from(flag));
        if flag {
            quiet.push((name, empty));
        }
    }
    health.inform(note_name, &note(&quiet));
}

#[cfg(test)]
mod tests {
    use prometheus::Registry;

    use super::*;
    use crate::model::Scored;
    use crate::service::readiness::NO_DATA_NOTE;

    #[test]
    fn no_data_is_flagged_after_its_intervals_and_never_at_0() {
        let cases = [
            (0, 10, false),
            (9, 10, false),
            (10, 10, true),
            (500, 10, true),
            (1, 1, true),
            (500, 0, false),
        ];
        for (empty, after, expected) in cases {
            assert_eq!(flagged(empty, after), expected, "{empty} after {after}");
        }
    }

    #[test]
    fn the_note_names_each_detector_without_data() {
        let cases: [(&[(&str, i64)], &str); 3] = [
            (&[], "none"),
            (
                &[("a", 10)],
                "1 detector without records: a for 10 intervals",
            ),
            (
                &[("a", 10), ("syslog-sudo-detector", 37)],
                "2 detectors without records: a for 10 intervals, syslog-sudo-detector for 37 \
                 intervals",
            ),
        ];
        for (quiet, expected) in cases {
            assert_eq!(note(quiet), expected);
        }
    }

    #[test]
    fn quiet_intervals_flag_a_detector_and_one_record_clears_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let metrics = Metrics::register(&Registry::new())?;
        let health = Health::default();
        health.register("lease", "ok");
        health.ready("lease");
        let scored = Scored {
            score: 0.0,
            grade: 0.0,
            confidence: 0.0,
            expected: 0.0,
            rule: None,
        };
        let detectors = [("quiet", 3), ("never", 0)];
        let mut seen = Vec::new();
        // Three intervals without a record, then one with, then one without.
        for events in [0, 0, 0, 5, 0] {
            for (name, _) in detectors {
                metrics.scored(name, 0.0, events, &scored);
            }
            publish(detectors, &metrics, (&health, NO_DATA_NOTE));
            let gauge = |name| metrics.no_data.with_label_values(&[name]).get();
            seen.push((gauge("quiet"), gauge("never")));
        }
        assert_eq!(seen, [(0, 0), (0, 0), (1, 0), (0, 0), (0, 0)]);
        for _ in 0..2 {
            metrics.scored("quiet", 0.0, 0, &scored);
        }
        publish(detectors, &metrics, (&health, NO_DATA_NOTE));
        assert_eq!(
            health.report(),
            (
                true,
                "lease: ok\nno_data: 1 detector without records: quiet for 3 intervals\n"
                    .to_owned()
            ),
            "a note: still ready"
        );
        Ok(())
    }
}
