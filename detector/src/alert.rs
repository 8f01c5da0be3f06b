//! Alerting: monitors turn results into notifications (pure), and a delivery task sends them to
//! webhooks, Slack and e-mail (SMTP), retrying with backoff until they are delivered.
//!
//! Episodes: a monitor's episode opens on the first result of one of its detectors that meets
//! the condition (grade ≥ `min_grade`, confidence ≥ `min_confidence`, not historical): that sends
//! one alert. While results keep meeting it, the episode stays open and re-notifies every
//! `renotify` of data time. The first result that does not meet it closes the episode with a
//! recovery message. So an alert is sent once per episode, however many intervals it lasts.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::spec::{ChannelSpec, MonitorSpec, Spec};
use crate::store::ResultDoc;

/// What a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An episode began.
    Alert,
    /// An episode goes on (after `renotify`).
    Renotify,
    /// An episode ended.
    Recovery,
}

/// One notification, for every channel of its monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Alert, re-notification or recovery.
    pub kind: Kind,
    /// The monitor's name.
    pub monitor: String,
    /// The detector's name.
    pub detector: String,
    /// The feature, e.g. `sum_UNK_country`.
    pub field: String,
    /// 1 (highest) to 5.
    pub severity: u8,
    /// The result's grade.
    pub grade: f64,
    /// The result's confidence.
    pub confidence: f64,
    /// The value and what was expected.
    pub value: f64,
    /// The baseline.
    pub expected: f64,
    /// The interval, epoch ms.
    pub interval_start: i64,
    /// The interval's end, epoch ms.
    pub interval_end: i64,
    /// When the episode began (its first interval's start), epoch ms.
    pub episode_start: i64,
    /// The sentence for people, like the seed's.
    pub message: String,
    /// The channels to send it to.
    #[serde(skip)]
    pub channels: Vec<String>,
}

/// An open episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Episode {
    start: i64,
    notified_at: i64,
}

/// Every monitor's episodes (checkpointed through [`Monitors::state`]).
#[derive(Debug, Clone, Default)]
pub struct Monitors {
    monitors: Vec<MonitorSpec>,
    /// Open episodes by (monitor, detector).
    open: BTreeMap<String, Episode>,
}

impl Monitors {
    /// The spec's monitors, no episode open.
    pub fn new(spec: &Spec) -> Self {
        Self {
            monitors: spec.monitors.clone(),
            open: BTreeMap::new(),
        }
    }

    /// The episode states (to checkpoint).
    pub fn state(&self) -> Value {
        serde_json::to_value(&self.open).unwrap_or_default()
    }

    /// Restores episode states saved by [`Monitors::state`].
    pub fn restore(&mut self, state: &Value) {
        if let Ok(open) = serde_json::from_value(state.clone()) {
            self.open = open;
        }
    }

    /// The notifications `result` causes (none for historical results).
    pub fn evaluate(&mut self, result: &ResultDoc) -> Vec<Notification> {
        if result.task_id.is_some() {
            return Vec::new();
        }
        let mut notifications = Vec::new();
        for monitor in &self.monitors {
            if !monitor.detectors.contains(&result.detector_name) {
                continue;
            }
            let key = format!("{}\u{1f}{}", monitor.name, result.detector_name);
            let meets = result.anomaly_grade >= monitor.min_grade
                && result.confidence >= monitor.builtin_min_confidence();
            let renotify = i64::try_from(monitor.renotify.as_millis()).unwrap_or(i64::MAX);
            let kind = match (self.open.get_mut(&key), meets) {
                (None, true) => {
                    self.open.insert(
                        key.clone(),
                        Episode {
                            start: result.data_start_time,
                            notified_at: result.data_end_time,
                        },
                    );
                    Some(Kind::Alert)
                }
                (Some(episode), true) => {
                    if renotify > 0 && result.data_end_time - episode.notified_at >= renotify {
                        episode.notified_at = result.data_end_time;
                        Some(Kind::Renotify)
                    } else {
                        None
                    }
                }
                (Some(_), false) => Some(Kind::Recovery),
                (None, false) => None,
            };
            let Some(kind) = kind else { continue };
            let episode_start = match kind {
                Kind::Recovery => self
                    .open
                    .remove(&key)
                    .map_or(result.data_start_time, |e| e.start),
                _ => self
                    .open
                    .get(&key)
                    .map_or(result.data_start_time, |e| e.start),
            };
            notifications.push(notification(monitor, result, kind, episode_start));
        }
        notifications
    }
}

fn notification(
    monitor: &MonitorSpec,
    result: &ResultDoc,
    kind: Kind,
    episode_start: i64,
) -> Notification {
    let message = match kind {
        Kind::Alert => format!(
            "Monitor {} just entered alert status. Please investigate the issue.",
            monitor.name
        ),
        Kind::Renotify => format!(
            "Monitor {} is still in alert status. Please investigate the issue.",
            monitor.name
        ),
        Kind::Recovery => format!(
            "Monitor {} has recovered: {} is back to normal.",
            monitor.name, result.detector_name
        ),
    };
    Notification {
        kind,
        monitor: monitor.name.clone(),
        detector: result.detector_name.clone(),
        field: result
            .feature_data
            .first()
            .map(|f| f.feature_name.clone())
            .unwrap_or_default(),
        severity: monitor.severity,
        grade: result.anomaly_grade,
        confidence: result.confidence,
        value: result.value,
        expected: result.expected_value,
        interval_start: result.data_start_time,
        interval_end: result.data_end_time,
        episode_start,
        message,
        channels: monitor.channels.clone(),
    }
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The generic webhook's JSON body.
pub fn webhook_body(n: &Notification) -> Value {
    json!({
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
    })
}

/// A Slack incoming-webhook payload.
pub fn slack_body(n: &Notification) -> Value {
    let icon = match n.kind {
        Kind::Recovery => ":white_check_mark:",
        _ => ":rotating_light:",
    };
    let details = format!(
        "*Detector* {} · *Field* {} · *Severity* {}\n*Grade* {:.2} · *Confidence* {:.2} · *Value* {} (expected {:.1})\n*Interval* {} – {}",
        n.detector,
        n.field,
        n.severity,
        n.grade,
        n.confidence,
        n.value,
        n.expected,
        rfc3339(n.interval_start),
        rfc3339(n.interval_end)
    );
    json!({
        "text": format!("{icon} {}", n.message),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", n.message)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details}}
        ]
    })
}

/// The e-mail form of a notification: subject and plain-text body.
pub fn email_text(n: &Notification) -> (String, String) {
    let subject = format!("[logwarden] severity {}: {}", n.severity, n.message);
    let body = format!(
        "{}\n\nMonitor:     {}\nDetector:    {}\nField:       {}\nSeverity:    {}\nGrade:       {:.2}\nConfidence:  {:.2}\nValue:       {} (expected {:.1})\nInterval:    {} – {}\nEpisode since {}\n",
        n.message,
        n.monitor,
        n.detector,
        n.field,
        n.severity,
        n.grade,
        n.confidence,
        n.value,
        n.expected,
        rfc3339(n.interval_start),
        rfc3339(n.interval_end),
        rfc3339(n.episode_start),
    );
    (subject, body)
}

/// An SMTP channel, ready to send.
#[derive(Clone)]
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer for an e-mail channel; the error names what is wrong (never a password).
    pub fn new(spec: &crate::spec::EmailSpec) -> Result<Self, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let mut builder = match spec.tls {
            crate::spec::SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&spec.host)
            }
            crate::spec::SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&spec.host)
                    .map_err(|e| format!("SMTP host {}: {e}", spec.host))?
            }
            crate::spec::SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&spec.host)
                .map_err(|e| format!("SMTP host {}: {e}", spec.host))?,
        }
        .port(spec.port)
        .timeout(Some(Duration::from_secs(15)));
        if spec.allow_insecure && spec.tls == crate::spec::SmtpTls::None && spec.username.is_some()
        {
            tracing::warn!(host = %spec.host, "email allow_insecure: the SMTP login goes over a plaintext connection.");
        }
        if let Some(username) = &spec.username {
            let password = spec
                .password
                .as_ref()
                .map(crate::spec::Secret::resolve)
                .transpose()?
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.resolve()?, password));
        }
        let parse = |address: &str| {
            address
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("address `{address}`: {e}"))
        };
        Ok(Self {
            transport: builder.build(),
            from: parse(&spec.from)?,
            to: spec.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
        })
    }

    /// Sends one notification.
    pub async fn send(&self, subject: &str, body: &str) -> Result<(), String> {
        use lettre::AsyncTransport;
        let mut message = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A channel ready to send: its kind and resolved address.
#[derive(Clone)]
pub enum Target {
    /// A generic webhook URL.
    Webhook(String),
    /// A Slack incoming-webhook URL.
    Slack(String),
    /// An SMTP server and addresses.
    Email(Box<Mailer>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook(_) => f.write_str("Webhook(<redacted>)"),
            Self::Slack(_) => f.write_str("Slack(<redacted>)"),
            Self::Email(_) => f.write_str("Email(<redacted>)"),
        }
    }
}

/// Resolves every channel's secret; the error names the channel and the missing source.
pub fn targets(channels: &[ChannelSpec]) -> Result<BTreeMap<String, Target>, String> {
    let mut targets = BTreeMap::new();
    for channel in channels {
        let target = if let Some(secret) = &channel.webhook {
            Target::Webhook(
                secret
                    .resolve()
                    .map_err(|e| format!("channel `{}` (webhook): {e}", channel.name))?,
            )
        } else if let Some(secret) = &channel.slack {
            Target::Slack(
                secret
                    .resolve()
                    .map_err(|e| format!("channel `{}` (slack): {e}", channel.name))?,
            )
        } else if let Some(email) = &channel.email {
            Target::Email(Box::new(
                Mailer::new(email)
                    .map_err(|e| format!("channel `{}` (email): {e}", channel.name))?,
            ))
        } else {
            continue;
        };
        targets.insert(channel.name.clone(), target);
    }
    Ok(targets)
}

/// Delivery counters, by channel.
#[derive(Debug, Clone)]
pub struct DeliveryMetrics {
    /// Notifications delivered.
    pub sent: prometheus::IntCounterVec,
    /// Delivery attempts that failed (each is retried).
    pub failed: prometheus::IntCounterVec,
    /// Notifications waiting to be delivered.
    pub pending: prometheus::IntGauge,
}

/// One notification to one channel, with its retry state.
struct Pending {
    channel: String,
    body: Value,
    monitor: String,
    attempt: u32,
    due: tokio::time::Instant,
}

/// Delivers notifications until `shutdown`, retrying failures with backoff (capped at 60 s);
/// a failed delivery is logged and counted, never dropped while the service runs.
pub async fn deliver(
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Notification>,
    targets: BTreeMap<String, Target>,
    metrics: DeliveryMetrics,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // 1 s doubling to 60 s: a receiver that is down is often down for minutes.
    let backoff = pipeline::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let next_due = queue.iter().map(|p| p.due).min();
        tokio::select! {
            () = shutdown.cancelled() => break,
            received = inbox.recv() => match received {
                Some(notification) => {
                    for channel in &notification.channels {
                        let body = match targets.get(channel) {
                            Some(Target::Slack(_)) => slack_body(&notification),
                            Some(Target::Email(_)) => {
                                let (subject, text) = email_text(&notification);
                                json!({"subject": subject, "text": text})
                            }
                            _ => webhook_body(&notification),
                        };
                        queue.push_back(Pending {
                            channel: channel.clone(),
                            body,
                            monitor: notification.monitor.clone(),
                            attempt: 0,
                            due: tokio::time::Instant::now(),
                        });
                    }
                }
                None => break,
            },
            () = sleep_until(next_due), if next_due.is_some() => {
                let now = tokio::time::Instant::now();
                let mut still = VecDeque::with_capacity(queue.len());
                while let Some(mut pending) = queue.pop_front() {
                    if pending.due > now {
                        still.push_back(pending);
                        continue;
                    }
                    let result = match targets.get(&pending.channel) {
                        Some(Target::Webhook(url) | Target::Slack(url)) => http
                            .post(url)
                            .json(&pending.body)
                            .send()
                            .await
                            .and_then(reqwest::Response::error_for_status)
                            .map(drop)
                            .map_err(|e| e.without_url().to_string()),
                        Some(Target::Email(mailer)) => {
                            mailer
                                .send(
                                    pending.body["subject"].as_str().unwrap_or_default(),
                                    pending.body["text"].as_str().unwrap_or_default(),
                                )
                                .await
                        }
                        None => Err(format!("no channel named {}", pending.channel)),
                    };
                    match result {
                        Ok(()) => {
                            metrics.sent.with_label_values(&[&pending.channel]).inc();
                            tracing::info!(channel = %pending.channel, monitor = %pending.monitor, "Alert delivered.");
                        }
                        Err(err) => {
                            metrics.failed.with_label_values(&[&pending.channel]).inc();
                            pending.attempt += 1;
                            let delay = backoff.delay(pending.attempt, &mut rand::rng());
                            tracing::warn!(channel = %pending.channel, monitor = %pending.monitor, attempt = pending.attempt, retry_in = ?delay, %err, "Alert delivery failed; retrying.");
                            pending.due = now + delay;
                            still.push_back(pending);
                        }
                    }
                }
                queue = still;
            }
        }
        metrics.pending.set(queue.len() as i64);
    }
    if !queue.is_empty() {
        tracing::warn!(
            undelivered = queue.len(),
            "Stopping with alerts not yet delivered."
        );
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FeatureData;

    fn result(detector: &str, start: i64, grade: f64, confidence: f64) -> ResultDoc {
        ResultDoc {
            detector_id: detector.into(),
            detector_name: detector.into(),
            feature_data: vec![FeatureData {
                feature_id: "sum_UNK_source".into(),
                feature_name: "sum_UNK_source".into(),
                data: 30.0,
            }],
            data_start_time: start,
            data_end_time: start + 60_000,
            execution_start_time: 0,
            execution_end_time: 0,
            anomaly_score: 2.0,
            anomaly_grade: grade,
            confidence,
            expected_value: 0.3,
            value: 30.0,
            events: 100,
            rule: None,
            task_id: None,
        }
    }

    #[test]
    fn one_alert_per_episode_then_a_recovery() {
        let spec = Spec::default_spec().expect("spec");
        let mut monitors = Monitors::new(&spec);
        let d = "source-anomaly-detector";
        let kinds = |n: Vec<Notification>| n.iter().map(|n| n.kind).collect::<Vec<_>>();
        assert!(monitors.evaluate(&result(d, 0, 0.0, 1.0)).is_empty());
        let first = monitors.evaluate(&result(d, 60_000, 0.8, 1.0));
        assert_eq!(kinds(first.clone()), [Kind::Alert]);
        assert_eq!(
            first[0].message,
            "Monitor UNK_source-Monitor just entered alert status. Please investigate the issue."
        );
        assert_eq!(first[0].channels, ["security-team"]);
        for minute in 2..11 {
            assert!(
                monitors
                    .evaluate(&result(d, minute * 60_000, 0.6, 1.0))
                    .is_empty(),
                "minute {minute}: no second alert in one episode"
            );
        }
        // 10 minutes of data time after the alerted interval ended: a re-notification.
        assert_eq!(
            kinds(monitors.evaluate(&result(d, 11 * 60_000, 0.6, 1.0))),
            [Kind::Renotify]
        );
        let recovery = monitors.evaluate(&result(d, 12 * 60_000, 0.0, 1.0));
        assert_eq!(kinds(recovery.clone()), [Kind::Recovery]);
        assert_eq!(recovery[0].episode_start, 60_000);
        assert_eq!(
            kinds(monitors.evaluate(&result(d, 13 * 60_000, 0.9, 1.0))),
            [Kind::Alert],
            "a new episode alerts again"
        );
    }

    #[test]
    fn low_confidence_historical_and_other_detectors_do_not_alert() {
        let spec = Spec::default_spec().expect("spec");
        let mut monitors = Monitors::new(&spec);
        assert!(
            monitors
                .evaluate(&result("source-anomaly-detector", 0, 0.9, 0.3))
                .is_empty()
        );
        let mut historical = result("source-anomaly-detector", 0, 0.9, 1.0);
        historical.task_id = Some("historical-1".into());
        assert!(monitors.evaluate(&historical).is_empty());
        let other = monitors.evaluate(&result("country-anomaly-detector", 0, 0.9, 1.0));
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].monitor, "UNK_country-Monitor");
    }

    #[test]
    fn bodies_name_everything_a_responder_needs() {
        let spec = Spec::default_spec().expect("spec");
        let mut monitors = Monitors::new(&spec);
        let n = monitors
            .evaluate(&result(
                "source-anomaly-detector",
                1_795_391_400_000,
                0.8,
                0.9,
            ))
            .remove(0);
        let body = webhook_body(&n);
        assert_eq!(body["monitor"], "UNK_source-Monitor");
        assert_eq!(body["detector"], "source-anomaly-detector");
        assert_eq!(body["field"], "sum_UNK_source");
        assert_eq!(body["severity"], 1);
        assert_eq!(body["kind"], "alert");
        assert_eq!(body["interval"]["start"], "2026-11-22T23:50:00.000Z");
        let slack = slack_body(&n);
        assert!(
            slack["text"]
                .as_str()
                .expect("text")
                .contains("UNK_source-Monitor")
        );
    }
}
