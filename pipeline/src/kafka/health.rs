//! The `kafka` readiness check, as a service's Kafka clients see it.
//!
//! A stage is ready when it can do its job: its consumer has joined its group (with partitions or
//! without: an idle topic, or more replicas than partitions, is no reason to be unready) and its
//! deliveries are not failing. So the check is marked ready when the group consumer is assigned
//! (the rebalance callback) or its statistics say it has joined (every
//! [`STATISTICS_INTERVAL`], which is how readiness comes back after an outage on an idle topic),
//! and after every successful delivery or consumed record; not ready when librdkafka reports
//! every broker down, when the group has had no coordinator for [`NO_COORDINATOR_GRACE`], or
//! while a delivery is being retried. Joining does not clear a failing delivery: only a
//! delivery that succeeds does, so the two never undo each other.
//!
//! The same statistics feed the stage's consumer lag gauge when it has one
//! ([`HealthContext::with_lag`], see [`super::lag`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde_json::Value;

use super::lag::ConsumerLag;
use crate::telemetry::Health;

/// The readiness check the Kafka clients of a service maintain.
pub const KAFKA_CHECK: &str = "kafka";

/// How often a group consumer's statistics are read to follow its group.
pub const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// How long a group may be without a coordinator (a broker restart, the coordinator moving)
/// before the check fails.
pub const NO_COORDINATOR_GRACE: Duration = Duration::from_secs(10);

/// What a group consumer's statistics say about its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupState {
    /// It has a coordinator and a settled assignment (possibly empty).
    Joined,
    /// It is joining or rebalancing: no change.
    Joining,
    /// It has had no coordinator for longer than the grace: why.
    NoCoordinator(String),
}

/// Reads the group's state from librdkafka's statistics JSON (`cgrp.state`, `cgrp.join_state`,
/// `cgrp.stateage` in milliseconds); `None` for a client that is not a group consumer.
pub fn group_state(statistics: &Value) -> Option<GroupState> {
    let group = statistics.get("cgrp")?;
    let state = group["state"].as_str()?;
    let join_state = group["join_state"].as_str().unwrap_or("");
    let age = Duration::from_millis(group["stateage"].as_u64().unwrap_or(0));
    Some(match (state, join_state) {
        ("up", "steady") => GroupState::Joined,
        ("up", _) => GroupState::Joining,
        (state, _) if age >= NO_COORDINATOR_GRACE => GroupState::NoCoordinator(format!(
            "the consumer group has had no coordinator for {}s (state {state})",
            age.as_secs()
        )),
        _ => GroupState::Joining,
    })
}

/// A client context that keeps the `kafka` readiness check (see the module docs), and logs
/// client errors. One context is shared by a stage's consumer and producer.
#[derive(Debug, Clone)]
pub struct HealthContext {
    health: Arc<Health>,
    /// Set while a delivery is being retried, cleared by the next success: joining the group
    /// must not mark the stage ready while its outputs fail.
    delivery_failing: Arc<AtomicBool>,
    /// How many times the group consumer lost partitions (revoked, or the assignment lost):
    /// a transaction that saw it change must not commit (see [`Self::revocations`]).
    revocations: Arc<AtomicU64>,
    /// The consumer lag gauge the group consumer's statistics feed, if the stage shows it.
    lag: Option<ConsumerLag>,
}

impl HealthContext {
    /// A context reporting to `health`; registers the check as not ready yet ("connecting").
    pub fn new(health: Arc<Health>) -> Self {
        health.register(KAFKA_CHECK, "connecting");
        Self {
            health,
            delivery_failing: Arc::new(AtomicBool::new(false)),
            revocations: Arc::new(AtomicU64::new(0)),
            lag: None,
        }
    }

    /// Feeds `lag` from the group consumer's statistics (which [`Self::follow_group`] turns
    /// on) and removes a partition's series when it is revoked.
    #[must_use]
    pub fn with_lag(mut self, lag: ConsumerLag) -> Self {
        self.lag = Some(lag);
        self
    }

    /// How many times the group consumer has lost partitions so far. The callback runs inside
    /// the consumer's poll, so a stage that reads this before a transaction and again before
    /// committing it knows whether partitions it consumed were revoked in between.
    pub fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// Sets what a group consumer's configuration needs for this context to follow its group:
    /// statistics every [`STATISTICS_INTERVAL`].
    pub fn follow_group(config: &mut ClientConfig) {
        config.set(
            "statistics.interval.ms",
            STATISTICS_INTERVAL.as_millis().to_string(),
        );
    }

    /// Marks Kafka reachable (after a delivery or a poll succeeded).
    pub fn reachable(&self) {
        self.delivery_failing.store(false, Ordering::Relaxed);
        self.health.ready(KAFKA_CHECK);
    }

    /// Marks the check failing while a delivery is retried, with librdkafka's reason.
    pub fn delivery_failed(&self, reason: &str) {
        self.delivery_failing.store(true, Ordering::Relaxed);
        self.health.not_ready(KAFKA_CHECK, reason);
    }

    /// The group consumer has joined: ready, unless a delivery is failing.
    fn joined(&self) {
        if !self.delivery_failing.load(Ordering::Relaxed) {
            self.health.ready(KAFKA_CHECK);
        }
    }
}

impl rdkafka::ClientContext for HealthContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.not_ready(KAFKA_CHECK, reason);
        }
        tracing::warn!(%error, reason, "Kafka client error; librdkafka retries.");
    }

    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(statistics) = serde_json::from_slice::<Value>(statistics) else {
            return;
        };
        match group_state(&statistics) {
            Some(GroupState::Joined) => self.joined(),
            Some(GroupState::NoCoordinator(reason)) => {
                self.health.not_ready(KAFKA_CHECK, &reason);
            }
            Some(GroupState::Joining) | None => {}
        }
        if let Some(lag) = &self.lag {
            lag.observe(&statistics);
        }
    }
}

impl ConsumerContext for HealthContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let lost = match rebalance {
            Rebalance::Revoke(partitions) => {
                if let Some(lag) = &self.lag {
                    for element in partitions.elements() {
                        lag.forget(element.topic(), element.partition());
                    }
                }
                partitions.count() > 0
            }
            Rebalance::Error(_) => {
                if let Some(lag) = &self.lag {
                    lag.clear();
                }
                true
            }
            Rebalance::Assign(_) => false,
        };
        if lost {
            self.revocations.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.joined();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_group_is_joined_when_steady_and_lost_only_after_the_grace() {
        let stats = |state: &str, join: &str, age: u64| json!({"name": "c", "cgrp": {"state": state, "join_state": join, "stateage": age}});
        let cases = [
            (stats("up", "steady", 0), Some(GroupState::Joined)),
            (stats("up", "wait-join", 60_000), Some(GroupState::Joining)),
            (stats("query-coord", "init", 200), Some(GroupState::Joining)),
            (
                stats("wait-broker-transport", "steady", 12_345),
                Some(GroupState::NoCoordinator(
                    "the consumer group has had no coordinator for 12s (state \
                     wait-broker-transport)"
                        .to_owned(),
                )),
            ),
            (json!({"name": "producer", "brokers": {}}), None),
        ];
        for (statistics, expected) in cases {
            assert_eq!(group_state(&statistics), expected, "{statistics}");
        }
    }

    #[test]
    fn joining_does_not_clear_a_failing_delivery() {
        let health = Arc::new(Health::default());
        let context = HealthContext::new(health.clone());
        assert!(!health.is_ready(), "not ready before joining");
        context.joined();
        assert!(health.is_ready());
        context.delivery_failed("Local: Message timed out");
        context.joined();
        let (ready, report) = health.report();
        assert!(!ready);
        assert_eq!(report, "kafka: Local: Message timed out\n");
        context.reachable();
        context.joined();
        assert!(health.is_ready());
    }
}
