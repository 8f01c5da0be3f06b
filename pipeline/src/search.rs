//! OpenSearch, as every logwarden service sees it: a client built from [`OpenSearchConfig`], and
//! the events index the sink writes, the detector reads and the provisioner converges.
//!
//! The events index is a set of daily indices (`<prefix>-YYYY.MM.DD`, by the record's
//! `@timestamp` day) under one alias (`<prefix>`), with one index template that maps them; a
//! source's records have their own daily indices and template (`sources`). The
//! template is defined here once, so the sink (at start-up) and the provisioner apply the same
//! one; applying it is idempotent.

use std::time::Duration;

use opensearch::OpenSearch;
use opensearch::auth::{ClientCertificate, Credentials};
use opensearch::cert::{Certificate, CertificateValidation};
use opensearch::http::StatusCode;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::indices::IndicesPutIndexTemplateParts;
use serde_json::{Value, json};

use crate::config::{ConfigError, OpenSearchConfig, redact_url};

mod sources;

/// Marks objects logwarden created (the provisioner prunes only these).
pub const OWNER_META: &str = "managed_by";
/// The value of [`OWNER_META`].
pub const OWNER: &str = "logwarden";

/// The indicator fields of the default rules (the seed's ten), mapped as numbers explicitly so a
/// non-numeric value is a mapping conflict rather than a silently re-typed field. Indicators of
/// other rules files are mapped by OpenSearch's dynamic mapping (whole numbers → `long`).
pub const SEED_INDICATORS: [&str; 10] = [
    "K_action",
    "B_action",
    "K_source",
    "UNK_source",
    "G_httpstatus",
    "B_httpstatus",
    "K_country",
    "UNK_country",
    "common_method",
    "uncommon_method",
];

/// Why a call to OpenSearch failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The URL in `opensearch.url` is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request did not get an answer (connection refused, timeout, TLS).
    #[error("{}", unreachable_text(.0))]
    Unreachable(#[source] opensearch::Error),
    /// OpenSearch answered with an error status; `reason` is its own explanation.
    #[error("{}", refused_text(what, *status, reason))]
    Refused {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: StatusCode,
        /// OpenSearch's error type and reason, or the body.
        reason: String,
    },
}

impl SearchError {
    /// Whether waiting and retrying may help: unreachable, overloaded (429) or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Config(_) => false,
            Self::Unreachable(err) => !is_tls_failure(err),
            Self::Refused { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
        }
    }
}

/// A client for the cluster in `config`: basic auth when a username is set, the CA bundle and
/// client certificate when given, and a timeout on every request. Refuses a password over plain
/// `http` unless `allow_insecure`; logs the checks the settings weaken. Never shows a password or
/// credentials embedded in the URL.
pub fn client(config: &OpenSearchConfig, timeout: Duration) -> Result<OpenSearch, SearchError> {
    let shown = redact_url(&config.url);
    let url = opensearch::http::Url::parse(&config.url).map_err(|err| {
        ConfigError::invalid(
            "opensearch.url",
            format!("`{shown}` is not a URL ({err})"),
            "set it to the cluster's base URL, e.g. http://127.0.0.1:9200",
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            "opensearch.url",
            format!("`{shown}` carries credentials"),
            "set opensearch.username and LOGWARDEN_OPENSEARCH__PASSWORD instead",
        )
        .into());
    }
    let https = url.scheme() == "https";
    if config.username.is_some() && !https {
        if !config.allow_insecure {
            return Err(ConfigError::invalid(
                "opensearch.url",
                format!("`{shown}` is plain http: the password would travel unencrypted"),
                "use the cluster's https URL, or set opensearch.allow_insecure: true to accept it \
                 knowingly",
            )
            .into());
        }
        tracing::warn!(url = %shown, "opensearch.allow_insecure: the password goes over plain http.");
    }
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(timeout);
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|err| {
            ConfigError::invalid(
                key,
                format!("{} cannot be read ({err})", path.display()),
                "mount the file there (a Secret), or fix the path",
            )
        })
    };
    if !config.verify_certificates {
        tracing::warn!(url = %shown, "opensearch.verify_certificates is off: any certificate is accepted.");
        builder = builder.cert_validation(CertificateValidation::None);
    } else if let Some(path) = &config.ca_file {
        let certificate =
            Certificate::from_pem(&read("opensearch.ca_file", path)?).map_err(|err| {
                ConfigError::invalid(
                    "opensearch.ca_file",
                    format!("{} is not a PEM certificate bundle ({err})", path.display()),
                    "give the PEM file of the CA that signed the cluster's certificate",
                )
            })?;
        builder = builder.cert_validation(CertificateValidation::Full(certificate));
    }
    if let Some(sigv4) = &config.aws_sigv4 {
        if config.username.is_some() || config.certificate_file.is_some() {
            return Err(ConfigError::invalid(
                "opensearch.aws_sigv4",
                "is set together with a username or a client certificate",
                "use one way to authenticate: SigV4 for Amazon OpenSearch Service",
            )
            .into());
        }
        let credentials = aws_credentials(std::env::vars())?;
        builder = builder
            .auth(Credentials::AwsSigV4(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
                aws_types::region::Region::new(sigv4.region.clone()),
            ))
            .service_name(&sigv4.service);
        return build(builder).map(OpenSearch::new);
    }
    let basic = config.username.as_ref().map(|username| {
        let password = config.password.as_ref().map_or("", |p| p.expose());
        (username.clone(), password.to_owned())
    });
    match (&config.certificate_file, &config.key_file) {
        (Some(certificate), Some(key)) => {
            let mut pem = read("opensearch.key_file", key)?;
            pem.extend(read("opensearch.certificate_file", certificate)?);
            builder = builder.auth(Credentials::Certificate(ClientCertificate::Pem(pem)));
            // One credential slot: basic auth, if also set, goes in a header.
            if let Some((username, password)) = basic {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut value =
                    opensearch::http::headers::HeaderValue::from_str(&format!("Basic {token}"))
                        .map_err(|_| {
                            ConfigError::invalid(
                                "opensearch.username",
                                "cannot be sent in a header",
                                "use printable characters in the user name and password",
                            )
                        })?;
                value.set_sensitive(true);
                builder = builder.header(opensearch::http::headers::AUTHORIZATION, value);
            }
        }
        (None, None) => {
            if let Some((username, password)) = basic {
                builder = builder.auth(Credentials::Basic(username, password));
            }
        }
        _ => {
            return Err(ConfigError::invalid(
                "opensearch.certificate_file",
                "is set without opensearch.key_file, or the other way round",
                "set both (a client certificate and its key), or neither",
            )
            .into());
        }
    }
    build(builder).map(OpenSearch::new)
}

fn build(builder: TransportBuilder) -> Result<opensearch::http::transport::Transport, SearchError> {
    builder.build().map_err(|err| {
        ConfigError::invalid(
            "opensearch",
            format!("the HTTP client cannot be built: {}", chain(&err)),
            "check opensearch.url, opensearch.ca_file and the client certificate",
        )
        .into()
    })
}

/// Static AWS credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// optionally `AWS_SESSION_TOKEN`), for SigV4.
fn aws_credentials(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<aws_credential_types::Credentials, ConfigError> {
    let env: std::collections::BTreeMap<String, String> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect();
    let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(aws_credential_types::Credentials::new(
            id,
            secret,
            get("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => Err(ConfigError::invalid(
            "opensearch.aws_sigv4",
            "has no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
            "set them (and AWS_SESSION_TOKEN for temporary credentials) from a Secret",
        )),
    }
}

/// Whether a transport error is a failed TLS verification (a wrong CA, a certificate for another
/// host): retrying cannot help, the settings must change.
pub fn is_tls_failure(err: &opensearch::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(error) = source {
        let text = format!("{error:?}").to_ascii_lowercase();
        if [
            "certificate",
            "unknownissuer",
            "invalidcertificate",
            "handshake",
        ]
        .iter()
        .any(|word| text.contains(word))
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// An error with every cause it carries, for a reader.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// A transport error for a reader: a failed TLS verification with the keys to check, anything
/// else as "unreachable", each with every cause it carries.
pub fn unreachable_text(err: &opensearch::Error) -> String {
    if is_tls_failure(err) {
        format!(
            "TLS with OpenSearch failed: {}; check opensearch.ca_file (the CA that signed the \
             cluster's certificate) and that opensearch.url names the host on that certificate",
            chain(err)
        )
    } else {
        format!("OpenSearch is unreachable: {}", chain(err))
    }
}

/// What to do about a refusal with `status`: the keys to check for 401 and 403, else nothing.
pub fn refusal_hint(status: u16) -> &'static str {
    match status {
        401 => "; check opensearch.username and the password (LOGWARDEN_OPENSEARCH__PASSWORD)",
        403 => "; the user lacks a permission for this: grant it in the cluster's security roles",
        _ => "",
    }
}

fn refused_text(what: &str, status: StatusCode, reason: &str) -> String {
    let hint = refusal_hint(status.as_u16());
    format!("OpenSearch answered {status} to {what}: {reason}{hint}")
}

/// OpenSearch's explanation of an error response: `type: reason` of the root cause (and what
/// caused it, when it says), else the body as it came.
pub fn error_reason(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(value) if value.get("error").is_some() => describe_error(&value["error"]),
        _ => body.chars().take(500).collect(),
    }
}

/// `type: reason (caused by type: reason)` of an OpenSearch error object (a bulk item's `error`
/// or a response's `error`).
pub fn describe_error(error: &Value) -> String {
    let Some(kind) = error.get("type").and_then(Value::as_str) else {
        return error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
    };
    let reason = error.get("reason").and_then(Value::as_str).unwrap_or("");
    let mut text = format!("{kind}: {reason}");
    if let Some(cause) = error.get("caused_by").filter(|c| c.is_object()) {
        text.push_str(&format!(" (caused by {})", describe_error(cause)));
    }
    text
}

/// The events index: daily indices under one alias, and their template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsIndex {
    prefix: String,
}

impl Default for EventsIndex {
    fn default() -> Self {
        Self {
            prefix: "logwarden-events".to_owned(),
        }
    }
}

impl EventsIndex {
    /// The events index named `prefix`: indices `<prefix>-YYYY.MM.DD`, alias `<prefix>`.
    /// `key` names the config key the prefix came from, for the error.
    pub fn new(prefix: &str, key: &str) -> Result<Self, ConfigError> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 200
            && !prefix.starts_with(['-', '_', '+', '.'])
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid {
            return Err(ConfigError::invalid(
                key,
                format!("`{prefix}` is not a usable index name prefix"),
                "use lowercase letters, digits, `-`, `_` and `.`, not starting with `-`, `_` or `.`, e.g. logwarden-events",
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The alias over every daily index: what the detector and users query.
    pub fn alias(&self) -> &str {
        &self.prefix
    }

    /// The pattern every daily index matches.
    pub fn pattern(&self) -> String {
        format!("{}-*", self.prefix)
    }

    /// The index template's name.
    pub fn template_name(&self) -> &str {
        &self.prefix
    }

    /// The daily index for an RFC 3339 `@timestamp` (`YYYY-MM-DD...`), or `None` when it does
    /// not start with a plausible date.
    pub fn daily_index(&self, timestamp: &str) -> Option<String> {
        let date = timestamp.as_bytes().get(..10)?;
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = date.get(range)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let separators = date.get(4) == Some(&b'-') && date.get(7) == Some(&b'-');
        if !separators || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        Some(format!("{}-{year:04}.{month:02}.{day:02}", self.prefix))
    }

    /// The index template: `@timestamp` as `date`, the default rules' indicators as numbers,
    /// strings as `keyword`, one shard, a replica when the cluster has a node for it, and every
    /// daily index joining the alias.
    pub fn template(&self) -> Value {
        let mut properties = serde_json::Map::new();
        properties.insert("@timestamp".into(), json!({ "type": "date" }));
        properties.insert("event_id".into(), json!({ "type": "keyword" }));
        // Epoch milliseconds (or the seed's fractional seconds): kept exactly as a double.
        properties.insert("timestamp".into(), json!({ "type": "double" }));
        properties.insert("formatVersion".into(), json!({ "type": "integer" }));
        for indicator in SEED_INDICATORS {
            properties.insert(indicator.into(), json!({ "type": "integer" }));
        }
        json!({
            "index_patterns": [self.pattern()],
            "priority": 100,
            "_meta": { OWNER_META: OWNER },
            "template": {
                "settings": {
                    "index": {
                        "number_of_shards": 1,
                        "auto_expand_replicas": "0-1",
                        "refresh_interval": "1s",
                    }
                },
                "aliases": { self.alias(): {} },
                "mappings": {
                    "dynamic_templates": [{
                        "strings_as_keywords": {
                            "match_mapping_type": "string",
                            "mapping": { "type": "keyword", "ignore_above": 1024 }
                        }
                    }],
                    "properties": properties,
                }
            }
        })
    }

    /// Creates the common template and every source's (see [`Self::source_template`]),
    /// each unless one of that name exists (see [`ensure_template`]).
    pub async fn ensure_template(&self, client: &OpenSearch) -> Result<(), SearchError> {
        ensure_template(client, self.template_name(), self.template()).await?;
        for source in crate::wire::Source::ALL {
            let name = self.source_template_name(source);
            ensure_template(client, &name, self.source_template(source)).await?;
        }
        Ok(())
    }
}

/// Creates the index template `name` unless one of that name exists. A service ensures its
/// template exists so it works without the provisioner; once it exists, the provisioner owns it
/// and converges it (with its owner mark), and no service overwrites that.
pub async fn ensure_template(
    client: &OpenSearch,
    name: &str,
    template: Value,
) -> Result<(), SearchError> {
    let response = client
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name(name))
        .create(true)
        .body(template)
        .send()
        .await
        .map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let reason = error_reason(&body);
    if status == StatusCode::BAD_REQUEST && reason.contains("already exists") {
        return Ok(());
    }
    Err(SearchError::Refused {
        what: format!("PUT _index_template/{name}?create=true"),
        status,
        reason,
    })
}

/// The anomaly-results index: one document per scored interval, with field names close to
/// OpenSearch's anomaly-detection plugin's results (`detector_id`, `data_start_time`,
/// `anomaly_grade`, `confidence`, `feature_data`, ...) so queries written for the plugin carry
/// over. The detector writes it; the provisioner prepares it.
pub fn results_template(index: &str) -> Value {
    json!({
        "index_patterns": [index],
        "priority": 100,
        "_meta": { OWNER_META: OWNER },
        "template": {
            "settings": { "index": { "number_of_shards": 1, "auto_expand_replicas": "0-1" } },
            "mappings": {
                "dynamic": false,
                "properties": {
                    "detector_id": { "type": "keyword" },
                    "detector_name": { "type": "keyword" },
                    "feature_data": { "type": "nested", "properties": {
                        "feature_id": { "type": "keyword" },
                        "feature_name": { "type": "keyword" },
                        "data": { "type": "double" }
                    } },
                    "data_start_time": { "type": "date", "format": "strict_date_time||epoch_millis" },
                    "data_end_time": { "type": "date", "format": "strict_date_time||epoch_millis" },
                    "execution_start_time": { "type": "date", "format": "strict_date_time||epoch_millis" },
                    "execution_end_time": { "type": "date", "format": "strict_date_time||epoch_millis" },
                    "anomaly_score": { "type": "double" },
                    "anomaly_grade": { "type": "double" },
                    "confidence": { "type": "double" },
                    "expected_value": { "type": "double" },
                    "value": { "type": "double" },
                    "events": { "type": "long" },
                    "rule": { "type": "keyword" },
                    "task_id": { "type": "keyword" },
                    "error": { "type": "text" },
                    "entity": { "type": "nested", "properties": {
                        "name": { "type": "keyword" },
                        "value": { "type": "keyword" }
                    } },
                    "relevant_attribution": { "type": "nested", "properties": {
                        "feature_id": { "type": "keyword" },
                        "data": { "type": "double" }
                    } },
                    "entities": { "properties": {
                        "judged": { "type": "long" },
                        "flagged": { "type": "long" },
                        "part": { "type": "keyword" },
                        "top": { "properties": {
                            "value": { "type": "keyword" },
                            "grade": { "type": "double" },
                            "data": { "type": "double" },
                            "expected": { "type": "double" }
                        } }
                    } }
                }
            }
        }
    })
}

/// The alerts index: one [`crate::wire::AlertDoc`] per notification delivered on a channel. The
/// detector writes it (and creates this template unless one exists); `evaluate` reads it.
pub fn alerts_template(index: &str) -> Value {
    let date = json!({ "type": "date", "format": "strict_date_time||epoch_millis" });
    json!({
        "index_patterns": [index],
        "priority": 100,
        "_meta": { OWNER_META: OWNER },
        "template": {
            "settings": { "index": { "number_of_shards": 1, "auto_expand_replicas": "0-1" } },
            "mappings": {
                "dynamic": false,
                "properties": {
                    "key": { "type": "keyword" },
                    "channel": { "type": "keyword" },
                    "monitor": { "type": "keyword" },
                    "detector": { "type": "keyword" },
                    "kind": { "type": "keyword" },
                    "episode_start": date,
                    "interval_start": date,
                    "interval_end": date,
                    "delivered_at": date
                }
            }
        }
    })
}

/// `Ok` for a success status, else OpenSearch's reason.
pub async fn check(
    response: opensearch::http::response::Response,
    what: impl FnOnce() -> String,
) -> Result<(), SearchError> {
    let status = response.status_code();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(SearchError::Refused {
        what: what(),
        status,
        reason: error_reason(&body),
    })
}

/// The JSON body of a successful answer; else OpenSearch's reason, `what` naming the request.
pub async fn json_answer(
    response: Result<opensearch::http::response::Response, opensearch::Error>,
    what: &str,
) -> Result<Value, SearchError> {
    let response = response.map_err(SearchError::Unreachable)?;
    let status = response.status_code();
    let body: Value = response.json().await.map_err(SearchError::Unreachable)?;
    if !status.is_success() {
        return Err(SearchError::Refused {
            what: what.to_owned(),
            status,
            reason: describe_error(&body["error"]),
        });
    }
    Ok(body)
}

/// The first refused item of a bulk answer whose items are `op` (`index`, `create`), if any.
pub fn bulk_refusal(answer: &Value, op: &str) -> Option<String> {
    answer["items"]
        .as_array()?
        .iter()
        .find_map(|item| item[op].get("error").map(describe_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_refusal_names_the_first_refused_item() {
        let answer = json!({"errors": true, "items": [
            {"index": {"status": 201}},
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [value]"}}},
            {"index": {"status": 400, "error": {"type": "other", "reason": "second"}}}
        ]});
        let refusal = bulk_refusal(&answer, "index").expect("a refusal");
        assert!(
            refusal.contains("failed to parse field [value]"),
            "{refusal}"
        );
        assert_eq!(bulk_refusal(&answer, "create"), None);
        assert_eq!(
            bulk_refusal(&json!({"errors": false, "items": []}), "index"),
            None
        );
    }

    #[test]
    fn daily_indices_follow_the_timestamp_day() {
        let index = EventsIndex::default();
        let cases = [
            (
                "2026-11-23T02:51:26.123Z",
                Some("logwarden-events-2026.11.23"),
            ),
            ("1970-01-01T00:00:00Z", Some("logwarden-events-1970.01.01")),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-00T00:00:00Z", None),
            ("2026/11/23T00:00:00Z", None),
            ("20261123", None),
            ("", None),
            ("２０２６-11-23", None),
        ];
        for (timestamp, expected) in cases {
            assert_eq!(
                index.daily_index(timestamp).as_deref(),
                expected,
                "{timestamp}"
            );
        }
    }

    #[test]
    fn prefixes_must_be_index_names() {
        for good in ["logwarden-events", "t-1a2b3c4d-events", "a.b_c"] {
            assert!(EventsIndex::new(good, "sink.index").is_ok(), "{good}");
        }
        for bad in ["", "Logs", "-x", "_x", "a b", "a*", "a/b", "ü"] {
            let err = EventsIndex::new(bad, "sink.index").expect_err(bad);
            assert!(err.to_string().contains("sink.index"), "{err}");
        }
    }

    #[test]
    fn the_template_maps_the_pattern_into_the_alias() {
        let index = EventsIndex::new("t-events", "k").expect("valid");
        let template = index.template();
        assert_eq!(template["index_patterns"], json!(["t-events-*"]));
        assert_eq!(template["template"]["aliases"], json!({ "t-events": {} }));
        let properties = &template["template"]["mappings"]["properties"];
        assert_eq!(properties["@timestamp"]["type"], "date");
        assert_eq!(properties["UNK_country"]["type"], "integer");
        assert_eq!(template["_meta"]["managed_by"], "logwarden");
    }

    #[test]
    fn error_reasons_name_type_reason_and_cause() {
        let body = r#"{"error":{"root_cause":[],"type":"mapper_parsing_exception","reason":"failed to parse field [B_action]","caused_by":{"type":"number_format_exception","reason":"For input string: \"x\""}},"status":400}"#;
        assert_eq!(
            error_reason(body),
            "mapper_parsing_exception: failed to parse field [B_action] (caused by number_format_exception: For input string: \"x\")"
        );
        assert_eq!(error_reason("Bad Gateway"), "Bad Gateway");
    }
}
