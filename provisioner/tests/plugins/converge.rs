//! The converge steps against the replaying server: what is created, updated in place, stopped
//! and restarted, pruned or only listed, and what the status reads.

use pipeline::spec::{Spec, TargetChoice};
use provisioner::plan::Action;
use provisioner::plugins::{self, Plugins};
use provisioner::target::{self, Target};
use serde_json::json;

use crate::common::{
    CREATED, DETECTORS, Exchange, OWNER, RUNNING, Replay, converge, declared_detector_search,
    recorded_spec, running_detector_exchanges,
};

#[tokio::test]
async fn auto_chooses_the_plugins_from_the_recorded_cat_plugins() {
    let replay = Replay::start(vec![Exchange::recorded("02-cat-plugins")]).await;
    let installed = provisioner::installed_plugins(&replay.api)
        .await
        .expect("plugins");
    replay.finish();
    assert_eq!(installed.len(), 5);
    let choice = target::choose(TargetChoice::Auto, &installed).expect("choice");
    assert_eq!(choice.target, Target::Plugins);
}

#[tokio::test]
async fn a_fresh_detector_and_monitor_are_created_and_started() {
    let spec = Spec::parse(
        &format!(
            "events: waf-logs
detectors: [{{name: recording-create, feature: {{field: UNK_country}}, interval: 1m, window_delay: 1m}}]
monitors: [{{name: recording-monitor, detectors: [recording-create], channels: [waf-webhook]}}]
channels: [{{name: waf-webhook, webhook: {{value: 'http://127.0.0.1:8089/alert'}}}}]
provisioning: {{owner: {OWNER}}}
"
        ),
        "contract",
    )
    .expect("valid");
    let (plan, result, received) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            // The recorded channel list: waf-webhook exists with another description.
            Exchange::recorded("19-channel-list"),
            Exchange::documented(
                "PUT",
                "/_plugins/_notifications/configs/waf-webhook",
                200,
                json!({"config_id": "waf-webhook"}),
            ),
            // Only waf-unk-country exists (not ours: no mark), so recording-create is created.
            Exchange::recorded("03-detector-search-by-name"),
            Exchange::recorded("10-detector-create"),
            Exchange::recorded("12-detector-start"),
            // The recorded monitor search: waf-unk-source-monitor, not ours.
            Exchange::recorded("24-monitor-search-by-name"),
            // The create answer has the GET's shape (`_id`, versions, `monitor`).
            Exchange::recorded("23-monitor-get").answering(
                "POST",
                "/_plugins/_alerting/monitors",
                201,
            ),
        ],
    )
    .await;
    result.expect("converges");
    let action = |kind, name| plan.step(kind, name).map(|s| s.action);
    assert_eq!(action("channel", "waf-webhook"), Some(Action::Update));
    assert_eq!(action("detector", "recording-create"), Some(Action::Create));
    assert_eq!(action("monitor", "recording-monitor"), Some(Action::Create));
    assert_eq!(plan.count(Action::Delete), 0);
    assert_eq!(plan.steps.len(), 3, "{}", plan.table());
    // The channel update sends the config only; the monitor watches the created detector's id.
    assert_eq!(
        received[1].2["config"]["webhook"]["url"],
        "http://127.0.0.1:8089/alert"
    );
    let monitor = &received[6].2;
    assert_eq!(
        monitor["inputs"][0]["search"]["query"]["query"]["bool"]["filter"][1]["term"]["detector_id"]
            ["value"],
        CREATED
    );
    assert_eq!(
        monitor["triggers"][0]["query_level_trigger"]["actions"][0]["destination_id"],
        "waf-webhook"
    );
    // The search asks for every detector, not one name.
    assert_eq!(
        received[2].2,
        json!({"size": 1000, "query": {"match_all": {}}})
    );
}

#[tokio::test]
async fn a_running_detector_that_differs_is_stopped_updated_and_started() {
    let spec = recorded_spec("");
    let mut exchanges = running_detector_exchanges(
        // The recorded update of a stopped detector, answered for this one.
        Exchange::recorded("11-detector-update-stopped")
            .at(&format!(
                "{DETECTORS}/{RUNNING}?if_seq_no=0&if_primary_term=1"
            ))
            .edit(|b| b["_id"] = json!(RUNNING)),
    );
    exchanges.push(
        Exchange::recorded("12-detector-start")
            .at(&format!("{DETECTORS}/{RUNNING}/_start"))
            .edit(|b| b["_id"] = json!(RUNNING)),
    );
    exchanges.push(Exchange::recorded("24-monitor-search-by-name"));
    let (plan, result, received) = converge(&spec, OWNER, true, false, exchanges).await;
    result.expect("converges");
    let step = plan.step("detector", "waf-unk-country").expect("step");
    assert_eq!(step.action, Action::Update);
    assert!(
        step.detail.contains("(stop, update, start)"),
        "{}",
        step.detail
    );
    assert!(step.detail.starts_with("description"), "{}", step.detail);
    assert_eq!(received[4].2["history"], 40);
    assert_eq!(received[4].2["indices"], json!(["waf-logs*"]));
}

#[tokio::test]
async fn a_monitor_on_another_detector_is_updated_in_place() {
    let spec = recorded_spec(
        "monitors: [{name: waf-unk-source-monitor, detectors: [waf-unk-country], channels: []}]",
    );
    let (plan, result, received) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            Exchange::recorded("19-channel-list"),
            declared_detector_search(),
            Exchange::recorded("04-detector-get"),
            // The recorded monitor watches detector hZGZ...; the spec's watches waf-unk-country.
            Exchange::recorded("24-monitor-search-by-name"),
            // The update answer has the GET's shape (documented; no recording holds one).
            Exchange::recorded("23-monitor-get").answering(
                "PUT",
                "/_plugins/_alerting/monitors/utypBaIBjm7DZZbaeRK4?if_seq_no=5&if_primary_term=3",
                200,
            ),
        ],
    )
    .await;
    result.expect("converges");
    let step = plan
        .step("monitor", "waf-unk-source-monitor")
        .expect("step");
    assert_eq!(step.action, Action::Update);
    assert!(step.detail.contains("inputs[0].search"), "{}", step.detail);
    let sent = &received[4].2;
    assert_eq!(
        sent["inputs"][0]["search"]["query"]["query"]["bool"]["filter"][1]["term"]["detector_id"]["value"],
        RUNNING
    );
    assert_eq!(sent["name"], "waf-unk-source-monitor");
}

/// The recorded objects, edited to carry this owner's mark, as leftovers of an empty-ish spec.
fn owned_leftovers() -> Vec<Exchange> {
    vec![
        Exchange::recorded("19-channel-list").edit(|b| {
            b["config_list"][0]["config"]["description"] =
                json!(format!("logwarden alerts (managed_by: {OWNER})"));
        }),
        Exchange::recorded("03-detector-search-by-name").edit(|b| {
            b["hits"]["hits"][0]["_source"]["name"] = json!("left-the-spec");
            b["hits"]["hits"][0]["_source"]["description"] =
                json!(format!("sum(UNK_country) per 1m (managed_by: {OWNER})"));
        }),
    ]
}

#[tokio::test]
async fn prune_deletes_only_owned_leftovers_monitors_first() {
    // The spec keeps one detector (created here), so the recorded ones are leftovers.
    let spec = Spec::parse(
        &format!(
            "events: waf-logs
detectors: [{{name: recording-create, feature: {{field: UNK_country}}, interval: 1m, window_delay: 1m}}]
provisioning: {{owner: {OWNER}}}
"
        ),
        "contract",
    )
    .expect("valid");
    let mut exchanges = owned_leftovers();
    exchanges.extend([
        Exchange::recorded("10-detector-create"),
        Exchange::recorded("12-detector-start"),
        Exchange::recorded("24-monitor-search-by-name").edit(|b| {
            let script = &mut b["hits"]["hits"][0]["_source"]["triggers"][0]["query_level_trigger"]
                ["condition"]["script"]["source"];
            *script = json!(format!(
                "// managed_by: {OWNER}\n{}",
                script.as_str().unwrap_or("")
            ));
        }),
        // Prune: the monitor, then the detector (stopped first: it runs), then the channel.
        Exchange::documented(
            "DELETE",
            "/_plugins/_alerting/monitors/utypBaIBjm7DZZbaeRK4",
            200,
            json!({"_id": "utypBaIBjm7DZZbaeRK4", "_version": 2}),
        ),
        Exchange::recorded("04-detector-get"),
        Exchange::recorded("14-detector-stop").at(&format!("{DETECTORS}/{RUNNING}/_stop")),
        Exchange::recorded("15-detector-delete").at(&format!("{DETECTORS}/{RUNNING}")),
        Exchange::documented(
            "DELETE",
            "/_plugins/_notifications/configs/waf-webhook",
            200,
            json!({"delete_response_list": {"waf-webhook": "OK"}}),
        ),
    ]);
    let (plan, result, _) = converge(&spec, OWNER, true, true, exchanges).await;
    result.expect("converges");
    let deleted: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Delete)
        .map(|s| (s.kind, s.name.as_str()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("monitor", "waf-unk-source-monitor"),
            ("detector", "left-the-spec"),
            ("channel", "waf-webhook")
        ]
    );
}

#[tokio::test]
async fn without_prune_owned_leftovers_are_listed_and_kept_and_a_dry_run_writes_nothing() {
    let spec = recorded_spec("");
    let mut exchanges = owned_leftovers();
    // The declared detector is missing (the search's only hit is the leftover): a dry run
    // plans its creation without asking for anything but lists.
    exchanges.push(Exchange::recorded("24-monitor-search-by-name"));
    let (plan, result, received) = converge(&spec, OWNER, false, false, exchanges).await;
    result.expect("plans");
    assert!(
        received
            .iter()
            .all(|(method, path, _)| method == "GET" || path.ends_with("/_search")),
        "a dry run only reads: {received:#?}"
    );
    assert_eq!(
        plan.step("detector", "waf-unk-country").map(|s| s.action),
        Some(Action::Create)
    );
    for (kind, name) in [("detector", "left-the-spec"), ("channel", "waf-webhook")] {
        let step = plan.step(kind, name).expect("listed");
        assert_eq!(step.action, Action::Unchanged);
        assert!(step.detail.contains("--prune"), "{}", step.detail);
    }
    assert_eq!(plan.count(Action::Delete), 0);
}

#[tokio::test]
async fn status_reads_state_and_init_progress_from_the_profile() {
    let spec = recorded_spec("");
    let replay = Replay::start(vec![
        Exchange::recorded("03-detector-search-by-name"),
        Exchange::recorded("05-detector-profile"),
    ])
    .await;
    let states = Plugins::new(&replay.api, OWNER, false, false)
        .detector_states(&spec)
        .await
        .expect("states");
    replay.finish();
    assert_eq!(states.len(), 1);
    let (name, state, detail) = &states[0];
    assert_eq!(name, "waf-unk-country");
    assert_eq!(state, "RUNNING");
    assert!(detail.starts_with("initialized 100%"), "{detail}");
    assert!(detail.contains("Invalid search query"), "{detail}");
}

#[tokio::test]
async fn the_default_spec_plans_the_seeds_five_and_the_presets_detectors_monitors_and_a_webhook_on_an_empty_cluster()
 {
    let mut spec = Spec::default_spec().expect("valid");
    // The default channel reads its URL from LOGWARDEN_SECRET_ALERT_WEBHOOK_URL; here it is given inline.
    spec.channels[0].webhook = Some(pipeline::spec::Secret {
        env: None,
        file: None,
        value: Some("http://127.0.0.1:8089/alert".into()),
    });
    let (plan, result, _) = converge(
        &spec,
        "logwarden",
        false,
        false,
        vec![
            // The recorded answers, edited to an empty cluster: no configs, no detectors, no monitors.
            Exchange::recorded("19-channel-list").edit(|b| {
                b["config_list"] = json!([]);
                b["total_hits"] = json!(0);
            }),
            Exchange::recorded("03-detector-search-by-name")
                .edit(|b| b["hits"]["hits"] = json!([])),
            Exchange::recorded("24-monitor-search-by-name").edit(|b| b["hits"]["hits"] = json!([])),
        ],
    )
    .await;
    result.expect("plans");
    let created = |kind: &str| -> Vec<String> {
        plan.steps
            .iter()
            .filter(|s| s.kind == kind && s.action == Action::Create)
            .map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(created("channel"), ["security-team"]);
    let detectors = created("detector");
    assert_eq!(
        detectors[..5],
        [
            "action-anomaly-detector",
            "source-anomaly-detector",
            "httpstatus-anomaly-detector",
            "country-anomaly-detector",
            "method-anomaly-detector"
        ]
    );
    let monitors = created("monitor");
    assert_eq!(
        monitors[..5],
        [
            "B_action-Monitor",
            "UNK_source-Monitor",
            "B_httpstatus-Monitor",
            "UNK_country-Monitor",
            "uncommon_method-Monitor"
        ]
    );
    // Then every source preset's detector and monitor, as the spec declares them.
    let declared: Vec<&str> = spec.detectors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(detectors, declared);
    let declared: Vec<&str> = spec.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(monitors, declared);
    assert_eq!(detectors.len(), 32);
    assert!(
        detectors
            .iter()
            .any(|d| d == "cloudtrail-root-activity-detector")
    );
    assert_eq!(plan.steps.len(), 1 + 32 + 32, "{}", plan.table());
    // A preset detector sums its indicator over its source's records only.
    let preset = spec
        .detector("syslog-auth-failure-detector")
        .expect("the syslog preset");
    let body = plugins::detector_body(preset, 5, &spec.events, "logwarden").expect("body");
    assert_eq!(
        body["filter_query"]["bool"]["filter"][0]["term"]["logwarden_source"]["value"],
        "syslog"
    );
    assert_eq!(
        body["feature_attributes"][0]["aggregation_query"]["sum_syslog_auth_failure"]["sum"]["field"],
        "syslog_auth_failure"
    );
    // Each seed field's share of the events (its average) per minute over the events alias,
    // trained on 120 intervals.
    for (d, field) in spec.detectors.iter().zip([
        "B_action",
        "UNK_source",
        "B_httpstatus",
        "UNK_country",
        "uncommon_method",
    ]) {
        let body = plugins::detector_body(d, 0, &spec.events, "logwarden").expect("body");
        assert_eq!(body["indices"], json!(["logwarden-events*"]));
        assert_eq!(body["detection_interval"]["period"]["interval"], 1);
        assert_eq!(body["history"], 120);
        assert_eq!(
            body["feature_attributes"][0]["aggregation_query"][format!("ratio_{field}")]["avg"]["field"],
            field
        );
    }
}
