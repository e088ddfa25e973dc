//! The node's side of the peer-to-peer network: checks gossip before it is forwarded, serves
//! and runs sync, and connects the chain thread to [`taksa_p2p::Handle`].
//!
//! Gossip is hostile until checked. A consensus message is forwarded only once its signatures
//! verify against the genesis validators and this chain's domain (which also rules out votes of
//! another chain); a transaction only once it decodes, is signed for this chain and enters our
//! pool. Invalid data is `Reject`ed (the sender loses score); valid data we do not want now
//! (an old view, a transaction we cannot admit) is `Ignore`d without penalty.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom as _;

use taksa_consensus::engine::{Message, EVIDENCE_TAIL_VIEWS};
use taksa_consensus::{codec, Block, Certificate, Hash, SignedTransaction};
use taksa_p2p::{
    Event, FinalizedBlock, Handle, PeerId, Reply, Request, Response, Topic, Verdict, BLOCKS_PER_REQUEST_MAX,
    SYNC_RESPONSE_BYTES_MAX,
};

use crate::chain::{ChainMsg, Network, Shared};
use taksa_consensus::chain::Input;
use taksa_consensus::pool::Admitted;

/// How often peers' heights are asked for and the peer list refreshed.
const SYNC_INTERVAL_MS: u64 = 1000;
/// How long a peer has to answer a status request; statuses go to every peer at once.
const STATUS_TIMEOUT_MS: u64 = 2000;
/// A peer that stopped serving a sync session is not asked again for this long.
const SYNC_COOLDOWN_MS: u64 = 30_000;
/// How far below its head a node looks for a stored finalization to show as its status.
const CERTIFIED_HEAD_SEARCH_BLOCKS: u64 = 256;
/// Behind by more than this many blocks counts as syncing.
const SYNCING_LAG_BLOCKS: u64 = 2;
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
}

impl Network for P2pNetwork {
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
    /// Transaction checks running at once on the blocking pool. Beyond it, transaction gossip
    /// is ignored (no penalty; the sender's node re-gossips what its pool holds), so a flood
    /// cannot pile up unbounded work behind the p2p queue's bound.
    const TX_CHECKS_IN_FLIGHT_MAX: usize = 1024;
    let tx_checks = Arc::new(tokio::sync::Semaphore::new(TX_CHECKS_IN_FLIGHT_MAX));
    while let Some(event) = events.recv().await {
        match event {
            Event::Gossip { topic: Topic::Consensus, from, id, data } => {
                let verdict = match check_consensus(&shared, &data) {
                    Ok(Some(msg)) => {
                        if inbox.try_send(ChainMsg::Core(Input::Consensus(msg))).is_err() {
                            tracing::warn!(target: "p2p", "the chain is busy: dropped a consensus message");
                            Verdict::Ignore
                        } else {
                            Verdict::Accept
                        }
                    }
                    Ok(None) => Verdict::Ignore,
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
                // Signature checks and the pool's lock: off the async workers.
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let verdict = match admit_gossiped(&shared, &data) {
                        Ok(true) => Verdict::Accept,
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

/// Decodes and checks a consensus message's signatures. `Ok(None)`: valid but too old to matter.
fn check_consensus(shared: &Shared, data: &[u8]) -> Result<Option<Message>, &'static str> {
    let msg = Message::decode(data).map_err(|_| "consensus message does not decode")?;
    let (domain, validators) = (&shared.domain, &shared.validators);
    let finalized_view = shared.status.read().ok().and_then(|s| s.as_ref().map(|s| s.finalized_view)).unwrap_or(0);
    if msg.view().saturating_add(EVIDENCE_TAIL_VIEWS) < finalized_view {
        return Ok(None);
    }
    msg.verify(domain, validators).map_err(|_| match &msg {
        Message::Vote(_) => "vote signature or signer invalid",
        Message::Certificate(_) => "certificate does not verify",
        Message::Proposal { .. } => "proposal invalid (leader, signature, shape or parent certificate)",
    })?;
    match &msg {
        Message::Vote(vote) => shared.saw_validator(&vote.signer),
        Message::Proposal { leader_vote, .. } => shared.saw_validator(&leader_vote.signer),
        // A certificate may be relayed by anyone: it says nothing of who is online now.
        Message::Certificate(_) => {}
    }
    Ok(Some(msg))
}

/// Admits a gossiped transaction. `Ok(true)` when it is new in our pool (forward it).
fn admit_gossiped(shared: &Shared, data: &[u8]) -> Result<bool, &'static str> {
    let tx: SignedTransaction = codec::decode(data, codec::TX_BYTES_MAX).map_err(|_| "transaction does not decode")?;
    let hash = tx.hash();
    if shared.mempool.lock().is_ok_and(|p| p.contains(&hash)) {
        return Ok(false);
    }
    tx.check_stateless(&shared.genesis.chain_id, &shared.genesis_hash, shared.genesis.fee_floor)
        .map_err(|_| "transaction invalid for this chain (signature, chain or fields)")?;
    let next_height = shared.store.head().height.saturating_add(1);
    let Ok(mut pool) = shared.mempool.lock() else { return Ok(false) };
    match pool.admit(tx, hash, data.len(), &shared.store, next_height) {
        Ok(Admitted::New | Admitted::Replaced(_)) => Ok(true),
        Ok(Admitted::AlreadyPending) => Ok(false),
        // Valid but not admissible here now (nonce, balance, a full pool): not the peer's fault.
        Err(_) => Ok(false),
    }
}

/// Answers a peer's sync request from storage.
fn serve(shared: &Shared, from: &PeerId, request: Request, reply: Reply) {
    let store = &shared.store;
    let response = match request {
        Request::Status => match certified_head(store) {
            Some((head, finalization)) => Response::Status { head, finalization },
            None => return,
        },
        Request::Blocks { from_height, count } => {
            let count = u64::from(count.clamp(1, BLOCKS_PER_REQUEST_MAX));
            let to = from_height.saturating_add(count - 1).min(store.head().height);
            let bytes_max = SYNC_RESPONSE_BYTES_MAX - RESPONSE_MARGIN_BYTES;
            let blocks = if from_height > to { Ok(Vec::new()) } else { store.blocks_range(from_height, to, bytes_max) };
            match blocks {
                Ok(blocks) => Response::Blocks(
                    blocks
                        .into_iter()
                        .map(|block| {
                            let finalization = store.finalization(block.header.height).ok().flatten();
                            FinalizedBlock { block, finalization }
                        })
                        .collect(),
                ),
                Err(e) => {
                    tracing::error!(target: "storage", error = %e, "cannot read blocks for a peer");
                    return;
                }
            }
        }
        Request::Block { hash } => Response::Block(find_block(shared, &hash)),
    };
    tracing::debug!(target: "p2p", peer = %from, "served a sync request");
    reply.send(response);
}

/// The highest committed block whose finalization is stored, with it. The head has one except
/// for a moment while a run of blocks commits one batch at a time (only the run's last block
/// carries the certificate), so this looks a little way down.
fn certified_head(store: &taksa_storage::Store) -> Option<(taksa_consensus::Header, Option<Certificate>)> {
    let head = store.head();
    if head.height == 0 {
        return Some((head, None));
    }
    let lowest = head.height.saturating_sub(CERTIFIED_HEAD_SEARCH_BLOCKS).max(1);
    for height in (lowest..=head.height).rev() {
        if let Ok(Some(cert)) = store.finalization(height) {
            let header =
                if height == head.height { head.clone() } else { store.block_by_height(height).ok().flatten()?.header };
            return Some((header, Some(cert)));
        }
    }
    tracing::warn!(target: "sync", height = head.height, "no stored finalization near the head: status not served");
    None
}

/// A peer's status, checked: `Ok(Some((height, hash)))` for a certified head above genesis,
/// `Ok(None)` for genesis, `Err` for a claim that no honest node makes.
fn verify_status(
    shared: &Shared,
    head: &taksa_consensus::Header,
    fin: Option<&Certificate>,
) -> Result<Option<(u64, Hash)>, &'static str> {
    let hash = head.hash();
    match fin {
        None if head.height == 0 && hash == shared.genesis_hash => Ok(None),
        None => Err("status head above genesis without a finalization"),
        Some(c) => {
            if head.height > 0 && c.verify_finalizes(head, &shared.domain, &shared.validators).is_ok() {
                Ok(Some((head.height, hash)))
            } else {
                Err("status head's finalization does not verify")
            }
        }
    }
}

fn find_block(shared: &Shared, hash: &Hash) -> Option<Block> {
    if let Ok(Some(b)) = shared.store.block_by_hash(hash) {
        return Some(b);
    }
    shared.store.pending_blocks().ok()?.into_iter().find(|b| b.hash() == *hash)
}

/// Keeps the peer list fresh and catches up from the peer with the highest finalized block.
pub(crate) async fn sync(
    shared: Arc<Shared>,
    handle: Handle,
    inbox: SyncSender<ChainMsg>,
    rejections: Arc<Rejections>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(SYNC_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    let mut pending_before: HashSet<Hash> = HashSet::new();
    let mut cooling: HashMap<PeerId, Instant> = HashMap::new();
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        if ticks % REGOSSIP_TICKS == 0 {
            pending_before = regossip(&shared, &handle, &pending_before);
        }
        let peers = handle.peers().await;
        let now = Instant::now();
        cooling.retain(|_, until| *until > now);
        let best = best_certified_peer(&shared, &handle, &peers, &cooling, &rejections).await;
        if let Ok(mut p) = shared.peers.write() {
            *p = peers;
        }
        let head = shared.store.head().height;
        let target = best.as_ref().map(|t| t.height);
        if let Ok(mut s) = shared.sync.write() {
            s.target_height = target;
            s.syncing = target.is_some_and(|t| t > head.saturating_add(SYNCING_LAG_BLOCKS));
        }
        if let Some(target) = best {
            if target.height > head {
                let session = Session { shared: &shared, handle: &handle, inbox: &inbox, rejections: &rejections };
                if let Err(why) = session.catch_up(&target).await {
                    // Slowness or withholding is not provably dishonest: no penalty, but the
                    // peer is not asked again for a while.
                    tracing::info!(target: "sync", peer = %target.peer, reason = why, "sync from a peer stopped; trying others");
                    cooling.insert(target.peer, Instant::now() + Duration::from_millis(SYNC_COOLDOWN_MS));
                }
            }
        }
    }
}

/// A peer whose certified head is above ours: where to sync to, and from whom.
struct Target {
    peer: PeerId,
    height: u64,
    head: taksa_consensus::Header,
    finalization: Certificate,
}

/// Asks every connected peer for its status at once (each with a short timeout) and returns
/// the highest certified head among peers not cooling off. A status that no honest node sends
/// (a head without a verifying finalization) costs the peer a penalty.
async fn best_certified_peer(
    shared: &Arc<Shared>,
    handle: &Handle,
    peers: &[taksa_p2p::PeerInfo],
    cooling: &HashMap<PeerId, Instant>,
    rejections: &Rejections,
) -> Option<Target> {
    let mut asks = tokio::task::JoinSet::new();
    for info in peers.iter().filter(|i| !cooling.contains_key(&i.peer)) {
        let (handle, peer) = (handle.clone(), info.peer);
        asks.spawn(async move {
            let answer =
                tokio::time::timeout(Duration::from_millis(STATUS_TIMEOUT_MS), handle.request(&peer, Request::Status));
            (peer, answer.await)
        });
    }
    let mut best: Option<Target> = None;
    while let Some(Ok((peer, answer))) = asks.join_next().await {
        let Ok(Ok(Response::Status { head, finalization })) = answer else { continue };
        match verify_status(shared, &head, finalization.as_ref()) {
            Ok(Some((height, _))) => {
                if let Some(finalization) = finalization.filter(|_| best.as_ref().is_none_or(|b| height > b.height)) {
                    best = Some(Target { peer, height, head, finalization });
                }
            }
            Ok(None) => {}
            Err(reason) => {
                rejections.count(reason, &peer);
                handle.penalize(&peer, "sent a status head that is not certified");
            }
        }
    }
    best
}

/// Gossips again the proposable pool transactions that were already pending last round;
/// returns what is pending now.
fn regossip(shared: &Shared, handle: &Handle, before: &HashSet<Hash>) -> HashSet<Hash> {
    let candidates = shared.mempool.lock().map(|p| p.candidates(REGOSSIP_MAX, &shared.store)).unwrap_or_default();
    let mut now = HashSet::with_capacity(candidates.len());
    let mut sent = 0usize;
    for stx in candidates {
        let hash = stx.hash();
        if before.contains(&hash) && handle.publish(Topic::Transactions, stx.encode()).is_ok() {
            sent += 1;
        }
        now.insert(hash);
    }
    if sent > 0 {
        tracing::debug!(target: "mempool", sent, "gossiped still-pending transactions again");
    }
    now
}

/// One catch-up from one peer.
struct Session<'a> {
    shared: &'a Shared,
    handle: &'a Handle,
    inbox: &'a SyncSender<ChainMsg>,
    rejections: &'a Rejections,
}

impl Session<'_> {
    /// Fetches finalized blocks from the target peer up to its certified head and hands them to
    /// the chain thread, which commits only what a finalization covers. `Err` says why the
    /// peer stopped being useful without proving it dishonest; a provable lie is penalised
    /// here.
    async fn catch_up(&self, target: &Target) -> Result<(), &'static str> {
        let (shared, peer) = (self.shared, &target.peer);
        let started = Instant::now();
        let start_height = shared.store.head().height;
        let mut next = start_height.saturating_add(1);
        let mut last_log = Instant::now();
        // The first batch starts at our committed head: the chain thread drops any blocks an
        // earlier session staged and did not get covered.
        let mut first = true;
        while next <= target.height {
            let request = Request::Blocks { from_height: next, count: BLOCKS_PER_REQUEST_MAX };
            let blocks = match self.handle.request(peer, request).await {
                Ok(Response::Blocks(blocks)) if !blocks.is_empty() => blocks,
                Ok(Response::Blocks(_)) => return Err("announced finalized blocks it does not serve"),
                Err(_) => return Err("no answer to a blocks request"),
                Ok(_) => return self.lied(peer, "sync answer of the wrong kind"),
            };
            let batch_started = Instant::now();
            let count = blocks.len();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let cover = (target.head.clone(), target.finalization.clone());
            let msg = ChainMsg::Synced { blocks, fresh: std::mem::take(&mut first), cover, reply: tx };
            if self.inbox.try_send(msg).is_err() {
                return Err("the chain is busy");
            }
            match rx.await {
                Ok(Ok(n)) if n > next => next = n,
                Ok(Ok(_)) => return Err("no progress"),
                Ok(Err(reason)) => {
                    tracing::warn!(target: "sync", %peer, %reason, "refused blocks from a peer");
                    return self.lied(peer, "sync answer does not verify");
                }
                Err(_) => return Err("the chain stopped"),
            }
            let done = next.saturating_sub(1);
            let rate = count as f64 / batch_started.elapsed().as_secs_f64().max(1e-3);
            if let Ok(mut s) = shared.sync.write() {
                s.blocks_per_second = Some(rate);
                s.syncing = target.height > done.saturating_add(SYNCING_LAG_BLOCKS);
            }
            if last_log.elapsed() >= Duration::from_secs(2) || next > target.height {
                last_log = Instant::now();
                let total = done.saturating_sub(start_height) as f64 / started.elapsed().as_secs_f64().max(1e-3);
                let left_s = target.height.saturating_sub(done) as f64 / total.max(1e-3);
                tracing::info!(target: "sync", height = done, target = target.height, blocks_per_s = format!("{total:.0}"), remaining_s = format!("{left_s:.0}"), "syncing");
            }
        }
        Ok(())
    }

    fn lied(&self, peer: &PeerId, reason: &'static str) -> Result<(), &'static str> {
        self.rejections.count(reason, peer);
        self.handle.penalize(peer, "sent blocks that do not verify");
        Err(reason)
    }
}

#[cfg(test)]
mod tests {
    use taksa_consensus::block::tx_root;
    use taksa_consensus::{Address, Header, Keypair, Transaction};

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
            state_root: Hash([2; 32]),
            validator_set_hash: Hash([3; 32]),
            parent_cert: None,
        };
        let block = Block { header, txs };
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
