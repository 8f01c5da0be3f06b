//! How the provisioner decides "unchanged": the declared body against what OpenSearch returns.
//!
//! OpenSearch hands objects back with more than was sent (ids, timestamps, defaults such as
//! `boost: 1.0`) and with settings as strings (`"1"` for `1`). So the comparison is one-sided:
//! every key the declared body sets must be there with an equal value; keys only on the server's
//! side are its own and ignored. Scalars are equal when their text is (`1`, `1.0` and `"1"`;
//! `false` and `"false"`). Arrays are compared element by element and must have the same length.
//! Pure: no IO.

use serde_json::Value;

/// The paths (`a.b[2].c`) where `desired` is not matched by `actual`, in document order; empty
/// when `actual` already is what `desired` declares.
pub fn differences(desired: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(desired, actual, String::new(), &mut out);
    out
}

fn walk(desired: &Value, actual: &Value, path: String, out: &mut Vec<String>) {
    match (desired, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match have.get(key) {
                    Some(found) => walk(value, found, child, out),
                    // A declared null is satisfied by an absent key.
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(path);
                return;
            }
            for (i, (value, found)) in want.iter().zip(have).enumerate() {
                walk(value, found, format!("{path}[{i}]"), out);
            }
        }
        (want, have) if scalar_eq(want, have) => {}
        _ => out.push(if path.is_empty() { ".".into() } else { path }),
    }
}

fn scalar_eq(want: &Value, have: &Value) -> bool {
    if want == have {
        return true;
    }
    match (number(want), number(have)) {
        (Some(a), Some(b)) => a == b,
        _ => match (want, have) {
            (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
                s == if *b { "true" } else { "false" }
            }
            _ => false,
        },
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_additions_and_string_settings_are_not_differences() {
        let desired = json!({
            "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
            "mappings": {"dynamic": false, "properties": {"a": {"type": "date"}}},
            "filter_query": {"match_all": {"boost": 1.0}},
            "history": 120,
        });
        let actual = json!({
            "settings": {"index": {"number_of_shards": "1", "auto_expand_replicas": "0-1", "uuid": "x"}},
            "mappings": {"dynamic": "false", "properties": {"a": {"type": "date"}}},
            "filter_query": {"match_all": {"boost": 1}},
            "history": 120,
            "last_update_time": 1795389963035_u64,
        });
        assert_eq!(differences(&desired, &actual), Vec::<String>::new());
    }

    #[test]
    fn changed_missing_and_resized_values_are_named_by_path() {
        let desired = json!({
            "description": "sum(UNK_country) per 1m",
            "detection_interval": {"period": {"interval": 5, "unit": "Minutes"}},
            "features": [{"name": "a"}, {"name": "b"}],
            "extra": {"x": 1},
            "keep": [{"k": 1}],
        });
        let actual = json!({
            "description": "something else",
            "detection_interval": {"period": {"interval": 1, "unit": "Minutes"}},
            "features": [{"name": "a"}],
            "keep": [{"k": "2"}],
        });
        let mut found = differences(&desired, &actual);
        found.sort();
        assert_eq!(
            found,
            [
                "description",
                "detection_interval.period.interval",
                "extra",
                "features",
                "keep[0].k"
            ]
        );
        assert_eq!(differences(&json!(1), &json!("one")), ["."]);
        assert!(differences(&json!({"a": null}), &json!({})).is_empty());
    }
}
