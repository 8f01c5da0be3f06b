//! Reading a sample out of a service's `/metrics` page (Prometheus text format).
//!
//! Some things cannot be seen from outside a service without disturbing it: a document between
//! its bulk acknowledgement and the next refresh, or how far the detector has scored. The
//! measurements read the services' own metrics for those (the sink's bulk histograms, the
//! detector's `scored_until`). Pure, so the parsing is tested.

/// The value of the unlabelled sample `name` (e.g. `logwarden_sink_bulk_seconds_sum`), or `None`
/// when the page has no such line or its value is not a number.
pub fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        })
}

/// The values of every sample of `name`, labelled or not (e.g. one per detector).
pub fn samples(page: &str, name: &str) -> Vec<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let metric = key.split_once('{').map_or(key, |(metric, _)| metric);
            (metric == name).then(|| value.trim().parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unlabelled_samples_only() {
        let page = "\
# HELP logwarden_sink_bulk_seconds Bulk request latency.
# TYPE logwarden_sink_bulk_seconds histogram
logwarden_sink_bulk_seconds_bucket{le=\"0.005\"} 3
logwarden_sink_bulk_seconds_sum 1.25
logwarden_sink_bulk_seconds_count 40
logwarden_sink_bulk_seconds_count_extra 7
logwarden_sink_broken NaNx
";
        let cases = [
            ("logwarden_sink_bulk_seconds_sum", Some(1.25)),
            ("logwarden_sink_bulk_seconds_count", Some(40.0)),
            ("logwarden_sink_bulk_seconds_bucket", None),
            ("logwarden_sink_bulk_seconds", None),
            ("logwarden_sink_broken", None),
            ("absent", None),
        ];
        for (name, expected) in cases {
            assert_eq!(sample(page, name), expected, "{name}");
        }
    }

    #[test]
    fn finds_every_label_set() {
        let page = "\
# TYPE logwarden_detector_scored_until_seconds gauge
logwarden_detector_scored_until_seconds{detector=\"a b\"} 1700000005
logwarden_detector_scored_until_seconds{detector=\"c\"} 1700000010
logwarden_detector_scored_until_seconds_x 3
logwarden_detector_active 1
";
        assert_eq!(
            samples(page, "logwarden_detector_scored_until_seconds"),
            [1_700_000_005.0, 1_700_000_010.0]
        );
        assert_eq!(samples(page, "logwarden_detector_active"), [1.0]);
        assert!(samples(page, "absent").is_empty());
    }
}
