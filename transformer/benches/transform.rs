//! Throughput of the pure transform on seed-shaped records (about 550 bytes each), one core.
//!
//! The requirement is at least 1,000,000 events/s on one core of the project's machines:
//! `cargo bench -p transformer --bench transform` reports it as `thrpt` in elements/s. The
//! records vary over the seed's value sets (with its anomalies mixed in) so branch prediction
//! sees realistic traffic, and they are generated once, outside the measured loop.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline::wire::SourcePosition;
use transformer::CompiledRules;

const ACTIONS: [&str; 5] = ["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"];
const SOURCES: [&str; 5] = ["ALB", "APIGW", "APPSYNC", "CF", "-"];
const STATUSES: [&str; 8] = ["200", "202", "307", "308", "403", "404", "502", "504"];
const COUNTRIES: [&str; 7] = ["US", "UK", "IN", "XX", "YY", "ZZ", "WW"];
const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "DELETE"];
const URIS: [&str; 4] = ["/login", "/api/v1/orders", "/static/app.js", "/"];

/// A small deterministic generator (SplitMix64), so every run measures the same records.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[(self.next() % values.len() as u64) as usize]
    }
}

fn record(rng: &mut SplitMix, index: u64) -> String {
    let source = rng.pick(&SOURCES);
    format!(
        concat!(
            r#"{{"timestamp":{ts},"formatVersion":1,"action":"{action}","httpSourceName":"{source}","#,
            r#""httpSourceId":"{source_id}","httpStatus":"{status}","httpRequest":{{"clientIp":"203.0.113.{ip}","#,
            r#""country":"{country}","headers":[{{"name":"Host","value":"www.example.com"}},"#,
            r#"{{"name":"User-Agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}},"#,
            r#"{{"name":"Accept","value":"text/html"}}],"uri":"{uri}","args":"","httpVersion":"HTTP/1.1","#,
            r#""httpMethod":"{method}","requestId":"run/p0/{index:016}"}}}}"#
        ),
        ts = 1_700_000_000_000 + index * 37,
        action = rng.pick(&ACTIONS),
        source = source,
        source_id = source.to_ascii_lowercase(),
        status = rng.pick(&STATUSES),
        ip = rng.next() % 256,
        country = rng.pick(&COUNTRIES),
        uri = rng.pick(&URIS),
        method = rng.pick(&METHODS),
        index = index,
    )
}

fn transform(c: &mut Criterion) {
    let rules = match CompiledRules::default_rules() {
        Ok(rules) => rules,
        Err(error) => panic!("the default rules do not compile: {error}"),
    };
    let mut rng = SplitMix(42);
    let records: Vec<String> = (0..1024).map(|i| record(&mut rng, i)).collect();
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
