//! Alerting: monitors turn results into notifications, an outbox keeps each one until its channel
//! has it, and one worker per channel delivers them to webhooks, Slack and e-mail (SMTP).
//!
//! - `monitors` (pure): episodes, and the notifications they cause, each with a stable
//!   idempotency key derived from event time ([`idempotency_key`]).
//! - `outbox` (pure): pending entries per channel and delivered marks; bounded, and part of the
//!   monitors' state, so the stream's checkpoint that records an episode also records its
//!   pending alert, and whatever makes that checkpoint atomic covers the outbox too. No second
//!   store.
//! - `payloads` (pure): what each channel receives; every payload carries the key.
//! - `channels`: resolving each channel's secret once, and one delivery attempt.
//! - `delivery`: [`Alerting`], which the service's loop owns: it evaluates results, hands
//!   new entries to the channel workers, settles their outcomes in the outbox, and at shutdown
//!   drains what it can before the final checkpoint.
//! - `record`: [`DeliveryLog`], the record of each delivery (which notification, which channel,
//!   when) in the alerts index, best-effort, for `evaluate`'s time to delivery.
//!
//! The guarantee is at least once, with a stable key: what the outbox holds is sent until a
//! receiver accepts it, across restarts and crashes, and a notification is re-sent (same key)
//! only when the process stopped between a receiver's acceptance and the checkpoint recording
//! it. A receiver that deduplicates by key sees each notification exactly once.

mod channels;
mod delivery;
mod monitors;
mod outbox;
mod payloads;
mod record;

pub use channels::{Mailer, Target, targets};
pub use delivery::{ATTEMPT_TIMEOUT, Alerting, DeliveryMetrics, Outcome, SHUTDOWN_DRAIN};
pub use monitors::{Kind, Monitors, Notification, idempotency_key};
pub use outbox::{CAPACITY, DELIVERED_MARKS, Entry, Outbox, Recorded};
pub use payloads::{
    EMAIL_KEY_HEADER, IDEMPOTENCY_HEADER, email_text, message_id, slack_body, webhook_body,
};
pub use record::{CLOSE_DEADLINE, DeliveryLog, QUEUE};
