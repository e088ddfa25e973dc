//! What gossip reaches the node: a per-peer rate limit and replay suppression, both answered
//! `Ignore` inside p2p, never with a penalty. Pure bookkeeping; the swarm task acts on it.
//!
//! - **Rate limit.** Each peer has a budget per topic, in messages and in bytes (token buckets
//!   with a burst). A message over it is ignored. An honest peer forwarding a burst may be
//!   ignored but is never penalised: a penalty must be impossible to earn honestly. The budgets
//!   sit above what an honest peer forwards at the network's capacity.
//! - **Replays.** Message ids cover the send stamp (see `service::SEND_STAMP_BYTES`), so a
//!   replay of a valid message with a fresh stamp is a new message to gossipsub. The guard
//!   remembers the SHA-256 of each payload it handed to the node and ignores the same payload
//!   for [`REPLAY_WINDOW`] after, which costs a replayer's target one hash per copy instead of a
//!   decode and signature checks.
//!
//! One cost remains: gossipsub drops later copies of a message whose id it has seen, so a peer
//! over its budget that relays an honest message first makes us ignore that send of it. It
//! must win the race against the publisher's own copy (published to all its peers at once), and
//! consensus re-sends what is still needed at each view timeout with a new stamp.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use sha2::{Digest as _, Sha256};
use taksa_consensus::block::BLOCK_TXS_MAX;
use taksa_consensus::codec::TX_BYTES_MAX;
use taksa_consensus::engine::Message;

use crate::Topic;

/// How long after handing a payload to the node the same payload is ignored.
///
/// It must be shorter than the smallest interval at which an honest node sends the same payload
/// again, or the re-send would be lost. The consensus engine re-sends its votes and certificates
/// once per view timeout while a view is stuck (T1 in `taksa_consensus::engine`), and the node
/// sets the timeout's base to at least 1000 ms, so two honest sends of one payload are at least
/// 1000 ms apart; transactions are re-gossiped every 5 s. 750 ms leaves a quarter of the shortest
/// interval for delivery jitter, and lets a replayer through with at most one copy per payload
/// every 750 ms instead of as many as it can send.
pub(crate) const REPLAY_WINDOW: Duration = Duration::from_millis(750);
/// Payloads remembered for replay suppression. Only those handed over within the last
/// [`REPLAY_WINDOW`] matter; 32 768 is three times a full block's transactions per window.
const REPLAY_ENTRIES_MAX: usize = 32_768;

/// A rate budget: a sustained rate and a burst, in messages and in bytes.
#[derive(Clone, Copy, Debug)]
struct Budget {
    messages_per_sec: u64,
    messages_burst: u64,
    bytes_per_sec: u64,
    bytes_burst: u64,
}

/// Consensus messages per peer. A view carries a proposal, up to three votes per validator and
/// a few certificates, and at least one block time passes per view: 500 messages per second
/// (1000 at once) covers 150 validators at one view per second, far above the 4 to 10 the
/// network is tuned for. Bytes: two full proposals per second, four at once.
const CONSENSUS_BUDGET: Budget = Budget {
    messages_per_sec: 500,
    messages_burst: 1000,
    bytes_per_sec: 2 * Message::PROPOSAL_BYTES_MAX as u64,
    bytes_burst: 4 * Message::PROPOSAL_BYTES_MAX as u64,
};

/// Transactions per peer, in messages of up to `GOSSIP_BATCH_TXS_MAX`: bytes for a full block of
/// the longest transactions per second (what the chain can take at its shortest block time),
/// twice that at once; messages for a batch flushed every 5 ms beside full ones.
const TRANSACTIONS_BUDGET: Budget = Budget {
    messages_per_sec: 1000,
    messages_burst: 2000,
    bytes_per_sec: (BLOCK_TXS_MAX * TX_BYTES_MAX) as u64,
    bytes_burst: (2 * BLOCK_TXS_MAX * TX_BYTES_MAX) as u64,
};

/// Bucket fill is kept in millionths of a token, so refills of a few microseconds count.
const MICROS_PER_TOKEN: u64 = 1_000_000;

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    fill_micros: u64,
    burst: u64,
    per_sec: u64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u64, per_sec: u64, now: Instant) -> Bucket {
        Bucket { fill_micros: burst.saturating_mul(MICROS_PER_TOKEN), burst, per_sec, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed_us = u64::try_from(now.saturating_duration_since(self.at).as_micros()).unwrap_or(u64::MAX);
        let cap = self.burst.saturating_mul(MICROS_PER_TOKEN);
        self.fill_micros = self.fill_micros.saturating_add(elapsed_us.saturating_mul(self.per_sec)).min(cap);
        self.at = self.at.max(now);
    }

    fn has(&self, tokens: u64) -> bool {
        self.fill_micros >= tokens.saturating_mul(MICROS_PER_TOKEN)
    }

    fn take(&mut self, tokens: u64) {
        self.fill_micros = self.fill_micros.saturating_sub(tokens.saturating_mul(MICROS_PER_TOKEN));
    }
}

/// One peer's budget on one topic.
#[derive(Debug)]
struct Rate {
    messages: Bucket,
    bytes: Bucket,
}

impl Rate {
    fn new(budget: Budget, now: Instant) -> Rate {
        Rate {
            messages: Bucket::full(budget.messages_burst, budget.messages_per_sec, now),
            bytes: Bucket::full(budget.bytes_burst, budget.bytes_per_sec, now),
        }
    }

    /// Takes one message of `bytes` if both buckets have room; takes nothing otherwise.
    fn try_take(&mut self, bytes: u64, now: Instant) -> bool {
        self.messages.refill(now);
        self.bytes.refill(now);
        if !self.messages.has(1) || !self.bytes.has(bytes) {
            return false;
        }
        self.messages.take(1);
        self.bytes.take(bytes);
        true
    }
}

/// A payload's identity for replay suppression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PayloadKey(Topic, [u8; 32]);

/// What to do with a received message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Hand it to the node, then call [`Guard::delivered`] with the key.
    Deliver(PayloadKey),
    /// Ignore it: the peer is over its budget.
    RateLimited,
    /// Ignore it: the node had the same payload less than [`REPLAY_WINDOW`] ago.
    Replay,
}

/// Rate budgets of the connected peers and the recently delivered payloads.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    /// One entry per connected peer and topic: bounded by the connection limits, and dropped
    /// when the peer leaves.
    rates: HashMap<(PeerId, Topic), Rate>,
    /// When each payload was last handed to the node...
    delivered: HashMap<PayloadKey, Instant>,
    /// ...and the same in the order handed over, oldest first, at most [`REPLAY_ENTRIES_MAX`].
    order: VecDeque<(PayloadKey, Instant)>,
}

impl Guard {
    /// Decides on a message of `payload` (send stamp stripped) from `peer`.
    pub(crate) fn admit(&mut self, peer: PeerId, topic: Topic, payload: &[u8], now: Instant) -> Admission {
        let budget = match topic {
            Topic::Consensus => CONSENSUS_BUDGET,
            Topic::Transactions => TRANSACTIONS_BUDGET,
        };
        let rate = self.rates.entry((peer, topic)).or_insert_with(|| Rate::new(budget, now));
        if !rate.try_take(u64::try_from(payload.len()).unwrap_or(u64::MAX), now) {
            return Admission::RateLimited;
        }
        let key = PayloadKey(topic, Sha256::digest(payload).into());
        match self.delivered.get(&key) {
            Some(at) if now.saturating_duration_since(*at) < REPLAY_WINDOW => Admission::Replay,
            _ => Admission::Deliver(key),
        }
    }

    /// Records that the payload of `key` was handed to the node at `now`.
    pub(crate) fn delivered(&mut self, key: PayloadKey, now: Instant) {
        while let Some(&(oldest, at)) = self.order.front() {
            let expired = now.saturating_duration_since(at) >= REPLAY_WINDOW;
            if !expired && self.order.len() < REPLAY_ENTRIES_MAX {
                break;
            }
            self.order.pop_front();
            // A later delivery of the same payload has its own, newer entry.
            if self.delivered.get(&oldest) == Some(&at) {
                self.delivered.remove(&oldest);
            }
        }
        self.order.push_back((key, now));
        self.delivered.insert(key, now);
    }

    /// Forgets a peer that has left.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.rates.retain(|(p, _), _| p != peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(guard: &mut Guard, peer: PeerId, payload: &[u8], now: Instant) -> bool {
        match guard.admit(peer, Topic::Consensus, payload, now) {
            Admission::Deliver(key) => {
                guard.delivered(key, now);
                true
            }
            _ => false,
        }
    }

    #[test]
    fn a_replayed_payload_is_delivered_once_per_window_whoever_sends_it() {
        let mut guard = Guard::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert!(deliver(&mut guard, a, b"vote", t0));
        assert_eq!(guard.admit(b, Topic::Consensus, b"vote", t0 + Duration::from_millis(10)), Admission::Replay);
        let late = t0 + REPLAY_WINDOW - Duration::from_millis(1);
        assert_eq!(guard.admit(a, Topic::Consensus, b"vote", late), Admission::Replay);
        // The honest re-send, a view timeout (at least 1000 ms) later, gets through.
        assert!(deliver(&mut guard, b, b"vote", t0 + Duration::from_millis(1000)));
        // Another topic or payload is another message.
        assert!(matches!(guard.admit(a, Topic::Transactions, b"vote", t0), Admission::Deliver(_)));
        assert!(deliver(&mut guard, a, b"other vote", t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn the_replay_memory_stays_within_its_bound() {
        let mut guard = Guard::default();
        let peer = PeerId::random();
        let now = Instant::now();
        for i in 0..(REPLAY_ENTRIES_MAX + 10) as u64 {
            let key = PayloadKey(Topic::Transactions, Sha256::digest(i.to_le_bytes()).into());
            guard.delivered(key, now);
        }
        assert_eq!(guard.order.len(), REPLAY_ENTRIES_MAX);
        assert_eq!(guard.delivered.len(), REPLAY_ENTRIES_MAX);
        // Expired entries go at the next delivery.
        assert!(deliver(&mut guard, peer, b"fresh", now + REPLAY_WINDOW));
        assert_eq!(guard.order.len(), 1);
        assert_eq!(guard.delivered.len(), 1);
    }

    #[test]
    fn a_peer_over_its_message_rate_is_ignored_until_its_bucket_refills() {
        let mut guard = Guard::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        for i in 0..CONSENSUS_BUDGET.messages_burst {
            assert!(deliver(&mut guard, peer, &i.to_le_bytes(), now), "message {i} of the burst");
        }
        assert_eq!(guard.admit(peer, Topic::Consensus, b"one more", now), Admission::RateLimited);
        assert!(deliver(&mut guard, other, b"one more", now), "another peer has its own budget");
        // 10 ms at 500 per second refill five messages.
        let later = now + Duration::from_millis(10);
        for i in 0..5u64 {
            assert!(deliver(&mut guard, peer, &(1_000_000 + i).to_le_bytes(), later));
        }
        assert_eq!(guard.admit(peer, Topic::Consensus, b"sixth", later), Admission::RateLimited);
        assert!(matches!(guard.admit(peer, Topic::Transactions, b"tx", later), Admission::Deliver(_)));
    }

    #[test]
    fn a_peer_over_its_byte_rate_is_ignored() {
        let mut guard = Guard::default();
        let peer = PeerId::random();
        let now = Instant::now();
        // Four of these leave 4 KiB of the burst.
        let proposal = vec![0u8; Message::PROPOSAL_BYTES_MAX - 1024];
        for i in 0..4u8 {
            let mut data = proposal.clone();
            data[0] = i + 1;
            assert!(deliver(&mut guard, peer, &data, now), "proposal {i} of the burst");
        }
        assert_eq!(guard.admit(peer, Topic::Consensus, &proposal, now), Admission::RateLimited);
        assert!(deliver(&mut guard, peer, b"a small vote still fits", now));
        guard.forget(&peer);
        assert!(deliver(&mut guard, peer, &proposal, now), "a new connection starts with a full budget");
    }
}
