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

/// The records of one partition, projected: one Kafka record on `projected`. Stored by column
/// (each column's cells together, then the next's), so decoding costs a few allocations per
/// column, not one per record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch<'a> {
    /// [`FORMAT`].
    pub format: u8,
    /// Each column's key ([`column_key`]).
    #[serde(borrow)]
    pub columns: Vec<Cow<'a, str>>,
    /// Each record's `@timestamp`, epoch milliseconds, in their partition's order.
    pub times: Vec<i64>,
    /// Each record's event id hash ([`crate::dedupe::hash`]), when it has one.
    pub ids: Vec<Option<u64>>,
    /// Each column's cells, one per record.
    #[serde(borrow)]
    pub cells: Vec<Column<'a>>,
}

/// One column of a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column<'a> {
    /// Each record's [`Cell::value`].
    pub values: Vec<Option<f64>>,
    /// Each record's [`Cell::text`]; empty when the column keeps no text.
    #[serde(borrow)]
    pub texts: Vec<Option<Cow<'a, str>>>,
    /// Each record's [`Cell::entity`]; empty when the column has no category.
    #[serde(borrow)]
    pub entities: Vec<Option<Cow<'a, str>>>,
}

impl Batch<'_> {
    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The `i`th record as a row (for tests and tools; sessions read the columns).
    pub fn row(&self, i: usize) -> Row<'static> {
        let text = |t: &[Option<Cow<'_, str>>]| {
            t.get(i)
                .and_then(|t| t.as_deref())
                .map(|t| Cow::Owned(t.to_owned()))
        };
        Row {
            time: self.times[i],
            id: self.ids.get(i).copied().flatten(),
            cells: (self.cells.iter())
                .map(|c| Cell {
                    value: c.values.get(i).copied().flatten(),
                    text: text(&c.texts),
                    entity: text(&c.entities),
                })
                .collect(),
        }
    }
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
    let cells = (0..columns.len())
        .map(|c| {
            let cells = || rows.iter().map(move |r| r.cells.get(c));
            let texts = |entity: bool| {
                if cells()
                    .flatten()
                    .any(|cell| text_of(cell, entity).is_some())
                {
                    cells()
                        .map(|cell| {
                            cell.and_then(|cell| {
                                text_of(cell, entity).as_deref().map(Cow::Borrowed)
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                }
            };
            Column {
                values: cells().map(|cell| cell.and_then(|c| c.value)).collect(),
                texts: texts(false),
                entities: texts(true),
            }
        })
        .collect();
    let batch = Batch {
        format: FORMAT,
        columns: columns.iter().map(|c| Cow::Borrowed(c.as_str())).collect(),
        times: rows.iter().map(|r| r.time).collect(),
        ids: rows.iter().map(|r| r.id).collect(),
        cells,
    };
    // Into a `Vec`, postcard fails only on types it cannot represent; these are all plain.
    postcard::to_stdvec(&batch).unwrap_or_default()
}

/// A cell's entity, or its text.
fn text_of<'c, 'a>(cell: &'c Cell<'a>, entity: bool) -> &'c Option<Cow<'a, str>> {
    if entity { &cell.entity } else { &cell.text }
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
    let batch: Batch<'_> =
        postcard::from_bytes(payload).map_err(|err| format!("not a projected batch: {err}"))?;
    let rows = batch.len();
    let whole = |n: usize| n == 0 || n == rows;
    if batch.ids.len() != rows
        || batch.cells.len() != batch.columns.len()
        || !(batch.cells.iter())
            .all(|c| c.values.len() == rows && whole(c.texts.len()) && whole(c.entities.len()))
    {
        return Err("not a projected batch: its columns differ in length".to_owned());
    }
    Ok(batch)
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

    /// Record `i` of `batch` as this session's columns see it.
    pub fn row<'r>(&'r self, batch: &'r Batch<'r>, i: usize) -> Projected<'r> {
        Projected {
            batch,
            i,
            at: &self.at,
        }
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

/// A projected record, seen through a session's [`Columns`].
#[derive(Debug)]
pub struct Projected<'r> {
    batch: &'r Batch<'r>,
    i: usize,
    at: &'r [Option<usize>],
}

impl Projected<'_> {
    fn column(&self, column: usize) -> Option<&Column<'_>> {
        self.batch.cells.get((*self.at.get(column)?)?)
    }

    fn cell_text(&self, column: usize, entity: bool) -> Option<Cow<'_, str>> {
        let column = self.column(column)?;
        let texts = if entity {
            &column.entities
        } else {
            &column.texts
        };
        Some(Cow::Borrowed(texts.get(self.i)?.as_deref()?))
    }
}

impl Contributions for Projected<'_> {
    fn value(&self, column: usize, _: &Feature) -> Option<f64> {
        *self.column(column)?.values.get(self.i)?
    }

    fn text(&self, column: usize) -> Option<Cow<'_, str>> {
        self.cell_text(column, false)
    }

    fn entity(&self, column: usize) -> Option<Cow<'_, str>> {
        self.cell_text(column, true)
    }
}

#[cfg(test)]
mod tests;
