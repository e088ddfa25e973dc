//! The queues from the swarm task to the node, one per kind of traffic, so that a flood of one
//! kind cannot crowd out another: consensus gossip, transaction gossip, and the rest (sync
//! requests, peers coming and going). [`Events`] reads them consensus first.

use tokio::sync::mpsc;

use crate::{Event, Topic, CONSENSUS_QUEUE_MAX, EVENTS_QUEUE_MAX, TRANSACTIONS_QUEUE_MAX};

/// What the network tells the node, from [`crate::start`]. Each kind of event has its own
/// bounded queue, which the swarm task never waits on: when one is full its events are dropped
/// (gossip is ignored, a request goes unanswered), and the others are unaffected.
#[derive(Debug)]
pub struct Events {
    consensus: mpsc::Receiver<Event>,
    other: mpsc::Receiver<Event>,
    transactions: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event, by priority: consensus gossip, then sync requests and peer events, then
    /// transaction gossip. A node that reads only through this method cannot be kept from its
    /// consensus messages by a flood of transactions. `None` once the network has stopped.
    /// Cancel-safe: no event is lost if the future is dropped (for use in `tokio::select!`).
    pub async fn recv(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            Some(event) = self.consensus.recv() => Some(event),
            Some(event) = self.other.recv() => Some(event),
            Some(event) = self.transactions.recv() => Some(event),
            else => None,
        }
    }
}

/// The swarm task's ends of the queues.
#[derive(Debug)]
pub(crate) struct Queues {
    consensus: mpsc::Sender<Event>,
    other: mpsc::Sender<Event>,
    transactions: mpsc::Sender<Event>,
}

impl Queues {
    /// Queues `event` on its kind's queue without waiting; gives it back if that queue is full
    /// or the node has gone.
    pub(crate) fn try_send(&self, event: Event) -> Result<(), Box<Event>> {
        let queue = match &event {
            Event::Gossip { topic: Topic::Consensus, .. } => &self.consensus,
            Event::Gossip { topic: Topic::Transactions, .. } => &self.transactions,
            Event::Request { .. } | Event::Connected { .. } | Event::Disconnected { .. } => &self.other,
        };
        queue.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => Box::new(event),
        })
    }
}

/// A new set of queues.
pub(crate) fn channel() -> (Queues, Events) {
    let (consensus_tx, consensus) = mpsc::channel(CONSENSUS_QUEUE_MAX);
    let (other_tx, other) = mpsc::channel(EVENTS_QUEUE_MAX);
    let (transactions_tx, transactions) = mpsc::channel(TRANSACTIONS_QUEUE_MAX);
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
