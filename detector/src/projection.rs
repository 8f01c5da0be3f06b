//! Split reading: the detector's readers (`logwarden-detector read`, [`crate::reader`]) turn
//! the records of `enriched` into rows of only what the detectors use, and sessions with
//! `detector.input: projected` score those rows instead of parsing every record. Parsing is
//! most of a session's per-record work (docs/capacity.md), and readers are a consumer group:
//! they share the partitions, so reading scales with their number, while each session still sees
//! every record of its intervals. Pure: no IO.
//!
//! A [`Batch`] is one Kafka record on the `projected` topic, in the partition of the enriched
//! records it holds and in their order, so a session's per-partition clock and positions work on
//! it as they do on `enriched`. It is encoded with `postcard` and starts with its [`FORMAT`].
//!
//! A row has a record's event time, its event id's hash ([`crate::dedupe::hash`]: the session
//! still drops a copy counted in an open interval) and a [`Cell`] per column. A column is keyed
//! by what computes it ([`column_key`]: the feature's aggregation, field and filter, the
//! category field, whether the field's text is kept), not by a detector's name: readers and
//! sessions agree on the columns without agreeing on a list of detectors, two detectors of the
//! same feature share one, and a session finds its own by key ([`Columns`]). A column a session
//! needs that a batch lacks (its readers run another spec) contributes nothing, and the session
//! says so.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::features::{self, Plan, Record, Unreadable};
use crate::spec::{Aggregation, DetectorSpec, Feature, Spec};

/// The batch format this build writes and reads.
pub const FORMAT: u8 = 1;

/// The records of one partition, projected: one Kafka record on `projected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch<'a> {
    /// [`FORMAT`].
    pub format: u8,
    /// Each column's key ([`column_key`]), in the cells' order.
    #[serde(borrow)]
    pub columns: Vec<Cow<'a, str>>,
    /// The records, in their partition's order.
    #[serde(borrow)]
    pub rows: Vec<Row<'a>>,
}

/// One enriched record, projected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row<'a> {
    /// `@timestamp`, epoch milliseconds.
    pub time: i64,
    /// The hash of its `event_id` ([`crate::dedupe::hash`]), when it has one.
    pub id: Option<u64>,
    /// One per column.
    #[serde(borrow)]
    pub cells: Vec<Cell<'a>>,
}

/// A record's contribution to one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell<'a> {
    /// What it adds to the interval ([`features::contribution`]); `None` when the feature's
    /// filter excludes it.
    pub value: Option<f64>,
    /// The feature field's text, for a new-values feature (when `value` is set).
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    /// The category field's value, for a category detector (when `value` is set).
    #[serde(borrow)]
    pub entity: Option<Cow<'a, str>>,
}

/// The key of the column `detector` (a detector, or one of its extra features seen as one)
/// reads: what computes its cells, as canonical JSON.
pub fn column_key(detector: &DetectorSpec) -> String {
    #[derive(Serialize)]
    struct Key<'s> {
        feature: &'s Feature,
        category: Option<&'s str>,
        text: bool,
    }
    let key = Key {
        feature: &detector.feature,
        category: detector.category.as_ref().map(|c| c.field.as_str()),
        text: detector.feature.aggregation == Aggregation::NewValues,
    };
    // A struct of strings, numbers and a `serde_json::Value` always serializes.
    serde_json::to_string(&key).unwrap_or_default()
}

/// Each detector of `spec`, then its extra features seen as detectors: the order a session
/// reads its detectors' columns in.
pub fn views(detectors: &[DetectorSpec]) -> Vec<DetectorSpec> {
    detectors
        .iter()
        .flat_map(|d| {
            std::iter::once(d.clone())
                .chain((0..d.extra_features.len()).filter_map(|i| d.extra_view(i)))
        })
        .collect()
}

/// What a reader projects: every column of the spec's detectors, each once.
#[derive(Debug, Clone)]
pub struct Projector {
    plan: Plan,
    keys: Vec<String>,
    views: Vec<DetectorSpec>,
}

impl Projector {
    /// The projector of every detector in `spec` (whatever shard or part scores it).
    pub fn new(spec: &Spec) -> Self {
        let mut keys = Vec::new();
        let mut views = Vec::new();
        for view in self::views(&spec.detectors) {
            let key = column_key(&view);
            if !keys.contains(&key) {
                keys.push(key);
                views.push(view);
            }
        }
        Self {
            plan: Plan::new(&views),
            keys,
            views,
        }
    }

    /// The columns' keys, in the cells' order.
    pub fn columns(&self) -> &[String] {
        &self.keys
    }

    /// Projects an enriched record; why it cannot be read (for its dead letter) otherwise.
    pub fn project(&self, payload: &[u8]) -> Result<Row<'static>, Unreadable> {
        let record = self.plan.read(payload)?;
        let cells = (self.views.iter().zip(self.plan.detectors()))
            .map(|(view, &wanted)| {
                let value = features::contribution(&view.feature, wanted, &record);
                let owned = |text: Option<Cow<'_, str>>| text.map(|t| Cow::Owned(t.into_owned()));
                Cell {
                    value,
                    text: (value.is_some() && view.feature.aggregation == Aggregation::NewValues)
                        .then(|| owned(features::field_text(wanted, &record)))
                        .flatten(),
                    entity: (value.is_some() && view.category.is_some())
                        .then(|| owned(features::entity(wanted, &record)))
                        .flatten(),
                }
            })
            .collect();
        Ok(Row {
            time: record.time,
            id: self.plan.event_id(&record).map(crate::dedupe::hash),
            cells,
        })
    }
}

/// Encodes rows as a batch of `columns`.
pub fn encode(columns: &[String], rows: &[Row<'_>]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Encoded<'a> {
        format: u8,
        columns: &'a [String],
        rows: &'a [Row<'a>],
    }
    // Into a `Vec`, postcard fails only on types it cannot represent; these are all plain.
    postcard::to_stdvec(&Encoded {
        format: FORMAT,
        columns,
        rows,
    })
    .unwrap_or_default()
}

/// Decodes a batch, borrowing its strings; why not, for its dead letter.
pub fn decode(payload: &[u8]) -> Result<Batch<'_>, String> {
    match payload.first() {
        Some(&FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "a projected batch of format {other}; this detector reads format {FORMAT} (run readers and detectors of the same version)"
            ));
        }
        None => return Err("an empty record is not a projected batch".to_owned()),
    }
    postcard::from_bytes(payload).map_err(|err| format!("not a projected batch: {err}"))
}

/// Where a session's columns are in the batches it reads: its keys, found in each batch's
/// columns (looked up again only when a batch's columns differ from the last one's).
#[derive(Debug, Clone)]
pub struct Columns {
    keys: Vec<String>,
    last: Vec<String>,
    at: Vec<Option<usize>>,
}

impl Columns {
    /// The columns of `views` (a session's detectors and extra features, in its reading order).
    pub fn new(views: &[DetectorSpec]) -> Self {
        Self {
            keys: views.iter().map(column_key).collect(),
            last: Vec::new(),
            at: Vec::new(),
        }
    }

    /// Finds this session's columns in a batch's; returns the keys the batch lacks when they
    /// changed (so the caller reports them once per change, not per batch).
    pub fn align(&mut self, columns: &[Cow<'_, str>]) -> Option<Vec<&str>> {
        if self.last.len() == columns.len() && self.last.iter().zip(columns).all(|(a, b)| a == b) {
            return None;
        }
        self.last = columns.iter().map(|c| c.to_string()).collect();
        self.at = (self.keys.iter())
            .map(|key| self.last.iter().position(|c| c == key))
            .collect();
        let missing: Vec<&str> = (self.keys.iter().zip(&self.at))
            .filter(|(_, at)| at.is_none())
            .map(|(key, _)| key.as_str())
            .collect();
        Some(missing)
    }

    /// A row as this session's columns see it.
    pub fn row<'r>(&'r self, row: &'r Row<'r>) -> Projected<'r> {
        Projected { row, at: &self.at }
    }
}

/// A record as a session sees it: each of its columns' contribution, text and entity, by the
/// column's index in the session's reading order. Read from the record itself ([`Read`]) or
/// from a projected row ([`Projected`]).
pub trait Contributions {
    /// What the record adds to column `column` (of feature `feature`); `None` when excluded.
    fn value(&self, column: usize, feature: &Feature) -> Option<f64>;
    /// The feature field's text, for a new-values feature.
    fn text(&self, column: usize) -> Option<Cow<'_, str>>;
    /// The category field's value.
    fn entity(&self, column: usize) -> Option<Cow<'_, str>>;
}

/// A record read from `enriched` by the session's own plan.
#[derive(Debug)]
pub struct Read<'a, 'p> {
    /// The plan that read it.
    pub plan: &'a Plan,
    /// The record.
    pub record: &'a Record<'p>,
}

impl Contributions for Read<'_, '_> {
    fn value(&self, column: usize, feature: &Feature) -> Option<f64> {
        features::contribution(feature, self.plan.wanted(column), self.record)
    }

    fn text(&self, column: usize) -> Option<Cow<'_, str>> {
        features::field_text(self.plan.wanted(column), self.record)
    }

    fn entity(&self, column: usize) -> Option<Cow<'_, str>> {
        features::entity(self.plan.wanted(column), self.record)
    }
}

/// A projected row, seen through a session's [`Columns`].
#[derive(Debug)]
pub struct Projected<'r> {
    row: &'r Row<'r>,
    at: &'r [Option<usize>],
}

impl Projected<'_> {
    fn cell(&self, column: usize) -> Option<&Cell<'_>> {
        self.row.cells.get((*self.at.get(column)?)?)
    }
}

impl Contributions for Projected<'_> {
    fn value(&self, column: usize, _: &Feature) -> Option<f64> {
        self.cell(column)?.value
    }

    fn text(&self, column: usize) -> Option<Cow<'_, str>> {
        self.cell(column)?.text.as_deref().map(Cow::Borrowed)
    }

    fn entity(&self, column: usize) -> Option<Cow<'_, str>> {
        self.cell(column)?.entity.as_deref().map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests;
