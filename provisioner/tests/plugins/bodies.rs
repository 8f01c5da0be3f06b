//! The bodies the provisioner sends, against the requests and stored objects the real plugins
//! accepted and returned: a second run against a real cluster finds nothing to change.

use pipeline::spec::Spec;
use provisioner::compare::differences;
use provisioner::plugins::{self, ChannelKind};
use serde_json::json;

use crate::common::{OWNER, recorded_spec, recording};

#[test]
fn detector_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec("");
    let ours = plugins::detector_body(&spec.detectors[0], 0, "waf-logs", OWNER).expect("body");
    // Against the detector as the real plugin returns it: only what we mean to differ.
    let stored = &recording("04-detector-get")["response"]["body"]["anomaly_detector"];
    let mut found = differences(&ours, stored);
    found.sort();
    assert_eq!(
        found,
        [
            "description",
            "feature_attributes[0].aggregation_query.sum_UNK_country",
            "feature_attributes[0].feature_name",
        ],
        "the rest (indices, time field, intervals in Minutes, filter, shingle size, history) must be the plugin's own form"
    );
    // Every field of the recorded create request is one we send, with the same value.
    let request = &recording("10-detector-create")["request"]["body"];
    let mut renamed = ours.clone();
    renamed["name"] = json!("recording-create");
    let mut found = differences(request, &renamed);
    found.sort();
    assert_eq!(
        found,
        [
            "description",
            "feature_attributes[0].aggregation_query.unk_country_sum",
            "feature_attributes[0].feature_name",
        ]
    );
}

#[test]
fn monitor_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec(
        "monitors: [{name: waf-unk-source-monitor, detectors: [waf-unk-country], channels: [waf-webhook], min_grade: 0.1}]
channels: [{name: waf-webhook, webhook: {value: 'http://127.0.0.1:8089/alert'}}]",
    );
    let ours = plugins::monitor_body(
        &spec.monitors[0],
        &["hZGZBaIB0uRsc8ly11du".to_owned()],
        1,
        &[("waf-webhook".to_owned(), ChannelKind::Webhook)],
        OWNER,
    );
    let stored = &recording("23-monitor-get")["response"]["body"]["monitor"];
    let found = differences(&ours, stored);
    // The input (results index, the data_end_time window, the detector, historical results
    // excluded, sort and aggregation), the schedule and the type are exactly the plugin's
    // stored form; only the trigger's own wording and the actions' templates differ.
    let trigger = "triggers[0].query_level_trigger";
    for path in &found {
        assert!(
            path == &format!("{trigger}.name")
                || path == &format!("{trigger}.condition.script.source")
                || path.starts_with(&format!("{trigger}.actions[0].")),
            "unexpected difference at {path}: {found:#?}"
        );
    }
    assert!(found.contains(&format!("{trigger}.condition.script.source")));
}

#[test]
fn channel_bodies_match_what_the_plugin_stores() {
    let spec = recorded_spec(
        "channels: [{name: waf-webhook, webhook: {value: 'http://127.0.0.1:8089/alert'}}]",
    );
    let (kind, configs) = plugins::channel_configs(&spec.channels[0], 0, OWNER).expect("configs");
    assert_eq!(kind, ChannelKind::Webhook);
    let stored = &recording("20-channel-get")["response"]["body"]["config_list"][0]["config"];
    assert_eq!(
        differences(&configs[0].1["config"], stored),
        ["description"]
    );
    // The create request as the recorded (duplicate) one: the same fields and values.
    let request = &recording("21-channel-create-duplicate")["request"]["body"];
    let mut found = differences(request, &configs[0].1);
    found.sort();
    assert_eq!(found, ["config.description"]);
}

#[test]
fn an_unset_channel_secret_names_the_channel_and_the_variable() {
    let spec = Spec::parse(
        "detectors: [{name: a, feature: {field: x}}]\nchannels: [{name: c, webhook: {env: LOGWARDEN_SECRET_TEST_SURELY_UNSET_URL}}]",
        "t",
    )
    .expect("valid");
    let err = plugins::channel_configs(&spec.channels[0], 0, "o").expect_err("unset");
    assert_eq!(err.key, "channels[0].webhook");
    assert!(
        err.to_string()
            .contains("LOGWARDEN_SECRET_TEST_SURELY_UNSET_URL"),
        "{err}"
    );
}
