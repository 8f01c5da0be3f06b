//! The indicators each source's generator can inject: the preset indicator fields the
//! transformer's default rules add (the contract with the rules, `/work/briefs`' sources
//! contract), which are also the names of the ground-truth labels a source scenario publishes.
//!
//! A leaf: the scenario checks names against it, the generators inject them; it knows neither.

use pipeline::wire::Source;

/// AWS WAF (real format).
pub const WAF: &[&str] = &[
    "waf_blocked",
    "waf_challenged",
    "waf_rate_limited",
    "waf_managed_rule",
    "waf_unknown_country",
    "waf_uncommon_method",
    "waf_client_error",
    "waf_server_error",
];

/// CloudTrail.
pub const CLOUDTRAIL: &[&str] = &[
    "ct_access_denied",
    "ct_root_activity",
    "ct_console_login_failed",
    "ct_console_login_no_mfa",
    "ct_iam_policy_change",
    "ct_cloudtrail_change",
    "ct_kms_key_change",
    "ct_security_group_change",
    "ct_nacl_change",
    "ct_unexpected_region",
];

/// Syslog.
pub const SYSLOG: &[&str] = &["syslog_auth_failure", "syslog_sudo", "syslog_error"];

/// CloudWatch Logs.
pub const CLOUDWATCH: &[&str] = &["cw_error", "cw_lambda_timeout", "cw_lambda_oom"];

/// Splunk HEC.
pub const SPLUNK: &[&str] = &["hec_error", "hec_warning"];

/// The sources the producer generates (every one but `ndjson`, which has no preset).
pub const GENERATED: [Source; 5] = [
    Source::Waf,
    Source::Cloudtrail,
    Source::Syslog,
    Source::Cloudwatch,
    Source::Splunk,
];

/// The indicators `source`'s generator can inject (none for `ndjson`).
pub fn of(source: Source) -> &'static [&'static str] {
    match source {
        Source::Waf => WAF,
        Source::Cloudtrail => CLOUDTRAIL,
        Source::Syslog => SYSLOG,
        Source::Cloudwatch => CLOUDWATCH,
        Source::Splunk => SPLUNK,
        Source::Ndjson => &[],
    }
}

/// The `&'static` name of `source`'s indicator `name` (exact), if it has one.
pub fn find(source: Source, name: &str) -> Option<&'static str> {
    of(source).iter().copied().find(|known| *known == name)
}
