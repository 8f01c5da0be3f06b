//! Scoring the detector against ground truth, and scoring the past.
//!
//! - `score` (pure): per detector, over the run's whole evaluated span (every label's span,
//!   anomaly and normal phases; without normal labels, the anomalies' span with ten intervals
//!   either side): precision over every flagged interval in the span (a flag away from the
//!   detector's phases is false), recall, false alerts (episodes of consecutive flagged
//!   intervals away from every phase) per hour of normal traffic, and per phase the time to
//!   detect, both to the end of the first flagged interval and to the first delivery of its
//!   alert (recorded by the detector in the alerts index: [`crate::alert::DeliveryLog`]). A
//!   category detector ([`score_category`]) is scored from its interval summaries and its
//!   entity results: its precision counts entity flags (true only for the entity its phase
//!   labelled, in that phase), and it gets a row per labelled entity and per other flagged
//!   entity (the most flagged [`ENTITY_ROWS`]; the rest summed up in one row).
//! - `report` (pure): the scores as a terminal [`table`], and a [`Report`] as Markdown or as a
//!   self-contained HTML page (`evaluate --report FILE`).
//! - [`evaluate`]: reads the `labels` topic, the results index (summaries, and a category
//!   detector's entity results: [`entity_flagged`]) and the alerts index, and scores.
//! - [`historical`]: scores a past range from OpenSearch with models trained on the history
//!   before it, every feature of a detector as the service judges them, and writes results
//!   marked with a `task_id` (monitors never alert on them).

mod report;
mod score;

use std::collections::BTreeSet;
use std::time::Duration;

use opensearch::{OpenSearch, SearchParts};
use pipeline::kafka::KafkaConfig;
use pipeline::search::SearchError;
use pipeline::wire::{Label, LabelKind};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{Value, json};

use crate::measure;
use crate::model::Model;
use crate::service::live::Extra;
use crate::service::scoring::judge_extra;
use crate::spec::{DetectorSpec, Spec};
use crate::store;

pub use report::{Format, Report, html_page, markdown, render, table};
pub use score::{
    Delivered, ENTITY_ROWS, EntityFlag, Input, Phase, PhaseScore, Score, merge, score,
    score_category, span,
};

/// How many intervals either side of the anomaly labels are evaluated when a run labelled no
/// normal traffic.
pub const MARGIN_INTERVALS: i64 = 10;

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

/// The hits of the search `body` in `index` (none when the index does not exist). An error
/// status, or an answer from only some of the index's shards, is an error: a report that
/// counted no flags because the search failed would read as a detector that missed everything.
async fn search_hits(
    client: &OpenSearch,
    index: &str,
    body: Value,
) -> Result<Vec<Value>, SearchError> {
    let response = client
        .search(SearchParts::Index(&[index]))
        .ignore_unavailable(true)
        .allow_no_indices(true)
        .body(body)
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    let mut answer: Value = response.json().await.map_err(SearchError::Unreachable)?;
    let failed = answer["_shards"]["failed"].as_u64().unwrap_or(0);
    if !status.is_success() || failed > 0 || answer["timed_out"] == true {
        let shards = &answer["_shards"];
        let reason = if !status.is_success() {
            pipeline::search::error_reason(&answer.to_string())
        } else if failed > 0 {
            format!(
                "{failed} of {} shards failed: {}",
                shards["total"],
                pipeline::search::describe_error(&shards["failures"][0]["reason"])
            )
        } else {
            "the search timed out".to_owned()
        };
        return Err(SearchError::Refused {
            what: format!("searching {index}"),
            status,
            reason,
        });
    }
    Ok(match answer.pointer_mut("/hits/hits").map(Value::take) {
        Some(Value::Array(hits)) => hits,
        _ => Vec::new(),
    })
}

/// A detector's anomalous live (not historical) intervals in `[from, to)`.
pub async fn flagged(
    client: &OpenSearch,
    index: &str,
    detector: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, SearchError> {
    let hits = search_hits(
        client,
        index,
        json!({
            "size": 10_000,
            "_source": ["data_start_time", "data_end_time"],
            "query": {"bool": {
                "filter": [
                    {"term": {"detector_id": detector}},
                    {"range": {"anomaly_grade": {"gt": 0}}},
                    {"range": {"data_start_time": {"gte": from, "lt": to}}}
                ],
                // A category detector's entity results are summed up in its interval summary.
                "must_not": [
                    {"exists": {"field": "task_id"}},
                    {"nested": {
                        "path": "entity",
                        "query": {"exists": {"field": "entity.value"}},
                        "ignore_unmapped": true
                    }}
                ]
            }}
        }),
    )
    .await?;
    // A detector whose entities are split has a summary per part: an interval counts once.
    let intervals: BTreeSet<(i64, i64)> = hits
        .iter()
        .filter_map(|h| {
            Some((
                h["_source"]["data_start_time"].as_i64()?,
                h["_source"]["data_end_time"].as_i64()?,
            ))
        })
        .collect();
    Ok(intervals.into_iter().collect())
}

/// A category detector's flagged entities in `[from, to)`: its live entity results, each an
/// entity and its interval (every one: read a page of 10,000 at a time).
pub async fn entity_flagged(
    client: &OpenSearch,
    index: &str,
    detector: &str,
    from: i64,
    to: i64,
) -> Result<Vec<EntityFlag>, SearchError> {
    let mut flags = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({
            "size": 10_000,
            "_source": ["data_start_time", "data_end_time", "entity"],
            "sort": [{"data_start_time": "asc"}, {"_doc": "asc"}],
            "query": {"bool": {
                "filter": [
                    {"term": {"detector_id": detector}},
                    {"range": {"anomaly_grade": {"gt": 0}}},
                    {"range": {"data_start_time": {"gte": from, "lt": to}}},
                    {"nested": {
                        "path": "entity",
                        "query": {"exists": {"field": "entity.value"}},
                        "ignore_unmapped": true
                    }}
                ],
                "must_not": [{"exists": {"field": "task_id"}}]
            }}
        });
        if let Some(after) = after.take() {
            body["search_after"] = after;
        }
        let hits = search_hits(client, index, body).await?;
        flags.extend(hits.iter().filter_map(|h| {
            let source = &h["_source"];
            Some(EntityFlag {
                entity: source["entity"][0]["value"].as_str()?.to_owned(),
                interval: (
                    source["data_start_time"].as_i64()?,
                    source["data_end_time"].as_i64()?,
                ),
            })
        }));
        match hits.last() {
            Some(last) if hits.len() == 10_000 => after = Some(last["sort"].clone()),
            _ => return Ok(flags),
        }
    }
}

/// A detector's delivered alerts (one per channel) whose episode began in `[from, to)`, from
/// the alerts index (none when it does not exist: a detector without a record of deliveries).
pub async fn deliveries(
    client: &OpenSearch,
    index: &str,
    detector: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Delivered>, SearchError> {
    let hits = search_hits(
        client,
        index,
        json!({
            "size": 10_000,
            "_source": ["interval_start", "interval_end", "delivered_at"],
            "query": {"bool": {"filter": [
                {"term": {"detector": detector}},
                {"term": {"kind": "alert"}},
                {"range": {"interval_start": {"gte": from, "lt": to}}}
            ]}}
        }),
    )
    .await?;
    Ok(hits
        .iter()
        .filter_map(|h| {
            let source = &h["_source"];
            Some(Delivered {
                interval: (
                    source["interval_start"].as_i64()?,
                    source["interval_end"].as_i64()?,
                ),
                delivered_at: source["delivered_at"].as_i64()?,
            })
        })
        .collect())
}

/// Scores every detector with a `ground_truth` against the labels (of `run`, if given) over
/// their evaluated span ([`span`]).
pub async fn evaluate(
    spec: &Spec,
    kafka: &KafkaConfig,
    client: &OpenSearch,
    run: Option<&str>,
) -> anyhow::Result<Report> {
    let mut labels: Vec<Label> = read_labels(kafka)
        .await?
        .into_iter()
        .filter(|l| run.is_none_or(|r| l.run_id == r))
        .collect();
    // A label published twice (a producer retried) is one phase.
    let mut seen = BTreeSet::new();
    labels.retain(|l| {
        seen.insert((
            l.run_id.clone(),
            l.phase,
            l.field.clone(),
            l.start_ms,
            l.end_ms,
            l.entity.clone(),
        ))
    });
    anyhow::ensure!(
        !labels.is_empty(),
        "no labels on `{}`{}: run the producer with an anomaly or a scenario first",
        kafka.topics.labels,
        run.map(|r| format!(" for run {r}")).unwrap_or_default()
    );
    let bounds: Vec<(i64, i64, bool)> = labels
        .iter()
        .map(|l| (l.start_ms, l.end_ms, l.kind == LabelKind::Normal))
        .collect();
    let mut scores = Vec::new();
    for detector in &spec.detectors {
        let Some(truth) = &detector.ground_truth else {
            continue;
        };
        let interval = i64::try_from(detector.interval.as_millis()).unwrap_or(i64::MAX);
        let phases: Vec<Phase> = labels
            .iter()
            .filter(|l| l.kind == LabelKind::Anomaly && l.field == *truth)
            .map(|l| Phase {
                run_id: l.run_id.clone(),
                phase: l.phase,
                field: l.field.clone(),
                start_ms: l.start_ms,
                end_ms: l.end_ms,
                intensity: l.intensity,
                traffic: l.traffic.clone(),
                entity: l.entity.clone(),
            })
            .collect();
        let evaluated = span(&bounds, MARGIN_INTERVALS.saturating_mul(interval));
        // The span's extent, and one interval more for a phase's tail at its end.
        let from = evaluated.first().map_or(0, |s| s.0);
        let to = evaluated.last().map_or(0, |s| s.1).saturating_add(interval);
        let flagged = flagged(client, &spec.results, &detector.name, from, to).await?;
        let deliveries = deliveries(client, &spec.alerts, &detector.name, from, to).await?;
        let input = Input {
            detector: &detector.name,
            entity: None,
            flagged: &flagged,
            phases: &phases,
            deliveries: &deliveries,
            span: &evaluated,
            interval_ms: interval,
        };
        if detector.category.is_some() {
            let entities = entity_flagged(client, &spec.results, &detector.name, from, to).await?;
            scores.extend(score_category(&input, &entities, ENTITY_ROWS));
        } else {
            scores.push(score(&input));
        }
    }
    let runs: BTreeSet<String> = labels.iter().map(|l| l.run_id.clone()).collect();
    Ok(Report {
        run: run.map(str::to_owned),
        runs: runs.into_iter().collect(),
        anomaly_labels: labels.iter().filter(|l| l.kind.is_anomaly()).count(),
        normal_labels: labels.iter().filter(|l| !l.kind.is_anomaly()).count(),
        from: labels.iter().map(|l| l.start_ms).min().unwrap_or(0),
        to: labels.iter().map(|l| l.end_ms).max().unwrap_or(0),
        scores,
    })
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
    // Seeded as the service seeds a cold start, extra features included.
    let seed = 0x5eed ^ index as u64;
    let mut model = Model::new(&detector.model, detector.min_rise(), seed)?;
    let mut extra = Extra::fresh(detector, seed, None)?;
    for past in store::history(client, &spec.events, detector, train_from, from).await? {
        measure::judge(detector, &mut model, &past)?;
    }
    // Each extra feature trained on the same history, and its intervals of the range.
    let mut extra_ranges = Vec::with_capacity(extra.len());
    for feature in &mut extra {
        let view = &feature.view;
        for past in store::history(client, &spec.events, view, train_from, from).await? {
            measure::judge(view, &mut feature.model, &past)?;
        }
        extra_ranges.push(
            store::history(client, &spec.events, view, from, to)
                .await?
                .into_iter(),
        );
    }
    let started = chrono::Utc::now().timestamp_millis();
    let mut results = Vec::new();
    for interval in store::history(client, &spec.events, detector, from, to).await? {
        let (interval, scored) = measure::judge(detector, &mut model, &interval)?;
        let mut result = store::result(detector, &interval, &scored, started, Some(task));
        if !extra.is_empty() {
            let extra_intervals = extra_ranges.iter_mut().map(Iterator::next).collect();
            judge_extra(detector, &mut extra, extra_intervals, &mut result);
        }
        results.push(result);
    }
    let anomalous = results.iter().filter(|r| r.anomaly_grade > 0.0).count();
    for chunk in results.chunks(1_000) {
        store::write_results(client, &spec.results, chunk).await?;
    }
    Ok((results.len(), anomalous))
}
