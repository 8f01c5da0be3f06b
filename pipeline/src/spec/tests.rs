use super::*;

#[test]
fn the_default_spec_is_the_seeds_five_detectors_then_each_presets_with_monitors() {
    let spec = Spec::default_spec().expect("valid");
    let fields: Vec<&str> = spec
        .detectors
        .iter()
        .filter_map(|d| d.feature.field.as_deref())
        .collect();
    assert_eq!(
        fields.get(..5),
        Some(
            [
                "B_action",
                "UNK_source",
                "B_httpstatus",
                "UNK_country",
                "uncommon_method"
            ]
            .as_slice()
        )
    );
    assert!(
        spec.detectors
            .iter()
            .take(5)
            .all(|d| d.feature.filter.is_none())
    );
    // Each preset: one detector per indicator, over its source's records only, named
    // `<source>-<indicator>-detector`, with the indicator as ground truth and a monitor
    // `<indicator>-Monitor`.
    let presets: Vec<(&str, &str, &str)> = spec
        .detectors
        .iter()
        .skip(5)
        .filter(|d| d.feature.aggregation != Aggregation::NewValues)
        .map(|d| {
            let filter = d.feature.filter.as_ref().expect("a source filter");
            assert_eq!(filter.field, "logwarden_source", "{}", d.name);
            let source = filter.value.as_str().expect("a source name");
            let field = d.feature.field.as_deref().expect("a field");
            assert_eq!(d.ground_truth.as_deref(), Some(field), "{}", d.name);
            let monitor = format!("{field}-Monitor");
            let watched = spec
                .monitors
                .iter()
                .find(|m| m.name == monitor)
                .unwrap_or_else(|| panic!("no {monitor}"));
            assert_eq!(watched.detectors, std::slice::from_ref(&d.name));
            (source, field, d.name.as_str())
        })
        .collect();
    assert_eq!(presets.len(), 26);
    for (source, field, name) in &presets {
        let short = field
            .split_once('_')
            .map_or("", |(_, rest)| rest)
            .replace('_', "-");
        assert_eq!(*name, format!("{source}-{short}-detector"));
    }
    assert!(presets.contains(&(
        "syslog",
        "syslog_auth_failure",
        "syslog-auth-failure-detector"
    )));
    let per_source = |source: &str| presets.iter().filter(|p| p.0 == source).count();
    assert_eq!(
        ["waf", "cloudtrail", "syslog", "cloudwatch", "splunk"].map(per_source),
        [8, 10, 3, 3, 2]
    );
    // And CloudTrail's regions never seen before, named in the alert.
    let new_region = spec
        .detector("cloudtrail-new-region-detector")
        .expect("the new-region detector");
    assert_eq!(
        (
            new_region.feature_name(),
            new_region.ground_truth.as_deref()
        ),
        (
            "new_values_awsRegion".to_owned(),
            Some("ct_unexpected_region")
        )
    );
    assert!(
        spec.monitors
            .iter()
            .any(|m| m.name == "ct_new_region-Monitor" && m.detectors == [new_region.name.clone()])
    );
    assert_eq!(spec.monitors.len(), 32);
    assert!(spec.monitors.iter().any(|m| m.name == "UNK_source-Monitor"));
    assert!(spec.channels.iter().any(|c| c.webhook.is_some()));
    assert!(
        spec.detectors
            .iter()
            .all(|d| d.interval == Duration::from_secs(60))
    );
    // The seed's five judge their indicator's share of the requests, which a surge of normal
    // traffic leaves unchanged; so do the presets whose indicators grow with traffic.
    let judged: Vec<(String, f64, u64)> = spec
        .detectors
        .iter()
        .take(6)
        .map(|d| (d.feature_name(), d.min_rise(), d.min_count()))
        .collect();
    assert_eq!(
        judged,
        [
            ("ratio_B_action".to_owned(), 0.02, 20),
            ("ratio_UNK_source".to_owned(), 0.02, 20),
            ("ratio_B_httpstatus".to_owned(), 0.02, 20),
            ("ratio_UNK_country".to_owned(), 0.02, 20),
            ("ratio_uncommon_method".to_owned(), 0.02, 20),
            ("ratio_waf_blocked".to_owned(), 0.02, 20),
        ]
    );
    // Summed: the indicators where each event matters whatever the volume, and the per-entity
    // presets.
    let summed: Vec<&str> = spec
        .detectors
        .iter()
        .filter(|d| d.feature.aggregation == Aggregation::Sum)
        .filter_map(|d| d.feature.field.as_deref())
        .collect();
    assert_eq!(
        summed,
        [
            "ct_root_activity",
            "ct_console_login_failed",
            "ct_console_login_no_mfa",
            "ct_iam_policy_change",
            "ct_cloudtrail_change",
            "ct_kms_key_change",
            "ct_security_group_change",
            "ct_nacl_change",
            "ct_unexpected_region",
            "syslog_auth_failure",
            "syslog_sudo",
            "syslog_error",
            "hec_error",
            "hec_warning",
        ]
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("detectors: []", "detectors", "is empty"),
        (
            "detectors: [{name: a, feature: {field: x}, interval: 5x}]",
            "detectors[0].interval",
            "",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, colour: red}]",
            "detectors[0]",
            "colour",
        ),
        (
            "detectors: [{name: a, feature: {aggregation: sum}}]",
            "detectors[0].feature.field",
            "missing",
        ),
        (
            "detectors: [{name: a, feature: {field: x}}, {name: a, feature: {field: y}}]",
            "detectors[1].name",
            "used twice",
        ),
        (
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: m, detectors: [b], channels: []}]",
            "monitors[0].detectors",
            "`b`",
        ),
        (
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: m, detectors: [a], channels: [c]}]",
            "monitors[0].channels",
            "`c`",
        ),
        (
            "detectors: [{name: a, feature: {field: x}}]\nchannels: [{name: c}]",
            "channels[0]",
            "0 kinds",
        ),
        (
            "detectors: [{name: a, feature: {field: x}}]\nmonitors: [{name: m, detectors: [a], channels: [], min_grade: 0}]",
            "monitors[0].min_grade",
            "is 0",
        ),
        (
            "detectors: [{name: a, feature: {field: x, min_count: 5}}]",
            "detectors[0].feature.min_count",
            "is set for a `sum_x`",
        ),
        (
            "detectors: [{name: a, feature: {aggregation: ratio}}]",
            "detectors[0].feature.field",
            "missing",
        ),
        (
            "detectors: [{name: a, feature: {field: x, aggregation: ratio}, model: {min_rise: 5}}]",
            "detectors[0].model.min_rise",
            "is 5 for a ratio, which never rises by 1: give it in the ratio's units",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, extra_features: [{field: x}]}]",
            "detectors[0].extra_features",
            "repeats a feature",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, extra_features: [{aggregation: sum}]}]",
            "detectors[0].extra_features[0].field",
            "missing",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip}, extra_features: [{aggregation: count}]}]",
            "detectors[0].extra_features",
            "combined with a category",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, extra_features: [{field: a}, {field: b}, {field: c}, {field: d}, {field: e}]}]",
            "detectors[0].extra_features",
            "has 5 features",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ''}}]",
            "detectors[0].category.field",
            "is empty",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, max_entities: 0}}]",
            "detectors[0].category.max_entities",
            "is 0",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, idle: 1s}}]",
            "detectors[0].category.idle",
            "shorter than the interval",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, size: 3}}]",
            "detectors[0].category",
            "size",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, parts: 0}}]",
            "detectors[0].category.parts",
            "is 0",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, parts: 65}}]",
            "detectors[0].category.parts",
            "use 1 to 64",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, category: {field: ip, parts: 2}}, {name: b, feature: {field: y}}]\n\
             monitors: [{name: m, detectors: [b, a], channels: [c]}]\n\
             channels: [{name: c, webhook: {value: 'http://127.0.0.1:9/'}}]",
            "monitors[0].detectors",
            "names `a` with other detectors, but `a` splits its entities",
        ),
        (
            "detectors: [{name: a, feature: {field: x}, model: {min_rise: -1}}]",
            "detectors[0].model.min_rise",
            "is -1",
        ),
    ];
    for (text, key, words) in cases {
        let err = Spec::parse(text, "test.yaml").expect_err(text);
        assert!(err.key.starts_with(key), "{text}: {err}");
        assert!(err.to_string().contains(words), "{text}: {err}");
        assert!(err.to_string().contains("test.yaml"), "{err}");
    }
}

#[test]
fn secrets_are_never_printed() {
    let secret = Secret {
        env: None,
        file: None,
        value: Some("https://hooks.example/T0K3N".into()),
    };
    assert!(!format!("{secret:?}").contains("T0K3N"));
    assert_eq!(
        secret.resolve().as_deref(),
        Ok("https://hooks.example/T0K3N")
    );
    let missing = Secret {
        env: Some("LOGWARDEN_SECRET_TEST_UNSET_VARIABLE".into()),
        file: None,
        value: None,
    };
    assert!(
        missing
            .resolve()
            .expect_err("unset")
            .contains("LOGWARDEN_SECRET_TEST_UNSET_VARIABLE")
    );
}

#[test]
fn an_smtp_login_without_tls_is_refused_unless_allowed() {
    let spec = |extra: &str| {
        format!(
            "detectors: [{{name: a, feature: {{field: x}}}}]\n\
             channels: [{{name: mail, email: {{host: smtp.example, tls: none, \
             username: {{value: u}}, password: {{env: LOGWARDEN_SECRET_SMTP}}, \
             from: a@example.test, to: [b@example.test]{extra}}}}}]\n"
        )
    };
    let err = Spec::parse(&spec(""), "t.yaml").expect_err("plaintext login");
    assert_eq!(err.key, "channels[0].email.tls");
    assert!(err.to_string().contains("starttls"), "{err}");
    Spec::parse(&spec(", allow_insecure: true"), "t.yaml").expect("allowed knowingly");
}

#[test]
fn secret_references_stay_out_of_the_config_namespace() {
    let spec = |env: &str| {
        format!(
            "detectors: [{{name: a, feature: {{field: x}}}}]\n\
             channels: [{{name: team, webhook: {{env: {env}}}}}]\n"
        )
    };
    let err =
        Spec::parse(&spec("LOGWARDEN_ALERT_WEBHOOK_URL"), "t.yaml").expect_err("config namespace");
    assert_eq!(err.key, "channels[0].webhook");
    let text = err.to_string();
    assert!(
        text.contains("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL"),
        "{text}"
    );
    Spec::parse(&spec("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL"), "t.yaml").expect("reserved prefix");
    Spec::parse(&spec("TEAM_WEBHOOK_URL"), "t.yaml").expect("outside the namespace");
    let both = "detectors: [{name: a, feature: {field: x}}]\n\
                channels: [{name: team, slack: {env: A, file: /b}}]\n";
    let err = Spec::parse(both, "t.yaml").expect_err("two sources");
    assert_eq!(err.key, "channels[0].slack");
    // The default spec's reference is valid, and the error for its absence says how to set it.
    let default = Spec::default_spec().expect("valid");
    let secret = default.channels[0].webhook.as_ref().expect("a webhook");
    assert_eq!(
        secret.env.as_deref(),
        Some("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL")
    );
}

#[test]
fn results_retention_defaults_to_90_days_and_null_keeps_forever() {
    let day = 86_400;
    let parse = |retention: &str| {
        let text = format!(
            "detectors: [{{name: a, feature: {{field: x}}}}]\nprovisioning: {{retention: {retention}}}"
        );
        Spec::parse(&text, "test.yaml")
            .expect("valid")
            .provisioning
            .retention
    };
    let absent = parse("{}");
    assert_eq!(absent.results, Some(Duration::from_secs(90 * day)));
    assert_eq!(absent.events, Some(Duration::from_secs(30 * day)));
    let null = parse("{results: null}");
    assert_eq!(null.results, None);
    assert_eq!(null.events, Some(Duration::from_secs(30 * day)));
    assert_eq!(
        parse("{results: 12h, events: null}"),
        Retention {
            events: None,
            results: Some(Duration::from_secs(12 * 3_600)),
        }
    );
    let default = Spec::default_spec().expect("valid").provisioning.retention;
    assert_eq!(default, Retention::default());
}

#[test]
fn retaining_detectors_keeps_only_the_monitors_of_kept_detectors() {
    let mut spec = Spec::default_spec().expect("valid");
    spec.retain_detectors(|d| d.feature.filter.is_none());
    let monitors: Vec<&str> = spec.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        monitors,
        [
            "B_action-Monitor",
            "UNK_source-Monitor",
            "B_httpstatus-Monitor",
            "UNK_country-Monitor",
            "uncommon_method-Monitor"
        ]
    );
    assert_eq!(spec.detectors.len(), 5);
    spec.validate("retained").expect("still whole");

    let mut spec = Spec::default_spec().expect("valid");
    spec.retain_detectors(|d| d.name.starts_with("syslog-"));
    let names: Vec<&str> = spec.detectors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "syslog-auth-failure-detector",
            "syslog-sudo-detector",
            "syslog-error-detector"
        ]
    );
    assert_eq!(spec.monitors.len(), 3);
}
