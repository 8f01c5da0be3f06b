//! Every source's preset in the default rules, on sample records in the vendors' documented
//! formats (`tests/fixtures/<source>.ndjson`: AWS WAF web ACL traffic log fields, CloudTrail
//! record contents, syslog messages (RFC 5424 and 3164) as logwarden-ingest parses them,
//! CloudWatch Logs Lambda lines, Splunk HEC events). For each record the exact set of
//! indicators that are 1 is asserted, every other indicator of the preset 0, with the source
//! field and the event time.

use std::collections::BTreeSet;

use pipeline::wire::{Source, SourcePosition};
use serde_json::Value;
use transformer::CompiledRules;

fn fixture(source: Source) -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/{}.ndjson",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"),
        source.as_str()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().map(str::to_owned).collect()
}

/// Enriches every fixture record of `source` with the default rules; returns the records.
fn enriched(source: Source) -> Vec<Value> {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    fixture(source)
        .iter()
        .enumerate()
        .map(|(line, record)| {
            let position = SourcePosition {
                topic: "raw".to_owned(),
                partition: 0,
                offset: line as i64,
            };
            let mut out = Vec::new();
            rules
                .apply_source(Some(source), record.as_bytes(), &position, &mut out)
                .unwrap_or_else(|r| panic!("{source} line {}: {r}\n{record}", line + 1));
            serde_json::from_slice(&out).expect("the output is JSON")
        })
        .collect()
}

/// Checks that `source`'s preset writes exactly `indicators`, and that record `i` has exactly
/// `ones[i]` at 1, with its source and `@timestamp[i]`.
fn assert_preset(source: Source, indicators: &[&str], ones: &[&[&str]], timestamps: &[&str]) {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    assert_eq!(
        rules.indicators_of(Some(source)).collect::<Vec<_>>(),
        indicators,
        "{source}: the preset's indicators"
    );
    let records = enriched(source);
    assert_eq!(
        records.len(),
        ones.len(),
        "{source}: one expectation per record"
    );
    for (line, (record, expected)) in records.iter().zip(ones).enumerate() {
        let set: BTreeSet<&str> = indicators
            .iter()
            .copied()
            .filter(|name| {
                let value = &record[*name];
                assert!(
                    value == 0 || value == 1,
                    "{source} line {}: {name} is {value}",
                    line + 1
                );
                value == 1
            })
            .collect();
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(set, expected, "{source} line {}", line + 1);
        assert_eq!(record["logwarden_source"], source.as_str());
        assert_eq!(
            record["@timestamp"],
            timestamps[line],
            "{source} line {}",
            line + 1
        );
    }
}

#[test]
fn waf_preset_flags_blocks_challenges_rate_limits_managed_rules_and_more() {
    assert_preset(
        Source::Waf,
        &[
            "waf_blocked",
            "waf_challenged",
            "waf_rate_limited",
            "waf_managed_rule",
            "waf_unknown_country",
            "waf_uncommon_method",
            "waf_client_error",
            "waf_server_error",
        ],
        &[
            &[],
            &["waf_blocked", "waf_managed_rule", "waf_client_error"],
            &[
                "waf_blocked",
                "waf_rate_limited",
                "waf_unknown_country",
                "waf_uncommon_method",
            ],
            &[
                "waf_challenged",
                "waf_managed_rule",
                "waf_unknown_country",
                "waf_uncommon_method",
                "waf_client_error",
            ],
            &["waf_challenged"],
            &["waf_blocked", "waf_rate_limited", "waf_server_error"],
        ],
        &[
            "2024-12-05T06:00:00.000Z",
            "2024-12-05T06:00:01.000Z",
            "2024-12-05T06:00:02.000Z",
            "2024-12-05T06:00:03.000Z",
            "2024-12-05T06:00:04.000Z",
            "2024-12-05T06:00:05.000Z",
        ],
    );
}

#[test]
fn cloudtrail_preset_flags_the_cis_monitoring_events() {
    assert_preset(
        Source::Cloudtrail,
        &[
            "ct_access_denied",
            "ct_root_activity",
            "ct_console_login_failed",
            "ct_console_login_no_mfa",
            "ct_iam_policy_change",
            "ct_cloudtrail_change",
            "ct_kms_key_change",
            "ct_security_group_change",
            "ct_nacl_change",
            "ct_unexpected_region",
        ],
        &[
            &["ct_console_login_failed"],
            &["ct_root_activity", "ct_console_login_no_mfa"],
            &["ct_access_denied", "ct_unexpected_region"],
            &["ct_access_denied"],
            &["ct_security_group_change"],
            &["ct_kms_key_change"],
            &["ct_iam_policy_change"],
            &["ct_cloudtrail_change"],
            &["ct_nacl_change"],
            &[],
        ],
        &[
            "2026-12-05T06:00:00.000Z",
            "2026-12-05T06:00:01.000Z",
            "2026-12-05T06:00:02.000Z",
            "2026-12-05T06:00:03.000Z",
            "2026-12-05T06:00:04.000Z",
            "2026-12-05T06:00:05.000Z",
            "2026-12-05T06:00:06.000Z",
            "2026-12-05T06:00:07.000Z",
            "2026-12-05T06:00:08.000Z",
            "2026-12-05T06:00:09.000Z",
        ],
    );
}

#[test]
fn syslog_preset_flags_auth_failures_sudo_and_errors() {
    assert_preset(
        Source::Syslog,
        &["syslog_auth_failure", "syslog_sudo", "syslog_error"],
        &[
            &["syslog_auth_failure"],
            &["syslog_auth_failure"],
            &["syslog_sudo"],
            &["syslog_auth_failure"],
            &["syslog_error"],
            &[],
            &[],
        ],
        &[
            "2026-12-05T05:59:58.123Z",
            "2026-12-05T06:00:01.000Z",
            "2026-12-05T06:00:02.000Z",
            "2026-12-05T06:00:03.000Z",
            "2026-12-05T06:00:04.000Z",
            "2026-12-05T06:00:05.000Z",
            // Unparsed: no timestamp of its own, so the time of receipt.
            "2026-12-05T06:00:06.000Z",
        ],
    );
}

#[test]
fn cloudwatch_preset_flags_errors_lambda_timeouts_and_out_of_memory() {
    assert_preset(
        Source::Cloudwatch,
        &["cw_error", "cw_lambda_timeout", "cw_lambda_oom"],
        &[
            &[],
            &["cw_error"],
            &["cw_lambda_timeout"],
            &[],
            &["cw_lambda_oom"],
            &["cw_lambda_oom"],
            &[],
        ],
        &[
            "2024-12-05T06:00:00.000Z",
            "2024-12-05T06:00:00.100Z",
            "2024-12-05T06:00:03.000Z",
            "2024-12-05T06:00:03.100Z",
            "2024-12-05T06:00:04.000Z",
            "2024-12-05T06:00:04.100Z",
            "2024-12-05T06:00:05.000Z",
        ],
    );
}

#[test]
fn splunk_preset_flags_error_and_warning_severities_in_any_case() {
    assert_preset(
        Source::Splunk,
        &["hec_error", "hec_warning"],
        &[
            &["hec_error"],
            &["hec_warning"],
            &[],
            &[],
            &["hec_error"],
            &["hec_error", "hec_warning"],
        ],
        &[
            "2024-12-05T06:00:00.500Z",
            "2024-12-05T06:00:01.250Z",
            "2024-12-05T06:00:02.000Z",
            "2024-12-05T06:00:03.000Z",
            "2024-12-05T06:00:04.000Z",
            "2024-12-05T06:00:05.000Z",
        ],
    );
}

#[test]
fn ndjson_records_pass_through_with_their_time_and_source_only() {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    assert_eq!(rules.indicators_of(Some(Source::Ndjson)).count(), 0);
    let position = SourcePosition {
        topic: "raw".to_owned(),
        partition: 1,
        offset: 7,
    };
    let mut out = Vec::new();
    let record = br#"{"time":"2026-12-05T06:00:00+01:00","app":"billing","msg":"hello"}"#;
    rules
        .apply_source(Some(Source::Ndjson), record, &position, &mut out)
        .expect("enriched");
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        r#"{"time":"2026-12-05T06:00:00+01:00","app":"billing","msg":"hello","logwarden_source":"ndjson","@timestamp":"2026-12-05T05:00:00.000Z","event_id":"raw-1-7"}"#
    );
}

#[test]
fn seed_records_keep_their_documents_and_other_sources_records_are_not_seed_records() {
    let rules = CompiledRules::default_rules().expect("the default rules compile");
    let position = SourcePosition {
        topic: "raw".to_owned(),
        partition: 0,
        offset: 1,
    };
    let seed = br#"{"timestamp":1700000000000,"action":"BLOCK","httpSourceName":"ALB","httpStatus":"403","httpRequest":{"country":"US","httpMethod":"GET"}}"#;
    let mut out = Vec::new();
    rules.apply(seed, &position, &mut out).expect("enriched");
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(!text.contains("logwarden_source"), "{text}");
    assert!(
        text.ends_with(
            r#""uncommon_method":0,"@timestamp":"2023-11-14T22:13:20.000Z","event_id":"raw-0-1"}"#
        ),
        "{text}"
    );
    // A real WAF record without the header is judged by the seed's rules: no httpStatus.
    let real = fixture(Source::Waf).remove(0);
    let rejection = rules
        .apply(real.as_bytes(), &position, &mut Vec::new())
        .expect_err("the seed's rules need httpStatus");
    assert_eq!(rejection.detail, "httpStatus is missing");
}
