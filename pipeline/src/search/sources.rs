//! The events index per source: a source's records (those with a `logwarden_source` field)
//! go to daily indices `<prefix>-<source>-YYYY.MM.DD`, under the source's own alias
//! `<prefix>-<source>` and the common alias `<prefix>` that the seed's daily indices
//! (`<prefix>-YYYY.MM.DD`) join too, so a query on the common alias still sees every event.
//!
//! Each source has its own index template (priority above the common one, whose pattern also
//! matches its indices): the common fields, the preset's indicators as integers (by their
//! prefix: `waf_*`, `ct_*`, `syslog_*`, `cw_*`, `hec_*`), and the source's fields typed as its
//! documented format has them: times as dates, addresses as `ip`, hosts and names as keywords,
//! free-form objects whose keys and types vary from record to record (CloudTrail's
//! `requestParameters`, syslog's structured data, HEC's `event`) as `flat_object` or not
//! indexed, so one record's shape cannot refuse the next one's.

use serde_json::{Map, Value, json};

use super::{EventsIndex, OWNER, OWNER_META};
use crate::wire::{SOURCE_FIELD, Source};

/// The priority of the sources' templates: above the common template's 100, whose pattern
/// also matches their indices.
const SOURCE_PRIORITY: u32 = 110;

impl EventsIndex {
    /// The alias over the daily indices of `source`: `<prefix>-<source>`.
    pub fn source_alias(&self, source: Source) -> String {
        format!("{}-{source}", self.alias())
    }

    /// The pattern every daily index of `source` matches.
    pub fn source_pattern(&self, source: Source) -> String {
        format!("{}-{source}-*", self.alias())
    }

    /// The name of `source`'s index template (its alias's name).
    pub fn source_template_name(&self, source: Source) -> String {
        self.source_alias(source)
    }

    /// The daily index of a record of `source` (`None`: the seed's records, without a
    /// `logwarden_source`) for an RFC 3339 `@timestamp`, or `None` when the timestamp does
    /// not start with a plausible date.
    pub fn daily_index_of(&self, source: Option<Source>, timestamp: &str) -> Option<String> {
        let seed = self.daily_index(timestamp)?;
        match source {
            None => Some(seed),
            Some(source) => {
                let day = seed.get(self.alias().len()..)?;
                Some(format!("{}-{source}{day}", self.alias()))
            }
        }
    }

    /// The day (`YYYY.MM.DD`) of a daily index of this events index, the seed's or a source's;
    /// `None` for any other name.
    pub fn day_of_index<'a>(&self, name: &'a str) -> Option<&'a str> {
        let rest = name.strip_prefix(self.alias())?.strip_prefix('-')?;
        let day = Source::ALL
            .into_iter()
            .find_map(|source| {
                rest.strip_prefix(source.as_str())
                    .and_then(|r| r.strip_prefix('-'))
            })
            .unwrap_or(rest);
        let bytes = day.as_bytes();
        let shaped = bytes.len() == 10
            && bytes.get(4) == Some(&b'.')
            && bytes.get(7) == Some(&b'.')
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        shaped.then_some(day)
    }

    /// The index template of `source`'s daily indices: into both aliases, with the source's
    /// fields mapped (see the module docs).
    pub fn source_template(&self, source: Source) -> Value {
        let mut template = self.template();
        template["index_patterns"] = json!([self.source_pattern(source)]);
        template["priority"] = json!(SOURCE_PRIORITY);
        template["_meta"] = json!({ OWNER_META: OWNER });
        template["template"]["aliases"] = json!({
            self.alias(): {},
            self.source_alias(source): {},
        });
        let mappings = &mut template["template"]["mappings"];
        let mut properties = Map::new();
        properties.insert("@timestamp".into(), json!({ "type": "date" }));
        properties.insert("event_id".into(), json!({ "type": "keyword" }));
        properties.insert(SOURCE_FIELD.into(), json!({ "type": "keyword" }));
        properties.extend(source_fields(source));
        mappings["properties"] = Value::Object(properties);
        let mut dynamic = Vec::new();
        if let Some(prefix) = indicator_prefix(source) {
            dynamic.push(json!({
                "indicators": {
                    "path_match": format!("{prefix}*"),
                    "match_mapping_type": "long",
                    "mapping": { "type": "integer" }
                }
            }));
        }
        if let Some(Value::Array(common)) = mappings.get("dynamic_templates") {
            dynamic.extend(common.iter().cloned());
        }
        mappings["dynamic_templates"] = Value::Array(dynamic);
        template
    }
}

/// The prefix of the preset's indicator names of `source`.
fn indicator_prefix(source: Source) -> Option<&'static str> {
    match source {
        Source::Waf => Some("waf_"),
        Source::Cloudtrail => Some("ct_"),
        Source::Syslog => Some("syslog_"),
        Source::Cloudwatch => Some("cw_"),
        Source::Splunk => Some("hec_"),
        Source::Ndjson => None,
    }
}

/// The explicitly mapped fields of `source`'s records.
fn source_fields(source: Source) -> Map<String, Value> {
    let keyword = json!({ "type": "keyword" });
    let text = json!({
        "type": "text",
        "fields": { "keyword": { "type": "keyword", "ignore_above": 1024 } }
    });
    let epoch_millis = json!({ "type": "date", "format": "epoch_millis" });
    let date = json!({ "type": "date" });
    let flat = json!({ "type": "flat_object" });
    let fields = match source {
        Source::Waf => json!({
            "timestamp": epoch_millis,
            "formatVersion": { "type": "integer" },
            "responseCodeSent": { "type": "integer" },
            "httpRequest": { "properties": {
                "clientIp": { "type": "ip" },
                "country": keyword,
                "httpMethod": keyword,
                "uri": keyword,
            } },
            "rateBasedRuleList": { "properties": {
                "maxRateAllowed": { "type": "long" },
                "evaluationWindowSec": keyword,
            } },
            // Each rule's match details vary in shape (strings or lists of them).
            "terminatingRuleMatchDetails": { "type": "object", "enabled": false },
        }),
        Source::Cloudtrail => json!({
            "eventTime": date,
            "eventName": keyword,
            "eventSource": keyword,
            "awsRegion": keyword,
            "errorCode": keyword,
            "errorMessage": text,
            // An address, or a service's name for calls AWS makes itself.
            "sourceIPAddress": keyword,
            "requestParameters": flat,
            "responseElements": flat,
            "additionalEventData": flat,
            "serviceEventDetails": flat,
        }),
        Source::Syslog => json!({
            "timestamp": date,
            "received_at": date,
            "hostname": keyword,
            "appname": keyword,
            "procid": keyword,
            "msgid": keyword,
            "facility": keyword,
            "severity": keyword,
            "facility_code": { "type": "integer" },
            "severity_code": { "type": "integer" },
            "message": text,
            "peer": keyword,
            "structured_data": flat,
        }),
        Source::Cloudwatch => json!({
            "timestamp": epoch_millis,
            "owner": keyword,
            "logGroup": keyword,
            "logStream": keyword,
            "id": keyword,
            "subscriptionFilters": keyword,
            "message": text,
        }),
        Source::Splunk => json!({
            // Epoch seconds, a number or a string holding one.
            "time": { "type": "double" },
            "host": keyword,
            "source": keyword,
            "sourcetype": keyword,
            "index": keyword,
            "fields": flat,
            // A string or an object of any shape, from one event to the next: kept in
            // `_source`, not indexed (the indicators carry what the preset reads).
            "event": { "type": "object", "enabled": false },
        }),
        Source::Ndjson => json!({}),
    };
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_daily_indices_join_its_alias_and_the_common_one() {
        let index = EventsIndex::new("t-events", "k").expect("valid");
        assert_eq!(
            index
                .daily_index_of(Some(Source::Waf), "2026-12-05T06:00:00.000Z")
                .as_deref(),
            Some("t-events-waf-2026.12.05")
        );
        assert_eq!(
            index
                .daily_index_of(None, "2026-12-05T06:00:00.000Z")
                .as_deref(),
            Some("t-events-2026.12.05")
        );
        assert_eq!(index.daily_index_of(Some(Source::Syslog), "junk"), None);
        let template = index.source_template(Source::Cloudtrail);
        assert_eq!(template["index_patterns"], json!(["t-events-cloudtrail-*"]));
        assert_eq!(
            template["template"]["aliases"],
            json!({ "t-events": {}, "t-events-cloudtrail": {} })
        );
        let properties = &template["template"]["mappings"]["properties"];
        assert_eq!(properties["eventTime"]["type"], "date");
        assert_eq!(properties["requestParameters"]["type"], "flat_object");
        assert_eq!(properties[SOURCE_FIELD]["type"], "keyword");
        let dynamic = &template["template"]["mappings"]["dynamic_templates"];
        assert_eq!(dynamic[0]["indicators"]["path_match"], "ct_*");
        assert_eq!(dynamic[0]["indicators"]["mapping"]["type"], "integer");
        assert_eq!(
            dynamic[1]["strings_as_keywords"]["mapping"]["type"],
            "keyword"
        );
        assert!(template["priority"].as_u64() > index.template()["priority"].as_u64());
    }

    #[test]
    fn days_are_read_from_the_seeds_and_the_sources_index_names() {
        let index = EventsIndex::new("t-events", "k").expect("valid");
        for (name, day) in [
            ("t-events-2026.12.05", Some("2026.12.05")),
            ("t-events-waf-2026.12.05", Some("2026.12.05")),
            ("t-events-ndjson-2026.01.31", Some("2026.01.31")),
            ("t-events-extra-2026.12.05", None),
            ("t-events-waf-2026.12.5", None),
            ("t-events-archive", None),
            ("other-2026.12.05", None),
        ] {
            assert_eq!(index.day_of_index(name), day, "{name}");
        }
    }
}
