//! Scoring the detector against ground truth, and scoring the past.
//!
//! - [`score`] (pure): per detector, the flagged intervals against the labelled phases of its
//!   `ground_truth` field: precision (flagged intervals that fall in a phase, or within one
//!   interval after it), recall (phases with at least one flagged interval) and the median time
//!   to detect (from a phase's start to the end of its first flagged interval, the earliest an
//!   alert can go out).
//! - [`evaluate`]: reads the `labels` topic and the results index and prints that table.
//! - [`historical`]: scores a past range from OpenSearch with a model trained on the history
//!   before it, and writes results marked with a `task_id` (monitors never alert on them).

use std::fmt::Write as _;
use std::time::Duration;

use opensearch::{OpenSearch, SearchParts};
use pipeline::kafka::KafkaConfig;
use pipeline::search::SearchError;
use pipeline::wire::Label;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{Value, json};

use crate::measure;
use crate::model::Model;
use crate::spec::{DetectorSpec, Spec};
use crate::store;

/// One detector's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The detector.
    pub detector: String,
    /// Labelled phases of its field.
    pub phases: usize,
    /// Phases with at least one flagged interval.
    pub detected: usize,
    /// Flagged intervals.
    pub flagged: usize,
    /// Flagged intervals inside a phase (or within one interval after it).
    pub true_flags: usize,
    /// Median time to detect, in milliseconds, over the detected phases.
    pub median_ttd_ms: Option<i64>,
}

impl Score {
    /// Flagged intervals that were in a phase; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| self.true_flags as f64 / self.flagged as f64)
    }

    /// Phases detected; `None` without phases.
    pub fn recall(&self) -> Option<f64> {
        (self.phases > 0).then(|| self.detected as f64 / self.phases as f64)
    }
}

/// Scores one detector: `flagged` are the `[start, end)` of its anomalous intervals, `phases`
/// the `[start, end)` of its labelled phases, `interval_ms` its interval.
pub fn score(
    detector: &str,
    flagged: &[(i64, i64)],
    phases: &[(i64, i64)],
    interval_ms: i64,
) -> Score {
    let in_phase =
        |(start, end): (i64, i64), (from, to): (i64, i64)| start < to + interval_ms && end > from;
    let true_flags = flagged
        .iter()
        .filter(|&&f| phases.iter().any(|&p| in_phase(f, p)))
        .count();
    let mut ttd: Vec<i64> = phases
        .iter()
        .filter_map(|&p| {
            flagged
                .iter()
                .filter(|&&f| in_phase(f, p))
                .map(|&(_, end)| (end - p.0).max(0))
                .min()
        })
        .collect();
    ttd.sort_unstable();
    Score {
        detector: detector.to_owned(),
        phases: phases.len(),
        detected: ttd.len(),
        flagged: flagged.len(),
        true_flags,
        median_ttd_ms: ttd.get(ttd.len() / 2).copied(),
    }
}

/// The scores as a table.
pub fn table(scores: &[Score]) -> String {
    let mut out = format!(
        "{:<30} {:>6} {:>8} {:>7} {:>9} {:>7} {:>12}\n",
        "detector", "phases", "detected", "flagged", "precision", "recall", "median TTD"
    );
    let percent = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0));
    for s in scores {
        let _ = writeln!(
            out,
            "{:<30} {:>6} {:>8} {:>7} {:>9} {:>7} {:>12}",
            s.detector,
            s.phases,
            s.detected,
            s.flagged,
            percent(s.precision()),
            percent(s.recall()),
            s.median_ttd_ms
                .map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1_000.0)),
        );
    }
    out
}

/// Every label on the topic (read from the beginning until it has been quiet for 2 s).
pub async fn read_labels(kafka: &KafkaConfig) -> Result<Vec<Label>, rdkafka::error::KafkaError> {
    let group = format!(
        "logwarden-evaluate-{}",
        chrono::Utc::now().timestamp_millis()
    );
    let mut config = kafka.consumer_config("logwarden-evaluate", &group);
    config.set("enable.auto.commit", "false");
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[&kafka.topics.labels])?;
    let mut labels = Vec::new();
    let mut quiet = Duration::from_secs(10);
    while let Ok(message) = tokio::time::timeout(quiet, consumer.recv()).await {
        quiet = Duration::from_secs(2);
        if let Some(label) = message?
            .payload()
            .and_then(|p| serde_json::from_slice::<Label>(p).ok())
        {
            labels.push(label);
        }
    }
    Ok(labels)
}

/// A detector's anomalous live (not historical) intervals in `[from, to)`.
pub async fn flagged(
    client: &OpenSearch,
    index: &str,
    detector: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, SearchError> {
    let response = client
        .search(SearchParts::Index(&[index]))
        .ignore_unavailable(true)
        .allow_no_indices(true)
        .body(json!({
            "size": 10_000,
            "_source": ["data_start_time", "data_end_time"],
            "query": {"bool": {
                "filter": [
                    {"term": {"detector_id": detector}},
                    {"range": {"anomaly_grade": {"gt": 0}}},
                    {"range": {"data_start_time": {"gte": from, "lt": to}}}
                ],
                "must_not": [{"exists": {"field": "task_id"}}]
            }}
        }))
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let answer: Value = response.json().await.map_err(SearchError::Unreachable)?;
    Ok(answer["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| {
                    Some((
                        h["_source"]["data_start_time"].as_i64()?,
                        h["_source"]["data_end_time"].as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Scores every detector with a `ground_truth` against the labels (of `run`, if given) over the
/// span of those labels (plus ten intervals either side).
pub async fn evaluate(
    spec: &Spec,
    kafka: &KafkaConfig,
    client: &OpenSearch,
    run: Option<&str>,
) -> anyhow::Result<Vec<Score>> {
    let labels: Vec<Label> = read_labels(kafka)
        .await?
        .into_iter()
        .filter(|l| run.is_none_or(|r| l.run_id == r))
        .collect();
    anyhow::ensure!(
        !labels.is_empty(),
        "no labels on `{}`{}: run the producer with an anomaly or a scenario first",
        kafka.topics.labels,
        run.map(|r| format!(" for run {r}")).unwrap_or_default()
    );
    let mut scores = Vec::new();
    for detector in &spec.detectors {
        let Some(truth) = &detector.ground_truth else {
            continue;
        };
        let interval = i64::try_from(detector.interval.as_millis()).unwrap_or(i64::MAX);
        let phases: Vec<(i64, i64)> = labels
            .iter()
            .filter(|l| l.field == *truth)
            .map(|l| (l.start_ms, l.end_ms))
            .collect();
        let from = labels.iter().map(|l| l.start_ms).min().unwrap_or(0) - 10 * interval;
        let to = labels.iter().map(|l| l.end_ms).max().unwrap_or(0) + 10 * interval;
        let flagged = flagged(client, &spec.results, &detector.name, from, to).await?;
        scores.push(score(&detector.name, &flagged, &phases, interval));
    }
    Ok(scores)
}

/// Scores `[from, to)` for every detector with a fresh model trained on the `history` intervals
/// before `from`; writes the results marked with a task id and returns it.
pub async fn historical(
    spec: &Spec,
    client: &OpenSearch,
    from: i64,
    to: i64,
) -> anyhow::Result<(String, Vec<(String, usize, usize)>)> {
    let task = format!("historical-{}", chrono::Utc::now().timestamp_millis());
    store::put_results_template(client, &spec.results).await?;
    let mut summary = Vec::new();
    for (i, detector) in spec.detectors.iter().enumerate() {
        let (scored, anomalous) =
            historical_one(spec, client, detector, i, from, to, &task).await?;
        summary.push((detector.name.clone(), scored, anomalous));
    }
    Ok((task, summary))
}

async fn historical_one(
    spec: &Spec,
    client: &OpenSearch,
    detector: &DetectorSpec,
    index: usize,
    from: i64,
    to: i64,
    task: &str,
) -> anyhow::Result<(usize, usize)> {
    let interval = i64::try_from(detector.interval.as_millis()).unwrap_or(i64::MAX);
    let from = from.div_euclid(interval) * interval;
    let train_from = from - interval * i64::try_from(detector.model.history).unwrap_or(0);
    let mut model = Model::new(&detector.model, detector.min_rise(), 0x5eed ^ index as u64)?;
    for past in store::history(client, &spec.events, detector, train_from, from).await? {
        measure::judge(detector, &mut model, &past)?;
    }
    let started = chrono::Utc::now().timestamp_millis();
    let mut results = Vec::new();
    for interval in store::history(client, &spec.events, detector, from, to).await? {
        let (interval, scored) = measure::judge(detector, &mut model, &interval)?;
        results.push(store::result(
            detector,
            &interval,
            &scored,
            started,
            Some(task),
        ));
    }
    let anomalous = results.iter().filter(|r| r.anomaly_grade > 0.0).count();
    for chunk in results.chunks(1_000) {
        store::write_results(client, &spec.results, chunk).await?;
    }
    Ok((results.len(), anomalous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_time_to_detect() {
        let minute = 60_000;
        // Two phases; the first flagged from its second minute for 3 minutes, the second missed;
        // one false flag far away.
        let phases = [(10 * minute, 15 * minute), (30 * minute, 33 * minute)];
        let flagged = [
            (11 * minute, 12 * minute),
            (12 * minute, 13 * minute),
            (15 * minute, 16 * minute), // just after: still the phase's tail
            (50 * minute, 51 * minute),
        ];
        let s = score("d", &flagged, &phases, minute);
        assert_eq!(
            (s.phases, s.detected, s.flagged, s.true_flags),
            (2, 1, 4, 3)
        );
        assert_eq!(s.precision(), Some(0.75));
        assert_eq!(s.recall(), Some(0.5));
        assert_eq!(s.median_ttd_ms, Some(2 * minute));
        let text = table(&[s]);
        assert!(
            text.contains("75%") && text.contains("50%") && text.contains("120.0 s"),
            "{text}"
        );
    }

    #[test]
    fn nothing_flagged_has_no_precision() {
        let s = score("d", &[], &[(0, 10)], 1);
        assert_eq!(s.precision(), None);
        assert_eq!(s.recall(), Some(0.0));
        assert_eq!(s.median_ttd_ms, None);
    }
}
