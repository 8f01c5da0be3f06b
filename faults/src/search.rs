//! OpenSearch read back as a user checks it: document counts and ids, the date histogram of a
//! field, the detector's results. Every read refreshes first, so it sees every acknowledged
//! write.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pipeline::testkit;
use serde_json::{Value, json};

/// The stack's OpenSearch.
#[derive(Debug, Clone)]
pub struct Search {
    /// Its URL.
    pub url: String,
    http: reqwest::Client,
}

/// One bucket of a date histogram: documents, and the sum of the field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Documents stamped in the interval.
    pub events: u64,
    /// The field's sum over them.
    pub sum: f64,
}

impl Search {
    /// The stack's OpenSearch, after checking that it answers.
    pub async fn require() -> Self {
        let url = testkit::require_opensearch().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|err| panic!("building an HTTP client: {err}"));
        Self { url, http }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/{path}", self.url))
            .json(body)
            .send()
            .await
            .map_err(|err| format!("POST {path}: {err}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|err| format!("POST {path}: {err}"))?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("POST {path}: {status} {value}"))
        }
    }

    async fn refresh(&self, index: &str) {
        let _ = self
            .post(
                &format!("{index}/_refresh?ignore_unavailable=true"),
                &json!({}),
            )
            .await;
    }

    /// Documents in `index` (an alias or pattern); `None` while OpenSearch does not answer.
    pub async fn count(&self, index: &str) -> Option<u64> {
        self.refresh(index).await;
        let answer = self
            .post(
                &format!("{index}/_count?ignore_unavailable=true&allow_no_indices=true"),
                &json!({}),
            )
            .await
            .ok()?;
        answer["count"].as_u64()
    }

    /// Every document id in `index`, read with a scroll.
    ///
    /// # Panics
    /// When a request fails.
    pub async fn ids(&self, index: &str) -> BTreeSet<String> {
        self.refresh(index).await;
        let mut ids = BTreeSet::new();
        let mut page = self
            .post(
                &format!("{index}/_search?scroll=1m"),
                &json!({"size": 5_000, "_source": false, "sort": ["_doc"]}),
            )
            .await
            .unwrap_or_else(|err| panic!("reading the ids of {index}: {err}"));
        loop {
            let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
            if hits.is_empty() {
                break;
            }
            ids.extend(
                hits.iter()
                    .filter_map(|hit| hit["_id"].as_str().map(str::to_owned)),
            );
            let scroll_id = page["_scroll_id"].clone();
            page = self
                .post(
                    "_search/scroll",
                    &json!({"scroll": "1m", "scroll_id": scroll_id}),
                )
                .await
                .unwrap_or_else(|err| panic!("reading the ids of {index}: {err}"));
        }
        if let Some(scroll_id) = page["_scroll_id"].as_str() {
            let _ = self
                .http
                .delete(format!("{}/_search/scroll", self.url))
                .json(&json!({"scroll_id": scroll_id}))
                .send()
                .await;
        }
        ids
    }

    /// The date histogram of `index` on `@timestamp` in `interval_ms` buckets from `from_ms`
    /// (inclusive) to `to_ms` (exclusive): documents and the sum of `field` per bucket start,
    /// empty buckets included.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn histogram(
        &self,
        index: &str,
        field: &str,
        interval_ms: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> BTreeMap<i64, Bucket> {
        self.refresh(index).await;
        let answer = self
            .post(
                &format!("{index}/_search"),
                &json!({
                    "size": 0,
                    "query": {"range": {"@timestamp": {
                        "gte": from_ms, "lt": to_ms, "format": "epoch_millis"
                    }}},
                    "aggs": {"intervals": {
                        "date_histogram": {
                            "field": "@timestamp",
                            "fixed_interval": format!("{interval_ms}ms"),
                            "min_doc_count": 0,
                            "extended_bounds": {"min": from_ms, "max": to_ms - 1}
                        },
                        "aggs": {"sum": {"sum": {"field": field}}}
                    }}
                }),
            )
            .await
            .unwrap_or_else(|err| panic!("the date histogram of {index}: {err}"));
        answer["aggregations"]["intervals"]["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("no buckets in {answer}"))
            .iter()
            .filter_map(|bucket| {
                Some((
                    bucket["key"].as_i64()?,
                    Bucket {
                        events: bucket["doc_count"].as_u64()?,
                        sum: bucket["sum"]["value"].as_f64()?,
                    },
                ))
            })
            .collect()
    }

    /// Every result in `index` (up to 10,000), oldest interval first.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn results(&self, index: &str) -> Vec<Value> {
        self.refresh(index).await;
        let answer = self
            .post(
                &format!("{index}/_search"),
                &json!({"size": 10_000, "sort": [{"data_start_time": "asc"}]}),
            )
            .await
            .unwrap_or_else(|err| panic!("reading the results in {index}: {err}"));
        answer["hits"]["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|hit| {
                        let mut source = hit["_source"].clone();
                        source["_id"] = hit["_id"].clone();
                        source
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes each name as an index (patterns allowed) and as an index template, ignoring what
    /// is not there.
    pub async fn clean(&self, names: &[String]) {
        for name in names {
            let _ = self
                .http
                .delete(format!("{}/{name}", self.url))
                .send()
                .await;
            // And the index templates named after it (a pattern's: after what precedes its `*`).
            let prefix = name.trim_end_matches('*').trim_end_matches('-');
            if !prefix.is_empty() && !prefix.contains('*') {
                pipeline::testkit::delete_index_templates(&self.url, prefix).await;
            }
        }
    }
}
