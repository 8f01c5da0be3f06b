//! The offline commands as a person runs them: `apply` over a mixed NDJSON file (good lines
//! flow, each bad line lands in the dead letters with its reason, line and raw text) and
//! `check` on good and bad rules files.

use std::io::Cursor;

use base64::Engine as _;
use pipeline::wire::DeadLetterReason;
use serde_json::Value;
use transformer::CompiledRules;
use transformer::offline::{self, ApplyCounts};

fn good(action: &str) -> String {
    format!(
        concat!(
            r#"{{"timestamp":1700000000000,"action":"{}","httpSourceName":"ALB","#,
            r#""httpStatus":"200","httpRequest":{{"country":"US","httpMethod":"GET"}}}}"#
        ),
        action
    )
}

fn run(input: &[u8]) -> (ApplyCounts, Vec<Value>, Vec<Value>) {
    let rules = CompiledRules::default_rules().expect("compiles");
    let mut output = Vec::new();
    let mut dead = Vec::new();
    let counts = offline::apply(&rules, Cursor::new(input), &mut output, Some(&mut dead))
        .expect("in-memory IO does not fail");
    let parse = |bytes: &[u8]| -> Vec<Value> {
        String::from_utf8(bytes.to_vec())
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    };
    (counts, parse(&output), parse(&dead))
}

#[test]
fn mixed_input_splits_into_enriched_records_and_dead_letters() {
    let mut input = Vec::new();
    input.extend_from_slice(good("ALLOW").as_bytes()); // line 1
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"this is not json\n"); // line 2
    input.extend_from_slice(b"\n"); // line 3: blank
    input.extend_from_slice(good("BLOCK").as_bytes()); // line 4, CRLF
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"{\"action\":\"\xffBLOCK\"}\n"); // line 5: not UTF-8
    input.extend_from_slice(good("ALLOW").replace(r#""country":"US","#, "").as_bytes()); // 6
    input.extend_from_slice(b"\n[1]\n"); // line 7
    input.extend_from_slice(good("Count").replace("1700000000000", "-1").as_bytes()); // 8
    input.extend_from_slice(b"\n");
    input.extend_from_slice(good("CAPTCHA").as_bytes()); // line 9, no final newline

    let (counts, output, dead) = run(&input);
    assert_eq!(counts.records_in, 8);
    assert_eq!(counts.records_out, 3);
    assert_eq!(counts.blank_lines, 1);
    assert_eq!(counts.dead_total(), 5);
    for (reason, expected) in [
        (DeadLetterReason::NotJson, 1),
        (DeadLetterReason::NotUtf8, 1),
        (DeadLetterReason::MissingField, 1),
        (DeadLetterReason::NotObject, 1),
        (DeadLetterReason::BadTimestamp, 1),
        (DeadLetterReason::Oversized, 0),
    ] {
        assert_eq!(counts.dead(reason), expected, "{reason}");
    }
    assert_eq!(
        counts.to_string(),
        "8 records in, 3 enriched, 5 dead letters (not_utf8 1, not_json 1, not_object 1, \
         missing_field 1, bad_timestamp 1); 1 blank lines skipped"
    );

    // Good lines flow in order, with event ids from their 0-based line index.
    let actions: Vec<&str> = output
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["ALLOW", "BLOCK", "CAPTCHA"]);
    let ids: Vec<&str> = output
        .iter()
        .map(|r| r["event_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["stdin-0-0", "stdin-0-3", "stdin-0-8"]);
    assert_eq!(output[1]["B_action"], 1);

    // Each bad line is a dead letter with its reason, 1-based line and raw text.
    let summary: Vec<(&str, u64)> = dead
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().expect("reason"),
                d["line"].as_u64().expect("line"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("not_json", 2),
            ("not_utf8", 5),
            ("missing_field", 6),
            ("not_object", 7),
            ("bad_timestamp", 8)
        ]
    );
    assert_eq!(dead[0]["raw"], "this is not json");
    assert!(
        dead[0]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("the record is not JSON")
    );
    assert!(
        dead[0].get("raw_base64").is_none(),
        "UTF-8 lines need no base64"
    );
    assert_eq!(dead[2]["detail"], "httpRequest.country is missing");
    assert_eq!(
        dead[4]["detail"],
        "timestamp -1 is before 2000-01-01 (read as epoch seconds)"
    );

    // A line that is not UTF-8: lossy text to read, exact bytes in base64.
    assert_eq!(dead[1]["raw"], "{\"action\":\"\u{fffd}BLOCK\"}");
    let exact = base64::engine::general_purpose::STANDARD
        .decode(dead[1]["raw_base64"].as_str().expect("base64"))
        .expect("valid base64");
    assert_eq!(exact, b"{\"action\":\"\xffBLOCK\"}");
}

#[test]
fn without_a_dead_letter_output_bad_lines_are_only_counted() {
    let rules = CompiledRules::default_rules().expect("compiles");
    let input = format!("{}\nnope\n", good("ALLOW"));
    let mut output = Vec::new();
    let counts = offline::apply(&rules, Cursor::new(input), &mut output, None).expect("runs");
    assert_eq!((counts.records_in, counts.records_out), (2, 1));
    assert_eq!(counts.dead(DeadLetterReason::NotJson), 1);
    assert_eq!(String::from_utf8(output).expect("UTF-8").lines().count(), 1);
}

#[test]
fn oversized_lines_are_dead_letters_without_being_held_whole() {
    let rules = CompiledRules::default_rules()
        .expect("compiles")
        .with_max_record_bytes(300);
    let long = format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000));
    let input = format!("{long}\n{}\n", good("ALLOW"));
    let mut output = Vec::new();
    let mut dead = Vec::new();
    let counts =
        offline::apply(&rules, Cursor::new(input), &mut output, Some(&mut dead)).expect("runs");
    assert_eq!(counts.dead(DeadLetterReason::Oversized), 1);
    assert_eq!(counts.records_out, 1);
    let letter: Value = serde_json::from_slice(dead.trim_ascii_end()).expect("JSON");
    assert_eq!(
        letter["detail"],
        "the record is 10010 bytes, over the limit of 300 bytes"
    );
    assert_eq!(letter["line"], 1);
    assert!(letter["raw"].as_str().expect("raw").len() <= 301);
}

#[test]
fn check_summarises_a_good_rules_file_and_explains_a_bad_one() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let good_file = dir.join("check-good-rules.yaml");
    std::fs::write(&good_file, transformer::rules::DEFAULT_RULES_YAML).expect("write");
    let summary = offline::check(&good_file).expect("valid");
    let seed = summary.section(None).expect("the seed's section");
    assert_eq!(seed.fields.len(), 5);
    assert_eq!(seed.indicators().len(), 10);
    assert_eq!(summary.sections.len(), 7, "the seed's and six sources'");
    assert!(summary.to_string().contains("httpRequest.httpMethod"));

    let bad_file = dir.join("check-bad-rules.yaml");
    std::fs::write(
        &bad_file,
        "fields:\n  - path: uri\n    bad: { indicator: x, regex: '(' }\n    unknown: neither\n    missing: neither\n",
    )
    .expect("write");
    let error = offline::check(&bad_file).expect_err("invalid");
    let message = error.to_string();
    assert!(
        message.starts_with(&bad_file.display().to_string()),
        "{message}"
    );
    assert!(
        message
            .contains(r#"fields[0].bad.regex: invalid regex "(": unclosed group; fix the pattern"#),
        "{message}"
    );
}

#[test]
fn a_long_input_comes_out_in_order_as_a_line_by_line_run_writes_it() {
    // Enough lines for several batches (and so several workers), with blank and bad ones.
    let rules = CompiledRules::default_rules().expect("compiles");
    let lines: Vec<String> = (0..30_000)
        .map(|i| match i % 13 {
            5 => String::new(),
            7 => format!("not json {i}"),
            _ => good(["ALLOW", "BLOCK", "Count"][i % 3]),
        })
        .collect();
    let input = lines.join("\n");
    let (mut expected, mut expected_dead) = (Vec::new(), Vec::new());
    for (index, line) in lines.iter().enumerate() {
        let position = pipeline::wire::SourcePosition {
            topic: offline::STDIN_TOPIC.to_owned(),
            partition: 0,
            offset: index as i64,
        };
        if line.is_empty() {
            continue;
        }
        match rules.apply(line.as_bytes(), &position, &mut expected) {
            Ok(()) => expected.push(b'\n'),
            Err(_) => expected_dead.push(index as u64 + 1),
        }
    }
    let mut output = Vec::new();
    let mut dead = Vec::new();
    let counts = offline::apply(&rules, Cursor::new(input), &mut output, Some(&mut dead))
        .expect("in-memory IO does not fail");
    assert!(
        output == expected,
        "the output differs from a line-by-line run"
    );
    let dead_lines: Vec<u64> = String::from_utf8(dead)
        .expect("UTF-8")
        .lines()
        .map(|line| {
            let letter: Value = serde_json::from_str(line).expect("JSON");
            letter["line"].as_u64().expect("a line number")
        })
        .collect();
    assert_eq!(dead_lines, expected_dead);
    assert_eq!(counts.blank_lines, 2308);
    assert_eq!(counts.records_in, 30_000 - 2308);
    assert_eq!(counts.dead(DeadLetterReason::NotJson), 2308);
    assert_eq!(counts.records_out, 30_000 - 2 * 2308);
}
