//! From the rules as written to [`CompiledRules`]: every check a rules file must pass (each
//! failure a [`RulesError`] naming the key path and the fix), and the precomputed forms the hot
//! path uses, per section (the seed's and each source's): the matchers, the path tree and the
//! output template. Runs once, at start-up.

use std::collections::HashSet;

use pipeline::wire::{EVENT_ID_FIELD, Source};
use regex::RegexBuilder;

use super::compiled::{Section, source_index};
use super::file::{SourceRules, TimestampRule};
use super::matcher::{CompiledClass, CompiledField, Pattern, StatusSet, TextSet};
use super::tree::{Child, Node, PathClash, Target, insert_path};
use super::{
    ClassRule, CompiledRules, DEFAULT_MAX_RECORD_BYTES, FieldRule, Policy, RangeRule, Rules,
    RulesError, SOURCE_OUTPUT_FIELD, Scalar, TIMESTAMP_FIELD, TIMESTAMP_OUTPUT_FIELD,
};
use crate::escape::write_json_string;

/// The most timestamp fields a section may name.
const MAX_TIMESTAMP_FIELDS: usize = 8;

impl Rules {
    /// Validates the rules and builds the form the transform runs.
    pub fn compile(&self) -> Result<CompiledRules, RulesError> {
        if self.fields.is_empty() && self.sources.is_empty() {
            return Err(RulesError::invalid(
                "fields",
                "no field is monitored",
                "add at least one entry with a `path`, a `good` or `bad` class, and the \
                 `unknown` and `missing` policies (or a `sources` section per source)",
            ));
        }
        if self.fields.is_empty() && self.timestamp.is_some() {
            return Err(RulesError::invalid(
                "timestamp",
                "the top-level `timestamp` is for records without a source header, but there \
                 are no top-level `fields` for them",
                "move it into a `sources.<source>` section, or add top-level `fields`",
            ));
        }
        let seed = if self.fields.is_empty() {
            None
        } else {
            Some(compile_section(
                None,
                &self.fields,
                self.timestamp.as_ref(),
                "",
            )?)
        };
        let mut sources = vec![None; Source::ALL.len()];
        for (name, section) in &self.sources {
            let source = Source::parse(name).ok_or_else(|| {
                let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
                RulesError::invalid(
                    format!("sources.{name}"),
                    format!("`{name}` is not a source"),
                    format!(
                        "name a value of the logwarden-source header: {}",
                        names.join(", ")
                    ),
                )
            })?;
            let SourceRules { timestamp, fields } = section;
            let compiled = compile_section(
                Some(source),
                fields,
                timestamp.as_ref(),
                &format!("sources.{name}."),
            )?;
            if let Some(slot) = sources.get_mut(source_index(source)) {
                *slot = Some(compiled);
            }
        }
        Ok(CompiledRules {
            seed,
            sources,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        })
    }
}

/// Compiles one section: its fields (key paths start with `at`), their `when` conditions as
/// hidden fields after them, the path tree and the output template.
fn compile_section(
    source: Option<Source>,
    rules: &[FieldRule],
    timestamp: Option<&TimestampRule>,
    at: &str,
) -> Result<Section, RulesError> {
    let (timestamp_fields, timestamp_strings) = compile_timestamp(timestamp, at)?;
    let mut fields = Vec::with_capacity(rules.len());
    let mut keys = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let key = format!("{at}fields[{index}]");
        fields.push(compile_field(rule, &key, &timestamp_fields)?);
        keys.push(key);
    }
    for (index, rule) in rules.iter().enumerate() {
        let Some(when) = &rule.when else { continue };
        let key = format!("{at}fields[{index}].when");
        let segments = compile_path(&when.path, &key, &timestamp_fields)?;
        let class = compile_class(&when.as_class(), &key, false)?;
        fields.push(CompiledField {
            path: when.path.trim().into(),
            segments,
            good: Some(class),
            bad: None,
            unknown: Policy::Neither,
            missing: Policy::Neither,
            wrong_type: Policy::Neither,
            when: None,
        });
        keys.push(key);
        let hidden = fields.len() - 1;
        if let Some(field) = fields.get_mut(index) {
            field.when = Some(hidden);
        }
    }
    let visible = fields.get(..rules.len()).unwrap_or_default();
    let indicators = check_indicator_names(visible, at, &timestamp_fields)?;
    let mut root = Node::new(0);
    for (index, field) in fields.iter().enumerate() {
        insert_path(&mut root, &field.segments, index).map_err(|clash| {
            path_clash(&keys, index, &field.path, clash, |other| {
                fields.get(other).map_or("", |f| &*f.path)
            })
        })?;
    }
    let mut output_keys: Vec<Box<str>> = indicators.iter().map(|name| (*name).into()).collect();
    let indicator_count = output_keys.len();
    if source.is_some() {
        output_keys.push(SOURCE_OUTPUT_FIELD.into());
    }
    output_keys.push(TIMESTAMP_OUTPUT_FIELD.into());
    output_keys.push(EVENT_ID_FIELD.into());
    // The root also recognises the timestamp fields and every key the transformer writes, so
    // one lookup per top-level key finds all of them.
    for (rank, name) in timestamp_fields.iter().enumerate() {
        let rank = u8::try_from(rank).unwrap_or(u8::MAX);
        root.children
            .push(Child::new(name.clone(), Target::Timestamp(rank)));
    }
    root.children.extend(
        output_keys
            .iter()
            .map(|key| Child::new(key.clone(), Target::Output)),
    );
    root.index_lengths();
    let (suffix, digit_offsets) = suffix_template(&fields, source);
    Ok(Section {
        source,
        fields,
        root,
        timestamp_fields,
        timestamp_strings,
        output_keys,
        indicator_count,
        suffix,
        digit_offsets,
    })
}

/// The timestamp fields and whether strings are read, checked.
fn compile_timestamp(
    rule: Option<&TimestampRule>,
    at: &str,
) -> Result<(Vec<Box<str>>, bool), RulesError> {
    let Some(rule) = rule else {
        return Ok((vec![TIMESTAMP_FIELD.into()], false));
    };
    let key = format!("{at}timestamp.fields");
    if rule.fields.is_empty() || rule.fields.len() > MAX_TIMESTAMP_FIELDS {
        return Err(RulesError::invalid(
            key,
            format!("{} fields are listed", rule.fields.len()),
            format!(
                "list 1 to {MAX_TIMESTAMP_FIELDS} top-level fields, the preferred first, e.g. \
                 `[timestamp]`"
            ),
        ));
    }
    let mut names: Vec<Box<str>> = Vec::with_capacity(rule.fields.len());
    for (index, name) in rule.fields.iter().enumerate() {
        let key = format!("{key}[{index}]");
        let name = name.trim();
        if name.is_empty() || name.contains('.') || name.contains('[') {
            return Err(RulesError::invalid(
                key,
                format!("`{name}` is not a top-level key"),
                "name a key of the record itself, e.g. `timestamp` or `eventTime`",
            ));
        }
        if [TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD, SOURCE_OUTPUT_FIELD].contains(&name) {
            return Err(RulesError::invalid(
                key,
                format!("`{name}` is written by the transformer"),
                "name the field the record carries its time in",
            ));
        }
        if names.iter().any(|n| **n == *name) {
            return Err(RulesError::invalid(
                key,
                format!("`{name}` is listed twice"),
                "list each field once",
            ));
        }
        names.push(name.into());
    }
    Ok((names, rule.strings))
}

fn path_clash<'a>(
    keys: &[String],
    index: usize,
    path: &str,
    clash: PathClash,
    path_of: impl Fn(usize) -> &'a str,
) -> RulesError {
    let key = format!("{}.path", keys.get(index).map_or("fields", String::as_str));
    let name = |other: usize| keys.get(other).cloned().unwrap_or_default();
    match clash {
        PathClash::Through(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` goes through `{}`, which {} monitors as a value",
                path_of(other),
                name(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
        PathClash::PrefixOf(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` is an object on the way to `{}` ({})",
                path_of(other),
                name(other)
            ),
            "a path cannot be both a value and an object on the way to another field: remove one",
        ),
        PathClash::ArrayOrObject(other) => RulesError::invalid(
            key,
            format!(
                "`{path}` and `{}` ({}) read the same key as an array and as an object",
                path_of(other),
                name(other)
            ),
            "write the key the same way in both paths: `name[]` for an array of objects, \
             `name` for an object",
        ),
    }
}

/// A dotted path as written, checked and split into segments (`labels[]` kept as written).
fn compile_path(
    path: &str,
    at: &str,
    timestamp_fields: &[Box<str>],
) -> Result<Vec<Box<str>>, RulesError> {
    let path = path.trim();
    let key = format!("{at}.path");
    if path.is_empty() {
        return Err(RulesError::invalid(
            key,
            "the path is empty",
            "write the field's dotted path, e.g. `action` or `httpRequest.country`",
        ));
    }
    let segments: Vec<Box<str>> = path.split('.').map(Box::from).collect();
    let name = |segment: &str| segment.strip_suffix("[]").unwrap_or(segment).to_owned();
    if segments.iter().any(|s| name(s).is_empty()) {
        return Err(RulesError::invalid(
            key,
            format!("`{path}` has an empty segment"),
            "separate keys with single dots and no leading or trailing dot, e.g. \
             `httpRequest.country`",
        ));
    }
    if let Some(last) = segments.last()
        && last.ends_with("[]")
    {
        return Err(RulesError::invalid(
            key,
            format!("`{path}` ends with an array"),
            "name the key to read in the array's objects, e.g. `labels[].name`",
        ));
    }
    if let Some(first) = segments.first() {
        let first = name(first);
        if timestamp_fields.iter().any(|t| **t == *first)
            || [TIMESTAMP_OUTPUT_FIELD, EVENT_ID_FIELD].contains(&first.as_str())
        {
            let reads: Vec<String> = timestamp_fields.iter().map(|t| format!("`{t}`")).collect();
            return Err(RulesError::invalid(
                key,
                format!(
                    "`{first}` is reserved: the transformer reads {} for the event time \
                     and writes `@timestamp` and `event_id`",
                    reads.join(", ")
                ),
                "monitor another field",
            ));
        }
        if first == SOURCE_OUTPUT_FIELD {
            return Err(RulesError::invalid(
                key,
                format!("`{first}` is reserved: the transformer writes the record's source there"),
                "monitor another field",
            ));
        }
    }
    Ok(segments)
}

fn compile_field(
    rule: &FieldRule,
    at: &str,
    timestamp_fields: &[Box<str>],
) -> Result<CompiledField, RulesError> {
    let segments = compile_path(&rule.path, at, timestamp_fields)?;
    let path = rule.path.trim();
    if rule.good.is_none() && rule.bad.is_none() {
        return Err(RulesError::invalid(
            at,
            format!("`{path}` has neither a `good` nor a `bad` class"),
            "add at least one class, e.g. `bad: { indicator: B_x, values: [...] }`",
        ));
    }
    let bad_policy = [rule.unknown, rule.missing, rule.wrong_type].contains(&Policy::Bad);
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
    if let Some(bad) = &rule.bad
        && bad.indicator.is_none()
    {
        return Err(RulesError::invalid(
            format!("{at}.bad.indicator"),
            "the bad class has no indicator",
            "name the field this class sets to 1, e.g. `indicator: B_action`",
        ));
    }
    if rule.bad.is_none() && rule.good.as_ref().is_some_and(|g| g.indicator.is_none()) {
        return Err(RulesError::invalid(
            format!("{at}.good.indicator"),
            format!("`{path}` sets no indicator: its only class has none"),
            "name the field the good class sets to 1, or add a `bad` class with an indicator",
        ));
    }
    let good = rule
        .good
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.good"), false))
        .transpose()?;
    let bad = rule
        .bad
        .as_ref()
        .map(|class| compile_class(class, &format!("{at}.bad"), bad_policy))
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
        when: None,
    })
}

/// Compiles a class; `policy_sets_it` allows a bad class without matchers (a policy `bad`
/// sets its indicator).
fn compile_class(
    rule: &ClassRule,
    at: &str,
    policy_sets_it: bool,
) -> Result<CompiledClass, RulesError> {
    if let Some(indicator) = &rule.indicator
        && indicator.trim().is_empty()
    {
        return Err(RulesError::invalid(
            format!("{at}.indicator"),
            "the indicator name is empty",
            "name the field this class sets to 1, e.g. `B_action`",
        ));
    }
    let text_matchers = !rule.prefix.is_empty() || !rule.suffix.is_empty() || !rule.cidr.is_empty();
    let has_matcher = !rule.values.is_empty()
        || !rule.status.is_empty()
        || rule.range.is_some()
        || rule.regex.is_some()
        || text_matchers
        || rule.present;
    if !has_matcher && !policy_sets_it {
        return Err(RulesError::invalid(
            at,
            "the class has no matcher",
            "add `values`, `status`, `range` or `regex` (or `prefix`, `suffix`, `cidr`, \
             `present`)",
        ));
    }
    if rule.present
        && (!rule.values.is_empty()
            || !rule.status.is_empty()
            || rule.range.is_some()
            || rule.regex.is_some()
            || text_matchers)
    {
        return Err(RulesError::invalid(
            format!("{at}.present"),
            "`present: true` matches every value, so the class's other matchers never decide",
            "keep `present` alone, or remove it",
        ));
    }
    let mut description = Vec::new();
    if !has_matcher {
        description.push("set only by a `bad` policy".to_owned());
    }
    if rule.present {
        description.push("present".to_owned());
    }

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
    let case = if rule.ignore_case {
        " (ignoring case)"
    } else {
        ""
    };
    if !texts.is_empty() {
        description.push(format!("values {}{case}", texts.join(", ")));
    }
    let folded = if rule.ignore_case {
        std::mem::take(&mut texts)
    } else {
        Vec::new()
    };

    let affixes = |list: &[String], what: &str| -> Result<Vec<Box<str>>, RulesError> {
        list.iter()
            .enumerate()
            .map(|(index, text)| {
                if text.is_empty() {
                    Err(RulesError::invalid(
                        format!("{at}.{what}[{index}]"),
                        format!("an empty {what} matches every string"),
                        "remove it, or use `present: true` to match any value",
                    ))
                } else {
                    Ok(Box::from(text.as_str()))
                }
            })
            .collect()
    };
    let prefixes = affixes(&rule.prefix, "prefix")?;
    let suffixes = affixes(&rule.suffix, "suffix")?;
    if !prefixes.is_empty() {
        description.push(format!("prefix {}{case}", prefixes.join(", ")));
    }
    if !suffixes.is_empty() {
        description.push(format!("suffix {}{case}", suffixes.join(", ")));
    }

    let mut networks = Vec::with_capacity(rule.cidr.len());
    for (index, entry) in rule.cidr.iter().enumerate() {
        let text = entry.trim();
        let network = text
            .parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| {
                text.parse::<std::net::IpAddr>()
                    .ok()
                    .map(ipnet::IpNet::from)
            })
            .ok_or_else(|| {
                RulesError::invalid(
                    format!("{at}.cidr[{index}]"),
                    format!("`{entry}` is not an IP network or address"),
                    "write a network or an address, e.g. `10.0.0.0/8`, `192.0.2.7` or \
                     `2001:db8::/32`",
                )
            })?;
        networks.push(network);
    }
    if !networks.is_empty() {
        description.push(format!("cidr {}", rule.cidr.join(", ")));
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
        let compiled = compile_regex(pattern, rule.ignore_case).map_err(|error| {
            RulesError::invalid(
                format!("{at}.regex"),
                format!("invalid regex {pattern:?}: {}", regex_problem(&error)),
                "fix the pattern (the `regex` crate's syntax; backreferences and look-around \
                 also work, backtracking)",
            )
        })?;
        description.push(format!("regex {pattern}{case}"));
        regex = Some(compiled);
    }

    Ok(CompiledClass {
        indicator: rule.indicator.as_deref().map(|name| name.trim().into()),
        texts: TextSet::new(texts),
        ignore_case: rule.ignore_case,
        folded,
        prefixes,
        suffixes,
        networks,
        present: rule.present,
        ints: if rule.ignore_case { Vec::new() } else { ints },
        status,
        range,
        regex,
        description: description.join("; "),
    })
}

/// The pattern compiled by the `regex` crate, or, for what only a backtracking engine can do
/// (backreferences, look-around), by `fancy_regex`; the `regex` crate's error otherwise.
fn compile_regex(pattern: &str, ignore_case: bool) -> Result<Pattern, regex::Error> {
    match RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .build()
    {
        Ok(plain) => Ok(Pattern::Plain(plain)),
        Err(error) => {
            let flagged = if ignore_case {
                format!("(?i){pattern}")
            } else {
                pattern.to_owned()
            };
            fancy_regex::Regex::new(&flagged)
                .map(|fancy| Pattern::Fancy(Box::new(fancy)))
                .map_err(|_| error)
        }
    }
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

/// The suffix template of [`Section::suffix`] and the offsets of its indicator digits; an
/// indicator shared by several fields is written once and they share its offset.
fn suffix_template(
    fields: &[CompiledField],
    source: Option<Source>,
) -> (Box<[u8]>, Vec<[Option<usize>; 2]>) {
    let mut suffix = Vec::new();
    let mut offsets = Vec::with_capacity(fields.len());
    let mut written: Vec<(&str, usize)> = Vec::new();
    for field in fields {
        let mut digits = [None, None];
        for (slot, class) in digits.iter_mut().zip([&field.good, &field.bad]) {
            let Some(name) = class.as_ref().and_then(|c| c.indicator.as_deref()) else {
                continue;
            };
            if let Some((_, at)) = written.iter().find(|(n, _)| *n == name) {
                *slot = Some(*at);
                continue;
            }
            suffix.push(b',');
            write_json_string(name, &mut suffix);
            suffix.push(b':');
            *slot = Some(suffix.len());
            written.push((name, suffix.len()));
            suffix.push(b'0');
        }
        offsets.push(digits);
    }
    if let Some(source) = source {
        suffix.push(b',');
        write_json_string(SOURCE_OUTPUT_FIELD, &mut suffix);
        suffix.push(b':');
        write_json_string(source.as_str(), &mut suffix);
    }
    suffix.push(b',');
    write_json_string(TIMESTAMP_OUTPUT_FIELD, &mut suffix);
    suffix.extend_from_slice(b":\"");
    (suffix.into_boxed_slice(), offsets)
}

/// Each indicator is written once per record and must not overwrite the fields the transformer
/// reads or writes. Only `bad` classes of different fields may share an indicator (it is then
/// 1 when any of them is). Returns the distinct names, in order of first use.
fn check_indicator_names<'a>(
    fields: &'a [CompiledField],
    at: &str,
    timestamp_fields: &[Box<str>],
) -> Result<Vec<&'a str>, RulesError> {
    // name, first class setting it, whether that class is bad, its field
    let mut seen: Vec<(&str, String, bool, usize)> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        for (class_name, class) in [("good", &field.good), ("bad", &field.bad)] {
            let Some(name) = class.as_ref().and_then(|c| c.indicator.as_deref()) else {
                continue;
            };
            let key = format!("{at}fields[{index}].{class_name}.indicator");
            let is_bad = class_name == "bad";
            if let Some((_, first, first_bad, first_field)) = seen.iter().find(|(n, ..)| *n == name)
            {
                if is_bad && *first_bad && *first_field != index {
                    continue;
                }
                return Err(RulesError::invalid(
                    key,
                    format!("indicator `{name}` is already set by {first}"),
                    "give each class its own indicator name (only `bad` classes of different \
                     entries may share one, which is then 1 when any of them matches)",
                ));
            }
            let reserved = timestamp_fields.iter().any(|t| **t == *name)
                || [
                    TIMESTAMP_FIELD,
                    TIMESTAMP_OUTPUT_FIELD,
                    EVENT_ID_FIELD,
                    SOURCE_OUTPUT_FIELD,
                ]
                .contains(&name);
            if reserved {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "`{name}` is reserved: the transformer reads `timestamp` and writes \
                         `@timestamp` and `event_id`"
                    ),
                    "choose another indicator name",
                ));
            }
            if let Some(other) = fields.iter().find(|f| {
                f.segments
                    .first()
                    .is_some_and(|s| s.strip_suffix("[]").unwrap_or(s) == name)
            }) {
                return Err(RulesError::invalid(
                    key,
                    format!(
                        "indicator `{name}` would overwrite the monitored field `{}`",
                        other.path
                    ),
                    "choose another indicator name",
                ));
            }
            seen.push((
                name,
                format!("{at}fields[{index}].{class_name}"),
                is_bad,
                index,
            ));
        }
    }
    Ok(seen.into_iter().map(|(name, ..)| name).collect())
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
