//! Per-entity detection: a category detector (`category: {field: httpRequest.clientIp}`) keeps
//! one model per entity value, as OpenSearch's high-cardinality detectors do, and judges each
//! entity's interval against its own history. Pure: no IO, no clock.
//!
//! Memory is bounded: at most `max_entities` models at once. An entity without records for
//! `idle` is evicted, and when a new entity would pass the cap, the least recently seen one is.
//! An evicted entity's model is handed to the service to store ([`Entities::take_evicted`];
//! [`crate::remembered`] keeps it in OpenSearch), and when the entity comes back the service
//! looks it up before its interval is judged ([`Entities::unknown`], [`Entities::restore`]): it
//! goes on from its own history instead of starting again from the prior.
//! An entity's model is the thresholding layer without a forest ([`Model::for_entity`], about
//! 2 KB), its baseline filled with the population's usual value (an average over the entities
//! judged in recent intervals), so a quiet client that suddenly sends a burst of bad requests
//! is flagged at once, without waiting for a history of its own.
//!
//! Only entities with records in an interval are judged in it (a client that sent nothing is
//! not "quiet", it is absent), so a sum or count per entity is over the entity's own records.
//! The open intervals' per-entity totals sit beside the detector's [`crate::window::Window`],
//! which decides when an interval closes; [`Entities::close`] judges them then.

use std::collections::{BTreeMap, HashMap};

use pipeline::wire::{EntitiesSummary, FlaggedEntity, MAX_FLAGGED_ENTITIES};
use serde::{Deserialize, Serialize};

use crate::measure;
use crate::model::{Model, ModelError, Scored};
use crate::spec::{Category, DetectorSpec};
use crate::window::Interval;

/// How much each interval moves the population's usual value (an exponential average).
const POPULATION_WEIGHT: f64 = 0.1;

/// A category detector's entities: open totals and models.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entities {
    /// Open intervals by start: each entity's total and events.
    open: BTreeMap<i64, HashMap<String, (f64, u64)>>,
    /// The models, with the start of the last interval each entity had records in.
    models: HashMap<String, Tracked>,
    /// The population's usual value: the prior of a new entity's model.
    population: Option<f64>,
    /// Entities evicted so far.
    evicted: u64,
    /// Models restored from the store so far.
    #[serde(default)]
    restored: u64,
    /// Models evicted since the service last took them, to store (not checkpointed: a crash
    /// loses at most these, whose entities then start from the prior).
    #[serde(skip)]
    evicted_models: Vec<Remembered>,
    /// What [`Self::report`] last reported: models, evicted, restored.
    #[serde(skip)]
    reported: (usize, u64, u64),
}

/// The most evicted models waiting to be stored; beyond it the oldest are forgotten.
pub const MAX_WAITING: usize = 100_000;

/// An evicted entity's model, as stored and restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Remembered {
    /// The entity.
    pub entity: String,
    /// Its model.
    pub model: Model,
    /// The start of the last interval it had records in.
    pub last_seen: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tracked {
    model: Model,
    last_seen: i64,
}

/// One entity's judged interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The entity.
    pub entity: String,
    /// Its interval, with the feature's value.
    pub interval: Interval,
    /// Its model's verdict.
    pub scored: Scored,
}

impl Default for Entities {
    fn default() -> Self {
        Self::new()
    }
}

impl Entities {
    /// No entities yet.
    pub fn new() -> Self {
        Self {
            open: BTreeMap::new(),
            models: HashMap::new(),
            population: None,
            evicted: 0,
            restored: 0,
            evicted_models: Vec::new(),
            reported: (0, 0, 0),
        }
    }

    /// The entities with records in the open intervals that close at `limit` (a watermark less
    /// the window delay; intervals of `interval_ms`) and no model: the ones to look up before
    /// they are judged. Sorted, each once.
    pub fn unknown(&self, limit: i64, interval_ms: i64) -> Vec<String> {
        let mut unknown: Vec<String> = self
            .open
            .iter()
            .take_while(|(start, _)| **start + interval_ms <= limit)
            .flat_map(|(_, slot)| slot.keys())
            .filter(|entity| !self.models.contains_key(*entity))
            .cloned()
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        unknown
    }

    /// Takes back stored models (of entities looked up by [`Self::unknown`]); an entity that has
    /// a model by now keeps it. Each counts as seen in the interval starting at `seen_at`, so
    /// that it is judged before it could be evicted as idle again.
    pub fn restore(&mut self, remembered: Vec<Remembered>, seen_at: i64) {
        for stored in remembered {
            if self.models.contains_key(&stored.entity) {
                continue;
            }
            self.models.insert(
                stored.entity,
                Tracked {
                    model: stored.model,
                    last_seen: stored.last_seen.max(seen_at),
                },
            );
            self.restored += 1;
        }
    }

    /// Models restored from the store since the detector started (or was restored).
    pub fn restored(&self) -> u64 {
        self.restored
    }

    /// The models evicted since the last call, to store.
    pub fn take_evicted(&mut self) -> Vec<Remembered> {
        std::mem::take(&mut self.evicted_models)
    }

    /// Adds a record's `value` to `entity`'s total in the interval starting at `start` (the
    /// window accepted the record, so the interval is open).
    pub fn add(&mut self, start: i64, entity: &str, value: f64) {
        let slot = self.open.entry(start).or_default();
        match slot.get_mut(entity) {
            Some(total) => {
                total.0 += value;
                total.1 += 1;
            }
            None => {
                slot.insert(entity.to_owned(), (value, 1));
            }
        }
    }

    /// Entities with a model.
    pub fn active(&self) -> usize {
        self.models.len()
    }

    /// Entities evicted since the detector started (or was restored).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// What changed since the last call, for the metrics (which add up every part of a
    /// detector's entities a replica scores): the change in entities with a model, and the
    /// entities evicted and models restored since.
    pub fn report(&mut self) -> (i64, u64, u64) {
        let now = (self.models.len(), self.evicted, self.restored);
        let (models, evicted, restored) = std::mem::replace(&mut self.reported, now);
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        (
            count(now.0) - count(models),
            now.1.saturating_sub(evicted),
            now.2.saturating_sub(restored),
        )
    }

    /// Takes back what [`Self::report`] reported of the entities with a model (their scorer
    /// stops: the shard is handed over), as a change for the metrics.
    pub fn withdraw(&mut self) -> (i64, u64, u64) {
        let models = std::mem::take(&mut self.reported.0);
        (-i64::try_from(models).unwrap_or(i64::MAX), 0, 0)
    }

    /// Entities with records in open intervals (not yet judged).
    pub fn pending(&self) -> usize {
        self.open.values().map(HashMap::len).sum()
    }

    /// Judges every entity with records in the closed `interval` (in a stable order: by entity),
    /// then evicts: entities idle for `category.idle`, and the least recently seen beyond
    /// `category.max_entities`. A model that fails to score is skipped and named in the error
    /// list.
    pub fn close(
        &mut self,
        detector: &DetectorSpec,
        category: &Category,
        interval: &Interval,
    ) -> (Vec<Judged>, Vec<(String, ModelError)>) {
        let mut totals: Vec<(String, (f64, u64))> = self
            .open
            .remove(&interval.start)
            .map(|slot| slot.into_iter().collect())
            .unwrap_or_default();
        // Anything older belongs to intervals the window closed without data for us: drop it.
        self.open = self.open.split_off(&interval.start);
        totals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Before any population value (a fresh detector's first interval), new entities start
        // from this interval's median: from 0 every entity of a count would be an anomaly, and
        // one flagged from its first interval never learns its normal.
        let prior = self.population.unwrap_or_else(|| {
            median(totals.iter().filter_map(|(_, (value, events))| {
                let measured = measure::measure(
                    detector,
                    &Interval {
                        value: *value,
                        events: *events,
                        ..*interval
                    },
                );
                measured.judged.then_some(measured.value)
            }))
        });
        let min_rise = detector.min_rise();
        let mut judged = Vec::with_capacity(totals.len());
        let mut failed = Vec::new();
        let mut judged_values = Vec::with_capacity(totals.len());
        for (entity, (value, events)) in totals {
            let entity_interval = Interval {
                value,
                events,
                ..*interval
            };
            let tracked = self
                .models
                .entry(entity.clone())
                .or_insert_with(|| Tracked {
                    model: Model::for_entity(&detector.model, min_rise, prior),
                    last_seen: interval.start,
                });
            tracked.last_seen = interval.start;
            match measure::judge(detector, &mut tracked.model, &entity_interval) {
                Ok((measured, scored)) => {
                    if measure::measure(detector, &entity_interval).judged {
                        judged_values.push(measured.value);
                    }
                    judged.push(Judged {
                        entity,
                        interval: measured,
                        scored,
                    });
                }
                Err(err) => failed.push((entity, err)),
            }
        }
        if !judged_values.is_empty() {
            let mean = judged_values.iter().sum::<f64>() / judged_values.len() as f64;
            self.population = Some(match self.population {
                None => mean,
                Some(usual) => usual + POPULATION_WEIGHT * (mean - usual),
            });
        }
        self.evict(category, interval.end);
        (judged, failed)
    }

    /// Evicts the idle, then the least recently seen beyond the cap; their models wait to be
    /// stored.
    fn evict(&mut self, category: &Category, now: i64) {
        let idle_ms = i64::try_from(category.idle.as_millis()).unwrap_or(i64::MAX);
        let before = self.models.len();
        let idle: Vec<String> = self
            .models
            .iter()
            .filter(|(_, tracked)| now.saturating_sub(tracked.last_seen) >= idle_ms)
            .map(|(entity, _)| entity.clone())
            .collect();
        for entity in idle {
            self.spill(entity);
        }
        let excess = self.models.len().saturating_sub(category.max_entities);
        if excess > 0 {
            let mut by_age: Vec<(i64, String)> = self
                .models
                .iter()
                .map(|(entity, tracked)| (tracked.last_seen, entity.clone()))
                .collect();
            by_age.select_nth_unstable(excess - 1);
            for (_, entity) in by_age.into_iter().take(excess) {
                self.spill(entity);
            }
        }
        self.evicted += (before - self.models.len()) as u64;
        let waiting = self.evicted_models.len();
        if waiting > MAX_WAITING {
            self.evicted_models.drain(..waiting - MAX_WAITING);
        }
    }

    /// Removes `entity`'s model, to store.
    fn spill(&mut self, entity: String) {
        if let Some(tracked) = self.models.remove(&entity) {
            self.evicted_models.push(Remembered {
                entity,
                model: tracked.model,
                last_seen: tracked.last_seen,
            });
        }
    }
}

/// The median of `values` (0 when there are none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The summary of an interval's judged entities: how many, and the flagged ones, highest grade
/// first, at most [`MAX_FLAGGED_ENTITIES`].
pub fn summary(category: &Category, judged: &[Judged]) -> EntitiesSummary {
    let mut flagged: Vec<FlaggedEntity> = judged
        .iter()
        .filter(|j| j.scored.grade > 0.0)
        .map(|j| FlaggedEntity {
            value: j.entity.clone(),
            grade: j.scored.grade,
            data: j.interval.value,
            expected: j.scored.expected,
        })
        .collect();
    let total = flagged.len() as u64;
    flagged.sort_by(|a, b| b.grade.total_cmp(&a.grade).then(a.value.cmp(&b.value)));
    flagged.truncate(MAX_FLAGGED_ENTITIES);
    EntitiesSummary {
        judged: judged.len() as u64,
        flagged: total,
        top: flagged,
        part: category
            .part
            .map(|part| format!("{part}/{}", category.parts)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::live::testing;

    fn category(max_entities: usize) -> Category {
        Category {
            field: "httpRequest.clientIp".into(),
            max_entities,
            idle: Duration::from_secs(3_600),
            parts: 1,
            part: None,
        }
    }

    fn minute(i: i64) -> Interval {
        Interval {
            start: i * 60_000,
            end: (i + 1) * 60_000,
            value: 0.0,
            events: 0,
        }
    }

    #[test]
    fn one_misbehaving_entity_among_thousands_is_the_only_one_flagged() {
        let detector = testing::spec("d");
        let category = category(20_000);
        let mut entities = Entities::new();
        let clients: Vec<String> = (0..5_000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let mut flagged: Vec<(i64, String)> = Vec::new();
        for i in 0..40 {
            for (c, client) in clients.iter().enumerate() {
                // Every client sends a few requests a minute; one in 50 of them is bad, and
                // from minute 30 client 1234 sends 40 bad ones.
                let bad = if c == 1234 && i >= 30 {
                    40.0
                } else {
                    f64::from(u8::from((c + i as usize).is_multiple_of(50)))
                };
                entities.add(i * 60_000, client, bad);
            }
            let (judged, failed) = entities.close(&detector, &category, &minute(i));
            assert!(failed.is_empty());
            assert_eq!(judged.len(), 5_000);
            flagged.extend(
                judged
                    .iter()
                    .filter(|j| j.scored.grade > 0.0)
                    .map(|j| (i, j.entity.clone())),
            );
        }
        let expected: Vec<(i64, String)> = (30..40).map(|i| (i, "10.0.4.210".to_owned())).collect();
        assert_eq!(flagged, expected);
        assert_eq!(entities.active(), 5_000);
    }

    #[test]
    fn memory_stays_under_the_cap_with_ten_thousand_entities() {
        let detector = testing::spec("d");
        let category = category(1_000);
        let mut entities = Entities::new();
        for i in 0..10 {
            for c in 0..1_000 {
                entities.add(i * 60_000, &format!("client-{}", i * 1_000 + c), 1.0);
            }
            let (judged, _) = entities.close(&detector, &category, &minute(i));
            assert_eq!(judged.len(), 1_000);
            assert!(entities.active() <= 1_000, "{}", entities.active());
        }
        assert_eq!(entities.active(), 1_000);
        assert_eq!(entities.evicted(), 9_000);
        assert_eq!(entities.pending(), 0);
        // The survivors are the last minute's, and their state is small: about 2 KB each.
        let saved = serde_json::to_vec(&entities).expect("serializes");
        assert!(saved.len() < 1_000 * 4_096, "{} bytes", saved.len());
        let restored: Entities = serde_json::from_slice(&saved).expect("deserializes");
        assert_eq!(restored.active(), 1_000);
    }

    #[test]
    fn idle_entities_are_evicted_and_the_summary_names_the_flagged_first() {
        let detector = testing::spec("d");
        let mut category = category(10);
        category.idle = Duration::from_secs(150);
        let mut entities = Entities::new();
        entities.add(0, "a", 0.0);
        entities.add(0, "b", 0.0);
        entities.close(&detector, &category, &minute(0));
        entities.add(60_000, "a", 0.0);
        entities.close(&detector, &category, &minute(1));
        assert_eq!((entities.active(), entities.evicted()), (2, 0));
        // Minute 2 ends at 180 s: "b", last seen at 0, has been idle 3 minutes.
        entities.add(120_000, "a", 30.0);
        entities.add(120_000, "c", 12.0);
        let (judged, _) = entities.close(&detector, &category, &minute(2));
        assert_eq!((entities.active(), entities.evicted()), (2, 1));
        let summary = summary(&category, &judged);
        assert_eq!((summary.judged, summary.flagged), (2, 2));
        assert_eq!(summary.part, None, "the entities are not split");
        // The metrics get changes: 2 models, 1 evicted; nothing new since; all taken back
        // when the scorer stops.
        assert_eq!(entities.report(), (2, 1, 0));
        assert_eq!(entities.report(), (0, 0, 0));
        assert_eq!(entities.withdraw(), (-2, 0, 0));
        assert_eq!(
            entities.report(),
            (2, 0, 0),
            "a scorer that goes on reports them again"
        );
        let top: Vec<(&str, f64)> = summary
            .top
            .iter()
            .map(|f| (f.value.as_str(), f.data))
            .collect();
        assert_eq!(top, [("a", 30.0), ("c", 12.0)]);
    }

    #[test]
    fn an_evicted_entity_that_comes_back_goes_on_from_its_own_model() {
        let mut detector = testing::spec("d");
        // A baseline of 10 intervals: big's own history fills it in its 20 minutes.
        detector.model.baseline = 10;
        let category = category(3);
        // Minutes 0-19: "big" sends 30 bad requests a minute (alone in the first), two small
        // clients one each in turn.
        let run = |restore: bool| -> (Vec<String>, Entities, Vec<String>) {
            let mut entities = Entities::new();
            let mut stored: Vec<Remembered> = Vec::new();
            for i in 0..20 {
                entities.add(i * 60_000, "big", 30.0);
                if i > 0 {
                    entities.add(i * 60_000, &format!("small-{}", i % 2), 1.0);
                }
                entities.close(&detector, &category, &minute(i));
                stored.extend(entities.take_evicted());
            }
            // Minutes 20-23: big is away; newcomers push it out (the cap is 3).
            for i in 20..24 {
                for c in 0..3 {
                    entities.add(i * 60_000, &format!("new-{i}-{c}"), 1.0);
                }
                entities.close(&detector, &category, &minute(i));
                stored.extend(entities.take_evicted());
            }
            let evicted: Vec<String> = stored.iter().map(|r| r.entity.clone()).collect();
            assert!(evicted.contains(&"big".to_owned()), "{evicted:?}");
            // Minute 24: big is back, as usual.
            entities.add(24 * 60_000, "big", 30.0);
            entities.add(24 * 60_000, "new-23-0", 1.0);
            let unknown = entities.unknown(25 * 60_000, 60_000);
            if restore {
                let found: Vec<Remembered> = stored
                    .into_iter()
                    .filter(|r| unknown.contains(&r.entity))
                    .collect();
                entities.restore(found, 24 * 60_000);
            }
            let (judged, _) = entities.close(&detector, &category, &minute(24));
            let flagged = judged
                .iter()
                .filter(|j| j.scored.grade > 0.0)
                .map(|j| j.entity.clone())
                .collect();
            (unknown, entities, flagged)
        };
        let (unknown, entities, flagged) = run(true);
        assert_eq!(unknown, ["big"], "only big has no model (new-23-0 has)");
        assert_eq!(entities.restored(), 1);
        assert_eq!(
            flagged,
            Vec::<String>::new(),
            "big is judged by its own history"
        );
        let (_, forgetful, flagged) = run(false);
        assert_eq!(forgetful.restored(), 0);
        assert_eq!(
            flagged,
            ["big"],
            "from the population's prior, big looks anomalous"
        );
        // Nothing intervals that have not closed yet: none unknown before minute 24 ends.
        assert!(entities.unknown(24 * 60_000, 60_000).is_empty());
    }

    #[test]
    fn models_waiting_to_be_stored_are_bounded() {
        let detector = testing::spec("d");
        let category = category(10);
        let mut entities = Entities::new();
        let per_minute = 30_000;
        for i in 0..4 {
            for c in 0..per_minute {
                entities.add(i * 60_000, &format!("c-{i}-{c}"), 1.0);
            }
            entities.close(&detector, &category, &minute(i));
        }
        // 4 × 30,000 entities, 10 kept: 119,990 evicted, the newest 100,000 wait.
        assert_eq!(entities.evicted(), 119_990);
        let waiting = entities.take_evicted();
        assert_eq!(waiting.len(), MAX_WAITING);
        assert!(entities.take_evicted().is_empty(), "taken once");
    }

    #[test]
    fn a_fresh_detectors_first_entities_start_from_their_median_not_zero() {
        let detector = testing::spec("d");
        let category = category(1_000);
        let mut entities = Entities::new();
        for c in 0..100 {
            entities.add(0, &format!("client-{c}"), 50.0 + f64::from(c % 3));
        }
        entities.add(0, "loud", 400.0);
        let (judged, _) = entities.close(&detector, &category, &minute(0));
        let flagged: Vec<&str> = judged
            .iter()
            .filter(|j| j.scored.grade > 0.0)
            .map(|j| j.entity.as_str())
            .collect();
        assert_eq!(flagged, ["loud"]);
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }
}
