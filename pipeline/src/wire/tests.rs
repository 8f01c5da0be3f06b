use super::*;

#[test]
fn raw_log_has_the_seed_field_names() {
    let log = RawLog {
        timestamp: 1_576_280_412_771,
        format_version: 1,
        action: "ALLOW".into(),
        http_source_name: "ALB".into(),
        http_source_id: "alb".into(),
        http_status: "200".into(),
        http_request: HttpRequest {
            client_ip: "1.1.1.1".into(),
            country: "US".into(),
            headers: vec![HttpHeader {
                name: "Host".into(),
                value: "example.com".into(),
            }],
            uri: "/".into(),
            args: String::new(),
            http_version: "HTTP/1.1".into(),
            http_method: "GET".into(),
            request_id: "r-1".into(),
        },
    };
    let json = serde_json::to_value(&log).expect("serializes");
    for key in [
        "timestamp",
        "formatVersion",
        "action",
        "httpSourceName",
        "httpSourceId",
        "httpStatus",
        "httpRequest",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    for key in [
        "clientIp",
        "country",
        "headers",
        "uri",
        "args",
        "httpVersion",
        "httpMethod",
        "requestId",
    ] {
        assert!(json["httpRequest"].get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["timestamp"], 1_576_280_412_771_i64);
    let back: RawLog = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, log);
}

#[test]
fn monitored_fields_parse_by_name_or_path() {
    assert_eq!(
        MonitoredField::parse("country"),
        Ok(MonitoredField::Country)
    );
    assert_eq!(
        MonitoredField::parse("httpRequest.httpMethod"),
        Ok(MonitoredField::HttpMethod)
    );
    assert_eq!(MonitoredField::parse("ACTION"), Ok(MonitoredField::Action));
    let err = MonitoredField::parse("colour").unwrap_err().to_string();
    assert!(
        err.contains("colour") && err.contains("httpSourceName"),
        "{err}"
    );
    let label = serde_json::to_value(MonitoredField::HttpStatus).expect("serializes");
    assert_eq!(label, "httpStatus");
}

#[test]
fn dead_letter_headers_round_trip() {
    let dead = DeadLetter {
        reason: DeadLetterReason::NotJson,
        detail: "expected value at line 1 column 1".into(),
        stage: "transformer".into(),
        source: SourcePosition {
            topic: "raw".into(),
            partition: 3,
            offset: 12_345,
        },
    };
    assert_eq!(
        DeadLetter::from_headers(&dead.to_headers()),
        Some(dead.clone())
    );
    assert_eq!(DeadLetter::original_bytes(&dead.to_headers()), None);
    let truncated = dead.to_truncated_headers(1_200_000);
    assert_eq!(DeadLetter::from_headers(&truncated), Some(dead));
    assert_eq!(DeadLetter::original_bytes(&truncated), Some(1_200_000));
    assert_eq!(DeadLetter::from_headers(&OwnedHeaders::new()), None);
    for reason in DeadLetterReason::ALL {
        assert_eq!(DeadLetterReason::from_code(reason.as_str()), Some(reason));
    }
}

#[test]
fn event_ids_are_stable_and_distinct() {
    assert_eq!(event_id("raw", 2, 7), event_id("raw", 2, 7));
    assert_ne!(event_id("raw", 2, 7), event_id("raw", 3, 7));
}

/// A live result and a historical one: the JSON form is pinned byte for byte, because the
/// results index's template and mapping, documents already stored and consumers of
/// `anomalies` all depend on it.
#[test]
fn result_docs_keep_their_json_form() {
    let mut result = ResultDoc {
        detector_id: "country-anomaly-detector".into(),
        detector_name: "country-anomaly-detector".into(),
        feature_data: vec![FeatureData {
            feature_id: "UNK_country_sum".into(),
            feature_name: "UNK_country_sum".into(),
            data: 12.0,
        }],
        data_start_time: 1_700_000_000_000,
        data_end_time: 1_700_000_060_000,
        execution_start_time: 1_700_000_125_000,
        execution_end_time: 1_700_000_125_042,
        anomaly_score: 2.5,
        anomaly_grade: 0.75,
        confidence: 0.9,
        expected_value: 0.5,
        value: 12.0,
        events: 1_200,
        rule: Some("level".into()),
        task_id: None,
        error: None,
        entity: None,
        entities: None,
        relevant_attribution: None,
    };
    let live = concat!(
        r#"{"detector_id":"country-anomaly-detector","detector_name":"country-anomaly-detector","#,
        r#""feature_data":[{"feature_id":"UNK_country_sum","feature_name":"UNK_country_sum","data":12.0}],"#,
        r#""data_start_time":1700000000000,"data_end_time":1700000060000,"#,
        r#""execution_start_time":1700000125000,"execution_end_time":1700000125042,"#,
        r#""anomaly_score":2.5,"anomaly_grade":0.75,"confidence":0.9,"expected_value":0.5,"#,
        r#""value":12.0,"events":1200,"rule":"level"}"#
    );
    assert_eq!(serde_json::to_string(&result).expect("serializes"), live);
    assert_eq!(
        serde_json::from_str::<ResultDoc>(live).expect("parses"),
        result
    );
    assert_eq!(result.id(), "country-anomaly-detector-1700000000000");

    result.rule = None;
    result.task_id = Some("task-1".into());
    let historical = live.replace(r#""rule":"level""#, r#""task_id":"task-1""#);
    assert_eq!(
        serde_json::to_string(&result).expect("serializes"),
        historical
    );
    assert_eq!(
        serde_json::from_str::<ResultDoc>(&historical).expect("parses"),
        result
    );
    assert_eq!(result.id(), "task-1-country-anomaly-detector-1700000000000");

    // A part's summary of split entities: its own id, the part in the summary.
    result.task_id = None;
    result.entities = Some(EntitiesSummary {
        judged: 3,
        flagged: 0,
        top: Vec::new(),
        part: Some("1/4".into()),
    });
    let text = serde_json::to_string(&result).expect("serializes");
    assert!(
        text.contains(r#""entities":{"judged":3,"flagged":0,"top":[],"part":"1/4"}"#),
        "{text}"
    );
    assert_eq!(
        result.id(),
        "country-anomaly-detector-1700000000000-part-1-of-4"
    );
}
