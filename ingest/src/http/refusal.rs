//! Why a request is refused: one [`Reason`] per case, each with its HTTP status, counted by name
//! (`logwarden_ingest_refused_total{receiver, reason}`); each receiver renders it in its own
//! protocol's format (HEC's `{"text","code"}`, Firehose's `errorMessage`, plain JSON).

use axum::http::StatusCode;

use crate::writer::WriteError;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No credentials.
    TokenRequired,
    /// Credentials not in the receiver's form.
    InvalidAuthorization,
    /// No such token.
    InvalidToken,
    /// The body is over `ingest.http.max_body_bytes` (before or after decompression).
    BodyTooLarge,
    /// An event is over `ingest.max_event_bytes`.
    EventTooLarge,
    /// The body cannot be decoded (bad gzip, an unsupported `Content-Encoding`).
    BadEncoding,
    /// No event in the body.
    NoData,
    /// Not the receiver's format (bad JSON, bad base64, ...).
    InvalidData,
    /// A HEC event without `event`.
    EventRequired,
    /// A HEC event whose `event` is empty.
    EventBlank,
    /// A HEC event whose `fields` is not a flat object.
    IndexedFields,
    /// Acknowledgements are on and the request names no channel.
    ChannelMissing,
    /// The channel is not a GUID, or unknown to `/ack`.
    InvalidChannel,
    /// `/ack` while acknowledgements are off.
    AckDisabled,
    /// A new channel while `ingest.http.max_channels` are remembered.
    TooManyChannels,
    /// `/ingest/<source>` or `/firehose/<source>` with an unknown source.
    UnknownSource,
    /// librdkafka's queue is full.
    QueueFull,
    /// Kafka did not acknowledge in time.
    KafkaUnavailable,
    /// Kafka refused a record for good.
    KafkaRefused,
}

impl Reason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenRequired => "token_required",
            Self::InvalidAuthorization => "invalid_authorization",
            Self::InvalidToken => "invalid_token",
            Self::BodyTooLarge => "body_too_large",
            Self::EventTooLarge => "event_too_large",
            Self::BadEncoding => "bad_encoding",
            Self::NoData => "no_data",
            Self::InvalidData => "invalid_data",
            Self::EventRequired => "event_required",
            Self::EventBlank => "event_blank",
            Self::IndexedFields => "indexed_fields",
            Self::ChannelMissing => "channel_missing",
            Self::InvalidChannel => "invalid_channel",
            Self::AckDisabled => "ack_disabled",
            Self::TooManyChannels => "too_many_channels",
            Self::UnknownSource => "unknown_source",
            Self::QueueFull => "queue_full",
            Self::KafkaUnavailable => "kafka_unavailable",
            Self::KafkaRefused => "kafka_refused",
        }
    }

    /// The HTTP status (HEC's documented ones where HEC has the case).
    pub fn status(self) -> StatusCode {
        match self {
            Self::TokenRequired | Self::InvalidAuthorization => StatusCode::UNAUTHORIZED,
            Self::InvalidToken => StatusCode::FORBIDDEN,
            Self::BodyTooLarge | Self::EventTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownSource => StatusCode::NOT_FOUND,
            Self::TooManyChannels | Self::QueueFull | Self::KafkaUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::KafkaRefused => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadEncoding
            | Self::NoData
            | Self::InvalidData
            | Self::EventRequired
            | Self::EventBlank
            | Self::IndexedFields
            | Self::ChannelMissing
            | Self::InvalidChannel
            | Self::AckDisabled => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the sender should retry later (503 with `Retry-After`).
    pub fn is_retriable(self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A refused request: why, a detail for the sender, and which event (0-based) when one is at
/// fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: Reason,
    /// What exactly (never a secret).
    pub detail: String,
    /// The offending event's index in the request, if one is.
    pub event: Option<usize>,
}

impl Refusal {
    /// A refusal of the whole request.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            event: None,
        }
    }

    /// A refusal because of the `index`th event.
    pub fn at(reason: Reason, index: usize, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            event: Some(index),
        }
    }
}

impl From<WriteError> for Refusal {
    fn from(err: WriteError) -> Self {
        let reason = match &err {
            WriteError::QueueFull => Reason::QueueFull,
            WriteError::Unavailable(_) => Reason::KafkaUnavailable,
            WriteError::TooLarge(_) => Reason::EventTooLarge,
            WriteError::Refused(_) => Reason::KafkaRefused,
        };
        Self::new(reason, err.to_string())
    }
}
