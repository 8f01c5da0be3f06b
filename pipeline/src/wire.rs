//! What goes on each topic: the only module that defines logwarden's wire formats.
//!
//! - `raw`: [`RawLog`], the AWS WAF log shape the seed used, as JSON.
//! - `enriched`: the raw record as a JSON object plus indicator fields, `@timestamp` and
//!   [`EVENT_ID_FIELD`]; its shape depends on the rules, so it stays a JSON object.
//! - `dead-letter`: the input's bytes untouched as the value; why and where from in headers
//!   ([`DeadLetter`]), the convention Kafka Connect uses, so no byte of the input is re-encoded.
//! - `labels`: [`Label`], one record per scenario phase with an end (an injected anomaly, or
//!   normal traffic and how its rate moved): ground truth for evaluation.
//! - `anomalies`: [`ResultDoc`], one record per anomalous interval the detector scored, keyed by
//!   the detector's name; the same document the detector writes to its results index (every
//!   interval, anomalous or not, with [`ResultDoc::id`] as `_id`). Its field names follow
//!   OpenSearch's anomaly-detection plugin, so the same monitors and queries read both.
//! - The detector's alerts index: [`AlertDoc`], one document per notification delivered on a
//!   channel, with [`AlertDoc::id`] as `_id`.
//! - `raw` records written by `logwarden-ingest` carry their [`Source`] in the
//!   [`SOURCE_HEADER`] (`logwarden-source: waf|cloudtrail|syslog|cloudwatch|splunk|ndjson`).

use std::fmt;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use serde::{Deserialize, Serialize};

mod source;

pub use source::{SOURCE_HEADER, Source};

/// One WAF log record as the seed generated it (AWS WAF's shape, simplified), with `timestamp`
/// in integer epoch milliseconds as real WAF logs have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawLog {
    /// Event time, epoch milliseconds.
    pub timestamp: i64,
    /// Always 1.
    pub format_version: u32,
    /// The WAF's decision: ALLOW, CAPTCHA, Challenge, Count, BLOCK.
    pub action: String,
    /// The fronting service: ALB, APIGW, APPSYNC, CF, or unknown (`-`).
    pub http_source_name: String,
    /// `http_source_name` lowercased, as the seed set it.
    pub http_source_id: String,
    /// The response status as a string, e.g. `"403"` (a seed addition, not in real WAF logs).
    pub http_status: String,
    /// The request.
    pub http_request: HttpRequest,
}

/// The request part of a [`RawLog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// The client's address.
    pub client_ip: String,
    /// Two-letter country code of the client.
    pub country: String,
    /// Request headers, in order.
    pub headers: Vec<HttpHeader>,
    /// Request path.
    pub uri: String,
    /// Query string, without the `?`.
    pub args: String,
    /// e.g. `HTTP/1.1`.
    pub http_version: String,
    /// GET, HEAD, POST, DELETE.
    pub http_method: String,
    /// Unique per record.
    pub request_id: String,
}

/// One request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// The fields the seed monitors, each of which the producer can push into anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MonitoredField {
    /// `action`
    #[serde(rename = "action")]
    Action,
    /// `httpSourceName`
    #[serde(rename = "httpSourceName")]
    HttpSourceName,
    /// `httpStatus`
    #[serde(rename = "httpStatus")]
    HttpStatus,
    /// `httpRequest.country`
    #[serde(rename = "country")]
    Country,
    /// `httpRequest.httpMethod`
    #[serde(rename = "httpMethod")]
    HttpMethod,
}

impl MonitoredField {
    /// Every monitored field, in the seed's order.
    pub const ALL: [MonitoredField; 5] = [
        Self::Action,
        Self::HttpSourceName,
        Self::HttpStatus,
        Self::Country,
        Self::HttpMethod,
    ];

    /// The name users type (`--anomaly country`) and labels carry.
    pub fn name(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::HttpSourceName => "httpSourceName",
            Self::HttpStatus => "httpStatus",
            Self::Country => "country",
            Self::HttpMethod => "httpMethod",
        }
    }

    /// The field's path in a [`RawLog`] document.
    pub fn path(self) -> &'static str {
        match self {
            Self::Country => "httpRequest.country",
            Self::HttpMethod => "httpRequest.httpMethod",
            other => other.name(),
        }
    }

    /// Parses a user-given name (case-insensitive; the path is accepted too).
    pub fn parse(name: &str) -> Result<Self, UnknownField> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name) || f.path().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownField(name.to_owned()))
    }
}

impl fmt::Display for MonitoredField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field name that is not one of [`MonitoredField::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown field `{0}`; valid fields: action, httpSourceName, httpStatus, country, httpMethod"
)]
pub struct UnknownField(pub String);

/// Ground truth: one phase of a producer's scenario, an injected anomaly or (with
/// [`LabelKind::Normal`]) normal traffic, whose spans tell an evaluation how long traffic was
/// normal. Published to `labels`; never inside a log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The run (one producer invocation or scenario run) the phase belongs to.
    pub run_id: String,
    /// The producer instance that injected it (pod name or host).
    pub instance: String,
    /// Index of the phase in its scenario (0 for a single-phase run).
    pub phase: usize,
    /// What was pushed into anomaly: a [`MonitoredField`]'s name for the seed's records
    /// (`country`), or the indicator a source's phase injects (`syslog_auth_failure`): the
    /// value a detector's `ground_truth` names.
    pub field: String,
    /// Phase start, epoch milliseconds (event time), inclusive.
    pub start_ms: i64,
    /// Phase end, epoch milliseconds (event time), exclusive.
    pub end_ms: i64,
    /// An anomaly (the default, and what labels without the key are) or normal traffic.
    #[serde(default, skip_serializing_if = "LabelKind::is_anomaly")]
    pub kind: LabelKind,
    /// The share of the phase's records drawn with the anomaly's weights (1 when absent); for a
    /// ramp, its largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f64>,
    /// How the phase's rate moves, in words (`3x surge`, `sine 20..60/s over 10m`), when it is
    /// not constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<String>,
    /// The one entity the anomaly comes from, when it does (a client address): a per-entity
    /// detector should flag that entity and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
}

/// What a [`Label`] marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// An injected anomaly on `field`: a detector whose `ground_truth` is `field` should flag it.
    #[default]
    Anomaly,
    /// Normal traffic (however its rate moves): nothing should be flagged; `field` is empty.
    Normal,
}

impl LabelKind {
    /// Whether it is [`LabelKind::Anomaly`].
    pub fn is_anomaly(&self) -> bool {
        matches!(self, Self::Anomaly)
    }
}

/// One scored interval of one detector. Published to `anomalies` when anomalous, and written to
/// the results index as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultDoc {
    /// The detector's name (the plugin's id; logwarden's detectors are named).
    pub detector_id: String,
    /// The detector's name.
    pub detector_name: String,
    /// The feature's value.
    pub feature_data: Vec<FeatureData>,
    /// Interval start, epoch ms.
    pub data_start_time: i64,
    /// Interval end, epoch ms.
    pub data_end_time: i64,
    /// When scoring started, epoch ms.
    pub execution_start_time: i64,
    /// When scoring ended, epoch ms.
    pub execution_end_time: i64,
    /// The forest's raw score.
    pub anomaly_score: f64,
    /// 0 (normal) to 1.
    pub anomaly_grade: f64,
    /// 0 to 1.
    pub confidence: f64,
    /// What the value was expected to be (the baseline).
    pub expected_value: f64,
    /// The feature's value (also in `feature_data`); with several features, the one that drove
    /// the grade.
    pub value: f64,
    /// Events in the interval.
    pub events: u64,
    /// The rule that flagged it, if anomalous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Set on historical-analysis results (monitors ignore them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Why the interval was not judged (its grade and confidence are 0), as the plugin's
    /// results say it: e.g. a ratio's interval with too few events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a category detector's entity result: the entity, as the plugin writes it
    /// (`[{name: <category field>, value}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<Vec<EntityValue>>,
    /// For a category detector's interval summary: how many entities were judged, and the
    /// flagged ones (highest grade first, at most [`MAX_FLAGGED_ENTITIES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<EntitiesSummary>,
    /// For a detector with several features: each feature's share of the grade (the plugin's
    /// field), the feature that drove it highest; absent with one feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant_attribution: Option<Vec<Attribution>>,
}

/// A feature's share of an interval's grade, in a [`ResultDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The feature (as in `feature_data`).
    pub feature_id: String,
    /// Its share, 0 to 1 (the shares add up to 1 when the interval is anomalous).
    pub data: f64,
}

/// 64-bit FNV-1a: stable across versions and machines, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Which of `parts` parts an entity belongs to: its FNV-1a hash, mixed by MurmurHash3's
/// finalizer (FNV-1a alone leaves similar short values, as addresses are, unevenly spread) and
/// scaled to `parts`; the same on every replica and version.
pub fn entity_part(entity: &str, parts: usize) -> usize {
    let mut hash = fnv1a(entity.as_bytes());
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    let parts = parts.max(1) as u128;
    usize::try_from((u128::from(hash) * parts) >> 64).unwrap_or(0)
}

/// The most flagged entities an interval's summary names.
pub const MAX_FLAGGED_ENTITIES: usize = 20;

/// One category field's value, in a [`ResultDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityValue {
    /// The category field.
    pub name: String,
    /// The entity.
    pub value: String,
}

/// A category detector's interval, over its entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitiesSummary {
    /// Entities with records in the interval, each judged.
    pub judged: u64,
    /// Entities flagged, in all.
    pub flagged: u64,
    /// The flagged ones, highest grade first (at most [`MAX_FLAGGED_ENTITIES`]).
    pub top: Vec<FlaggedEntity>,
    /// For a detector whose entities are split (`category.parts`): the part this summary is
    /// of, `<part>/<parts>` (each part writes its own summary); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

/// A flagged entity in an [`EntitiesSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlaggedEntity {
    /// The entity.
    pub value: String,
    /// Its grade.
    pub grade: f64,
    /// Its feature value.
    pub data: f64,
    /// What its model expected.
    pub expected: f64,
}

/// A feature's value in a [`ResultDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureData {
    /// The feature's id (its field).
    pub feature_id: String,
    /// The feature's name (its field).
    pub feature_name: String,
    /// The value.
    pub data: f64,
}

impl ResultDoc {
    /// The document id: one result per detector, interval (and historical task), so scoring an
    /// interval again overwrites.
    pub fn id(&self) -> String {
        // An entity's value can be anything a record holds: its id part is a hash, so the id
        // stays short and safe.
        let entity = self
            .entity
            .iter()
            .flatten()
            .map(|e| format!("-{:016x}", fnv1a(e.value.as_bytes())))
            .collect::<String>();
        // Each part of a detector's split entities writes a summary of its own.
        let part = (self.entities.iter())
            .filter_map(|e| e.part.as_deref())
            .map(|part| format!("-part-{}", part.replace('/', "-of-")))
            .collect::<String>();
        match &self.task_id {
            Some(task) => format!(
                "{task}-{}-{}{entity}{part}",
                self.detector_id, self.data_start_time
            ),
            None => format!(
                "{}-{}{entity}{part}",
                self.detector_id, self.data_start_time
            ),
        }
    }
}

/// One notification delivered on one channel: what the detector records in its alerts index
/// (`alerts` in the spec) when a channel accepts a notification, so the time from an anomaly to
/// the alert people received can be measured afterwards (`logwarden-detector evaluate`).
/// Best-effort: a record that cannot be written is logged and not retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDoc {
    /// The notification's idempotency key (the same on every channel).
    pub key: String,
    /// The channel that accepted it.
    pub channel: String,
    /// The monitor that sent it.
    pub monitor: String,
    /// The detector whose result caused it.
    pub detector: String,
    /// `alert`, `renotify` or `recovery`.
    pub kind: String,
    /// The episode's first interval's start, epoch ms (event time).
    pub episode_start: i64,
    /// The interval that caused the notification, epoch ms (event time).
    pub interval_start: i64,
    /// That interval's end, epoch ms (event time).
    pub interval_end: i64,
    /// When the channel accepted it, epoch ms (the detector's clock).
    pub delivered_at: i64,
}

impl AlertDoc {
    /// The document id: one per notification and channel. Written with `create`, so the first
    /// delivery's time stays when a restart delivers the same notification again.
    pub fn id(&self) -> String {
        format!("{}-{}", self.key, self.channel)
    }
}

/// Name of the event id field the transformer adds to each enriched record; the sink uses it as
/// the document `_id`, so a replay overwrites instead of duplicating.
pub const EVENT_ID_FIELD: &str = "event_id";

/// The field of an enriched record that names its source (`waf`, `syslog`, ...: a
/// [`Source`]), for records that had a [`SOURCE_HEADER`]; the seed's records have none. The
/// sink picks the source's daily indices by it.
pub const SOURCE_FIELD: &str = "logwarden_source";

/// The stable event id of the record at `topic`/`partition`/`offset`: the same however often
/// the record is re-processed.
pub fn event_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}-{partition}-{offset}")
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Why a stage gave up on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// Not parseable as JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// A monitored field is missing and the rules say to dead-letter that.
    MissingField,
    /// A field has the wrong type.
    WrongType,
    /// A monitored field has a value neither known-good nor known-bad, and the rules say to
    /// dead-letter that.
    UnknownValue,
    /// Larger than the configured limit.
    Oversized,
    /// `timestamp` is missing, not a number, or outside any plausible range.
    BadTimestamp,
    /// OpenSearch refused the document permanently (e.g. a mapping conflict).
    Rejected,
    /// The Kafka broker refused the output permanently (e.g. an invalid record, or the topic
    /// not authorized): producing it again cannot succeed.
    ProduceRefused,
    /// The document's daily index is closed or write-blocked (`index.blocks.write`,
    /// `index.blocks.read_only`): an operator froze that day.
    IndexBlocked,
    /// The record's day is outside the days the sink accepts (`sink.accept_days_past`,
    /// `sink.accept_days_future`): it would create a daily index out of the retention range.
    DayOutOfRange,
    /// The rules have no section for the record's source (its `logwarden-source` header, or
    /// its absence), or the header names no known source.
    NoRules,
}

impl DeadLetterReason {
    /// Every reason (for metrics that should show zeros).
    pub const ALL: [DeadLetterReason; 13] = [
        Self::NotUtf8,
        Self::NotJson,
        Self::NotObject,
        Self::MissingField,
        Self::WrongType,
        Self::UnknownValue,
        Self::Oversized,
        Self::BadTimestamp,
        Self::Rejected,
        Self::ProduceRefused,
        Self::IndexBlocked,
        Self::DayOutOfRange,
        Self::NoRules,
    ];

    /// The stable code: header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::NotJson => "not_json",
            Self::NotObject => "not_object",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::UnknownValue => "unknown_value",
            Self::Oversized => "oversized",
            Self::BadTimestamp => "bad_timestamp",
            Self::Rejected => "rejected",
            Self::ProduceRefused => "produce_refused",
            Self::IndexBlocked => "index_blocked",
            Self::DayOutOfRange => "day_out_of_range",
            Self::NoRules => "no_rules",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == code)
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metadata of a dead letter, carried in Kafka headers next to the untouched input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why.
    pub reason: DeadLetterReason,
    /// A human-readable detail: the parser's message, the missing field, OpenSearch's reason.
    pub detail: String,
    /// The stage that gave up: `transformer`, `sink`.
    pub stage: String,
    /// Where the input came from.
    pub source: SourcePosition,
}

/// Header names of a dead letter.
pub mod dead_letter_headers {
    /// [`super::DeadLetterReason`] code.
    pub const REASON: &str = "logwarden.reason";
    /// Free-text detail.
    pub const DETAIL: &str = "logwarden.detail";
    /// The stage that gave up.
    pub const STAGE: &str = "logwarden.stage";
    /// Source topic.
    pub const TOPIC: &str = "logwarden.source.topic";
    /// Source partition (decimal).
    pub const PARTITION: &str = "logwarden.source.partition";
    /// Source offset (decimal).
    pub const OFFSET: &str = "logwarden.source.offset";
    /// Set only on a dead letter whose value is a prefix of the input (the input was too large
    /// to produce whole): the input's size in bytes (decimal). The whole input stays readable
    /// at its source position while the source topic retains it.
    pub const ORIGINAL_BYTES: &str = "logwarden.original_bytes";
}

impl DeadLetter {
    /// The Kafka headers that carry this dead letter's metadata.
    pub fn to_headers(&self) -> OwnedHeaders {
        use dead_letter_headers as h;
        let partition = self.source.partition.to_string();
        let offset = self.source.offset.to_string();
        [
            (h::REASON, self.reason.as_str()),
            (h::DETAIL, self.detail.as_str()),
            (h::STAGE, self.stage.as_str()),
            (h::TOPIC, self.source.topic.as_str()),
            (h::PARTITION, partition.as_str()),
            (h::OFFSET, offset.as_str()),
        ]
        .into_iter()
        .fold(
            OwnedHeaders::new_with_capacity(6),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            },
        )
    }

    /// The headers of a dead letter whose value is only the first bytes of an input of
    /// `original_bytes` bytes: [`Self::to_headers`] and
    /// [`ORIGINAL_BYTES`](dead_letter_headers::ORIGINAL_BYTES).
    pub fn to_truncated_headers(&self, original_bytes: usize) -> OwnedHeaders {
        self.to_headers().insert(Header {
            key: dead_letter_headers::ORIGINAL_BYTES,
            value: Some(original_bytes.to_string().as_str()),
        })
    }

    /// The input's size when the dead letter's value is a truncated prefix of it; `None` when
    /// the value is the whole input.
    pub fn original_bytes(headers: &impl Headers) -> Option<usize> {
        headers
            .iter()
            .find(|header| header.key == dead_letter_headers::ORIGINAL_BYTES)
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.parse().ok())
    }

    /// Reads a dead letter's metadata back from a record's headers; `None` if any is missing or
    /// malformed.
    pub fn from_headers(headers: &impl Headers) -> Option<Self> {
        use dead_letter_headers as h;
        let get = |key: &str| {
            headers
                .iter()
                .find(|header| header.key == key)
                .and_then(|header| header.value)
                .and_then(|value| std::str::from_utf8(value).ok())
        };
        Some(Self {
            reason: DeadLetterReason::from_code(get(h::REASON)?)?,
            detail: get(h::DETAIL)?.to_owned(),
            stage: get(h::STAGE)?.to_owned(),
            source: SourcePosition {
                topic: get(h::TOPIC)?.to_owned(),
                partition: get(h::PARTITION)?.parse().ok()?,
                offset: get(h::OFFSET)?.parse().ok()?,
            },
        })
    }
}

#[cfg(test)]
mod tests;
