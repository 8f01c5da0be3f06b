//! AWS WAF web ACL traffic logs in AWS's documented format ("Log fields for web ACL traffic"):
//! `terminatingRuleId`/`terminatingRuleType`, `ALLOW`/`BLOCK`/`CAPTCHA`/`CHALLENGE` actions,
//! `ruleGroupList`, `rateBasedRuleList`, `nonTerminatingMatchingRules`, `labels[].name`,
//! `responseCodeSent` only when a rule sent a custom response, and `country` `-` when unknown.
//! No `httpStatus`: real records do not have it.

use serde_json::{Value, json};

use super::sources::{Common, SourceRecord};

const ACCOUNT: &str = "123456789012";
const WEB_ACL: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop-web-acl/3f1e2d4c-5b6a-4c7d-8e9f-0a1b2c3d4e5f";
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 40),
    ("GB", 12),
    ("DE", 12),
    ("IN", 10),
    ("FR", 8),
    ("JP", 8),
    ("BR", 6),
    ("CA", 4),
];
const COMMON_METHODS: &[(&str, u32)] = &[("GET", 70), ("POST", 20), ("HEAD", 5), ("OPTIONS", 5)];
const UNCOMMON_METHODS: &[&str] = &["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"];
const PATHS: &[(&str, &str, u32)] = &[
    ("/", "", 30),
    ("/products", "category=shoes&page=2", 20),
    ("/api/cart", "", 15),
    ("/login", "", 8),
    ("/static/app.js", "v=3.2.1", 15),
    ("/search", "q=running+shoes", 12),
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "curl/8.5.0",
];
/// The few addresses a flood comes from.
const ATTACKERS: &[&str] = &["203.0.113.77", "203.0.113.78", "198.51.100.23"];

/// What kind of request a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Allowed by the default action.
    Allow,
    /// Allowed, counted by a managed rule group (a label, a non-terminating match).
    ManagedCount,
    /// Blocked by a managed rule group.
    ManagedBlock,
    /// A CHALLENGE action.
    Challenge,
    /// A CAPTCHA action.
    Captcha,
    /// Blocked by a rate-based rule.
    RateBlock,
    /// Allowed, from an unknown country.
    UnknownCountry,
    /// Allowed, with an uncommon method.
    UncommonMethod,
    /// Blocked with a custom 403 response.
    Custom4xx,
    /// Blocked with a custom 503 response (a maintenance rule).
    Custom5xx,
}

const NORMAL: &[(Kind, u32)] = &[
    (Kind::Allow, 930),
    (Kind::ManagedCount, 20),
    (Kind::ManagedBlock, 10),
    (Kind::Challenge, 10),
    (Kind::Captcha, 5),
    (Kind::RateBlock, 3),
    (Kind::UnknownCountry, 8),
    (Kind::UncommonMethod, 8),
    (Kind::Custom4xx, 4),
    (Kind::Custom5xx, 2),
];

fn injected(indicator: &str) -> Kind {
    match indicator {
        "waf_blocked" => Kind::ManagedBlock,
        "waf_challenged" => Kind::Challenge,
        "waf_rate_limited" => Kind::RateBlock,
        "waf_managed_rule" => Kind::ManagedCount,
        "waf_unknown_country" => Kind::UnknownCountry,
        "waf_uncommon_method" => Kind::UncommonMethod,
        "waf_client_error" => Kind::Custom4xx,
        "waf_server_error" => Kind::Custom5xx,
        _ => Kind::Allow,
    }
}

/// The WAF generator.
#[derive(Debug, Clone)]
pub struct Waf {
    pub(crate) common: Common,
}

impl Waf {
    pub(crate) fn new(common: Common) -> Self {
        Self { common }
    }

    pub(crate) fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        let c = &mut self.common;
        let injects = c.injects(inject).map(injected);
        let kind = *c.pick(NORMAL);
        let kind = injects.unwrap_or(kind);
        let key = c.key();
        let (path, args, _) = *c.one(PATHS);
        let mut country = *c.pick(COUNTRIES);
        let mut method = *c.pick(COMMON_METHODS);
        let mut client = c.public_ip();
        let agent = *c.one(AGENTS);
        let alb = format!("{ACCOUNT}-app/shop-alb/5e2f9a7c1b3d4e6f");
        let mut record = json!({
            "timestamp": timestamp_ms,
            "formatVersion": 1,
            "webaclId": WEB_ACL,
            "terminatingRuleId": "Default_Action",
            "terminatingRuleType": "REGULAR",
            "action": "ALLOW",
            "terminatingRuleMatchDetails": [],
            "httpSourceName": "ALB",
            "httpSourceId": alb,
            "ruleGroupList": [managed_group("AWS#AWSManagedRulesCommonRuleSet", Value::Null, &[])],
            "rateBasedRuleList": [],
            "nonTerminatingMatchingRules": [],
            "requestHeadersInserted": null,
            "responseCodeSent": null,
        });
        let mut labels: Vec<&str> = Vec::new();
        match kind {
            Kind::Allow => {}
            Kind::ManagedCount => {
                record["ruleGroupList"] = json!([managed_group(
                    "AWS#AWSManagedRulesAnonymousIpList",
                    Value::Null,
                    &["HostingProviderIPList"],
                )]);
                labels.push("awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList");
            }
            Kind::ManagedBlock => {
                record["terminatingRuleId"] = "AWS-AWSManagedRulesSQLiRuleSet".into();
                record["terminatingRuleType"] = "MANAGED_RULE_GROUP".into();
                record["action"] = "BLOCK".into();
                record["terminatingRuleMatchDetails"] = json!([{
                    "conditionType": "SQL_INJECTION", "sensitivityLevel": "LOW",
                    "location": "QUERY_STRING", "matchedData": ["UNION", "SELECT"]
                }]);
                record["ruleGroupList"] = json!([managed_group(
                    "AWS#AWSManagedRulesSQLiRuleSet",
                    json!({"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK", "ruleMatchDetails": null}),
                    &[],
                )]);
                labels.push("awswaf:managed:aws:sql-database:SQLi_QueryArguments");
            }
            Kind::Challenge | Kind::Captcha => {
                let (rule, action, field) = if kind == Kind::Challenge {
                    ("challenge-login", "CHALLENGE", "challengeResponse")
                } else {
                    ("captcha-checkout", "CAPTCHA", "captchaResponse")
                };
                record["terminatingRuleId"] = rule.into();
                record["action"] = action.into();
                record[field] = json!({"responseCode": 405, "solveTimestamp": 0, "failureReason": "TOKEN_MISSING"});
            }
            Kind::RateBlock => {
                client = (*c.one(ATTACKERS)).to_owned();
                record["terminatingRuleId"] = "rate-limit-per-ip".into();
                record["terminatingRuleType"] = "RATE_BASED".into();
                record["action"] = "BLOCK".into();
                record["rateBasedRuleList"] = json!([{
                    "rateBasedRuleId": "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/rate-limit-per-ip/7c9d0e1f",
                    "rateBasedRuleName": "rate-limit-per-ip",
                    "limitKey": "IP",
                    "maxRateAllowed": 300,
                    "evaluationWindowSec": "60",
                    "limitValue": client,
                }]);
            }
            Kind::UnknownCountry => country = "-",
            Kind::UncommonMethod => method = *c.one(UNCOMMON_METHODS),
            Kind::Custom4xx => {
                record["terminatingRuleId"] = "block-bad-bots".into();
                record["action"] = "BLOCK".into();
                record["responseCodeSent"] = 403.into();
            }
            Kind::Custom5xx => {
                record["terminatingRuleId"] = "maintenance-window".into();
                record["action"] = "BLOCK".into();
                record["responseCodeSent"] = 503.into();
            }
        }
        if !labels.is_empty() {
            record["labels"] = labels.iter().map(|name| json!({"name": name})).collect();
        }
        record["httpRequest"] = json!({
            "clientIp": client,
            "country": country,
            "headers": [
                {"name": "Host", "value": "shop.example.com"},
                {"name": "User-Agent", "value": agent},
                {"name": "Accept", "value": "*/*"},
            ],
            "uri": path,
            "args": args,
            "httpVersion": "HTTP/1.1",
            "httpMethod": method,
            "requestId": key,
        });
        let line = record.to_string();
        SourceRecord {
            key,
            raw: line.clone().into_bytes(),
            indicators: indicators(&record),
            line,
        }
    }
}

fn managed_group(id: &str, terminating: Value, counted: &[&str]) -> Value {
    let counted: Vec<Value> = counted
        .iter()
        .map(|rule| json!({"ruleId": rule, "action": "COUNT", "ruleMatchDetails": null}))
        .collect();
    json!({
        "ruleGroupId": id,
        "terminatingRule": terminating,
        "nonTerminatingMatchingRules": counted,
        "excludedRules": null,
        "customerConfig": null,
    })
}

/// The preset's indicators of a WAF record, read from its documented fields.
fn indicators(record: &Value) -> Vec<&'static str> {
    let action = record["action"].as_str().unwrap_or_default();
    let method = record["httpRequest"]["httpMethod"]
        .as_str()
        .unwrap_or_default();
    let country = record["httpRequest"]["country"].as_str();
    let code = record["responseCodeSent"].as_u64();
    let managed = record["labels"].as_array().is_some_and(|labels| {
        labels.iter().any(|l| {
            l["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("awswaf:managed:"))
        })
    });
    let managed = managed || record["terminatingRuleType"] == "MANAGED_RULE_GROUP";
    let rate = record["terminatingRuleType"] == "RATE_BASED"
        || record["rateBasedRuleList"]
            .as_array()
            .is_some_and(|l| !l.is_empty());
    [
        ("waf_blocked", action == "BLOCK"),
        (
            "waf_challenged",
            action == "CAPTCHA" || action == "CHALLENGE",
        ),
        ("waf_rate_limited", rate),
        ("waf_managed_rule", managed),
        ("waf_unknown_country", matches!(country, None | Some("-"))),
        (
            "waf_uncommon_method",
            !["GET", "HEAD", "POST", "OPTIONS"].contains(&method),
        ),
        (
            "waf_client_error",
            code.is_some_and(|c| (400..500).contains(&c)),
        ),
        (
            "waf_server_error",
            code.is_some_and(|c| (500..600).contains(&c)),
        ),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use pipeline::wire::Source;

    use super::super::sources::tests::records;

    #[test]
    fn records_have_the_documented_fields_and_no_http_status() {
        for record in records(Source::Waf, 500, Some("waf_rate_limited")) {
            let value: serde_json::Value = serde_json::from_str(&record.line).expect("JSON");
            for field in [
                "timestamp",
                "formatVersion",
                "webaclId",
                "terminatingRuleId",
                "terminatingRuleType",
                "action",
                "httpSourceName",
                "httpSourceId",
                "ruleGroupList",
                "rateBasedRuleList",
                "nonTerminatingMatchingRules",
                "httpRequest",
            ] {
                assert!(value.get(field).is_some(), "{field} missing: {value}");
            }
            assert!(value.get("httpStatus").is_none());
            assert_eq!(value["httpRequest"]["requestId"], record.key.as_str());
            if record.indicators.contains(&"waf_rate_limited") {
                assert_eq!(value["terminatingRuleType"], "RATE_BASED");
                assert_eq!(value["action"], "BLOCK");
                assert_eq!(value["rateBasedRuleList"][0]["limitKey"], "IP");
            }
        }
    }
}
