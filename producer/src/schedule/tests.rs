use proptest::prelude::*;

use super::*;
use crate::scenario::{Intensity, Phase, RateCurve};

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

/// The labels of `schedule`'s anomaly phases (normal phases have theirs too).
fn anomaly_labels(schedule: &Schedule) -> Vec<Label> {
    schedule
        .labels("r", "i")
        .into_iter()
        .filter(|label| label.kind == LabelKind::Anomaly)
        .collect()
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
        for (i, event) in mine.iter().enumerate() {
            assert!((phase.start_ms..end).contains(&event.timestamp_ms));
            assert_eq!(**event, phase.event(i as u64));
            if phase.mix.is_full() {
                assert_eq!(event.anomaly, phase.anomaly);
            }
        }
        assert_eq!(mine.first().map(|e| e.timestamp_ms), Some(phase.start_ms));
        for pair in mine.windows(2) {
            // The gap is one over the rate between the two events, within a millisecond.
            let offset = (pair[0].timestamp_ms - phase.start_ms) as f64 / 1000.0;
            let spacing = 1000.0 / phase.rate.rate_at(offset);
            let gap = (pair[1].timestamp_ms - pair[0].timestamp_ms) as f64;
            assert!(
                (gap - spacing).abs() < 1.0 + spacing * 0.05,
                "gap {gap} at {:?}",
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
fn labels_span_exactly_the_phases() {
    let schedule = Schedule::live(&example(), T0, &options()).expect("valid");
    let all = schedule.labels("run-7", "producer-1");
    let kinds: Vec<(usize, LabelKind, &str)> = all
        .iter()
        .map(|l| (l.phase, l.kind, l.field.as_str()))
        .collect();
    assert_eq!(
        kinds[..3],
        [
            (0, LabelKind::Normal, ""),
            (1, LabelKind::Anomaly, "country"),
            (2, LabelKind::Normal, "")
        ]
    );
    assert_eq!(
        all[0],
        Label {
            run_id: "run-7".into(),
            instance: "producer-1".into(),
            phase: 0,
            field: String::new(),
            start_ms: T0,
            end_ms: T0 + 120_000,
            kind: LabelKind::Normal,
            intensity: None,
            traffic: None,
            entity: None,
        }
    );
    let labels: Vec<Label> = all
        .into_iter()
        .filter(|l| l.kind == LabelKind::Anomaly)
        .collect();
    assert_eq!(labels.len(), 2);
    assert_eq!(
        labels[0],
        Label {
            run_id: "run-7".into(),
            instance: "producer-1".into(),
            phase: 1,
            field: "country".into(),
            start_ms: T0 + 120_000,
            end_ms: T0 + 300_000,
            kind: pipeline::wire::LabelKind::Anomaly,
            intensity: None,
            traffic: None,
            entity: None,
        }
    );
    let last = &schedule.phases()[3];
    assert_eq!((labels[1].phase, labels[1].start_ms), (3, last.start_ms));
    assert_eq!(Some(labels[1].end_ms), last.end_ms);
    assert_eq!(
        Some(labels[1].field.as_str()),
        last.anomaly.map(|f| f.name())
    );
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
    assert_eq!(
        labels
            .iter()
            .map(|l| (l.kind, l.end_ms))
            .collect::<Vec<_>>(),
        [
            (LabelKind::Normal, T0 + 120_000),
            (LabelKind::Anomaly, T0 + 132_500)
        ]
    );
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
    let schedule = Schedule::backfill(&open, now, Some(60 * MINUTE), &options()).expect("valid");
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
    let schedule = Schedule::backfill(&example(), now, Some(Duration::from_secs(400)), &options())
        .expect("valid");
    assert_eq!(schedule.start_ms(), Some(now - 400_000));
    assert_eq!(schedule.end_ms(), Some(now));
    let labels = anomaly_labels(&schedule);
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
    let normal = schedule.phases()[0]
        .label("r", "i")
        .expect("a normal phase with an end");
    assert_eq!(normal.kind, LabelKind::Normal);
    // An open-ended normal phase has none, even when a count cuts it.
    let open = Scenario::normal(10.0, None).expect("valid");
    let options = Options {
        count: Some(25),
        ..options()
    };
    let cut = Schedule::live(&open, T0, &options).expect("valid");
    assert_eq!(cut.phases()[0].label("r", "i"), None);
    assert_eq!(cut.phases()[0].label_until("r", "i", T0 + 1_000), None);
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

#[test]
fn a_source_phase_is_labelled_with_its_indicator() {
    let scenario = Scenario::sourced(
        pipeline::wire::Source::Syslog,
        "brute-force",
        Some(2.0),
        vec![
            Phase::normal(MINUTE),
            Phase::inject("syslog_auth_failure", MINUTE),
        ],
    )
    .expect("valid");
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    let labels = anomaly_labels(&schedule);
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].field, "syslog_auth_failure");
    assert_eq!(
        (labels[0].start_ms, labels[0].end_ms),
        (T0 + 60_000, T0 + 120_000)
    );
    let injected: Vec<_> = schedule.events().filter_map(|e| e.inject).collect();
    assert_eq!(injected, ["syslog_auth_failure"; 120]);
    assert!(schedule.events().all(|e| e.anomaly.is_none()));
}

/// FNV-1a, 64 bits: a fingerprint that stays the same across Rust releases (unlike `std`'s
/// hasher), for comparing output with what an earlier version produced.
fn fnv1a(bytes: &[u8], hash: u64) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn an_existing_scenario_makes_the_same_records_as_before() {
    // The documented example at 5/s (2,640 records over its 7 minutes), seed 42: the
    // fingerprint of every record's JSON and every label, taken before rate curves and
    // intensities existed. A scenario without them must not change by a byte.
    let scenario = Scenario::from_yaml(
        "rate: 5\nphases:\n  - normal: 2m\n  - anomaly: country\n    duration: 3m\n    rate: 8\n  \
         - normal: 1m\n  - anomaly: random\n    duration: 1m\n",
    )
    .expect("valid");
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    let mut generator =
        crate::generate::Generator::new(42, "producer-0", "run-1").expect("valid instance");
    let mut hash = 0xcbf2_9ce4_8422_2325;
    let mut records = 0;
    for event in &schedule {
        let record = serde_json::to_vec(&generator.record(&event)).expect("serializes");
        hash = fnv1a(&record, hash);
        records += 1;
    }
    for label in schedule.labels("run-1", "producer-0") {
        if label.kind == LabelKind::Anomaly {
            hash = fnv1a(&serde_json::to_vec(&label).expect("serializes"), hash);
        }
    }
    assert_eq!(records, 2_640);
    assert_eq!(hash, 9_671_046_758_978_666_045);
}

#[test]
fn moving_rates_place_events_where_their_integral_reaches_each_one() {
    let ten_s = Duration::from_secs(10);
    // (curve, events in 10 s at a scenario rate of 50/s, the first three and the last offsets
    // in ms, events in the first half)
    let cases = [
        // 10→30/s: (10 + 30) / 2 · 10 s; event i at 2i / (10 + √(100 + 4i)) s.
        (RateCurve::ramp(10.0, 30.0), 200, [0, 99, 196], 9_966, 75),
        // 30→10/s: 30t − t² = i, so i = 199 at (30 − √104) / 2 s.
        (RateCurve::ramp(30.0, 10.0), 200, [0, 33, 66], 9_900, 125),
        // One whole period: 40 · 10 events; the rising half holds 200 + 200/π · 2 of them.
        (
            RateCurve::sine(40.0, 20.0, ten_s),
            400,
            [0, 24, 49],
            // A 40th of a second before the end, less a little: the rate is just below 40/s.
            9_974,
            264,
        ),
        // 3 · 50/s, the constant formula: ⌊i · 1000 / 150⌋.
        (RateCurve::times(3.0), 1_500, [0, 6, 13], 9_993, 750),
        (RateCurve::Constant(50.0), 500, [0, 20, 40], 9_980, 250),
    ];
    for (curve, count, first, last, first_half) in cases {
        let scenario = Scenario::new("r", Some(50.0), vec![Phase::normal(ten_s).with_rate(curve)])
            .expect("valid");
        let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
        let offsets: Vec<i64> = check_events(&schedule)
            .iter()
            .map(|e| e.timestamp_ms - T0)
            .collect();
        assert_eq!(offsets.len(), count, "{curve}");
        assert_eq!(offsets[..3], first, "{curve}");
        assert_eq!(offsets.last(), Some(&last), "{curve}");
        let half = offsets.iter().filter(|&&ms| ms < 5_000).count();
        assert_eq!(half, first_half, "{curve}");
    }
}

#[test]
fn a_count_cuts_a_ramp_where_its_next_event_would_be() {
    let scenario = Scenario::new(
        "r",
        None,
        vec![Phase::normal(Duration::from_secs(10)).with_rate(RateCurve::ramp(10.0, 30.0))],
    )
    .expect("valid");
    let options = Options {
        count: Some(100),
        ..options()
    };
    let schedule = Schedule::live(&scenario, T0, &options).expect("valid");
    // Event 100 of the ramp is at 200 / (10 + √500) s = 6.18 s.
    assert_eq!(schedule.end_ms(), Some(T0 + 6_180));
    assert_eq!(check_events(&schedule).len(), 100);
}

#[test]
fn a_subtle_anomaly_marks_exactly_its_share_and_a_ramp_rises() {
    let five = 5 * MINUTE;
    let scenario = Scenario::new(
        "subtle",
        Some(50.0),
        vec![
            Phase::anomaly(MonitoredField::Country, five).with_intensity(0.05),
            Phase::anomaly(MonitoredField::HttpStatus, five)
                .with_intensity(Intensity::ramp(0.0, 0.3)),
        ],
    )
    .expect("valid");
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    let events = check_events(&schedule);
    let marked = |phase: usize| -> Vec<usize> {
        events
            .iter()
            .filter(|e| e.phase == phase)
            .enumerate()
            .filter(|(_, e)| e.anomaly.is_some())
            .map(|(i, _)| i)
            .collect()
    };
    // ⌊15,000 · 0.05⌋, evenly: every 20th event from the 20th.
    let country = marked(0);
    assert_eq!(country.len(), 750);
    assert_eq!(country[..3], [19, 39, 59]);
    assert!(
        events
            .iter()
            .filter(|e| e.phase == 0)
            .all(|e| e.anomaly.is_none_or(|f| f == MonitoredField::Country))
    );
    // ⌊15,000 · 0.15⌋, rising minute by minute.
    let status = marked(1);
    assert_eq!(status.len(), 2_250);
    let per_minute: Vec<usize> = (0..5)
        .map(|m| status.iter().filter(|&&i| i / 3_000 == m).count())
        .collect();
    assert_eq!(per_minute, [90, 270, 450, 630, 810]);

    // The same seed gives the same records; the unmarked ones are normal records.
    let mut generator =
        crate::generate::Generator::new(42, "producer-0", "run-1").expect("valid instance");
    let unknown = events
        .iter()
        .filter(|e| e.phase == 0)
        .map(|e| generator.record(e))
        .filter(|r| !["US", "UK", "IN"].contains(&r.http_request.country.as_str()))
        .count();
    // About 750 · 8/8.2 from the anomaly's weights and 14,250 · 0.004 from the normal ones.
    assert!(
        (700..=880).contains(&unknown),
        "{unknown} unknown countries"
    );
}

#[test]
fn every_phase_is_labelled_with_its_intensity_and_traffic() {
    let scenario = Scenario::from_yaml(include_str!("../../scenarios/surge-and-subtle.yaml"))
        .expect("the shipped example is valid");
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    assert_eq!(
        schedule
            .phases()
            .iter()
            .map(|p| p.events)
            .collect::<Vec<_>>(),
        [30_000, 45_000, 30_000, 15_000, 15_000, 15_000, 15_000].map(Some)
    );
    let labels = schedule.labels("run-7", "producer-1");
    /// A label's kind, field, intensity, traffic and length in minutes.
    type Seen<'a> = (LabelKind, &'a str, Option<f64>, Option<&'a str>, i64);
    let seen: Vec<Seen> = labels
        .iter()
        .map(|l| {
            let minutes = (l.end_ms - l.start_ms) / 60_000;
            (
                l.kind,
                l.field.as_str(),
                l.intensity,
                l.traffic.as_deref(),
                minutes,
            )
        })
        .collect();
    let normal = LabelKind::Normal;
    let anomaly = LabelKind::Anomaly;
    assert_eq!(
        seen,
        [
            (normal, "", None, None, 10),
            (normal, "", None, Some("3x surge"), 5),
            (normal, "", None, Some("sine 50±25/s over 10m"), 10),
            (anomaly, "country", Some(0.05), None, 5),
            (normal, "", None, None, 5),
            (anomaly, "httpStatus", Some(0.3), None, 5),
            (normal, "", None, None, 5),
        ]
    );
    assert!(labels.windows(2).all(|w| w[0].end_ms == w[1].start_ms));
    let anomalous = schedule.events().filter(|e| e.anomaly.is_some()).count();
    assert_eq!(anomalous, 750 + 2_250);

    // On the wire: the keys appear only when they say something.
    let json = |label: &Label| serde_json::to_string(label).expect("serializes");
    assert!(json(&labels[1]).contains(r#""kind":"normal","traffic":"3x surge""#));
    assert!(json(&labels[3]).contains(r#""intensity":0.05"#));
    assert!(!json(&labels[3]).contains("kind") && !json(&labels[3]).contains("traffic"));
    let ramp = Scenario::new(
        "ramp",
        None,
        vec![Phase::anomaly(MonitoredField::Action, MINUTE).with_rate(RateCurve::ramp(20.0, 60.0))],
    )
    .expect("valid");
    let label = &Schedule::live(&ramp, T0, &options())
        .expect("valid")
        .labels("r", "i")[0];
    assert_eq!(
        (label.kind, label.intensity, label.traffic.as_deref()),
        (anomaly, None, Some("ramp 20→60/s"))
    );
}

#[test]
fn a_surge_needs_a_rate_to_multiply() {
    let scenario = Scenario::new(
        "s",
        None,
        vec![Phase::normal(MINUTE).with_rate(RateCurve::times(3.0))],
    )
    .expect("valid");
    let error = Schedule::live(&scenario, T0, &options()).expect_err("no base rate");
    assert!(
        error
            .to_string()
            .contains("phases[0]'s rate is a multiple of the scenario's rate"),
        "{error}"
    );
    let options = Options {
        default_rate: Some(10.0),
        ..options()
    };
    let schedule = Schedule::live(&scenario, T0, &options).expect("the default multiplies");
    assert_eq!(schedule.total_events(), Some(1_800));
}

#[test]
fn an_entity_phase_gives_its_anomalous_events_one_quiet_client_and_its_label_the_entity() {
    let scenario = Scenario::from_yaml(include_str!("../../scenarios/one-bad-client.yaml"))
        .expect("the shipped example is valid");
    assert_eq!(scenario.clients, 10_000);
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    let events = check_events(&schedule);
    assert_eq!(events.len(), 216_000);

    // The picked client is stable for the seed, a quiet member of the 10,000-client pool.
    let pool = crate::clients::client_pool(42, 10_000);
    let entity = schedule.phases()[1].entity.expect("picked");
    assert_eq!(
        Schedule::live(&scenario, T0 + 1, &options())
            .expect("valid")
            .phases()[1]
            .entity,
        Some(entity)
    );
    let rank = pool
        .iter()
        .position(|ip| *ip == entity)
        .expect("in the pool");
    assert!(rank >= 5_000, "rank {rank}");
    let other_seed = Options {
        seed: 43,
        ..options()
    };
    let other = Schedule::live(&scenario, T0, &other_seed)
        .expect("valid")
        .phases()[1]
        .entity;
    assert_ne!(other, Some(entity));

    // Exactly the anomalous events name the client: ⌊36,000 · 0.02⌋ of them.
    let anomalous = events.iter().filter(|e| e.anomaly.is_some()).count();
    let from_entity = events.iter().filter(|e| e.client.is_some()).count();
    assert_eq!((anomalous, from_entity), (720, 720));
    assert!(events.iter().all(|e| e.client == e.anomaly.map(|_| entity)));

    // Only the anomaly's label has the entity.
    let entities: Vec<(LabelKind, Option<String>)> = schedule
        .labels("r", "i")
        .into_iter()
        .map(|l| (l.kind, l.entity))
        .collect();
    assert_eq!(
        entities,
        [
            (LabelKind::Normal, None),
            (LabelKind::Anomaly, Some(entity.to_string())),
            (LabelKind::Normal, None),
        ]
    );

    // The records: the 720 anomalous ones come from the client, and no other client sends an
    // anomalous record.
    let mut generator = crate::generate::Generator::with_clients(42, "producer-0", "run-1", 10_000)
        .expect("valid instance");
    let mut seen = std::collections::HashSet::new();
    let (mut entity_anomalous, mut entity_normal) = (0, 0);
    for event in &events {
        let record = generator.record(event);
        let ip: Ipv4Addr = record.http_request.client_ip.parse().expect("IPv4");
        seen.insert(ip);
        match (ip == entity, event.anomaly.is_some()) {
            (true, true) => entity_anomalous += 1,
            (true, false) => entity_normal += 1,
            (false, anomalous) => assert!(!anomalous, "an anomalous record from {ip}"),
        }
    }
    // The quiet client's own normal draws: 11 of the 215,280 normal records (about 1 in
    // 20,000, as its rank in the less popular half makes it), against 720 in 3 minutes.
    assert_eq!((entity_anomalous, entity_normal), (720, 11));
    assert!(seen.len() > 9_000, "{} distinct clients", seen.len());
}

#[test]
fn a_named_client_is_the_entity_in_or_out_of_the_pool() {
    let named: Ipv4Addr = "203.0.113.7".parse().expect("an address");
    let scenario = Scenario::new(
        "named",
        Some(10.0),
        vec![
            Phase::anomaly(MonitoredField::Action, MINUTE)
                .with_intensity(0.1)
                .from_client(crate::scenario::FromClient::Address(named)),
            Phase::random_anomaly(MINUTE),
        ],
    )
    .expect("valid");
    let schedule = Schedule::live(&scenario, T0, &options()).expect("valid");
    let events = check_events(&schedule);
    let clients: Vec<Option<Ipv4Addr>> = events
        .iter()
        .filter(|e| e.phase == 0 && e.anomaly.is_some())
        .map(|e| e.client)
        .collect();
    assert_eq!(clients, [Some(named); 60]);
    assert!(
        events
            .iter()
            .filter(|e| e.phase == 1)
            .all(|e| e.client.is_none())
    );
    let labels = anomaly_labels(&schedule);
    assert_eq!(labels[0].entity.as_deref(), Some("203.0.113.7"));
    assert_eq!(labels[1].entity, None);
}
