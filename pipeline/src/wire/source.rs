//! The source of a `raw` record: which kind of log it is, carried in the record's
//! [`SOURCE_HEADER`] so the payload stays the sender's bytes (or the receiver's one JSON object
//! per event) and every later stage can pick its rules without parsing first.

use std::fmt;

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The header naming a `raw` record's [`Source`]. Records without it are the seed's WAF shape
/// (the producer writes none).
pub const SOURCE_HEADER: &str = "logwarden-source";

/// What kind of log a `raw` record is: the value of its [`SOURCE_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An AWS WAF log record (one JSON object), e.g. from Firehose or S3.
    Waf,
    /// A CloudTrail record (one element of a log file's `Records`).
    Cloudtrail,
    /// A syslog message (RFC 5424 or RFC 3164) parsed into fields.
    Syslog,
    /// One CloudWatch Logs event with its `logGroup` and `logStream`.
    Cloudwatch,
    /// A Splunk HTTP Event Collector event in its envelope (`time`, `host`, `event`, ...).
    Splunk,
    /// Any other JSON object, one per line.
    Ndjson,
}

impl Source {
    /// Every source, in the order users read them.
    pub const ALL: [Source; 6] = [
        Self::Waf,
        Self::Cloudtrail,
        Self::Syslog,
        Self::Cloudwatch,
        Self::Splunk,
        Self::Ndjson,
    ];

    /// The header value and metric label: `waf`, `cloudtrail`, `syslog`, `cloudwatch`,
    /// `splunk`, `ndjson`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waf => "waf",
            Self::Cloudtrail => "cloudtrail",
            Self::Syslog => "syslog",
            Self::Cloudwatch => "cloudwatch",
            Self::Splunk => "splunk",
            Self::Ndjson => "ndjson",
        }
    }

    /// Parses a header value or a URL segment (exact, lowercase).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The headers of a `raw` record of this source.
    pub fn to_headers(self) -> OwnedHeaders {
        OwnedHeaders::new_with_capacity(1).insert(Header {
            key: SOURCE_HEADER,
            value: Some(self.as_str()),
        })
    }

    /// The source a record's headers name: `None` when there is no [`SOURCE_HEADER`] (the
    /// seed's records) or its value is not a known source.
    pub fn from_headers(headers: &impl Headers) -> Option<Self> {
        headers
            .iter()
            .find(|header| header.key == SOURCE_HEADER)
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(Self::parse)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_round_trips_through_its_header() {
        for source in Source::ALL {
            assert_eq!(Source::from_headers(&source.to_headers()), Some(source));
            assert_eq!(Source::parse(&source.to_string()), Some(source));
        }
        assert_eq!(Source::from_headers(&OwnedHeaders::new()), None);
        let unknown = OwnedHeaders::new().insert(Header {
            key: SOURCE_HEADER,
            value: Some("nginx"),
        });
        assert_eq!(Source::from_headers(&unknown), None);
        assert_eq!(Source::parse("WAF"), None, "header values are lowercase");
    }
}
