//! The provisioner's binary against the local stack's real OpenSearch (core, no plugins): the
//! builtin target's templates, results index and retention converge; a second run changes
//! nothing; drift and a changed spec give exactly the expected updates; `--prune` removes only
//! this owner's objects; a dry run changes nothing. Each test has its own names and owner, so
//! tests run in parallel on the shared cluster.

use std::path::PathBuf;
use std::process::Command;

use pipeline::testkit;
use serde_json::{Value, json};

/// A test's names: `prov-<hex>-...`.
struct Names {
    base: String,
}

impl Names {
    fn new(test: &str) -> Self {
        Self {
            base: testkit::unique_name(test),
        }
    }
    /// The events alias, the results index and the owner.
    fn spec_names(&self) -> (String, String, String) {
        (
            self.name("events"),
            self.name("results"),
            self.name("owner"),
        )
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }
}

/// Runs the provisioner with `args` and the spec `spec`; returns its exit code and output.
fn provision_code(url: &str, spec: &str, args: &[&str]) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("{}spec.yaml", testkit::unique_name("logwarden")));
    std::fs::write(&path, spec).expect("write spec");
    let output = Command::new(env!("CARGO_BIN_EXE_logwarden-provisioner"))
        .args(args)
        .arg("--spec")
        .arg(&path)
        .args(["--url", url, "--wait", "20s"])
        .output()
        .expect("run logwarden-provisioner");
    let _ = std::fs::remove_file(PathBuf::from(&path));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

/// Runs the provisioner with `args` and the spec `spec`; returns its output, asserting it
/// succeeded.
fn provision(url: &str, spec: &str, args: &[&str]) -> String {
    let (code, output) = provision_code(url, spec, args);
    assert_eq!(code, 0, "logwarden-provisioner {args:?} failed: {output}");
    output
}

/// The plan table's rows that are not `unchanged`, as `(action, kind, name)`.
fn changes(output: &str) -> Vec<(String, String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            match cells.as_slice() {
                [action, kind, name, ..] if ["create", "update", "delete"].contains(action) => {
                    Some(((*action).to_owned(), (*kind).to_owned(), (*name).to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

fn change(action: &str, kind: &str, name: &str) -> (String, String, String) {
    (action.to_owned(), kind.to_owned(), name.to_owned())
}

/// The changes to every source's events template (`<events>-<source>`), all `action`.
fn source_templates(action: &str, events: &str) -> Vec<(String, String, String)> {
    pipeline::wire::Source::ALL
        .into_iter()
        .map(|source| change(action, "index template", &format!("{events}-{source}")))
        .collect()
}

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

async fn get(http: &reqwest::Client, url: &str, path: &str) -> (u16, Value) {
    let response = http
        .get(format!("{url}/{path}"))
        .send()
        .await
        .expect("OpenSearch answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn put(http: &reqwest::Client, url: &str, path: &str, body: &Value) {
    let response = http
        .put(format!("{url}/{path}"))
        .json(body)
        .send()
        .await
        .expect("OpenSearch answers");
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Deletes every index and index template the test created (all named `<base>...`).
async fn clean(http: &reqwest::Client, url: &str, names: &Names) {
    let (_, templates) = get(http, url, &format!("_index_template/{}*", names.base)).await;
    for template in templates["index_templates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(name) = template["name"].as_str() {
            let _ = http
                .delete(format!("{url}/_index_template/{name}"))
                .send()
                .await;
        }
    }
    let _ = http.delete(format!("{url}/{}*", names.base)).send().await;
}

/// A spec on these names (the alerts index is `<results>-alerts`).
fn spec(events: &str, results: &str, owner: &str, retention: &str) -> String {
    format!(
        "events: {events}
results: {results}
alerts: {results}-alerts
detectors: [{{name: d, feature: {{field: UNK_country}}}}]
provisioning: {{target: builtin, owner: {owner}, retention: {{events: {retention}}}}}
"
    )
}

#[tokio::test]
async fn builtin_objects_converge_once_and_a_dry_run_changes_nothing() {
    let url = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let names = Names::new("prov");
    let (events, results, owner) = names.spec_names();
    let today = chrono::Utc::now().format("%Y.%m.%d").to_string();
    let (expired, foreign, current) = (
        format!("{events}-2020.01.01"),
        format!("{events}-2020.01.02"),
        format!("{events}-{today}"),
    );
    // Two daily indices in the alias (one long expired), and one of the same name pattern that is
    // not in the alias: not ours, never deleted.
    put(
        &http,
        &url,
        &expired,
        &json!({"aliases": {events.clone(): {}}}),
    )
    .await;
    put(
        &http,
        &url,
        &current,
        &json!({"aliases": {events.clone(): {}}}),
    )
    .await;
    put(&http, &url, &foreign, &json!({})).await;
    let spec = spec(&events, &results, &owner, "30d");

    let planned = provision(&url, &spec, &["plan"]);
    let mut expected = vec![
        change("create", "index template", &events),
        change("create", "index template", &results),
        change("create", "index template", &format!("{results}-alerts")),
        change("create", "index", &results),
        change("delete", "index", &expired),
    ];
    expected.extend(source_templates("create", &events));
    let expected = sorted(expected);
    assert_eq!(sorted(changes(&planned)), expected, "{planned}");
    assert!(planned.contains("target builtin (declared)"), "{planned}");
    assert!(
        planned.contains("dry run: nothing was changed"),
        "{planned}"
    );
    assert_eq!(
        get(&http, &url, &format!("_index_template/{events}"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&http, &url, &expired).await.0,
        200,
        "a dry run deleted an index"
    );

    let applied = provision(&url, &spec, &["apply"]);
    assert_eq!(sorted(changes(&applied)), expected, "{applied}");
    let (_, template) = get(&http, &url, &format!("_index_template/{events}")).await;
    let template = &template["index_templates"][0]["index_template"];
    assert_eq!(template["_meta"]["managed_by"], owner.as_str());
    assert_eq!(template["index_patterns"], json!([format!("{events}-*")]));
    // A source's template: its daily indices, into its alias and the common one.
    let (_, syslog) = get(&http, &url, &format!("_index_template/{events}-syslog")).await;
    let syslog = &syslog["index_templates"][0]["index_template"];
    assert_eq!(syslog["_meta"]["managed_by"], owner.as_str());
    assert_eq!(
        syslog["index_patterns"],
        json!([format!("{events}-syslog-*")])
    );
    assert_eq!(
        syslog["template"]["aliases"],
        json!({ events.clone(): {}, format!("{events}-syslog"): {} })
    );
    let (status, mapping) = get(&http, &url, &format!("{results}/_mapping")).await;
    assert_eq!(status, 200, "the results index exists");
    assert_eq!(
        mapping[&results]["mappings"]["properties"]["anomaly_grade"]["type"],
        "double"
    );
    assert_eq!(
        get(&http, &url, &expired).await.0,
        404,
        "expired index kept"
    );
    assert_eq!(get(&http, &url, &current).await.0, 200);
    assert_eq!(
        get(&http, &url, &foreign).await.0,
        200,
        "an index outside the alias was deleted"
    );

    let again = provision(&url, &spec, &["apply"]);
    assert!(changes(&again).is_empty(), "{again}");
    assert!(again.contains("0 to create, 0 to update,"), "{again}");
    assert!(again.contains("0 to delete"), "{again}");
    let (code, _) = provision_code(&url, &spec, &["plan", "--exit-code"]);
    assert_eq!(code, 0, "in sync: a drift check passes");

    // Drift: someone changed the events template by hand. The plan names the field; apply
    // puts it back.
    let mut drifted = template.clone();
    drifted["priority"] = json!(7);
    put(&http, &url, &format!("_index_template/{events}"), &drifted).await;
    let planned = provision(&url, &spec, &["apply", "--dry-run"]);
    assert_eq!(
        changes(&planned),
        [change("update", "index template", &events)],
        "{planned}"
    );
    assert!(planned.contains("priority"), "{planned}");
    let (code, _) = provision_code(&url, &spec, &["status", "--exit-code"]);
    assert_eq!(code, 2, "drift: a drift check fails");
    provision(&url, &spec, &["apply"]);
    let (_, template) = get(&http, &url, &format!("_index_template/{events}")).await;
    assert_eq!(
        template["index_templates"][0]["index_template"]["priority"],
        100
    );

    let status = provision(&url, &spec, &["status"]);
    assert!(status.contains("in sync with the spec"), "{status}");
    assert!(status.contains("enforced"), "{status}");
    assert!(status.contains("exists, 0 documents"), "{status}");
    clean(&http, &url, &names).await;
}

#[tokio::test]
async fn a_changed_spec_updates_exactly_that_and_prune_deletes_only_owned_templates() {
    let url = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let names = Names::new("prov");
    let (events, results, owner) = names.spec_names();
    let first = spec(&events, &results, &owner, "30d");
    provision(&url, &first, &["apply"]);

    // Templates that are not this owner's (another owner's, unmarked), and one that is but that
    // no spec declares.
    let template = |pattern: String, meta: Value| json!({"index_patterns": [pattern], "priority": 1, "_meta": meta});
    let (foreign, unmarked, leftover) = (
        names.name("foreign"),
        names.name("unmarked"),
        names.name("leftover"),
    );
    put(
        &http,
        &url,
        &format!("_index_template/{foreign}"),
        &template(
            format!("{foreign}-*"),
            json!({"managed_by": "someone-else"}),
        ),
    )
    .await;
    put(
        &http,
        &url,
        &format!("_index_template/{unmarked}"),
        &json!({"index_patterns": [format!("{unmarked}-*")]}),
    )
    .await;
    put(
        &http,
        &url,
        &format!("_index_template/{leftover}"),
        &template(format!("{leftover}-*"), json!({"managed_by": owner})),
    )
    .await;

    // The results index is renamed and retention turned off.
    let renamed = names.name("results2");
    let second = spec(&events, &renamed, &owner, "null");
    let planned = provision(&url, &second, &["plan"]);
    assert_eq!(
        sorted(changes(&planned)),
        sorted(vec![
            change("create", "index template", &renamed),
            change("create", "index template", &format!("{renamed}-alerts")),
            change("create", "index", &renamed),
        ]),
        "{planned}"
    );
    for kept in [&results, &format!("{results}-alerts"), &leftover] {
        assert!(
            planned
                .lines()
                .any(|l| l.contains(kept.as_str()) && l.contains("kept (--prune deletes it)")),
            "{kept} not listed as kept: {planned}"
        );
    }
    assert!(
        !planned.contains(&foreign) && !planned.contains(&unmarked),
        "{planned}"
    );
    assert!(planned.contains("keep forever"), "{planned}");

    let pruned = provision(&url, &second, &["apply", "--prune"]);
    assert_eq!(
        sorted(changes(&pruned)),
        sorted(vec![
            change("create", "index template", &renamed),
            change("create", "index template", &format!("{renamed}-alerts")),
            change("create", "index", &renamed),
            change("delete", "index template", &results),
            change("delete", "index template", &format!("{results}-alerts")),
            change("delete", "index template", &leftover),
        ]),
        "{pruned}"
    );
    for (name, status) in [
        (&results, 404),
        (&leftover, 404),
        (&foreign, 200),
        (&unmarked, 200),
        (&renamed, 200),
    ] {
        assert_eq!(
            get(&http, &url, &format!("_index_template/{name}")).await.0,
            status,
            "template {name}"
        );
    }
    assert_eq!(
        get(&http, &url, &results).await.0,
        200,
        "prune deleted data"
    );
    let again = provision(&url, &second, &["apply", "--prune"]);
    assert!(changes(&again).is_empty(), "{again}");

    // A new owner: exactly the templates change (their mark), nothing else.
    let third = spec(&events, &renamed, &names.name("owner2"), "null");
    let updated = provision(&url, &third, &["apply"]);
    let mut expected = vec![
        change("update", "index template", &events),
        change("update", "index template", &renamed),
        change("update", "index template", &format!("{renamed}-alerts")),
    ];
    expected.extend(source_templates("update", &events));
    assert_eq!(sorted(changes(&updated)), sorted(expected), "{updated}");
    assert!(updated.contains("_meta.managed_by"), "{updated}");
    clean(&http, &url, &names).await;
}

#[tokio::test]
async fn an_unreachable_cluster_and_missing_plugins_fail_naming_the_fix() {
    let url = testkit::require_opensearch().await;
    let spec = spec("prov-x-events", "prov-x-results", "prov-x", "30d");
    let path = std::env::temp_dir().join(format!("{}spec.yaml", testkit::unique_name("logwarden")));
    std::fs::write(&path, &spec).expect("write spec");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_logwarden-provisioner"))
            .args(args)
            .arg("--spec")
            .arg(&path)
            .output()
            .expect("run")
    };
    let output = run(&["plan", "--url", "http://127.0.0.1:9", "--wait", "1s"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OpenSearch at http://127.0.0.1:9 was not ready within 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--url or LOGWARDEN_OPENSEARCH__URL"),
        "{stderr}"
    );

    let output = run(&[
        "plan",
        "--url",
        &url,
        "--target",
        "opensearch-plugins",
        "--wait",
        "1s",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the opensearch-plugins target needs opensearch-anomaly-detection, opensearch-alerting, opensearch-notifications"),
        "{stderr}"
    );
    assert!(stderr.contains("--target builtin"), "{stderr}");
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn results_older_than_their_retention_are_deleted_and_newer_ones_kept() {
    let url = testkit::require_opensearch().await;
    let http = reqwest::Client::new();
    let names = Names::new("prov");
    let (events, results, owner) = names.spec_names();
    let spec_with = |retention: &str| {
        format!(
            "events: {events}
results: {results}
detectors: [{{name: d, feature: {{field: UNK_country}}}}]
provisioning: {{target: builtin, owner: {owner}, retention: {{events: 30d, results: {retention}}}}}
"
        )
    };
    let spec = spec_with("1d");
    provision(&url, &spec, &["apply"]);
    // Three results: two whose interval ended more than a day ago, one an hour ago.
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    for (id, end) in [
        ("old-a", now - 49 * hour),
        ("old-b", now - 25 * hour),
        ("new", now - hour),
    ] {
        let doc = json!({"detector_id": "d", "detector_name": "d", "data_start_time": end - 60_000,
            "data_end_time": end, "anomaly_grade": 0.0});
        put(
            &http,
            &url,
            &format!("{results}/_doc/{id}?refresh=true"),
            &doc,
        )
        .await;
    }

    let planned = provision(&url, &spec, &["plan"]);
    assert_eq!(
        changes(&planned),
        [change("delete", "results", &results)],
        "{planned}"
    );
    assert!(
        planned.contains("keep 1d: 3 results, 2 expired"),
        "{planned}"
    );
    assert!(
        planned.contains("expired: 2 results with data_end_time before"),
        "{planned}"
    );
    let count = |http: reqwest::Client, url: String, results: String| async move {
        get(&http, &url, &format!("{results}/_count")).await.1["count"].clone()
    };
    assert_eq!(
        count(http.clone(), url.clone(), results.clone()).await,
        3,
        "a dry run deleted results"
    );

    let applied = provision(&url, &spec, &["apply"]);
    assert_eq!(
        changes(&applied),
        [change("delete", "results", &results)],
        "{applied}"
    );
    assert_eq!(count(http.clone(), url.clone(), results.clone()).await, 1);
    assert_eq!(
        get(&http, &url, &format!("{results}/_doc/new")).await.0,
        200,
        "the recent result was deleted"
    );
    let status = provision(&url, &spec, &["status"]);
    assert!(status.contains("keep 1d: 1 result, 0 expired"), "{status}");

    let again = provision(&url, &spec, &["apply"]);
    assert!(changes(&again).is_empty(), "{again}");
    let forever = provision(&url, &spec_with("null"), &["plan"]);
    assert!(changes(&forever).is_empty(), "{forever}");
    assert!(forever.contains("keep forever: 1 result"), "{forever}");
    clean(&http, &url, &names).await;
}
