use super::*;

#[test]
fn the_default_spec_is_the_seeds_five_detectors_with_monitors() {
    let spec = Spec::default_spec().expect("valid");
    let fields: Vec<&str> = spec
        .detectors
        .iter()
        .filter_map(|d| d.feature.field.as_deref())
        .collect();
    assert_eq!(
        fields,
        [
            "B_action",
            "UNK_source",
            "B_httpstatus",
            "UNK_country",
            "uncommon_method"
        ]
    );
    assert_eq!(spec.monitors.len(), 5);
    assert!(spec.monitors.iter().any(|m| m.name == "UNK_source-Monitor"));
    assert!(spec.channels.iter().any(|c| c.webhook.is_some()));
    assert!(
        spec.detectors
            .iter()
            .all(|d| d.interval == Duration::from_secs(60))
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
