//! What each channel receives for a notification (pure): the webhook's JSON body, a Slack
//! incoming-webhook payload, and the e-mail's subject and text. Each carries the notification's
//! idempotency key, so a receiver can tell a re-sent notification from a new one: the webhook
//! body's `idempotency_key` (and the `Idempotency-Key` HTTP header, set by the channel), the
//! last line of the Slack message, and the e-mail's `Message-ID` and
//! `X-Logwarden-Idempotency-Key` header.

use serde_json::{Value, json};

use super::monitors::{Kind, Notification};

/// The HTTP header carrying the key on webhook and Slack requests.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The e-mail header carrying the key.
pub const EMAIL_KEY_HEADER: &str = "X-Logwarden-Idempotency-Key";

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The generic webhook's JSON body.
pub fn webhook_body(n: &Notification) -> Value {
    json!({
        "idempotency_key": n.key,
        "kind": n.kind,
        "monitor": n.monitor,
        "detector": n.detector,
        "field": n.field,
        "severity": n.severity,
        "grade": n.grade,
        "confidence": n.confidence,
        "value": n.value,
        "expected": n.expected,
        "interval": {"start": rfc3339(n.interval_start), "end": rfc3339(n.interval_end)},
        "episode_start": rfc3339(n.episode_start),
        "message": n.message,
        "entities": n.entities,
    })
}

/// The facts every human-readable form lists, labelled, in order.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Monitor", n.monitor.clone()),
        ("Detector", n.detector.clone()),
        ("Field", n.field.clone()),
        ("Severity", n.severity.to_string()),
        ("Grade", format!("{:.2}", n.grade)),
        ("Confidence", format!("{:.2}", n.confidence)),
        ("Value", format!("{} (expected {:.1})", n.value, n.expected)),
        (
            "Interval",
            format!(
                "{} – {}",
                rfc3339(n.interval_start),
                rfc3339(n.interval_end)
            ),
        ),
        ("Episode since", rfc3339(n.episode_start)),
    ];
    if !n.entities.is_empty() {
        facts.push(("Entities", n.entities.join(", ")));
    }
    facts.push(("Key", n.key.clone()));
    facts
}

/// A Slack incoming-webhook payload: the sentence, then the facts (the key last).
pub fn slack_body(n: &Notification) -> Value {
    let icon = match n.kind {
        Kind::Recovery => ":white_check_mark:",
        _ => ":rotating_light:",
    };
    let details: Vec<String> = facts(n)
        .iter()
        .map(|(label, value)| format!("*{label}* {value}"))
        .collect();
    json!({
        "text": format!("{icon} {}", n.message),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", n.message)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details.join("\n")}}
        ]
    })
}

/// The e-mail form of a notification: subject and plain-text body (the sentence, then the
/// facts, the key last).
pub fn email_text(n: &Notification) -> (String, String) {
    let subject = format!("[logwarden] severity {}: {}", n.severity, n.message);
    let lines: Vec<String> = facts(n)
        .iter()
        .map(|(label, value)| format!("{:<14} {value}", format!("{label}:")))
        .collect();
    (subject, format!("{}\n\n{}\n", n.message, lines.join("\n")))
}

/// The e-mail's `Message-ID`: the key at the sender's domain, so the same notification sent
/// twice is one message to mail clients and archives.
pub fn message_id(key: &str, from_address: &str) -> String {
    let domain = from_address
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim_end_matches('>'))
        .filter(|d| !d.is_empty())
        .unwrap_or("logwarden");
    format!("<{key}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::monitors::{Monitors, tests::result};
    use crate::spec::Spec;

    #[test]
    fn every_payload_names_what_a_responder_needs_and_the_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut monitors = Monitors::new(&Spec::default_spec()?);
        let n = monitors
            .evaluate(&result(
                "source-anomaly-detector",
                1_795_391_400_000,
                0.8,
                0.9,
            ))
            .entries
            .remove(0)
            .notification;
        let body = webhook_body(&n);
        assert_eq!(body["idempotency_key"], n.key.as_str());
        assert_eq!(body["monitor"], "UNK_source-Monitor");
        assert_eq!(body["detector"], "source-anomaly-detector");
        assert_eq!(body["field"], "sum_UNK_source");
        assert_eq!(body["severity"], 1);
        assert_eq!(body["kind"], "alert");
        assert_eq!(body["interval"]["start"], "2026-11-22T23:50:00.000Z");
        assert_eq!(body["episode_start"], "2026-11-22T23:50:00.000Z");

        let slack = slack_body(&n);
        assert!(
            slack["text"]
                .as_str()
                .is_some_and(|t| t.contains("UNK_source-Monitor"))
        );
        assert!(
            slack["blocks"][1]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!("\n*Key* {}", n.key))),
            "{slack}"
        );

        let (subject, text) = email_text(&n);
        assert_eq!(
            subject,
            "[logwarden] severity 1: Monitor UNK_source-Monitor just entered alert status. Please investigate the issue."
        );
        assert!(
            text.contains("\nGrade:         0.80\n")
                && text.ends_with(&format!("\nKey:           {}\n", n.key)),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn the_message_id_is_the_key_at_the_senders_domain() {
        let key = "0123456789abcdef0123456789abcdef";
        for (from, expected) in [
            ("logwarden <alerts@example.test>", "example.test"),
            ("alerts@corp.example", "corp.example"),
            ("nobody", "logwarden"),
        ] {
            assert_eq!(
                message_id(key, from),
                format!("<{key}@{expected}>"),
                "{from}"
            );
        }
    }
}
