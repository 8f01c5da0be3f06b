//! Sending outputs to Kafka through a [`Window`]: pipelined, settled in send order, a failed
//! delivery sent again and kept first, as `pipeline::delivery::Deliveries` does for the other
//! stages, but from buffers the window reuses and handed to rdkafka as borrowed slices (which
//! librdkafka copies into its own queue), so the transformer allocates nothing per record for
//! its outputs. The tag of a settled output is what lets the stage store its input's offset.
//!
//! An output Kafka refuses for good (see `refusal::is_permanent`) is not retried: it becomes a
//! dead letter in its place (`oversized` when too large, else `produce_refused`), so the
//! partition moves on. A dead letter refused as too large is cut down once; a dead letter still
//! refused stops the stage with the error (there is nowhere left to put it).

use std::time::Duration;

use pipeline::delivery::{DeliveryError, Event};
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use prometheus::IntCounterVec;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use super::STAGE;
use super::refusal::{is_permanent, truncate_dead_letter, write_dead_letter};
use super::window::{Destination, Output, Window};

/// Told of waits and retries, with the reason: how the stage feeds its metrics and readiness.
type EventHook = Box<dyn Fn(Event, &str) + Send + Sync>;

/// The outputs in flight and the producer that sends them.
pub(crate) struct Outputs<T, C: rdkafka::ClientContext + 'static> {
    producer: FutureProducer<C>,
    window: Window<T, DeliveryFuture>,
    /// The topic names, by [`Destination`]: enriched, then dead-letter.
    topics: [String; 2],
    /// Ends retrying a failed delivery.
    shutdown: CancellationToken,
    on_event: EventHook,
    /// Turns refused outputs into dead letters.
    refusals: Refusals,
}

/// What turning a refused output into a dead letter needs.
#[derive(Debug)]
pub(crate) struct Refusals {
    /// The input topic, named by the dead letter.
    pub(crate) input: String,
    /// The largest record the stage produces (`transformer.max_record_bytes`).
    pub(crate) limit: usize,
    /// Dead letters by reason.
    pub(crate) dead_letters: IntCounterVec,
    /// Exactly-once: a refusal dooms the open transaction, so the output is not redirected in
    /// it; the refusal is remembered in `refused` for the retry, and the send fails.
    pub(crate) transactional: bool,
    /// The inputs (partition, offset) whose outputs were refused in a transaction, and why.
    pub(crate) refused: Vec<((i32, i64), DeadLetter)>,
}

/// What to do with an output Kafka did not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A passing error: send it again after a backoff.
    Retry,
    /// It is now a dead letter (or a dead letter cut down): send it at once.
    Redirected,
    /// Nothing more can be done with it here: fail the send (exactly-once: abort the
    /// transaction; the refusal is remembered for the retry).
    GiveUp,
}

impl Refusals {
    /// Judges `error` for `output`: a passing one is retried; a permanent one makes `output` its
    /// dead letter (or cuts a dead letter down), except in a transaction, which it dooms.
    fn redirect(
        &mut self,
        topics: &[String; 2],
        output: &mut Output,
        error: &KafkaError,
    ) -> Refusal {
        let Some(code) = error
            .rdkafka_error_code()
            .filter(|code| is_permanent(*code))
        else {
            return Refusal::Retry;
        };
        let topic = topic(topics, output.destination).to_owned();
        let dead = match output.destination {
            Destination::Enriched => {
                let (partition, offset) = output.source;
                let dead = DeadLetter {
                    reason: if code == rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge {
                        DeadLetterReason::Oversized
                    } else {
                        DeadLetterReason::ProduceRefused
                    },
                    detail: format!("producing to `{topic}` was refused: {error}"),
                    stage: STAGE.to_owned(),
                    source: SourcePosition {
                        topic: self.input.clone(),
                        partition,
                        offset,
                    },
                };
                if self.transactional {
                    tracing::warn!(%error, %topic, partition, offset, "Kafka refused an output for good; the transaction is aborted and the input will be a dead letter.");
                    self.refused.push(((partition, offset), dead));
                    return Refusal::GiveUp;
                }
                let enriched = std::mem::take(&mut output.payload);
                write_dead_letter(output, &enriched, &dead, self.limit);
                dead
            }
            Destination::DeadLetter => {
                let Some(dead) = output.headers.as_ref().and_then(DeadLetter::from_headers) else {
                    return Refusal::GiveUp;
                };
                if code != rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge
                    || !truncate_dead_letter(output, &dead)
                {
                    return Refusal::GiveUp;
                }
                dead
            }
        };
        self.dead_letters
            .with_label_values(&[dead.reason.as_str()])
            .inc();
        tracing::warn!(%error, %topic, reason = %dead.reason, partition = dead.source.partition, offset = dead.source.offset, "Kafka refused an output for good; sending a dead letter instead.");
        Refusal::Redirected
    }
}

impl<T, C: rdkafka::ClientContext + 'static> std::fmt::Debug for Outputs<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("in_flight", &self.window.len())
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl<T, C: rdkafka::ClientContext + 'static> Outputs<T, C> {
    /// Outputs to `enriched` and `dead_letter` through `producer`, at most `max_in_flight` at
    /// once; retries end when `shutdown` is cancelled; `on_event(event, reason)` is told of
    /// waits and retries.
    pub(crate) fn new(
        producer: FutureProducer<C>,
        [enriched, dead_letter]: [String; 2],
        max_in_flight: usize,
        shutdown: CancellationToken,
        refusals: Refusals,
        on_event: impl Fn(Event, &str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            producer,
            window: Window::new(max_in_flight),
            topics: [enriched, dead_letter],
            shutdown,
            on_event: Box::new(on_event),
            refusals,
        }
    }

    /// The producer, e.g. for transactions.
    pub(crate) fn producer(&self) -> &FutureProducer<C> {
        &self.producer
    }

    /// After their transaction was aborted (which settles every delivery): forgets the outputs
    /// in flight, and returns the inputs whose outputs Kafka refused for good, which are to be
    /// dead letters when processed again (a refused batch refuses all its records at once).
    pub(crate) async fn aborted(&mut self) -> Vec<((i32, i64), DeadLetter)> {
        while let Some(front) = self.window.front_mut() {
            if let Some(delivery) = front.delivery.take()
                && let Ok(Err((error, _))) = delivery.await
            {
                self.refusals
                    .redirect(&self.topics, &mut front.output, &error);
            }
            self.window.settle_front();
        }
        std::mem::take(&mut self.refusals.refused)
    }

    /// An output to write the next record into (see [`Window::take`]).
    pub(crate) fn take(&mut self) -> Output {
        self.window.take()
    }

    /// Outputs sent and not yet settled.
    pub(crate) fn len(&self) -> usize {
        self.window.len()
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// Whether the window is full: settle before sending more.
    pub(crate) fn is_full(&self) -> bool {
        self.window.is_full()
    }

    /// Whether the oldest output failed and is being sent again.
    pub(crate) fn is_retrying(&self) -> bool {
        self.window.is_retrying()
    }

    /// Sends `output`; when librdkafka's queue is full, settles the oldest outputs first and
    /// returns their tags (the caller handles them as it does [`Self::settle_next`]'s).
    pub(crate) async fn send(
        &mut self,
        mut output: Output,
        tag: T,
    ) -> Result<Vec<T>, DeliveryError> {
        let mut settled = Vec::new();
        loop {
            match enqueue(&self.producer, &self.topics, &output) {
                Ok(delivery) => {
                    self.window.push(output, tag, delivery);
                    return Ok(settled);
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    (self.on_event)(Event::QueueFull, "local queue full");
                    match self.settle_next().await? {
                        Some(tag) => settled.push(tag),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err(source)
                    if self.refusals.redirect(&self.topics, &mut output, &source)
                        == Refusal::Redirected => {}
                Err(source) => {
                    let topic = topic(&self.topics, output.destination).to_owned();
                    self.window.give_back(output);
                    return Err(DeliveryError::Refused { topic, source });
                }
            }
        }
    }

    /// Waits for the oldest output and returns its tag; `None` when nothing is in flight. A
    /// failed delivery is sent again (with backoff) and waited for before anything behind it.
    /// Cancel-safe: dropped and called again, it resumes where it was.
    pub(crate) async fn settle_next(&mut self) -> Result<Option<T>, DeliveryError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let Some(front) = self.window.front_mut() else {
                return Ok(None);
            };
            // A dead letter made of a refused output is sent at once; a retry waits.
            let mut wait = true;
            if let Some(delivery) = &mut front.delivery {
                let reason = match delivery.await {
                    Ok(Ok(_)) => return Ok(self.window.settle_front()),
                    Ok(Err((error, _))) => {
                        match self
                            .refusals
                            .redirect(&self.topics, &mut front.output, &error)
                        {
                            Refusal::Redirected => None,
                            Refusal::Retry => Some(error.to_string()),
                            Refusal::GiveUp => {
                                front.delivery = None;
                                let topic = topic(&self.topics, front.output.destination);
                                return Err(DeliveryError::Refused {
                                    topic: topic.to_owned(),
                                    source: error,
                                });
                            }
                        }
                    }
                    Err(_cancelled) => Some("delivery cancelled".to_owned()),
                };
                front.delivery = None;
                match reason {
                    Some(reason) => {
                        (self.on_event)(Event::Retried, &reason);
                        let topic = topic(&self.topics, front.output.destination);
                        tracing::warn!(%reason, %topic, "Delivery failed; sending again.");
                    }
                    None => wait = false,
                }
            }
            loop {
                let topic = topic(&self.topics, front.output.destination);
                if wait {
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.shutdown.cancelled() => {
                            return Err(DeliveryError::Stopped { topic: topic.to_owned() });
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                wait = true;
                match enqueue(&self.producer, &self.topics, &front.output) {
                    Ok(delivery) => {
                        front.delivery = Some(delivery);
                        break;
                    }
                    Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {}
                    Err(source)
                        if self
                            .refusals
                            .redirect(&self.topics, &mut front.output, &source)
                            == Refusal::Redirected =>
                    {
                        wait = false;
                    }
                    Err(source) => {
                        return Err(DeliveryError::Refused {
                            topic: topic.to_owned(),
                            source,
                        });
                    }
                }
            }
        }
    }

    /// Settles everything in flight, calling `on_settled` with each tag in order.
    pub(crate) async fn drain(
        &mut self,
        mut on_settled: impl FnMut(T),
    ) -> Result<(), DeliveryError> {
        while let Some(tag) = self.settle_next().await? {
            on_settled(tag);
        }
        Ok(())
    }
}

/// The topic name of `destination`.
fn topic(topics: &[String; 2], destination: Destination) -> &str {
    let [enriched, dead_letter] = topics;
    match destination {
        Destination::Enriched => enriched,
        Destination::DeadLetter => dead_letter,
    }
}

/// Hands `output` to the producer as borrowed slices.
fn enqueue<C: rdkafka::ClientContext + 'static>(
    producer: &FutureProducer<C>,
    topics: &[String; 2],
    output: &Output,
) -> Result<DeliveryFuture, KafkaError> {
    let mut record =
        FutureRecord::<[u8], [u8]>::to(topic(topics, output.destination)).payload(&output.payload);
    if let Some(key) = output.key() {
        record = record.key(key);
    }
    if let Some(headers) = &output.headers {
        record = record.headers(headers.clone());
    }
    producer.send_result(record).map_err(|(error, _)| error)
}
