//! The detector's hot path on one core, and its scoring.
//!
//! - `take`: records/s from `enriched` through read, clock admission, each detector's
//!   contribution and window add, for the default spec's detectors, on enriched records made
//!   the way the stack makes them (the producer's seed generator, then the transformer's default
//!   rules; about 800 bytes each). `old` is the path before the record plan (a whole
//!   `serde_json::Value` per record, dotted lookups, chrono's RFC 3339 parser), kept here for
//!   the comparison; `plan` is [`detector::features::Plan`]. Before criterion runs, both are
//!   timed in the same run and the ratio printed. `read-only/*` is the reading alone: the plan,
//!   a whole `Value`, and `IgnoredAny` (validating with serde_json and keeping nothing: the
//!   floor for any serde_json reading). Also printed: the slowest shard's rate when the default
//!   spec is split into 2 and 4 shards ([`detector::shards`]), against the whole spec's.
//! - `scoring`: intervals/s through `Model::observe` (the default model, warmed up), and
//!   entities/s through `Entities::close` with 10,000 entities in the interval.
//! - `projected`: split reading. A reader's work per record (`Projector::project`, then the
//!   batch encoded), and a session's per record when it takes projected batches (decoded,
//!   each row added to every window) against taking the enriched records themselves through
//!   the plan; the ratio printed, the windows checked equal first.
//! - `entity_parts` (printed only): records/s through one category detector (10,000 clients)
//!   whole, and the slowest part when its entities are split in 2 and 4 (`category.parts`).
//!
//! `cargo bench -p detector --bench hot_path -- --warm-up-time 1 --measurement-time 3`; figures
//! in docs/capacity.md ("Detector hot path").

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::entities::Entities;
use detector::event_time::EventClock;
use detector::features::{self, Plan};
use detector::model::Model;
use detector::projection::{self, Columns, Contributions, Projector};
use detector::spec::{Aggregation, Category, DetectorSpec, Feature, ModelSpec, Spec};
use detector::window::{Interval, Window};
use pipeline::wire::{EVENT_ID_FIELD, SourcePosition};
use producer::generate::Generator;
use serde_json::Value;
use transformer::CompiledRules;

/// Records per measured batch.
const RECORDS: usize = 4_096;
/// Entities in the interval `Entities::close` judges.
const ENTITIES: usize = 10_000;
/// The event time of the first record.
const START: i64 = 1_796_464_800_000;

/// The shortest of `rounds` runs of `f`.
fn best_of(rounds: usize, f: &mut dyn FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .min()
        .unwrap_or(Duration::MAX)
}

/// Enriched records, one every 15 ms of event time (a batch spans about a minute).
fn enriched() -> Vec<Vec<u8>> {
    let generator = Generator::new(7, "bench", "hot-path").expect("a valid instance");
    enriched_from(generator, RECORDS, 15)
}

/// `count` enriched records from `generator`, one every `every_ms` of event time.
fn enriched_from(mut generator: Generator, count: usize, every_ms: i64) -> Vec<Vec<u8>> {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    let start = START;
    (0..count)
        .map(|i| {
            let raw = generator.next(start + i as i64 * every_ms, None);
            let raw = serde_json::to_vec(&raw).expect("a raw record serializes");
            let position = SourcePosition {
                topic: "raw".to_owned(),
                partition: 0,
                offset: i as i64,
            };
            let mut out = Vec::new();
            rules
                .apply(&raw, &position, &mut out)
                .expect("the seed's record enriches");
            out
        })
        .collect()
}

/// The detectors at work: a window each, and the clock.
struct Detectors {
    specs: Vec<DetectorSpec>,
    windows: Vec<Window>,
    clock: EventClock,
}

impl Detectors {
    fn new(specs: &[DetectorSpec]) -> Self {
        Self {
            specs: specs.to_vec(),
            windows: specs
                .iter()
                .map(|d| Window::new(d.interval.as_millis() as i64, 10_000, None))
                .collect(),
            clock: EventClock::new([0], 60_000),
        }
    }
}

/// The path before the record plan, as `Stage::take` ran it.
mod old {
    use super::*;

    pub fn read(payload: &[u8]) -> Option<(Value, i64)> {
        let record = serde_json::from_slice::<Value>(payload).ok()?;
        let text = record.get("@timestamp")?.as_str()?;
        let time = chrono::DateTime::parse_from_rfc3339(text)
            .ok()?
            .timestamp_millis();
        Some((record, time))
    }

    pub fn lookup<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
        path.split('.')
            .try_fold(record, |value, key| value.get(key))
    }

    pub fn contribution(feature: &Feature, record: &Value) -> Option<f64> {
        if let Some(filter) = &feature.filter
            && lookup(record, &filter.field) != Some(&filter.value)
        {
            return None;
        }
        Some(match (feature.aggregation, &feature.field) {
            (Aggregation::Count, _) | (_, None) => 1.0,
            (_, Some(field)) => match lookup(record, field) {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(Value::Bool(b)) => f64::from(u8::from(*b)),
                _ => 0.0,
            },
        })
    }

    pub fn take(detectors: &mut Detectors, payload: &[u8], now: i64) {
        let Some((record, time)) = read(payload) else {
            return;
        };
        detectors.clock.admit(0, time, now);
        black_box(record.get(EVENT_ID_FIELD).and_then(Value::as_str));
        for (spec, window) in detectors.specs.iter().zip(&mut detectors.windows) {
            if let Some(value) = contribution(&spec.feature, &record) {
                window.add(time, value);
            }
        }
    }
}

/// The path through the record plan, as `Stage::take` runs it.
fn take(plan: &Plan, detectors: &mut Detectors, payload: &[u8], now: i64) {
    let Ok(record) = plan.read(payload) else {
        return;
    };
    detectors.clock.admit(0, record.time, now);
    black_box(plan.event_id(&record));
    for ((spec, window), &wanted) in detectors
        .specs
        .iter()
        .zip(&mut detectors.windows)
        .zip(plan.detectors())
    {
        if let Some(value) = features::contribution(&spec.feature, wanted, &record) {
            window.add(record.time, value);
        }
    }
}

fn hot_path(c: &mut Criterion) {
    let spec = Spec::default_spec().expect("the default spec parses");
    let specs = spec.detectors;
    let records = enriched();
    let mean_len = records.iter().map(Vec::len).sum::<usize>() / records.len();
    let plan = Plan::new(&specs);
    let now = START + 3_600_000;

    // Both paths must agree on every record, window for window.
    let (mut a, mut b) = (Detectors::new(&specs), Detectors::new(&specs));
    for record in &records {
        old::take(&mut a, record, now);
        take(&plan, &mut b, record, now);
    }
    for (a, b) in a.windows.iter_mut().zip(&mut b.windows) {
        assert_eq!(a.close(i64::MAX / 2), b.close(i64::MAX / 2));
    }

    // The ratio, in one run: the best of five rounds each.
    let best = |f: &mut dyn FnMut()| best_of(5, f);
    let mut detectors = Detectors::new(&specs);
    let old_time = best(&mut || {
        for record in &records {
            old::take(&mut detectors, black_box(record), now);
        }
    });
    let new_time = best(&mut || {
        for record in &records {
            take(&plan, &mut detectors, black_box(record), now);
        }
    });
    let per_second = |d: Duration| RECORDS as f64 / d.as_secs_f64();
    eprintln!(
        "take, {} detectors, {mean_len}-byte records: old {:.0} records/s, plan {:.0} records/s, ratio {:.2}",
        specs.len(),
        per_second(old_time),
        per_second(new_time),
        old_time.as_secs_f64() / new_time.as_secs_f64(),
    );

    // Scaled out: what one replica holding one shard of N does per record, for the slowest
    // shard of the default spec's split (each shard reads the whole stream; its plan reads only
    // its detectors' fields).
    let whole = new_time;
    let mut sharded = Vec::new();
    for count in [2, 4] {
        let slowest =
            detector::shards::split(&Spec::default_spec().expect("the default spec"), count)
                .into_iter()
                .map(|part| {
                    let plan = Plan::new(&part.detectors);
                    let mut detectors = Detectors::new(&part.detectors);
                    best(&mut || {
                        for record in &records {
                            take(&plan, &mut detectors, black_box(record), now);
                        }
                    })
                })
                .max()
                .unwrap_or(Duration::MAX);
        eprintln!(
            "take, the slowest of {count} shards: {:.0} records/s, {:.2}x one shard of everything",
            per_second(slowest),
            whole.as_secs_f64() / slowest.as_secs_f64(),
        );
        sharded.push((count, slowest));
    }
    black_box(sharded);

    let mut group = c.benchmark_group("take");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function(format!("old/{mean_len}-byte-records"), |b| {
        let mut detectors = Detectors::new(&specs);
        b.iter(|| {
            for record in &records {
                old::take(&mut detectors, black_box(record), now);
            }
        })
    });
    group.bench_function(format!("plan/{mean_len}-byte-records"), |b| {
        let mut detectors = Detectors::new(&specs);
        b.iter(|| {
            for record in &records {
                take(&plan, &mut detectors, black_box(record), now);
            }
        })
    });
    group.bench_function("read-only/plan", |b| {
        b.iter(|| {
            for record in &records {
                black_box(plan.read(black_box(record)).ok());
            }
        })
    });
    // The floor for any serde_json reading: validate the record, keep nothing.
    group.bench_function("read-only/ignored-any", |b| {
        b.iter(|| {
            for record in &records {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(record)).ok());
            }
        })
    });
    group.bench_function("read-only/value", |b| {
        b.iter(|| {
            for record in &records {
                black_box(serde_json::from_slice::<Value>(black_box(record)).ok());
            }
        })
    });
    group.finish();
}

fn scoring(c: &mut Criterion) {
    let spec = Spec::default_spec().expect("the default spec parses");
    let detector = spec.detectors[0].clone();
    let mut group = c.benchmark_group("scoring");

    let mut model = Model::new(&ModelSpec::default(), detector.min_rise(), 7).expect("a model");
    let value = |i: u64| 100.0 + ((i * 7_919) % 13) as f64;
    for i in 0..1_000 {
        model.observe(value(i), None).expect("observed");
    }
    group.throughput(Throughput::Elements(1));
    let mut i = 1_000;
    group.bench_function("observe/default-model", |b| {
        b.iter(|| {
            i += 1;
            black_box(model.observe(black_box(value(i)), None).ok())
        })
    });

    let category = Category {
        field: "httpRequest.clientIp".to_owned(),
        max_entities: 20_000,
        idle: Duration::from_secs(3_600),
        parts: 1,
        part: None,
    };
    let detector = DetectorSpec {
        category: Some(category.clone()),
        ..detector
    };
    let clients: Vec<String> = (0..ENTITIES)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    let mut entities = Entities::new();
    let mut start = 0;
    let interval = |entities: &mut Entities, start: i64| {
        for (c, client) in clients.iter().enumerate() {
            entities.add(start, client, (c % 5) as f64);
        }
        Interval {
            start,
            end: start + 60_000,
            value: 0.0,
            events: 0,
        }
    };
    // Every entity has a model with some history before the measured intervals.
    for _ in 0..10 {
        let closed = interval(&mut entities, start);
        entities.close(&detector, &category, &closed);
        start += 60_000;
    }
    group.throughput(Throughput::Elements(ENTITIES as u64));
    group.bench_function(format!("close/{ENTITIES}-entities"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let closed = interval(&mut entities, start);
                start += 60_000;
                let started = Instant::now();
                black_box(entities.close(&detector, &category, &closed));
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
}

/// Scaled out by entities: what the slowest part of a category detector's entities costs per
/// record, when the entities (10,000 clients) are split in 2 and 4 parts
/// (`category.parts`), against the whole: each part reads every record (the plan, the entity,
/// whether it is the part's) and adds and judges only its own entities. Printed, in one run.
fn entity_parts(_: &mut Criterion) {
    const PER_INTERVAL: usize = 10_000;
    const INTERVALS: usize = 4;
    let generator =
        Generator::with_clients(7, "bench", "entity-parts", ENTITIES).expect("a valid instance");
    // 10,000 records a minute, so each interval has thousands of clients.
    let records = enriched_from(generator, PER_INTERVAL * INTERVALS, 6);
    let spec = Spec::default_spec().expect("the default spec parses");
    let cost = |parts: usize, part: Option<usize>| {
        let category = Category {
            field: "httpRequest.clientIp".to_owned(),
            max_entities: 20_000,
            idle: Duration::from_secs(3_600),
            parts,
            part,
        };
        let detector = DetectorSpec {
            category: Some(category.clone()),
            ..spec.detectors[0].clone()
        };
        let plan = Plan::new([&detector]);
        let wanted = plan.detectors()[0];
        let mut entities = Entities::new();
        let mut pass = || {
            for (i, batch) in records.chunks(PER_INTERVAL).enumerate() {
                let start = START + i as i64 * 60_000;
                for payload in batch {
                    let Ok(record) = plan.read(black_box(payload)) else {
                        continue;
                    };
                    let Some(value) = features::contribution(&detector.feature, wanted, &record)
                    else {
                        continue;
                    };
                    if let Some(entity) = features::entity(wanted, &record)
                        && category.holds(&entity)
                    {
                        entities.add(start, &entity, value);
                    }
                }
                let interval = Interval {
                    start,
                    end: start + 60_000,
                    value: 0.0,
                    events: PER_INTERVAL as u64,
                };
                black_box(entities.close(&detector, &category, &interval));
            }
        };
        // The first pass makes the models; the best of three more is measured.
        pass();
        best_of(3, &mut pass)
    };
    let per_second = |d: Duration| records.len() as f64 / d.as_secs_f64();
    let whole = cost(1, None);
    eprintln!(
        "entities, one category detector over {ENTITIES} clients: whole {:.0} records/s",
        per_second(whole)
    );
    for parts in [2, 4] {
        let slowest = (0..parts)
            .map(|part| cost(parts, Some(part)))
            .max()
            .unwrap_or(Duration::MAX);
        eprintln!(
            "entities, the slowest of {parts} parts: {:.0} records/s, {:.2}x the whole",
            per_second(slowest),
            whole.as_secs_f64() / slowest.as_secs_f64(),
        );
    }
}

/// Records per projected batch: the readers' default (`detector.reader.batch_records`).
const BATCH: usize = 500;

/// What a session does with one projected batch, as `Stage::take` does it: decode, find its
/// columns, and add each row to every window.
fn take_batch(columns: &mut Columns, detectors: &mut Detectors, payload: &[u8], now: i64) {
    let Ok(batch) = projection::decode(payload) else {
        return;
    };
    black_box(columns.align(&batch.columns));
    for (i, (&time, &id)) in batch.times.iter().zip(&batch.ids).enumerate() {
        detectors.clock.admit(0, time, now);
        black_box(id);
        let seen = columns.row(&batch, i);
        for (i, (spec, window)) in detectors
            .specs
            .iter()
            .zip(&mut detectors.windows)
            .enumerate()
        {
            if let Some(value) = seen.value(i, &spec.feature) {
                window.add(time, value);
            }
        }
    }
}

fn projected(c: &mut Criterion) {
    let spec = Spec::default_spec().expect("the default spec parses");
    let specs = spec.detectors.clone();
    let records = enriched();
    let plan = Plan::new(&specs);
    let projector = Projector::new(&spec);
    let now = START + 3_600_000;
    let project = |records: &[Vec<u8>]| -> Vec<Vec<u8>> {
        records
            .chunks(BATCH)
            .map(|chunk| {
                let rows: Vec<_> = (chunk.iter())
                    .filter_map(|r| projector.project(black_box(r)).ok())
                    .collect();
                projection::encode(projector.columns(), &rows)
            })
            .collect()
    };
    let batches = project(&records);
    let bytes = batches.iter().map(Vec::len).sum::<usize>() / records.len();

    // Both ways of taking records must leave the same windows.
    let (mut a, mut b) = (Detectors::new(&specs), Detectors::new(&specs));
    let mut columns = Columns::new(&specs);
    for record in &records {
        take(&plan, &mut a, record, now);
    }
    for batch in &batches {
        take_batch(&mut columns, &mut b, batch, now);
    }
    for (a, b) in a.windows.iter_mut().zip(&mut b.windows) {
        assert_eq!(a.close(i64::MAX / 2), b.close(i64::MAX / 2));
    }

    let best = |f: &mut dyn FnMut()| best_of(5, f);
    let mut detectors = Detectors::new(&specs);
    let records_time = best(&mut || {
        for record in &records {
            take(&plan, &mut detectors, black_box(record), now);
        }
    });
    let batches_time = best(&mut || {
        for batch in &batches {
            take_batch(&mut columns, &mut detectors, black_box(batch), now);
        }
    });
    let reader_time = best(&mut || {
        black_box(project(&records));
    });
    let per_second = |d: Duration| RECORDS as f64 / d.as_secs_f64();
    eprintln!(
        "projected, {} detectors ({} columns, {bytes} bytes a row): a session takes {:.0} records/s from enriched, {:.0} rows/s from projected batches of {BATCH}, ratio {:.2}; a reader projects {:.0} records/s",
        specs.len(),
        projector.columns().len(),
        per_second(records_time),
        per_second(batches_time),
        records_time.as_secs_f64() / batches_time.as_secs_f64(),
        per_second(reader_time),
    );

    let mut group = c.benchmark_group("projected");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("session/batches", |b| {
        let mut detectors = Detectors::new(&specs);
        b.iter(|| {
            for batch in &batches {
                take_batch(&mut columns, &mut detectors, black_box(batch), now);
            }
        })
    });
    group.bench_function("reader/project-and-encode", |b| {
        b.iter(|| black_box(project(&records)))
    });
    group.finish();
}

criterion_group!(benches, hot_path, scoring, entity_parts, projected);
criterion_main!(benches);
