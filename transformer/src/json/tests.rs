//! The scanner against serde_json: the same texts accepted and refused, strings unescaped the
//! same, numbers read the same.

use super::*;

#[test]
fn the_scanner_accepts_json_and_tells_its_kind() {
    let table = [
        ("{}", JsonKind::Object),
        (" [ ] ", JsonKind::Array),
        (
            r#"{"a":[1,-0.5e+3,"x\"\\\/\b\f\n\r\t\u00e9",true,false,null,{}],"b":{"c":{}}}"#,
            JsonKind::Object,
        ),
        ("0", JsonKind::Number),
        ("-0", JsonKind::Number),
        ("1E9", JsonKind::Number),
        (r#""\ud800""#, JsonKind::String), // lone surrogates pass, as in serde_json
        (
            "\"a long string of more than eight bytes é ✓\"",
            JsonKind::String,
        ),
        ("null", JsonKind::Null),
        ("\t\r\n true \n", JsonKind::Bool),
    ];
    for (text, kind) in table {
        assert_eq!(validate(text), Ok(kind), "{text}");
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
            "{text}"
        );
    }
}

#[test]
fn the_scanner_rejects_what_serde_json_rejects() {
    let table = [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{a:1}",
        "{1:2}",
        "[1 2]",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12g4\"",
        "\"\\u12\"",
        "\"tab\there\"",
        "\"nl\nhere\"",
        "{} {}",
        "[]]",
        "[}",
        "{]",
        "\u{feff}{}",
        "NaN",
        "Infinity",
        "[\"a\",]",
        "{\"a\":1 \"b\":2}",
    ];
    for text in table {
        assert!(validate(text).is_err(), "accepted {text:?}");
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
            "serde_json accepted {text:?}"
        );
    }
}

#[test]
fn nesting_is_limited_without_using_the_call_stack() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(validate(&deep(MAX_DEPTH)).is_ok());
    let error = validate(&deep(MAX_DEPTH + 1)).expect_err("too deep");
    assert_eq!(error.what, "nesting deeper than 128 levels");
    assert!(validate(&"[{\"a\":".repeat(100_000)).is_err());
}

#[test]
fn strings_unescape_with_surrogate_pairs() {
    let table = [
        ("plain", "plain"),
        (r#"BL\u004fCK"#, "BLOCK"),
        (r#"a\"b\\c\/d\b\f\n\r\t"#, "a\"b\\c/d\u{8}\u{c}\n\r\t"),
        (r#"\ud83d\ude00!"#, "😀!"),
        (r#"\ud83d!"#, "\u{fffd}!"),
        (r#"\ude00"#, "\u{fffd}"),
        (r#"\ud83d\u0041"#, "\u{fffd}A"),
        (r#"\u00E9\u00e9"#, "éé"),
    ];
    for (raw, expected) in table {
        assert_eq!(unescape(raw), expected, "{raw}");
        let from_serde: String =
            serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_else(|_| expected.to_owned());
        assert_eq!(from_serde, expected, "{raw}");
    }
}

#[test]
fn numbers_parse_as_integers_or_floats_without_overflow() {
    let table = [
        ("1700000000000", Number::Int(1_700_000_000_000)),
        ("-5", Number::Int(-5)),
        ("-0", Number::Int(0)),
        (
            "9999999999999999999",
            Number::Int(9_999_999_999_999_999_999),
        ),
        (
            "18446744073709551616",
            Number::Float(18_446_744_073_709_551_616.0),
        ),
        ("-99999999999999999999", Number::Float(-1e20)),
        ("1.5", Number::Float(1.5)),
        ("2E3", Number::Float(2000.0)),
        ("1e400", Number::Float(f64::INFINITY)),
    ];
    for (text, expected) in table {
        assert_eq!(parse_number(text.as_bytes()), expected, "{text}");
    }
}

#[test]
fn numbers_read_while_scanning_agree_with_parse_number() {
    let numbers = "0 -0 7 -7 12 1234567 12345678 123456789 1700000000000 -1700000000000 \
                   999999999999999 1000000000000000 9999999999999999 12345678901234567 \
                   9999999999999999999 18446744073709551615 18446744073709551616 1.5 \
                   -2.5e-3 1E9 1e300 0.1 10 100000000";
    for number in numbers.split_whitespace() {
        for after in [
            "",
            ",",
            "}",
            ",\"next\":1}",
            "                 ",
            "]]]]]]]]]]]]]]]]",
        ] {
            let text = format!("{number}{after}");
            let (value, end) = read_number(text.as_bytes(), 0).expect("a number");
            assert_eq!(end, number.len(), "{text:?}");
            assert_eq!(value, parse_number(number.as_bytes()), "{text:?}");
        }
    }
    for bad in ["-", "-x", "01", "00", "-01", "1.", "1e", "1e+"] {
        for after in ["", ",", ",\"next\":1}              "] {
            let text = format!("{bad}{after}");
            assert!(read_number(text.as_bytes(), 0).is_err(), "{text:?}");
        }
    }
}
