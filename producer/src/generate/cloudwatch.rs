//! CloudWatch Logs events from two Lambda functions (Python runtime: `START`, `[INFO]`, `END`
//! and `REPORT` lines as Lambda writes them) and an ECS service's application log, each event
//! with its `logGroup` and `logStream` as a subscription delivers them. The injected anomalies
//! are Lambda timeouts (`Task timed out after 3.00 seconds`), out-of-memory reports (`Max Memory
//! Used` equal to `Memory Size`) and error lines with tracebacks.
//!
//! `line` and `raw` are both the event as `logwarden-ingest` writes it for a subscription
//! payload (`owner`, `logGroup`, `logStream`, `subscriptionFilters`, `id`, `timestamp`,
//! `message`); [`subscription_payload`] groups events back into the payload CloudWatch Logs
//! sends to Firehose.

use serde_json::{Value, json};

use super::sources::{Common, SourceRecord, rfc3339_ms, utc};

const OWNER: &str = "123456789012";
const FILTER: &str = "logwarden";
/// (log group, memory size in MB) of the Lambda functions.
const FUNCTIONS: &[(&str, u64)] = &[
    ("/aws/lambda/checkout-api", 512),
    ("/aws/lambda/image-resizer", 1024),
];
const SERVICE_GROUP: &str = "/ecs/orders-service";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start,
    Info,
    End,
    Report,
    ServiceInfo,
    LambdaError,
    ServiceError,
    Timeout,
    OutOfMemory,
}

const NORMAL: &[(Kind, u32)] = &[
    (Kind::Start, 150),
    (Kind::Info, 300),
    (Kind::End, 150),
    (Kind::Report, 150),
    (Kind::ServiceInfo, 250),
    (Kind::LambdaError, 5),
    (Kind::ServiceError, 5),
    (Kind::Timeout, 3),
    (Kind::OutOfMemory, 2),
];

fn injected(indicator: &str) -> Kind {
    match indicator {
        "cw_error" => Kind::LambdaError,
        "cw_lambda_timeout" => Kind::Timeout,
        "cw_lambda_oom" => Kind::OutOfMemory,
        _ => Kind::Info,
    }
}

/// The CloudWatch Logs generator.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    pub(crate) common: Common,
}

impl CloudWatch {
    pub(crate) fn new(common: Common) -> Self {
        Self { common }
    }

    pub(crate) fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        let c = &mut self.common;
        let injects = c.injects(inject).map(injected);
        let kind = injects.unwrap_or(*c.pick(NORMAL));
        let _ = c.key();
        let counter = c.generated;
        // 56 digits, as CloudWatch Logs event ids are; unique by the counter.
        let id = format!(
            "{:019}{:019}{:018}",
            timestamp_ms.unsigned_abs(),
            counter,
            c.int(0..999_999_999_999_999_999)
        );
        let (group, memory) = *c.one(FUNCTIONS);
        let request = c.uuid();
        let at = rfc3339_ms(timestamp_ms);
        let duration = c.int(20..2_500) as f64 + c.int(0..100) as f64 / 100.0;
        let used = c.int(60..memory / 3);
        let order = c.int(100_000..999_999);
        let message = match kind {
            Kind::Start => format!("START RequestId: {request} Version: $LATEST\n"),
            Kind::Info => {
                format!("[INFO]\t{at}\t{request}\tprocessed key=uploads/{order}.jpg width=640\n")
            }
            Kind::End => format!("END RequestId: {request}\n"),
            Kind::Report => report(&request, duration, memory, used),
            Kind::ServiceInfo => format!(
                "{} INFO  orders.api  order {order} placed total={}.{:02}",
                service_time(timestamp_ms),
                c.int(5..300),
                c.int(0..100)
            ),
            Kind::LambdaError => format!(
                "[ERROR]\t{at}\t{request}\tKeyError: 'user_id'\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 42, in handler\n    user = event['user_id']\n"
            ),
            Kind::ServiceError => format!(
                "{} ERROR orders.db  query timed out after 5000 ms order={order}",
                service_time(timestamp_ms)
            ),
            Kind::Timeout => format!("{at} {request} Task timed out after 3.00 seconds\n\n"),
            Kind::OutOfMemory => report(&request, 2_950.12, memory, memory),
        };
        let group = if matches!(kind, Kind::ServiceInfo | Kind::ServiceError) {
            SERVICE_GROUP
        } else {
            group
        };
        let stream = if group == SERVICE_GROUP {
            "orders/orders-service/7f3c2a1b9d8e4f60".to_owned()
        } else {
            let day = utc(timestamp_ms).format("%Y/%m/%d");
            format!("{day}/[$LATEST]8d2b5c0e7a4f4e1b9c3d6a0f2e5b7c91")
        };
        let event = json!({
            "owner": OWNER,
            "logGroup": group,
            "logStream": stream,
            "subscriptionFilters": [FILTER],
            "id": id,
            "timestamp": timestamp_ms,
            "message": message,
        });
        let line = event.to_string();
        SourceRecord {
            key: id,
            raw: line.clone().into_bytes(),
            indicators: indicators(&message),
            line,
        }
    }
}

fn report(request: &str, duration: f64, memory: u64, used: u64) -> String {
    format!(
        "REPORT RequestId: {request}\tDuration: {duration:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory} MB\tMax Memory Used: {used} MB\t\n",
        duration.ceil() as u64
    )
}

fn service_time(timestamp_ms: i64) -> String {
    utc(timestamp_ms)
        .format("%Y-%m-%d %H:%M:%S,%3f")
        .to_string()
}

/// The CloudWatch Logs subscription payload (`DATA_MESSAGE`) that carries `events` (the `raw`
/// form of records of one log group and stream), as CloudWatch Logs sends it to Firehose
/// (before gzip and base64).
pub fn subscription_payload(events: &[Value]) -> Value {
    let first = events.first().cloned().unwrap_or_default();
    let log_events: Vec<Value> = events
        .iter()
        .map(|e| json!({"id": e["id"], "timestamp": e["timestamp"], "message": e["message"]}))
        .collect();
    json!({
        "messageType": "DATA_MESSAGE",
        "owner": first["owner"],
        "logGroup": first["logGroup"],
        "logStream": first["logStream"],
        "subscriptionFilters": first["subscriptionFilters"],
        "logEvents": log_events,
    })
}

/// The preset's indicators of a CloudWatch Logs message.
fn indicators(message: &str) -> Vec<&'static str> {
    let oom = message.starts_with("REPORT ") && {
        let field = |name: &str| {
            message
                .split('\t')
                .find_map(|part| part.strip_prefix(name))
                .map(|rest| rest.trim().to_owned())
        };
        field("Memory Size: ").is_some() && field("Memory Size: ") == field("Max Memory Used: ")
    };
    [
        (
            "cw_error",
            message.contains("ERROR")
                || message.contains("Exception")
                || message.contains("Traceback"),
        ),
        (
            "cw_lambda_timeout",
            message.contains("Task timed out after"),
        ),
        (
            "cw_lambda_oom",
            oom || message.contains("Runtime exited with error: signal: killed")
                || message.contains("Runtime.OutOfMemory"),
        ),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use pipeline::wire::Source;

    use super::super::sources::tests::records;
    use super::*;

    #[test]
    fn events_group_into_a_subscription_payload() {
        let all = records(Source::Cloudwatch, 200, Some("cw_lambda_oom"));
        let events: Vec<Value> = all
            .iter()
            .map(|r| serde_json::from_str(&r.line).expect("JSON"))
            .filter(|e: &Value| e["logGroup"] == "/aws/lambda/checkout-api")
            .collect();
        let payload = subscription_payload(&events);
        assert_eq!(payload["messageType"], "DATA_MESSAGE");
        assert_eq!(
            payload["logEvents"].as_array().map(Vec::len),
            Some(events.len())
        );
        let oom = all
            .iter()
            .find(|r| r.indicators.contains(&"cw_lambda_oom"))
            .expect("one");
        assert!(oom.line.contains("Memory Size: "), "{}", oom.line);
    }
}
