//! Turns an event (a timestamp, an optional anomaly target and the client it comes from, if
//! one) into one [`RawLog`].
//!
//! The five monitored fields are drawn with the seed's weights ([`crate::model`]); only the
//! targeted field switches to its anomaly weights. The fields the seed hard-coded are varied
//! plausibly (client address, path, query, headers, protocol), and always drawn the same way
//! whatever the mode, so nothing but the monitored field itself gives an anomaly away. Every
//! draw in a record consumes the same randomness in every mode: a generator run in anomaly mode
//! produces, record for record, the same values as one run in normal mode with the same seed,
//! except in the targeted field. An event of an entity phase (`from: client`) names its client:
//! the record's client is drawn as always (the same randomness consumed) and then replaced by
//! that address, so only the anomalous records' client and target differ.
//!
//! Determinism and replicas: all randomness comes from ChaCha8 streams keyed by the `--seed`,
//! a stream name and the instance id ([`crate::rng`]), never from the thread RNG. The same seed
//! and instance give the same records; replicas with the same seed but different instance ids
//! draw different records. `requestId` is `{run_id}/{instance}/{counter as 16 hex digits}`: the counter is
//! unique within a generator and the instance id contains no `/`, so the id can be split back
//! into its parts unambiguously and two generators with different instance ids (or run ids)
//! can never produce the same `requestId`.
//!
//! Everything the generator needs is built once in [`Generator::new`]; a record costs a few
//! uniform draws, binary searches and the string allocations the owned [`RawLog`] requires; the
//! client's draw is a binary search over the pool's cumulative Zipf weights ([`WeightedIndex`]),
//! `O(log n)` for a pool of `n` (10,000 clients: 14 comparisons).
//!
//! The request parts the seed hard-coded are tables in `request`, a leaf that knows nothing of
//! the generator; the client pool is the crate's `clients`, shared with [`crate::schedule`].
//!
//! The real sources' generators (AWS WAF, CloudTrail, syslog, CloudWatch Logs, Splunk HEC) are
//! one module each behind [`SourceGenerator`] (`sources`); they share nothing with the seed's
//! generator but the seeded random streams.

mod cloudtrail;
pub mod cloudwatch;
mod request;
mod sources;
mod splunk;
mod syslog;
mod waf;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use pipeline::wire::{HttpHeader, HttpRequest, MonitoredField, RawLog};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;

use crate::model::{self, FieldSampler, Mode, constant_weights};
use crate::rng::{Stream, seeded_rng};
use crate::schedule::Event;

pub use crate::clients::{CLIENT_POOL_SIZE, MAX_CLIENTS};
use crate::clients::{client_pool, popularity};
pub use cloudtrail::EXPECTED_REGIONS;
use request::{HTTP_VERSIONS, PATHS, USER_AGENTS};
pub use sources::{INJECT_SHARE, NoGenerator, SourceError, SourceGenerator, SourceRecord};

/// An instance id that cannot be used to build unambiguous `requestId`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid producer instance id `{0}`: it must be non-empty and must not contain `/` \
     (use the pod or host name, e.g. `producer-0`)"
)]
pub struct InvalidInstance(pub String);

/// Generates the seed's WAF log records, one per call to [`Generator::next`].
///
/// Holds its RNG, its pre-built distributions and the `requestId` counter; it never reads the
/// clock (timestamps come from the caller, normally from a [`crate::schedule::Schedule`]).
#[derive(Debug, Clone)]
pub struct Generator {
    /// The record stream, keyed by seed and instance.
    rng: ChaCha8Rng,
    /// The five monitored fields, in [`MonitoredField::ALL`] order.
    fields: [FieldSampler; 5],
    /// Pre-formatted client addresses, most popular first.
    clients: Vec<String>,
    /// Zipf popularity over `clients`.
    client_index: WeightedIndex<f64>,
    /// Popularity over [`PATHS`].
    path_index: WeightedIndex<f64>,
    /// Popularity over [`USER_AGENTS`].
    user_agent_index: WeightedIndex<f64>,
    /// Popularity over [`HTTP_VERSIONS`].
    version_index: WeightedIndex<f64>,
    /// `{run_id}/{instance}/`, the part of every `requestId` before the counter.
    request_id_prefix: String,
    /// Records generated so far; the counter in `requestId`.
    generated: u64,
}

impl Generator {
    /// A generator for producer instance `instance` in run `run_id`, seeded with `seed`.
    ///
    /// `instance` must be unique among the replicas (the pod name is) and must not contain `/`;
    /// `run_id` is any string. With the same `seed`, `instance` and `run_id`, two generators
    /// produce identical records.
    pub fn new(seed: u64, instance: &str, run_id: &str) -> Result<Self, InvalidInstance> {
        Self::with_clients(seed, instance, run_id, CLIENT_POOL_SIZE)
    }

    /// A generator like [`Generator::new`]'s drawing from a pool of `clients` addresses (a
    /// scenario's `clients:`, which [`crate::scenario::Scenario::validate`] keeps within 1 to
    /// [`MAX_CLIENTS`]; a count outside is brought within). The default pool of
    /// [`CLIENT_POOL_SIZE`] is the first addresses of every larger one.
    pub fn with_clients(
        seed: u64,
        instance: &str,
        run_id: &str,
        clients: usize,
    ) -> Result<Self, InvalidInstance> {
        if instance.is_empty() || instance.contains('/') {
            return Err(InvalidInstance(instance.to_owned()));
        }
        let clients: Vec<String> = client_pool(seed, clients.clamp(1, MAX_CLIENTS))
            .iter()
            .map(Ipv4Addr::to_string)
            .collect();
        let client_weights = popularity(clients.len());
        let path_weights: Vec<f64> = PATHS.iter().map(|p| p.weight).collect();
        let agent_weights: Vec<f64> = USER_AGENTS.iter().map(|(_, w)| *w).collect();
        let version_weights: Vec<f64> = HTTP_VERSIONS.iter().map(|(_, w)| *w).collect();
        Ok(Self {
            rng: seeded_rng(seed, Stream::Records, instance),
            fields: MonitoredField::ALL.map(FieldSampler::new),
            client_index: constant_weights(&client_weights),
            clients,
            path_index: constant_weights(&path_weights),
            user_agent_index: constant_weights(&agent_weights),
            version_index: constant_weights(&version_weights),
            request_id_prefix: format!("{run_id}/{instance}/"),
            generated: 0,
        })
    }

    /// How many records this generator has produced.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// The record for `event` (its timestamp, anomaly target and client, if it names one).
    pub fn record(&mut self, event: &Event) -> RawLog {
        self.next_from(event.timestamp_ms, event.anomaly, event.client)
    }

    /// The next record, at `timestamp_ms` (epoch milliseconds), with `anomaly` (if any) drawn
    /// with its anomaly weights and every other monitored field with its normal weights.
    pub fn next(&mut self, timestamp_ms: i64, anomaly: Option<MonitoredField>) -> RawLog {
        self.next_from(timestamp_ms, anomaly, None)
    }

    /// The next record, as [`Generator::next`]'s, from `client` when given: the client is still
    /// drawn from the pool (so the randomness consumed, and every other value, is the same) and
    /// then replaced.
    pub fn next_from(
        &mut self,
        timestamp_ms: i64,
        anomaly: Option<MonitoredField>,
        client: Option<Ipv4Addr>,
    ) -> RawLog {
        let [action, source, status, country, method] = MonitoredField::ALL.map(|field| {
            let mode = if anomaly == Some(field) {
                Mode::Anomaly
            } else {
                Mode::Normal
            };
            self.fields[model::position(field)].sample(&mut self.rng, mode)
        });

        let drawn = self.client_index.sample(&mut self.rng);
        let client_ip = match client {
            Some(address) => address.to_string(),
            None => self.clients.get(drawn).cloned().unwrap_or_default(),
        };
        let path = PATHS[self.path_index.sample(&mut self.rng)];
        let args = path.query.draw(&mut self.rng);
        let user_agent = USER_AGENTS[self.user_agent_index.sample(&mut self.rng)].0;
        let version = HTTP_VERSIONS[self.version_index.sample(&mut self.rng)].0;

        let mut request_id = String::with_capacity(self.request_id_prefix.len() + 16);
        request_id.push_str(&self.request_id_prefix);
        // Writing to a `String` cannot fail.
        let _ = write!(request_id, "{:016x}", self.generated);
        self.generated += 1;

        RawLog {
            timestamp: timestamp_ms,
            format_version: 1,
            action: action.to_owned(),
            http_source_name: source.to_owned(),
            http_source_id: source.to_ascii_lowercase(),
            http_status: status.to_owned(),
            http_request: HttpRequest {
                client_ip,
                country: country.to_owned(),
                headers: vec![
                    header("Host", path.resource.host()),
                    header("User-Agent", user_agent),
                    header("Accept", path.resource.accept()),
                ],
                uri: path.uri.to_owned(),
                args,
                http_version: version.to_owned(),
                http_method: method.to_owned(),
                request_id,
            },
        }
    }
}

fn header(name: &str, value: &str) -> HttpHeader {
    HttpHeader {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::clients::looks_public;

    const T0: i64 = 1_700_000_000_000;

    fn generator(seed: u64, instance: &str) -> Generator {
        Generator::new(seed, instance, "run-1").expect("valid instance")
    }

    fn value(log: &RawLog, field: MonitoredField) -> &str {
        match field {
            MonitoredField::Action => &log.action,
            MonitoredField::HttpSourceName => &log.http_source_name,
            MonitoredField::HttpStatus => &log.http_status,
            MonitoredField::Country => &log.http_request.country,
            MonitoredField::HttpMethod => &log.http_request.http_method,
        }
    }

    fn json(generator: &mut Generator, n: i64, anomaly: Option<MonitoredField>) -> Vec<String> {
        (0..n)
            .map(|i| serde_json::to_string(&generator.next(T0 + i, anomaly)).expect("serializes"))
            .collect()
    }

    // ---- Statistics -------------------------------------------------------------------------
    //
    // Pearson's chi-square goodness-of-fit test of each field's value counts against the seed's
    // weights, at significance p = 0.001 with k - 1 degrees of freedom for k values. No cells
    // are merged: with 200,000 records the rarest cell (weight 0.001 of a total of about 1,
    // probability ~0.001) still expects ~200 records, far above the usual minimum of 5, which
    // `chi_square` asserts. The sample is drawn from a fixed seed, so the outcome is the same
    // on every run. The expected weights are written out again here from the seed's generator
    // rather than taken from `crate::model`, so a wrong table there fails these tests too.

    const SAMPLE: u64 = 200_000;
    const SEED: u64 = 0x5eed_2022;

    /// The seed's facts: each field's values, normal weights and anomaly weights.
    struct Seed {
        field: MonitoredField,
        values: &'static [&'static str],
        normal: &'static [f64],
        anomaly: &'static [f64],
    }

    const SEED_MODEL: [Seed; 5] = [
        Seed {
            field: MonitoredField::Action,
            values: &["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"],
            normal: &[0.25, 0.25, 0.25, 0.25, 0.001],
            anomaly: &[0.1, 0.1, 0.1, 0.1, 2.0],
        },
        Seed {
            field: MonitoredField::HttpSourceName,
            values: &["ALB", "APIGW", "APPSYNC", "CF", "-"],
            normal: &[0.25, 0.25, 0.25, 0.25, 0.001],
            anomaly: &[0.1, 0.1, 0.1, 0.1, 2.0],
        },
        Seed {
            field: MonitoredField::HttpStatus,
            values: &["200", "202", "307", "308", "403", "404", "502", "504"],
            normal: &[0.2, 0.2, 0.2, 0.2, 0.001, 0.001, 0.001, 0.001],
            anomaly: &[0.05, 0.05, 0.05, 0.05, 2.0, 2.0, 2.0, 2.0],
        },
        Seed {
            field: MonitoredField::Country,
            values: &["US", "UK", "IN", "XX", "YY", "ZZ", "WW"],
            normal: &[0.33, 0.33, 0.33, 0.001, 0.001, 0.001, 0.001],
            anomaly: &[0.1, 0.05, 0.05, 2.0, 2.0, 2.0, 2.0],
        },
        Seed {
            field: MonitoredField::HttpMethod,
            values: &["GET", "HEAD", "POST", "DELETE"],
            normal: &[0.33, 0.33, 0.33, 0.001],
            anomaly: &[0.15, 0.15, 0.15, 2.0],
        },
    ];

    impl Seed {
        fn probabilities(&self, mode: Mode) -> Vec<f64> {
            let weights = match mode {
                Mode::Normal => self.normal,
                Mode::Anomaly => self.anomaly,
            };
            let total: f64 = weights.iter().sum();
            weights.iter().map(|w| w / total).collect()
        }

        /// Whether `counts` fit the weights of `mode`; also returns the statistic and the
        /// critical value for the failure message.
        fn fits(&self, counts: &[u64], mode: Mode) -> (bool, f64, f64) {
            let statistic = chi_square(counts, &self.probabilities(mode));
            let critical = critical_value(self.values.len() - 1);
            (statistic < critical, statistic, critical)
        }
    }

    /// Upper 0.1% points of the chi-square distribution, by degrees of freedom.
    fn critical_value(degrees_of_freedom: usize) -> f64 {
        match degrees_of_freedom {
            3 => 16.266,
            4 => 18.467,
            6 => 22.458,
            7 => 24.322,
            other => panic!("no critical value tabulated for {other} degrees of freedom"),
        }
    }

    /// Pearson's statistic of `counts` against `probabilities`.
    fn chi_square(counts: &[u64], probabilities: &[f64]) -> f64 {
        let n = counts.iter().sum::<u64>() as f64;
        counts
            .iter()
            .zip(probabilities)
            .map(|(&observed, &p)| {
                let expected = n * p;
                assert!(
                    expected >= 5.0,
                    "expected count {expected} < 5: merge cells"
                );
                (observed as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    /// Counts of each field's values (in the seed's order) over `SAMPLE` records.
    fn tally(anomaly: Option<MonitoredField>) -> Vec<Vec<u64>> {
        let mut generator = generator(SEED, "stats");
        let mut counts: Vec<Vec<u64>> =
            SEED_MODEL.iter().map(|s| vec![0; s.values.len()]).collect();
        for i in 0..SAMPLE {
            let log = generator.next(T0 + i as i64, anomaly);
            for (seed, counts) in SEED_MODEL.iter().zip(&mut counts) {
                let v = value(&log, seed.field);
                let index = seed.values.iter().position(|x| *x == v);
                let index = index.unwrap_or_else(|| panic!("{}: unexpected value {v}", seed.field));
                counts[index] += 1;
            }
        }
        counts
    }

    #[test]
    fn the_model_tables_are_the_seed_facts() {
        for (seed, spec) in SEED_MODEL.iter().zip(model::SPECS) {
            assert_eq!(spec.field, seed.field);
            assert_eq!(spec.values, seed.values, "{}", seed.field);
            assert_eq!(spec.normal_weights, seed.normal, "{}", seed.field);
            assert_eq!(spec.anomaly_weights, seed.anomaly, "{}", seed.field);
        }
    }

    #[test]
    fn normal_mode_matches_the_seed_weights() {
        let counts = tally(None);
        for (seed, counts) in SEED_MODEL.iter().zip(&counts) {
            let (ok, statistic, critical) = seed.fits(counts, Mode::Normal);
            assert!(
                ok,
                "{}: chi² {statistic:.2} ≥ {critical} for {counts:?}",
                seed.field
            );
        }
    }

    #[test]
    fn anomaly_mode_moves_only_the_targeted_field() {
        for target in MonitoredField::ALL {
            let counts = tally(Some(target));
            for (seed, counts) in SEED_MODEL.iter().zip(&counts) {
                let (normal, statistic, critical) = seed.fits(counts, Mode::Normal);
                if seed.field == target {
                    assert!(
                        !normal,
                        "{target}: still normal (chi² {statistic:.2}) {counts:?}"
                    );
                    let (anomalous, statistic, critical) = seed.fits(counts, Mode::Anomaly);
                    assert!(
                        anomalous,
                        "{target}: chi² {statistic:.2} ≥ {critical} against anomaly weights \
                         for {counts:?}"
                    );
                } else {
                    assert!(
                        normal,
                        "{target} mode moved {}: chi² {statistic:.2} ≥ {critical} for {counts:?}",
                        seed.field
                    );
                }
            }
        }
    }

    #[test]
    fn the_test_statistic_rejects_slightly_wrong_weights() {
        // The machinery can fail: a one-point shift between two country weights
        // (0.34/0.33/0.32 instead of 0.33 each) is rejected.
        let country = &SEED_MODEL[3];
        let counts = &tally(None)[3];
        let shifted = Seed {
            normal: &[0.34, 0.33, 0.32, 0.001, 0.001, 0.001, 0.001],
            ..*country
        };
        let (ok, statistic, _) = shifted.fits(counts, Mode::Normal);
        assert!(!ok, "{statistic}");
    }

    // ---- Records ----------------------------------------------------------------------------

    #[test]
    fn records_have_the_seed_shape() {
        let mut generator = generator(7, "producer-0");
        let mut clients = HashSet::new();
        for i in 0..5_000 {
            let log = generator.next(T0 + i, None);
            assert_eq!(log.timestamp, T0 + i);
            assert_eq!(log.format_version, 1);
            assert_eq!(log.http_source_id, log.http_source_name.to_lowercase());
            let request = &log.http_request;
            let names: Vec<&str> = request.headers.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["Host", "User-Agent", "Accept"]);
            assert!(request.uri.starts_with('/'));
            assert!(!request.args.starts_with('?'));
            assert!(["HTTP/1.1", "HTTP/2.0"].contains(&request.http_version.as_str()));
            let ip: Ipv4Addr = request.client_ip.parse().expect("an IPv4 address");
            assert!(looks_public(u32::from(ip)), "{ip}");
            clients.insert(request.client_ip.clone());
        }
        assert!(
            clients.len() > 150 && clients.len() <= CLIENT_POOL_SIZE,
            "{}",
            clients.len()
        );
    }

    #[test]
    fn same_seed_same_records_and_different_seeds_differ() {
        let a = json(&mut generator(42, "producer-0"), 3_000, None);
        let b = json(&mut generator(42, "producer-0"), 3_000, None);
        assert_eq!(a, b);
        let c = json(&mut generator(43, "producer-0"), 3_000, None);
        assert_ne!(a, c);
        let anomalous_a = json(
            &mut generator(42, "producer-0"),
            3_000,
            Some(MonitoredField::Action),
        );
        let anomalous_b = json(
            &mut generator(42, "producer-0"),
            3_000,
            Some(MonitoredField::Action),
        );
        assert_eq!(anomalous_a, anomalous_b);
    }

    #[test]
    fn replicas_with_the_same_seed_draw_different_records() {
        let mut a = generator(42, "producer-0");
        let mut b = generator(42, "producer-1");
        let same = (0..1_000)
            .filter(|i| {
                let (x, y) = (a.next(T0 + i, None), b.next(T0 + i, None));
                x.http_request.client_ip == y.http_request.client_ip && x.action == y.action
            })
            .count();
        assert!(same < 200, "{same} of 1000 records alike");
    }

    #[test]
    fn anomaly_mode_changes_nothing_but_the_target() {
        for target in MonitoredField::ALL {
            let mut normal = generator(9, "producer-0");
            let mut anomalous = generator(9, "producer-0");
            let mut changed = 0;
            for i in 0..2_000 {
                let mut n = normal.next(T0 + i, None);
                let a = anomalous.next(T0 + i, Some(target));
                if value(&n, target) != value(&a, target) {
                    changed += 1;
                }
                // Put the anomalous value into the normal record: nothing else may differ.
                let v = value(&a, target).to_owned();
                match target {
                    MonitoredField::Action => n.action = v,
                    MonitoredField::HttpSourceName => {
                        n.http_source_id = v.to_lowercase();
                        n.http_source_name = v;
                    }
                    MonitoredField::HttpStatus => n.http_status = v,
                    MonitoredField::Country => n.http_request.country = v,
                    MonitoredField::HttpMethod => n.http_request.http_method = v,
                }
                assert_eq!(n, a, "{target}: record {i} differs beyond the target");
            }
            assert!(
                changed > 1_000,
                "{target}: only {changed} of 2000 values changed"
            );
        }
    }

    #[test]
    fn an_entity_changes_only_the_anomalous_records_client_and_target() {
        // Every 10th record is an entity phase's anomalous record: its client is replaced and
        // its country drawn with the anomaly's weights; every other value of every record, and
        // every value of the others, is the plain normal generator's.
        let entity: Ipv4Addr = "198.51.100.7".parse().expect("an address");
        let mut normal = generator(9, "producer-0");
        let mut from_entity = generator(9, "producer-0");
        let (mut moved, mut changed) = (0, 0);
        for i in 0..2_000 {
            let anomalous = i % 10 == 9;
            let mut n = normal.next(T0 + i, None);
            let a = if anomalous {
                from_entity.next_from(T0 + i, Some(MonitoredField::Country), Some(entity))
            } else {
                from_entity.next_from(T0 + i, None, None)
            };
            if anomalous {
                assert_eq!(a.http_request.client_ip, "198.51.100.7", "record {i}");
                moved += usize::from(n.http_request.client_ip != a.http_request.client_ip);
                changed += usize::from(n.http_request.country != a.http_request.country);
                n.http_request.client_ip = a.http_request.client_ip.clone();
                n.http_request.country = a.http_request.country.clone();
            }
            assert_eq!(n, a, "record {i} differs beyond the client and the target");
        }
        assert_eq!(moved, 200);
        assert!(changed > 100, "only {changed} of 200 countries changed");
    }

    #[test]
    fn a_larger_pool_keeps_the_default_pools_records_apart_from_the_client() {
        // The default pool is `with_clients(.., 300)` exactly; a pool of 10,000 draws its
        // clients from 10,000 addresses and every other value as before.
        let a = json(&mut generator(42, "producer-0"), 500, None);
        let b = json(
            &mut Generator::with_clients(42, "producer-0", "run-1", CLIENT_POOL_SIZE)
                .expect("valid"),
            500,
            None,
        );
        assert_eq!(a, b);
        let mut small = generator(42, "producer-0");
        let mut large = Generator::with_clients(42, "producer-0", "run-1", 10_000).expect("valid");
        let mut clients = HashSet::new();
        for i in 0..20_000 {
            let (mut s, l) = (small.next(T0 + i, None), large.next(T0 + i, None));
            clients.insert(l.http_request.client_ip.clone());
            s.http_request.client_ip = l.http_request.client_ip.clone();
            assert_eq!(s, l, "record {i}");
        }
        assert!(clients.len() > 3_000, "{} distinct clients", clients.len());
    }

    #[test]
    fn request_ids_never_collide_across_instances() {
        let mut seen = HashSet::new();
        for instance in ["producer-0", "producer-1", "producer-10"] {
            let mut generator = generator(42, instance);
            for i in 0..30_000 {
                let id = generator.next(T0 + i, None).http_request.request_id;
                assert!(id.starts_with(&format!("run-1/{instance}/")), "{id}");
                assert!(seen.insert(id.clone()), "duplicate {id}");
            }
        }
        assert_eq!(seen.len(), 90_000);
    }

    #[test]
    fn request_ids_split_back_into_run_instance_and_counter() {
        let mut generator = Generator::new(1, "pod-a", "2024-01-01T00:00:00Z/x").expect("valid");
        generator.next(T0, None);
        let id = generator.next(T0, None).http_request.request_id;
        let (rest, counter) = id.rsplit_once('/').expect("has a counter");
        let (run, instance) = rest.rsplit_once('/').expect("has an instance");
        assert_eq!(
            (run, instance, counter),
            ("2024-01-01T00:00:00Z/x", "pod-a", "0000000000000001")
        );
        assert_eq!(generator.generated(), 2);
    }

    #[test]
    fn instance_ids_that_would_make_ids_ambiguous_are_rejected() {
        for bad in ["", "a/b"] {
            let error = Generator::new(1, bad, "run").expect_err("rejected");
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
    }
}
