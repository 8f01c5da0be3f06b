use std::time::Duration;

use super::*;
use crate::service::live::testing;
use crate::spec::{Filter, Spec};

const WRITER: Writer<'static> = Writer {
    holder: "replica-a",
    generation: 3,
};

#[test]
fn the_fingerprint_changes_with_what_the_model_was_built_for() {
    let base = testing::spec("d");
    let same = fingerprint(&base);
    assert_eq!(fingerprint(&base.clone()), same);
    let mut labelled = base.clone();
    labelled.ground_truth = Some("country".to_owned());
    assert_eq!(
        fingerprint(&labelled),
        same,
        "ground truth is for evaluation only"
    );

    let mut renamed = base.clone();
    renamed.name = "e".to_owned();
    let mut longer = base.clone();
    longer.interval = Duration::from_secs(120);
    let mut later = base.clone();
    later.window_delay = Duration::from_secs(30);
    let mut other_field = base.clone();
    other_field.feature.field = Some("B_action".to_owned());
    let mut filtered = base.clone();
    filtered.feature.filter = Some(Filter {
        field: "httpRequest.country".to_owned(),
        value: serde_json::json!("XX"),
    });
    let mut bigger = base.clone();
    bigger.model.trees = 100;
    for changed in [renamed, longer, later, other_field, filtered, bigger] {
        assert_ne!(fingerprint(&changed), same, "{changed:?}");
    }
}

/// Detectors, positions and ids seen, at one moment.
type Moment = (Vec<Live>, BTreeMap<i32, i64>, Seen);

/// Two detectors after `minutes` of one event a minute, the positions and ids of that moment.
fn moment(minutes: i64) -> Result<Moment, Box<dyn std::error::Error>> {
    let mut detectors = vec![
        testing::live(testing::spec("first"), Some(0))?,
        testing::live(testing::spec("second"), Some(0))?,
    ];
    let mut seen = Seen::new(60_000);
    for minute in 0..minutes {
        for live in &mut detectors {
            assert!(live.window.add(minute * 60_000 + 1, 1.0));
            live.window.close(minute * 60_000 + 70_000);
            live.model.observe(1.0, None)?;
        }
        seen.first(&format!("e-{minute}"), minute * 60_000 + 1);
    }
    Ok((
        detectors,
        BTreeMap::from([(0, minutes), (1, 2 * minutes)]),
        seen,
    ))
}

#[test]
fn a_checkpoint_restores_every_part_from_the_same_moment() -> Result<(), Box<dyn std::error::Error>>
{
    let monitors = Monitors::new(&Spec::default_spec()?);
    let mut docs = Vec::new();
    for minutes in [3, 7] {
        let (detectors, positions, seen) = moment(minutes)?;
        let writer = Writer {
            generation: minutes,
            ..WRITER
        };
        docs.push(build(
            writer,
            &detectors,
            ("enriched", &positions),
            &monitors,
            &seen,
            minutes * 1_000,
        )?);
    }
    // Whichever document a restore reads, every part of it is of that one moment.
    for (doc, minutes) in docs.iter().zip([3_i64, 7]) {
        assert_eq!(
            (doc.holder.as_str(), doc.generation, doc.saved_at),
            ("replica-a", minutes, minutes * 1_000)
        );
        let restored = restore(doc).ok_or("restorable")?;
        assert_eq!(
            restored.positions,
            BTreeMap::from([(0, minutes), (1, 2 * minutes)])
        );
        assert_eq!(restored.seen.len(), usize::try_from(minutes)?);
        assert_eq!(restored.monitors, monitors.state());
        for name in ["first", "second"] {
            let state = restored
                .detector(&testing::spec(name))
                .ok_or("detector restored")?;
            assert_eq!(state.model.seen(), u64::try_from(minutes)?, "{name}");
            assert_eq!(state.window.next(), Some(minutes * 60_000), "{name}");
        }
    }
    Ok(())
}

#[test]
fn nothing_is_taken_from_a_checkpoint_that_cannot_be_read() -> Result<(), Box<dyn std::error::Error>>
{
    let monitors = Monitors::new(&Spec::default_spec()?);
    let (detectors, positions, seen) = moment(2)?;
    let doc = build(
        WRITER,
        &detectors,
        ("enriched", &positions),
        &monitors,
        &seen,
        1,
    )?;

    let mut cut = doc.clone();
    cut.state = cut.state.map(|s| s[..s.len() / 2].to_owned());
    assert!(
        restore(&cut).is_none(),
        "half a checkpoint is no checkpoint"
    );
    let fenced_only = CheckpointDoc {
        state: None,
        ..doc.clone()
    };
    assert!(restore(&fenced_only).is_none(), "fenced, never saved");

    // A detector saved for another spec, or missing, starts cold alone.
    let restored = restore(&doc).ok_or("restorable")?;
    assert_eq!(
        restored.topic.as_deref(),
        Some("enriched"),
        "positions name their topic"
    );
    let mut changed = testing::spec("first");
    changed.interval = Duration::from_secs(120);
    assert!(restored.detector(&changed).is_none());
    assert!(restored.detector(&testing::spec("third")).is_none());
    assert!(restored.detector(&testing::spec("second")).is_some());
    Ok(())
}
