//! Per-entity detection: a category detector (`category: {field: httpRequest.clientIp}`) keeps
//! one model per entity value, as OpenSearch's high-cardinality detectors do, and judges each
//! entity's interval against its own history. Pure: no IO, no clock.
//!
//! Memory is bounded: at most `max_entities` models at once. An entity without records for
//! `idle` is evicted, and when a new entity would pass the cap, the least recently seen one is;
//! an evicted entity's model is forgotten (if it comes back it starts again from the prior).
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
        }
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
        let prior = self.population.unwrap_or(0.0);
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

    /// Evicts the idle, then the least recently seen beyond the cap.
    fn evict(&mut self, category: &Category, now: i64) {
        let idle_ms = i64::try_from(category.idle.as_millis()).unwrap_or(i64::MAX);
        let before = self.models.len();
        self.models
            .retain(|_, tracked| now.saturating_sub(tracked.last_seen) < idle_ms);
        let excess = self.models.len().saturating_sub(category.max_entities);
        if excess > 0 {
            let mut by_age: Vec<(i64, String)> = self
                .models
                .iter()
                .map(|(entity, tracked)| (tracked.last_seen, entity.clone()))
                .collect();
            by_age.select_nth_unstable(excess - 1);
            for (_, entity) in by_age.into_iter().take(excess) {
                self.models.remove(&entity);
            }
        }
        self.evicted += (before - self.models.len()) as u64;
    }
}

/// The summary of an interval's judged entities: how many, and the flagged ones, highest grade
/// first, at most [`MAX_FLAGGED_ENTITIES`].
pub fn summary(judged: &[Judged]) -> EntitiesSummary {
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
        let summary = summary(&judged);
        assert_eq!((summary.judged, summary.flagged), (2, 2));
        let top: Vec<(&str, f64)> = summary
            .top
            .iter()
            .map(|f| (f.value.as_str(), f.data))
            .collect();
        assert_eq!(top, [("a", 30.0), ("c", 12.0)]);
    }
}
