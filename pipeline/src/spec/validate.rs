//! [`Spec::validate`]: what serde cannot check of a spec (unique names, references, sensible
//! values), with the check of each channel's secret references.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Aggregation, Secret, SmtpTls, Spec, SpecError};
use crate::config::{ENV_PREFIX, SECRET_ENV_PREFIX};

/// The most parts a category detector's entities can be split into.
pub const MAX_ENTITY_PARTS: usize = 64;

impl Spec {
    /// Checks what serde cannot: unique names, references, sensible values.
    pub fn validate(&self, origin: &str) -> Result<(), SpecError> {
        let error = |key: String, problem: String, fix: &str| SpecError {
            origin: origin.to_owned(),
            key,
            problem,
            fix: fix.to_owned(),
        };
        if self.detectors.is_empty() {
            return Err(error(
                "detectors".into(),
                "is empty".into(),
                "declare at least one detector",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, d) in self.detectors.iter().enumerate() {
            let key = |k: &str| format!("detectors[{i}].{k}");
            if d.name.trim().is_empty() || !names.insert(d.name.as_str()) {
                return Err(error(
                    key("name"),
                    format!("`{}` is empty or used twice", d.name),
                    "give each detector a unique name",
                ));
            }
            if d.feature.aggregation != Aggregation::Count && d.feature.field.is_none() {
                return Err(error(
                    key("feature.field"),
                    "is missing".into(),
                    "name the numeric field to aggregate, e.g. UNK_country",
                ));
            }
            if d.feature.min_count.is_some() && d.feature.aggregation != Aggregation::Ratio {
                return Err(error(
                    key("feature.min_count"),
                    format!("is set for a `{}`", d.feature_name()),
                    "remove it: only a ratio leaves intervals with too few events unjudged",
                ));
            }
            if let Some(rise) = d.model.min_rise
                && !(rise.is_finite() && rise >= 0.0)
            {
                return Err(error(
                    key("model.min_rise"),
                    format!("is {rise}"),
                    "use a rise of 0 or more in the feature's units, e.g. 5 (events) or 0.02 \
                     (a ratio's 2 points)",
                ));
            }
            if d.feature.aggregation == Aggregation::Ratio && d.min_rise() >= 1.0 {
                return Err(error(
                    key("model.min_rise"),
                    format!("is {} for a ratio, which never rises by 1", d.min_rise()),
                    "give it in the ratio's units, e.g. 0.02 for 2 points, or leave it unset",
                ));
            }
            if d.extra_features.len() > 4 {
                return Err(error(
                    key("extra_features"),
                    format!("has {} features", d.extra_features.len()),
                    "give at most 4 extra features (five in all, as OpenSearch's plugin allows)",
                ));
            }
            for (j, extra) in d.extra_features.iter().enumerate() {
                let extra_key = |k: &str| key(&format!("extra_features[{j}].{k}"));
                if extra.aggregation != Aggregation::Count && extra.field.is_none() {
                    return Err(error(
                        extra_key("field"),
                        "is missing".into(),
                        "name the numeric field to aggregate, e.g. UNK_country",
                    ));
                }
                if extra.aggregation == Aggregation::NewValues
                    || d.feature.aggregation == Aggregation::NewValues
                    || d.category.is_some()
                {
                    return Err(error(
                        key("extra_features"),
                        "is combined with a category or new_values".into(),
                        "give a category detector or a new_values detector one feature only",
                    ));
                }
                if extra.min_count.is_some() && extra.aggregation != Aggregation::Ratio {
                    return Err(error(
                        extra_key("min_count"),
                        "is set for a feature that is not a ratio".into(),
                        "remove it: only a ratio leaves intervals with too few events unjudged",
                    ));
                }
            }
            let names: BTreeSet<String> = d
                .extra_features
                .iter()
                .enumerate()
                .filter_map(|(j, _)| d.extra_view(j).map(|v| v.feature_name()))
                .chain([d.feature_name()])
                .collect();
            if names.len() != d.extra_features.len() + 1 {
                return Err(error(
                    key("extra_features"),
                    "repeats a feature".into(),
                    "give each feature once (a field and aggregation appear once per detector)",
                ));
            }
            if let Some(category) = &d.category {
                if category.field.trim().is_empty() {
                    return Err(error(
                        key("category.field"),
                        "is empty".into(),
                        "name the field whose values are the entities, e.g. httpRequest.clientIp",
                    ));
                }
                if !(1..=1_000_000).contains(&category.max_entities) {
                    return Err(error(
                        key("category.max_entities"),
                        format!("is {}", category.max_entities),
                        "use 1 to 1000000 (each entity's model takes about 2 KB)",
                    ));
                }
                if !(1..=MAX_ENTITY_PARTS).contains(&category.parts) {
                    return Err(error(
                        key("category.parts"),
                        format!("is {}", category.parts),
                        &format!(
                            "use 1 to {MAX_ENTITY_PARTS} (each part goes to a shard of its own: \
                             detector.shards must be at least as many)"
                        ),
                    ));
                }
                if category.idle < d.interval {
                    return Err(error(
                        key("category.idle"),
                        format!("{:?} is shorter than the interval", category.idle),
                        "give at least one interval, e.g. 1h",
                    ));
                }
            }
            if d.interval < Duration::from_secs(1) {
                return Err(error(
                    key("interval"),
                    format!("{:?} is shorter than a second", d.interval),
                    "use an interval of 1s or more, e.g. 1m",
                ));
            }
            let m = &d.model;
            if m.shingle_size == 0 || m.trees == 0 || m.sample_size < 2 || m.baseline < 2 {
                return Err(error(
                    key("model"),
                    "has a zero size".into(),
                    "use shingle_size ≥ 1, trees ≥ 1, sample_size ≥ 2, baseline ≥ 2",
                ));
            }
        }
        let owner = &self.provisioning.owner;
        if owner.is_empty()
            || !owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(error(
                "provisioning.owner".into(),
                format!("`{owner}` is not a usable mark"),
                "use letters, digits, `-`, `_` and `.`, e.g. logwarden or logwarden-staging",
            ));
        }
        let mut channels = BTreeSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let kinds = usize::from(c.webhook.is_some())
                + usize::from(c.slack.is_some())
                + usize::from(c.email.is_some());
            if !channels.insert(c.name.as_str()) || c.name.trim().is_empty() {
                return Err(error(
                    format!("channels[{i}].name"),
                    format!("`{}` is empty or used twice", c.name),
                    "give each channel a unique name",
                ));
            }
            if kinds != 1 {
                return Err(error(
                    format!("channels[{i}]"),
                    format!("has {kinds} kinds"),
                    "give exactly one of webhook, slack, email",
                ));
            }
            let secrets = [
                ("webhook", c.webhook.as_ref()),
                ("slack", c.slack.as_ref()),
                (
                    "email.username",
                    c.email.as_ref().and_then(|e| e.username.as_ref()),
                ),
                (
                    "email.password",
                    c.email.as_ref().and_then(|e| e.password.as_ref()),
                ),
            ];
            if let Some(email) = &c.email
                && email.tls == SmtpTls::None
                && (email.username.is_some() || email.password.is_some())
                && !email.allow_insecure
            {
                return Err(error(
                    format!("channels[{i}].email.tls"),
                    "is none with a login: the SMTP password would travel unencrypted".into(),
                    "use tls: starttls (port 587) or tls (port 465), or set allow_insecure: true \
                     to accept it knowingly",
                ));
            }
            for (kind, secret) in secrets {
                if let Some(Err((problem, fix))) = secret.map(Secret::check) {
                    return Err(error(format!("channels[{i}].{kind}"), problem, &fix));
                }
            }
        }
        let split: BTreeSet<&str> = self
            .detectors
            .iter()
            .filter(|d| d.category.as_ref().is_some_and(|c| c.parts > 1))
            .map(|d| d.name.as_str())
            .collect();
        let mut monitors = BTreeSet::new();
        for (i, m) in self.monitors.iter().enumerate() {
            let key = |k: &str| format!("monitors[{i}].{k}");
            if !monitors.insert(m.name.as_str()) || m.name.trim().is_empty() {
                return Err(error(
                    key("name"),
                    format!("`{}` is empty or used twice", m.name),
                    "give each monitor a unique name",
                ));
            }
            if let Some(unknown) = m.detectors.iter().find(|d| !names.contains(d.as_str())) {
                return Err(error(
                    key("detectors"),
                    format!("names `{unknown}`, which is not a detector"),
                    "name detectors declared under `detectors`",
                ));
            }
            if m.detectors.len() > 1
                && let Some(split) = m.detectors.iter().find(|d| split.contains(d.as_str()))
            {
                return Err(error(
                    key("detectors"),
                    format!(
                        "names `{split}` with other detectors, but `{split}` splits its entities \
                         (category.parts)"
                    ),
                    "give a detector whose entities are split a monitor of its own (its parts \
                     run on different replicas)",
                ));
            }
            if let Some(unknown) = m.channels.iter().find(|c| !channels.contains(c.as_str())) {
                return Err(error(
                    key("channels"),
                    format!("names `{unknown}`, which is not a channel"),
                    "name channels declared under `channels`",
                ));
            }
            if !(m.min_grade > 0.0 && m.min_grade <= 1.0) {
                return Err(error(
                    key("min_grade"),
                    format!("is {}", m.min_grade),
                    "use a grade in (0, 1], e.g. 0.1",
                ));
            }
            if let Some(confidence) = m.min_confidence.filter(|c| !(0.0..=1.0).contains(c)) {
                return Err(error(
                    key("min_confidence"),
                    format!("is {confidence}"),
                    "use a confidence in [0, 1], e.g. 0.5",
                ));
            }
            if !(1..=5).contains(&m.severity) {
                return Err(error(
                    key("severity"),
                    format!("is {}", m.severity),
                    "use 1 (highest) to 5",
                ));
            }
        }
        Ok(())
    }
}

impl Secret {
    /// Checks the reference itself: exactly one source, and an environment variable outside the
    /// config namespace (`LOGWARDEN_*` names are config keys, except `LOGWARDEN_SECRET_*`).
    fn check(&self) -> Result<(), (String, String)> {
        let sources = usize::from(self.env.is_some())
            + usize::from(self.file.is_some())
            + usize::from(self.value.is_some());
        if sources != 1 {
            return Err((
                format!("has {sources} sources"),
                "give exactly one of env, file, value".to_owned(),
            ));
        }
        if let Some(variable) = &self.env
            && (variable.is_empty()
                || (variable.starts_with(ENV_PREFIX) && !variable.starts_with(SECRET_ENV_PREFIX)))
        {
            let suffix = variable.strip_prefix(ENV_PREFIX).unwrap_or(variable);
            return Err((
                format!(
                    "env `{variable}` is in the config namespace ({ENV_PREFIX}* variables are \
                     config keys)"
                ),
                format!(
                    "name secrets {SECRET_ENV_PREFIX}*, e.g. {SECRET_ENV_PREFIX}{}, or use a name \
                     outside {ENV_PREFIX}*, or `file: /path`",
                    if suffix.is_empty() {
                        "WEBHOOK_URL"
                    } else {
                        suffix
                    }
                ),
            ));
        }
        Ok(())
    }
}
