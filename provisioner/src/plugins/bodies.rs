//! The plugin objects' bodies, built from the spec by pure functions (no IO, no clock): a
//! detector per spec detector, notification configs per channel, a query-level monitor per spec
//! monitor, each carrying the ownership mark that pruning relies on. Errors name the spec key
//! and the fix, as the spec's own checks do.

use std::time::Duration;

use pipeline::spec::{
    Aggregation, ChannelSpec, DetectorSpec, Feature, MonitorSpec, PLUGIN_MIN_CONFIDENCE, SmtpTls,
    SpecError,
};
use serde_json::{Value, json};

use super::RESULTS_PATTERN;
use crate::plan::span;

/// The ownership mark: `managed_by: <owner>`.
pub fn mark(owner: &str) -> String {
    format!("managed_by: {owner}")
}

fn described(text: &str, owner: &str) -> String {
    format!("{text} ({})", mark(owner))
}

pub(super) fn is_owned_description(description: Option<&str>, owner: &str) -> bool {
    description.is_some_and(|d| d.ends_with(&format!("({})", mark(owner))))
}

fn spec_error(key: String, problem: String, fix: &str) -> SpecError {
    SpecError {
        origin: "spec".into(),
        key,
        problem,
        fix: fix.into(),
    }
}

/// Whole minutes of `duration`, rounded up, at least 1.
pub(super) fn minutes_up(duration: Duration) -> u64 {
    duration.as_secs().div_ceil(60).max(1)
}

/// The interval of detector `index` in whole minutes, or the error naming its key.
pub fn interval_minutes(d: &DetectorSpec, index: usize) -> Result<u64, SpecError> {
    let seconds = d.interval.as_secs();
    if seconds < 60 || !seconds.is_multiple_of(60) || d.interval.subsec_nanos() != 0 {
        return Err(spec_error(
            format!("detectors[{index}].interval"),
            format!(
                "is {}, not whole minutes: the anomaly-detection plugin counts intervals in minutes",
                span(d.interval)
            ),
            "use 1m or more in whole minutes for the opensearch-plugins target, or target builtin",
        ));
    }
    Ok(seconds / 60)
}

/// The plugin detector for spec detector `index`: one feature over `<events>*`, the interval and
/// window delay in minutes (the delay rounded up), the spec's shingle size and history.
pub fn detector_body(
    d: &DetectorSpec,
    index: usize,
    events: &str,
    owner: &str,
) -> Result<Value, SpecError> {
    let minutes = interval_minutes(d, index)?;
    let mut attributes = Vec::new();
    let mut described_features = Vec::new();
    for (j, view) in std::iter::once(Some(d.clone()))
        .chain((0..d.extra_features.len()).map(|j| d.extra_view(j)))
        .flatten()
        .enumerate()
    {
        let key = if j == 0 {
            format!("detectors[{index}].feature")
        } else {
            format!("detectors[{index}].extra_features[{}]", j - 1)
        };
        // The plugin filters a detector's records once, for all its features.
        if view.feature.filter != d.feature.filter {
            return Err(spec_error(
                format!("{key}.filter"),
                "differs from the detector's first feature's".into(),
                "give every feature the same filter for the plugin, or use target: builtin",
            ));
        }
        let (aggregation, what) = plugin_aggregation(&view.feature, &key)?;
        let name = view.feature_name();
        attributes.push(json!({
            "feature_name": name,
            "feature_enabled": true,
            "aggregation_query": { name.clone(): aggregation }
        }));
        described_features.push(what);
    }
    let what = described_features.join(", ");
    let filter = match &d.feature.filter {
        None => json!({ "match_all": { "boost": 1.0 } }),
        Some(filter) => json!({ "bool": {
            "filter": [{ "term": { filter.field.clone(): { "value": filter.value, "boost": 1.0 } } }],
            "adjust_pure_negative": true,
            "boost": 1.0
        } }),
    };
    let mut body = json!({
        "name": d.name,
        "description": described(&format!("{what} per {minutes}m"), owner),
        "time_field": "@timestamp",
        "indices": [format!("{events}*")],
        "filter_query": filter,
        "feature_attributes": attributes,
        "detection_interval": { "period": { "interval": minutes, "unit": "Minutes" } },
        "window_delay": { "period": { "interval": minutes_up(d.window_delay), "unit": "Minutes" } },
        "shingle_size": d.model.shingle_size,
        "history": d.model.history,
    });
    // A high-cardinality detector: the plugin keeps a model per value of the field.
    if let Some(category) = &d.category {
        body["category_field"] = json!([category.field]);
    }
    Ok(body)
}

/// The plugin's aggregation for a feature, and how the description names it; `key` is the
/// feature's place in the spec, for the error.
fn plugin_aggregation(feature: &Feature, key: &str) -> Result<(Value, String), SpecError> {
    Ok(match (feature.aggregation, &feature.field) {
        (Aggregation::Sum, Some(field)) => (
            json!({ "sum": { "field": field } }),
            format!("sum({field})"),
        ),
        (Aggregation::Count, Some(field)) => (
            json!({ "value_count": { "field": field } }),
            format!("count({field})"),
        ),
        (Aggregation::Count, None) => (
            json!({ "value_count": { "field": "@timestamp" } }),
            "count".to_owned(),
        ),
        // The plugin has no memory of values: the distinct values per interval rise when new
        // ones come.
        (Aggregation::NewValues, Some(field)) => (
            json!({ "cardinality": { "field": field } }),
            format!("distinct({field})"),
        ),
        // A 0/1 indicator's share of the events is its average.
        (Aggregation::Ratio, Some(field)) => (
            json!({ "avg": { "field": field } }),
            format!("avg({field})"),
        ),
        (Aggregation::Sum | Aggregation::Ratio | Aggregation::NewValues, None)
        | (Aggregation::Rate, _) => {
            return Err(spec_error(
                format!("{key}.aggregation"),
                "is `rate`, which the anomaly-detection plugin has no aggregation for".into(),
                "use `sum` (the plugin's intervals are fixed, so a sum is a rate times the interval)",
            ));
        }
    })
}

/// What kind of notification config a channel is (it decides the message's form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A JSON body.
    Webhook,
    /// Text, sent by the plugin as Slack's `text`.
    Slack,
    /// Text, with a subject.
    Email,
}

/// A channel as notification configs: `(config id, body)`, the SMTP account before the e-mail
/// config that uses it. Secrets (URLs with tokens) are resolved here, in the provisioner's
/// environment.
pub fn channel_configs(
    c: &ChannelSpec,
    index: usize,
    owner: &str,
) -> Result<(ChannelKind, Vec<(String, Value)>), SpecError> {
    let description = described("logwarden alerts", owner);
    let resolve = |secret: &pipeline::spec::Secret, kind: &str| {
        secret.resolve().map_err(|problem| {
            spec_error(
                format!("channels[{index}].{kind}"),
                problem,
                "set the variable or file it names in the provisioner's environment",
            )
        })
    };
    let config = |name: &str, kind: &str, body: Value| {
        json!({
            "config_id": name,
            "config": {
                "name": name,
                "description": description,
                "config_type": kind,
                "is_enabled": true,
                kind: body,
            }
        })
    };
    if let Some(secret) = &c.webhook {
        let url = resolve(secret, "webhook")?;
        let body = json!({
            "url": url,
            "header_params": { "Content-Type": "application/json" },
            "method": "POST"
        });
        return Ok((
            ChannelKind::Webhook,
            vec![(c.name.clone(), config(&c.name, "webhook", body))],
        ));
    }
    if let Some(secret) = &c.slack {
        let url = resolve(secret, "slack")?;
        return Ok((
            ChannelKind::Slack,
            vec![(
                c.name.clone(),
                config(&c.name, "slack", json!({ "url": url })),
            )],
        ));
    }
    let Some(email) = &c.email else {
        return Err(spec_error(
            format!("channels[{index}]"),
            "has no kind".into(),
            "give exactly one of webhook, slack, email",
        ));
    };
    let account = format!("{}-smtp", c.name);
    let method = match email.tls {
        SmtpTls::None => "none",
        SmtpTls::Starttls => "start_tls",
        SmtpTls::Tls => "ssl",
    };
    let smtp = json!({
        "host": email.host,
        "port": email.port,
        "method": method,
        "from_address": email.from,
    });
    let recipients: Vec<Value> = email
        .to
        .iter()
        .map(|to| json!({ "recipient": to }))
        .collect();
    let message = json!({
        "email_account_id": account,
        "recipient_list": recipients,
        "email_group_id_list": [],
    });
    Ok((
        ChannelKind::Email,
        vec![
            (account.clone(), config(&account, "smtp_account", smtp)),
            (c.name.clone(), config(&c.name, "email", message)),
        ],
    ))
}

/// The query-level monitor for spec monitor `m` on plugin detectors `detector_ids`, run every
/// `minutes`: the highest grade among the results whose data ended in the last three intervals,
/// historical results excluded; it triggers at `min_grade` and `min_confidence` (default
/// [`PLUGIN_MIN_CONFIDENCE`]); each channel gets the seed's sentence, again every `renotify`
/// while the alert lasts.
pub fn monitor_body(
    m: &MonitorSpec,
    detector_ids: &[String],
    minutes: u64,
    channels: &[(String, ChannelKind)],
    owner: &str,
) -> Value {
    let detector_filter = match detector_ids {
        [one] => json!({ "term": { "detector_id": { "value": one, "boost": 1.0 } } }),
        many => json!({ "terms": { "detector_id": many, "boost": 1.0 } }),
    };
    let confidence = m.min_confidence.unwrap_or(PLUGIN_MIN_CONFIDENCE);
    let condition = format!(
        "// {}\nreturn ctx.results != null && ctx.results.length > 0 \
         && ctx.results[0].aggregations != null && ctx.results[0].aggregations.max_anomaly_grade != null \
         && ctx.results[0].aggregations.max_anomaly_grade.value != null \
         && ctx.results[0].hits.total.value > 0 && ctx.results[0].hits.hits[0]._source != null \
         && ctx.results[0].hits.hits[0]._source.confidence != null \
         && ctx.results[0].aggregations.max_anomaly_grade.value >= {} \
         && ctx.results[0].hits.hits[0]._source.confidence >= {}",
        mark(owner),
        float(m.min_grade),
        float(confidence)
    );
    let sentence =
        "Monitor {{ctx.monitor.name}} just entered alert status. Please investigate the issue.";
    let renotify = if m.renotify.is_zero() {
        // "Never again while it lasts": the plugin needs some throttle; a day is the longest
        // that still reminds someone of an alert nobody acknowledged.
        24 * 60
    } else {
        minutes_up(m.renotify)
    };
    let actions: Vec<Value> = channels
        .iter()
        .map(|(id, kind)| {
            let message = match kind {
                ChannelKind::Webhook => format!(
                    "{{\"kind\":\"alert\",\"monitor\":\"{{{{ctx.monitor.name}}}}\",\"trigger\":\"{{{{ctx.trigger.name}}}}\",\
                     \"severity\":\"{{{{ctx.trigger.severity}}}}\",\"detector_id\":\"{{{{ctx.results.0.hits.hits.0._source.detector_id}}}}\",\
                     \"grade\":{{{{ctx.results.0.aggregations.max_anomaly_grade.value}}}},\
                     \"confidence\":{{{{ctx.results.0.hits.hits.0._source.confidence}}}},\
                     \"interval\":{{\"start\":{{{{ctx.results.0.hits.hits.0._source.data_start_time}}}},\"end\":{{{{ctx.results.0.hits.hits.0._source.data_end_time}}}}}},\
                     \"alert_id\":\"{{{{ctx.alert.id}}}}\",\"message\":\"{sentence}\"}}"
                ),
                ChannelKind::Slack | ChannelKind::Email => format!(
                    "{sentence}\nSeverity {{{{ctx.trigger.severity}}}} · grade {{{{ctx.results.0.aggregations.max_anomaly_grade.value}}}} · \
                     confidence {{{{ctx.results.0.hits.hits.0._source.confidence}}}} · detector {{{{ctx.results.0.hits.hits.0._source.detector_id}}}}"
                ),
            };
            json!({
                "name": id,
                "destination_id": id,
                "message_template": { "source": message, "lang": "mustache" },
                "subject_template": {
                    "source": "[logwarden] severity {{ctx.trigger.severity}}: Monitor {{ctx.monitor.name}} just entered alert status",
                    "lang": "mustache"
                },
                "throttle_enabled": true,
                "throttle": { "value": renotify, "unit": "MINUTES" },
            })
        })
        .collect();
    json!({
        "type": "monitor",
        "monitor_type": "query_level_monitor",
        "name": m.name,
        "enabled": true,
        "schedule": { "period": { "interval": minutes, "unit": "MINUTES" } },
        "inputs": [{ "search": {
            "indices": [RESULTS_PATTERN],
            "query": {
                "size": 1,
                "query": { "bool": {
                    "filter": [
                        { "range": { "data_end_time": {
                            "from": format!("{{{{period_end}}}}||-{}m", 3 * minutes),
                            "to": "{{period_end}}",
                            "include_lower": true,
                            "include_upper": true,
                            "boost": 1.0
                        } } },
                        detector_filter
                    ],
                    "must_not": [{ "exists": { "field": "task_id", "boost": 1.0 } }],
                    "adjust_pure_negative": true,
                    "boost": 1.0
                } },
                "sort": [
                    { "anomaly_grade": { "order": "desc" } },
                    { "confidence": { "order": "desc" } }
                ],
                "aggregations": { "max_anomaly_grade": { "max": { "field": "anomaly_grade" } } }
            }
        } }],
        "triggers": [{ "query_level_trigger": {
            "name": format!("{} anomaly", m.name),
            "severity": m.severity.to_string(),
            "condition": { "script": { "source": condition, "lang": "painless" } },
            "actions": actions
        } }]
    })
}

/// A threshold as painless reads it (`0.1`, `0.5`, `1.0`).
fn float(value: f64) -> String {
    let text = value.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

#[cfg(test)]
mod tests {
    use pipeline::spec::Spec;

    use super::*;

    fn spec(text: &str) -> Spec {
        Spec::parse(text, "test").expect("valid spec")
    }

    #[test]
    fn sub_minute_intervals_and_rates_name_their_key() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}, interval: 5s}, {name: b, feature: {field: x, aggregation: rate}}]",
        );
        let err = detector_body(&s.detectors[0], 0, "e", "o").expect_err("5s");
        assert_eq!(err.key, "detectors[0].interval");
        assert!(err.to_string().contains("whole minutes"), "{err}");
        let err = detector_body(&s.detectors[1], 1, "e", "o").expect_err("rate");
        assert_eq!(err.key, "detectors[1].feature.aggregation");
    }

    #[test]
    fn filters_and_counts_become_plugin_queries() {
        let s = spec(
            "detectors: [{name: a, feature: {aggregation: count, filter: {field: action, value: BLOCK}}, window_delay: 90s}]",
        );
        let body = detector_body(&s.detectors[0], 0, "logwarden-events", "o").expect("valid");
        assert_eq!(
            body["feature_attributes"][0]["aggregation_query"],
            json!({"count": {"value_count": {"field": "@timestamp"}}})
        );
        assert_eq!(
            body["filter_query"]["bool"]["filter"][0],
            json!({"term": {"action": {"value": "BLOCK", "boost": 1.0}}})
        );
        assert_eq!(body["window_delay"]["period"]["interval"], 2);
        assert_eq!(body["indices"], json!(["logwarden-events*"]));
        assert!(is_owned_description(body["description"].as_str(), "o"));
        assert!(!is_owned_description(body["description"].as_str(), "other"));
    }

    #[test]
    fn thresholds_default_to_the_plugins_cold_start_confidence() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: m, detectors: [a], channels: [], min_grade: 0.3}]",
        );
        let body = monitor_body(&s.monitors[0], &["id-a".into()], 1, &[], "o");
        let script = body["triggers"][0]["query_level_trigger"]["condition"]["script"]["source"]
            .as_str()
            .expect("script");
        assert!(script.starts_with("// managed_by: o\n"), "{script}");
        assert!(
            script.contains("max_anomaly_grade.value >= 0.3"),
            "{script}"
        );
        assert!(script.contains("confidence >= 0.2"), "{script}");
    }

    #[test]
    fn webhook_messages_are_json_once_rendered() {
        let s = spec(
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: UNK_country-Monitor, detectors: [a], channels: [c]}]\nchannels: [{name: c, webhook: {value: 'http://h/'}}]",
        );
        let body = monitor_body(
            &s.monitors[0],
            &["id-a".into()],
            1,
            &[("c".into(), ChannelKind::Webhook)],
            "o",
        );
        let template = body["triggers"][0]["query_level_trigger"]["actions"][0]["message_template"]
            ["source"]
            .as_str()
            .expect("template");
        // What mustache would make of it with numbers and names filled in.
        let rendered = template
            .replace("{{ctx.monitor.name}}", "UNK_country-Monitor")
            .replace(
                "{{ctx.results.0.aggregations.max_anomaly_grade.value}}",
                "0.8",
            )
            .replace("{{ctx.results.0.hits.hits.0._source.confidence}}", "0.9")
            .replace("{{ctx.results.0.hits.hits.0._source.data_start_time}}", "1")
            .replace("{{ctx.results.0.hits.hits.0._source.data_end_time}}", "2");
        let rendered = regex_free_fill(&rendered);
        let value: Value = serde_json::from_str(&rendered).expect(&rendered);
        assert_eq!(
            value["message"],
            "Monitor UNK_country-Monitor just entered alert status. Please investigate the issue."
        );
        assert_eq!(value["grade"], 0.8);
    }

    /// Replaces every remaining `{{...}}` with `x`.
    fn regex_free_fill(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .map_or(rest.len(), |e| start + e + 2);
            out.push('x');
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}
