//! The client addresses a generator draws from: a fixed pool of public-looking IPv4 addresses
//! per seed, with Zipf popularity (a few clients send much of the traffic, as in real logs).

use std::net::Ipv4Addr;

use rand::Rng;

use crate::rng::{Stream, seeded_rng};

/// How many distinct client addresses a generator draws from.
pub const CLIENT_POOL_SIZE: usize = 300;

/// Zipf exponent of client popularity: a few clients send much of the traffic, as in real logs.
pub(super) const CLIENT_ZIPF_EXPONENT: f64 = 0.8;

/// [`CLIENT_POOL_SIZE`] distinct public-looking IPv4 addresses drawn from `seed`, most popular
/// first. Private, loopback, link-local, shared, multicast, reserved and documentation ranges
/// are skipped, and so are `.0` and `.255` host parts, so the pool looks like real clients.
pub(super) fn client_pool(seed: u64) -> Vec<String> {
    let mut rng = seeded_rng(seed, Stream::ClientPool, "");
    let mut addresses: Vec<u32> = Vec::with_capacity(CLIENT_POOL_SIZE);
    while addresses.len() < CLIENT_POOL_SIZE {
        let candidate: u32 = rng.random();
        if looks_public(candidate) && !addresses.contains(&candidate) {
            addresses.push(candidate);
        }
    }
    addresses
        .into_iter()
        .map(|address| Ipv4Addr::from(address).to_string())
        .collect()
}

/// Whether `address` is a plausible public unicast client address.
pub(super) fn looks_public(address: u32) -> bool {
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
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_client_pool_is_distinct_public_and_seeded() {
        let pool = client_pool(5);
        assert_eq!(pool.len(), CLIENT_POOL_SIZE);
        assert_eq!(pool.iter().collect::<HashSet<_>>().len(), CLIENT_POOL_SIZE);
        assert_eq!(pool, client_pool(5));
        assert_ne!(pool, client_pool(6));
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
}
