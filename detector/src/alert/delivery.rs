//! Delivery: one worker task per channel sends that channel's pending notifications, and the
//! service's loop keeps the outbox ([`Alerting`]).
//!
//! Why one worker per channel: a receiver that answers 503 or takes 30 s delays only its own
//! channel; Slack and e-mail go on. Each attempt is bounded by [`ATTEMPT_TIMEOUT`]; a failed one
//! is counted, logged and tried again after a backoff (1 s doubling to 60 s, jittered), for as
//! long as the entry is pending. Within a channel, notifications of one monitor and detector go
//! out in the order they were recorded (a recovery never overtakes its alert); others do not wait
//! for each other.
//!
//! Why the workers report back instead of owning the outbox: the outbox is part of the state the
//! service checkpoints ([`super::Monitors::state`]), and only the loop that checkpoints may
//! change it. A worker's outcome (delivered, or failed after N attempts) comes back over a
//! channel; the loop marks the entry and saves a checkpoint at its next tick, which narrows the
//! window in which a crash would send a delivered notification again.
//!
//! The guarantee: at least once, with a stable idempotency key. A notification is delivered
//! again only if the process dies after the receiver accepted it and before the checkpoint that
//! marks it delivered (about a quarter of a second plus one checkpoint write), or at shutdown if
//! an attempt was cut off by the drain deadline; a receiver that deduplicates by key sees each
//! notification exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pipeline::wire::AlertDoc;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::channels::Target;
use super::monitors::Monitors;
use super::outbox::{Entry, Recorded};
use super::record::DeliveryLog;
use crate::spec::Spec;
use crate::store::ResultDoc;

/// The longest one delivery attempt may take (an HTTP request, an SMTP session).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a shutdown waits for pending notifications before the final checkpoint, which keeps
/// what is still pending for the next run. Well under the 20 s drain deadline.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Delivery metrics, by channel.
#[derive(Debug, Clone)]
pub struct DeliveryMetrics {
    /// Notifications delivered.
    pub sent: prometheus::IntCounterVec,
    /// Delivery attempts that failed (each is retried).
    pub failed: prometheus::IntCounterVec,
    /// Notifications waiting to be delivered (the outbox, per channel).
    pub pending: prometheus::IntGaugeVec,
    /// Notifications dropped without delivery: evicted from a full outbox, or pending for a
    /// channel no longer in the spec.
    pub dropped: prometheus::IntCounterVec,
}

/// What a worker tells the loop about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The notification's key.
    pub key: String,
    /// The channel.
    pub channel: String,
    /// `None` when delivered; otherwise the failed attempts so far, over every run.
    pub failed_attempts: Option<u32>,
    /// The notification's monitor, detector and kind, and why the attempt failed: for the
    /// detector's page ([`crate::page`]), which lists recent deliveries.
    pub monitor: String,
    /// The detector whose result caused the notification.
    pub detector: String,
    /// Alert, re-notification or recovery.
    pub kind: super::Kind,
    /// The failed attempt's error.
    pub error: Option<String>,
    /// The notification's episode start and interval `[start, end)`, epoch ms (event time): for
    /// the record of deliveries ([`super::DeliveryLog`]).
    pub episode_start: i64,
    /// The interval that caused the notification.
    pub interval: (i64, i64),
    /// When the attempt ended, epoch ms (the detector's clock): a delivery's time.
    pub at: i64,
}

impl Outcome {
    /// The record of this delivery for the alerts index; `None` for a failed attempt.
    pub fn record(&self) -> Option<AlertDoc> {
        self.failed_attempts.is_none().then(|| AlertDoc {
            key: self.key.clone(),
            channel: self.channel.clone(),
            monitor: self.monitor.clone(),
            detector: self.detector.clone(),
            kind: self.kind.name().to_owned(),
            episode_start: self.episode_start,
            interval_start: self.interval.0,
            interval_end: self.interval.1,
            delivered_at: self.at,
        })
    }
}

/// What the loop tells a worker.
#[derive(Debug)]
enum Command {
    /// Deliver this entry (unless it is already queued).
    Send(Box<Entry>),
    /// Stop trying this key (evicted from the outbox).
    Forget(String),
}

/// The monitors, their outbox and the channel workers: the service's loop evaluates results
/// here, settles the workers' outcomes, and checkpoints [`Alerting::monitors`].
#[derive(Debug)]
pub struct Alerting {
    monitors: Monitors,
    workers: BTreeMap<String, UnboundedSender<Command>>,
    outcomes: UnboundedReceiver<Outcome>,
    tasks: JoinSet<()>,
    stop: CancellationToken,
    metrics: DeliveryMetrics,
    /// Where each delivery is recorded (best-effort), when the service gave one.
    log: Option<DeliveryLog>,
}

impl Alerting {
    /// Restores the monitors' `saved` state (episodes and outbox), starts a worker per channel
    /// and hands each one its pending entries. Entries of channels that are no longer in the spec
    /// are dropped, counted and logged.
    pub fn start(
        spec: &Spec,
        saved: Option<&Value>,
        targets: BTreeMap<String, Target>,
        metrics: DeliveryMetrics,
    ) -> Self {
        let mut monitors = Monitors::new(spec);
        if let Some(saved) = saved
            && let Err(err) = monitors.restore(saved)
        {
            tracing::error!(%err, "The monitors' checkpointed state cannot be read: starting with no open episode and an empty outbox.");
        }
        for entry in monitors
            .outbox_mut()
            .drop_unknown(|c| targets.contains_key(c))
        {
            metrics.dropped.with_label_values(&[&entry.channel]).inc();
            tracing::error!(channel = %entry.channel, key = %entry.key(), monitor = %entry.notification.monitor, "A pending alert's channel is no longer in the spec: dropped.");
        }
        let (report, outcomes) = unbounded_channel();
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut workers = BTreeMap::new();
        for (channel, target) in targets {
            let (commands, inbox) = unbounded_channel();
            tasks.spawn(worker(
                channel.clone(),
                target,
                inbox,
                report.clone(),
                metrics.clone(),
                stop.clone(),
            ));
            workers.insert(channel, commands);
        }
        let mut alerting = Self {
            monitors,
            workers,
            outcomes,
            tasks,
            stop,
            metrics,
            log: None,
        };
        let pending: Vec<Entry> = alerting.monitors.outbox().pending().cloned().collect();
        if !pending.is_empty() {
            tracing::info!(
                pending = pending.len(),
                "Re-sending the alerts the checkpoint holds as pending."
            );
        }
        alerting.hand_over(Recorded {
            entries: pending,
            dropped: Vec::new(),
        });
        alerting
    }

    /// Records every delivery settled from now on in `log` (see [`DeliveryLog`]).
    #[must_use]
    pub fn with_log(mut self, log: DeliveryLog) -> Self {
        self.log = Some(log);
        self
    }

    /// The monitors and their outbox, to checkpoint.
    pub fn monitors(&self) -> &Monitors {
        &self.monitors
    }

    /// Evaluates `result`: the notifications it causes are recorded in the outbox and handed to
    /// their channels' workers.
    pub fn evaluate(&mut self, result: &ResultDoc) {
        let recorded = self.monitors.evaluate(result);
        self.hand_over(recorded);
    }

    fn hand_over(&mut self, recorded: Recorded) {
        for entry in recorded.dropped {
            self.metrics
                .dropped
                .with_label_values(&[&entry.channel])
                .inc();
            tracing::error!(channel = %entry.channel, key = %entry.key(), monitor = %entry.notification.monitor, kind = ?entry.notification.kind, capacity = self.monitors.outbox().capacity(), "The channel's outbox is full: dropped its oldest pending notification undelivered.");
            if let Some(worker) = self.workers.get(&entry.channel) {
                let _ = worker.send(Command::Forget(entry.notification.key));
            }
        }
        for entry in recorded.entries {
            if let Some(worker) = self.workers.get(&entry.channel) {
                let _ = worker.send(Command::Send(Box::new(entry)));
            }
        }
        self.update_pending();
    }

    fn update_pending(&self) {
        for channel in self.workers.keys() {
            let pending = self.monitors.outbox().pending_on(channel);
            self.metrics
                .pending
                .with_label_values(&[channel])
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
    }

    /// The next outcome from a worker (cancel-safe: for the service's `select!`).
    pub async fn outcome(&mut self) -> Option<Outcome> {
        self.outcomes.recv().await
    }

    /// Applies a worker's outcome to the outbox; `true` when it marked a delivery (the outbox
    /// changed in a way worth checkpointing soon).
    pub fn settle(&mut self, outcome: Outcome) -> bool {
        let outbox = self.monitors.outbox_mut();
        let delivered = match outcome.failed_attempts {
            None => outbox.delivered(&outcome.key, &outcome.channel),
            Some(attempts) => {
                outbox.failed(&outcome.key, &outcome.channel, attempts);
                false
            }
        };
        // Recorded once per settled delivery (a duplicate outcome is not pending any more).
        if delivered && let (Some(log), Some(record)) = (&self.log, outcome.record()) {
            log.record(record);
        }
        self.update_pending();
        delivered
    }

    /// At shutdown: settles outcomes until nothing is pending or `deadline` passes.
    pub async fn drain(&mut self, deadline: Duration) {
        let until = Instant::now() + deadline;
        while self.monitors.outbox().pending().next().is_some() {
            match tokio::time::timeout_at(until, self.outcomes.recv()).await {
                Ok(Some(outcome)) => {
                    self.settle(outcome);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let pending = self.monitors.outbox().pending().count();
        if pending > 0 {
            tracing::warn!(
                pending,
                "Stopping with alerts not yet delivered: they stay pending in the checkpoint and the next run sends them."
            );
        }
    }

    /// Stops the workers (an attempt in flight is abandoned: its entry stays pending), then
    /// gives the record of deliveries [`super::record::CLOSE_DEADLINE`] to write what it holds.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(log) = self.log.take() {
            log.close().await;
        }
    }
}

/// An entry in a worker's queue.
struct Queued {
    entry: Entry,
    /// Failed attempts in this run: the backoff's exponent.
    tries: u32,
    due: Instant,
}

/// Delivers `channel`'s entries until `stop`: the earliest due entry whose monitor and detector
/// have no earlier entry queued, one attempt at a time, each bounded by [`ATTEMPT_TIMEOUT`].
async fn worker(
    channel: String,
    target: Target,
    mut commands: UnboundedReceiver<Command>,
    outcomes: UnboundedSender<Outcome>,
    metrics: DeliveryMetrics,
    stop: CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap_or_default();
    // 1 s doubling to 60 s: a receiver that is down is often down for minutes.
    let backoff = pipeline::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut queue: Vec<Queued> = Vec::new();
    loop {
        let next = next_eligible(&queue);
        let due = next.map(|i| queue[i].due);
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            command = commands.recv() => match command {
                Some(Command::Send(entry)) => {
                    if !queue.iter().any(|q| q.entry.key() == entry.key()) {
                        queue.push(Queued { entry: *entry, tries: 0, due: Instant::now() });
                    }
                }
                Some(Command::Forget(key)) => queue.retain(|q| q.entry.key() != key),
                None => break,
            },
            () = sleep_until(due), if due.is_some() => {
                let Some(i) = next else { continue };
                let n = &queue[i].entry.notification;
                let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, target.send(&http, n));
                let result = tokio::select! {
                    () = stop.cancelled() => break,
                    result = attempt => result.unwrap_or_else(|_| Err(format!("no answer within {ATTEMPT_TIMEOUT:?}"))),
                };
                let queued = &mut queue[i];
                let (key, monitor) = (queued.entry.key().to_owned(), queued.entry.notification.monitor.clone());
                let (detector, kind) = (queued.entry.notification.detector.clone(), queued.entry.notification.kind);
                let n = &queued.entry.notification;
                let (episode_start, interval, at) = (n.episode_start, (n.interval_start, n.interval_end), chrono::Utc::now().timestamp_millis());
                match result {
                    Ok(()) => {
                        metrics.sent.with_label_values(&[&channel]).inc();
                        tracing::info!(%channel, %monitor, %key, ?kind, "Alert delivered.");
                        queue.remove(i);
                        let _ = outcomes.send(Outcome { key, channel: channel.clone(), failed_attempts: None, monitor, detector, kind, error: None, episode_start, interval, at });
                    }
                    Err(err) => {
                        metrics.failed.with_label_values(&[&channel]).inc();
                        queued.tries += 1;
                        queued.entry.attempts += 1;
                        let delay = backoff.delay(queued.tries, &mut rand::rng());
                        queued.due = Instant::now() + delay;
                        tracing::warn!(%channel, %monitor, %key, attempt = queued.entry.attempts, retry_in = ?delay, %err, "Alert delivery failed; retrying.");
                        let _ = outcomes.send(Outcome { key, channel: channel.clone(), failed_attempts: Some(queued.entry.attempts), monitor, detector, kind, error: Some(err), episode_start, interval, at });
                    }
                }
            }
        }
    }
}

/// The queue's next entry to try: the earliest due among those whose monitor and detector have
/// no earlier entry in the queue (ties: the oldest).
fn next_eligible(queue: &[Queued]) -> Option<usize> {
    let mut streams = BTreeSet::new();
    let mut best: Option<usize> = None;
    for (i, queued) in queue.iter().enumerate() {
        let n = &queued.entry.notification;
        if !streams.insert((n.monitor.as_str(), n.detector.as_str())) {
            continue;
        }
        if best.is_none_or(|b| queued.due < queue[b].due) {
            best = Some(i);
        }
    }
    best
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::monitors::tests::result;

    fn queued(entry: Entry, due_in: u64) -> Queued {
        Queued {
            entry,
            tries: 0,
            due: Instant::now() + Duration::from_secs(due_in),
        }
    }

    #[test]
    fn a_delivery_becomes_a_record_and_a_failed_attempt_does_not() {
        let mut outcome = Outcome {
            key: "k1".into(),
            channel: "hook".into(),
            failed_attempts: None,
            monitor: "UNK_country-Monitor".into(),
            detector: "country-anomaly-detector".into(),
            kind: crate::alert::Kind::Alert,
            error: None,
            episode_start: 60_000,
            interval: (60_000, 120_000),
            at: 125_000,
        };
        assert_eq!(
            outcome.record(),
            Some(AlertDoc {
                key: "k1".into(),
                channel: "hook".into(),
                monitor: "UNK_country-Monitor".into(),
                detector: "country-anomaly-detector".into(),
                kind: "alert".into(),
                episode_start: 60_000,
                interval_start: 60_000,
                interval_end: 120_000,
                delivered_at: 125_000,
            })
        );
        assert_eq!(outcome.record().map(|r| r.id()).as_deref(), Some("k1-hook"));
        outcome.failed_attempts = Some(1);
        assert_eq!(outcome.record(), None);
    }

    #[test]
    fn a_recovery_waits_for_its_alert_and_other_monitors_do_not()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut monitors = Monitors::new(&Spec::default_spec()?);
        let source = "source-anomaly-detector";
        let alert = monitors
            .evaluate(&result(source, 0, 0.9, 1.0))
            .entries
            .remove(0);
        let recovery = monitors
            .evaluate(&result(source, 60_000, 0.0, 1.0))
            .entries
            .remove(0);
        let other = monitors
            .evaluate(&result("country-anomaly-detector", 0, 0.9, 1.0))
            .entries
            .remove(0);
        // The alert is backing off for 30 s; the recovery (due now) waits behind it, the other
        // monitor's alert (due in 5 s) does not.
        let queue = [queued(alert, 30), queued(recovery, 0), queued(other, 5)];
        assert_eq!(next_eligible(&queue), Some(2));
        assert_eq!(next_eligible(&queue[..2]), Some(0));
        assert_eq!(next_eligible(&queue[1..2]), Some(0));
        assert_eq!(next_eligible(&[]), None);
        Ok(())
    }
}
