//! HEC indexer acknowledgements, as a plain type. A request on a channel gets the channel's next
//! `ackId`; since a request is answered only after Kafka acknowledged its records, every id
//! already issued is durable, so `/ack` answers `true` for ids below the channel's next one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// The channels seen, with the next ack id of each; at most `max` channels.
#[derive(Debug)]
pub struct Channels {
    next: Mutex<HashMap<String, u64>>,
    max: usize,
}

/// The channel table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Channels {
    /// Remembers at most `max` channels.
    pub fn new(max: usize) -> Self {
        Self {
            next: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Whether `channel` can take a request (known, or room for a new one).
    pub fn admits(&self, channel: &str) -> bool {
        let next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        next.contains_key(channel) || next.len() < self.max
    }

    /// Issues the next ack id on `channel` (called once its records are durable).
    pub fn issue(&self, channel: &str) -> Result<u64, Full> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if !next.contains_key(channel) && next.len() >= self.max {
            return Err(Full);
        }
        let id = next.entry(channel.to_owned()).or_insert(0);
        let issued = *id;
        *id += 1;
        Ok(issued)
    }

    /// The status of `ids` on `channel`; `None` for a channel never seen.
    pub fn status(&self, channel: &str, ids: &[u64]) -> Option<BTreeMap<String, bool>> {
        let next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let issued = *next.get(channel)?;
        Some(
            ids.iter()
                .map(|id| (id.to_string(), *id < issued))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_per_channel_and_are_acknowledged_once_issued() {
        let channels = Channels::new(2);
        assert_eq!(channels.status("a", &[0]), None);
        assert_eq!(channels.issue("a"), Ok(0));
        assert_eq!(channels.issue("a"), Ok(1));
        assert_eq!(channels.issue("b"), Ok(0));
        assert!(!channels.admits("c"));
        assert_eq!(channels.issue("c"), Err(Full));
        assert!(channels.admits("a"));
        let status = channels.status("a", &[0, 1, 2]).expect("known");
        assert_eq!(
            status,
            BTreeMap::from([("0".into(), true), ("1".into(), true), ("2".into(), false)])
        );
    }
}
