//! Secrets: an existing one, TLS material, AWS keys; each only where it is used.

use super::*;

#[test]
fn an_existing_secret_replaces_every_rendered_one() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "existing-secrets");
    assert_eq!(
        manifests.of_kind("Secret").map(id).collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    let mut referenced = BTreeSet::new();
    for pod in manifests.pods() {
        for container in pod.containers() {
            for var in seq(container, &["env"]) {
                if let Some(secret) = text(var, &["valueFrom", "secretKeyRef", "name"]) {
                    referenced.insert(format!(
                        "{} {} {}",
                        pod.id(),
                        text(var, &["name"]).unwrap_or("?"),
                        secret
                    ));
                    assert_eq!(secret, "logwarden-credentials", "{}", pod.id());
                }
            }
        }
        for volume in pod.volumes() {
            if let Some(secret) = text(volume, &["secret", "secretName"]) {
                let expected = match text(volume, &["name"]) {
                    Some("kafka-tls") => "kafka-client-tls",
                    Some("opensearch-tls") => "opensearch-ca",
                    other => panic!("{}: unexpected secret volume {other:?}", pod.id()),
                };
                assert_eq!(secret, expected, "{}", pod.id());
            }
        }
    }
    let names = |workload: &str| -> Vec<String> {
        referenced
            .iter()
            .filter(|line| line.starts_with(workload))
            .map(|line| line.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        names("Deployment/lw-sink "),
        [
            "LOGWARDEN_KAFKA__SASL__PASSWORD",
            "LOGWARDEN_OPENSEARCH__PASSWORD"
        ]
    );
    // channelEnv merges with the default's (the SMTP password stays).
    assert_eq!(
        names("Deployment/lw-detector "),
        [
            "LOGWARDEN_KAFKA__SASL__PASSWORD",
            "LOGWARDEN_OPENSEARCH__PASSWORD",
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "LOGWARDEN_SECRET_SLACK_URL",
            "LOGWARDEN_SECRET_SMTP_PASSWORD",
        ]
    );
    assert_eq!(
        names("Deployment/lw-transformer "),
        ["LOGWARDEN_KAFKA__SASL__PASSWORD"]
    );
    assert_eq!(names("Job/lw-topics "), ["LOGWARDEN_KAFKA__SASL__PASSWORD"]);
    assert_eq!(
        names("Job/lw-provisioner "),
        [
            "LOGWARDEN_OPENSEARCH__PASSWORD",
            "LOGWARDEN_SECRET_ALERT_WEBHOOK_URL",
            "LOGWARDEN_SECRET_SLACK_URL",
            "LOGWARDEN_SECRET_SMTP_PASSWORD",
        ]
    );
    // Every secret the spec's channels read reaches the detector and the provisioner.
    let spec = yaml(manifests.config_text("lw-config", "spec.yaml"));
    for channel in seq(&spec, &["channels"]) {
        let variable = ["webhook", "slack"]
            .iter()
            .find_map(|kind| text(channel, &[kind, "env"]))
            .expect("a channel reading a variable");
        for workload in [
            "Deployment/lw-detector ",
            "Job/lw-provisioner ",
            "CronJob/lw-retention ",
        ] {
            assert!(
                names(workload).iter().any(|n| n == variable),
                "{workload} lacks {variable}"
            );
        }
    }
}

#[test]
fn tls_material_from_values_is_rendered_into_secrets_and_mounted_as_files() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "tls");
    let kafka_tls = pods::secret_data(&manifests, "lw-kafka-tls").expect("lw-kafka-tls");
    assert_eq!(
        kafka_tls.keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    assert!(kafka_tls["tls.key"].contains("placeholder: this client's key"));
    let opensearch_tls =
        pods::secret_data(&manifests, "lw-opensearch-tls").expect("lw-opensearch-tls");
    assert_eq!(opensearch_tls.keys().collect::<Vec<_>>(), ["ca.crt"]);
    let secrets = pods::secret_data(&manifests, "lw-secrets").expect("lw-secrets");
    assert_eq!(
        secrets.into_iter().collect::<Vec<_>>(),
        [
            (
                "alert-webhook-url".to_owned(),
                "https://hooks.example.internal/logwarden".to_owned()
            ),
            (
                "opensearch-password".to_owned(),
                "opensearch-password".to_owned()
            ),
        ]
    );
    let sink = yaml(manifests.config_text("lw-config", "sink.yaml"));
    assert_eq!(
        get(&sink, &["kafka", "tls"]),
        Some(&yaml(
            "{ca_file: /etc/logwarden/kafka-tls/ca.crt, certificate_file: /etc/logwarden/kafka-tls/tls.crt, key_file: /etc/logwarden/kafka-tls/tls.key, verify_hostname: true}"
        ))
    );
    assert_eq!(
        text(&sink, &["opensearch", "ca_file"]),
        Some("/etc/logwarden/opensearch-tls/ca.crt")
    );
    assert_eq!(text(&sink, &["opensearch", "username"]), Some("logwarden"));
    // What the sink's container sees, through its mounts.
    let container = pods::materialize(&manifests, &manifests.pod("Deployment", "lw-sink"));
    let mounted = std::fs::read_to_string(container.path("/etc/logwarden/kafka-tls/tls.crt"))
        .expect("mounted");
    assert!(
        mounted.contains("placeholder: this client's certificate"),
        "{mounted}"
    );
    // The transformer reads Kafka only: no OpenSearch material or password in its pod.
    let transformer = manifests.pod("Deployment", "lw-transformer");
    let volumes: Vec<&str> = transformer
        .volumes()
        .into_iter()
        .filter_map(|v| text(v, &["name"]))
        .collect();
    assert_eq!(volumes, ["config", "tmp", "kafka-tls"]);
    assert!(seq(transformer.containers()[0], &["env"]).is_empty());
    // The topics hook reads its own copy (a hook, made before it), not the release's Secret.
    let copy = manifests.get("Secret", "lw-topics-kafka-tls");
    assert_eq!(
        annotation(copy, "helm.sh/hook"),
        Some("pre-install,pre-upgrade")
    );
    assert_eq!(
        pods::secret_data(&manifests, "lw-topics-kafka-tls"),
        Some(kafka_tls)
    );
    let topics = manifests.pod("Job", "lw-topics");
    let secret_volumes: Vec<&str> = topics
        .volumes()
        .into_iter()
        .filter_map(|v| text(v, &["secret", "secretName"]))
        .collect();
    assert_eq!(secret_volumes, ["lw-topics-kafka-tls"]);
}

#[test]
fn aws_keys_reach_only_the_pods_that_sign_requests_to_opensearch() {
    let helm = Helm::from_env();
    let manifests = render(&helm, "aws");
    let variables = |kind: &str, name: &str| -> Vec<String> {
        seq(manifests.pod(kind, name).containers()[0], &["env"])
            .into_iter()
            .filter_map(|var| text(var, &["name"]))
            .filter(|name| name.starts_with("AWS_"))
            .map(str::to_owned)
            .collect()
    };
    let keys = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ];
    for (kind, name) in [
        ("Deployment", "lw-sink"),
        ("Deployment", "lw-detector"),
        ("Job", "lw-provisioner"),
        ("CronJob", "lw-retention"),
        ("Job", "lw-test"),
    ] {
        assert_eq!(variables(kind, name), keys, "{kind}/{name}");
    }
    for (kind, name) in [("Deployment", "lw-transformer"), ("Job", "lw-topics")] {
        assert!(variables(kind, name).is_empty(), "{kind}/{name}");
    }
    let sink = yaml(manifests.config_text("lw-config", "sink.yaml"));
    assert_eq!(
        get(&sink, &["opensearch", "aws_sigv4"]),
        Some(&yaml("{region: eu-west-1, service: es}"))
    );
    assert_refused(
        &helm,
        "aws",
        "opensearch.username=admin",
        "opensearch.awsSigv4 signs every request with the AWS credentials: leave opensearch.username and the client certificate",
    );
}
