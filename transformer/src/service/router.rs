//! From an input record to its output: the enriched record, or the input untouched as a dead
//! letter with the reason in headers. No IO: the service feeds it consumed messages and sends
//! what it writes.
//!
//! It writes into an [`Output`] whose buffers are reused, borrows the input's payload and key
//! where it reads them, and keeps one [`SourcePosition`] whose topic is copied only when it
//! changes, so an enriched record costs no allocation (a test counts them). A dead letter
//! allocates its reason's detail and headers: that is the rare path.

use std::time::Instant;

use pipeline::wire::{DeadLetter, DeadLetterReason, SOURCE_HEADER, Source, SourcePosition};
use rdkafka::Message;
use rdkafka::message::Headers;

use super::STAGE;
use super::metrics::Metrics;
use super::refusal::write_dead_letter;
use super::window::{Destination, Output};
use crate::rules::CompiledRules;
use crate::transform::Rejection;

/// Turns inputs into outputs; apart from the consumer so both can be borrowed at once.
#[derive(Debug)]
pub(crate) struct Router {
    rules: CompiledRules,
    metrics: Metrics,
    /// The position of the record being routed, for its event id and dead-letter headers.
    source: SourcePosition,
    /// The largest output (value and key) the stage produces: `transformer.max_record_bytes`.
    limit: usize,
}

impl Router {
    /// A router applying `rules`, counting in `metrics`.
    pub(crate) fn new(rules: CompiledRules, metrics: Metrics) -> Self {
        Self {
            limit: rules.max_record_bytes(),
            rules,
            metrics,
            source: SourcePosition {
                topic: String::new(),
                partition: 0,
                offset: 0,
            },
        }
    }

    /// Writes `message` untouched into `output` as the dead letter `dead` (Kafka refused its
    /// output for good in an aborted transaction: this time it goes straight to `dead-letter`).
    pub(crate) fn refused(
        &mut self,
        message: &impl Message,
        output: &mut Output,
        dead: &DeadLetter,
    ) {
        self.metrics.records_in.inc();
        self.metrics
            .dead_letters
            .with_label_values(&[dead.reason.as_str()])
            .inc();
        if let Some(key) = message.key() {
            output.key.extend_from_slice(key);
            output.has_key = true;
        }
        output.source = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        write_dead_letter(output, payload, dead, self.limit);
    }

    /// Writes the output for `message` into `output` (taken empty from the window).
    pub(crate) fn route(&mut self, message: &impl Message, output: &mut Output) {
        self.metrics.records_in.inc();
        let payload = message.payload().unwrap_or_default();
        if self.source.topic != message.topic() {
            self.source.topic.clear();
            self.source.topic.push_str(message.topic());
        }
        self.source.partition = message.partition();
        self.source.offset = message.offset();
        output.source = (message.partition(), message.offset());
        if let Some(key) = message.key() {
            output.key.extend_from_slice(key);
            output.has_key = true;
        }
        let started = Instant::now();
        let limit = self.limit;
        let result = source_of(message)
            .and_then(|source| {
                self.rules
                    .apply_source(source, payload, &self.source, &mut output.payload)
            })
            .and_then(|()| {
                // Enrichment adds fields: a record under the limit can come out over it, and
                // Kafka would refuse it. Checked here, before producing.
                let size = output.payload.len() + output.key().map_or(0, <[u8]>::len);
                if size > limit {
                    return Err(Rejection::new(
                        DeadLetterReason::Oversized,
                        format!(
                            "the enriched record is {size} bytes, over the limit of {limit} bytes \
                             (transformer.max_record_bytes)"
                        ),
                    ));
                }
                Ok(())
            });
        self.metrics
            .transform_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.metrics.records_out.inc();
                output.destination = Destination::Enriched;
            }
            Err(rejection) => {
                self.metrics
                    .dead_letters
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                tracing::debug!(reason = %rejection.reason, detail = %rejection.detail, partition = self.source.partition, offset = self.source.offset, "Dead letter.");
                let dead = DeadLetter {
                    reason: rejection.reason,
                    detail: rejection.detail,
                    stage: STAGE.to_owned(),
                    source: self.source.clone(),
                };
                write_dead_letter(output, payload, &dead, limit);
            }
        }
    }
}

/// The source a record's `logwarden-source` header names (`None` without the header: the
/// seed's shape), or the `no_rules` rejection of a header naming no known source.
fn source_of(message: &impl Message) -> Result<Option<Source>, Rejection> {
    let Some(value) = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == SOURCE_HEADER)
            .map(|header| header.value.unwrap_or_default())
    }) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value);
    Source::parse(&text)
        .map(Some)
        .ok_or_else(|| Rejection::unknown_source(&text))
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::{Headers, OwnedMessage};

    use super::super::window::Window;
    use super::*;

    fn router() -> Router {
        let metrics =
            Metrics::register(&prometheus::Registry::new()).expect("metrics register once");
        Router::new(
            CompiledRules::default_rules().expect("the default rules compile"),
            metrics,
        )
    }

    fn message(payload: &str, key: Option<&str>, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.as_bytes().to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            "raw".to_owned(),
            Timestamp::NotAvailable,
            2,
            offset,
            None,
        )
    }

    fn record(action: &str) -> String {
        format!(
            r#"{{"timestamp":1700000000000,"action":"{action}","httpSourceName":"ALB","httpStatus":"200","httpRequest":{{"country":"US","httpMethod":"GET"}}}}"#
        )
    }

    #[test]
    fn records_become_enriched_outputs_or_untouched_dead_letters() {
        let mut router = router();
        let mut window: Window<i64, ()> = Window::new(4);

        let mut output = window.take();
        router.route(&message(&record("BLOCK"), Some("k1"), 41), &mut output);
        assert_eq!(output.destination, Destination::Enriched);
        assert_eq!(output.key(), Some(b"k1".as_slice()));
        let enriched: serde_json::Value =
            serde_json::from_slice(&output.payload).expect("the output is JSON");
        assert_eq!(enriched["B_action"], 1);
        assert_eq!(enriched["event_id"], "raw-2-41");
        assert!(output.headers.is_none());

        let mut output = window.take();
        let bad = r#"{"timestamp":1700000000000}"#;
        router.route(&message(bad, None, 42), &mut output);
        assert_eq!(output.destination, Destination::DeadLetter);
        assert_eq!(
            (output.key(), output.payload.as_slice()),
            (None, bad.as_bytes())
        );
        let headers = output.headers.as_ref().expect("dead letters carry headers");
        let dead = DeadLetter::from_headers(headers).expect("complete headers");
        assert_eq!(dead.reason, DeadLetterReason::MissingField);
        assert_eq!(dead.detail, "action is missing");
        assert_eq!(
            (dead.source.topic.as_str(), dead.source.offset),
            ("raw", 42)
        );
        assert_eq!(headers.count(), 6);
    }

    #[test]
    fn an_enriched_record_costs_no_allocation_once_the_window_is_warm() {
        let mut router = router();
        let mut window: Window<i64, ()> = Window::new(8);
        let messages: Vec<OwnedMessage> = (0..64)
            .map(|i| message(&record(["ALLOW", "BLOCK"][i % 2]), Some("key"), i as i64))
            .collect();
        let mut run = |messages: &[OwnedMessage]| {
            for message in messages {
                if window.is_full() {
                    window.settle_front();
                }
                let mut output = window.take();
                router.route(message, &mut output);
                window.push(output, message.offset(), ());
            }
        };
        // Warm up: the window's buffers, the metrics' label lookups.
        run(&messages);
        let counted = allocation_counter::measure(|| run(&messages));
        assert_eq!(counted.count_total, 0, "{counted:?}");
    }
}
