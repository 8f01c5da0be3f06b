//! The client addresses the seed's generator draws from: a fixed pool of public-looking IPv4
//! addresses per seed, with Zipf popularity (a few clients send much of the traffic, as in real
//! logs), and the quiet client an entity phase picks from it.
//!
//! A leaf shared by [`crate::generate`] (which draws a client per record) and
//! [`crate::schedule`] (which resolves `from: client` to an address, for the events and the
//! label), so neither imports the other for it.
//!
//! Pools of one seed are prefixes of each other: addresses are drawn in the same order whatever
//! the size, so the default pool of [`CLIENT_POOL_SIZE`] is the first 300 of a pool of 10,000,
//! and a scenario without `clients:` makes byte for byte the records it made before pools could
//! grow. Building a pool costs one draw and one hash-set probe per address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::Rng;

use crate::rng::{Stream, seeded_rng};

/// How many distinct client addresses a generator draws from by default (a scenario's
/// `clients:` changes it).
pub const CLIENT_POOL_SIZE: usize = 300;

/// The largest client pool a scenario may ask for: a per-entity detector's test needs thousands
/// of entities; a pool this size costs a few megabytes and a millisecond or so to build.
pub const MAX_CLIENTS: usize = 100_000;

/// Zipf exponent of client popularity: a few clients send much of the traffic, as in real logs.
pub(crate) const CLIENT_ZIPF_EXPONENT: f64 = 0.8;

/// `size` distinct public-looking IPv4 addresses drawn from `seed`, most popular first.
/// Private, loopback, link-local, shared, multicast, reserved and documentation ranges are
/// skipped, and so are `.0` and `.255` host parts, so the pool looks like real clients. A pool
/// is a prefix of every larger pool of the same seed.
pub(crate) fn client_pool(seed: u64, size: usize) -> Vec<Ipv4Addr> {
    let mut rng = seeded_rng(seed, Stream::ClientPool, "");
    let mut addresses: Vec<Ipv4Addr> = Vec::with_capacity(size);
    let mut seen: HashSet<u32> = HashSet::with_capacity(size);
    while addresses.len() < size {
        let candidate: u32 = rng.random();
        if looks_public(candidate) && seen.insert(candidate) {
            addresses.push(Ipv4Addr::from(candidate));
        }
    }
    addresses
}

/// The Zipf popularity weights of a pool of `size`, most popular first.
pub(crate) fn popularity(size: usize) -> Vec<f64> {
    (1..=size)
        .map(|rank| 1.0 / (rank as f64).powf(CLIENT_ZIPF_EXPONENT))
        .collect()
}

/// The quiet client an entity phase (`from: client`) picks for phase `phase`: a member of the
/// pool's less popular half, drawn from `seed` and the phase's index alone, so replicas sharing
/// a seed pick the same client, and two entity phases of one scenario usually pick two.
/// `None` only for an empty pool.
pub(crate) fn quiet_client(pool: &[Ipv4Addr], seed: u64, phase: usize) -> Option<Ipv4Addr> {
    if pool.is_empty() {
        return None;
    }
    let mut rng = seeded_rng(seed, Stream::Entity, &format!("phase-{phase}"));
    let rank = rng.random_range(pool.len() / 2..pool.len());
    pool.get(rank).copied()
}

/// Whether `address` is a plausible public unicast client address.
pub(crate) fn looks_public(address: u32) -> bool {
    let [a, b, c, d] = address.to_be_bytes();
    let special = a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113);
    !special && d != 0 && d != 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_pool_is_distinct_public_and_seeded() {
        let pool = client_pool(5, CLIENT_POOL_SIZE);
        assert_eq!(pool.len(), CLIENT_POOL_SIZE);
        assert_eq!(pool.iter().collect::<HashSet<_>>().len(), CLIENT_POOL_SIZE);
        assert_eq!(pool, client_pool(5, CLIENT_POOL_SIZE));
        assert_ne!(pool, client_pool(6, CLIENT_POOL_SIZE));
        for (address, public) in [
            ("8.8.4.4", true),
            ("81.2.69.142", true),
            ("10.1.2.3", false),
            ("127.0.0.1", false),
            ("172.20.0.5", false),
            ("192.168.1.10", false),
            ("100.64.0.1", false),
            ("169.254.1.1", false),
            ("203.0.113.7", false),
            ("224.0.0.1", false),
            ("93.184.216.0", false),
        ] {
            let ip: Ipv4Addr = address.parse().expect("an address");
            assert_eq!(looks_public(u32::from(ip)), public, "{address}");
        }
    }

    #[test]
    fn pools_of_any_size_are_distinct_public_and_prefixes_of_each_other() {
        let large = client_pool(5, 10_000);
        assert_eq!(large.len(), 10_000);
        assert_eq!(large.iter().collect::<HashSet<_>>().len(), 10_000);
        assert!(large.iter().all(|ip| looks_public(u32::from(*ip))));
        for size in [0, 1, 2, CLIENT_POOL_SIZE, 9_999] {
            assert_eq!(client_pool(5, size), large[..size], "{size}");
        }
        assert_eq!(client_pool(5, MAX_CLIENTS).len(), MAX_CLIENTS);
    }

    #[test]
    fn popularity_is_zipf_most_popular_first() {
        assert_eq!(popularity(0), Vec::<f64>::new());
        let weights = popularity(10_000);
        assert_eq!(weights[0], 1.0);
        assert!((weights[1] - 2_f64.powf(-0.8)).abs() < 1e-15);
        assert!(weights.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn a_quiet_client_is_stable_in_the_pool_and_not_popular() {
        for (seed, size) in [
            (5, 1),
            (5, 2),
            (5, CLIENT_POOL_SIZE),
            (42, 10_000),
            (7, 10_000),
        ] {
            let pool = client_pool(seed, size);
            let picked = quiet_client(&pool, seed, 1).expect("a non-empty pool");
            assert_eq!(quiet_client(&pool, seed, 1), Some(picked), "{seed}/{size}");
            let rank = pool
                .iter()
                .position(|ip| *ip == picked)
                .expect("in the pool");
            assert!(rank >= size / 2, "{seed}/{size}: rank {rank}");
        }
        let pool = client_pool(42, 10_000);
        let picks: HashSet<Ipv4Addr> = (0..10)
            .filter_map(|phase| quiet_client(&pool, 42, phase))
            .collect();
        assert!(picks.len() >= 9, "{picks:?}");
        assert_eq!(quiet_client(&[], 42, 0), None);
    }
}
