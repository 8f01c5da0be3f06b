//! Pipelined Kafka deliveries that settle in the order they were sent.
//!
//! A stage sends many records before the first acknowledgement comes back (no await per record,
//! no task per record) and learns, oldest first, when each one is durable. Each record carries a
//! tag (the transformer tags an output with its input's partition and offset) and
//! [`Deliveries::settle_next`] hands the tags back in send order, so a stage that stores the
//! tag's offset never moves past a record that is not yet delivered.
//!
//! A failed delivery (the broker unreachable for longer than `message.timeout.ms`) is sent again
//! and stays at the front: nothing behind it settles first, and nothing is dropped. Retrying ends
//! only when the shutdown token is cancelled. The waits follow [`crate::backoff`] (200 ms doubling
//! to 30 s); the count of failures and the instant of the next try are kept in the window, not in
//! the `settle_next` future, so a stage that drops that future in a `select!` and calls it again
//! waits out the same backoff instead of starting a new one.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Retries};

/// Waits before sending a failed delivery again: 200 ms doubling to 30 s (as long as librdkafka's
/// own `message.timeout.ms` already retried, so there is no hurry).
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));

/// A record to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination topic.
    pub topic: String,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Vec<u8>,
    /// Headers, if any.
    pub headers: Option<OwnedHeaders>,
    /// The partition, when the sender picks it (else the key's, or the partitioner's).
    pub partition: Option<i32>,
    /// The record's timestamp (epoch ms), when not the time it is produced.
    pub timestamp: Option<i64>,
}

/// Why a delivery could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The broker refused the record for a reason retrying cannot fix (e.g. too large).
    #[error("producing to `{topic}`: {source}")]
    Refused {
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The shutdown token was cancelled while a failed delivery was being retried.
    #[error("stopped while retrying a failed delivery to `{topic}`")]
    Stopped {
        /// The topic.
        topic: String,
    },
}

/// What happened to a send, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// librdkafka's queue was full; the send waited for an older delivery.
    QueueFull,
    /// A delivery failed and the record was sent again.
    Retried,
}

/// Told of waits and retries, with the reason: how a stage feeds its metrics and readiness.
type EventHook = Box<dyn Fn(Event, &str) + Send + Sync>;

struct Pending<T> {
    record: Outgoing,
    tag: T,
    delivery: DeliveryFuture,
    /// Set when the delivery failed and no new one is queued yet: when to send the record
    /// again. `delivery` is spent and must be replaced before it is awaited again; the instant
    /// is kept here because `settle_next` may be dropped mid-wait (e.g. in a `select!`) and
    /// called again, and must then wait out the same backoff, not start a new one.
    retry_at: Option<tokio::time::Instant>,
}

/// Records in flight, oldest first.
pub struct Deliveries<
    T,
    C: rdkafka::ClientContext + 'static = rdkafka::client::DefaultClientContext,
> {
    producer: FutureProducer<C>,
    in_flight: VecDeque<Pending<T>>,
    max_in_flight: usize,
    shutdown: CancellationToken,
    on_event: EventHook,
    /// Failures of the oldest delivery in a row: how long to wait before sending it again.
    /// Reset when it settles.
    retries: Retries,
}

impl<T, C: rdkafka::ClientContext + 'static> std::fmt::Debug for Deliveries<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("in_flight", &self.in_flight.len())
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl<T, C: rdkafka::ClientContext + 'static> Deliveries<T, C> {
    /// Deliveries through `producer`, at most `max_in_flight` at once; retries end when
    /// `shutdown` is cancelled. `on_event(event, reason)` is told of waits and retries (for
    /// metrics and readiness).
    pub fn new(
        producer: FutureProducer<C>,
        max_in_flight: usize,
        shutdown: CancellationToken,
        on_event: impl Fn(Event, &str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            producer,
            in_flight: VecDeque::new(),
            max_in_flight: max_in_flight.max(1),
            shutdown,
            on_event: Box::new(on_event),
            retries: Retries::new(RETRY),
        }
    }

    /// The producer, e.g. for transactions.
    pub fn producer(&self) -> &FutureProducer<C> {
        &self.producer
    }

    /// Records sent and not yet settled.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether the window is full: settle before sending more.
    pub fn is_full(&self) -> bool {
        self.in_flight.len() >= self.max_in_flight
    }

    /// Whether the oldest delivery failed and is being sent again: a stage should stop taking
    /// new input until it settles.
    pub fn is_retrying(&self) -> bool {
        self.in_flight
            .front()
            .is_some_and(|pending| pending.retry_at.is_some())
    }

    /// Queues `record`; when librdkafka's queue is full, settles the oldest deliveries first and
    /// returns their tags (the caller must handle them as it does [`Self::settle_next`]'s).
    pub async fn send(&mut self, record: Outgoing, tag: T) -> Result<Vec<T>, DeliveryError> {
        let mut settled = Vec::new();
        loop {
            match enqueue(&self.producer, &record) {
                Ok(delivery) => {
                    self.in_flight.push_back(Pending {
                        record,
                        tag,
                        delivery,
                        retry_at: None,
                    });
                    return Ok(settled);
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    (self.on_event)(Event::QueueFull, "local queue full");
                    match self.settle_next().await? {
                        Some(tag) => settled.push(tag),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err(source) => {
                    return Err(DeliveryError::Refused {
                        topic: record.topic,
                        source,
                    });
                }
            }
        }
    }

    /// Waits for the oldest delivery and returns its tag; `None` when nothing is in flight. A
    /// failed delivery is sent again (with backoff) and waited for before anything behind it.
    /// Cancel-safe: dropped and called again, it resumes where it was.
    pub async fn settle_next(&mut self) -> Result<Option<T>, DeliveryError> {
        loop {
            let Some(front) = self.in_flight.front_mut() else {
                return Ok(None);
            };
            let retry_at = match front.retry_at {
                Some(at) => at,
                None => {
                    let reason = match (&mut front.delivery).await {
                        Ok(Ok(_)) => {
                            self.retries.reset();
                            return Ok(self.in_flight.pop_front().map(|pending| pending.tag));
                        }
                        Ok(Err((error, _))) => error.to_string(),
                        Err(_cancelled) => "delivery cancelled".to_owned(),
                    };
                    let at = tokio::time::Instant::now() + self.retries.next_delay();
                    front.retry_at = Some(at);
                    (self.on_event)(Event::Retried, &reason);
                    tracing::warn!(%reason, topic = %front.record.topic, "Delivery failed; sending again.");
                    at
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(retry_at) => {}
                () = self.shutdown.cancelled() => {
                    return Err(DeliveryError::Stopped { topic: front.record.topic.clone() });
                }
            }
            match enqueue(&self.producer, &front.record) {
                Ok(delivery) => {
                    front.delivery = delivery;
                    front.retry_at = None;
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    front.retry_at = Some(tokio::time::Instant::now() + self.retries.next_delay());
                }
                Err(source) => {
                    return Err(DeliveryError::Refused {
                        topic: front.record.topic.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Settles everything in flight, calling `on_settled` with each tag in order.
    pub async fn drain(&mut self, mut on_settled: impl FnMut(T)) -> Result<(), DeliveryError> {
        while let Some(tag) = self.settle_next().await? {
            on_settled(tag);
        }
        Ok(())
    }
}

fn enqueue<C: rdkafka::ClientContext + 'static>(
    producer: &FutureProducer<C>,
    record: &Outgoing,
) -> Result<DeliveryFuture, KafkaError> {
    let mut future = FutureRecord::<[u8], [u8]>::to(&record.topic).payload(&record.payload);
    if let Some(key) = &record.key {
        future = future.key(key);
    }
    if let Some(headers) = &record.headers {
        future = future.headers(headers.clone());
    }
    if let Some(partition) = record.partition {
        future = future.partition(partition);
    }
    if let Some(timestamp) = record.timestamp {
        future = future.timestamp(timestamp);
    }
    producer.send_result(future).map_err(|(err, _)| err)
}
