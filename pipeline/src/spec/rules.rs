//! The spec checked against the transformer's rules: each detector's feature field must be a
//! field the enriched records carry, and the detector learns which ones they carry from the
//! same rules file the transformer applies.
//!
//! Only what the check needs is read here ([`RulesFields`]: per section, the indicators its
//! rules set and the record paths they read); the transformer reads and validates the whole
//! file (`transformer::rules`), so this reading is lenient about every other key. The detector
//! never depends on the transformer: the default rules are embedded here from the transformer's
//! own file ([`DEFAULT_RULES_YAML`]), so both read one text.
//!
//! The rule ([`check`]), per detector with a `sum`, `rate` or `ratio` feature (a `count` reads
//! no field):
//! - Its section: a detector filtered on `logwarden_source: X` sees only source X's records, so
//!   it is checked against `sources.X` (no such section is an error: those records are dead
//!   letters `no_rules`). Any other detector sees every record, so a field that any section
//!   produces is fine.
//! - A field some rule of its section(s) sets (an indicator) passes.
//! - Else a field that comes from the record itself is a warning, not an error: a dotted path
//!   (`httpRequest.bytes`: indicators are never nested) or a path a rule of the section reads
//!   (`severity_code`, a `when` path, a timestamp field). The detector sums it as it arrives; a
//!   missing or non-numeric value counts 0.
//! - Anything else is an error naming `detectors[i].feature.field`, the field, the rules and
//!   the indicators the section does produce: most likely a typo, or rules that changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::{Aggregation, Spec, SpecError};

/// The transformer's default rules (`transformer/rules/default.yaml`), embedded: what the
/// detector checks the spec against when `detector.rules` is unset.
pub const DEFAULT_RULES_YAML: &str = include_str!("../../../transformer/rules/default.yaml");

/// How the embedded default rules are named in messages.
pub const DEFAULT_RULES_ORIGIN: &str = "(the transformer's default rules)";

/// The field a source's enriched records carry their source in.
pub const SOURCE_FIELD: &str = "logwarden_source";

/// What one section of the rules produces and reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectionFields {
    /// The indicators its rules set (good and bad classes).
    pub indicators: BTreeSet<String>,
    /// The record paths its rules read (`path`, `when.path`, the timestamp fields).
    pub reads: BTreeSet<String>,
}

/// What a rules file produces, per section: the top level (records without a source header)
/// and each source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFields {
    /// Where the rules came from (a path, or [`DEFAULT_RULES_ORIGIN`]).
    pub origin: String,
    /// The top-level section.
    pub top: SectionFields,
    /// Each source's section, by name.
    pub sources: BTreeMap<String, SectionFields>,
}

/// Why a rules file could not be read for the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rules {origin}: {problem}: {fix}")]
pub struct RulesFieldsError {
    /// Where the rules came from.
    pub origin: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    fields: Vec<Field>,
    #[serde(default)]
    sources: BTreeMap<String, Source>,
}

#[derive(Deserialize)]
struct Source {
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Timestamp {
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct Field {
    path: String,
    #[serde(default)]
    when: Option<When>,
    #[serde(default)]
    good: Option<Class>,
    #[serde(default)]
    bad: Option<Class>,
}

#[derive(Deserialize)]
struct When {
    path: String,
}

#[derive(Deserialize)]
struct Class {
    #[serde(default)]
    indicator: Option<String>,
}

fn section(timestamp: Option<Timestamp>, fields: Vec<Field>) -> SectionFields {
    let mut out = SectionFields::default();
    out.reads
        .extend(timestamp.map(|t| t.fields).unwrap_or_default());
    for field in fields {
        out.reads.insert(field.path);
        out.reads.extend(field.when.map(|w| w.path));
        for class in [field.good, field.bad].into_iter().flatten() {
            if let Some(name) = class.indicator.map(|n| n.trim().to_owned())
                && !name.is_empty()
            {
                out.indicators.insert(name);
            }
        }
    }
    out
}

impl RulesFields {
    /// The embedded default rules.
    pub fn default_rules() -> Result<Self, RulesFieldsError> {
        Self::parse(DEFAULT_RULES_YAML, DEFAULT_RULES_ORIGIN)
    }

    /// Reads the rules file at `path`.
    pub fn load(path: &Path) -> Result<Self, RulesFieldsError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| RulesFieldsError {
            origin: origin.clone(),
            problem: format!("cannot be read: {err}"),
            fix: "give the path of the rules file the transformer uses".into(),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses a rules file's text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, RulesFieldsError> {
        let file: File = serde_norway::from_str(text).map_err(|err| RulesFieldsError {
            origin: origin.to_owned(),
            problem: format!("is not a rules file ({err})"),
            fix: "check it with `logwarden-transformer check --rules FILE`".into(),
        })?;
        Ok(Self {
            origin: origin.to_owned(),
            top: section(file.timestamp, file.fields),
            sources: file
                .sources
                .into_iter()
                .map(|(name, s)| (name, section(s.timestamp, s.fields)))
                .collect(),
        })
    }
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks every detector's feature field against `rules` (see the module docs for the rule):
/// the first error, or the warnings (each a sentence naming the key and the field), in
/// detector order. `origin` names the spec.
pub fn check(spec: &Spec, rules: &RulesFields, origin: &str) -> Result<Vec<String>, SpecError> {
    let mut warnings = Vec::new();
    for (i, d) in spec.detectors.iter().enumerate() {
        let Some(field) = d.feature.field.as_deref() else {
            continue;
        };
        // A count reads no field; new values are of a record's own field (a region, a user
        // agent), which no rule produces.
        if matches!(
            d.feature.aggregation,
            Aggregation::Count | Aggregation::NewValues
        ) {
            continue;
        }
        let source = d
            .feature
            .filter
            .as_ref()
            .filter(|f| f.field == SOURCE_FIELD)
            .and_then(|f| f.value.as_str());
        let (name, sections): (String, Vec<&SectionFields>) = match source {
            Some(source) => {
                let Some(section) = rules.sources.get(source) else {
                    let known: BTreeSet<String> = rules.sources.keys().cloned().collect();
                    return Err(SpecError {
                        origin: origin.to_owned(),
                        key: format!("detectors[{i}].feature.filter.value"),
                        problem: format!(
                            "names the source `{source}`, which has no section in the rules \
                             {} (its records are dead letters `no_rules`, so this detector \
                             would never see one)",
                            rules.origin
                        ),
                        fix: format!(
                            "add `sources.{source}` to the rules, or filter on a source they \
                             have: {}",
                            list(&known)
                        ),
                    });
                };
                (format!("sources.{source}"), vec![section])
            }
            None => (
                "any section".to_owned(),
                std::iter::once(&rules.top)
                    .chain(rules.sources.values())
                    .collect(),
            ),
        };
        if sections.iter().any(|s| s.indicators.contains(field)) {
            continue;
        }
        let key = format!("detectors[{i}].feature.field");
        if field.contains('.') || sections.iter().any(|s| s.reads.contains(field)) {
            warnings.push(format!(
                "spec {origin}: `{key}` `{field}` is not an indicator of {name} in the rules {}: \
                 it is read from the record as it arrives (a missing or non-numeric value \
                 counts 0)",
                rules.origin
            ));
            continue;
        }
        let (produced, hint) = match source {
            Some(_) => (sections[0].indicators.clone(), ""),
            None => (
                rules.top.indicators.clone(),
                " (or filter on `logwarden_source` to use a source's indicators)",
            ),
        };
        return Err(SpecError {
            origin: origin.to_owned(),
            key,
            problem: format!(
                "`{field}` is set by no rule of {name} in the rules {}",
                rules.origin
            ),
            fix: format!(
                "name an indicator {} produces: {}{hint}; or add a rule for it to the rules",
                match source {
                    Some(s) => format!("`sources.{s}`"),
                    None => "the top level".to_owned(),
                },
                list(&produced)
            ),
        });
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
fields:
  - path: action
    good: { indicator: K_action, values: [ALLOW] }
    bad: { indicator: B_action, values: [BLOCK] }
    unknown: neither
    missing: dead_letter
sources:
  syslog:
    timestamp: { fields: [received_at] }
    fields:
      - path: severity_code
        when: { path: appname, values: [sshd] }
        bad: { indicator: syslog_error, range: { max: 3 } }
        unknown: neither
        missing: neither
  ndjson:
    fields: []
"#;

    fn spec(features: &[&str]) -> Spec {
        let detectors: String = features
            .iter()
            .enumerate()
            .map(|(i, f)| format!("  - name: d{i}\n    feature: {f}\n"))
            .collect();
        Spec::parse(&format!("detectors:\n{detectors}"), "test.yaml").expect("a valid spec")
    }

    #[test]
    fn each_feature_field_is_checked_against_its_section() {
        let rules = RulesFields::parse(RULES, "rules.yaml").expect("rules");
        let ok: Result<Vec<String>, String> = Ok(vec![]);
        let cases: [(&str, Result<Vec<String>, String>); 11] = [
            ("{field: B_action, aggregation: ratio}", ok.clone()),
            // Unfiltered, any section's indicator is in some record.
            ("{field: syslog_error}", ok.clone()),
            ("{aggregation: count}", ok.clone()),
            ("{field: nope, aggregation: count}", ok.clone()),
            (
                "{field: syslog_error, filter: {field: logwarden_source, value: syslog}}",
                ok.clone(),
            ),
            (
                "{field: B_acton}",
                Err(
                    "spec test.yaml: `detectors[0].feature.field` `B_acton` is set by no rule of \
                     any section in the rules rules.yaml: name an indicator the top level \
                     produces: B_action, K_action (or filter on `logwarden_source` to use a \
                     source's indicators); or add a rule for it to the rules"
                        .into(),
                ),
            ),
            (
                "{field: B_action, filter: {field: logwarden_source, value: syslog}}",
                Err(
                    "spec test.yaml: `detectors[0].feature.field` `B_action` is set by no rule \
                     of sources.syslog in the rules rules.yaml: name an indicator \
                     `sources.syslog` produces: syslog_error; or add a rule for it to the rules"
                        .into(),
                ),
            ),
            (
                "{field: x, filter: {field: logwarden_source, value: ndjson}}",
                Err(
                    "spec test.yaml: `detectors[0].feature.field` `x` is set by no rule of \
                     sources.ndjson in the rules rules.yaml: name an indicator `sources.ndjson` \
                     produces: (none); or add a rule for it to the rules"
                        .into(),
                ),
            ),
            (
                "{field: syslog_error, filter: {field: logwarden_source, value: waf}}",
                Err(
                    "spec test.yaml: `detectors[0].feature.filter.value` names the source \
                     `waf`, which has no section in the rules rules.yaml (its records are dead \
                     letters `no_rules`, so this detector would never see one): add \
                     `sources.waf` to the rules, or filter on a source they have: ndjson, syslog"
                        .into(),
                ),
            ),
            (
                "{field: httpRequest.bytes, filter: {field: logwarden_source, value: ndjson}}",
                Ok(vec![
                    "spec test.yaml: `detectors[0].feature.field` `httpRequest.bytes` is not an \
                     indicator of sources.ndjson in the rules rules.yaml: it is read from the \
                     record as it arrives (a missing or non-numeric value counts 0)"
                        .into(),
                ]),
            ),
            (
                "{field: severity_code, filter: {field: logwarden_source, value: syslog}}",
                Ok(vec![
                    "spec test.yaml: `detectors[0].feature.field` `severity_code` is not an \
                     indicator of sources.syslog in the rules rules.yaml: it is read from the \
                     record as it arrives (a missing or non-numeric value counts 0)"
                        .into(),
                ]),
            ),
        ];
        for (feature, expected) in cases {
            let checked = check(&spec(&[feature]), &rules, "test.yaml").map_err(|e| e.to_string());
            assert_eq!(checked, expected, "{feature}");
        }
    }

    #[test]
    fn the_paths_a_section_reads_come_from_the_record() {
        let rules = RulesFields::parse(RULES, "rules.yaml").expect("rules");
        let syslog = &rules.sources["syslog"];
        let reads: Vec<&str> = syslog.reads.iter().map(String::as_str).collect();
        assert_eq!(reads, ["appname", "received_at", "severity_code"]);
        let checked = check(
            &spec(&[
                "{field: appname, filter: {field: logwarden_source, value: syslog}}",
                "{field: received_at, filter: {field: logwarden_source, value: syslog}}",
            ]),
            &rules,
            "s",
        )
        .expect("warnings only");
        assert_eq!(checked.len(), 2, "{checked:?}");
        assert!(checked[1].contains("`detectors[1].feature.field` `received_at`"));
    }

    #[test]
    fn the_default_spec_passes_against_the_default_rules_without_a_warning() {
        let rules = RulesFields::default_rules().expect("the default rules");
        assert_eq!(rules.sources.len(), 6, "{:?}", rules.sources.keys());
        let spec = Spec::default_spec().expect("the default spec");
        assert_eq!(check(&spec, &rules, "default"), Ok(vec![]));
    }

    #[test]
    fn unreadable_rules_say_so() {
        let err = RulesFields::parse("fields: 3", "bad.yaml").expect_err("not a rules file");
        assert!(
            err.to_string()
                .starts_with("rules bad.yaml: is not a rules file ("),
            "{err}"
        );
        let err = RulesFields::load(Path::new("/nonexistent/rules.yaml")).expect_err("no file");
        assert!(
            err.to_string()
                .starts_with("rules /nonexistent/rules.yaml: cannot be read: "),
            "{err}"
        );
    }
}
