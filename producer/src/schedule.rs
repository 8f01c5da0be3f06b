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
//! that fall in `[s, s + d)`. Phases are back to back in event time: each starts where the
//! previous one was planned to end. A count limit or a backfill's "now" cuts the plan short;
//! a phase cut that way ends at the cut, and so does its label.
//!
//! Replicas: every producer instance plans its own schedule, so each produces the full rate
//! (n replicas produce n × rate events per second in total). Random anomaly targets are resolved
//! from the seed alone, so replicas sharing a seed and scenario inject the same field in the same
//! phase; each instance publishes its own labels (told apart by [`Label::instance`]).

use std::iter::FusedIterator;
use std::time::Duration;

use pipeline::wire::{Label, MonitoredField};
use rand::Rng;

use crate::rng::{Stream, seeded_rng};
use crate::scenario::{InvalidRate, PhaseKind, Scenario, ScenarioError, check_rate};

/// How to lay a scenario out, besides its start.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// The `--seed`: resolves random anomaly targets.
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
    /// Start, epoch milliseconds, inclusive.
    pub start_ms: i64,
    /// End, epoch milliseconds, exclusive; `None` if the phase runs without end.
    pub end_ms: Option<i64>,
    /// Events per second.
    pub rate: f64,
    /// How many events the phase has; `None` if it runs without end.
    pub events: Option<u64>,
}

impl PlannedPhase {
    /// The timestamp of event `i` of this phase (`i` below [`Self::events`]).
    pub fn timestamp(&self, i: u64) -> i64 {
        let offset = offset_ms(i, self.rate);
        let at = self.start_ms.saturating_add(offset);
        match self.end_ms {
            Some(end) => at.min(end - 1).max(self.start_ms),
            None => at,
        }
    }

    /// The ground truth for this phase, if it is an anomaly phase with an end.
    pub fn label(&self, run_id: &str, instance: &str) -> Option<Label> {
        self.label_until(run_id, instance, i64::MAX)
    }

    /// The ground truth for this phase if output stopped at `stop_ms` (say, on shutdown): its
    /// end is the earlier of its planned end and `stop_ms`. `None` for a normal phase, or if
    /// the phase had not started by `stop_ms`.
    pub fn label_until(&self, run_id: &str, instance: &str, stop_ms: i64) -> Option<Label> {
        let field = self.anomaly?;
        let end_ms = self.end_ms.map_or(stop_ms, |end| end.min(stop_ms));
        (end_ms > self.start_ms && end_ms != i64::MAX).then(|| Label {
            run_id: run_id.to_owned(),
            instance: instance.to_owned(),
            phase: self.index,
            field,
            start_ms: self.start_ms,
            end_ms,
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
        let rates = scenario
            .phases
            .iter()
            .enumerate()
            .map(|(index, phase)| {
                phase
                    .rate
                    .or(scenario.rate)
                    .or(options.default_rate)
                    .ok_or(ScheduleError::NoRate { phase: index })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        // Resolve every random target before any cut, so a phase's target never depends on
        // where a count or a backfill ends the plan.
        let mut rng = seeded_rng(options.seed, Stream::Schedule, "");
        let targets: Vec<Option<MonitoredField>> = scenario
            .phases
            .iter()
            .map(|phase| match phase.kind {
                PhaseKind::Normal => None,
                PhaseKind::Anomaly(field) => Some(field),
                PhaseKind::RandomAnomaly => {
                    let pick = rng.random_range(0..MonitoredField::ALL.len());
                    MonitoredField::ALL.get(pick).copied()
                }
            })
            .collect();

        let mut phases = Vec::with_capacity(scenario.phases.len());
        let mut cursor = start_ms;
        let mut remaining = options.count;
        for (index, phase) in scenario.phases.iter().enumerate() {
            let (rate, anomaly) = (rates[index], targets[index]);
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
            let mut events = end_ms.map(|end| events_within(end - cursor, rate));
            if let Some(left) = remaining {
                if events.is_none_or(|n| n > left) {
                    // The count ends the plan inside this phase: it ends just after its last
                    // event, where the next one would have been.
                    let after_last = offset_ms(left, rate).max(offset_ms(left - 1, rate) + 1);
                    let cut = cursor.saturating_add(after_last);
                    end_ms = Some(end_ms.map_or(cut, |end| end.min(cut)));
                    events = Some(left);
                }
                remaining = Some(left - events.unwrap_or(left));
            }
            phases.push(PlannedPhase {
                index,
                anomaly,
                start_ms: cursor,
                end_ms,
                rate,
                events,
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

    /// The ground truth: one label per anomaly phase with an end, in phase order.
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
            let event = Event {
                timestamp_ms: phase.timestamp(self.next),
                anomaly: phase.anomaly,
                phase: phase.index,
            };
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

/// Milliseconds from a phase's start to its event `i` at `rate` events/s: `⌊i · 1000 / rate⌋`.
///
/// The tiny relative nudge makes products that are whole numbers in decimal (3 events at 0.3/s,
/// say) land on that whole number despite binary rounding; it is far below a millisecond.
fn offset_ms(i: u64, rate: f64) -> i64 {
    let exact = i as f64 * 1000.0 / rate;
    // `as` saturates for out-of-range floats.
    (exact * (1.0 + 1e-12)).floor() as i64
}

/// How many events at `rate` events/s fall in a span of `span_ms`: `⌈rate · span / 1000⌉`,
/// with the same nudge as [`offset_ms`] in the other direction.
fn events_within(span_ms: i64, rate: f64) -> u64 {
    let exact = span_ms as f64 * rate / 1000.0;
    (exact * (1.0 - 1e-12)).ceil() as u64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scenario::Phase;

    const T0: i64 = 1_700_000_000_000;
    const MINUTE: Duration = Duration::from_secs(60);

    fn example() -> Scenario {
        Scenario::new(
            "five-fields",
            Some(50.0),
            vec![
                Phase::normal(2 * MINUTE),
                Phase::anomaly(MonitoredField::Country, 3 * MINUTE).with_rate(80.0),
                Phase::normal(MINUTE),
                Phase::random_anomaly(MINUTE),
            ],
        )
        .expect("valid")
    }

    fn options() -> Options {
        Options {
            seed: 42,
            ..Options::default()
        }
    }

    /// Checks the events of `schedule` against its phases: in order, inside their phase's
    /// span, as many as planned, evenly spread.
    fn check_events(schedule: &Schedule) -> Vec<Event> {
        let events: Vec<Event> = schedule.events().collect();
        assert!(
            events
                .windows(2)
                .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
        );
        for phase in schedule.phases() {
            let mine: Vec<&Event> = events.iter().filter(|e| e.phase == phase.index).collect();
            assert_eq!(
                Some(mine.len() as u64),
                phase.events,
                "phase {}",
                phase.index
            );
            let end = phase.end_ms.expect("finite");
            for event in &mine {
                assert!((phase.start_ms..end).contains(&event.timestamp_ms));
                assert_eq!(event.anomaly, phase.anomaly);
            }
            assert_eq!(mine.first().map(|e| e.timestamp_ms), Some(phase.start_ms));
            let spacing = 1000.0 / phase.rate;
            for pair in mine.windows(2) {
                let gap = (pair[1].timestamp_ms - pair[0].timestamp_ms) as f64;
                assert!(
                    (gap - spacing).abs() < 1.0,
                    "gap {gap} at {} /s",
                    phase.rate
                );
            }
        }
        events
    }

    #[test]
    fn phases_have_rate_times_duration_events_back_to_back() {
        let schedule = Schedule::live(&example(), T0, &options()).expect("valid");
        let counts: Vec<Option<u64>> = schedule.phases().iter().map(|p| p.events).collect();
        assert_eq!(
            counts,
            [Some(6_000), Some(14_400), Some(3_000), Some(3_000)]
        );
        let starts: Vec<i64> = schedule.phases().iter().map(|p| p.start_ms).collect();
        assert_eq!(starts, [T0, T0 + 120_000, T0 + 300_000, T0 + 360_000]);
        assert_eq!(schedule.end_ms(), Some(T0 + 420_000));
        assert_eq!(schedule.total_events(), Some(26_400));
        let events = check_events(&schedule);
        assert_eq!(events.len(), 26_400);
        assert_eq!(schedule.events().size_hint(), (26_400, Some(26_400)));
    }

    #[test]
    fn fractional_rates_and_durations_round_up_to_the_events_inside_the_span() {
        let scenario = Scenario::new(
            "odd",
            None,
            vec![
                Phase::normal(Duration::from_secs(3)).with_rate(2.5),
                Phase::normal(Duration::from_secs(10)).with_rate(0.3),
                Phase::normal(Duration::from_millis(1_000)).with_rate(3.0),
                Phase::normal(Duration::from_millis(10)).with_rate(5_000.0),
            ],
        )
        .expect("valid");
        let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
        let counts: Vec<Option<u64>> = schedule.phases().iter().map(|p| p.events).collect();
        assert_eq!(counts, [Some(8), Some(3), Some(3), Some(50)]);
        check_events(&schedule);
        let second: Vec<i64> = schedule
            .events()
            .filter(|e| e.phase == 1)
            .map(|e| e.timestamp_ms)
            .collect();
        assert_eq!(second, [T0 + 3_000, T0 + 6_333, T0 + 9_666]);
    }

    #[test]
    fn labels_span_exactly_the_anomaly_phases() {
        let schedule = Schedule::live(&example(), T0, &options()).expect("valid");
        let labels = schedule.labels("run-7", "producer-1");
        assert_eq!(labels.len(), 2);
        assert_eq!(
            labels[0],
            Label {
                run_id: "run-7".into(),
                instance: "producer-1".into(),
                phase: 1,
                field: MonitoredField::Country,
                start_ms: T0 + 120_000,
                end_ms: T0 + 300_000,
            }
        );
        let last = &schedule.phases()[3];
        assert_eq!((labels[1].phase, labels[1].start_ms), (3, last.start_ms));
        assert_eq!(Some(labels[1].end_ms), last.end_ms);
        assert_eq!(Some(labels[1].field), last.anomaly);
    }

    #[test]
    fn random_targets_are_deterministic_under_the_seed_and_cover_all_fields() {
        let scenario = Scenario::random_anomaly(MINUTE, 1.0).expect("valid");
        let target = |seed| {
            let options = Options {
                seed,
                ..Options::default()
            };
            Schedule::live(&scenario, T0, &options)
                .expect("valid")
                .phases()[0]
                .anomaly
        };
        assert_eq!(target(42), target(42));
        let picked: std::collections::HashSet<_> = (0..100).map(target).collect();
        assert_eq!(picked.len(), 5, "{picked:?}");
        assert!(picked.iter().all(Option::is_some));
    }

    #[test]
    fn a_count_stops_the_plan_and_cuts_the_label() {
        let options = Options {
            count: Some(7_000),
            ..options()
        };
        let schedule = Schedule::live(&example(), T0, &options).expect("valid");
        assert_eq!(schedule.phases().len(), 2);
        assert_eq!(schedule.phases()[1].events, Some(1_000));
        // 1,000 events at 80/s take 12.5 s: the cut phase ends where event 1,001 would be.
        assert_eq!(schedule.phases()[1].end_ms, Some(T0 + 120_000 + 12_500));
        let labels = schedule.labels("r", "i");
        assert_eq!((labels.len(), labels[0].end_ms), (1, T0 + 132_500));
        assert_eq!(check_events(&schedule).len(), 7_000);

        let open = Scenario::normal(10.0, None).expect("valid");
        let options = Options {
            count: Some(25),
            ..Options::default()
        };
        let schedule = Schedule::live(&open, T0, &options).expect("valid");
        assert_eq!(schedule.events().count(), 25);
        assert_eq!(schedule.end_ms(), Some(T0 + 2_500));
    }

    #[test]
    fn an_open_ended_scenario_runs_without_end() {
        let open = Scenario::normal(1_000.0, None).expect("valid");
        let schedule = Schedule::live(&open, T0, &options()).expect("valid");
        assert_eq!(schedule.total_events(), None);
        assert_eq!(schedule.events().size_hint(), (usize::MAX, None));
        let last = schedule.events().nth(1_000_000).expect("keeps going");
        assert_eq!(last.timestamp_ms, T0 + 1_000_000);
        assert!(schedule.labels("r", "i").is_empty());
    }

    #[test]
    fn a_backfill_covers_exactly_the_span_before_now() {
        let now = T0 + 3_600_000;
        let open = Scenario::normal(20.0, None).expect("valid");
        let schedule =
            Schedule::backfill(&open, now, Some(60 * MINUTE), &options()).expect("valid");
        let events = check_events(&schedule);
        assert_eq!(events.len(), 72_000);
        assert_eq!(events.first().map(|e| e.timestamp_ms), Some(T0));
        assert_eq!(events.last().map(|e| e.timestamp_ms), Some(now - 50));
        assert_eq!(
            (schedule.start_ms(), schedule.end_ms()),
            (Some(T0), Some(now))
        );
    }

    #[test]
    fn a_scenario_backfill_is_laid_over_the_past_with_its_labels() {
        let now = T0 + 420_000;
        let schedule = Schedule::backfill(&example(), now, None, &options()).expect("valid");
        let live = Schedule::live(&example(), T0, &options()).expect("valid");
        assert_eq!(schedule, live);

        // A shorter span cuts the tail: the last anomaly phase is cut at now, and so is its label.
        let now = T0 + 400_000;
        let schedule =
            Schedule::backfill(&example(), now, Some(Duration::from_secs(400)), &options())
                .expect("valid");
        assert_eq!(schedule.start_ms(), Some(now - 400_000));
        assert_eq!(schedule.end_ms(), Some(now));
        let labels = schedule.labels("r", "i");
        assert_eq!(labels[1].end_ms, now);
        assert_eq!(check_events(&schedule).last().map(|e| e.phase), Some(3));
    }

    #[test]
    fn impossible_plans_are_errors_that_say_why() {
        let open = Scenario::normal(1.0, None).expect("valid");
        let finite = example();
        let cases: Vec<(Result<Schedule, ScheduleError>, &str)> = vec![
            (
                Schedule::backfill(&open, T0, None, &options()),
                "without a span",
            ),
            (
                Schedule::backfill(&open, T0, Some(Duration::ZERO), &options()),
                "span `0`",
            ),
            (
                Schedule::backfill(&finite, T0, Some(60 * MINUTE), &options()),
                "backfill span 3600000 ms is longer than scenario `five-fields` (420000 ms)",
            ),
            (
                Schedule::live(
                    &open,
                    T0,
                    &Options {
                        count: Some(0),
                        ..options()
                    },
                ),
                "invalid count `0`",
            ),
            (
                Schedule::live(
                    &open,
                    T0,
                    &Options {
                        default_rate: Some(-5.0),
                        ..options()
                    },
                ),
                "default rate: invalid rate `-5`",
            ),
            (
                Schedule::live(&finite, i64::MAX - 10, &options()),
                "does not fit",
            ),
            (
                Schedule::backfill(&finite, i64::MIN + 10, None, &options()),
                "does not fit",
            ),
        ];
        for (result, says) in cases {
            let error = result.expect_err(says).to_string();
            assert!(error.contains(says), "{error}");
        }
        // An open-ended plan near the end of time saturates instead of failing.
        let late = Schedule::live(&open, i64::MAX - 10, &options()).expect("valid");
        assert!(
            late.events()
                .take(100)
                .all(|e| e.timestamp_ms >= i64::MAX - 10)
        );

        let no_rate = Scenario::new("s", None, vec![Phase::normal(MINUTE)]).expect("valid");
        let error = Schedule::live(&no_rate, T0, &options()).expect_err("no rate");
        assert!(
            error.to_string().contains("phases[0] has no rate"),
            "{error}"
        );
        let options = Options {
            default_rate: Some(4.0),
            ..options()
        };
        let schedule = Schedule::live(&no_rate, T0, &options).expect("the default applies");
        assert_eq!(schedule.total_events(), Some(240));
    }

    #[test]
    fn label_until_cuts_a_stopped_phase() {
        let schedule = Schedule::live(&example(), T0, &options()).expect("valid");
        let phase = &schedule.phases()[1];
        let label = phase.label_until("r", "i", T0 + 200_000).expect("started");
        assert_eq!((label.start_ms, label.end_ms), (T0 + 120_000, T0 + 200_000));
        assert_eq!(phase.label_until("r", "i", T0 + 100_000), None);
        assert_eq!(schedule.phases()[0].label("r", "i"), None);
    }

    proptest! {
        #[test]
        fn every_event_falls_inside_its_phase(
            rate in 0.01_f64..20_000.0,
            duration_ms in 1_u64..200_000,
            start in -1_000_000_000_i64..4_000_000_000_000,
        ) {
            let scenario = Scenario::new(
                "p",
                Some(rate),
                vec![Phase::normal(Duration::from_millis(duration_ms)), Phase::normal(MINUTE)],
            ).expect("valid");
            let schedule = Schedule::live(&scenario, start, &Options::default()).expect("valid");
            let phase = schedule.phases()[0];
            let expected = (rate * duration_ms as f64 / 1000.0).ceil() as u64;
            prop_assert!(phase.events.is_some_and(|n| n.abs_diff(expected) <= 1));
            let mut previous = i64::MIN;
            for event in schedule.events().take_while(|e| e.phase == 0) {
                prop_assert!((start..start + duration_ms as i64).contains(&event.timestamp_ms));
                prop_assert!(event.timestamp_ms >= previous);
                previous = event.timestamp_ms;
            }
        }
    }
}
