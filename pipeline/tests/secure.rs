//! Kafka's secure listeners on the real stack (`cargo xtask stack up`: SASL_SSL with SCRAM, and SSL
//! requiring a client certificate): the start-up check accepts the right credentials and
//! certificates, and turns a wrong password, an untrusted CA and a missing client certificate
//! into a clear error at once (with `/readyz` saying why), never showing the password; records
//! round-trip through both listeners with the services' client presets.

use std::time::Duration;

use pipeline::config::SecretString;
use pipeline::kafka::{KafkaConfig, PreflightError, preflight};
use pipeline::telemetry::Health;
use pipeline::testkit::{self, Secure};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const PATIENCE: Duration = Duration::from_secs(15);

async fn check(kafka: &KafkaConfig) -> (Result<(), PreflightError>, String) {
    let health = Health::default();
    let outcome = preflight(kafka, &health, PATIENCE).await;
    (outcome, health.report().1)
}

#[tokio::test]
async fn the_right_credentials_and_certificates_pass_the_start_up_check() {
    for mode in [Secure::SaslScram, Secure::MutualTls] {
        let kafka = testkit::secure_kafka("secure-ok", 1, mode).await;
        kafka.validate().expect("valid settings");
        let (outcome, readyz) = check(&kafka).await;
        outcome.unwrap_or_else(|err| panic!("{mode:?}: {err}"));
        assert!(!readyz.contains("unreachable"), "{mode:?}: {readyz}");
    }
}

#[tokio::test]
async fn every_sasl_mechanism_authenticates() {
    use pipeline::kafka::SaslMechanism;
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ] {
        let mut kafka = testkit::secure_kafka("secure-mechanisms", 1, Secure::SaslScram).await;
        if let Some(sasl) = kafka.sasl.as_mut() {
            sasl.mechanism = mechanism;
        }
        let (outcome, readyz) = check(&kafka).await;
        outcome.unwrap_or_else(|err| panic!("{mechanism:?}: {err}"));
        assert!(!readyz.contains("unreachable"), "{mechanism:?}: {readyz}");
    }
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_naming_the_keys_and_hiding_the_password() {
    let mut kafka = testkit::secure_kafka("secure-badpass", 1, Secure::SaslScram).await;
    let wrong = "wr0ng-Pa55word-xyzzy";
    if let Some(sasl) = kafka.sasl.as_mut() {
        sasl.password = Some(SecretString::new(wrong));
    }
    let started = std::time::Instant::now();
    let (outcome, readyz) = check(&kafka).await;
    let err = outcome.expect_err("a wrong password is refused");
    let text = err.to_string();
    assert!(
        matches!(err, PreflightError::Authentication { .. }),
        "{text}"
    );
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(text.contains("LOGWARDEN_KAFKA__SASL__PASSWORD"), "{text}");
    assert!(
        started.elapsed() < PATIENCE,
        "failed at once, not after the patience ran out"
    );
    assert!(readyz.contains("refused the credentials"), "{readyz}");
    for shown in [&text, &readyz, &format!("{kafka:?}")] {
        assert!(!shown.contains(wrong), "the password was shown: {shown}");
    }
}

#[tokio::test]
async fn an_untrusted_ca_and_a_missing_client_certificate_fail_the_tls_handshake() {
    let (_, _, dir) = testkit::secure_listeners();
    let mut untrusted = testkit::secure_kafka("secure-ca", 1, Secure::SaslScram).await;
    if let Some(tls) = untrusted.tls.as_mut() {
        tls.ca_file = Some(dir.join("other-ca.pem"));
    }
    let mut anonymous = testkit::secure_kafka("secure-nocert", 1, Secure::MutualTls).await;
    if let Some(tls) = anonymous.tls.as_mut() {
        tls.certificate_file = None;
        tls.key_file = None;
    }
    for kafka in [untrusted, anonymous] {
        let (outcome, readyz) = check(&kafka).await;
        let Err(err) = outcome else {
            panic!("the handshake should fail; /readyz: {readyz}");
        };
        let text = err.to_string();
        assert!(matches!(err, PreflightError::Tls { .. }), "{text}");
        assert!(text.contains("kafka.tls.ca_file"), "{text}");
        assert!(readyz.contains("TLS with Kafka"), "{readyz}");
    }
}

#[tokio::test]
async fn records_round_trip_through_both_secure_listeners() {
    for mode in [Secure::SaslScram, Secure::MutualTls] {
        let kafka = testkit::secure_kafka("secure-roundtrip", 2, mode).await;
        let producer: FutureProducer = kafka
            .producer_config("secure-test")
            .create()
            .expect("producer");
        for i in 0..100 {
            let payload = format!("{{\"n\":{i}}}");
            producer
                .send(
                    FutureRecord::to(&kafka.topics.raw)
                        .key(&payload)
                        .payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(err, _)| panic!("{mode:?}: delivery: {err}"));
        }
        let consumer: StreamConsumer = kafka
            .consumer_config("secure-test", &testkit::unique_name("secure-group"))
            .create()
            .expect("consumer");
        consumer.subscribe(&[&kafka.topics.raw]).expect("subscribe");
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 100 {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("{mode:?}: records arrive within 30 s"))
                .expect("consume");
            seen.insert(message.payload().map(<[u8]>::to_vec));
        }
        assert_eq!(seen.len(), 100, "{mode:?}: each record once");
    }
}

#[test]
fn sasl_without_tls_is_refused_unless_allowed() {
    let mut kafka = KafkaConfig::new("127.0.0.1:9092");
    kafka.sasl = Some(pipeline::kafka::KafkaSasl {
        mechanism: pipeline::kafka::SaslMechanism::Plain,
        username: "u".into(),
        password: Some(SecretString::new("p4ss")),
        password_file: None,
    });
    let err = kafka.validate().expect_err("plaintext credentials");
    assert_eq!(err.key(), Some("kafka.sasl"));
    assert!(err.to_string().contains("kafka.allow_insecure"), "{err}");
    kafka.allow_insecure = true;
    kafka.validate().expect("allowed knowingly");
    assert_eq!(kafka.security_warnings().len(), 1);
    // The same through raw librdkafka properties.
    let mut raw = KafkaConfig::new("127.0.0.1:9092");
    raw.properties
        .insert("security.protocol".into(), "SASL_PLAINTEXT".into());
    raw.properties.insert("sasl.password".into(), "p4ss".into());
    assert!(raw.validate().is_err());
    assert!(!format!("{raw:?}").contains("p4ss"), "{raw:?}");
}
