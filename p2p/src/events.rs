//! The queues from the swarm task to the node, one per kind of traffic, so that a flood of one
//! kind cannot crowd out another: consensus gossip, transaction gossip, and the rest (sync
//! requests, peers coming and going). [`Events`] reads them consensus first. Each is bounded in
//! events and the two gossip queues also in the bytes they hold, since a gossip message may be
//! thousands of times the size of another: a queue of 4,096 transaction messages of 131 KB
//! would otherwise hold half a gigabyte.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::{
    Event, Topic, CONSENSUS_QUEUE_BYTES_MAX, CONSENSUS_QUEUE_MAX, EVENTS_QUEUE_MAX, TRANSACTIONS_QUEUE_BYTES_MAX,
    TRANSACTIONS_QUEUE_MAX,
};

/// What the network tells the node, from [`crate::start`]. Each kind of event has its own
/// bounded queue, which the swarm task never waits on: when one is full its events are dropped
/// (gossip is ignored, a request goes unanswered), and the others are unaffected.
#[derive(Debug)]
pub struct Events {
    consensus: Receiving,
    other: Receiving,
    transactions: Receiving,
}

impl Events {
    /// The next event, by priority: consensus gossip, then sync requests and peer events, then
    /// transaction gossip. A node that reads only through this method cannot be kept from its
    /// consensus messages by a flood of transactions. `None` once the network has stopped.
    /// Cancel-safe: no event is lost if the future is dropped (for use in `tokio::select!`).
    pub async fn recv(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            Some(event) = self.consensus.rx.recv() => Some(self.consensus.release(event)),
            Some(event) = self.other.rx.recv() => Some(self.other.release(event)),
            Some(event) = self.transactions.rx.recv() => Some(self.transactions.release(event)),
            else => None,
        }
    }
}

/// The swarm task's ends of the queues.
#[derive(Debug)]
pub(crate) struct Queues {
    consensus: Bounded,
    other: Bounded,
    transactions: Bounded,
}

impl Queues {
    /// Queues `event` on its kind's queue without waiting; gives it back if that queue is full,
    /// in events or in bytes, or the node has gone.
    pub(crate) fn try_send(&self, event: Event) -> Result<(), Box<Event>> {
        let queue = match &event {
            Event::Gossip { topic: Topic::Consensus, .. } => &self.consensus,
            Event::Gossip { topic: Topic::Transactions, .. } => &self.transactions,
            Event::Request { .. } | Event::Connected { .. } | Event::Disconnected { .. } => &self.other,
        };
        queue.try_send(event)
    }
}

/// The bytes an event holds that the bytes bound counts: a gossip message's data. Requests
/// are decoded within [`crate::SYNC_REQUEST_BYTES_MAX`] and peer events are small, so their
/// queue is bounded by its count alone.
fn held_bytes(event: &Event) -> usize {
    match event {
        Event::Gossip { data, .. } => data.len(),
        Event::Request { .. } | Event::Connected { .. } | Event::Disconnected { .. } => 0,
    }
}

/// The sending end of one queue, bounded in events by its channel and in bytes here. Events
/// of at most `small_max` bytes do not count toward the bytes: on the consensus queue, votes and
/// certificates keep their room however many large proposals wait (the count bounds them).
#[derive(Debug)]
struct Bounded {
    tx: mpsc::Sender<Event>,
    bytes: Arc<AtomicUsize>,
    bytes_max: usize,
    small_max: usize,
}

/// The bytes `event` counts on a queue whose small events are those of at most `small_max`.
fn counted_bytes(event: &Event, small_max: usize) -> usize {
    Some(held_bytes(event)).filter(|len| *len > small_max).unwrap_or(0)
}

impl Bounded {
    fn try_send(&self, event: Event) -> Result<(), Box<Event>> {
        let len = counted_bytes(&event, self.small_max);
        // Reserve before the check, so that two senders cannot both pass it.
        let before = self.bytes.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > self.bytes_max {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(Box::new(event));
        }
        self.tx.try_send(event).map_err(|e| {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => Box::new(event),
            }
        })
    }
}

/// The receiving end of one queue.
#[derive(Debug)]
struct Receiving {
    rx: mpsc::Receiver<Event>,
    bytes: Arc<AtomicUsize>,
    small_max: usize,
}

impl Receiving {
    /// Gives back the bytes `event` held in the queue.
    fn release(&self, event: Event) -> Event {
        self.bytes.fetch_sub(counted_bytes(&event, self.small_max), Ordering::AcqRel);
        event
    }
}

fn bounded(events_max: usize, bytes_max: usize, small_max: usize) -> (Bounded, Receiving) {
    let (tx, rx) = mpsc::channel(events_max);
    let bytes = Arc::new(AtomicUsize::new(0));
    (Bounded { tx, bytes: bytes.clone(), bytes_max, small_max }, Receiving { rx, bytes, small_max })
}

/// A new set of queues.
pub(crate) fn channel() -> (Queues, Events) {
    let (consensus_tx, consensus) =
        bounded(CONSENSUS_QUEUE_MAX, CONSENSUS_QUEUE_BYTES_MAX, taksa_consensus::codec::MESSAGE_BYTES_MAX);
    let (other_tx, other) = bounded(EVENTS_QUEUE_MAX, usize::MAX, 0);
    let (transactions_tx, transactions) = bounded(TRANSACTIONS_QUEUE_MAX, TRANSACTIONS_QUEUE_BYTES_MAX, 0);
    (
        Queues { consensus: consensus_tx, other: other_tx, transactions: transactions_tx },
        Events { consensus, other, transactions },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageId, PeerId};

    fn gossip(topic: Topic, byte: u8) -> Event {
        let id = MessageId(libp2p::gossipsub::MessageId::new(&[byte]));
        Event::Gossip { topic, from: PeerId(libp2p::PeerId::random()), id, data: vec![byte] }
    }

    fn big(topic: Topic, len: usize) -> Event {
        let id = MessageId(libp2p::gossipsub::MessageId::new(&[1]));
        Event::Gossip { topic, from: PeerId(libp2p::PeerId::random()), id, data: vec![0; len] }
    }

    #[tokio::test]
    async fn gossip_queues_are_bounded_in_bytes_long_before_their_count() {
        let (queues, mut events) = channel();
        let len = taksa_consensus::tx::GOSSIP_BATCH_BYTES_MAX;
        let fit = TRANSACTIONS_QUEUE_BYTES_MAX / len;
        assert!(fit < TRANSACTIONS_QUEUE_MAX, "the bytes bound is the one that binds");
        for _ in 0..fit {
            assert!(queues.try_send(big(Topic::Transactions, len)).is_ok());
        }
        assert!(queues.try_send(big(Topic::Transactions, len)).is_err(), "no room for another full message");
        assert!(queues.try_send(big(Topic::Consensus, 1000)).is_ok(), "other queues have their own bytes");
        assert!(matches!(events.recv().await, Some(Event::Gossip { topic: Topic::Consensus, .. })));
        assert!(matches!(events.recv().await, Some(Event::Gossip { topic: Topic::Transactions, .. })));
        assert!(queues.try_send(big(Topic::Transactions, len)).is_ok(), "a message read gives its bytes back");
        assert!(queues.try_send(big(Topic::Transactions, len)).is_err());

        let proposal = taksa_consensus::engine::Message::PROPOSAL_BYTES_MAX;
        let proposals = CONSENSUS_QUEUE_BYTES_MAX / proposal;
        assert!(proposals < CONSENSUS_QUEUE_MAX);
        for _ in 0..proposals {
            assert!(queues.try_send(big(Topic::Consensus, proposal)).is_ok());
        }
        assert!(queues.try_send(big(Topic::Consensus, proposal)).is_err(), "the consensus queue too");
        assert!(queues.try_send(big(Topic::Consensus, 300)).is_ok(), "a vote still has room behind full proposals");
    }

    #[tokio::test]
    async fn consensus_is_read_first_and_a_full_transaction_queue_does_not_block_it() {
        let (queues, mut events) = channel();
        for i in 0..TRANSACTIONS_QUEUE_MAX {
            assert!(queues.try_send(gossip(Topic::Transactions, i as u8)).is_ok());
        }
        assert!(queues.try_send(gossip(Topic::Transactions, 0)).is_err(), "the transaction queue is bounded");
        let peer = PeerId(libp2p::PeerId::random());
        assert!(queues.try_send(Event::Connected { peer }).is_ok());
        assert!(queues.try_send(gossip(Topic::Consensus, 7)).is_ok());

        assert!(matches!(events.recv().await, Some(Event::Gossip { topic: Topic::Consensus, .. })));
        assert!(matches!(events.recv().await, Some(Event::Connected { .. })));
        assert!(matches!(events.recv().await, Some(Event::Gossip { topic: Topic::Transactions, .. })));
        drop(queues);
        let mut left = 0;
        while events.recv().await.is_some() {
            left += 1;
        }
        assert_eq!(left, TRANSACTIONS_QUEUE_MAX - 1, "queued events survive the sender and then the stream ends");
    }
}
