//! The ledger played through interleavings: each case is a list of events and what the ledger
//! must answer to each. Documents are labelled by their record's offset (offsets are distinct
//! across partitions within a case), so a request reads as the offsets it carries.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

const BUSY: &str = "es_rejected_execution_exception";
const UNREACHABLE: &str = "OpenSearch is unreachable";
const MAPPING: &str = "mapper_parsing_exception";
const TOO_LARGE: &str = "OpenSearch refused the request (413)";

/// Every document's size, in the tests.
const SIZE: usize = 10;

/// One event, or one question, and the ledger's expected answer.
#[derive(Debug)]
enum Step {
    /// A record at (partition, offset) made into a document.
    Doc(i32, i64),
    /// A record at (partition, offset) that goes straight to `dead-letter`.
    Unusable(i32, i64),
    /// The linger timer closes the open batch.
    Close,
    /// `dispatch`: the requests started, as (batch, offsets carried).
    Dispatch(&'static [(u64, &'static [i64])]),
    /// The answer to batch's request under way, and what must follow.
    Answer(u64, Verdict, Then),
    /// A dead letter of the batch is acknowledged.
    Ack(u64),
    /// `take_settled`: the offsets to store, in order, as (partition, offset).
    Store(&'static [(i32, i64)]),
    /// `can_take`.
    CanTake(bool),
    /// Whether back-pressure is on.
    BackPressure(bool),
    /// The drain lifts back-pressure.
    Relieve,
    /// Records consumed and not settled.
    Records(usize),
}

/// What must follow an answer.
#[derive(Debug)]
struct Then {
    /// Offsets of the documents rejected.
    rejected: &'static [i64],
    /// The batch's next request: (`Some(attempt)` for a retry, offsets carried).
    next: Option<(Option<u32>, &'static [i64])>,
    pressure: Pressure,
}

fn items(codes: &str) -> Verdict {
    Verdict::Items(
        codes
            .chars()
            .map(|code| match code {
                'i' => Outcome::Indexed,
                'r' => Outcome::Retry(BUSY.to_owned()),
                _ => Outcome::Rejected(Unusable::new(DeadLetterReason::Rejected, MAPPING)),
            })
            .collect(),
    )
}

fn retry_all() -> Verdict {
    Verdict::RetryAll(UNREACHABLE.to_owned())
}

fn split() -> Verdict {
    Verdict::Split(TOO_LARGE.to_owned())
}

/// Nothing follows, nothing is retrying.
fn done() -> Then {
    Then {
        rejected: &[],
        next: None,
        pressure: Pressure::Clear { ended: false },
    }
}

fn then(next: Option<(Option<u32>, &'static [i64])>, pressure: Pressure) -> Then {
    Then {
        rejected: &[],
        next,
        pressure,
    }
}

fn began(reason: &str) -> Pressure {
    Pressure::Retrying {
        reason: reason.to_owned(),
        first: true,
    }
}

fn still(reason: &str) -> Pressure {
    Pressure::Retrying {
        reason: reason.to_owned(),
        first: false,
    }
}

fn ended() -> Pressure {
    Pressure::Clear { ended: true }
}

fn clear() -> Pressure {
    Pressure::Clear { ended: false }
}

struct Case {
    name: &'static str,
    /// Records per batch.
    records: usize,
    steps: Vec<Step>,
}

fn case(name: &'static str, records: usize, steps: Vec<Step>) -> Case {
    Case {
        name,
        records,
        steps,
    }
}

fn play(case: Case) {
    let Case {
        name,
        records,
        steps,
    } = case;
    let limits = BatchLimits {
        records,
        bytes: 1 << 20,
        time: Duration::from_secs(1),
    };
    let mut ledger: Ledger<i64> = Ledger::new(limits, 2);
    let mut under_way: HashMap<BatchId, Request> = HashMap::new();
    for (number, step) in steps.into_iter().enumerate() {
        let at = format!("{name}, step {number} ({step:?})");
        match step {
            Step::Doc(partition, offset) => {
                ledger.add_document(Position { partition, offset }, offset, SIZE);
            }
            Step::Unusable(partition, offset) => {
                ledger.add_dead_letter(Position { partition, offset });
            }
            Step::Close => ledger.close(),
            Step::Dispatch(expected) => {
                let requests = ledger.dispatch();
                let started: Vec<(u64, Vec<i64>)> = requests
                    .iter()
                    .map(|r| (r.batch().0, ledger.documents(r).copied().collect()))
                    .collect();
                let expected: Vec<(u64, Vec<i64>)> = expected
                    .iter()
                    .map(|(batch, offsets)| (*batch, offsets.to_vec()))
                    .collect();
                assert_eq!(started, expected, "{at}");
                for request in requests {
                    assert_eq!(
                        request.retry(),
                        None,
                        "{at}: a first request waits for nothing"
                    );
                    let previous = under_way.insert(request.batch(), request);
                    assert!(previous.is_none(), "{at}: two requests for one batch");
                }
            }
            Step::Answer(batch, verdict, then) => {
                let request = under_way
                    .remove(&BatchId(batch))
                    .unwrap_or_else(|| panic!("{at}: no request under way"));
                let answer = ledger.answered(request, verdict);
                let rejected: Vec<i64> = answer
                    .rejected
                    .iter()
                    .map(|r| {
                        let document = ledger.document(r.batch, r.document).copied();
                        assert_eq!(document, Some(r.position.offset), "{at}: its document");
                        r.position.offset
                    })
                    .collect();
                assert_eq!(rejected, then.rejected, "{at}: rejected");
                assert_eq!(answer.pressure, then.pressure, "{at}: back-pressure");
                let next = answer.next.as_ref().map(|r| {
                    let offsets: Vec<i64> = ledger.documents(r).copied().collect();
                    (r.retry(), offsets)
                });
                let expected = then.next.map(|(retry, offsets)| (retry, offsets.to_vec()));
                assert_eq!(next, expected, "{at}: the next request");
                if let Some(request) = answer.next {
                    under_way.insert(request.batch(), request);
                }
            }
            Step::Ack(batch) => ledger.dead_letter_acknowledged(BatchId(batch)),
            Step::Store(expected) => {
                let stored: Vec<(i32, i64)> = ledger
                    .take_settled()
                    .into_iter()
                    .map(|p| (p.partition, p.offset))
                    .collect();
                assert_eq!(stored, expected, "{at}");
            }
            Step::CanTake(expected) => assert_eq!(ledger.can_take(), expected, "{at}"),
            Step::BackPressure(on) => {
                assert_eq!(ledger.back_pressure().is_some(), on, "{at}");
            }
            Step::Relieve => ledger.relieve(),
            Step::Records(expected) => assert_eq!(ledger.records(), expected, "{at}"),
        }
    }
}

#[test]
fn batches_settle_and_release_their_offsets_in_order() {
    use Step::*;
    let cases = vec![
        case(
            "one batch: offsets stored once every document is indexed",
            10,
            vec![
                Doc(0, 0),
                Doc(0, 1),
                Doc(1, 10),
                Dispatch(&[]),
                Close,
                Dispatch(&[(0, &[0, 1, 10])]),
                Store(&[]),
                Records(3),
                Answer(0, items("iii"), done()),
                Store(&[(0, 1), (1, 10)]),
                Records(0),
            ],
        ),
        case(
            "out of order: the second batch indexed first waits for the first",
            10,
            vec![
                Doc(0, 0),
                Doc(0, 1),
                Close,
                Doc(0, 2),
                Doc(0, 3),
                Close,
                Dispatch(&[(0, &[0, 1]), (1, &[2, 3])]),
                Answer(1, items("ii"), done()),
                Store(&[]),
                Answer(0, items("ii"), done()),
                Store(&[(0, 1), (0, 3)]),
            ],
        ),
        case(
            "several partitions: each batch stores each partition's last offset",
            10,
            vec![
                Doc(0, 0),
                Doc(1, 100),
                Doc(0, 1),
                Close,
                Doc(2, 200),
                Doc(1, 101),
                Close,
                Dispatch(&[(0, &[0, 100, 1]), (1, &[200, 101])]),
                Answer(1, items("ii"), done()),
                Store(&[]),
                Answer(0, items("iii"), done()),
                Store(&[(0, 1), (1, 100), (1, 101), (2, 200)]),
            ],
        ),
        case(
            "full batches close by themselves; at most two closed batches wait",
            2,
            vec![
                Doc(0, 0),
                CanTake(true),
                Doc(0, 1),
                CanTake(false),
                Dispatch(&[(0, &[0, 1])]),
                CanTake(true),
                Doc(0, 2),
                Doc(0, 3),
                Dispatch(&[(1, &[2, 3])]),
                CanTake(true),
                Doc(0, 4),
                Doc(0, 5),
                Dispatch(&[]),
                CanTake(false),
                Answer(0, items("ii"), done()),
                Store(&[(0, 1)]),
                CanTake(true),
                Dispatch(&[(2, &[4, 5])]),
            ],
        ),
    ];
    for case in cases {
        play(case);
    }
}

#[test]
fn retries_hold_back_other_batches_until_opensearch_answers() {
    use Step::*;
    let cases = vec![
        case(
            "an item to retry is sent again alone, after a backoff",
            10,
            vec![
                Doc(0, 0),
                Doc(0, 1),
                Doc(0, 2),
                Close,
                Dispatch(&[(0, &[0, 1, 2])]),
                Doc(0, 3),
                Close,
                Answer(0, items("iri"), then(Some((Some(1), &[1])), began(BUSY))),
                BackPressure(true),
                Dispatch(&[]),
                Answer(0, items("r"), then(Some((Some(2), &[1])), still(BUSY))),
                Dispatch(&[]),
                Store(&[]),
                Answer(0, items("i"), then(None, ended())),
                BackPressure(false),
                Store(&[(0, 2)]),
                Dispatch(&[(1, &[3])]),
                Answer(1, items("i"), done()),
                Store(&[(0, 3)]),
            ],
        ),
        case(
            "no answer: the whole request again; another batch's success keeps back-pressure",
            10,
            vec![
                Doc(0, 0),
                Doc(0, 1),
                Close,
                Doc(0, 2),
                Close,
                Dispatch(&[(0, &[0, 1]), (1, &[2])]),
                Answer(
                    0,
                    retry_all(),
                    then(Some((Some(1), &[0, 1])), began(UNREACHABLE)),
                ),
                Answer(1, items("i"), then(None, Pressure::Held)),
                BackPressure(true),
                Answer(0, items("ri"), then(Some((Some(2), &[0])), still(BUSY))),
                Answer(0, items("i"), then(None, ended())),
                Store(&[(0, 1), (0, 2)]),
            ],
        ),
        case(
            "draining lifts back-pressure: waiting batches are sent too",
            10,
            vec![
                Doc(0, 0),
                Close,
                Dispatch(&[(0, &[0])]),
                Doc(0, 1),
                Close,
                Answer(
                    0,
                    retry_all(),
                    then(Some((Some(1), &[0])), began(UNREACHABLE)),
                ),
                Dispatch(&[]),
                Relieve,
                BackPressure(false),
                Dispatch(&[(1, &[1])]),
                Answer(
                    1,
                    retry_all(),
                    then(Some((Some(1), &[1])), began(UNREACHABLE)),
                ),
                Answer(0, items("i"), then(None, Pressure::Held)),
                Answer(1, items("i"), then(None, ended())),
                Store(&[(0, 0), (0, 1)]),
            ],
        ),
    ];
    for case in cases {
        play(case);
    }
}

#[test]
fn a_request_refused_as_a_whole_is_split_down_to_the_document_at_fault() {
    use Step::*;
    let rejected_last = Then {
        rejected: &[3],
        next: None,
        pressure: clear(),
    };
    play(case(
        "split",
        10,
        vec![
            Doc(0, 0),
            Doc(0, 1),
            Doc(0, 2),
            Doc(0, 3),
            Close,
            Dispatch(&[(0, &[0, 1, 2, 3])]),
            Answer(0, split(), then(Some((None, &[0, 1])), clear())),
            // A retry within the split, and its attempts start over once it goes through.
            Answer(
                0,
                retry_all(),
                then(Some((Some(1), &[0, 1])), began(UNREACHABLE)),
            ),
            Answer(0, items("ii"), then(Some((None, &[2, 3])), ended())),
            Answer(0, split(), then(Some((None, &[2])), clear())),
            Answer(0, items("i"), then(Some((None, &[3])), clear())),
            Answer(0, split(), rejected_last),
            Store(&[]),
            Records(4),
            Ack(0),
            Store(&[(0, 3)]),
        ],
    ));
}

#[test]
fn dead_letters_hold_their_batch_and_those_behind_until_acknowledged() {
    use Step::*;
    let cases = vec![
        case(
            "a record that is not a document, acknowledged after everything else",
            10,
            vec![
                Unusable(0, 0),
                Doc(0, 1),
                Close,
                Doc(1, 5),
                Close,
                Dispatch(&[(0, &[1]), (1, &[5])]),
                Answer(0, items("i"), done()),
                Answer(1, items("i"), done()),
                Store(&[]),
                Ack(0),
                Store(&[(0, 1), (1, 5)]),
            ],
        ),
        case(
            "a document OpenSearch rejects settles with its dead letter",
            10,
            vec![
                Doc(0, 0),
                Doc(0, 1),
                Close,
                Dispatch(&[(0, &[0, 1])]),
                Answer(
                    0,
                    items("xi"),
                    Then {
                        rejected: &[0],
                        next: None,
                        pressure: clear(),
                    },
                ),
                Store(&[]),
                Ack(0),
                Store(&[(0, 1)]),
            ],
        ),
        case(
            "a batch of dead letters only is never sent",
            10,
            vec![
                Unusable(0, 0),
                Unusable(0, 1),
                Close,
                Dispatch(&[]),
                Ack(0),
                Store(&[]),
                Ack(0),
                Store(&[(0, 1)]),
            ],
        ),
        case(
            "an open batch never settles, even with every dead letter acknowledged",
            10,
            vec![Unusable(0, 0), Ack(0), Store(&[]), Close, Store(&[(0, 0)])],
        ),
    ];
    for case in cases {
        play(case);
    }
}

#[test]
fn a_bulk_answer_is_judged_document_by_document() {
    // (documents sent, verdict, indexed, again, rejected, retry, request limit, result)
    type Row = (
        &'static [usize],
        Verdict,
        usize,
        &'static [usize],
        &'static [usize],
        bool,
        Option<usize>,
        RequestResult,
    );
    let rows: Vec<Row> = vec![
        (
            &[4, 5, 6],
            items("iii"),
            3,
            &[],
            &[],
            false,
            None,
            RequestResult::Ok,
        ),
        (
            &[4, 5, 6],
            items("rix"),
            1,
            &[4],
            &[6],
            true,
            None,
            RequestResult::Ok,
        ),
        (
            &[4, 5, 6],
            items("i"),
            1,
            &[5, 6],
            &[],
            true,
            None,
            RequestResult::Ok,
        ),
        (
            &[4, 5],
            retry_all(),
            0,
            &[4, 5],
            &[],
            true,
            None,
            RequestResult::Retry,
        ),
        (
            &[4, 5, 6],
            split(),
            0,
            &[4, 5, 6],
            &[],
            false,
            Some(1),
            RequestResult::Split,
        ),
        (
            &[7],
            split(),
            0,
            &[],
            &[7],
            false,
            None,
            RequestResult::Split,
        ),
    ];
    for (sent, verdict, indexed, again, rejected, retry, limit, result) in rows {
        let label = format!("{sent:?} {verdict:?}");
        let judged = Judged::from_verdict(sent, verdict);
        assert_eq!(judged.indexed, indexed, "{label}");
        assert_eq!(judged.again, again, "{label}");
        let rejected_documents: Vec<usize> = judged.rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(rejected_documents, rejected, "{label}");
        assert_eq!(judged.retry_reason.is_some(), retry, "{label}");
        assert_eq!(judged.request_limit, limit, "{label}");
        assert_eq!(judged.result, result, "{label}");
    }
}
