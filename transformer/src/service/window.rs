//! The outputs in flight, as plain bookkeeping: which ones were sent, in what order they settle,
//! which one is being sent again, and the buffers they were written into, kept for reuse.
//!
//! An output must stay readable until the broker acknowledges it (a failed delivery is sent
//! again from it), so its bytes cannot simply be borrowed from the input or from a buffer the
//! next record overwrites. Instead every output lives in an [`Output`] that the window hands
//! out, the transform writes into and the producer reads from; once the output settles its
//! buffers come back to the window for the next record. With the window warm (as many outputs
//! as fit in flight, each as large as the records), a record costs no allocation here. The
//! delivery handle `D` is a type parameter so the tests can play every interleaving without a
//! broker.

use std::collections::VecDeque;

use rdkafka::message::OwnedHeaders;

/// Where an output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The `enriched` topic.
    Enriched,
    /// The `dead-letter` topic.
    DeadLetter,
}

/// One output record, written in place: its buffers are reused from record to record.
#[derive(Debug)]
pub(crate) struct Output {
    /// The topic it goes to.
    pub(crate) destination: Destination,
    /// The record's key (meaningful only when `has_key`).
    pub(crate) key: Vec<u8>,
    /// Whether the record has a key (an input without one gives an output without one).
    pub(crate) has_key: bool,
    /// The record's value.
    pub(crate) payload: Vec<u8>,
    /// Headers (dead letters only).
    pub(crate) headers: Option<OwnedHeaders>,
    /// The input's partition and offset: named by a dead letter made of this output when Kafka
    /// refuses it for good.
    pub(crate) source: (i32, i64),
}

impl Output {
    fn empty() -> Self {
        Self {
            destination: Destination::Enriched,
            key: Vec::new(),
            has_key: false,
            payload: Vec::new(),
            headers: None,
            source: (0, 0),
        }
    }

    /// The key to send, if any.
    pub(crate) fn key(&self) -> Option<&[u8]> {
        self.has_key.then_some(self.key.as_slice())
    }
}

/// An output sent and not yet settled.
#[derive(Debug)]
pub(crate) struct Pending<T, D> {
    /// What was sent, kept to send it again.
    pub(crate) output: Output,
    /// The caller's tag (the transformer's: the input's partition and offset).
    pub(crate) tag: T,
    /// The delivery under way; `None` after a failure until it is sent again. (A settle may be
    /// dropped mid-retry, e.g. in a `select!`, and called again: it must then send first.)
    pub(crate) delivery: Option<D>,
}

/// Outputs in flight, oldest first, and spare buffers.
#[derive(Debug)]
pub(crate) struct Window<T, D> {
    in_flight: VecDeque<Pending<T, D>>,
    spare: Vec<Output>,
    max_in_flight: usize,
}

impl<T, D> Window<T, D> {
    /// A window of at most `max_in_flight` outputs (at least one).
    pub(crate) fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            in_flight: VecDeque::with_capacity(max_in_flight),
            spare: Vec::with_capacity(max_in_flight),
            max_in_flight,
        }
    }

    /// An output to write the next record into: the buffers of a settled one when there is
    /// one (cleared, capacity kept), else new ones.
    pub(crate) fn take(&mut self) -> Output {
        match self.spare.pop() {
            Some(mut output) => {
                output.destination = Destination::Enriched;
                output.key.clear();
                output.has_key = false;
                output.payload.clear();
                output.headers = None;
                output
            }
            None => Output::empty(),
        }
    }

    /// Gives back an output that was taken but not sent.
    pub(crate) fn give_back(&mut self, output: Output) {
        self.spare.push(output);
    }

    /// Records `output`, sent with the handle `delivery`, as the newest in flight.
    pub(crate) fn push(&mut self, output: Output, tag: T, delivery: D) {
        self.in_flight.push_back(Pending {
            output,
            tag,
            delivery: Some(delivery),
        });
    }

    /// The oldest output in flight.
    pub(crate) fn front_mut(&mut self) -> Option<&mut Pending<T, D>> {
        self.in_flight.front_mut()
    }

    /// Settles the oldest output (it was acknowledged): returns its tag and keeps its buffers.
    pub(crate) fn settle_front(&mut self) -> Option<T> {
        let pending = self.in_flight.pop_front()?;
        self.spare.push(pending.output);
        Some(pending.tag)
    }

    /// Outputs sent and not yet settled.
    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether the window is full: settle before sending more.
    pub(crate) fn is_full(&self) -> bool {
        self.in_flight.len() >= self.max_in_flight
    }

    /// Whether the oldest output failed and waits to be sent again: take no new input until it
    /// settles.
    pub(crate) fn is_retrying(&self) -> bool {
        self.in_flight
            .front()
            .is_some_and(|pending| pending.delivery.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(window: &mut Window<u32, &'static str>, tag: u32, payload: &[u8]) {
        let mut output = window.take();
        output.payload.extend_from_slice(payload);
        window.push(output, tag, "sent");
    }

    #[test]
    fn outputs_settle_in_send_order_and_a_failed_one_stays_first() {
        let mut window = Window::new(3);
        for tag in 1..=3 {
            send(&mut window, tag, b"x");
        }
        assert!(window.is_full() && !window.is_retrying());
        // The oldest fails: it stays first, and nothing behind it settles.
        if let Some(front) = window.front_mut() {
            front.delivery = None;
        }
        assert!(window.is_retrying());
        assert_eq!(window.len(), 3);
        // Sent again and acknowledged: it settles first, then the others in order.
        if let Some(front) = window.front_mut() {
            assert_eq!(
                (front.tag, front.output.payload.as_slice()),
                (1, b"x".as_slice())
            );
            front.delivery = Some("sent again");
        }
        assert!(!window.is_retrying());
        let settled: Vec<u32> = std::iter::from_fn(|| window.settle_front()).collect();
        assert_eq!(settled, [1, 2, 3]);
        assert!(window.is_empty() && !window.is_full());
        assert_eq!(window.settle_front(), None);
    }

    #[test]
    fn settled_buffers_are_reused_cleared_with_their_capacity() {
        let mut window: Window<u32, &str> = Window::new(2);
        let mut output = window.take();
        output.payload.extend_from_slice(&[b'a'; 600]);
        output.key.extend_from_slice(b"key");
        output.has_key = true;
        output.destination = Destination::DeadLetter;
        output.headers = Some(OwnedHeaders::new());
        window.push(output, 7, "sent");
        assert_eq!(window.settle_front(), Some(7));
        let reused = window.take();
        assert!(reused.payload.is_empty() && reused.payload.capacity() >= 600);
        assert_eq!((reused.key(), reused.headers.is_none()), (None, true));
        // A taken output given back unsent is the next one taken.
        window.give_back(reused);
        assert!(window.take().payload.capacity() >= 600);
        assert_eq!(window.take().payload.capacity(), 0);
    }
}
