//! What the detector reads from and writes to OpenSearch: history for a cold start (a date
//! histogram over the events alias), anomaly results, and the checkpoints index (its document is
//! [`crate::checkpoints`]'s).
//!
//! A result's form is a wire format (the same document goes to the results index and to the
//! `anomalies` topic), so [`ResultDoc`] is defined in [`pipeline::wire`]; this module builds it
//! from a scored interval ([`result`]) and stores it.

use opensearch::{BulkParts, OpenSearch, SearchParts};
use pipeline::search::{SearchError, bulk_refusal, describe_error, results_template};
pub use pipeline::wire::{FeatureData, ResultDoc};
use serde_json::{Value, json};

use crate::model::Scored;
use crate::spec::{Aggregation, DetectorSpec};
use crate::window::Interval;

/// The result of scoring `interval` for `detector`: written to the results index and, when
/// anomalous, published on `anomalies`. `started` is when scoring began (epoch ms); `task` marks
/// a historical analysis.
pub fn result(
    detector: &DetectorSpec,
    interval: &Interval,
    scored: &Scored,
    started: i64,
    task: Option<&str>,
) -> ResultDoc {
    let feature = detector.feature_name();
    ResultDoc {
        detector_id: detector.name.clone(),
        detector_name: detector.name.clone(),
        feature_data: vec![FeatureData {
            feature_id: feature.clone(),
            feature_name: feature,
            data: interval.value,
        }],
        data_start_time: interval.start,
        data_end_time: interval.end,
        execution_start_time: started,
        execution_end_time: chrono::Utc::now().timestamp_millis(),
        anomaly_score: scored.score,
        anomaly_grade: scored.grade,
        confidence: scored.confidence,
        expected_value: scored.expected,
        value: interval.value,
        events: interval.events,
        rule: scored
            .rule
            .map(|rule| format!("{rule:?}").to_ascii_lowercase()),
        task_id: task.map(str::to_owned),
        error: crate::measure::unjudged_reason(detector, interval),
        entity: None,
        entities: None,
        relevant_attribution: None,
    }
}

/// Creates the results index template unless it exists (the provisioner owns it then).
pub async fn put_results_template(client: &OpenSearch, index: &str) -> Result<(), SearchError> {
    pipeline::search::ensure_template(client, index, results_template(index)).await
}

/// Writes results (by id: writing again overwrites).
pub async fn write_results(
    client: &OpenSearch,
    index: &str,
    results: &[ResultDoc],
) -> Result<(), SearchError> {
    if results.is_empty() {
        return Ok(());
    }
    let mut body: Vec<Value> = Vec::with_capacity(results.len() * 2);
    for result in results {
        body.push(json!({"index": {"_index": index, "_id": result.id()}}));
        body.push(serde_json::to_value(result).unwrap_or_default());
    }
    let body: Vec<opensearch::http::request::JsonBody<Value>> =
        body.into_iter().map(Into::into).collect();
    let response = client
        .bulk(BulkParts::None)
        .body(body)
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    let answer: Value = response.json().await.map_err(SearchError::Unreachable)?;
    if !status.is_success() || answer["errors"] == true {
        let reason = bulk_refusal(&answer, "index").unwrap_or_else(|| answer.to_string());
        return Err(SearchError::Refused {
            what: format!("writing results to {index}"),
            status,
            reason,
        });
    }
    Ok(())
}

/// The detector's intervals in `[from, to)` from the events alias: a date histogram of the
/// feature, from the first interval with data (empty intervals after it count as 0). Each holds
/// the raw total and the events, as a live window's do ([`crate::measure`] makes the value).
pub async fn history(
    client: &OpenSearch,
    alias: &str,
    detector: &DetectorSpec,
    from: i64,
    to: i64,
) -> Result<Vec<Interval>, SearchError> {
    let interval_ms = i64::try_from(detector.interval.as_millis()).unwrap_or(i64::MAX);
    let value_agg = match (&detector.feature.aggregation, &detector.feature.field) {
        (Aggregation::Count | Aggregation::NewValues, _) | (_, None) => None,
        (_, Some(field)) => Some(json!({"sum": {"field": field}})),
    };
    let mut histogram = json!({
        "date_histogram": {
            "field": "@timestamp",
            "fixed_interval": format!("{interval_ms}ms"),
            "min_doc_count": 0,
            "extended_bounds": {"max": to - interval_ms},
        }
    });
    if let Some(agg) = value_agg {
        histogram["aggs"] = json!({"value": agg});
    }
    let what = || format!("reading history from {alias}");
    let aggs = json!({"intervals": histogram});
    let Some(answer) = aggregate(client, alias, detector, (from, to), aggs, what).await? else {
        return Ok(Vec::new());
    };
    let buckets = answer["aggregations"]["intervals"]["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(buckets
        .iter()
        .filter_map(|bucket| {
            let start = bucket["key"].as_i64()?;
            let events = bucket["doc_count"].as_u64().unwrap_or(0);
            let sum = bucket["value"]["value"].as_f64().unwrap_or(0.0);
            let value = match (detector.feature.aggregation, &detector.feature.field) {
                // The history is what a new-values detector learns: nothing in it is new.
                (Aggregation::NewValues, _) => 0.0,
                (Aggregation::Count, _) | (_, None) => events as f64,
                (_, Some(_)) => sum,
            };
            (start >= from && start + interval_ms <= to).then_some(Interval {
                start,
                end: start + interval_ms,
                value,
                events,
            })
        })
        .collect())
}

/// The distinct values of a `new_values` detector's field in `[from, to)` (its filter applied),
/// at most [`crate::novelty::MAX_KNOWN`]: what a cold start learns as usual.
pub async fn distinct_values(
    client: &OpenSearch,
    alias: &str,
    detector: &DetectorSpec,
    from: i64,
    to: i64,
) -> Result<Vec<String>, SearchError> {
    let Some(field) = &detector.feature.field else {
        return Ok(Vec::new());
    };
    let what = || format!("reading the values of {field} from {alias}");
    let aggs = json!({"values": {"terms": {"field": field, "size": crate::novelty::MAX_KNOWN}}});
    let Some(answer) = aggregate(client, alias, detector, (from, to), aggs, what).await? else {
        return Ok(Vec::new());
    };
    Ok(answer["aggregations"]["values"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| match &b["key"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
        .collect())
}

/// Runs `aggs` over the detector's records (its filter) in `[from, to)` of the events alias;
/// `None` when the alias does not exist yet, the refusal (`what` was refused) otherwise.
async fn aggregate(
    client: &OpenSearch,
    alias: &str,
    detector: &DetectorSpec,
    (from, to): (i64, i64),
    aggs: Value,
    what: impl FnOnce() -> String,
) -> Result<Option<Value>, SearchError> {
    let mut filter =
        vec![json!({"range": {"@timestamp": {"gte": from, "lt": to, "format": "epoch_millis"}}})];
    if let Some(f) = &detector.feature.filter {
        filter.push(json!({"term": {f.field.clone(): f.value.clone()}}));
    }
    let response = client
        .search(SearchParts::Index(&[alias]))
        .ignore_unavailable(true)
        .allow_no_indices(true)
        .body(json!({
            "size": 0,
            "query": {"bool": {"filter": filter}},
            "aggs": aggs,
        }))
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    if status == opensearch::http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let answer: Value = response.json().await.map_err(SearchError::Unreachable)?;
    if !status.is_success() {
        return Err(SearchError::Refused {
            what: what(),
            status,
            reason: describe_error(&answer["error"]),
        });
    }
    Ok(Some(answer))
}

/// Creates the checkpoints index with its state unindexed (idempotent).
pub async fn ensure_checkpoints_index(client: &OpenSearch, index: &str) -> Result<(), SearchError> {
    let response = client
        .indices()
        .create(opensearch::indices::IndicesCreateParts::Index(index))
        .body(json!({
            "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
            "mappings": {"properties": {
                "detector": {"type": "keyword"},
                "kind": {"type": "keyword"},
                "holder": {"type": "keyword"},
                "expires_at": {"type": "long"},
                "shards": {"type": "long"},
                "generation": {"type": "long"},
                "spec": {"type": "keyword", "index": false},
                "saved_at": {"type": "date", "format": "epoch_millis"},
                "state": {"type": "text", "index": false}
            }}
        }))
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() || body.contains("resource_already_exists_exception") {
        return Ok(());
    }
    Err(SearchError::Refused {
        what: format!("creating {index}"),
        status,
        reason: pipeline::search::error_reason(&body),
    })
}
