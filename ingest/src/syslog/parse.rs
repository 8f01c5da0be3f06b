//! Pure: one syslog message into one `raw` record, a JSON object. RFC 5424 and RFC 3164 are
//! parsed by `syslog_loose` (which tries 5424 first); a message it cannot parse is kept whole as
//! `message` with `protocol: "unparsed"`. Bytes that are not UTF-8 become U+FFFD. No IO, no
//! panics on input.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use syslog_loose::{Message, ProcId, Protocol, Variant};

/// A parsed message as written to `raw`.
#[derive(Debug, Serialize)]
struct Record<'a> {
    /// `rfc5424`, `rfc3164` or `unparsed`.
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    facility: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    facility_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    /// 0 (emerg) to 7 (debug): rules compare it ("err and worse" is `<= 3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    severity_code: Option<u8>,
    /// The message's own time (RFC 3339), when it has one; a year-less RFC 3164 time takes
    /// the year of receipt, and a zone-less one UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    procid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgid: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    structured_data: BTreeMap<&'a str, BTreeMap<&'a str, String>>,
    message: &'a str,
    /// When the receiver got it (RFC 3339, milliseconds).
    received_at: String,
    /// The sender's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    /// Set when the message was longer than the limit and was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// Where and when a message was received.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// The time of receipt.
    pub at: DateTime<Utc>,
    /// The sender's address, if known.
    pub peer: Option<std::net::SocketAddr>,
}

/// The `raw` record of one message.
pub fn record(message: &[u8], truncated: bool, receipt: Receipt) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let year = receipt.at.year();
    let parsed: Message<&str> =
        syslog_loose::parse_message_with_year_tz(&text, |_| year, Some(Utc), Variant::Either);
    let unparsed = parsed.facility.is_none()
        && parsed.timestamp.is_none()
        && parsed.hostname.is_none()
        && parsed.appname.is_none();
    let protocol = match parsed.protocol {
        _ if unparsed => "unparsed",
        Protocol::RFC5424(_) => "rfc5424",
        Protocol::RFC3164 => "rfc3164",
    };
    let mut structured_data: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for element in &parsed.structured_data {
        let params = structured_data.entry(element.id).or_default();
        for (name, value) in element.params() {
            params.insert(name, value);
        }
    }
    let record = Record {
        protocol,
        facility: parsed.facility.map(|f| f.as_str()),
        facility_code: parsed.facility.map(|f| f as u8),
        severity: parsed.severity.map(|s| s.as_str()),
        severity_code: parsed.severity.map(|s| s as u8),
        timestamp: parsed.timestamp.map(|t| t.to_rfc3339()),
        hostname: parsed.hostname,
        appname: parsed.appname,
        procid: parsed.procid.map(|p| match p {
            ProcId::PID(pid) => pid.to_string(),
            ProcId::Name(name) => name.to_owned(),
        }),
        msgid: parsed.msgid,
        structured_data,
        message: if unparsed { text.trim() } else { parsed.msg },
        received_at: receipt
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        peer: receipt.peer.map(|p| p.ip().to_string()),
        truncated,
    };
    // Strings, integers and maps of strings: serializing cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::{Value, json};

    use super::*;

    fn parse(message: &str) -> Value {
        let receipt = Receipt {
            at: Utc
                .with_ymd_and_hms(2026, 12, 5, 6, 0, 0)
                .single()
                .expect("valid"),
            peer: Some("127.0.0.1:5000".parse().expect("addr")),
        };
        serde_json::from_slice(&record(message.as_bytes(), false, receipt)).expect("json")
    }

    #[test]
    fn rfc5424_fields() {
        let record = parse(
            r#"<34>1 2026-12-05T05:59:58.123Z web-1 sshd 4242 ID47 [origin ip="10.0.0.1"][meta sequenceId="1"] Failed password for root"#,
        );
        assert_eq!(
            record,
            json!({
                "protocol": "rfc5424", "facility": "auth", "facility_code": 4,
                "severity": "crit", "severity_code": 2,
                "timestamp": "2026-12-05T05:59:58.123+00:00", "hostname": "web-1",
                "appname": "sshd", "procid": "4242", "msgid": "ID47",
                "structured_data": {"origin": {"ip": "10.0.0.1"}, "meta": {"sequenceId": "1"}},
                "message": "Failed password for root",
                "received_at": "2026-12-05T06:00:00.000Z", "peer": "127.0.0.1",
            })
        );
    }

    #[test]
    fn rfc3164_fields_take_the_year_of_receipt() {
        let record =
            parse("<86>Dec  5 05:59:58 bastion sudo[811]: alice : TTY=pts/0 ; COMMAND=/bin/ls");
        assert_eq!(record["protocol"], "rfc3164");
        assert_eq!(record["facility"], "authpriv");
        assert_eq!(record["severity"], "info");
        assert_eq!(record["timestamp"], "2026-12-05T05:59:58+00:00");
        assert_eq!(record["hostname"], "bastion");
        assert_eq!(record["appname"], "sudo");
        assert_eq!(record["procid"], "811");
        assert_eq!(record["message"], "alice : TTY=pts/0 ; COMMAND=/bin/ls");
    }

    #[test]
    fn what_cannot_be_parsed_is_kept_whole() {
        for text in ["just some text", "", "<999>", "\u{fffd}\u{0}"] {
            let record = parse(text);
            assert_eq!(record["message"], text.trim(), "{text:?}: {record}");
        }
        let receipt = Receipt {
            at: Utc::now(),
            peer: None,
        };
        let record: Value =
            serde_json::from_slice(&record(b"\xff\xfe bytes", true, receipt)).expect("json");
        assert_eq!(record["message"], "\u{fffd}\u{fffd} bytes");
        assert_eq!(record["truncated"], true);
    }
}
