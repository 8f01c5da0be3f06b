//! The test that no secret is ever shown by a service binary.

use std::time::Duration;

use super::{
    Process, STACK_SCRAM_PASSWORD, STACK_SCRAM_USER, Secure, opensearch_url, secure_kafka,
    secure_listeners,
};

/// Distinctive secrets a secrets test sets everywhere and then looks for in every output.
pub const TEST_SECRETS: [&str; 3] = [
    "Os-Pa55word-9f2c-never-shown",
    "T0K3N-webhook-7d1e-never-shown",
    "Wr0ng-Kafka-Pa55-3b8a-never-shown",
];

/// Runs `binary` the way an operator would, with a distinctive secret in every place one can be
/// given (the Kafka SASL password, the OpenSearch password, the default channel's webhook URL),
/// and asserts that none appears in anything it shows: `--help`; a run through start-up,
/// `/metrics`, `/healthz` and `/readyz` (when it serves them) and SIGTERM; and a failed start-up
/// (a Kafka password the broker refuses). `args` start the service; `ready` is the log line that
/// says it runs (`None` for a command that exits by itself); `extra` are more variables (private
/// index names).
///
/// # Panics
/// When a secret appears, naming where.
pub async fn assert_keeps_secrets(
    binary: &str,
    args: &[&str],
    ready: Option<&str>,
    extra: &[(&str, &str)],
) {
    let [opensearch_password, webhook_token, wrong_kafka_password] = TEST_SECRETS;
    let kafka = secure_kafka("secrets", 1, Secure::SaslScram).await;
    let (_, _, tls) = secure_listeners();
    let ca = tls.join("ca.pem").display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    let listen = format!("127.0.0.1:{port}");
    let webhook = format!("https://hooks.example.com/services/{webhook_token}");
    let opensearch = opensearch_url();
    let env = |kafka_password: &str| -> Vec<(String, String)> {
        [
            ("LOGWARDEN_KAFKA__BROKERS", kafka.brokers.as_str()),
            ("LOGWARDEN_KAFKA__TLS__CA_FILE", &ca),
            ("LOGWARDEN_KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
            ("LOGWARDEN_KAFKA__SASL__USERNAME", STACK_SCRAM_USER),
            ("LOGWARDEN_KAFKA__SASL__PASSWORD", kafka_password),
            ("LOGWARDEN_KAFKA__TOPICS__RAW", &kafka.topics.raw),
            ("LOGWARDEN_KAFKA__TOPICS__ENRICHED", &kafka.topics.enriched),
            (
                "LOGWARDEN_KAFKA__TOPICS__DEAD_LETTER",
                &kafka.topics.dead_letter,
            ),
            ("LOGWARDEN_KAFKA__TOPICS__LABELS", &kafka.topics.labels),
            (
                "LOGWARDEN_KAFKA__TOPICS__ANOMALIES",
                &kafka.topics.anomalies,
            ),
            ("LOGWARDEN_OPENSEARCH__URL", &opensearch),
            ("LOGWARDEN_OPENSEARCH__USERNAME", "logwarden"),
            ("LOGWARDEN_OPENSEARCH__PASSWORD", opensearch_password),
            ("LOGWARDEN_OPENSEARCH__ALLOW_INSECURE", "true"),
            ("LOGWARDEN_TELEMETRY__LISTEN", &listen),
            ("LOGWARDEN_TELEMETRY__LOG_LEVEL", "debug"),
            ("LOGWARDEN_SECRET_ALERT_WEBHOOK_URL", &webhook),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let run = |env: Vec<(String, String)>, args: Vec<&str>| {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::start(binary, &args, &pairs)
    };
    let mut shown: Vec<(String, String)> = Vec::new();

    let (_, help) = run(env(STACK_SCRAM_PASSWORD), vec!["--help"]).wait(Duration::from_secs(30));
    shown.push(("--help".into(), help));

    let mut process = run(env(STACK_SCRAM_PASSWORD), args.to_vec());
    match ready {
        Some(line) => {
            process.wait_for(line, Duration::from_secs(90)).await;
            let http = reqwest::Client::new();
            for endpoint in ["metrics", "healthz", "readyz"] {
                let body = match http.get(format!("http://{listen}/{endpoint}")).send().await {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(err) => panic!("/{endpoint} did not answer: {err}"),
                };
                shown.push((format!("/{endpoint}"), body));
            }
            let (_, output) = process.terminate();
            shown.push(("a run and SIGTERM".into(), output));
        }
        None => {
            let (_, output) = process.wait(Duration::from_secs(90));
            shown.push(("a run".into(), output));
        }
    }

    let (code, failed) =
        run(env(wrong_kafka_password), args.to_vec()).wait(Duration::from_secs(90));
    if ready.is_some() {
        assert_ne!(
            code,
            Some(0),
            "a refused Kafka password must stop it:\n{failed}"
        );
    }
    shown.push(("a failed start-up".into(), failed));

    let secrets = [
        opensearch_password,
        webhook_token,
        wrong_kafka_password,
        STACK_SCRAM_PASSWORD,
    ];
    for (place, text) in &shown {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{binary}: `{secret}` appears in {place}:\n{text}"
            );
        }
    }
}
