//! The scoring loop's state and its three steps: take a record (dead-letter it if unreadable,
//! drop a replayed copy, add it to every detector's open interval), close and score the
//! intervals the watermark passed (results, anomalies, notifications), and save a checkpoint.
//! Every step that writes anything first asks the [`Tenure`] whether this replica still holds
//! the lease; a step returns [`Stopped`] when the session must end (the lease is lost, shutdown,
//! or the broker refused an output for good).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opensearch::OpenSearch;
use pipeline::telemetry::Health;
use pipeline::wire::DeadLetterReason;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use crate::alert::Alerting;
use crate::checkpoints::{self, Saved, Version};
use crate::dedupe::{self, Seen};
use crate::event_time::{Admission, EventClock};
use crate::features::Plan;
use crate::page::Board;
use crate::projection::{self, Columns, Contributions, Read};
use crate::settings::Settings;

use super::assign::Assigned;
use super::checkpoint::{self, Writer};
use super::clock::now_ms;
use super::live::Live;
use super::metrics::Metrics;
use super::no_data;
use super::outputs::{Outputs, Stopped};
use super::readers::Waiting;
use super::results::Unwritten;
use super::scoring;
use super::tenure::Tenure;

/// The loop's state.
pub(super) struct Stage<'a> {
    pub(super) settings: &'a Settings,
    pub(super) client: &'a OpenSearch,
    pub(super) health: &'a Health,
    pub(super) metrics: &'a Metrics,
    /// The live page's state: fed each round's results and each delivery outcome.
    pub(super) board: &'a Board,
    pub(super) tenure: &'a Tenure,
    pub(super) assigned: &'a Assigned,
    pub(super) outputs: Outputs,
    pub(super) detectors: Vec<Live>,
    /// The paths the detectors read, compiled from their specs in the same order (shared with
    /// the record it reads while the detectors take it).
    pub(super) plan: Arc<Plan>,
    /// With `detector.input: projected`, where this session's columns are in the batches.
    pub(super) columns: Option<Columns>,
    /// Monitors, their outbox (checkpointed with the stream) and the channel workers.
    pub(super) alerts: Alerting,
    /// A delivery was settled since the last checkpoint: save one at the next tick.
    pub(super) checkpoint_soon: bool,
    /// Per-partition event time: which records are scored, and the watermark.
    pub(super) clock: EventClock,
    /// Ids of the records in open intervals: a replayed copy is counted once.
    pub(super) seen: Seen,
    /// The next offset to read per partition: advanced by every record taken, saved in
    /// checkpoints together with the windows those records went into.
    pub(super) positions: BTreeMap<i32, i64>,
    /// The checkpoint's version this holder last wrote: the next save is conditional on it.
    pub(super) version: Version,
    /// When a future record was last logged (they are counted always, logged at most every 10 s).
    pub(super) last_future_report: Option<Instant>,
    /// Results not yet written (OpenSearch was unavailable).
    pub(super) unwritten: Unwritten,
    pub(super) last_checkpoint: Instant,
    /// When stored entity models were last expired ([`super::remember`]).
    pub(super) last_forget: Option<Instant>,
}

impl Stage<'_> {
    /// Takes one Kafka record of `partition`: an enriched record, or a batch of projected ones
    /// when the input is `projected` ([`crate::projection`]). What cannot be read is
    /// dead-lettered.
    pub(super) async fn take(
        &mut self,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Result<(), Stopped> {
        self.positions.insert(partition, offset + 1);
        let Some(mut columns) = self.columns.take() else {
            return self.take_record(partition, offset, payload).await;
        };
        let taken = match projection::decode(payload) {
            Ok(batch) => {
                if let Some(missing) = columns.align(&batch.columns)
                    && !missing.is_empty()
                {
                    tracing::error!(
                        ?missing,
                        "The readers project none of these columns, so their detectors count nothing: run the readers (`logwarden-detector read`) with the same spec as the detectors."
                    );
                }
                self.metrics.records_in.inc_by(batch.len() as u64);
                let now = now_ms();
                for (i, (&time, &id)) in batch.times.iter().zip(&batch.ids).enumerate() {
                    let row = columns.row(&batch, i);
                    self.add((partition, offset), (time, now), id, &row);
                }
                Ok(())
            }
            Err(detail) => {
                self.metrics.unreadable.inc();
                let why = (DeadLetterReason::WrongType, detail);
                self.outputs
                    .dead_letter((partition, offset), payload, why)
                    .await
            }
        };
        self.columns = Some(columns);
        taken
    }

    /// Takes one enriched record: dead-letters it when it cannot be read, and otherwise adds it.
    async fn take_record(
        &mut self,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Result<(), Stopped> {
        self.metrics.records_in.inc();
        let plan = Arc::clone(&self.plan);
        let record = match plan.read(payload) {
            Ok(record) => record,
            Err(why) => {
                self.metrics.unreadable.inc();
                return self
                    .outputs
                    .dead_letter((partition, offset), payload, why)
                    .await;
            }
        };
        let id = plan.event_id(&record).map(dedupe::hash);
        let read = Read {
            plan: &plan,
            record: &record,
        };
        self.add((partition, offset), (record.time, now_ms()), id, &read);
        Ok(())
    }

    /// Adds a record of `partition` at `offset`, stamped `time` and read at `now` (its id
    /// hashed: `id`), to every detector's open interval, unless it is stamped too far ahead, or
    /// is a copy of one already counted in an open interval. Its contributions come from
    /// `record`, by column in the order the plan lists them: each detector, then each of its
    /// extra features.
    fn add(
        &mut self,
        (partition, offset): (i32, i64),
        (time, now): (i64, i64),
        id: Option<u64>,
        record: &impl Contributions,
    ) {
        if self.clock.admit(partition, time, now) == Admission::Future {
            self.future(partition, offset, time, now);
            return;
        }
        if let Some(id) = id
            && !self.seen.first_hashed(id, time)
        {
            self.metrics.duplicates.inc();
            return;
        }
        let replay = self.assigned.is_replay(partition, offset);
        let mut column = 0..;
        for live in &mut self.detectors {
            let Some(main) = column.next() else {
                break;
            };
            // Extra features have their own filters; a record late for them is late for the
            // main window too, and counted there.
            for extra in &mut live.extra {
                let Some(at) = column.next() else {
                    break;
                };
                if let Some(value) = record.value(at, &extra.view.feature) {
                    extra.window.add(time, value);
                }
            }
            let Some(mut value) = record.value(main, &live.spec.feature) else {
                continue;
            };
            // A new-values detector counts the records whose value it had not seen.
            if let Some(novelty) = &mut live.novelty {
                value = match record.text(main) {
                    Some(seen) => {
                        f64::from(u8::from(novelty.see(live.window.align(time), time, &seen)))
                    }
                    None => 0.0,
                };
            }
            if !live.window.add(time, value) {
                let counter = if replay {
                    &self.metrics.replayed
                } else {
                    &self.metrics.late
                };
                counter.with_label_values(&[&live.spec.name]).inc();
                continue;
            }
            if let Some(entities) = &mut live.entities
                && let Some(entity) = record.entity(main)
                && live.spec.category.as_ref().is_none_or(|c| c.holds(&entity))
            {
                entities.add(live.window.align(time), &entity, value);
            }
        }
    }

    /// Counts a record stamped beyond the future tolerance (and logs it, at most every 10 s).
    fn future(&mut self, partition: i32, offset: i64, time: i64, now: i64) {
        self.metrics.future.inc();
        if self
            .last_future_report
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(10))
        {
            self.last_future_report = Some(Instant::now());
            tracing::warn!(
                partition,
                offset,
                event_time = time,
                horizon = self.clock.horizon(now),
                total = self.metrics.future.get(),
                "A record is stamped further in the future than detector.future_tolerance_ms allows: not scored (check the sender's clock)."
            );
        }
    }

    /// Scores every interval the watermark closed; writes results, publishes anomalies, and
    /// hands notifications to the delivery task. `idle_now` is the clock when the stream is idle.
    pub(super) async fn close_intervals(&mut self, idle_now: Option<i64>) -> Result<(), Stopped> {
        let Some(watermark) = self.clock.watermark(idle_now) else {
            return Ok(());
        };
        self.recall_entities(watermark).await;
        let started = now_ms();
        let mut results = Vec::new();
        for live in &mut self.detectors {
            results.extend(scoring::score(live, watermark, started, self.metrics));
        }
        if !results.is_empty() {
            no_data::publish(
                self.detectors
                    .iter()
                    .map(|d| (d.spec.name.as_str(), d.spec.no_data_after)),
                self.metrics,
                (self.health, &super::no_data_note(self.settings.part)),
            );
        }
        if let Some(open) = self
            .detectors
            .iter()
            .map(|d| d.window.next())
            .min()
            .flatten()
        {
            self.seen.forget_before(open);
        }
        self.store_evicted_entities().await;
        self.forget_old_entities().await;
        if results.is_empty() && self.unwritten.is_empty() {
            return Ok(());
        }
        if !self.tenure.held() {
            return Err(Stopped);
        }
        self.board.scored(&results);
        for result in &results {
            self.alerts.evaluate(result);
            if result.anomaly_grade > 0.0 {
                self.outputs.anomaly(result).await?;
            }
        }
        self.unwritten
            .write(
                results,
                self.client,
                &self.settings.spec.results,
                self.health,
            )
            .await;
        Ok(())
    }

    /// Saves the checkpoint: once every result is written and every anomaly and dead letter
    /// sent so far is delivered, so a restart from it never skips one. Conditional on this
    /// holder's last version: refused ([`Stopped`]) once another replica took it over.
    pub(super) async fn checkpoint(&mut self) -> Result<(), Stopped> {
        // Brought forward once per delivery; a failed save is retried on the usual schedule.
        self.checkpoint_soon = false;
        if !self.unwritten.is_empty() {
            return Ok(());
        }
        self.outputs.settle().await?;
        if !self.tenure.held() {
            return Err(Stopped);
        }
        let writer = Writer {
            holder: self.tenure.holder(),
            generation: self.tenure.generation(),
        };
        let doc = match checkpoint::build(
            writer,
            &self.detectors,
            (self.settings.input_topic(), &self.positions),
            self.alerts.monitors(),
            &self.seen,
            now_ms(),
        ) {
            Ok(doc) => doc,
            Err(err) => {
                tracing::error!(%err, "A checkpoint cannot be serialized; the next one tries again.");
                return Ok(());
            }
        };
        let slot = (
            self.settings.spec.checkpoints.as_str(),
            self.settings.part.checkpoint_id(),
        );
        match checkpoints::save(self.client, (slot.0, &slot.1), &doc, self.version).await {
            Ok(Saved::Written(version)) => {
                self.version = version;
                self.last_checkpoint = Instant::now();
                self.metrics.checkpoints.inc();
                tracing::debug!(
                    detectors = self.detectors.len(),
                    seq_no = version.seq_no,
                    "Checkpoint saved."
                );
                Ok(())
            }
            Ok(Saved::Fenced) => {
                tracing::warn!("The checkpoint was taken over by another replica: this one stops.");
                self.tenure.lose();
                Err(Stopped)
            }
            Err(err) => {
                tracing::warn!(%err, "Saving the checkpoint failed; the next one retries.");
                Ok(())
            }
        }
    }

    /// The loop: records, partition ends, and a tick that closes intervals and checkpoints, until
    /// `session` is cancelled (shutdown or the lease lost) or a step stops it.
    pub(super) async fn run(&mut self, session: &CancellationToken) -> Result<(), Stopped> {
        let stage = self;
        let assigned = stage.assigned;
        let consumer = &assigned.consumer;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_message = Instant::now();
        // When the stream was last found caught up with a broker that answers, and whether.
        let mut probed: Option<(Instant, bool)> = None;
        // Partitions of `projected` at their end whose readers have not caught up.
        let mut waiting = Waiting::default();
        loop {
            let trusted_until = tokio::time::Instant::from_std(stage.tenure.trusted_until());
            tokio::select! {
                biased;
                () = session.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(trusted_until) => {
                    if !stage.tenure.held() {
                        return Ok(());
                    }
                }
                Some(outcome) = stage.alerts.outcome() => {
                    stage.board.delivered(&outcome);
                    // A delivery is checkpointed at the next tick: a crash re-sends less.
                    stage.checkpoint_soon |= stage.alerts.settle(outcome);
                },
                message = consumer.recv() => match message {
                    Ok(message) => {
                        last_message = Instant::now();
                        waiting.read(message.partition());
                        stage.take(message.partition(), message.offset(), message.payload().unwrap_or_default()).await?;
                    }
                    // With `projected`, a partition at its end is caught up once its readers
                    // are too (asked at the next tick).
                    Err(KafkaError::PartitionEOF(partition)) if assigned.projected() => {
                        waiting.ended(partition);
                    }
                    Err(KafkaError::PartitionEOF(partition)) => stage.clock.caught_up(partition),
                    Err(err) => tracing::warn!(%err, "Consuming failed; librdkafka retries."),
                },
                _ = tick.tick() => {
                    waiting.release(assigned, &mut stage.clock, &stage.settings.reader.group).await;
                    // An idle stream (quiet, read to its end, the broker answering): time moves on
                    // by the clock, so quiet intervals close too. Asked at most once a second.
                    let idle = if last_message.elapsed() > Duration::from_secs(1) {
                        let caught_up = match probed {
                            Some((at, caught_up)) if at.elapsed() < Duration::from_secs(1) => caught_up,
                            _ => {
                                let caught_up = assigned.caught_up().await;
                                probed = Some((Instant::now(), caught_up));
                                caught_up
                            }
                        };
                        caught_up.then(now_ms)
                    } else {
                        None
                    };
                    stage.close_intervals(idle).await?;
                    if stage.checkpoint_soon || stage.last_checkpoint.elapsed() >= stage.settings.checkpoint_every {
                        stage.checkpoint().await?;
                    }
                    stage.metrics.checkpoint_age.set(i64::try_from(stage.last_checkpoint.elapsed().as_secs()).unwrap_or(i64::MAX));
                }
            }
        }
    }
}
