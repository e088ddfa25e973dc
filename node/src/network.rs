//! The node's side of the peer-to-peer network: checks gossip before it is forwarded, serves
//! sync, carries the chain core's sync requests, and connects the chain thread to
//! [`taksa_p2p::Handle`].
//!
//! Gossip is hostile until checked. A consensus message is forwarded only once its signatures
//! verify against the validators of the epoch consensus runs here and this chain's domain
//! (which also rules out votes of another chain); a message of another epoch is not forwarded
//! and costs its sender nothing (an honest node a moment ahead or behind sends those). A message of transactions is forwarded as it came only when every
//! transaction in it is new in our pool; otherwise what our pool took from it goes on in our own
//! messages ([`crate::admission`]), so junk cannot ride along with one new transaction. Invalid data is `Reject`ed (the sender loses score); valid
//! data is `Ignore`d without penalty when we do not forward it (an old view, transactions).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom as _;

use taksa_consensus::engine::{Message, EVIDENCE_TAIL_VIEWS};
use taksa_consensus::{Block, Hash};
use taksa_p2p::{Event, Handle, PeerId, Reply, Request, Response, Topic, Verdict, SYNC_RESPONSE_BYTES_MAX};

use crate::chain::{ChainMsg, Network, Shared};
use crossbeam_channel::Sender as SyncSender;
use taksa_consensus::chain::{Input, Peer, Penalty, SYNC_INTERVAL_MS};
use taksa_consensus::tx::{decode_gossip_batch, GOSSIP_BATCH_TXS_MAX};

use crate::admission::{Admission, Origin, GOSSIP_FLUSH_MS};

/// How many peers are asked for a missing block before giving up (the chain asks again later).
const FETCH_PEERS_MAX: usize = 4;
/// Pool transactions still pending after this many sync ticks are gossiped again: a peer may
/// have missed them (it was restarting, or its mesh was forming).
const REGOSSIP_TICKS: u64 = 5;
/// The most transactions gossiped again per round.
const REGOSSIP_MAX: usize = 512;
/// How often, and how long apart, a consensus message is offered again to a busy network.
const BROADCAST_BUSY_RETRIES: usize = 20;
const BROADCAST_BUSY_WAIT_MS: u64 = 10;
/// Headroom under the response limit for the encoding of the list and certificates.
const RESPONSE_MARGIN_BYTES: usize = 1024 * 1024;

/// Rejections of peer data by reason: counted for operators and logged.
#[derive(Default)]
pub(crate) struct Rejections {
    counts: Mutex<BTreeMap<&'static str, u64>>,
    total: AtomicU64,
}

impl Rejections {
    fn count(&self, reason: &'static str, peer: &PeerId) {
        let total = self.total.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let n = self.counts.lock().map_or(0, |mut c| {
            let n = c.entry(reason).or_insert(0);
            *n = n.saturating_add(1);
            *n
        });
        tracing::warn!(target: "p2p", %peer, reason, count = n, total, "rejected data from a peer");
    }
}

/// The chain thread's network: publishes on gossip, fetches blocks by request-response.
pub(crate) struct P2pNetwork {
    pub(crate) handle: Handle,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) inbox: SyncSender<ChainMsg>,
    pub(crate) rejections: Arc<Rejections>,
    pub(crate) peer_ids: Arc<Mutex<PeerIds>>,
}

impl P2pNetwork {
    fn peer_id(&self, peer: Peer) -> Option<PeerId> {
        self.peer_ids.lock().ok().and_then(|ids| ids.peer(peer))
    }
}

impl Network for P2pNetwork {
    fn request(&self, peer: Peer, id: u64, request: Request) {
        let Some(peer_id) = self.peer_id(peer) else {
            // Gone since the core learned of it: the request fails at once.
            let _ = self.inbox.try_send(ChainMsg::Core(Input::Response { id, answer: None }));
            return;
        };
        let (handle, inbox) = (self.handle.clone(), self.inbox.clone());
        self.runtime.spawn(async move {
            let answer = handle.request(&peer_id, request).await.ok();
            // A full inbox loses the answer; the core's deadline for it counts it as failed.
            let _ = inbox.try_send(ChainMsg::Core(Input::Response { id, answer }));
        });
    }

    fn penalize(&self, peer: Peer, penalty: Penalty) {
        if let Some(peer_id) = self.peer_id(peer) {
            self.rejections.count(penalty.reason(), &peer_id);
            let what = match penalty {
                Penalty::UncertifiedStatus | Penalty::BadStatus => "sent a status head that is not certified",
                Penalty::BadBlocks | Penalty::WrongAnswer => "sent blocks that do not verify",
            };
            self.handle.penalize(&peer_id, what);
        }
    }

    fn describe(&self, peer: Peer) -> String {
        self.peer_id(peer).map_or_else(|| format!("#{}", peer.0), |p| p.to_string())
    }

    fn broadcast(&self, msg: &Message) -> Result<(), taksa_p2p::Error> {
        let data = msg.encode();
        // A full command queue is back-pressure, not a reason to lose a vote or a proposal: the
        // chain thread waits a little for room.
        for _ in 0..BROADCAST_BUSY_RETRIES {
            match self.handle.publish(Topic::Consensus, data.clone()) {
                Err(taksa_p2p::Error::Busy) => std::thread::sleep(Duration::from_millis(BROADCAST_BUSY_WAIT_MS)),
                result => return result,
            }
        }
        self.handle.publish(Topic::Consensus, data)
    }

    fn fetch_block(&self, hash: Hash) {
        let handle = self.handle.clone();
        let inbox = self.inbox.clone();
        let rejections = self.rejections.clone();
        self.runtime.spawn(async move {
            // In random order: asked in a fixed order, a peer that picks a low id is always asked
            // first and can withhold every block.
            let mut peers = handle.peers().await;
            peers.shuffle(&mut rand::thread_rng());
            for info in peers.into_iter().take(FETCH_PEERS_MAX) {
                match handle.request(&info.peer, Request::Block { hash }).await {
                    Ok(Response::Block(Some(block))) if fetched_block_is(&block, &hash) => {
                        let _ = inbox.try_send(ChainMsg::Core(Input::Fetched(block)));
                        return;
                    }
                    Ok(Response::Block(None)) | Err(_) => {}
                    Ok(_) => {
                        rejections.count("fetched block is not the one asked for", &info.peer);
                        handle.penalize(&info.peer, "answered a block request with another block or body");
                    }
                }
            }
            tracing::debug!(target: "p2p", %hash, "no peer had the block; asking again later");
        });
    }
}

/// Whether a block answered for `hash` is that block: its header hashes to it and its body is
/// the one the header commits to (`tx_root`, within the limits). Honest peers store only blocks
/// that passed this check, so a failure is the answering peer's doing.
fn fetched_block_is(block: &Block, hash: &Hash) -> bool {
    block.hash() == *hash && block.check_shape().is_ok()
}

/// Handles the network's events until it stops: gossip checks and sync requests. Consensus
/// messages come first (`Events::recv` reads their own queue before the others), so no flood
/// of transactions or requests delays them.
pub(crate) async fn route(
    shared: Arc<Shared>,
    handle: Handle,
    mut events: taksa_p2p::Events,
    inbox: SyncSender<ChainMsg>,
    rejections: Arc<Rejections>,
) {
    /// Gossiped batches of transactions checked at once on the blocking pool (1024
    /// transactions). Beyond it, transaction gossip is ignored (no penalty; the sender's node
    /// re-gossips what its pool holds), so a flood cannot pile up unbounded work behind the p2p
    /// queue's bound.
    const TX_CHECKS_IN_FLIGHT_MAX: usize = 1024 / GOSSIP_BATCH_TXS_MAX;
    let tx_checks = Arc::new(tokio::sync::Semaphore::new(TX_CHECKS_IN_FLIGHT_MAX));
    while let Some(event) = events.recv().await {
        match event {
            Event::Gossip { topic: Topic::Consensus, from, id, data } => {
                let verdict = match check_consensus(&shared, &data) {
                    Ok(Checked::Current(msg)) => {
                        if inbox.try_send(ChainMsg::Core(Input::Consensus(msg))).is_err() {
                            tracing::warn!(target: "p2p", "the chain is busy: dropped a consensus message");
                            Verdict::Ignore
                        } else {
                            Verdict::Accept
                        }
                    }
                    Ok(Checked::Next(msg)) => {
                        // Not forwarded (unchecked here); the chain keeps it for the epoch's
                        // engine, which checks what it uses.
                        let _ = inbox.try_send(ChainMsg::Core(Input::Consensus(msg)));
                        Verdict::Ignore
                    }
                    Ok(Checked::Useless) => Verdict::Ignore,
                    Err(reason) => {
                        rejections.count(reason, &from);
                        Verdict::Reject
                    }
                };
                handle.report(id, from, verdict);
            }
            Event::Gossip { topic: Topic::Transactions, from, id, data } => {
                let Ok(permit) = tx_checks.clone().try_acquire_owned() else {
                    tracing::debug!(target: "p2p", "transaction checks saturated: gossip ignored");
                    handle.report(id, from, Verdict::Ignore);
                    continue;
                };
                let shared = shared.clone();
                let handle = handle.clone();
                let rejections = rejections.clone();
                // On the blocking pool: the batch's signatures are verified there, and the
                // admission waits for the chain actor's verdicts.
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let verdict = match admit_gossiped(&shared, &data) {
                        Ok(true) => Verdict::Accept,
                        // Not forwarded as it came (no penalty): what our pool took goes on in
                        // our own messages.
                        Ok(false) => Verdict::Ignore,
                        Err(reason) => {
                            rejections.count(reason, &from);
                            Verdict::Reject
                        }
                    };
                    handle.report(id, from, verdict);
                });
            }
            Event::Request { from, request, reply } => {
                let shared = shared.clone();
                tokio::task::spawn_blocking(move || serve(&shared, &from, request, reply));
            }
            Event::Connected { peer } => tracing::info!(target: "p2p", %peer, "peer connected"),
            Event::Disconnected { peer } => tracing::info!(target: "p2p", %peer, "peer disconnected"),
        }
    }
}

/// What [`check_consensus`] found.
enum Checked {
    /// Of the epoch consensus runs here, and it verifies.
    Current(Message),
    /// Of the next epoch: its set is not known here yet, so it is not checked (nor forwarded);
    /// the chain keeps it, bounded, until that epoch starts.
    Next(Message),
    /// Valid or not, of no use: too old, or another epoch.
    Useless,
}

/// Decodes and checks a consensus message's signatures against the set of the epoch
/// consensus runs here.
fn check_consensus(shared: &Shared, data: &[u8]) -> Result<Checked, &'static str> {
    let msg = Message::decode(data).map_err(|_| "consensus message does not decode")?;
    let chain = Arc::clone(&shared.chain.borrow());
    if msg.epoch() == chain.epoch.saturating_add(1) {
        return Ok(Checked::Next(msg));
    }
    if msg.epoch() != chain.epoch {
        return Ok(Checked::Useless);
    }
    let finalized_view = chain.status.as_ref().map_or(0, |s| s.finalized_view);
    if msg.view().saturating_add(EVIDENCE_TAIL_VIEWS) < finalized_view {
        return Ok(Checked::Useless);
    }
    let domain = shared.domain.at_epoch(chain.epoch);
    msg.verify(&domain, &chain.validators, shared.rules.epochs).map_err(|_| match &msg {
        Message::Vote(_) => "vote signature or signer invalid",
        Message::Certificate(_) => "certificate does not verify",
        Message::Proposal { .. } => "proposal invalid (leader, signature, shape or parent certificate)",
    })?;
    Ok(Checked::Current(msg))
}

/// Admits a gossiped message of transactions by the same path as RPC ([`Shared::admit_many`]).
/// `Ok(true)`: every transaction in it was new here, so gossipsub forwards the message as it
/// came. `Ok(false)`: not forwarded; what our pool newly took goes on in our own messages, so
/// junk (known, unfundable) cannot ride along with one new transaction. An error when the
/// message or one of its transactions is invalid, which no honest node sends: every node checks
/// a transaction before it gossips it, and these checks need no state.
pub(crate) fn admit_gossiped(shared: &Shared, data: &[u8]) -> Result<bool, &'static str> {
    let txs = decode_gossip_batch(data).map_err(|_| "transaction batch does not decode")?;
    let outcomes = shared.admit_many(txs, Origin::Gossip);
    if outcomes.iter().any(|(_, a)| matches!(a, Admission::Invalid(_))) {
        return Err("transaction invalid for this chain (signature, chain or fields)");
    }
    Ok(outcomes.iter().all(|(_, a)| a.is_new()))
}

/// Answers a peer's sync request from storage.
fn serve(shared: &Shared, from: &PeerId, request: Request, reply: Reply) {
    let bytes_max = SYNC_RESPONSE_BYTES_MAX - RESPONSE_MARGIN_BYTES;
    match taksa_consensus::chain::serve(&shared.store, request, bytes_max) {
        Ok(Some(response)) => {
            tracing::debug!(target: "p2p", peer = %from, "served a sync request");
            reply.send(response);
        }
        Ok(None) => {
            let height = shared.store.head().height;
            tracing::warn!(target: "sync", height, "no stored finalization near the head: status not served");
        }
        Err(e) => tracing::error!(target: "storage", error = %e, "cannot read blocks for a peer"),
    }
}

/// The numbers the chain core knows peers by ([`taksa_consensus::chain::Peer`]), for the
/// peers connected now (a peer that leaves and comes back gets a new number).
#[derive(Default)]
pub(crate) struct PeerIds {
    by_peer: HashMap<PeerId, u64>,
    by_index: HashMap<u64, PeerId>,
    next: u64,
}

impl PeerIds {
    /// Numbers the peers connected now and forgets the others.
    fn connected(&mut self, peers: &[taksa_p2p::PeerInfo]) -> Vec<Peer> {
        let now: HashSet<PeerId> = peers.iter().map(|p| p.peer).collect();
        self.by_peer.retain(|p, _| now.contains(p));
        self.by_index.retain(|_, p| now.contains(p));
        let mut out = Vec::with_capacity(peers.len());
        for info in peers {
            let index = match self.by_peer.get(&info.peer) {
                Some(i) => *i,
                None => {
                    self.next += 1;
                    self.by_peer.insert(info.peer, self.next);
                    self.by_index.insert(self.next, info.peer);
                    self.next
                }
            };
            out.push(Peer(index));
        }
        out
    }

    fn peer(&self, peer: Peer) -> Option<PeerId> {
        self.by_index.get(&peer.0).copied()
    }
}

/// Keeps the peer list fresh (the chain core asks them for their status and catches up from
/// the best: `taksa_consensus::chain`'s sync) and gossips still-pending transactions again.
pub(crate) async fn sync(
    shared: Arc<Shared>,
    handle: Handle,
    inbox: SyncSender<ChainMsg>,
    peer_ids: Arc<Mutex<PeerIds>>,
    peers_view: tokio::sync::watch::Sender<Arc<[taksa_p2p::PeerInfo]>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(SYNC_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    let mut pending_before: HashSet<Hash> = HashSet::new();
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(REGOSSIP_TICKS) {
            pending_before = regossip(&shared, &pending_before);
        }
        let peers = handle.peers().await;
        let numbered = peer_ids.lock().map(|mut ids| ids.connected(&peers)).unwrap_or_default();
        peers_view.send_replace(peers.into());
        // A full inbox skips one refresh; the next comes in a second.
        let _ = inbox.try_send(ChainMsg::Core(Input::Peers(numbered)));
    }
}

/// Gossips again the proposable pool transactions that were already pending last round;
/// returns what is pending now.
fn regossip(shared: &Shared, before: &HashSet<Hash>) -> HashSet<Hash> {
    let candidates = shared.chain().pool.candidates(REGOSSIP_MAX, &shared.store);
    let mut now = HashSet::with_capacity(candidates.len());
    let mut again = Vec::new();
    for stx in candidates {
        let hash = stx.hash();
        if before.contains(&hash) {
            again.push(stx);
        }
        now.insert(hash);
    }
    if !again.is_empty() {
        tracing::debug!(target: "mempool", txs = again.len(), "gossiping still-pending transactions again");
        shared.gossip_txs(again);
    }
    now
}

/// Sends the transactions waiting for gossip every [`GOSSIP_FLUSH_MS`] (full messages leave
/// at once, see [`crate::admission`]).
pub(crate) async fn flush_tx_gossip(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(GOSSIP_FLUSH_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        shared.flush_tx_gossip();
    }
}

#[cfg(test)]
mod tests {
    use taksa_consensus::block::tx_root;
    use taksa_consensus::{Address, Header, Keypair, SignedTransaction, Transaction};

    use super::*;

    fn transfer(nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed(&[3; 32]);
        let tx = Transaction {
            chain_id: "taksa-test".into(),
            from: Address(key.public()),
            to: Address::default(),
            amount: 1,
            fee: 1,
            nonce,
            valid_until_height: None,
            memo: None,
            action: None,
        };
        tx.sign(&key, &Hash::ZERO)
    }

    #[test]
    fn a_fetched_block_must_carry_the_body_its_header_commits_to() {
        let txs = vec![transfer(0), transfer(1)];
        let header = Header {
            chain_id: "taksa-test".into(),
            height: 3,
            view: 3,
            parent_hash: Hash([1; 32]),
            proposer: Address::default(),
            timestamp_ms: 1,
            tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([2; 32]),
            validator_set_hash: Hash([3; 32]),
            parent_cert: None,
        };
        let block = Block { header, evidence: Vec::new(), txs };
        let hash = block.hash();
        assert!(fetched_block_is(&block, &hash));
        assert!(!fetched_block_is(&block, &Hash([9; 32])), "another block");

        // A relay keeps the header (so the hash matches) and swaps the body.
        let mut swapped = block.clone();
        swapped.txs = vec![transfer(0), transfer(2)];
        assert_eq!(swapped.hash(), hash);
        assert!(!fetched_block_is(&swapped, &hash), "a body the header does not commit to");
        let mut emptied = block;
        emptied.txs.clear();
        assert!(!fetched_block_is(&emptied, &hash), "a body with transactions removed");
    }
}
