//! The sink as a Kafka service: a consumer group on `enriched` that bulk-loads OpenSearch.
//!
//! Records are gathered into batches (closed on count, bytes or time); each batch is one bulk
//! request of `index` operations with the record's event id as `_id`, so a record loaded twice
//! (after a crash, a rebalance, a retry) is overwritten, never duplicated. Up to `max_requests`
//! batches are in flight. Which batch settles and which offsets may be stored is the
//! [`Ledger`]'s to decide; this module is the loop around it: it consumes, sends the bulk
//! requests the ledger asks for (as tasks in a `JoinSet`), sends dead letters through
//! `pipeline::delivery`, stores the offsets the ledger releases, and keeps metrics, logs and
//! `/readyz` in step.
//!
//! Records dated outside the accepted days (`sink.accept_days_past`/`_future`) and documents
//! whose daily index is closed or write-blocked go to `dead-letter` (`day_out_of_range`,
//! `index_blocked`), like any document OpenSearch refuses for good: the rest flow on.
//!
//! Failures: items OpenSearch asks to retry (429, 5xx, passing blocks) are sent again, alone, after a
//! [`pipeline::backoff`] wait; a request with no answer is retried whole. While anything is
//! being retried the sink is in back-pressure: it sends no new batch, stops consuming once the
//! open batch is full, reports `/readyz` not ready (`opensearch`) and sets
//! `logwarden_sink_backpressure` to 1; it recovers by itself when OpenSearch answers again.
//! Nothing is dropped: retries end only at shutdown, and what is unsettled then is consumed
//! again after the restart (and overwritten by id).

use std::sync::Arc;
use std::time::{Duration, Instant};

use opensearch::{BulkParts, OpenSearch};
use pipeline::backoff::Retries;
use pipeline::delivery::{Deliveries, DeliveryError, Event, Outgoing};
use pipeline::kafka::HealthContext;
use pipeline::search::{self, SearchError};
use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::telemetry::Health;
use pipeline::wire::{DeadLetter, DeadLetterReason, SourcePosition};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bulk::{self, Document, FILTER_PATH, Preparer, Unusable, Verdict};
use crate::ledger::{BatchId, Ledger, Position, Pressure, Request};
use crate::metrics::Metrics;
use crate::settings::Settings;

/// The stage name written into dead letters.
pub const STAGE: &str = "sink";

/// The readiness check for OpenSearch.
pub const OPENSEARCH_CHECK: &str = "opensearch";

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// A dead letter could not be delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// OpenSearch refused the index template (a permanent error) or the client cannot be built.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Draining did not finish in time; unsettled records are consumed again after a restart.
    #[error("shutdown: {0} records not settled within {DRAIN_DEADLINE:?}")]
    DrainTimeout(usize),
}

/// Runs the sink until the shutdown token is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<(), ServiceError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    health.register(OPENSEARCH_CHECK, "connecting");
    let client = search::client(&settings.opensearch, settings.request_timeout)?;
    if !apply_template(&settings, &client, &health, &service.shutdown).await? {
        return Ok(());
    }
    let stage = Stage::new(&settings, client, metrics, health, service.shutdown.clone())?;
    tracing::info!(
        group = %settings.group_id,
        instance = %settings.instance_id,
        input = %settings.kafka.topics.enriched,
        alias = %settings.index.alias(),
        "Loading OpenSearch."
    );
    stage.run().await
}

/// Puts the index template, waiting for OpenSearch while it is unreachable or overloaded.
/// `Ok(false)` when shut down first; an error when OpenSearch refuses the template for good.
async fn apply_template(
    settings: &Settings,
    client: &OpenSearch,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<bool, ServiceError> {
    let mut retries = Retries::new(settings.backoff);
    loop {
        match settings.index.ensure_template(client).await {
            Ok(()) => {
                health.ready(OPENSEARCH_CHECK);
                tracing::info!(template = settings.index.template_name(), pattern = %settings.index.pattern(), "Index template in place (created if it was missing).");
                return Ok(true);
            }
            Err(err) if err.is_transient() => {
                health.not_ready(OPENSEARCH_CHECK, &err.to_string());
                let delay = retries.next_delay();
                tracing::warn!(%err, retry_in = ?delay, "Waiting for OpenSearch.");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(false),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A consumed record, detached from the consumer.
#[derive(Debug)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl From<&BorrowedMessage<'_>> for Record {
    fn from(message: &BorrowedMessage<'_>) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }
}

/// The answer to one bulk request.
#[derive(Debug)]
struct Reply {
    request: Request,
    verdict: Verdict,
    elapsed: Duration,
}

struct Stage {
    settings: Settings,
    client: OpenSearch,
    consumer: StreamConsumer<HealthContext>,
    context: HealthContext,
    /// Dead letters in flight, tagged with their batch: acknowledged ones settle it.
    dead_letters: Deliveries<BatchId, HealthContext>,
    preparer: Preparer,
    /// The batches between the consumer and the stored offsets.
    ledger: Ledger<Document>,
    /// When the open batch took its first record: it closes `batch.time` later.
    opened_at: tokio::time::Instant,
    requests: JoinSet<Reply>,
    metrics: Metrics,
    health: Arc<Health>,
    shutdown: CancellationToken,
}

/// One turn of the loop.
enum Step<'a> {
    Stop,
    Reply(Reply),
    DeadLetter(Result<Option<BatchId>, DeliveryError>),
    Linger,
    Message(Result<BorrowedMessage<'a>, KafkaError>),
}

impl Stage {
    fn new(
        settings: &Settings,
        client: OpenSearch,
        metrics: Metrics,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServiceError> {
        let kafka = &settings.kafka;
        let client_id = format!("logwarden-sink-{}", settings.instance_id);
        let context = HealthContext::new(health.clone()).with_lag(metrics.lag.clone());
        let mut consumer_config = kafka.consumer_config(&client_id, &settings.group_id);
        consumer_config.set("group.instance.id", &settings.instance_id);
        // Ready once joined, even on an idle topic; see `pipeline::kafka::HealthContext`.
        HealthContext::follow_group(&mut consumer_config);
        let consumer: StreamConsumer<HealthContext> = consumer_config
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        consumer
            .subscribe(&[&kafka.topics.enriched])
            .map_err(ServiceError::Client)?;
        let producer: FutureProducer<HealthContext> = kafka
            .producer_config(&client_id)
            .create_with_context(context.clone())
            .map_err(ServiceError::Client)?;
        let retried = context.clone();
        let dead_letters =
            Deliveries::new(producer, 10_000, shutdown.clone(), move |event, reason| {
                if event == Event::Retried {
                    retried.delivery_failed(reason);
                }
            });
        Ok(Self {
            settings: settings.clone(),
            client,
            consumer,
            context,
            dead_letters,
            preparer: Preparer::new(settings.index.clone())
                .accepting(settings.accept_days, bulk::today()),
            ledger: Ledger::new(settings.batch, settings.max_requests),
            opened_at: tokio::time::Instant::now(),
            requests: JoinSet::new(),
            metrics,
            health,
            shutdown,
        })
    }

    async fn run(mut self) -> Result<(), ServiceError> {
        loop {
            let can_take = self.can_take();
            let linger = self.linger_deadline();
            let step = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Step::Stop,
                Some(joined) = self.requests.join_next() => match joined {
                    Ok(reply) => Step::Reply(reply),
                    // A request task cannot panic (it only awaits the client), and the set is
                    // never aborted; treat it as a lost answer all the same.
                    Err(err) => {
                        tracing::error!(%err, "A bulk request task failed; its documents are sent again. If this repeats, report it with this log.");
                        continue;
                    }
                },
                settled = self.dead_letters.settle_next(), if !self.dead_letters.is_empty() => Step::DeadLetter(settled),
                () = sleep_until(linger), if linger.is_some() => Step::Linger,
                message = self.consumer.recv(), if can_take => Step::Message(message),
            };
            match step {
                Step::Stop => break,
                Step::Reply(reply) => self.on_reply(reply).await?,
                Step::DeadLetter(settled) => {
                    if let Some(batch) = settled? {
                        self.ledger.dead_letter_acknowledged(batch);
                        self.context.reachable();
                    }
                }
                Step::Linger => self.ledger.close(),
                Step::Message(Err(err)) => {
                    tracing::warn!(%err, "Consuming failed; librdkafka retries.");
                }
                Step::Message(Ok(message)) => {
                    let record = Record::from(&message);
                    drop(message);
                    self.context.reachable();
                    self.take(record).await?;
                }
            }
            self.dispatch();
            self.store_settled();
            self.update_gauges();
        }
        self.drain().await
    }

    /// Whether to read another record: the ledger has room, and dead letters are flowing.
    fn can_take(&self) -> bool {
        self.ledger.can_take() && !self.dead_letters.is_full() && !self.dead_letters.is_retrying()
    }

    /// When the open batch must close, if there is one with records in it.
    fn linger_deadline(&self) -> Option<tokio::time::Instant> {
        (self.ledger.open_records() > 0).then(|| self.opened_at + self.settings.batch.time)
    }

    /// Adds one record to the open batch, as a document or a dead letter.
    async fn take(&mut self, record: Record) -> Result<(), ServiceError> {
        self.metrics.records_in.inc();
        let Record {
            partition,
            offset,
            key,
            payload,
        } = record;
        if self.ledger.open_records() == 0 {
            self.opened_at = tokio::time::Instant::now();
        }
        let position = Position { partition, offset };
        self.preparer.set_today(bulk::today());
        match self.preparer.prepare_owned(payload) {
            Ok(document) => {
                let size = document.source.len() + document.id.len() + 64;
                self.ledger.add_document(position, document, size);
                Ok(())
            }
            Err((unusable, payload)) => {
                let batch = self.ledger.add_dead_letter(position);
                let dead = DeadLetter {
                    reason: unusable.reason,
                    detail: unusable.detail,
                    stage: STAGE.to_owned(),
                    source: SourcePosition {
                        topic: self.settings.kafka.topics.enriched.clone(),
                        partition,
                        offset,
                    },
                };
                let outgoing = Outgoing {
                    topic: self.settings.kafka.topics.dead_letter.clone(),
                    key,
                    payload,
                    headers: None,
                    partition: None,
                    timestamp: None,
                };
                self.send_dead_letter(dead, outgoing, batch).await
            }
        }
    }

    async fn send_dead_letter(
        &mut self,
        dead: DeadLetter,
        mut outgoing: Outgoing,
        batch: BatchId,
    ) -> Result<(), ServiceError> {
        self.metrics
            .dead_letters
            .with_label_values(&[dead.reason.as_str()])
            .inc();
        tracing::debug!(reason = %dead.reason, detail = %dead.detail, partition = dead.source.partition, offset = dead.source.offset, "Dead letter.");
        outgoing.headers = Some(dead.to_headers());
        for settled in self.dead_letters.send(outgoing, batch).await? {
            self.ledger.dead_letter_acknowledged(settled);
        }
        Ok(())
    }

    /// Sends the requests the ledger starts (it closes a full open batch, and holds new
    /// requests back in back-pressure).
    fn dispatch(&mut self) {
        for request in self.ledger.dispatch() {
            self.send(request);
        }
    }

    /// Spawns `request` as a bulk request task, after its backoff when it is a retry.
    fn send(&mut self, request: Request) {
        let delay = request
            .retry()
            .map(|attempt| self.settings.backoff.delay(attempt, &mut rand::rng()));
        let mut body = Vec::with_capacity(request.size_hint().min(64 << 20));
        for document in self.ledger.documents(&request) {
            bulk::write_operation(document, &mut body);
        }
        self.metrics.batch_records.observe(request.len() as f64);
        self.metrics.batch_bytes.observe(body.len() as f64);
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        self.requests.spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let started = Instant::now();
            let verdict = send_bulk(&client, body, request.len()).await;
            let elapsed = started.elapsed();
            metrics.bulk_seconds.observe(elapsed.as_secs_f64());
            Reply {
                request,
                verdict,
                elapsed,
            }
        });
    }

    async fn on_reply(&mut self, reply: Reply) -> Result<(), ServiceError> {
        let Reply {
            request,
            verdict,
            elapsed,
        } = reply;
        let answer = self.ledger.answered(request, verdict);
        let items = &self.metrics.items;
        items
            .with_label_values(&["indexed"])
            .inc_by(answer.indexed as u64);
        items
            .with_label_values(&["rejected"])
            .inc_by(answer.rejected.len() as u64);
        items
            .with_label_values(&["retried"])
            .inc_by(answer.retried as u64);
        self.metrics
            .requests
            .with_label_values(&[answer.result.as_str()])
            .inc();
        let attempt = answer.next.as_ref().and_then(Request::retry);
        match &answer.pressure {
            Pressure::Retrying { reason, first } => {
                if *first {
                    tracing::warn!(%reason, attempt, "OpenSearch cannot take the batch now; retrying (back-pressure on).");
                } else {
                    tracing::debug!(%reason, attempt, "Still retrying.");
                }
                self.health.not_ready(OPENSEARCH_CHECK, reason);
            }
            Pressure::Clear { ended } => {
                if *ended {
                    tracing::info!(
                        latency = ?elapsed,
                        "OpenSearch takes batches again (back-pressure off)."
                    );
                }
                self.health.ready(OPENSEARCH_CHECK);
            }
            Pressure::Held => {}
        }
        for rejection in answer.rejected {
            let Some(document) = self.ledger.document(rejection.batch, rejection.document) else {
                continue;
            };
            let Position { partition, offset } = rejection.position;
            let Unusable { reason, detail } = rejection.reason;
            tracing::debug!(%reason, %detail, partition, offset, "OpenSearch rejected a document.");
            let detail = match reason {
                DeadLetterReason::IndexBlocked => {
                    format!("the daily index `{}` is blocked: {detail}", document.index)
                }
                _ => detail,
            };
            let dead = DeadLetter {
                reason,
                detail,
                stage: STAGE.to_owned(),
                source: SourcePosition {
                    topic: self.settings.kafka.topics.enriched.clone(),
                    partition,
                    offset,
                },
            };
            let outgoing = Outgoing {
                topic: self.settings.kafka.topics.dead_letter.clone(),
                key: None,
                payload: document.source.to_vec(),
                headers: None,
                partition: None,
                timestamp: None,
            };
            self.send_dead_letter(dead, outgoing, rejection.batch)
                .await?;
        }
        if let Some(next) = answer.next {
            self.send(next);
        }
        Ok(())
    }

    /// Stores the offsets the ledger releases: those of settled batches, oldest first.
    fn store_settled(&mut self) {
        for Position { partition, offset } in self.ledger.take_settled() {
            // Fails only for a partition revoked meanwhile: its new owner loads from the
            // last commit, and the ids make that an overwrite.
            if let Err(err) =
                self.consumer
                    .store_offset(&self.settings.kafka.topics.enriched, partition, offset)
            {
                tracing::debug!(%err, partition, offset, "Offset not stored (partition revoked).");
            }
        }
    }

    fn update_gauges(&self) {
        self.metrics
            .backpressure
            .set(i64::from(self.ledger.back_pressure().is_some()));
        self.metrics
            .requests_in_flight
            .set(self.requests.len() as i64);
        self.metrics
            .records_in_flight
            .set(self.ledger.records() as i64);
    }

    /// Sends the open batch, settles everything in flight within the deadline, and commits.
    async fn drain(mut self) -> Result<(), ServiceError> {
        self.ledger.close();
        tracing::info!(records = self.ledger.records(), "Draining.");
        let drained = drain(
            async {
                // Send everything now: the deadline bounds the drain, not back-pressure.
                self.ledger.relieve();
                loop {
                    self.dispatch();
                    self.store_settled();
                    if self.ledger.is_empty() {
                        return Ok::<(), ServiceError>(());
                    }
                    tokio::select! {
                        Some(joined) = self.requests.join_next() => {
                            if let Ok(reply) = joined {
                                self.on_reply(reply).await?;
                            }
                        }
                        settled = self.dead_letters.settle_next(), if !self.dead_letters.is_empty() => {
                            if let Some(batch) = settled? {
                                self.ledger.dead_letter_acknowledged(batch);
                            }
                        }
                    }
                }
            },
            DRAIN_DEADLINE,
        )
        .await;
        let left = self.ledger.records();
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(err)
                if err.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {
            }
            Err(err) => {
                tracing::warn!(%err, "Final commit failed; the last records will be loaded again (overwriting).")
            }
        }
        match drained {
            Ok(result) => result,
            Err(_) => Err(ServiceError::DrainTimeout(left)),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends one bulk request and judges the answer.
async fn send_bulk(client: &OpenSearch, body: Vec<u8>, documents: usize) -> Verdict {
    let response = client
        .bulk(BulkParts::None)
        .filter_path(FILTER_PATH)
        .body(vec![bytes::Bytes::from(body)])
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => return Verdict::RetryAll(format!("OpenSearch is unreachable: {err}")),
    };
    let status = response.status_code().as_u16();
    match response.bytes().await {
        Ok(body) => bulk::classify(status, &body, documents),
        Err(err) => Verdict::RetryAll(format!("reading the bulk response: {err}")),
    }
}
