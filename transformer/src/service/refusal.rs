//! What the stage does with an output Kafka will not take: which produce errors are permanent
//! (retrying cannot help, so the output becomes a dead letter and the partition moves on), and
//! how a dead letter is written so that it always fits under the size limit.
//!
//! A dead letter normally carries its input untouched. An input too large to produce (it is over
//! `transformer.max_record_bytes`, or its dead letter would be) is cut to its first
//! [`TRUNCATED_BYTES`], and the `logwarden.original_bytes` header says how large it was; the
//! whole record stays readable on the input topic at the offset the headers name. No IO here.

use pipeline::wire::DeadLetter;
use rdkafka::types::RDKafkaErrorCode;

use super::window::{Destination, Output};

/// How much of an input too large to produce a dead letter keeps.
pub(crate) const TRUNCATED_BYTES: usize = 64 * 1024;

/// Room for a dead letter's headers (reason, detail, stage, source) above the limit on value
/// and key: the producer's `message.max.bytes` is the limit plus this.
pub(crate) const HEADERS_ROOM: usize = 4 * 1024;

/// Whether a produce error (at enqueue or in a delivery report) is permanent for this record:
/// the record itself (its size, its form) or the topic's authorization is at fault, so sending
/// it again fails again. Everything else (a full queue, brokers down, timeouts, leaders moving)
/// passes, and is retried.
pub(crate) fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::InvalidTopic
            | C::TopicAuthorizationFailed
            | C::BadMessage
    )
}

/// Writes `input` into `output` (taken empty or to be reused) as the dead letter `dead`: the
/// whole input when it and the key fit under `limit`, else as much of its first
/// [`TRUNCATED_BYTES`] as fits, with the original size in a header.
pub(crate) fn write_dead_letter(
    output: &mut Output,
    input: &[u8],
    dead: &DeadLetter,
    limit: usize,
) {
    output.destination = Destination::DeadLetter;
    output.payload.clear();
    let room = limit.saturating_sub(output.key().map_or(0, <[u8]>::len));
    if input.len() <= room {
        output.payload.extend_from_slice(input);
        output.headers = Some(dead.to_headers());
    } else {
        let kept = input.len().min(TRUNCATED_BYTES).min(room);
        output.payload.extend_from_slice(&input[..kept]);
        output.headers = Some(dead.to_truncated_headers(input.len()));
    }
}

/// Cuts a dead letter Kafka refused as too large down to [`TRUNCATED_BYTES`]; `false` when it
/// is already that small (then nothing more can be done with it).
pub(crate) fn truncate_dead_letter(output: &mut Output, dead: &DeadLetter) -> bool {
    if output.payload.len() <= TRUNCATED_BYTES {
        return false;
    }
    let original = DeadLetter::original_bytes(
        output
            .headers
            .as_ref()
            .unwrap_or(&rdkafka::message::OwnedHeaders::new()),
    )
    .unwrap_or(output.payload.len());
    output.payload.truncate(TRUNCATED_BYTES);
    output.headers = Some(dead.to_truncated_headers(original));
    true
}

#[cfg(test)]
mod tests {
    use pipeline::wire::{DeadLetterReason, SourcePosition};

    use super::super::window::Window;
    use super::*;

    fn dead() -> DeadLetter {
        DeadLetter {
            reason: DeadLetterReason::Oversized,
            detail: "the record is big".into(),
            stage: "transformer".into(),
            source: SourcePosition {
                topic: "raw".into(),
                partition: 1,
                offset: 9,
            },
        }
    }

    #[test]
    fn record_errors_are_permanent_and_broker_trouble_passes() {
        use RDKafkaErrorCode as C;
        for code in [
            C::MessageSizeTooLarge,
            C::InvalidRecord,
            C::TopicAuthorizationFailed,
            C::InvalidMessage,
        ] {
            assert!(is_permanent(code), "{code:?}");
        }
        for code in [
            C::QueueFull,
            C::MessageTimedOut,
            C::AllBrokersDown,
            C::NotLeaderForPartition,
            C::RequestTimedOut,
            C::NotEnoughReplicas,
            C::BrokerTransportFailure,
            C::UnknownTopicOrPartition,
        ] {
            assert!(!is_permanent(code), "{code:?}");
        }
    }

    #[test]
    fn a_dead_letter_keeps_its_input_whole_unless_it_cannot_fit() {
        let mut window: Window<u8, ()> = Window::new(2);
        let mut output = window.take();
        write_dead_letter(&mut output, b"{\"a\":1}", &dead(), 1_000_000);
        assert_eq!(output.destination, Destination::DeadLetter);
        assert_eq!(output.payload, b"{\"a\":1}");
        let headers = output.headers.as_ref().expect("headers");
        assert_eq!(DeadLetter::from_headers(headers), Some(dead()));
        assert_eq!(DeadLetter::original_bytes(headers), None);

        let big = vec![b'x'; 1_200_000];
        write_dead_letter(&mut output, &big, &dead(), 1_000_000);
        assert_eq!(output.payload.len(), TRUNCATED_BYTES);
        let headers = output.headers.as_ref().expect("headers");
        assert_eq!(DeadLetter::original_bytes(headers), Some(1_200_000));
        assert_eq!(DeadLetter::from_headers(headers), Some(dead()));
        assert!(!truncate_dead_letter(&mut output, &dead()), "already small");

        // Over a small limit: as much as fits under it.
        write_dead_letter(&mut output, &big, &dead(), 10_000);
        assert_eq!(output.payload.len(), 10_000);

        // A whole dead letter the broker still refused is cut, once.
        let near = vec![b'y'; 999_000];
        write_dead_letter(&mut output, &near, &dead(), 10_000_000);
        assert_eq!(output.payload.len(), 999_000);
        assert!(truncate_dead_letter(&mut output, &dead()));
        let headers = output.headers.as_ref().expect("headers");
        assert_eq!(DeadLetter::original_bytes(headers), Some(999_000));
    }
}
