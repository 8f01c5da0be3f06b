//! Throughput of the pure transform on seed-shaped records (about 550 bytes each), one core.
//!
//! The requirement is at least 1,000,000 events/s on one core of the project's machines:
//! `cargo bench -p transformer --bench transform` reports it as `thrpt` in elements/s. The
//! records (`common/records.rs`) are generated once, outside the measured loop.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline::wire::SourcePosition;
use transformer::CompiledRules;

#[path = "common/records.rs"]
mod records;

fn transform(c: &mut Criterion) {
    let rules = match CompiledRules::default_rules() {
        Ok(rules) => rules,
        Err(error) => panic!("the default rules do not compile: {error}"),
    };
    let records = records::records(1024);
    let mean_len = records.iter().map(String::len).sum::<usize>() / records.len();
    let source = SourcePosition {
        topic: "raw".to_owned(),
        partition: 3,
        offset: 1_234_567,
    };
    let mut out = Vec::with_capacity(4096);
    // Every record must enrich: a benchmark of rejections would measure the wrong path.
    for record in &records {
        out.clear();
        if let Err(rejection) = rules.apply(record.as_bytes(), &source, &mut out) {
            panic!("benchmark record rejected: {rejection}\n{record}");
        }
    }

    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function(
        format!("apply/default-rules/{mean_len}-byte-records"),
        |b| {
            b.iter(|| {
                for record in &records {
                    out.clear();
                    let result = rules.apply(black_box(record.as_bytes()), &source, &mut out);
                    black_box((&result, &out));
                }
            })
        },
    );
    group.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
