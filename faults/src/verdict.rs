//! After a fault: wait until the pipeline has caught up (OpenSearch holds as many documents as
//! were sent, the detector scored past the last record's interval), then compare what a user
//! would: the ids in `raw` with the ids in OpenSearch, each scored interval with OpenSearch's
//! date histogram, the intervals for gaps and doubles, the grades for a false alarm.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pipeline::testkit;
use pipeline::wire::event_id;
use rdkafka::Message;
use serde_json::Value;

use crate::search::Bucket;
use crate::stages::{DETECTOR, FIELD, Pipeline};
use crate::traffic::{Running, Sent, now_ms};

/// What a test found, and what went wrong.
#[derive(Debug)]
pub struct Verdict {
    /// Every problem found, one line each.
    pub failures: Vec<String>,
    /// The figures, for the failure message and the log.
    pub report: String,
    /// The results read back, oldest interval first.
    pub results: Vec<Value>,
}

impl Verdict {
    /// Fails the test with every problem and the figures, unless there are none.
    ///
    /// # Panics
    /// When a check failed.
    pub fn assert(&self) {
        eprintln!("{}", self.report);
        assert!(
            self.failures.is_empty(),
            "{}\n\n{}",
            self.failures.join("\n"),
            self.report
        );
    }

    /// Stops `pipeline` (deleting its topics and indices), adds the errors its stages ended
    /// with, and fails the test with every problem, unless there are none.
    ///
    /// # Panics
    /// When a check failed.
    pub async fn conclude(mut self, pipeline: Pipeline) {
        let exits = pipeline.stop().await;
        self.failures.extend(exits);
        self.assert();
    }

    /// Checks that the detector started at `since_ms` restored its model from a checkpoint
    /// rather than starting cold: a cold start without history scores its first interval with
    /// confidence 0, a restored model with the confidence it had when the checkpoint was saved.
    pub fn check_restored(&mut self, since_ms: i64) {
        let first = self
            .results
            .iter()
            .filter(|r| {
                r["execution_start_time"]
                    .as_i64()
                    .is_some_and(|t| t >= since_ms)
            })
            .min_by_key(|r| r["execution_start_time"].as_i64());
        match first {
            None => self
                .failures
                .push(format!("no interval was scored from {since_ms} on")),
            Some(result) if result["confidence"].as_f64().unwrap_or(0.0) <= 0.0 => {
                self.failures.push(format!(
                    "the detector started again from scratch, not from its checkpoint: its \
                     first result {result}"
                ));
            }
            Some(_) => {}
        }
        let rescored = self
            .results
            .iter()
            .filter(|r| {
                r["execution_start_time"]
                    .as_i64()
                    .is_some_and(|t| t >= since_ms)
                    && r["data_end_time"].as_i64().is_some_and(|t| t < since_ms)
            })
            .count();
        self.report.push_str(&format!(
            "; restarted at {since_ms}, re-scored {rescored} earlier intervals"
        ));
    }
}

/// After an OpenSearch fault, with `traffic` still running: once the services
/// resumed and checkpointed again, restarts the detector (it restores from that checkpoint),
/// lets traffic run on, stops it, and settles, checking that the restarted detector's model was
/// restored, not started cold.
///
/// # Panics
/// As [`settle`].
pub async fn restart_detector_then_settle(pipeline: &mut Pipeline, traffic: Running) -> Verdict {
    tokio::time::sleep(Duration::from_secs(10)).await;
    pipeline.stop_detector().await;
    let restarted_at = now_ms();
    pipeline.start_detector().await;
    pipeline.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    let sent = traffic.finish().await;
    let mut verdict = settle(pipeline, sent).await;
    verdict.check_restored(restarted_at);
    verdict
}

fn interval_start(ms: i64, interval_ms: i64) -> i64 {
    ms.div_euclid(interval_ms) * interval_ms
}

/// Waits until `pipeline` has processed `sent` (failing after its catch-up time), then compares.
///
/// # Panics
/// When the pipeline does not catch up in time, or a stage stopped by itself.
pub async fn settle(pipeline: &mut Pipeline, sent: Sent) -> Verdict {
    settle_with(pipeline, sent, &BTreeSet::new()).await
}

/// [`settle`] when `raw` also holds the records `exempt` (by event id) besides the traffic:
/// records a stage may refuse (stamped decades ahead). Each must be in OpenSearch or on the
/// dead-letter topic, never dropped silently.
///
/// # Panics
/// As [`settle`].
pub async fn settle_with(
    pipeline: &mut Pipeline,
    sent: Sent,
    exempt: &BTreeSet<String>,
) -> Verdict {
    let interval_ms = pipeline.shape.interval_ms;
    let to = interval_start(sent.last_ms, interval_ms) + interval_ms;
    let deadline = tokio::time::Instant::now() + pipeline.catch_up();
    let mut indexed = 0;
    let scored_until = loop {
        if let Some(ended) = pipeline.ended() {
            panic!("{ended} while catching up");
        }
        pipeline.revive_detector().await;
        indexed = pipeline
            .search
            .count(&pipeline.events)
            .await
            .unwrap_or(indexed);
        let scored_until = pipeline
            .detector()
            .metric("logwarden_detector_scored_until_seconds");
        if indexed >= sent.records as u64 && scored_until * 1_000.0 >= to as f64 {
            break scored_until;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pipeline did not catch up within {:?}: {indexed} of {} records indexed, \
             scored until {scored_until} s, the last interval ends at {} s",
            pipeline.catch_up(),
            sent.records,
            to / 1_000
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Anything late or doubled would show within a few batches more.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut failures = Vec::new();
    let raw = &pipeline.kafka.topics.raw;
    let in_raw: BTreeSet<String> = testkit::consume(
        &pipeline.kafka,
        raw,
        sent.records,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await
    .iter()
    .map(|m| event_id(m.topic(), m.partition(), m.offset()))
    .collect();
    let in_search = pipeline.search.ids(&pipeline.events).await;
    if in_raw.len() != sent.records + exempt.len() {
        failures.push(format!(
            "`raw` holds {} records, {} were acknowledged",
            in_raw.len(),
            sent.records + exempt.len()
        ));
    }
    let refused: Vec<&String> = exempt.difference(&in_search).collect();
    if !refused.is_empty() {
        let dead: BTreeSet<String> = testkit::consume(
            &pipeline.kafka,
            &pipeline.kafka.topics.dead_letter,
            refused.len(),
            Duration::from_secs(30),
            Duration::from_secs(1),
        )
        .await
        .iter()
        .filter_map(|m| {
            let body: Value = serde_json::from_slice(m.payload()?).ok()?;
            body["event_id"].as_str().map(str::to_owned)
        })
        .collect();
        let dropped: Vec<&&String> = refused.iter().filter(|id| !dead.contains(**id)).collect();
        if !dropped.is_empty() {
            failures.push(format!(
                "records neither indexed nor dead-lettered: {dropped:?}"
            ));
        }
    }
    let expected: BTreeSet<String> = in_raw.difference(exempt).cloned().collect();
    let in_search: BTreeSet<String> = in_search.difference(exempt).cloned().collect();
    let lost: Vec<&String> = expected.difference(&in_search).collect();
    let extra: Vec<&String> = in_search.difference(&expected).collect();
    if !lost.is_empty() || !extra.is_empty() {
        failures.push(format!(
            "OpenSearch's ids differ from raw's: {} lost (first {:?}), {} not from raw (first {:?})",
            lost.len(),
            lost.iter().take(5).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(5).collect::<Vec<_>>()
        ));
    }
    let count = pipeline.search.count(&pipeline.events).await.unwrap_or(0);
    let indexed_exempt = exempt.len() - refused.len();
    if count != (expected.len() + indexed_exempt) as u64 {
        failures.push(format!(
            "OpenSearch counts {count} documents for {} records in raw",
            expected.len() + indexed_exempt
        ));
    }

    let from = interval_start(sent.first_ms, interval_ms);
    let results: Vec<Value> = pipeline
        .search
        .results(&pipeline.results)
        .await
        .into_iter()
        .filter(|r| r["detector_id"] == DETECTOR)
        .collect();
    // The detector starts once traffic flows: its first interval bounds the comparison.
    let from = results
        .first()
        .and_then(|r| r["data_start_time"].as_i64())
        .map_or(from, |first| first.max(from));
    let histogram = pipeline
        .search
        .histogram(&pipeline.events, FIELD, interval_ms, from, to)
        .await;
    failures.extend(compare(&results, &histogram, interval_ms, from, to));
    failures.extend(pipeline.exits.iter().map(|exit| {
        format!("{exit} (started again, as its Deployment would, for the checks above)")
    }));

    let detector = pipeline.detector();
    let report = format!(
        "sent {} records stamped {}..{} ({} intervals of {interval_ms} ms); raw holds {}, \
         OpenSearch {}; {} results from {:?} to {:?}; detector: late {}, future {}, scored \
         {}, until {scored_until} s",
        sent.records,
        sent.first_ms,
        sent.last_ms,
        (to - from) / interval_ms,
        in_raw.len(),
        count,
        results.len(),
        results.first().map(|r| r["data_start_time"].clone()),
        results.last().map(|r| r["data_start_time"].clone()),
        detector.metric("logwarden_detector_late_events_total"),
        detector.metric("logwarden_detector_future_events_total"),
        detector.metric("logwarden_detector_intervals_scored_total"),
    );
    Verdict {
        failures,
        report,
        results,
    }
}

/// Compares the detector's results with OpenSearch's histogram over `[from, to)`, and checks
/// every result: one per interval, no gap from the first to the last, none anomalous.
fn compare(
    results: &[Value],
    histogram: &BTreeMap<i64, Bucket>,
    interval_ms: i64,
    from: i64,
    to: i64,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut by_start: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for result in results {
        if let Some(start) = result["data_start_time"].as_i64() {
            by_start.entry(start).or_default().push(result);
        }
    }
    let doubled: Vec<i64> = by_start
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(start, _)| *start)
        .collect();
    if !doubled.is_empty() {
        failures.push(format!("intervals scored more than once: {doubled:?}"));
    }
    if let (Some(first), Some(last)) = (by_start.keys().next(), by_start.keys().last()) {
        let gaps: Vec<i64> = (0..=(last - first) / interval_ms)
            .map(|i| first + i * interval_ms)
            .filter(|start| !by_start.contains_key(start))
            .collect();
        if !gaps.is_empty() {
            failures.push(format!(
                "{} intervals between the first and the last result were never scored: {:?}",
                gaps.len(),
                gaps.iter().take(10).collect::<Vec<_>>()
            ));
        }
    }
    let mut differ = Vec::new();
    for start in (0..(to - from) / interval_ms).map(|i| from + i * interval_ms) {
        let bucket = histogram.get(&start).copied().unwrap_or(Bucket {
            events: 0,
            sum: 0.0,
        });
        match by_start.get(&start).and_then(|r| r.first()) {
            None => failures.push(format!("the interval at {start} was not scored")),
            Some(result) => {
                let events = result["events"].as_u64();
                let value = result["value"].as_f64();
                if events != Some(bucket.events) || value != Some(bucket.sum) {
                    differ.push(format!(
                        "{start}: detector {events:?} events, {FIELD} {value:?}; OpenSearch {} \
                         events, {}",
                        bucket.events, bucket.sum
                    ));
                }
            }
        }
    }
    if !differ.is_empty() {
        failures.push(format!(
            "{} intervals differ from OpenSearch's date histogram:\n  {}",
            differ.len(),
            differ.join("\n  ")
        ));
    }
    let flagged: Vec<String> = results
        .iter()
        .filter(|r| r["anomaly_grade"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|r| {
            format!(
                "{} (value {}, expected {}, rule {})",
                r["data_start_time"], r["value"], r["expected_value"], r["rule"]
            )
        })
        .collect();
    if !flagged.is_empty() {
        failures.push(format!(
            "false alarm: steady traffic flagged anomalous at {}",
            flagged.join(", ")
        ));
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(start: i64, events: u64, value: f64, grade: f64) -> Value {
        json!({"data_start_time": start, "events": events, "value": value, "anomaly_grade": grade})
    }

    fn bucket(events: u64, sum: f64) -> Bucket {
        Bucket { events, sum }
    }

    #[test]
    fn equal_intervals_pass_and_every_difference_is_named() {
        let histogram = BTreeMap::from([(0, bucket(10, 8.0)), (1_000, bucket(10, 9.0))]);
        let good = [result(0, 10, 8.0, 0.0), result(1_000, 10, 9.0, 0.0)];
        assert!(compare(&good, &histogram, 1_000, 0, 2_000).is_empty());

        let doubled = [result(0, 20, 16.0, 0.7), result(1_000, 10, 9.0, 0.0)];
        let failures = compare(&doubled, &histogram, 1_000, 0, 2_000);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].contains("0: detector Some(20) events"),
            "{failures:?}"
        );
        assert!(failures[1].starts_with("false alarm"), "{failures:?}");

        let gap = [result(0, 10, 8.0, 0.0), result(2_000, 0, 0.0, 0.0)];
        let failures = compare(&gap, &histogram, 1_000, 0, 2_000);
        assert!(failures[0].contains("never scored: [1000]"), "{failures:?}");
        assert!(failures[1].contains("1000 was not scored"), "{failures:?}");

        let twice = [
            result(0, 10, 8.0, 0.0),
            result(0, 10, 8.0, 0.0),
            result(1_000, 10, 9.0, 0.0),
        ];
        let failures = compare(&twice, &histogram, 1_000, 0, 2_000);
        assert_eq!(failures, ["intervals scored more than once: [0]"]);
    }
}
