use serde_json::json;

use super::*;
use crate::service::live::testing;
use crate::spec::{Category, Filter};

/// Detectors reading every kind of column: a sum, a filtered count, a ratio with an extra
/// feature, a category detector, a new-values detector; two of them on the same feature.
fn detectors() -> Vec<DetectorSpec> {
    let feature = |field: Option<&str>, aggregation| Feature {
        field: field.map(str::to_owned),
        aggregation,
        filter: None,
        min_count: None,
    };
    vec![
        testing::spec("sum"),
        // The same feature as `sum`: one column for both.
        testing::spec("same"),
        DetectorSpec {
            feature: Feature {
                filter: Some(Filter {
                    field: "httpRequest.country".to_owned(),
                    value: json!("XX"),
                }),
                ..feature(None, Aggregation::Count)
            },
            ..testing::spec("count-xx")
        },
        DetectorSpec {
            feature: feature(Some("B_action"), Aggregation::Ratio),
            extra_features: vec![feature(Some("K_action"), Aggregation::Sum)],
            ..testing::spec("ratio")
        },
        DetectorSpec {
            category: Some(Category {
                field: "httpRequest.clientIp".to_owned(),
                ..serde_json::from_value(json!({"field": "x"})).expect("a category")
            }),
            ..testing::spec("client")
        },
        DetectorSpec {
            feature: feature(Some("httpSourceId"), Aggregation::NewValues),
            ..testing::spec("sources")
        },
    ]
}

fn spec(detectors: Vec<DetectorSpec>) -> Spec {
    let mut spec = Spec::default_spec().expect("the default spec");
    spec.detectors = detectors;
    spec
}

const RECORDS: [&str; 4] = [
    r#"{"@timestamp":"2026-12-05T10:00:00Z","event_id":"a","UNK_country":1,"B_action":0,"K_action":1,"httpSourceId":"alb","httpRequest":{"clientIp":"10.0.0.1","country":"XX"}}"#,
    r#"{"@timestamp":"2026-12-05T10:00:01.5Z","event_id":"b","UNK_country":0,"B_action":1,"httpRequest":{"clientIp":"10.0.0.2","country":"FR"}}"#,
    // No event id, no client, a category value that is a number, fields of the wrong type.
    r#"{"@timestamp":"2026-12-05T10:00:02Z","UNK_country":"one","httpSourceId":7,"httpRequest":{"country":"XX"}}"#,
    r#"{"@timestamp":"2026-12-05T10:00:03Z","event_id":"d","httpRequest":{"clientIp":42}}"#,
];

/// What a session reads from a record itself, per column: value, text, entity.
type Seen = Vec<(Option<f64>, Option<String>, Option<String>)>;

fn through(c: &impl Contributions, views: &[DetectorSpec]) -> Seen {
    (views.iter().enumerate())
        .map(|(i, view)| {
            let value = c.value(i, &view.feature);
            let keep = |t: Option<Cow<'_, str>>| t.filter(|_| value.is_some()).map(Cow::into_owned);
            let text =
                keep(c.text(i)).filter(|_| view.feature.aggregation == Aggregation::NewValues);
            let entity = keep(c.entity(i)).filter(|_| view.category.is_some());
            (value, text, entity)
        })
        .collect()
}

#[test]
fn a_projected_row_gives_a_session_what_reading_the_record_gives() {
    let detectors = detectors();
    let projector = Projector::new(&spec(detectors.clone()));
    // Seven views (six detectors and one extra feature), six distinct columns.
    assert_eq!(projector.columns().len(), 6, "{:?}", projector.columns());
    let rows: Vec<Row<'static>> = RECORDS
        .iter()
        .map(|r| projector.project(r.as_bytes()).expect("readable"))
        .collect();
    let encoded = encode(projector.columns(), &rows);
    let batch = decode(&encoded).expect("decodes");
    assert_eq!(
        (0..batch.len()).map(|i| batch.row(i)).collect::<Vec<_>>(),
        rows
    );
    assert_eq!(batch.ids[0], Some(crate::dedupe::hash("a")));
    assert_eq!(batch.ids[2], None);
    assert_eq!(batch.times[1], 1_796_464_801_500);
    // Only the category column keeps entities, only the new-values column texts.
    assert_eq!(
        batch
            .cells
            .iter()
            .filter(|c| !c.entities.is_empty())
            .count(),
        1
    );
    assert_eq!(
        batch.cells.iter().filter(|c| !c.texts.is_empty()).count(),
        1
    );

    // A session holding a subset, in another order, finds its columns by key.
    for subset in [
        detectors.clone(),
        vec![
            detectors[5].clone(),
            detectors[3].clone(),
            detectors[1].clone(),
        ],
    ] {
        let views = views(&subset);
        let plan = Plan::new(&views);
        let mut columns = Columns::new(&views);
        assert_eq!(columns.align(&batch.columns), Some(vec![]));
        assert_eq!(columns.align(&batch.columns), None, "unchanged columns");
        for (i, record) in RECORDS.iter().enumerate() {
            let read = plan.read(record.as_bytes()).expect("readable");
            let direct = through(
                &Read {
                    plan: &plan,
                    record: &read,
                },
                &views,
            );
            let projected = through(&columns.row(&batch, i), &views);
            assert_eq!(projected, direct, "{record}");
        }
    }
    // The columns read what they should.
    let all = views(&detectors);
    let mut columns = Columns::new(&all);
    columns.align(&batch.columns);
    let first = through(&columns.row(&batch, 0), &all);
    assert_eq!(
        first,
        vec![
            (Some(1.0), None, None),
            (Some(1.0), None, None),
            (Some(1.0), None, None),
            (Some(0.0), None, None),
            (Some(1.0), None, None),
            (Some(1.0), None, Some("10.0.0.1".to_owned())),
            (Some(0.0), Some("alb".to_owned()), None),
        ]
    );
    let fourth = through(&columns.row(&batch, 3), &all);
    assert_eq!(fourth[2], (None, None, None), "filtered out");
    assert_eq!(fourth[5].2.as_deref(), Some("42"));
}

#[test]
fn a_column_the_readers_do_not_project_contributes_nothing_and_is_named() {
    let detectors = detectors();
    // Readers on a spec without the category detector.
    let mut older = detectors.clone();
    older.remove(4);
    let projector = Projector::new(&spec(older));
    let row = projector.project(RECORDS[0].as_bytes()).expect("readable");
    let encoded = encode(projector.columns(), std::slice::from_ref(&row));
    let batch = decode(&encoded).expect("decodes");
    let views = views(&detectors);
    let mut columns = Columns::new(&views);
    let missing = columns.align(&batch.columns).expect("first batch");
    assert_eq!(missing, vec![column_key(&detectors[4]).as_str()]);
    assert!(
        missing[0].contains("httpRequest.clientIp"),
        "{}",
        missing[0]
    );
    let seen = through(&columns.row(&batch, 0), &views);
    assert_eq!(seen[5], (None, None, None));
    assert_eq!(seen[0], (Some(1.0), None, None));
}

#[test]
fn what_is_not_a_batch_says_why() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "an empty record is not a projected batch"),
        (
            b"\x07rest",
            "a projected batch of format 7; this detector reads format 1 (run readers and detectors of the same version)",
        ),
        (
            b"\x01",
            "not a projected batch: Hit the end of buffer, expected more data",
        ),
        (
            br#"{"@timestamp":"2026-12-05T10:00:00Z"}"#,
            "a projected batch of format 123; this detector reads format 1 (run readers and detectors of the same version)",
        ),
    ];
    for (payload, expected) in cases {
        assert_eq!(decode(payload).err().as_deref(), Some(expected));
    }
}

#[test]
fn an_unreadable_record_is_not_projected() {
    let projector = Projector::new(&spec(detectors()));
    let err = projector.project(b"not json").expect_err("unreadable");
    assert_eq!(err.0, pipeline::wire::DeadLetterReason::NotJson);
}
