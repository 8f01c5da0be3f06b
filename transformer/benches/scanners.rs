//! The transformer's own JSON scanner against the well-kept libraries that could replace it,
//! each doing the scanner's job on the same records: validate the record and read the paths
//! the default rules read (`timestamp`, `action`, `httpSourceName`, `httpStatus`,
//! `httpRequest.country`, `httpRequest.httpMethod`), borrowing the values.
//!
//! `cargo bench -p transformer --bench scanners -- --warm-up-time 1 --measurement-time 3`
//! prints records/s (`thrpt`) for:
//! - `scanner`: [`CompiledRules::accepts`], everything `apply` does but writing the output
//!   (it also classifies the values and checks the timestamp, which the others do not);
//! - `apply`: the whole transform, for reference;
//! - `sonic-rs/get_many`: lazy access to the six paths through a `PointerTree`. It stops once
//!   it has them, so the rest of the record is not validated: less than the job asks;
//! - `simd-json/tape`: the record copied into a padded buffer (simd-json parses in place and
//!   the original bytes must stay for the output), a tape filled with reused buffers, then
//!   looked up;
//! - `simd-json/borrowed`: the same into a borrowed `Value` tree;
//! - `serde_json/borrowed`: a struct of borrowed strings (`Cow`, for escapes), every other
//!   member skipped and validated;
//! - `serde_json/raw-value`: the same with `&RawValue` members, not even unescaped.
//!
//! The scanner's module docs (`src/json.rs`) keep the figures of the last run.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline::wire::SourcePosition;
use serde::Deserialize;
use serde_json::value::RawValue;
use simd_json::prelude::*;
use transformer::CompiledRules;

#[path = "common/records.rs"]
mod records;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SerdeRecord<'a> {
    timestamp: i64,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    http_source_name: Cow<'a, str>,
    #[serde(borrow)]
    http_status: Cow<'a, str>,
    #[serde(borrow)]
    http_request: SerdeRequest<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SerdeRequest<'a> {
    #[serde(borrow)]
    country: Cow<'a, str>,
    #[serde(borrow)]
    http_method: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    action: &'a RawValue,
    #[serde(borrow)]
    http_source_name: &'a RawValue,
    #[serde(borrow)]
    http_status: &'a RawValue,
    #[serde(borrow)]
    http_request: RawRequest<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    #[serde(borrow)]
    country: &'a RawValue,
    #[serde(borrow)]
    http_method: &'a RawValue,
}

const PATHS: [&[&str]; 6] = [
    &["timestamp"],
    &["action"],
    &["httpSourceName"],
    &["httpStatus"],
    &["httpRequest", "country"],
    &["httpRequest", "httpMethod"],
];

fn sonic(tree: &sonic_rs::PointerTree, record: &str) -> Option<i64> {
    use sonic_rs::JsonValueTrait;
    let values = sonic_rs::get_many(record, tree).ok()?;
    let mut found = values.iter().flatten();
    let timestamp = found.next()?.as_i64()?;
    let mut length = 0;
    for value in found {
        length += value.as_str()?.len();
    }
    Some(timestamp + length as i64)
}

fn simd_tape(tape: &simd_json::tape::Tape<'_>) -> Option<usize> {
    let record = tape.as_value();
    let request = record.get("httpRequest")?;
    let text = |value: Option<simd_json::tape::Value<'_, '_>>| Some(value?.as_str()?.len());
    let length = text(record.get("action"))?
        + text(record.get("httpSourceName"))?
        + text(record.get("httpStatus"))?
        + text(request.get("country"))?
        + text(request.get("httpMethod"))?;
    let timestamp = record.get("timestamp")?.as_i64()?;
    Some(length + timestamp as usize)
}

fn simd_borrowed(record: &simd_json::BorrowedValue<'_>) -> Option<usize> {
    let request = record.get("httpRequest")?;
    let texts = [
        record.get_str("action")?,
        record.get_str("httpSourceName")?,
        record.get_str("httpStatus")?,
        request.get_str("country")?,
        request.get_str("httpMethod")?,
    ];
    let timestamp = record.get_i64("timestamp")?;
    Some(texts.iter().map(|t| t.len()).sum::<usize>() + timestamp as usize)
}

fn scanners(c: &mut Criterion) {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    let records = records::records(1024);
    let source = SourcePosition {
        topic: "raw".to_owned(),
        partition: 3,
        offset: 1_234_567,
    };
    let mut tree = sonic_rs::PointerTree::new();
    for path in PATHS {
        tree.add_path(path.iter().copied());
    }
    // Every way must read every record, or it would be measuring a shortcut.
    let mut out = Vec::with_capacity(4096);
    let mut buffers = simd_json::Buffers::new(4096);
    let mut padded: Vec<u8> = Vec::with_capacity(4096);
    let mut spare_tape = Some(simd_json::tape::Tape::null());
    for record in &records {
        rules.accepts(record.as_bytes()).expect("accepted");
        rules
            .apply(record.as_bytes(), &source, &mut out)
            .expect("enriched");
        sonic(&tree, record).expect("sonic-rs reads the record");
        let mut copy = record.clone().into_bytes();
        let value = simd_json::to_borrowed_value(&mut copy).expect("simd-json parses");
        simd_borrowed(&value).expect("simd-json reads the record");
        let parsed: SerdeRecord<'_> = serde_json::from_str(record).expect("serde_json reads");
        black_box(parsed.timestamp);
        serde_json::from_str::<RawRecord<'_>>(record).expect("serde_json reads");
    }

    let mut group = c.benchmark_group("scanners");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("scanner", |b| {
        b.iter(|| {
            for record in &records {
                black_box(rules.accepts(black_box(record.as_bytes())).is_ok());
            }
        })
    });
    group.bench_function("apply", |b| {
        b.iter(|| {
            for record in &records {
                out.clear();
                let result = rules.apply(black_box(record.as_bytes()), &source, &mut out);
                black_box((&result, &out));
            }
        })
    });
    group.bench_function("sonic-rs/get_many", |b| {
        b.iter(|| {
            for record in &records {
                black_box(sonic(&tree, black_box(record)));
            }
        })
    });
    group.bench_function("simd-json/tape", |b| {
        b.iter(|| {
            for record in &records {
                let len = record.len();
                padded.clear();
                padded.extend_from_slice(black_box(record.as_bytes()));
                padded.resize(len + simd_json::INPUT_PADDING, 0);
                let mut tape = spare_tape
                    .take()
                    .unwrap_or_else(simd_json::tape::Tape::null);
                let read = simd_json::fill_tape_padded(&mut padded, len, &mut buffers, &mut tape)
                    .ok()
                    .and_then(|()| simd_tape(&tape));
                black_box(read);
                spare_tape = Some(tape.reset());
            }
        })
    });
    group.bench_function("simd-json/borrowed", |b| {
        b.iter(|| {
            for record in &records {
                padded.clear();
                padded.extend_from_slice(black_box(record.as_bytes()));
                let value = simd_json::to_borrowed_value_with_buffers(&mut padded, &mut buffers);
                black_box(value.ok().as_ref().and_then(simd_borrowed));
            }
        })
    });
    group.bench_function("serde_json/borrowed", |b| {
        b.iter(|| {
            for record in &records {
                let parsed = serde_json::from_str::<SerdeRecord<'_>>(black_box(record));
                black_box(parsed.ok().map(|r| {
                    (
                        r.timestamp,
                        r.action.len() + r.http_source_name.len() + r.http_status.len(),
                        r.http_request.country.len() + r.http_request.http_method.len(),
                    )
                }));
            }
        })
    });
    group.bench_function("serde_json/raw-value", |b| {
        b.iter(|| {
            for record in &records {
                let parsed = serde_json::from_str::<RawRecord<'_>>(black_box(record));
                black_box(parsed.ok().map(|r| {
                    r.timestamp.get().len()
                        + r.action.get().len()
                        + r.http_source_name.get().len()
                        + r.http_status.get().len()
                        + r.http_request.country.get().len()
                        + r.http_request.http_method.get().len()
                }));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, scanners);
criterion_main!(benches);
