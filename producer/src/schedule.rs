//! The plan in event time: when each phase of a scenario starts and ends, when each event
//! happens, which field (if any) is in anomaly, and the ground-truth labels.
//!
//! A [`Schedule`] is computed up front from a scenario, a start time and [`Options`], and then
//! iterated as [`Event`]s. It never reads the clock: the live writer paces output by comparing
//! each event's timestamp with the wall clock, and a backfill ([`Schedule::backfill`], the same
//! plan laid over the past and cut at "now") is written as fast as the sink takes it. So both
//! modes share one tested plan, and tests need no sleeping.
//!
//! Events are spread evenly, not in bursts: event `i` of a phase that starts at `s` with rate
//! `r` is at `s + ⌊i · 1000 / r⌋` ms, and a phase of duration `d` has `⌈r · d⌉` events, the ones
//! that fall in `[s, s + d)`. A rate that moves (a ramp, a sine: [`Pace`]) places event `i` where
//! the rate's integral reaches `i`, so the events thicken and thin with it, as deterministically.
//! Phases are back to back in event time: each starts where the previous one was planned to
//! end. A count limit or a backfill's "now" cuts the plan short; a phase cut that way ends at
//! the cut, and so does its label.
//!
//! An anomaly phase below full intensity marks only a share of its events anomalous, the others
//! normal, spread evenly with no random draw ([`Mix`]): a constant share `f` of a phase of `n`
//! events marks exactly `⌊n · f⌋` of them.
//!
//! An entity phase (`from: client`) gives each of its anomalous events the one client address
//! they come from, and its label that address as its `entity`; its other events name no client
//! (the generator draws one). A picked client is resolved here, from the seed's client pool
//! (`clients`), so the events and the label agree with the records.
//!
//! Labels: every anomaly phase has one (with its intensity when below 1, and its traffic when
//! its rate moves), and so does every normal phase with a duration (`kind: normal`, an empty
//! `field`), so an evaluation knows how long traffic was normal and how it moved; an open-ended
//! normal phase (plain `--rate` traffic) has none.
//!
//! Replicas: every producer instance plans its own schedule, so each produces the full rate
//! (n replicas produce n × rate events per second in total). Random anomaly targets are resolved
//! from the seed alone, so replicas sharing a seed and scenario inject the same field in the same
//! phase, and replicas sharing a seed pick the same client for an entity phase; each instance
//! publishes its own labels (told apart by [`Label::instance`]).

use std::iter::FusedIterator;
use std::net::Ipv4Addr;
use std::time::Duration;

use pipeline::wire::{Label, LabelKind, MonitoredField};
use rand::Rng;

use crate::clients::{client_pool, quiet_client};
use crate::rng::{Stream, seeded_rng};
use crate::scenario::{FromClient, InvalidRate, PhaseKind, Scenario, ScenarioError, check_rate};

mod mix;
mod pace;

pub use mix::Mix;
pub use pace::Pace;

/// How to lay a scenario out, besides its start.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// The `--seed`: resolves random anomaly targets and picked clients (`from: client`).
    pub seed: u64,
    /// Events per second per instance for phases where neither the phase nor the scenario gives
    /// a rate (precedence: phase, then scenario, then this).
    pub default_rate: Option<f64>,
    /// Stop after this many events in total (at least 1).
    pub count: Option<u64>,
}

/// Why a scenario could not be laid out. Each message is complete on its own.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The default rate is not a positive number.
    #[error("default rate: {0}")]
    DefaultRate(InvalidRate),
    /// A phase's rate is a multiple of a scenario rate that no one gave.
    #[error(
        "phases[{phase}]'s rate is a multiple of the scenario's rate, and the scenario has none: \
         give the scenario a `rate:` (events per second), or give a default rate"
    )]
    NoBaseRate {
        /// The phase's index.
        phase: usize,
    },
    /// A phase has no rate from anywhere.
    #[error(
        "phases[{phase}] has no rate: give the phase or the scenario a `rate:`, or give a \
         default rate (events per second)"
    )]
    NoRate {
        /// The phase's index.
        phase: usize,
    },
    /// A count of 0.
    #[error("invalid count `0`: the count must be at least 1")]
    ZeroCount,
    /// A backfill without a span of a scenario without end.
    #[error(
        "cannot backfill scenario `{name}` without a span: it runs without end; give the span \
         to backfill, e.g. 60m"
    )]
    OpenEndedBackfill {
        /// The scenario.
        name: String,
    },
    /// A backfill span of 0.
    #[error("invalid backfill span `0`: the span must be longer than 0, e.g. 60m")]
    ZeroSpan,
    /// A backfill span longer than the (finite) scenario it lays over the past.
    #[error(
        "backfill span {span_ms} ms is longer than scenario `{name}` ({scenario_ms} ms); \
         shorten the span, or lengthen or end the scenario with an open-ended normal phase"
    )]
    SpanLongerThanScenario {
        /// The scenario.
        name: String,
        /// The span asked for.
        span_ms: i64,
        /// The scenario's total duration.
        scenario_ms: i64,
    },
    /// Times outside what epoch milliseconds in an `i64` can hold.
    #[error("the schedule does not fit in epoch milliseconds (start {start_ms} ms)")]
    OutOfRange {
        /// The start asked for.
        start_ms: i64,
    },
}

/// One event to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event time, epoch milliseconds.
    pub timestamp_ms: i64,
    /// The field in anomaly, if any.
    pub anomaly: Option<MonitoredField>,
    /// The indicator a source's phase injects, if any.
    pub inject: Option<&'static str>,
    /// The client an anomalous event of an entity phase comes from; `None` (a client drawn
    /// from the pool) for every other event.
    pub client: Option<Ipv4Addr>,
    /// Index of the phase in the scenario.
    pub phase: usize,
}

/// One phase, laid out in event time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedPhase {
    /// Index of the phase in the scenario (the label's `phase`).
    pub index: usize,
    /// The field in anomaly (random targets resolved), or `None` for normal traffic.
    pub anomaly: Option<MonitoredField>,
    /// The indicator a source's phase injects, or `None`.
    pub inject: Option<&'static str>,
    /// The one client the phase's anomalous events come from (picked clients resolved), or
    /// `None`; the label's `entity`.
    pub entity: Option<Ipv4Addr>,
    /// Start, epoch milliseconds, inclusive.
    pub start_ms: i64,
    /// End, epoch milliseconds, exclusive; `None` if the phase runs without end.
    pub end_ms: Option<i64>,
    /// Events per second over the phase.
    pub rate: Pace,
    /// Which of its events carry the anomaly ([`Mix::FULL`] for a normal phase).
    pub mix: Mix,
    /// How many events the phase has; `None` if it runs without end.
    pub events: Option<u64>,
    /// Whether the scenario gave the phase no duration (a last, normal phase): such a phase
    /// has no label, even when a count or a backfill cuts it.
    pub open_ended: bool,
}

impl PlannedPhase {
    /// The timestamp of event `i` of this phase (`i` below [`Self::events`]).
    pub fn timestamp(&self, i: u64) -> i64 {
        let offset = self.rate.offset_ms(i);
        let at = self.start_ms.saturating_add(offset);
        match self.end_ms {
            Some(end) => at.min(end - 1).max(self.start_ms),
            None => at,
        }
    }

    /// Event `i` of this phase (`i` below [`Self::events`]): its time, and its anomaly (and
    /// client, in an entity phase) if [`Self::mix`] marks it.
    pub fn event(&self, i: u64) -> Event {
        let marked = (self.anomaly.is_some() || self.inject.is_some()) && self.mix.anomalous(i);
        Event {
            timestamp_ms: self.timestamp(i),
            anomaly: self.anomaly.filter(|_| marked),
            inject: self.inject.filter(|_| marked),
            client: self.entity.filter(|_| marked),
            phase: self.index,
        }
    }

    /// The ground truth for this phase, if it has an end (an anomaly phase, or a normal phase
    /// with a duration).
    pub fn label(&self, run_id: &str, instance: &str) -> Option<Label> {
        self.label_until(run_id, instance, i64::MAX)
    }

    /// The ground truth for this phase if output stopped at `stop_ms` (say, on shutdown): its
    /// end is the earlier of its planned end and `stop_ms`. `None` for an open-ended normal
    /// phase, or if the phase had not started by `stop_ms`.
    ///
    /// An anomaly phase's label names its field or indicator, with its intensity when below 1
    /// and its client as `entity` when it comes from one;
    /// a normal phase's has [`LabelKind::Normal`] and an empty field. Either has its traffic
    /// (`ramp 20→60/s`) when its rate moves.
    pub fn label_until(&self, run_id: &str, instance: &str, stop_ms: i64) -> Option<Label> {
        let (kind, field, intensity) = match (self.anomaly, self.inject) {
            (Some(field), _) => (LabelKind::Anomaly, field.name(), self.mix.intensity()),
            (None, Some(indicator)) => (LabelKind::Anomaly, indicator, self.mix.intensity()),
            (None, None) if self.open_ended => return None,
            (None, None) => (LabelKind::Normal, "", None),
        };
        let end_ms = self.end_ms.map_or(stop_ms, |end| end.min(stop_ms));
        (end_ms > self.start_ms && end_ms != i64::MAX).then(|| Label {
            run_id: run_id.to_owned(),
            instance: instance.to_owned(),
            phase: self.index,
            field: field.to_owned(),
            start_ms: self.start_ms,
            end_ms,
            kind,
            intensity,
            traffic: self.rate.traffic(),
            entity: self
                .entity
                .filter(|_| kind == LabelKind::Anomaly)
                .map(|address| address.to_string()),
        })
    }
}

/// A scenario laid out in event time. Iterate it (by reference or by value) for its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    phases: Vec<PlannedPhase>,
}

impl Schedule {
    /// The plan for live output starting at `start_ms` (normally now).
    pub fn live(
        scenario: &Scenario,
        start_ms: i64,
        options: &Options,
    ) -> Result<Self, ScheduleError> {
        Self::plan(scenario, start_ms, None, options)
    }

    /// The plan for a backfill: `scenario` laid over the past from `now_ms - span` and cut at
    /// `now_ms`, so events cover exactly `[now_ms - span, now_ms)`.
    ///
    /// Without a span, the span is the scenario's duration (an error if it has no end). A span
    /// longer than a finite scenario is an error (there would be a gap before now); a shorter
    /// one cuts the scenario's tail.
    pub fn backfill(
        scenario: &Scenario,
        now_ms: i64,
        span: Option<Duration>,
        options: &Options,
    ) -> Result<Self, ScheduleError> {
        scenario.validate()?;
        let out_of_range = || ScheduleError::OutOfRange { start_ms: now_ms };
        let to_ms = |d: Duration| i64::try_from(d.as_millis()).map_err(|_| out_of_range());
        let scenario_ms = scenario.duration().map(to_ms).transpose()?;
        let span_ms = match span {
            None => scenario_ms.ok_or_else(|| ScheduleError::OpenEndedBackfill {
                name: scenario.name.clone(),
            })?,
            Some(span) => {
                let span_ms = to_ms(span)?;
                if span_ms == 0 {
                    return Err(ScheduleError::ZeroSpan);
                }
                if let Some(scenario_ms) = scenario_ms
                    && scenario_ms < span_ms
                {
                    return Err(ScheduleError::SpanLongerThanScenario {
                        name: scenario.name.clone(),
                        span_ms,
                        scenario_ms,
                    });
                }
                span_ms
            }
        };
        let start_ms = now_ms.checked_sub(span_ms).ok_or_else(out_of_range)?;
        Self::plan(scenario, start_ms, Some(now_ms), options)
    }

    fn plan(
        scenario: &Scenario,
        start_ms: i64,
        cut_ms: Option<i64>,
        options: &Options,
    ) -> Result<Self, ScheduleError> {
        scenario.validate()?;
        if let Some(rate) = options.default_rate {
            check_rate(rate).map_err(ScheduleError::DefaultRate)?;
        }
        if options.count == Some(0) {
            return Err(ScheduleError::ZeroCount);
        }
        let out_of_range = || ScheduleError::OutOfRange { start_ms };
        let base = scenario.rate.or(options.default_rate);
        let rates = scenario
            .phases
            .iter()
            .enumerate()
            .map(|(index, phase)| match phase.rate {
                Some(curve) => Pace::resolve(curve, base, phase.duration)
                    .ok_or(ScheduleError::NoBaseRate { phase: index }),
                None => base
                    .map(Pace::Constant)
                    .ok_or(ScheduleError::NoRate { phase: index }),
            })
            .collect::<Result<Vec<Pace>, _>>()?;
        // Resolve every random target before any cut, so a phase's target never depends on
        // where a count or a backfill ends the plan.
        let mut rng = seeded_rng(options.seed, Stream::Schedule, "");
        let targets: Vec<Option<MonitoredField>> = scenario
            .phases
            .iter()
            .map(|phase| match phase.kind {
                PhaseKind::Normal | PhaseKind::Inject(_) => None,
                PhaseKind::Anomaly(field) => Some(field),
                PhaseKind::RandomAnomaly => {
                    let pick = rng.random_range(0..MonitoredField::ALL.len());
                    MonitoredField::ALL.get(pick).copied()
                }
            })
            .collect();
        // The pool is built only when a phase picks its client: a seeded draw, no clock.
        let picks = scenario
            .phases
            .iter()
            .any(|phase| phase.from == Some(FromClient::Picked));
        let pool = if picks {
            client_pool(options.seed, scenario.clients)
        } else {
            Vec::new()
        };
        let entities: Vec<Option<Ipv4Addr>> = scenario
            .phases
            .iter()
            .enumerate()
            .map(|(index, phase)| match phase.from {
                None => None,
                Some(FromClient::Address(address)) => Some(address),
                Some(FromClient::Picked) => quiet_client(&pool, options.seed, index),
            })
            .collect();

        let mut phases = Vec::with_capacity(scenario.phases.len());
        let mut cursor = start_ms;
        let mut remaining = options.count;
        for (index, phase) in scenario.phases.iter().enumerate() {
            let (rate, anomaly) = (rates[index], targets[index]);
            let inject = match phase.kind {
                PhaseKind::Inject(indicator) => Some(indicator),
                _ => None,
            };
            let planned_end = match phase.duration {
                Some(duration) => Some(
                    i64::try_from(duration.as_millis())
                        .ok()
                        .and_then(|ms| cursor.checked_add(ms))
                        .ok_or_else(out_of_range)?,
                ),
                None => None,
            };
            let mut end_ms = match (planned_end, cut_ms) {
                (Some(end), Some(cut)) => Some(end.min(cut)),
                (end, cut) => end.or(cut),
            };
            if end_ms.is_some_and(|end| end <= cursor) {
                break;
            }
            // A ramp of the intensity runs over the events the phase would have uncut.
            let mix = match (phase.kind, planned_end) {
                (PhaseKind::Normal, _) | (_, None) => Mix::FULL,
                (_, Some(end)) => Mix::new(phase.intensity, rate.events_within(end - cursor)),
            };
            let mut events = end_ms.map(|end| rate.events_within(end - cursor));
            if let Some(left) = remaining {
                if events.is_none_or(|n| n > left) {
                    // The count ends the plan inside this phase: it ends just after its last
                    // event, where the next one would have been.
                    let after_last = rate.offset_ms(left).max(rate.offset_ms(left - 1) + 1);
                    let cut = cursor.saturating_add(after_last);
                    end_ms = Some(end_ms.map_or(cut, |end| end.min(cut)));
                    events = Some(left);
                }
                remaining = Some(left - events.unwrap_or(left));
            }
            phases.push(PlannedPhase {
                index,
                anomaly,
                inject,
                entity: entities[index],
                start_ms: cursor,
                end_ms,
                rate,
                mix,
                events,
                open_ended: phase.duration.is_none(),
            });
            match planned_end {
                Some(end) if remaining != Some(0) => cursor = end,
                _ => break,
            }
        }
        Ok(Self { phases })
    }

    /// The phases that produce events, in order (phases after a cut are left out).
    pub fn phases(&self) -> &[PlannedPhase] {
        &self.phases
    }

    /// The start of the first phase, epoch milliseconds.
    pub fn start_ms(&self) -> Option<i64> {
        self.phases.first().map(|phase| phase.start_ms)
    }

    /// The end of the last phase, epoch milliseconds (exclusive); `None` if it has no end.
    pub fn end_ms(&self) -> Option<i64> {
        self.phases.last().and_then(|phase| phase.end_ms)
    }

    /// How many events the plan has; `None` if it has no end.
    pub fn total_events(&self) -> Option<u64> {
        self.phases.iter().try_fold(0_u64, |total, phase| {
            Some(total.saturating_add(phase.events?))
        })
    }

    /// The ground truth: one label per phase with an end (every anomaly phase, and every
    /// normal phase with a duration), in phase order.
    pub fn labels(&self, run_id: &str, instance: &str) -> Vec<Label> {
        self.phases
            .iter()
            .filter_map(|phase| phase.label(run_id, instance))
            .collect()
    }

    /// The events, in time order.
    pub fn events(&self) -> Events {
        Events {
            phases: self.phases.clone(),
            phase: 0,
            next: 0,
        }
    }
}

impl IntoIterator for Schedule {
    type Item = Event;
    type IntoIter = Events;

    fn into_iter(self) -> Events {
        Events {
            phases: self.phases,
            phase: 0,
            next: 0,
        }
    }
}

impl IntoIterator for &Schedule {
    type Item = Event;
    type IntoIter = Events;

    fn into_iter(self) -> Events {
        self.events()
    }
}

/// The events of a [`Schedule`], in time order; owns its copy of the plan, so it can be moved
/// into the task that writes them.
#[derive(Debug, Clone)]
pub struct Events {
    phases: Vec<PlannedPhase>,
    /// Index into `phases` of the current phase.
    phase: usize,
    /// Index of the next event within the current phase.
    next: u64,
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            let phase = self.phases.get(self.phase)?;
            if phase.events.is_some_and(|n| self.next >= n) {
                self.phase += 1;
                self.next = 0;
                continue;
            }
            let event = phase.event(self.next);
            self.next = self.next.saturating_add(1);
            return Some(event);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.phases.iter().skip(self.phase).enumerate().try_fold(
            0_u64,
            |total, (position, phase)| {
                let done = if position == 0 { self.next } else { 0 };
                Some(total.saturating_add(phase.events?.saturating_sub(done)))
            },
        );
        match left.map(usize::try_from) {
            Some(Ok(left)) => (left, Some(left)),
            _ => (usize::MAX, None),
        }
    }
}

impl FusedIterator for Events {}

#[cfg(test)]
mod tests;
