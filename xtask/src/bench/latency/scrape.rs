//! Reading a sample out of a service's `/metrics` page (Prometheus text format).
//!
//! The latency run cannot see inside the sink from outside (a document is not observable between
//! the bulk acknowledgement and the next refresh without disturbing the refresh), so it reads the
//! sink's own histograms for the bulk requests' size and duration. Pure, so the parsing is tested.

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
}
