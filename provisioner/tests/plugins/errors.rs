//! How the plugins' refusals and failures reach the user: the plugin's own reason in the
//! error, and a missing object told apart from a failed request.

use provisioner::plan::{Action, Plan};
use provisioner::plugins::Plugins;
use serde_json::json;

use crate::common::{
    DETECTORS, Exchange, OWNER, RUNNING, Replay, converge, declared_detector_search, recorded_spec,
    running_detector_exchanges,
};

#[tokio::test]
async fn a_refused_update_shows_the_plugins_reason() {
    let spec = recorded_spec("");
    let (plan, result, _) = converge(
        &spec,
        OWNER,
        true,
        false,
        running_detector_exchanges(
            // What the plugin answers when the detector is (still) running.
            Exchange::recorded("13-detector-update-while-running").at(&format!(
                "{DETECTORS}/{RUNNING}?if_seq_no=0&if_primary_term=1"
            )),
        ),
    )
    .await;
    let err = result.expect_err("refused");
    assert!(
        plan.step("detector", "waf-unk-country").is_none(),
        "a failed step is reported as done: {}",
        plan.table()
    );
    let text = err.to_string();
    assert!(
        text.contains("status_exception: Job is running: GAuxBaIBAmw-9BUqe322"),
        "{text}"
    );
    assert!(
        text.contains(&format!("PUT {DETECTORS}/{RUNNING}")),
        "{text}"
    );
    assert!(text.contains("400"), "{text}");
}

#[tokio::test]
async fn a_name_taken_meanwhile_and_a_bad_monitor_show_the_plugins_reasons() {
    let spec = recorded_spec("");
    let replay = Replay::start(vec![
        Exchange::recorded("19-channel-list"),
        // The search found nothing (edited: no hits), but the create finds the name taken.
        Exchange::recorded("03-detector-search-by-name").edit(|b| {
            b["hits"]["hits"] = json!([]);
            b["hits"]["total"]["value"] = json!(0);
        }),
        Exchange::recorded("09-detector-create-duplicate-name"),
    ])
    .await;
    let err = Plugins::new(&replay.api, OWNER, true, false)
        .converge(&spec, &mut Plan::default())
        .await
        .expect_err("duplicate");
    replay.finish();
    assert!(
        err.to_string().contains(
            "Cannot create anomaly detector with name [waf-unk-country] as it's already used by another detector"
        ),
        "{err}"
    );

    let spec = recorded_spec(
        "monitors: [{name: recording-bad, detectors: [waf-unk-country], channels: []}]",
    );
    let (plan, result, _) = converge(
        &spec,
        OWNER,
        true,
        false,
        vec![
            Exchange::recorded("19-channel-list"),
            declared_detector_search(),
            Exchange::recorded("04-detector-get"),
            Exchange::recorded("24-monitor-search-by-name"),
            Exchange::recorded("27-monitor-create-bad-schedule"),
        ],
    )
    .await;
    let err = result.expect_err("bad monitor");
    assert!(
        err.to_string()
            .contains("alerting_exception: Interval is not allowed to be 0 or negative"),
        "{err}"
    );
    // The detector, edited to be exactly the declared one and running, was left alone.
    assert_eq!(
        plan.step("detector", "waf-unk-country").map(|s| s.action),
        Some(Action::Unchanged)
    );
}

#[tokio::test]
async fn a_missing_object_is_none_and_other_errors_carry_the_reason() {
    let replay = Replay::start(vec![
        Exchange::recorded("06-detector-get-missing"),
        Exchange::recorded("22-channel-test"),
    ])
    .await;
    let missing = replay
        .api
        .found(
            opensearch::http::Method::Get,
            &format!("{DETECTORS}/doesnotexist"),
        )
        .await
        .expect("answered");
    assert_eq!(missing, None);
    let err = replay
        .api
        .ok(
            opensearch::http::Method::Get,
            "/_plugins/_notifications/feature/test/waf-webhook",
            None,
        )
        .await
        .expect_err("500");
    replay.finish();
    assert!(err.to_string().contains("Connection refused"), "{err}");
}
