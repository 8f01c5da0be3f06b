//! The sink's bookkeeping, with no IO: which consumed records are in which batch, which
//! documents wait for a bulk request, which batches have settled, and so which offsets may be
//! stored.
//!
//! It stands apart from the service because the sink's promise (an offset is stored only once
//! every record up to it is in OpenSearch or on `dead-letter`) is decided here and nowhere else,
//! and a test can play every interleaving of answers against it without Kafka, OpenSearch, a
//! runtime or a clock. The service feeds it what happened (a record consumed, a bulk answer, a
//! dead letter acknowledged) and carries out what it returns (requests to send, documents to
//! dead-letter, offsets to store).
//!
//! - Records join the open batch, the newest one. It closes when full ([`Ledger::dispatch`]) or
//!   when the service's linger timer says so ([`Ledger::close`]); time is the service's.
//! - A batch settles when it is closed, none of its requests is under way or waiting out a
//!   backoff, and every document in it is indexed or its dead letter acknowledged (a record that
//!   could not be made a document, and a document OpenSearch rejected, count until then).
//! - Offsets are released for settled batches from the front only: a settled batch behind an
//!   unsettled one waits, so offsets move in order per partition.
//! - One request per batch at a time, at most `max_requests` batches requesting. Documents
//!   OpenSearch asks to retry are sent again after a backoff (the batch counts its attempts in a
//!   row) and put the ledger in back-pressure: no other batch starts a request until one goes
//!   through while no batch is retrying. A request refused as a whole (400, 413) is split: its
//!   batch sends half as many documents per request from then on, down to one, which is then
//!   rejected with the reason.

use std::collections::{BTreeMap, VecDeque};

use pipeline::wire::DeadLetterReason;

use crate::bulk::{Outcome, Unusable, Verdict};
use crate::settings::BatchLimits;

/// A batch's number, in consumption order; dead letters carry it as their tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(u64);

/// A record's place in the input topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// A bulk request to send: some of one batch's documents, in order.
#[derive(Debug)]
pub struct Request {
    batch: BatchId,
    /// The documents, by index into the batch, in request order.
    sent: Vec<usize>,
    /// `Some(n)`: the batch's `n`-th retry in a row; the sender waits the backoff for attempt
    /// `n` first.
    retry: Option<u32>,
    /// The batch's bytes: room enough for the request body.
    bytes: usize,
}

impl Request {
    /// The batch the documents belong to.
    pub fn batch(&self) -> BatchId {
        self.batch
    }

    /// How many documents it carries.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether it carries no document (never true for a request the ledger returns).
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// `Some(n)` when this is the batch's `n`-th retry in a row: wait the backoff first.
    pub fn retry(&self) -> Option<u32> {
        self.retry
    }

    /// An upper bound of the body's size, for its buffer.
    pub fn size_hint(&self) -> usize {
        self.bytes
    }
}

/// A document OpenSearch refused for good: it goes to `dead-letter`, tagged with its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The document's batch, the dead letter's tag.
    pub batch: BatchId,
    /// The document, for [`Ledger::document`].
    pub document: usize,
    /// The record's place, for the dead letter's headers.
    pub position: Position,
    /// Why: `rejected` or `index_blocked`, with OpenSearch's reason.
    pub reason: Unusable,
}

/// How a bulk request went, for the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// Every document was judged (indexed, retried or rejected item by item).
    Ok,
    /// No usable answer: every document is sent again.
    Retry,
    /// Refused as a whole (400, 413): sent again in smaller requests.
    Split,
}

impl RequestResult {
    /// Every result, for initializing the metric's labels.
    pub const ALL: [Self; 3] = [Self::Ok, Self::Retry, Self::Split];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::Split => "split",
        }
    }
}

/// Back-pressure after an answer: what the service reports on `/readyz` and in its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressure {
    /// Something is to be retried: back-pressure is on, and `first` when it was off until now.
    Retrying {
        /// OpenSearch's reason (or why there was no answer).
        reason: String,
        /// Back-pressure began with this answer.
        first: bool,
    },
    /// Nothing is being retried: back-pressure is off, and `ended` when it was on until now.
    Clear {
        /// Back-pressure ended with this answer.
        ended: bool,
    },
    /// This request went through, but another batch is still retrying: back-pressure stays.
    Held,
}

/// What a bulk answer means for the stage.
#[derive(Debug)]
pub struct Answer {
    /// Documents indexed.
    pub indexed: usize,
    /// Documents OpenSearch asked to send again later (not counting a split's).
    pub retried: usize,
    /// Documents refused for good, each to go to `dead-letter`.
    pub rejected: Vec<Rejection>,
    /// How the request went.
    pub result: RequestResult,
    /// Back-pressure after this answer.
    pub pressure: Pressure,
    /// The batch's next request, when it has more to send: after a backoff when OpenSearch asked
    /// for a retry, at once after a split or when the batch is larger than one request may be.
    pub next: Option<Request>,
}

/// Consecutive records, the documents among them, and what is still to do for them.
#[derive(Debug)]
struct Batch<D> {
    id: BatchId,
    /// Still taking records.
    open: bool,
    records: usize,
    /// The documents' sizes, as the service counts them.
    bytes: usize,
    /// The highest offset consumed per partition: released when the batch settles.
    offsets: BTreeMap<i32, i64>,
    /// Each document's place, for its dead letter.
    positions: Vec<Position>,
    documents: Vec<D>,
    /// Documents (by index) waiting to be sent, in order.
    pending: Vec<usize>,
    /// Documents not yet indexed and dead letters not yet acknowledged.
    unsettled: usize,
    /// A request (or its backoff) is under way.
    requesting: bool,
    /// Consecutive answers that had something to retry.
    attempt: u32,
    /// Most documents per request (halved when OpenSearch refuses a request as a whole).
    request_limit: usize,
}

impl<D> Batch<D> {
    fn new(id: BatchId) -> Self {
        Self {
            id,
            open: true,
            records: 0,
            bytes: 0,
            offsets: BTreeMap::new(),
            positions: Vec::new(),
            documents: Vec::new(),
            pending: Vec::new(),
            unsettled: 0,
            requesting: false,
            attempt: 0,
            request_limit: usize::MAX,
        }
    }

    fn is_full(&self, limits: &BatchLimits) -> bool {
        self.records >= limits.records || self.bytes >= limits.bytes
    }

    fn is_settled(&self) -> bool {
        !self.open && self.unsettled == 0 && self.pending.is_empty() && !self.requesting
    }
}

/// The batches between the consumer and the stored offsets, oldest first; the last may be open.
/// `D` is what a document is to the service (the ledger only keeps it).
#[derive(Debug)]
pub struct Ledger<D> {
    /// When a batch is full (records, bytes; its linger time is the service's).
    limits: BatchLimits,
    /// Most batches with a request under way at once.
    max_requests: usize,
    batches: VecDeque<Batch<D>>,
    next_id: u64,
    /// While back-pressure is on: the last reason something is retried.
    trouble: Option<String>,
}

impl<D> Ledger<D> {
    /// An empty ledger: batches close at `limits` (records, bytes), at most `max_requests`
    /// requests under way.
    pub fn new(limits: BatchLimits, max_requests: usize) -> Self {
        Self {
            limits,
            max_requests,
            batches: VecDeque::new(),
            next_id: 0,
            trouble: None,
        }
    }

    /// A record made into a document of `size` bytes: joins the open batch (opening one) and
    /// waits to be sent.
    pub fn add_document(&mut self, position: Position, document: D, size: usize) -> BatchId {
        self.with_open_batch(|batch| {
            batch.records += 1;
            batch.offsets.insert(position.partition, position.offset);
            batch.bytes += size;
            batch.pending.push(batch.documents.len());
            batch.positions.push(position);
            batch.documents.push(document);
            batch.unsettled += 1;
            batch.id
        })
    }

    /// A record that goes to `dead-letter` instead: joins the open batch (opening one), which
    /// does not settle before [`Self::dead_letter_acknowledged`] is called with the id returned.
    pub fn add_dead_letter(&mut self, position: Position) -> BatchId {
        self.with_open_batch(|batch| {
            batch.records += 1;
            batch.offsets.insert(position.partition, position.offset);
            batch.unsettled += 1;
            batch.id
        })
    }

    /// One dead letter of `batch` is durable.
    pub fn dead_letter_acknowledged(&mut self, batch: BatchId) {
        if let Some(batch) = self.batch_mut(batch) {
            batch.unsettled = batch.unsettled.saturating_sub(1);
        }
    }

    /// Records in the open batch (0 when there is none): the service's linger timer starts at
    /// the first.
    pub fn open_records(&self) -> usize {
        match self.batches.back() {
            Some(batch) if batch.open => batch.records,
            _ => 0,
        }
    }

    /// Whether another record may be taken: the open batch has room, or a new one may open (at
    /// most `max_requests` closed batches wait behind it).
    pub fn can_take(&self) -> bool {
        match self.batches.back() {
            Some(batch) if batch.open => !batch.is_full(&self.limits),
            _ => self.batches.len() <= self.max_requests,
        }
    }

    /// Closes the open batch, if there is one: it takes no more records.
    pub fn close(&mut self) {
        if let Some(batch) = self.batches.back_mut() {
            batch.open = false;
        }
    }

    /// Closes the open batch if it is full, then starts requests for closed batches with
    /// documents waiting, oldest first, up to `max_requests` under way; none in back-pressure
    /// (retrying batches go on by their own answers).
    pub fn dispatch(&mut self) -> Vec<Request> {
        if self
            .batches
            .back()
            .is_some_and(|batch| batch.open && batch.is_full(&self.limits))
        {
            self.close();
        }
        if self.trouble.is_some() {
            return Vec::new();
        }
        let in_flight = self.batches.iter().filter(|b| b.requesting).count();
        let ready: Vec<BatchId> = self
            .batches
            .iter()
            .filter(|b| !b.open && !b.requesting && !b.pending.is_empty())
            .map(|b| b.id)
            .take(self.max_requests.saturating_sub(in_flight))
            .collect();
        ready
            .into_iter()
            .filter_map(|id| self.request(id, None))
            .collect()
    }

    /// The documents `request` carries, in order.
    pub fn documents<'a>(&'a self, request: &'a Request) -> impl Iterator<Item = &'a D> + 'a {
        let batch = self.batch(request.batch);
        request
            .sent
            .iter()
            .filter_map(move |&i| batch.and_then(|batch| batch.documents.get(i)))
    }

    /// A document of a batch still in the ledger (a rejected one, for its dead letter).
    pub fn document(&self, batch: BatchId, document: usize) -> Option<&D> {
        self.batch(batch)?.documents.get(document)
    }

    /// OpenSearch's `verdict` on `request`: settles what was indexed, queues what is to be sent
    /// again, and says what follows.
    pub fn answered(&mut self, request: Request, verdict: Verdict) -> Answer {
        let Request {
            batch: id, sent, ..
        } = request;
        let judged = Judged::from_verdict(&sent, verdict);
        let retry = judged.retry_reason.is_some();
        let retried = if retry { judged.again.len() } else { 0 };
        let Some(batch) = self.batch_mut(id) else {
            // A batch with a request under way never settles, so it is always here.
            return Answer {
                indexed: 0,
                retried: 0,
                rejected: Vec::new(),
                result: judged.result,
                pressure: Pressure::Held,
                next: None,
            };
        };
        batch.requesting = false;
        batch.unsettled = batch.unsettled.saturating_sub(judged.indexed);
        batch.pending.splice(0..0, judged.again);
        if let Some(limit) = judged.request_limit {
            batch.request_limit = limit;
        }
        batch.attempt = if retry { batch.attempt + 1 } else { 0 };
        let attempt = batch.attempt;
        let more = !batch.pending.is_empty();
        // A rejected document keeps its place in `unsettled` until its dead letter is durable.
        let rejected = judged
            .rejected
            .into_iter()
            .filter_map(|(document, reason)| {
                let position = *batch.positions.get(document)?;
                Some(Rejection {
                    batch: id,
                    document,
                    position,
                    reason,
                })
            })
            .collect();
        let pressure = match judged.retry_reason {
            Some(reason) => Pressure::Retrying {
                first: self.trouble.replace(reason.clone()).is_none(),
                reason,
            },
            None if self.batches.iter().any(|b| b.attempt > 0) => Pressure::Held,
            None => Pressure::Clear {
                ended: self.trouble.take().is_some(),
            },
        };
        let next = if more {
            self.request(id, retry.then_some(attempt))
        } else {
            None
        };
        Answer {
            indexed: judged.indexed,
            retried,
            rejected,
            result: judged.result,
            pressure,
            next,
        }
    }

    /// Removes the settled batches at the front and returns their offsets to store, in order
    /// (per batch, by partition); stops at the first batch not settled.
    pub fn take_settled(&mut self) -> Vec<Position> {
        let mut offsets = Vec::new();
        while self.batches.front().is_some_and(Batch::is_settled) {
            if let Some(batch) = self.batches.pop_front() {
                offsets.extend(
                    batch
                        .offsets
                        .into_iter()
                        .map(|(partition, offset)| Position { partition, offset }),
                );
            }
        }
        offsets
    }

    /// Records consumed and not yet settled.
    pub fn records(&self) -> usize {
        self.batches.iter().map(|b| b.records).sum()
    }

    /// Whether every record consumed has settled.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Why back-pressure is on, while it is.
    pub fn back_pressure(&self) -> Option<&str> {
        self.trouble.as_deref()
    }

    /// Lifts back-pressure so every waiting batch is sent (when draining: the deadline bounds the
    /// drain, not back-pressure); the next retry turns it on again.
    pub fn relieve(&mut self) {
        self.trouble = None;
    }

    fn with_open_batch<R>(&mut self, add: impl FnOnce(&mut Batch<D>) -> R) -> R {
        if let Some(batch) = self.batches.back_mut().filter(|batch| batch.open) {
            return add(batch);
        }
        let mut batch = Batch::new(BatchId(self.next_id));
        self.next_id += 1;
        let added = add(&mut batch);
        self.batches.push_back(batch);
        added
    }

    /// A request for batch `id`'s waiting documents, up to its request limit.
    fn request(&mut self, id: BatchId, retry: Option<u32>) -> Option<Request> {
        let batch = self.batch_mut(id)?;
        let take = batch.pending.len().min(batch.request_limit);
        let sent: Vec<usize> = batch.pending.drain(..take).collect();
        batch.requesting = true;
        Some(Request {
            batch: id,
            sent,
            retry,
            bytes: batch.bytes,
        })
    }

    fn position(&self, id: BatchId) -> Option<usize> {
        let front = self.batches.front()?.id.0;
        usize::try_from(id.0.checked_sub(front)?).ok()
    }

    fn batch(&self, id: BatchId) -> Option<&Batch<D>> {
        self.batches.get(self.position(id)?)
    }

    fn batch_mut(&mut self, id: BatchId) -> Option<&mut Batch<D>> {
        let index = self.position(id)?;
        self.batches.get_mut(index)
    }
}

/// A bulk answer sorted into what happens to each document sent.
#[derive(Debug)]
struct Judged {
    /// How many were indexed.
    indexed: usize,
    /// Those to send again (retried, or split into smaller requests).
    again: Vec<usize>,
    /// Those refused for good, with why.
    rejected: Vec<(usize, Unusable)>,
    /// Set when `again` waits for a backoff (OpenSearch in trouble), not for a split.
    retry_reason: Option<String>,
    /// The batch's new request size, after a split.
    request_limit: Option<usize>,
    result: RequestResult,
}

impl Judged {
    fn from_verdict(sent: &[usize], verdict: Verdict) -> Self {
        let mut judged = Self {
            indexed: 0,
            again: Vec::new(),
            rejected: Vec::new(),
            retry_reason: None,
            request_limit: None,
            result: RequestResult::Ok,
        };
        match verdict {
            Verdict::Items(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for &i in sent {
                    // `bulk::classify` gives one outcome per document; a missing one is retried
                    // rather than lost.
                    let outcome = outcomes.next().unwrap_or_else(|| {
                        Outcome::Retry("the bulk response has no item for it".to_owned())
                    });
                    match outcome {
                        Outcome::Indexed => judged.indexed += 1,
                        Outcome::Retry(reason) => {
                            judged.again.push(i);
                            judged.retry_reason = Some(reason);
                        }
                        Outcome::Rejected(reason) => judged.rejected.push((i, reason)),
                    }
                }
            }
            Verdict::RetryAll(reason) => {
                judged.again = sent.to_vec();
                judged.retry_reason = Some(reason);
                judged.result = RequestResult::Retry;
            }
            Verdict::Split(reason) => {
                judged.result = RequestResult::Split;
                match sent {
                    [only] => judged
                        .rejected
                        .push((*only, Unusable::new(DeadLetterReason::Rejected, reason))),
                    _ => {
                        judged.again = sent.to_vec();
                        judged.request_limit = Some((sent.len() / 2).max(1));
                    }
                }
            }
        }
        judged
    }
}

#[cfg(test)]
mod tests;
