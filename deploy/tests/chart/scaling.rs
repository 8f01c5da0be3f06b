//! Autoscaling: the HPA and KEDA, capped at the partitions; never both.

use super::*;

#[test]
fn autoscaling_drops_replicas_and_caps_at_the_partitions() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "autoscaling");
    for name in ["lw-transformer", "lw-sink"] {
        let deployment = manifests.get("Deployment", name);
        assert!(
            get(deployment, &["spec", "replicas"]).is_none(),
            "{name} has replicas under autoscaling: helm upgrade would reset the HPA's count"
        );
    }
    assert_eq!(
        get(
            manifests.get("Deployment", "lw-detector"),
            &["spec", "replicas"]
        )
        .and_then(Value::as_u64),
        Some(2)
    );
    let hpa = |name: &str, field: &str| {
        get(
            manifests.get("HorizontalPodAutoscaler", name),
            &["spec", field],
        )
        .and_then(Value::as_u64)
    };
    // ci/autoscaling.yaml: 4 partitions; the transformer asks for 10, the sink for 3.
    assert_eq!(hpa("lw-transformer", "maxReplicas"), Some(4));
    assert_eq!(hpa("lw-transformer", "minReplicas"), Some(2));
    assert_eq!(hpa("lw-sink", "maxReplicas"), Some(3));
    let metric = &seq(
        manifests.get("HorizontalPodAutoscaler", "lw-transformer"),
        &["spec", "metrics"],
    )[0];
    assert_eq!(text(metric, &["resource", "name"]), Some("cpu"));
    assert_eq!(
        get(metric, &["resource", "target", "averageUtilization"]).and_then(Value::as_u64),
        Some(60)
    );
    assert_eq!(manifests.of_kind("ScaledObject").count(), 0);
}

#[test]
fn readers_split_the_detectors_reading_and_the_detectors_read_what_they_write() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "autoscaling");
    let readers = manifests.get("Deployment", "lw-detector-reader");
    assert_eq!(
        get(readers, &["spec", "replicas"]).and_then(Value::as_u64),
        Some(3)
    );
    let container = &seq(readers, &["spec", "template", "spec", "containers"])[0];
    assert_eq!(
        seq(container, &["command"])
            .into_iter()
            .chain(seq(container, &["args"]))
            .filter_map(Value::as_str)
            .collect::<Vec<_>>(),
        [
            "/usr/local/bin/logwarden-detector",
            "read",
            "--config",
            "/etc/logwarden/config/config.yaml"
        ]
    );
    let config = manifests.get("ConfigMap", "lw-config");
    let file = |key: &str| {
        yaml(text(config, &["data", key]).unwrap_or_else(|| panic!("{key} in the ConfigMap")))
    };
    let (detector, reader) = (file("detector.yaml"), file("detector-reader.yaml"));
    // Both read the same section: the same spec, the readers' group and batches, and the
    // detectors read the projected topic.
    assert_eq!(get(&detector, &["detector"]), get(&reader, &["detector"]));
    assert_eq!(text(&detector, &["detector", "input"]), Some("projected"));
    assert_eq!(
        get(&reader, &["detector", "reader", "batch_records"]).and_then(Value::as_u64),
        Some(1000)
    );
    assert_eq!(
        text(&reader, &["kafka", "topics", "projected"]),
        Some("projected")
    );
    // Scraped like every workload: a metrics Service of their own.
    let service = manifests.get("Service", "lw-detector-reader");
    assert_eq!(
        text(service, &["metadata", "labels", "logwarden.io/metrics"]),
        Some("true")
    );
    assert_eq!(
        text(
            service,
            &["spec", "selector", "app.kubernetes.io/component"]
        ),
        Some("detector-reader")
    );
    // The readers hold no OpenSearch or channel credential: Kafka only.
    assert!(get(&reader, &["opensearch"]).is_none(), "{reader:?}");

    // Without readers (the default), no reader and the detectors read `enriched`.
    let defaults = render(&helm, "defaults");
    assert!(
        defaults
            .of_kind("Deployment")
            .all(|d| id(d) != "Deployment/lw-detector-reader")
    );
    let config = defaults.get("ConfigMap", "lw-config");
    assert!(text(config, &["data", "detector-reader.yaml"]).is_none());
    assert!(
        defaults
            .of_kind("Service")
            .all(|d| id(d) != "Service/lw-detector-reader")
    );
    let detector = yaml(text(config, &["data", "detector.yaml"]).expect("detector.yaml"));
    assert_eq!(text(&detector, &["detector", "input"]), Some("enriched"));
}

#[test]
fn keda_scales_on_lag_capped_at_the_partitions_and_authenticates_like_the_pods() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "keda");
    assert_eq!(manifests.of_kind("HorizontalPodAutoscaler").count(), 0);
    for name in ["lw-transformer", "lw-sink"] {
        assert!(
            get(manifests.get("Deployment", name), &["spec", "replicas"]).is_none(),
            "{name}"
        );
    }
    let scaled = manifests.get("ScaledObject", "lw-transformer");
    // ci/keda.yaml: 12 partitions, maxReplicaCount 20.
    assert_eq!(
        get(scaled, &["spec", "maxReplicaCount"]).and_then(Value::as_u64),
        Some(12)
    );
    assert_eq!(
        get(scaled, &["spec", "minReplicaCount"]).and_then(Value::as_u64),
        Some(2)
    );
    assert_eq!(
        text(scaled, &["spec", "scaleTargetRef", "name"]),
        Some("lw-transformer")
    );
    let trigger = &seq(scaled, &["spec", "triggers"])[0];
    assert_eq!(text(trigger, &["type"]), Some("kafka"));
    let metadata = |key: &str| text(trigger, &["metadata", key]);
    assert_eq!(metadata("consumerGroup"), Some("waf-transformer"));
    assert_eq!(metadata("topic"), Some("raw"));
    assert_eq!(metadata("lagThreshold"), Some("500"));
    assert_eq!(metadata("sasl"), Some("scram_sha512"));
    assert_eq!(metadata("tls"), Some("enable"));
    assert_eq!(
        metadata("bootstrapServers"),
        Some("kafka-0.kafka:9093,kafka-1.kafka:9093")
    );
    // The group KEDA measures is the one the transformer's config names.
    let config = yaml(manifests.config_text("lw-config", "transformer.yaml"));
    assert_eq!(
        text(&config, &["transformer", "group_id"]),
        Some("waf-transformer")
    );
    let sink = manifests.get("ScaledObject", "lw-sink");
    assert_eq!(
        get(sink, &["spec", "maxReplicaCount"]).and_then(Value::as_u64),
        Some(8)
    );
    let sink_trigger = seq(sink, &["spec", "triggers"])[0];
    assert_eq!(text(sink_trigger, &["metadata", "topic"]), Some("enriched"));
    assert_eq!(
        text(sink_trigger, &["metadata", "consumerGroup"]),
        Some("logwarden-sink")
    );
    let auth = manifests.get("TriggerAuthentication", "lw-transformer");
    let env: Vec<(&str, &str)> = seq(auth, &["spec", "env"])
        .into_iter()
        .filter_map(|e| Some((text(e, &["parameter"])?, text(e, &["name"])?)))
        .collect();
    assert_eq!(
        env,
        [
            ("username", "LOGWARDEN_KAFKA__SASL__USERNAME"),
            ("password", "LOGWARDEN_KAFKA__SASL__PASSWORD")
        ]
    );
    let transformer = manifests.pod("Deployment", "lw-transformer");
    let names: Vec<&str> = seq(transformer.containers()[0], &["env"])
        .into_iter()
        .filter_map(|e| text(e, &["name"]))
        .collect();
    for (_, variable) in &env {
        assert!(
            names.contains(variable),
            "the transformer has no {variable}: {names:?}"
        );
    }
    let refs: Vec<(&str, &str, &str)> = seq(auth, &["spec", "secretTargetRef"])
        .into_iter()
        .filter_map(|e| {
            Some((
                text(e, &["parameter"])?,
                text(e, &["name"])?,
                text(e, &["key"])?,
            ))
        })
        .collect();
    assert_eq!(refs, [("ca", "kafka-cluster-ca", "ca.crt")]);
}

#[test]
fn autoscaling_and_keda_together_are_refused() {
    let helm = Helm::from_env();
    assert_refused(
        &helm,
        "keda",
        "transformer.autoscaling.enabled=true",
        "transformer.autoscaling.enabled and transformer.keda.enabled are both true: KEDA makes its own HorizontalPodAutoscaler; enable one of them",
    );
    assert_refused(
        &helm,
        "autoscaling",
        "transformer.autoscaling.minReplicas=5",
        "transformer.autoscaling.minReplicas (5) is above the most replicas that get partitions (4, the lower of maxReplicas and kafka.partitions)",
    );
}
