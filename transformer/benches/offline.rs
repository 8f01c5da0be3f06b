//! Offline `apply` against a plain copy of the same file, in one run.
//!
//! `cargo bench -p transformer --bench offline` writes N seed-shaped records (default 400,000,
//! about 220 MB; `BENCH_RECORDS` to change) as NDJSON into the target's temporary directory,
//! then, alternating for `BENCH_ROUNDS` rounds (default 5), times:
//! - `copy`: what `cat file > /dev/null` does: the file read in 128 KiB blocks and written to
//!   `/dev/null`;
//! - `apply`: `offline::apply` from the same file (128 KiB reads) to `/dev/null`, dead letters
//!   only counted, as `logwarden-transformer apply < file > /dev/null` runs it.
//!
//! It prints each round's records/s and the median ratio apply / copy: 1.0 would be "as fast
//! as the IO allows". The file is read from the page cache after the first round.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use transformer::CompiledRules;
use transformer::offline;

#[path = "common/records.rs"]
mod records;

const BLOCK: usize = 128 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cat`: read blocks, write them out.
fn copy(path: &Path) -> Duration {
    let started = Instant::now();
    let mut input = File::open(path).expect("open the input");
    let mut output = File::create("/dev/null").expect("open /dev/null");
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = input.read(&mut block).expect("read");
        if n == 0 {
            break;
        }
        output.write_all(&block[..n]).expect("write");
    }
    started.elapsed()
}

fn apply(rules: &CompiledRules, path: &Path, records: usize) -> Duration {
    let started = Instant::now();
    let input = BufReader::with_capacity(BLOCK, File::open(path).expect("open the input"));
    let output = File::create("/dev/null").expect("open /dev/null");
    let counts = offline::apply(rules, input, output, None).expect("apply runs");
    let elapsed = started.elapsed();
    assert_eq!(counts.records_out, records as u64, "{counts}");
    elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let n = env_usize("BENCH_RECORDS", if benching { 400_000 } else { 2_000 });
    let rounds = env_usize("BENCH_ROUNDS", if benching { 5 } else { 1 });
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("offline-bench.ndjson");
    {
        let mut file = BufWriter::new(File::create(&path).expect("create the input"));
        // The records repeat every 1024 lines; their event ids still differ (line numbers).
        let records = records::records(1024);
        for i in 0..n {
            file.write_all(records[i % records.len()].as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .expect("write the input");
        }
        file.flush().expect("write the input");
    }
    let bytes = std::fs::metadata(&path).expect("the input exists").len();
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{n} records, {bytes} bytes, {workers} workers");
    let (mut copies, mut applies, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let copied = copy(&path);
        let applied = apply(&rules, &path, n);
        let (rc, ra) = (
            n as f64 / copied.as_secs_f64(),
            n as f64 / applied.as_secs_f64(),
        );
        println!(
            "round {round}: copy {rc:>11.0} records/s ({copied:.2?}), apply {ra:>10.0} records/s ({applied:.2?}), ratio {:.3}",
            ra / rc
        );
        copies.push(rc);
        applies.push(ra);
        ratios.push(ra / rc);
    }
    println!(
        "median: copy {:.0} records/s, apply {:.0} records/s, ratio apply/copy {:.3}",
        median(copies),
        median(applies),
        median(ratios)
    );
    std::fs::remove_file(&path).expect("remove the input");
}
