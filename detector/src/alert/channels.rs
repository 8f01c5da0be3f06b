//! The channels a notification goes to: a generic webhook, a Slack incoming webhook, e-mail over
//! SMTP. [`targets`] resolves each channel's secret once at start-up (the error names the channel
//! and the missing source, never the secret); [`Target::send`] makes one attempt. Retries,
//! ordering and timeouts are the delivery workers' job.

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};

use super::monitors::Notification;
use super::payloads::{
    EMAIL_KEY_HEADER, IDEMPOTENCY_HEADER, email_text, message_id, slack_body, webhook_body,
};
use crate::spec::ChannelSpec;

/// The e-mail header that carries the key.
const EMAIL_KEY: HeaderName = HeaderName::new_from_ascii_str(EMAIL_KEY_HEADER);

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

    /// The message for `n`: its text, and its key as `Message-ID` and in its own header.
    pub fn message(&self, n: &Notification) -> Result<lettre::Message, String> {
        let (subject, body) = email_text(n);
        let mut message = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&n.key, self.from.email.as_ref())))
            .raw_header(HeaderValue::new(EMAIL_KEY, n.key.clone()));
        for to in &self.to {
            message = message.to(to.clone());
        }
        message
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("building the message: {e}"))
    }

    /// Sends one notification.
    pub async fn send(&self, n: &Notification) -> Result<(), String> {
        use lettre::AsyncTransport;
        self.transport
            .send(self.message(n)?)
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

impl Target {
    /// One attempt to deliver `n`: a 2xx answer (or the SMTP server's acceptance) is success;
    /// the error never contains the URL (it holds a token).
    pub async fn send(&self, http: &reqwest::Client, n: &Notification) -> Result<(), String> {
        let (url, body) = match self {
            Self::Webhook(url) => (url, webhook_body(n)),
            Self::Slack(url) => (url, slack_body(n)),
            Self::Email(mailer) => return mailer.send(n).await,
        };
        http.post(url)
            .header(IDEMPOTENCY_HEADER, &n.key)
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map(drop)
            .map_err(|e| e.without_url().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::monitors::{Monitors, tests::result};
    use crate::spec::{EmailSpec, SmtpTls, Spec};

    #[test]
    fn the_email_carries_the_key_as_message_id_and_header() -> Result<(), Box<dyn std::error::Error>>
    {
        let mailer = Mailer::new(&EmailSpec {
            host: "127.0.0.1".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "logwarden <alerts@example.test>".into(),
            to: vec!["security-team@example.test".into()],
            allow_insecure: false,
        })?;
        let mut monitors = Monitors::new(&Spec::default_spec()?);
        let n = monitors
            .evaluate(&result("source-anomaly-detector", 60_000, 0.8, 0.9))
            .entries
            .remove(0)
            .notification;
        let text = String::from_utf8(mailer.message(&n)?.formatted())?;
        for header in [
            format!("Message-ID: <{}@example.test>\r\n", n.key),
            format!("X-Logwarden-Idempotency-Key: {}\r\n", n.key),
            "To: security-team@example.test\r\n".to_owned(),
        ] {
            assert!(text.contains(&header), "`{header}` missing from:\n{text}");
        }
        Ok(())
    }
}
