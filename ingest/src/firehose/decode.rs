//! Pure: an Amazon Data Firehose HTTP endpoint delivery request into `raw` records. No IO, no
//! panics on input.
//!
//! The request is `{"requestId":..,"timestamp":..,"records":[{"data":"<base64>"}]}`. For a WAF
//! (or any JSON) stream each record's data is one log record, kept as sent (a trailing newline
//! removed). For CloudWatch Logs the data is a subscription payload (gzip JSON, as CloudWatch
//! Logs sends it; plain JSON accepted too) with `logEvents[]`: each log event becomes one record
//! keeping `owner`, `logGroup`, `logStream` and `subscriptionFilters`; `CONTROL_MESSAGE`s (the
//! reachability checks CloudWatch Logs sends) are dropped and counted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pipeline::wire::Source;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::body::gunzip;
use crate::http::refusal::{Reason, Refusal};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    request_id: String,
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    data: String,
}

/// A CloudWatch Logs subscription payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription<'a> {
    message_type: String,
    #[serde(borrow, default)]
    owner: Option<&'a RawValue>,
    #[serde(borrow, default)]
    log_group: Option<&'a RawValue>,
    #[serde(borrow, default)]
    log_stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subscription_filters: Option<&'a RawValue>,
    #[serde(borrow, default)]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    message: &'a RawValue,
}

/// One CloudWatch Logs event as a `raw` record.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CloudWatchRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_group: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_stream: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_filters: Option<&'a RawValue>,
    id: &'a RawValue,
    timestamp: &'a RawValue,
    message: &'a RawValue,
}

/// A decoded request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The request's id, echoed in the response.
    pub request_id: String,
    /// The records for `raw`.
    pub records: Vec<Vec<u8>>,
    /// CloudWatch Logs `CONTROL_MESSAGE`s dropped.
    pub control_messages: usize,
}

/// The request id alone, for an answer to a request that cannot be decoded.
pub fn request_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Id {
        request_id: String,
    }
    serde_json::from_slice::<Id>(body)
        .ok()
        .map(|id| id.request_id)
}

/// Decodes a request of `source`; `max_event` bounds every record and every decompressed
/// payload.
pub fn decode(body: &[u8], source: Source, max_event: usize) -> Result<Decoded, Refusal> {
    let request: Request = serde_json::from_slice(body).map_err(|err| {
        Refusal::new(
            Reason::InvalidData,
            format!("not a Firehose request ({{\"requestId\",\"records\":[{{\"data\"}}]}}): {err}"),
        )
    })?;
    let mut decoded = Decoded {
        request_id: request.request_id,
        ..Decoded::default()
    };
    for (index, record) in request.records.iter().enumerate() {
        let data = STANDARD.decode(record.data.as_bytes()).map_err(|err| {
            Refusal::at(
                Reason::InvalidData,
                index,
                format!("record {index}: data is not base64: {err}"),
            )
        })?;
        if source == Source::Cloudwatch {
            unpack_cloudwatch(&data, index, max_event, &mut decoded)?;
        } else {
            let data = data.trim_ascii_end();
            if data.is_empty() {
                continue;
            }
            check_size(data.len(), index, max_event)?;
            decoded.records.push(data.to_vec());
        }
    }
    Ok(decoded)
}

fn unpack_cloudwatch(
    data: &[u8],
    index: usize,
    max_event: usize,
    decoded: &mut Decoded,
) -> Result<(), Refusal> {
    let json = if data.starts_with(&[0x1f, 0x8b]) {
        gunzip(data, max_event.saturating_mul(64)).map_err(|refusal| Refusal {
            event: Some(index),
            ..refusal
        })?
    } else {
        data.to_vec()
    };
    let payload: Subscription<'_> = serde_json::from_slice(&json).map_err(|err| {
        Refusal::at(
            Reason::InvalidData,
            index,
            format!("record {index}: not a CloudWatch Logs subscription payload: {err}"),
        )
    })?;
    match payload.message_type.as_str() {
        "CONTROL_MESSAGE" => {
            decoded.control_messages += 1;
            Ok(())
        }
        "DATA_MESSAGE" => {
            for event in &payload.log_events {
                let record = CloudWatchRecord {
                    owner: payload.owner,
                    log_group: payload.log_group,
                    log_stream: payload.log_stream,
                    subscription_filters: payload.subscription_filters,
                    id: event.id,
                    timestamp: event.timestamp,
                    message: event.message,
                };
                // Raw JSON values only: serializing cannot fail.
                let bytes = serde_json::to_vec(&record).unwrap_or_default();
                check_size(bytes.len(), index, max_event)?;
                decoded.records.push(bytes);
            }
            Ok(())
        }
        other => Err(Refusal::at(
            Reason::InvalidData,
            index,
            format!("record {index}: unknown messageType `{other}`"),
        )),
    }
}

fn check_size(len: usize, index: usize, max_event: usize) -> Result<(), Refusal> {
    if len > max_event {
        return Err(Refusal::at(
            Reason::EventTooLarge,
            index,
            format!("record {index} is {len} bytes, over {max_event}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_base64(text: &str) -> String {
        STANDARD.encode(crate::http::body::gzip(text.as_bytes()))
    }

    fn request(data: &[String]) -> Vec<u8> {
        let records: Vec<_> = data
            .iter()
            .map(|d| serde_json::json!({"data": d}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
            "timestamp": 1_578_090_901_599_i64,
            "records": records,
        }))
        .expect("json")
    }

    #[test]
    fn waf_records_are_kept_as_sent() {
        let body = request(&[
            STANDARD.encode("{\"action\":\"BLOCK\"}\n"),
            STANDARD.encode("{\"action\":\"ALLOW\"}"),
        ]);
        let decoded = decode(&body, Source::Waf, 1000).expect("valid");
        assert_eq!(decoded.request_id, "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
        assert_eq!(
            decoded.records,
            [
                b"{\"action\":\"BLOCK\"}".to_vec(),
                b"{\"action\":\"ALLOW\"}".to_vec()
            ]
        );
    }

    #[test]
    fn cloudwatch_payloads_become_one_record_per_event() {
        let data = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/f","logStream":"2026/12/05/[$LATEST]abc","subscriptionFilters":["all"],"logEvents":[{"id":"1","timestamp":1733380000000,"message":"START"},{"id":"2","timestamp":1733380000001,"message":"Task timed out after 3.00 seconds"}]}"#;
        let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        let body = request(&[
            gzip_base64(data),
            gzip_base64(control),
            STANDARD.encode(data),
        ]);
        let decoded = decode(&body, Source::Cloudwatch, 1000).expect("valid");
        assert_eq!(decoded.control_messages, 1);
        assert_eq!(decoded.records.len(), 4);
        let second: serde_json::Value = serde_json::from_slice(&decoded.records[1]).expect("json");
        assert_eq!(
            second,
            serde_json::json!({"owner":"123456789012","logGroup":"/aws/lambda/f","logStream":"2026/12/05/[$LATEST]abc","subscriptionFilters":["all"],"id":"2","timestamp":1733380000001_i64,"message":"Task timed out after 3.00 seconds"})
        );
    }

    #[test]
    fn bad_requests_name_the_record() {
        let cases: [(Vec<u8>, Source, Reason, Option<usize>); 4] = [
            (b"{}".to_vec(), Source::Waf, Reason::InvalidData, None),
            (
                request(&[STANDARD.encode("{}"), "%%%".into()]),
                Source::Waf,
                Reason::InvalidData,
                Some(1),
            ),
            (
                request(&[gzip_base64("{\"messageType\":\"OTHER\"}")]),
                Source::Cloudwatch,
                Reason::InvalidData,
                Some(0),
            ),
            (
                request(&[STANDARD.encode("x".repeat(2000))]),
                Source::Waf,
                Reason::EventTooLarge,
                Some(0),
            ),
        ];
        for (body, source, reason, event) in cases {
            let refusal = decode(&body, source, 1000).expect_err("refused");
            assert_eq!(
                (refusal.reason, refusal.event),
                (reason, event),
                "{refusal:?}"
            );
        }
    }
}
