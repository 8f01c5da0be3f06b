//! The receivers' CPU work per event, without IO: HEC envelopes parsed and checked into `raw`
//! records (`hec::parse::events`), and syslog messages parsed into JSON records
//! (`syslog::parse::record`). `cargo bench -p ingest --bench parsing` prints events per second
//! (criterion's throughput); Kafka's own cost is measured by the stack, not here.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::hec::parse::events;
use ingest::syslog::parse::{Receipt, record};

fn hec(c: &mut Criterion) {
    let body: String = (0..1_000)
        .map(|i| {
            format!(
                r#"{{"time":{},"host":"web-{}","source":"/var/log/app.log","sourcetype":"app","index":"main","fields":{{"team":"payments"}},"event":{{"level":"error","message":"card declined for order {i}","code":51}}}}"#,
                1_764_914_400 + i,
                i % 7
            )
        })
        .collect();
    let mut group = c.benchmark_group("hec");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("events_1000", |b| {
        b.iter(|| events(std::hint::black_box(body.as_bytes()), 1_000_000).map(|r| r.len()))
    });
    group.finish();
}

fn syslog(c: &mut Criterion) {
    let receipt = Receipt {
        at: chrono::Utc::now(),
        peer: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 5140))),
    };
    let rfc5424 = br#"<34>1 2026-12-05T05:59:58.123Z web-1 sshd 4242 ID47 [origin ip="10.0.0.1"] Failed password for invalid user admin from 198.51.100.4 port 22 ssh2"#;
    let rfc3164 = b"<86>Dec  5 05:59:58 bastion sudo[811]: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls";
    let mut group = c.benchmark_group("syslog");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rfc5424", |b| {
        b.iter(|| record(std::hint::black_box(rfc5424), false, receipt).len())
    });
    group.bench_function("rfc3164", |b| {
        b.iter(|| record(std::hint::black_box(rfc3164), false, receipt).len())
    });
    group.finish();
}

criterion_group!(benches, hec, syslog);
criterion_main!(benches);
