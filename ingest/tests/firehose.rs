//! Amazon Data Firehose's HTTP endpoint delivery (WAF logs, CloudWatch Logs subscriptions) and
//! plain NDJSON, with curl sending the documented payloads; every record counted on `raw`.

mod common;

use common::{
    BodyFile, Ingest, TOKEN, TOKEN_2, base64, curl, firehose_request, gzip, metric, sourced,
};
use pipeline::wire::Source;
use serde_json::{Value, json};

/// A WAF log record in AWS's documented shape (no `httpStatus`; rule groups, labels).
fn waf_record(i: usize, action: &str) -> Value {
    json!({
        "timestamp": 1_764_914_400_000_i64 + i as i64,
        "formatVersion": 1,
        "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/prod/a1b2c3",
        "terminatingRuleId": "AWS-AWSManagedRulesSQLiRuleSet",
        "terminatingRuleType": "MANAGED_RULE_GROUP",
        "action": action,
        "terminatingRuleMatchDetails": [],
        "httpSourceName": "ALB",
        "httpSourceId": "123456789012-app/prod-alb/0123456789abcdef",
        "ruleGroupList": [{
            "ruleGroupId": "AWS#AWSManagedRulesSQLiRuleSet",
            "terminatingRule": {"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK", "ruleMatchDetails": null},
            "nonTerminatingMatchingRules": [],
            "excludedRules": null
        }],
        "rateBasedRuleList": [],
        "nonTerminatingMatchingRules": [],
        "requestHeadersInserted": null,
        "responseCodeSent": null,
        "httpRequest": {
            "clientIp": "203.0.113.7",
            "country": "-",
            "headers": [{"name": "Host", "value": "shop.example.com"}],
            "uri": "/search",
            "args": "q=1%27%20OR%201=1",
            "httpVersion": "HTTP/1.1",
            "httpMethod": "GET",
            "requestId": format!("1-6751a0e0-{i:024x}")
        },
        "labels": [{"name": "awswaf:managed:aws:sql-database:SQLi_QueryArguments"}]
    })
}

#[tokio::test]
async fn firehose_waf_and_cloudwatch_records_reach_raw() {
    let ingest = Ingest::start("firehose", &[]).await;
    let url = ingest.url();
    let key = format!("X-Amz-Firehose-Access-Key: {TOKEN}");
    let waf: Vec<Value> = (0..5)
        .map(|i| waf_record(i, if i % 2 == 0 { "BLOCK" } else { "CAPTCHA" }))
        .collect();
    // Firehose sends each WAF log as one record, newline-terminated.
    let data: Vec<String> = waf
        .iter()
        .map(|r| base64(format!("{r}\n").as_bytes()))
        .collect();
    let plain = curl(&[
        &format!("{url}/firehose/waf"),
        "-H",
        &key,
        "-H",
        "X-Amz-Firehose-Request-Id: 5f3c6a1e-0001",
        "-H",
        "Content-Type: application/json",
        "-d",
        &firehose_request("5f3c6a1e-0001", &data[..3]),
    ])
    .await;
    assert_eq!(plain.status, 200, "{plain:?}");
    assert_eq!(plain.json()["requestId"], "5f3c6a1e-0001");
    assert!(
        plain.json()["timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000_000)
    );
    // The GZIP content encoding Firehose can be configured with, and the second key.
    let zipped = BodyFile::new(&gzip(
        firehose_request("5f3c6a1e-0002", &data[3..]).as_bytes(),
    ));
    let answer = curl(&[
        &format!("{url}/firehose/waf"),
        "-H",
        &format!("X-Amz-Firehose-Access-Key: {TOKEN_2}"),
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        &zipped.arg(),
    ])
    .await;
    assert_eq!(
        (answer.status, &answer.json()["requestId"]),
        (200, &json!("5f3c6a1e-0002"))
    );
    // CloudWatch Logs: a subscription payload (gzip JSON) with three events, and a control
    // message that is dropped and counted.
    let logs = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/aws/lambda/checkout", "logStream": "2026/12/05/[$LATEST]0a1b2c",
        "subscriptionFilters": ["to-logwarden"],
        "logEvents": [
            {"id": "37960000000000000000000001", "timestamp": 1_764_914_400_000_i64, "message": "START RequestId: 1"},
            {"id": "37960000000000000000000002", "timestamp": 1_764_914_403_000_i64, "message": "Task timed out after 3.00 seconds"},
            {"id": "37960000000000000000000003", "timestamp": 1_764_914_403_001_i64, "message": "REPORT RequestId: 1 Max Memory Used: 128 MB"}
        ]
    });
    let control = json!({
        "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
        "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1_764_914_400_000_i64,
        "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]
    });
    let cloudwatch = curl(&[
        &format!("{url}/firehose/cloudwatch"),
        "-H",
        &key,
        "-d",
        &firehose_request(
            "5f3c6a1e-0003",
            &[
                base64(&gzip(control.to_string().as_bytes())),
                base64(&gzip(logs.to_string().as_bytes())),
            ],
        ),
    ])
    .await;
    assert_eq!(cloudwatch.status, 200, "{cloudwatch:?}");

    let records = sourced(&ingest.raw(8).await);
    assert_eq!(records.len(), 8, "{records:?}");
    let (waf_records, cw_records) = records.split_at(5);
    assert_eq!(
        waf_records.to_vec(),
        waf.iter()
            .map(|r| (Some(Source::Waf), r.clone()))
            .collect::<Vec<_>>(),
        "WAF records arrive as sent"
    );
    let messages: Vec<&Value> = cw_records.iter().map(|(_, v)| &v["message"]).collect();
    assert_eq!(
        messages,
        [
            &json!("START RequestId: 1"),
            &json!("Task timed out after 3.00 seconds"),
            &json!("REPORT RequestId: 1 Max Memory Used: 128 MB")
        ]
    );
    for (source, record) in cw_records {
        assert_eq!(*source, Some(Source::Cloudwatch));
        assert_eq!(record["logGroup"], "/aws/lambda/checkout");
        assert_eq!(record["logStream"], "2026/12/05/[$LATEST]0a1b2c");
    }
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(&metrics, "logwarden_ingest_records_total", "source=\"waf\""),
        5.0
    );
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_records_total",
            "source=\"cloudwatch\""
        ),
        3.0
    );
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_skipped_total",
            "reason=\"control_message\""
        ),
        1.0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn firehose_refusals_carry_the_request_id() {
    let ingest = Ingest::start("firehose-refusals", &[]).await;
    let url = ingest.url();
    let body = firehose_request("r-9", &[base64(b"{}")]);
    let cases: [(&str, Vec<String>, u16, &str); 4] = [
        ("waf", vec![], 401, "token_required"),
        (
            "waf",
            vec!["-H".into(), "X-Amz-Firehose-Access-Key: nope".into()],
            403,
            "invalid_token",
        ),
        (
            "nginx",
            vec!["-H".into(), format!("X-Amz-Firehose-Access-Key: {TOKEN}")],
            404,
            "unknown_source",
        ),
        (
            "waf",
            vec![
                "-H".into(),
                format!("X-Amz-Firehose-Access-Key: {TOKEN}"),
                "-d".into(),
                firehose_request("r-9", &["%%%".into()]),
            ],
            400,
            "invalid_data",
        ),
    ];
    for (source, extra, status, reason) in &cases {
        let target = format!("{url}/firehose/{source}");
        let mut args = vec![target.as_str(), "-H", "X-Amz-Firehose-Request-Id: r-9"];
        args.extend(extra.iter().map(String::as_str));
        if !extra.iter().any(|a| a == "-d") {
            args.extend(["-d", &body]);
        }
        let answer = curl(&args).await;
        assert_eq!(answer.status, *status, "{args:?}: {answer:?}");
        let json = answer.json();
        assert_eq!(json["requestId"], "r-9", "{json}");
        assert!(
            json["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with(reason)),
            "{json}"
        );
    }
    assert!(ingest.raw(0).await.is_empty());
    ingest.stop().await;
}

#[tokio::test]
async fn ndjson_lines_reach_raw_under_their_source() {
    let ingest = Ingest::start("ndjson", &[]).await;
    let url = ingest.url();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let lines =
        "{\"app\":\"billing\",\"level\":\"error\"}\n\n{\"app\":\"billing\",\"level\":\"info\"}\r\n";
    let answer = curl(&[
        &format!("{url}/ingest/ndjson"),
        "-H",
        &bearer,
        "--data-binary",
        lines,
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"accepted": 2}))
    );
    let waf = waf_record(7, "BLOCK").to_string();
    let answer = curl(&[
        &format!("{url}/ingest/waf"),
        "-H",
        &bearer,
        "--data-binary",
        &waf,
    ])
    .await;
    assert_eq!(answer.status, 200);
    let refused = curl(&[
        &format!("{url}/ingest/ndjson"),
        "-H",
        &bearer,
        "--data-binary",
        "{\"a\":1}\nnot json\n",
    ])
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"], "invalid_data");
    assert_eq!(refused.json()["event"], 1);
    let unknown = curl(&[&format!("{url}/ingest/nginx"), "-H", &bearer, "-d", "{}"]).await;
    assert_eq!(unknown.status, 404);
    let records = sourced(&ingest.raw(3).await);
    assert_eq!(
        records,
        [
            (
                Some(Source::Ndjson),
                json!({"app":"billing","level":"error"})
            ),
            (
                Some(Source::Ndjson),
                json!({"app":"billing","level":"info"})
            ),
            (Some(Source::Waf), waf_record(7, "BLOCK")),
        ]
    );
    ingest.stop().await;
}
