//! logwarden-ingest in the chart (`ingest.enabled`): its Deployment, its receivers' Service and
//! metrics Service, and its rendered config loaded by the binary's own loader with the values
//! a user gave (listeners, tokens from the Secret, the bucket and its checkpoint volume).

use super::*;

#[test]
fn ingest_renders_its_workload_services_and_a_config_its_binary_accepts() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "ingest");
    let ids = manifests.ids();
    for expected in [
        "Deployment/lw-ingest",
        "Service/lw-ingest",
        "Service/lw-ingest-receivers",
    ] {
        assert!(ids.iter().any(|i| i == expected), "{expected} in {ids:?}");
    }
    // The receivers' Service: HEC/Firehose/NDJSON over HTTP, syslog over TCP and UDP.
    let receivers = manifests.get("Service", "lw-ingest-receivers");
    assert_eq!(text(receivers, &["spec", "type"]), Some("LoadBalancer"));
    let ports: Vec<String> = seq(receivers, &["spec", "ports"])
        .into_iter()
        .map(|p| {
            format!(
                "{} {}/{}",
                text(p, &["name"]).unwrap_or("?"),
                get(p, &["port"]).and_then(Value::as_u64).unwrap_or(0),
                text(p, &["protocol"]).unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            "http 8088/TCP",
            "syslog-tcp 6514/TCP",
            "syslog-udp 5514/UDP"
        ]
    );
    // Its metrics Service is one the ServiceMonitor selects.
    let metrics = manifests.get("Service", "lw-ingest");
    assert_eq!(
        text(metrics, &["metadata", "labels", "logwarden.io/metrics"]),
        Some("true")
    );
    assert_eq!(
        text(seq(metrics, &["spec", "ports"])[0], &["name"]),
        Some("metrics")
    );
    // One bucket reader: replaced, never two at once.
    let deployment = manifests.get("Deployment", "lw-ingest");
    assert_eq!(
        text(deployment, &["spec", "strategy", "type"]),
        Some("Recreate")
    );
    let container = pods::materialize(&manifests, &manifests.pod("Deployment", "lw-ingest"));
    assert_eq!(
        container.args,
        ["--config", "/etc/logwarden/config/config.yaml"]
    );
    let settings = pods::load_ingest(&container).unwrap_or_else(|err| panic!("{err}"));
    let http = settings.http.as_ref().expect("HTTP receivers on");
    assert_eq!(http.listen.to_string(), "0.0.0.0:8088");
    assert!(http.hec_acknowledgements);
    assert_eq!(
        settings.syslog.tcp.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:6514")
    );
    assert_eq!(
        settings.syslog.udp.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:5514")
    );
    // Tokens and the bucket's secret key come from the chart's Secret, by variable.
    assert_eq!(
        settings.tokens.name_of("hec-token-0b1c"),
        Some("forwarders")
    );
    assert_eq!(
        settings.tokens.name_of("firehose-key-9f2e"),
        Some("firehose-waf")
    );
    let bucket = settings.bucket.as_ref().expect("the bucket receiver on");
    assert_eq!(bucket.name, "waf-logs");
    assert_eq!(
        bucket.endpoint.as_deref(),
        Some("http://seaweedfs.storage:8333")
    );
    assert!(bucket.path_style, "path-style with an endpoint");
    assert_eq!(
        bucket.credentials.describe(),
        "access key `logwarden-reader`"
    );
    assert!(
        matches!(&bucket.credentials, ::ingest::files::bucket_config::Credentials::Key { secret_access_key, .. } if secret_access_key.expose() == "bucket-secret-77aa")
    );
    // The checkpoint is on the state volume, a claim the user named.
    assert_eq!(
        bucket.checkpoint,
        std::path::Path::new("/var/lib/logwarden-ingest/bucket-done")
    );
    let pod = manifests.pod("Deployment", "lw-ingest");
    let mounted = pod
        .containers()
        .into_iter()
        .flat_map(|c| seq(c, &["volumeMounts"]))
        .find(|m| text(m, &["name"]) == Some("state"))
        .expect("the state volume mounted");
    assert_eq!(
        text(mounted, &["mountPath"]),
        Some("/var/lib/logwarden-ingest")
    );
    let state = pod
        .volumes()
        .into_iter()
        .find(|v| text(v, &["name"]) == Some("state"))
        .expect("the state volume");
    assert_eq!(
        text(state, &["persistentVolumeClaim", "claimName"]),
        Some("logwarden-ingest-state")
    );
}

#[test]
fn ingest_refuses_values_that_cannot_work() {
    let helm = Helm::from_env();
    // Two replicas would each read every key of the bucket.
    let err = helm
        .template(RELEASE, &[&ci("ingest")], &["--set", "ingest.replicas=2"])
        .expect_err("refused");
    assert!(
        err.contains("ingest.config.bucket is set with ingest.replicas above 1"),
        "{err}"
    );
    // Tokens are the chart's to set (from the Secret), never written into the ConfigMap.
    let err = helm
        .template(
            RELEASE,
            &[&ci("ingest")],
            &["--set", "ingest.config.tokens.a.token=hunter2"],
        )
        .expect_err("refused");
    assert!(err.contains("/ingest/config"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = helm
        .template(RELEASE, &[&ci("ingest")], &["--set", "ingest.ports.http=0"])
        .expect_err("refused");
    assert!(err.contains("/ingest/ports/http"), "{err}");
    // A token whose key the Secret lacks stops the binary at start-up, naming it.
    let manifests = helm
        .template(
            RELEASE,
            &[&ci("ingest")],
            &["--set", "ingest.tokens.splunk=ingest-token-splunk"],
        )
        .expect("renders");
    let mut container = pods::materialize(&manifests, &manifests.pod("Deployment", "lw-ingest"));
    container
        .env
        .retain(|(name, _)| name != "LOGWARDEN_SECRET_INGEST_SPLUNK");
    let err = pods::load_ingest(&container).expect_err("refused");
    assert!(
        err.contains(
            "config key `ingest.tokens.splunk.env` names `LOGWARDEN_SECRET_INGEST_SPLUNK`, which is not set"
        ),
        "{err}"
    );
}
