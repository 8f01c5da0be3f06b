//! The two observers of a latency run: when each enriched record reaches `enriched`, and when
//! each document first shows in a search.
//!
//! Both only read, so the pipeline runs as it would without them. The search side polls the
//! events alias for documents whose `@timestamp` is at or after the oldest one not seen yet, so
//! each poll returns only what became searchable since the last one (plus stragglers): a refresh
//! makes a whole batch visible at once, and that is what a user sees. It does not use a realtime
//! GET, which would trigger internal refreshes and change what it measures.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pipeline::kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::{Value, json};

/// How long the search observer keeps waiting, after the last record was acknowledged, for the
/// documents it has not seen yet.
pub const SEARCH_GRACE: Duration = Duration::from_secs(60);

/// The one field of an enriched record the observer reads.
#[derive(Deserialize)]
struct Enriched {
    event_id: String,
}

/// Reads `topic` from the beginning of every partition (no group membership, `read_committed`
/// as every stage reads) until `stop` is set and the topic is quiet for 200 ms; returns when
/// each event id was first seen.
pub async fn enriched(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: i32,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Result<HashMap<String, Duration>> {
    let consumer: StreamConsumer = kafka
        .consumer_config("logwarden-latency", "logwarden-latency-observer")
        .create()
        .context("creating the enriched observer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .context("assigning the enriched partitions")?;
    }
    consumer
        .assign(&assignment)
        .context("assigning the enriched partitions")?;
    let mut seen = HashMap::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(Ok(message)) => {
                let at = start.elapsed();
                let Some(payload) = message.payload() else {
                    continue;
                };
                let record: Enriched = serde_json::from_slice(payload)
                    .context("an enriched record without `event_id`")?;
                seen.entry(record.event_id).or_insert(at);
            }
            Ok(Err(err)) => bail!("reading `{topic}`: {err}"),
            Err(_) if stop.load(Ordering::Acquire) => return Ok(seen),
            Err(_) => {}
        }
    }
}

/// What the search observer polls and how.
#[derive(Debug, Clone)]
pub struct SearchTarget {
    /// OpenSearch's URL.
    pub url: String,
    /// The events alias the sink writes under.
    pub alias: String,
    /// Set on the events index once it exists (e.g. `200ms`); `None` keeps the template's.
    pub refresh_interval: Option<String>,
    /// Time between two searches.
    pub poll: Duration,
}

/// Searches until every acknowledged record (`(event time in epoch ms, event id)`, sent on
/// `acked`) has been seen, or `SEARCH_GRACE` after `produced` is set; returns when each event
/// id was first returned by a search.
pub fn searchable(
    target: &SearchTarget,
    start: Instant,
    acked: &Receiver<(u64, String)>,
    produced: &AtomicBool,
) -> Result<HashMap<String, Duration>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let search = format!("{}/{}/_search", target.url, target.alias);
    let mut seen: HashMap<String, Duration> = HashMap::new();
    // Acknowledged, not yet seen, oldest first; `times` finds an id's entry.
    let mut unseen: BTreeSet<(u64, String)> = BTreeSet::new();
    let mut times: HashMap<String, u64> = HashMap::new();
    let mut newest = 0_u64;
    let mut settings_applied = target.refresh_interval.is_none();
    let mut produced_at: Option<Instant> = None;
    loop {
        let polled = Instant::now();
        while let Ok((time, id)) = acked.try_recv() {
            if !seen.contains_key(&id) {
                unseen.insert((time, id.clone()));
                times.insert(id, time);
            }
        }
        if produced.load(Ordering::Acquire) {
            let since = *produced_at.get_or_insert(polled);
            if unseen.is_empty() || since.elapsed() > SEARCH_GRACE {
                return Ok(seen);
            }
        }
        let floor = unseen.first().map_or(newest, |(time, _)| *time);
        let mut response = agent
            .post(&search)
            .send_json(json!({
                "size": 10_000,
                "_source": false,
                "track_total_hits": false,
                "sort": [{ "@timestamp": "asc" }],
                "query": { "range": { "@timestamp": { "gte": floor, "format": "epoch_millis" } } },
            }))
            .with_context(|| format!("searching {}", target.alias))?;
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .read_json()
            .context("reading a search answer")?;
        let at = start.elapsed();
        match status {
            200 => {}
            // The sink creates the daily index with its first bulk request (404 before, 503
            // while its shard starts).
            404 | 503 => {
                std::thread::sleep(target.poll);
                continue;
            }
            _ => bail!("searching {} failed ({status}): {answer}", target.alias),
        }
        let hits = answer["hits"]["hits"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        for hit in hits {
            let Some(id) = hit["_id"].as_str() else {
                continue;
            };
            if let Some(time) = hit["sort"][0].as_u64() {
                newest = newest.max(time);
            }
            if seen.contains_key(id) {
                continue;
            }
            seen.insert(id.to_owned(), at);
            if let Some(time) = times.remove(id) {
                unseen.remove(&(time, id.to_owned()));
            }
        }
        if !settings_applied && !hits.is_empty() {
            apply_refresh_interval(&agent, target)?;
            settings_applied = true;
        }
        std::thread::sleep(target.poll.saturating_sub(polled.elapsed()));
    }
}

/// Sets `index.refresh_interval` on the indices behind the alias.
fn apply_refresh_interval(agent: &ureq::Agent, target: &SearchTarget) -> Result<()> {
    let Some(interval) = &target.refresh_interval else {
        return Ok(());
    };
    let mut response = agent
        .put(format!("{}/{}/_settings", target.url, target.alias))
        .send_json(json!({ "index": { "refresh_interval": interval } }))
        .context("setting the refresh interval")?;
    if response.status().as_u16() != 200 {
        let body = response.body_mut().read_to_string().unwrap_or_default();
        bail!("setting refresh_interval {interval} failed: {body}");
    }
    Ok(())
}
