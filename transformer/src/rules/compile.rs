//! From the rules as written to [`CompiledRules`]: every check a rules file must pass (each
//! failure a [`RulesError`] naming the key path and the fix), and the precomputed forms the hot
//! path uses: the matchers, the path tree and the output template. Runs once, at start-up.

use std::collections::HashSet;

use pipeline::wire::EVENT_ID_FIELD;
use regex::Regex;

use super::matcher::{CompiledClass, CompiledField, StatusSet, TextSet};
use super::tree::{Child, Node, PathClash, Target, insert_path};
use super::{
    ClassRule, CompiledRules, DEFAULT_MAX_RECORD_BYTES, FieldRule, Policy, RangeRule, Rules,
    RulesError, Scalar, TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD,
};
use crate::escape::write_json_string;

impl Rules {
    /// Validates the rules and builds the form the transform runs.
    pub fn compile(&self) -> Result<CompiledRules, RulesError> {
        if self.fields.is_empty() {
            return Err(RulesError::invalid(
                "fields",
                "no field is monitored",
                "add at least one entry with a `path`, a `good` or `bad` class, and the \
                 `unknown` and `missing` policies",
            ));
        }
        let mut fields = Vec::with_capacity(self.fields.len());
        for (index, rule) in self.fields.iter().enumerate() {
            fields.push(compile_field(rule, &format!("fields[{index}]"))?);
        }
        check_indicator_names(&fields)?;
        let mut root = Node::new(0);
        for (index, field) in fields.iter().enumerate() {
            insert_path(&mut root, &field.segments, index).map_err(|clash| {
                path_clash(index, &field.path, clash, |other| {
                    fields.get(other).map_or("", |f| &*f.path)
                })
            })?;
        }
        let mut output_keys: Vec<Box<str>> = fields
            .iter()
            .flat_map(|f| [&f.good, &f.bad])
            .flatten()
            .map(|class| class.indicator.clone())
            .collect();
        output_keys.push(TIMESTAMP_OUTPUT_FIELD.into());
        output_keys.push(EVENT_ID_FIELD.into());
        // The root also recognises the timestamp and every key the transformer writes, so one
        // lookup per top-level key finds all of them.
        root.children
            .push(Child::new(TIMESTAMP_FIELD.into(), Target::Timestamp));
        root.children.extend(
            output_keys
                .iter()
                .map(|key| Child::new(key.clone(), Target::Output)),
        );
        root.index_lengths();
        let (suffix, digit_offsets) = suffix_template(&fields);
        Ok(CompiledRules {
            fields,
            root,
            output_keys,
            suffix,
            digit_offsets,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        })
    }
}

fn path_clash<'a>(
    index: usize,
    path: &str,
    clash: PathClash,
    path_of: impl Fn(usize) -> &'a str,
) -> RulesError {
    let key = format!("fields[{index}].path");
    match clash {
        PathClash::Same(other) => RulesError::invalid(
            key,
            format!("`{path}` is already monitored by fields[{other}]"),
            "monitor each path once: merge the two entries",
        ),
        PathClash::Through(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` goes through `{}`, which fields[{other}] monitors as a value",
                path_of(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
        PathClash::PrefixOf(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` is an object on the way to `{}` (fields[{other}])",
                path_of(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
    }
}

fn compile_field(rule: &FieldRule, at: &str) -> Result<CompiledField, RulesError> {
    let path = rule.path.trim();
    if path.is_empty() {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            "the path is empty",
            "write the field's dotted path, e.g. `action` or `httpRequest.country`",
        ));
    }
    let segments: Vec<Box<str>> = path.split('.').map(Box::from).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            format!("`{path}` has an empty segment"),
            "separate keys with single dots and no leading or trailing dot, e.g. \
             `httpRequest.country`",
        ));
    }
    if let Some(first) = segments.first()
        && [TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD].contains(&&**first)
    {
        return Err(RulesError::invalid(
            format!("{at}.path"),
            format!(
                "`{first}` is reserved: the transformer reads `timestamp` for the event time \
                 and writes `@timestamp` and `event_id`"
            ),
            "monitor another field",
        ));
    }
    if rule.good.is_none() && rule.bad.is_none() {
        return Err(RulesError::invalid(
            at,
            format!("`{path}` has neither a `good` nor a `bad` class"),
            "add at least one class, e.g. `bad: { indicator: B_x, values: [...] }`",
        ));
    }
    for (name, policy) in [
        ("unknown", rule.unknown),
        ("missing", rule.missing),
        ("wrong_type", rule.wrong_type),
    ] {
        if policy == Policy::Bad && rule.bad.is_none() {
            return Err(RulesError::invalid(
                format!("{at}.{name}"),
                "policy `bad` sets the bad class's indicator, but this field has no `bad` class",
                "add a `bad` class or choose `neither` or `dead_letter`",
            ));
        }
    }
    let good = rule
        .good
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.good")))
        .transpose()?;
    let bad = rule
        .bad
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.bad")))
        .transpose()?;
    if let (Some(good_rule), Some(bad_rule)) = (&rule.good, &rule.bad) {
        let good_texts: HashSet<String> = good_rule.values.iter().map(|v| v.to_string()).collect();
        if let Some((index, value)) = bad_rule
            .values
            .iter()
            .enumerate()
            .find(|(_, v)| good_texts.contains(&v.to_string()))
        {
            return Err(RulesError::invalid(
                format!("{at}.bad.values[{index}]"),
                format!("`{value}` is also in {at}.good.values"),
                "put each value in one class only",
            ));
        }
    }
    Ok(CompiledField {
        path: path.into(),
        segments,
        good,
        bad,
        unknown: rule.unknown,
        missing: rule.missing,
        wrong_type: rule.wrong_type,
    })
}

fn compile_class(rule: &ClassRule, at: &str) -> Result<CompiledClass, RulesError> {
    if rule.indicator.trim().is_empty() {
        return Err(RulesError::invalid(
            format!("{at}.indicator"),
            "the indicator name is empty",
            "name the field this class sets to 1, e.g. `B_action`",
        ));
    }
    if rule.values.is_empty()
        && rule.status.is_empty()
        && rule.range.is_none()
        && rule.regex.is_none()
    {
        return Err(RulesError::invalid(
            at,
            "the class has no matcher",
            "add `values`, `status`, `range` or `regex`",
        ));
    }
    let mut description = Vec::new();

    let mut texts = Vec::new();
    let mut ints = Vec::new();
    for (index, value) in rule.values.iter().enumerate() {
        let text = match value {
            Scalar::Float(float) => {
                return Err(RulesError::invalid(
                    format!("{at}.values[{index}]"),
                    format!(
                        "`{float}` is a number with a fraction, which has no exact text to compare"
                    ),
                    "use `range: { min: ..., max: ... }` for non-integer numbers, or quote the \
                     value to match it as a string",
                ));
            }
            Scalar::Int(int) => int.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(text) => text.clone(),
        };
        if let Some(int) = canonical_int(&text) {
            ints.push(int);
        }
        texts.push(Box::<str>::from(text));
    }
    if !texts.is_empty() {
        description.push(format!("values {}", texts.join(", ")));
    }

    let mut status = None;
    if !rule.status.is_empty() {
        let mut set = StatusSet::default();
        for (index, entry) in rule.status.iter().enumerate() {
            let codes = status_codes(entry).ok_or_else(|| {
                RulesError::invalid(
                    format!("{at}.status[{index}]"),
                    format!("`{entry}` is not an HTTP status class or code"),
                    "write a class 1xx to 5xx or a code from 100 to 599, e.g. `4xx` or `404`",
                )
            })?;
            codes.for_each(|code| set.insert(code));
        }
        let entries: Vec<String> = rule.status.iter().map(ToString::to_string).collect();
        description.push(format!("status {}", entries.join(", ")));
        status = Some(set);
    }

    let mut range = None;
    if let Some(RangeRule { min, max }) = rule.range {
        let key = format!("{at}.range");
        if min.is_none() && max.is_none() {
            return Err(RulesError::invalid(
                key,
                "the range has no bound",
                "give `min`, `max` or both (inclusive)",
            ));
        }
        if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
            return Err(RulesError::invalid(
                key,
                "a bound is not a finite number",
                "leave the bound out for an open range instead of using .inf or .nan",
            ));
        }
        let (low, high) = (
            min.unwrap_or(f64::NEG_INFINITY),
            max.unwrap_or(f64::INFINITY),
        );
        if low > high {
            return Err(RulesError::invalid(
                key,
                format!("min {low} is greater than max {high}"),
                "swap the bounds",
            ));
        }
        let show = |b: Option<f64>| b.map(|v| v.to_string()).unwrap_or_default();
        description.push(format!("range {}..={}", show(min), show(max)));
        range = Some((low, high));
    }

    let mut regex = None;
    if let Some(pattern) = &rule.regex {
        let compiled = Regex::new(pattern).map_err(|error| {
            RulesError::invalid(
                format!("{at}.regex"),
                format!("invalid regex {pattern:?}: {}", regex_problem(&error)),
                "fix the pattern (the `regex` crate's syntax: no look-around or backreferences)",
            )
        })?;
        description.push(format!("regex {pattern}"));
        regex = Some(compiled);
    }

    Ok(CompiledClass {
        indicator: rule.indicator.as_str().into(),
        texts: TextSet::new(texts),
        ints,
        status,
        range,
        regex,
        description: description.join("; "),
    })
}

/// The one-line reason of a regex error (the crate's message draws the pattern with a caret).
fn regex_problem(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(message) => message
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .map_or_else(|| message.replace('\n', " "), str::to_owned),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern is larger than {limit} bytes")
        }
        other => other.to_string(),
    }
}

/// The integer a text spells in canonical decimal (no sign but `-`, no leading zeros), as JSON
/// writes integers; `None` otherwise.
fn canonical_int(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if canonical { text.parse().ok() } else { None }
}

/// The codes a `status` entry stands for: `4xx` is 400..=499, `404` is itself.
fn status_codes(entry: &Scalar) -> Option<std::ops::RangeInclusive<u16>> {
    let text = match entry {
        Scalar::Int(int) => int.to_string(),
        Scalar::Text(text) => text.trim().to_ascii_lowercase(),
        Scalar::Bool(_) | Scalar::Float(_) => return None,
    };
    match text.as_bytes() {
        [class @ b'1'..=b'5', b'x', b'x'] => {
            let low = u16::from(class - b'0') * 100;
            Some(low..=low + 99)
        }
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let code: u16 = text.parse().ok()?;
            (100..=599).contains(&code).then_some(code..=code)
        }
        _ => None,
    }
}

/// The suffix template of [`CompiledRules::suffix`] and the offsets of its indicator digits.
fn suffix_template(fields: &[CompiledField]) -> (Box<[u8]>, Vec<[Option<usize>; 2]>) {
    let mut suffix = Vec::new();
    let mut offsets = Vec::with_capacity(fields.len());
    for field in fields {
        let mut digits = [None, None];
        for (slot, class) in digits.iter_mut().zip([&field.good, &field.bad]) {
            if let Some(class) = class {
                suffix.push(b',');
                write_json_string(&class.indicator, &mut suffix);
                suffix.push(b':');
                *slot = Some(suffix.len());
                suffix.push(b'0');
            }
        }
        offsets.push(digits);
    }
    suffix.push(b',');
    write_json_string(TIMESTAMP_OUTPUT_FIELD, &mut suffix);
    suffix.extend_from_slice(b":\"");
    (suffix.into_boxed_slice(), offsets)
}

/// Each indicator is written once per record, so names must be unique, and must not overwrite
/// the fields the transformer reads or writes.
fn check_indicator_names(fields: &[CompiledField]) -> Result<(), RulesError> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        for (class_name, class) in [("good", &field.good), ("bad", &field.bad)] {
            let Some(class) = class else { continue };
            let key = format!("fields[{index}].{class_name}.indicator");
            let name = &*class.indicator;
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(RulesError::invalid(
                    key,
                    format!("indicator `{name}` is already set by {first}"),
                    "give each class its own indicator name",
                ));
            }
            if [TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD].contains(&name) {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "`{name}` is reserved: the transformer reads `timestamp` and writes \
                         `@timestamp` and `event_id`"
                    ),
                    "choose another indicator name",
                ));
            }
            if let Some(other) = fields
                .iter()
                .find(|f| f.segments.first().is_some_and(|s| **s == *name))
            {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "indicator `{name}` would overwrite the monitored field `{}`",
                        other.path
                    ),
                    "choose another indicator name",
                ));
            }
            seen.push((name, format!("fields[{index}].{class_name}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_parse_as_classes_or_codes() {
        let text = |s: &str| Scalar::Text(s.to_owned());
        assert_eq!(status_codes(&text("2xx")), Some(200..=299));
        assert_eq!(status_codes(&text("5XX")), Some(500..=599));
        assert_eq!(status_codes(&text("404")), Some(404..=404));
        assert_eq!(status_codes(&Scalar::Int(308)), Some(308..=308));
        for bad in ["6xx", "0xx", "099", "600", "20", "2xxx", "abc", ""] {
            assert_eq!(status_codes(&text(bad)), None, "{bad}");
        }
        assert_eq!(status_codes(&Scalar::Int(99)), None);
        assert_eq!(status_codes(&Scalar::Bool(true)), None);
    }

    #[test]
    fn canonical_integers_are_those_json_would_write() {
        assert_eq!(canonical_int("200"), Some(200));
        assert_eq!(canonical_int("-5"), Some(-5));
        assert_eq!(canonical_int("0"), Some(0));
        for not in ["007", "+5", "-0", "", "-", "1e3", "2xx", " 1"] {
            assert_eq!(canonical_int(not), None, "{not}");
        }
    }
}
