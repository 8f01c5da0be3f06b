//! The Splunk HTTP Event Collector receiver against the stack's Kafka, with curl sending HEC's
//! documented payloads: every record counted on `raw` with its source header and contents, and
//! HEC's documented answers to what it refuses.

mod common;

use common::{BodyFile, Ingest, TOKEN, TOKEN_2, curl, gzip, metric, sourced};
use pipeline::wire::Source;
use serde_json::{Value, json};

fn splunk(token: &str) -> String {
    format!("Authorization: Splunk {token}")
}

#[tokio::test]
async fn hec_events_from_curl_reach_raw_with_their_source() {
    let ingest = Ingest::start("hec-events", &[]).await;
    let url = ingest.url();
    // HEC's documented examples: an envelope with every field, and a batch of concatenated
    // events with no separator.
    let batch = concat!(
        r#"{"time":1764914400.123,"host":"web-1","source":"/var/log/app.log","sourcetype":"app","index":"main","fields":{"team":"payments","region":["eu","us"]},"event":{"level":"error","message":"card declined"}}"#,
        "\n",
        r#"{"event":"Hello world!"}{"event":"second","sourcetype":"plain"}"#
    );
    let answer = curl(&[
        &format!("{url}/services/collector/event"),
        "-H",
        &splunk(TOKEN),
        "-d",
        batch,
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"text": "Success", "code": 0}))
    );
    // The second token, from a LOGWARDEN_SECRET_* variable; a gzip body on the bare endpoint.
    let gzipped = BodyFile::new(&gzip(
        br#"{"event":"zipped 1"} {"event":"zipped 2","host":"h2"}"#,
    ));
    let answer = curl(&[
        &format!("{url}/services/collector"),
        "-H",
        &splunk(TOKEN_2),
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        &gzipped.arg(),
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"text": "Success", "code": 0}))
    );
    let answer = curl(&[
        &format!("{url}/services/collector/raw?host=web-2&sourcetype=nginx&index=web"),
        "-H",
        &splunk(TOKEN),
        "--data-binary",
        "GET /index.html 200\nPOST /login 401\n",
    ])
    .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"text": "Success", "code": 0}))
    );

    let records = sourced(&ingest.raw(7).await);
    assert_eq!(records.len(), 7, "exactly the records sent: {records:?}");
    assert!(
        records
            .iter()
            .all(|(source, _)| *source == Some(Source::Splunk))
    );
    let values: Vec<&Value> = records.iter().map(|(_, v)| v).collect();
    assert_eq!(
        *values[0],
        serde_json::from_str::<Value>(batch.lines().next().expect("line")).expect("json"),
        "an envelope is kept as sent"
    );
    let events: Vec<&Value> = values.iter().map(|v| &v["event"]).collect();
    assert_eq!(
        events,
        [
            &json!({"level":"error","message":"card declined"}),
            &json!("Hello world!"),
            &json!("second"),
            &json!("zipped 1"),
            &json!("zipped 2"),
            &json!("GET /index.html 200"),
            &json!("POST /login 401"),
        ]
    );
    for raw in &values[5..] {
        assert_eq!(
            (&raw["host"], &raw["sourcetype"], &raw["index"]),
            (&json!("web-2"), &json!("nginx"), &json!("web"))
        );
        assert!(raw["time"].as_f64().is_some_and(|t| t > 1.7e9), "{raw}");
    }
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "logwarden_ingest_records_total",
            "source=\"splunk\""
        ),
        7.0
    );
    assert_eq!(metric(&metrics, "logwarden_ingest_refused_total", ""), 0.0);
    let health = curl(&[&format!("{url}/services/collector/health")]).await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"text": "HEC is healthy", "code": 17}))
    );
    ingest.stop().await;
}

#[tokio::test]
async fn hec_refusals_follow_splunk_and_are_counted() {
    let ingest = Ingest::start(
        "hec-refusals",
        &[
            ("LOGWARDEN_INGEST__HTTP__MAX_BODY_BYTES", "2000"),
            ("LOGWARDEN_INGEST__MAX_EVENT_BYTES", "300"),
        ],
    )
    .await;
    let event = format!("{}/services/collector/event", ingest.url());
    let auth = splunk(TOKEN);
    let large_event = format!(r#"{{"event":"{}"}}"#, "x".repeat(400));
    let large_body = format!(r#"{{"event":"a"}}{}"#, " ".repeat(3000));
    let gzip_bomb = BodyFile::new(&gzip(
        format!(r#"{{"event":"{}"}}"#, "y".repeat(100_000)).as_bytes(),
    ));
    let gzip_bomb = gzip_bomb.arg();
    let cases: Vec<(Vec<&str>, u16, Value, &str)> = vec![
        (
            vec!["-d", r#"{"event":"a"}"#],
            401,
            json!({"text":"Token is required","code":2}),
            "token_required",
        ),
        (
            vec!["-H", "Authorization: Bearer x", "-d", r#"{"event":"a"}"#],
            401,
            json!({"text":"Invalid authorization","code":3}),
            "invalid_authorization",
        ),
        (
            vec![
                "-H",
                "Authorization: Splunk wrong-token",
                "-d",
                r#"{"event":"a"}"#,
            ],
            403,
            json!({"text":"Invalid token","code":4}),
            "invalid_token",
        ),
        (
            vec!["-H", &auth, "-d", ""],
            400,
            json!({"text":"No data","code":5}),
            "no_data",
        ),
        (
            vec!["-H", &auth, "-d", r#"{"event":"a"}{"event":"b""#],
            400,
            json!({"text":"Invalid data format","code":6,"invalid-event-number":1}),
            "invalid_data",
        ),
        (
            vec!["-H", &auth, "-d", r#"{"event":"a"}{"host":"h"}"#],
            400,
            json!({"text":"Event field is required","code":12,"invalid-event-number":1}),
            "event_required",
        ),
        (
            vec!["-H", &auth, "-d", r#"{"event":""}"#],
            400,
            json!({"text":"Event field cannot be blank","code":13,"invalid-event-number":0}),
            "event_blank",
        ),
        (
            vec!["-H", &auth, "-d", r#"{"event":"a","fields":{"x":{"y":1}}}"#],
            400,
            json!({"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}),
            "indexed_fields",
        ),
        (
            vec!["-H", &auth, "-d", &large_event],
            413,
            json!({"text":"Content too large","code":6,"invalid-event-number":0}),
            "event_too_large",
        ),
        (
            vec!["-H", &auth, "-d", &large_body],
            413,
            json!({"text":"Content too large","code":6}),
            "body_too_large",
        ),
        (
            vec![
                "-H",
                &auth,
                "-H",
                "Content-Encoding: gzip",
                "--data-binary",
                &gzip_bomb,
            ],
            413,
            json!({"text":"Content too large","code":6}),
            "body_too_large",
        ),
        (
            vec![
                "-H",
                &auth,
                "-H",
                "Content-Encoding: br",
                "-d",
                r#"{"event":"a"}"#,
            ],
            400,
            json!({"text":"Invalid data format","code":6}),
            "bad_encoding",
        ),
    ];
    for (args, status, body, _) in &cases {
        let mut full = vec![event.as_str()];
        full.extend(args);
        let answer = curl(&full).await;
        assert_eq!(
            (answer.status, answer.json()),
            (*status, body.clone()),
            "{full:?}"
        );
    }
    let ack = curl(&[
        &format!("{}/services/collector/ack", ingest.url()),
        "-H",
        &auth,
        "-d",
        r#"{"acks":[0]}"#,
    ])
    .await;
    assert_eq!(
        (ack.status, ack.json()),
        (400, json!({"text":"ACK is disabled","code":14}))
    );

    assert!(
        ingest.raw(0).await.is_empty(),
        "nothing of a refused request is written"
    );
    let metrics = ingest.metrics().await;
    for (_, _, _, reason) in &cases {
        let expected = cases.iter().filter(|c| c.3 == *reason).count() as f64;
        assert_eq!(
            metric(
                &metrics,
                "logwarden_ingest_refused_total",
                &format!("reason=\"{reason}\"")
            ),
            expected,
            "{reason}"
        );
    }
    assert_eq!(metric(&metrics, "logwarden_ingest_records_total", ""), 0.0);
    assert!(!metrics.contains("wrong-token") && !metrics.contains(TOKEN));
    ingest.stop().await;
}

#[tokio::test]
async fn hec_indexer_acknowledgements_per_channel() {
    let ingest = Ingest::start(
        "hec-acks",
        &[("LOGWARDEN_INGEST__HTTP__HEC_ACKNOWLEDGEMENTS", "true")],
    )
    .await;
    let url = ingest.url();
    let auth = splunk(TOKEN);
    let channel = "0f6a5e57-1c02-4f4e-9d57-3a5f3c1b2a90";
    let event = format!("{url}/services/collector/event");
    let send = |extra: &'static [&'static str]| {
        let mut args = vec![event.clone(), "-H".into(), auth.clone()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args.extend(["-d".to_owned(), r#"{"event":"acked"}"#.to_owned()]);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args).await
        }
    };
    let missing = send(&[]).await;
    assert_eq!(
        (missing.status, missing.json()),
        (400, json!({"text":"Data channel is missing","code":10}))
    );
    let invalid = send(&["-H", "X-Splunk-Request-Channel: not-a-guid"]).await;
    assert_eq!(
        (invalid.status, invalid.json()),
        (400, json!({"text":"Invalid data channel","code":11}))
    );
    let header = format!("X-Splunk-Request-Channel: {channel}");
    let with_channel: &'static [&'static str] = &[
        "-H",
        "X-Splunk-Request-Channel: 0f6a5e57-1c02-4f4e-9d57-3a5f3c1b2a90",
    ];
    let first = send(with_channel).await;
    assert_eq!(
        (first.status, first.json()),
        (200, json!({"text":"Success","code":0,"ackId":0}))
    );
    let second = send(with_channel).await;
    assert_eq!(second.json()["ackId"], 1);
    let by_query = curl(&[
        &format!("{url}/services/collector/raw?channel={channel}"),
        "-H",
        &auth,
        "-d",
        "a raw line",
    ])
    .await;
    assert_eq!(by_query.json()["ackId"], 2);
    let acks = curl(&[
        &format!("{url}/services/collector/ack"),
        "-H",
        &auth,
        "-H",
        &header,
        "-d",
        r#"{"acks":[0,2,3]}"#,
    ])
    .await;
    assert_eq!(
        (acks.status, acks.json()),
        (200, json!({"acks":{"0":true,"2":true,"3":false}}))
    );
    assert_eq!(ingest.raw(3).await.len(), 3);
    ingest.stop().await;
}
