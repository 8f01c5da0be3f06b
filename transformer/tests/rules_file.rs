//! Bad rules files as a user meets them: each error names the key path, the problem and the fix;
//! unknown keys and shapes are refused by name; loading a file names it.

use transformer::{CompiledRules, RulesError};

/// A rules file and what its error must say: the key path (if any) and parts of the message.
fn rules_error(yaml: &str) -> RulesError {
    match CompiledRules::from_yaml(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(error) => error,
    }
}

const FIELD: &str = "  - path: action
    good: { indicator: K_action, values: [ALLOW] }
    bad: { indicator: B_action, values: [BLOCK] }
    unknown: neither
    missing: dead_letter
";

#[test]
fn bad_rules_files_name_the_key_the_problem_and_the_fix() {
    let with_third = |third: &str| {
        format!(
            "fields:\n{FIELD}  - path: httpStatus\n    good: {{ indicator: G, status: [2xx] }}\n    unknown: neither\n    missing: neither\n{third}"
        )
    };
    let table: Vec<(String, &str, &[&str])> = vec![
        (
            with_third(
                "  - path: uri\n    bad: { indicator: bad_uri, regex: '(ab' }\n    unknown: neither\n    missing: neither\n",
            ),
            "fields[2].bad.regex",
            &[r#"fields[2].bad.regex: invalid regex "(ab": unclosed group; fix the pattern"#],
        ),
        (
            "fields:\n  - path: ''\n    bad: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].path",
            &["the path is empty", "write the field's dotted path"],
        ),
        (
            "fields:\n  - path: a..b\n    bad: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].path",
            &["`a..b` has an empty segment", "single dots"],
        ),
        (
            format!("fields:\n{FIELD}  - path: other\n    bad: {{ indicator: K_action, values: [a] }}\n    unknown: neither\n    missing: neither\n"),
            "fields[1].bad.indicator",
            &["indicator `K_action` is already set by fields[0].good", "give each class its own indicator name"],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: x }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad",
            &["the class has no matcher", "add `values`, `status`, `range` or `regex`"],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: x, values: [] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad",
            &["the class has no matcher"],
        ),
        (
            "fields:\n  - path: a\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0]",
            &["`a` has neither a `good` nor a `bad` class", "add at least one class"],
        ),
        (
            "fields:\n  - path: a\n    good: { indicator: x, values: [a] }\n    unknown: bad\n    missing: neither\n".to_owned(),
            "fields[0].unknown",
            &["policy `bad`", "no `bad` class", "choose `neither` or `dead_letter`"],
        ),
        (
            "fields:\n  - path: a\n    good: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n    wrong_type: bad\n".to_owned(),
            "fields[0].wrong_type",
            &["policy `bad`"],
        ),
        (
            "fields:\n  - path: s\n    bad: { indicator: x, status: [4xx, 6xx] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.status[1]",
            &["`6xx` is not an HTTP status class or code", "1xx to 5xx"],
        ),
        (
            "fields:\n  - path: s\n    bad: { indicator: x, values: [a, 1.5] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.values[1]",
            &["`1.5` is a number with a fraction", "use `range"],
        ),
        (
            "fields:\n  - path: s\n    bad: { indicator: x, range: { min: 10, max: 1 } }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.range",
            &["min 10 is greater than max 1", "swap the bounds"],
        ),
        (
            "fields:\n  - path: s\n    bad: { indicator: x, range: {} }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.range",
            &["the range has no bound", "give `min`, `max` or both"],
        ),
        (
            "fields:\n  - path: s\n    bad: { indicator: x, range: { max: .inf } }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.range",
            &["not a finite number"],
        ),
        (
            "fields:\n  - path: s\n    good: { indicator: g, values: [a, b] }\n    bad: { indicator: x, values: [c, b] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.values[1]",
            &["`b` is also in fields[0].good.values", "one class only"],
        ),
        (
            format!("fields:\n{FIELD}{}", FIELD.replace("path: action", "path: action[].code").replace("K_action", "K2").replace("B_action", "B2")),
            "fields[1].path",
            &["`action[].code` goes through `action`, which fields[0] monitors as a value"],
        ),
        (
            format!("fields:\n{FIELD}{}", FIELD.replace("path: action", "path: action.code").replace("K_action", "K2").replace("B_action", "B2")),
            "fields[1].path",
            &["`action.code` goes through `action`, which fields[0] monitors as a value"],
        ),
        (
            format!("fields:\n{}{FIELD}", FIELD.replace("path: action", "path: action.code").replace("K_action", "K2").replace("B_action", "B2")),
            "fields[1].path",
            &["`action` is an object on the way to `action.code` (fields[0])"],
        ),
        (
            "fields:\n  - path: timestamp\n    bad: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].path",
            &["`timestamp` is reserved", "monitor another field"],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: event_id, values: [a] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.indicator",
            &["`event_id` is reserved", "choose another indicator name"],
        ),
        (
            "fields:\n  - path: a.b\n    bad: { indicator: a, values: [x] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.indicator",
            &["indicator `a` would overwrite the monitored field `a.b`"],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: ' ', values: [x] }\n    unknown: neither\n    missing: neither\n".to_owned(),
            "fields[0].bad.indicator",
            &["the indicator name is empty"],
        ),
        ("fields: []\n".to_owned(), "fields", &["no field is monitored", "add at least one entry"]),
    ];
    for (yaml, key, parts) in table {
        let error = rules_error(&yaml);
        let message = error.to_string();
        assert_eq!(error.key(), Some(key), "{message}\n{yaml}");
        assert!(message.starts_with(&format!("rules: {key}: ")), "{message}");
        for part in parts {
            assert!(message.contains(part), "{message:?} lacks {part:?}\n{yaml}");
        }
    }
}

#[test]
fn unknown_keys_and_shapes_are_rejected_by_name() {
    let table: [(&str, &[&str]); 6] = [
        (
            "fields:\n  - path: a\n    bad: { indicator: x, valuez: [a] }\n    unknown: neither\n    missing: neither\n",
            &[
                "unknown field `valuez`",
                "expected one of",
                "`values`",
                "fields[0].bad",
            ],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n    colour: red\n",
            &["unknown field `colour`", "fields[0]"],
        ),
        ("version: 2\nfields: []\n", &["unknown field `version`"]),
        (
            "fields:\n  - path: a\n    bad: { indicator: x, values: [a] }\n    unknown: maybe\n    missing: neither\n",
            &[
                "unknown variant `maybe`",
                "`bad`",
                "`neither`",
                "`dead_letter`",
            ],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: x, values: [a] }\n    missing: neither\n",
            &["missing field `unknown`"],
        ),
        (
            "fields:\n  - path: a\n    bad: { indicator: x, values: [{ a: 1 }] }\n    unknown: neither\n    missing: neither\n",
            &["a string, an integer or a boolean"],
        ),
    ];
    for (yaml, parts) in table {
        let error = rules_error(yaml);
        assert!(matches!(error, RulesError::Syntax { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with("rules: "), "{message}");
        for part in parts {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }
}

#[test]
fn loading_names_the_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let missing = dir.join("no-such-rules.yaml");
    let error = CompiledRules::load(&missing).expect_err("no file");
    assert!(matches!(error, RulesError::Read { .. }));
    assert!(error.to_string().contains("no-such-rules.yaml"), "{error}");

    let bad = dir.join("bad-rules-load.yaml");
    std::fs::write(&bad, "fields:\n  - path: ''\n    bad: { indicator: x, values: [a] }\n    unknown: neither\n    missing: neither\n").expect("write");
    let error = CompiledRules::load(&bad).expect_err("invalid");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: fields[0].path: ", bad.display())),
        "{error}"
    );
    let good = dir.join("good-rules-load.yaml");
    std::fs::write(&good, transformer::rules::DEFAULT_RULES_YAML).expect("write");
    let rules = CompiledRules::load(&good).expect("loads");
    assert_eq!(rules.indicators().count(), 10);
}
