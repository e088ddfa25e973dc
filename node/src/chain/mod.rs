//! The chain actor: runs the chain core ([`taksa_consensus::chain::ChainCore`], which owns the
//! consensus engine and every block that is not final) and executes its effects: disk writes,
//! gossip, block fetches, subscriptions.
//!
//! It runs on its own thread because its work is CPU (execution, signature checks) and
//! synchronous disk writes (fsync of votes and blocks); the network and RPC reach it through a
//! bounded channel ([`ChainMsg`]), read before the bounded queue of transactions to admit
//! ([`Submission`]), so that no flood of transactions delays consensus. Effects run in the order
//! the core returns them, so a `Persist` is durable before any `Broadcast` that follows it, and
//! every effect of one step runs before the next step (the core's rules C1 and C2).
//!
//! The actor is the one owner of the pool: it admits transactions (whose signatures the RPC
//! worker or the gossip check verified) and lends the pool to the core, and the drops a commit
//! causes are part of that block's batch. After each step, and after each batch of admissions,
//! it publishes a [`ChainSnapshot`] (the pool included) that readers query without a lock;
//! a submitter hears the verdict only after that, so a wallet that submits and then reads sees
//! its transaction pending.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use taksa_consensus::chain::{ChainCore, CommitBatch, Config as CoreConfig, Effect, Input, Peer, Penalty, Request};
use taksa_consensus::engine::{Config as EngineConfig, Message, SafetyRecord};
use taksa_consensus::pool::{self, AdmitError, Admitted, DroppedTx, Limits, Mempool};
use taksa_consensus::{codec, Domain, Genesis, Hash, Keypair, Rules, SignedTransaction};
use taksa_rpc::FeedItem;
use taksa_storage::Store;
use tokio::sync::{oneshot, watch};

use crate::backend::dropped_status;

mod snapshot;
pub(crate) use snapshot::{ChainSnapshot, Publisher, SnapshotReader};

/// How many messages may wait for the chain thread.
pub(crate) const INBOX_MAX: usize = 4096;
/// How many transactions may wait for admission (eight full `tx_submitBatch` calls), counted
/// over all submissions; beyond it RPC answers "busy" at once and gossip is ignored (without
/// penalty).
const QUEUED_TXS_MAX: usize = 8 * taksa_rpc::TX_SUBMIT_BATCH_MAX;
/// How many submissions the queue holds: one per transaction at most, so never the bound reached.
const SUBMISSIONS_MAX: usize = QUEUED_TXS_MAX;
/// How many waiting transactions are admitted before the actor publishes and answers them (and
/// looks at its inbox again).
const ADMIT_BATCH_MAX: usize = 256;
/// How long an RPC submission waits for room in a full admission queue before "busy".
const SUBMIT_WAIT: Duration = Duration::from_secs(2);
/// After this many inbox messages in a row with transactions waiting, one batch of them is
/// admitted: consensus comes first, but a busy inbox does not starve admission.
const INBOX_STREAK_MAX: u32 = 64;
/// How many items the live feed holds for its slowest receiver; one that falls further behind
/// re-reads from storage (see `taksa_rpc::Backend::feed`).
pub(crate) const FEED_CAPACITY: usize = 1024;
/// How often sync progress is logged while catching up.
const SYNC_LOG_EVERY_MS: u64 = 2000;

/// What the rest of the node sends to the chain thread.
// Messages are moved once through a bounded channel, never stored in bulk.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ChainMsg {
    /// A consensus message the network checked, a block it fetched, the peers connected now,
    /// an answer to a sync request ([`Input`]).
    Core(Input),
    /// Stop after the current step.
    Shutdown,
}

/// A transaction for the pool, its signature and stateless fields already checked.
#[derive(Clone)]
pub(crate) struct Candidate {
    pub(crate) tx: SignedTransaction,
    pub(crate) hash: Hash,
    /// Its encoded length.
    pub(crate) bytes: usize,
}

/// Transactions for the pool, from one admission call ([`Shared::admit_many`]): `tx_submit` (one),
/// `tx_submitBatch` (at most [`taksa_rpc::TX_SUBMIT_BATCH_MAX`]) or a gossip message (at most
/// `GOSSIP_BATCH_TXS_MAX`). The queue holds at most [`QUEUED_TXS_MAX`] transactions.
pub(crate) struct Submission {
    txs: Vec<Candidate>,
    reply: Reply,
}

/// Who hears the pool's verdicts, in order, once readers can see the pool they describe.
type Reply = oneshot::Sender<Vec<Verdict>>;

/// What the pool decided of a submission.
pub(crate) type Verdict = Result<Admitted, AdmitError>;

/// Why a submission has no verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoVerdict {
    /// The queue stayed full, or the verdict did not come in time; the actor will not admit
    /// it (it skips submissions nobody waits for any more).
    Busy,
    /// The chain actor stopped.
    Stopped,
}

/// What only the chain actor receives: its publisher and its queue of transactions to admit.
pub(crate) struct ActorEnds {
    publisher: Publisher,
    submissions: Receiver<Submission>,
}

/// What every part of the node reads and no part owns: the genesis facts, the store (whose
/// write side only the chain actor uses), and the read ends of what each owner publishes.
pub(crate) struct Shared {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_hash: Hash,
    pub(crate) domain: Domain,
    pub(crate) rules: Rules,
    pub(crate) store: Store,
    /// The chain actor's admission queue.
    submissions: Sender<Submission>,
    /// The chain as of the chain actor's latest step.
    pub(crate) chain: SnapshotReader,
    /// The network, when this node has one (not the dev chain).
    pub(crate) p2p: Option<taksa_p2p::Handle>,
    /// Connected peers, published by the network's sync task.
    pub(crate) peers: watch::Receiver<Arc<[taksa_p2p::PeerInfo]>>,
    /// The p2p addresses this node listens on.
    pub(crate) listen_addrs: Vec<String>,
    /// Our validator address, if we hold a validator key.
    pub(crate) validator: Option<taksa_consensus::Address>,
    /// Set when the node is shutting down (the inbox may be full).
    pub(crate) stopping: AtomicBool,
    /// Transactions in submissions that the actor has not taken yet: the queue's bound
    /// ([`QUEUED_TXS_MAX`]) is in transactions, since one message may carry a whole batch.
    queued_txs: std::sync::atomic::AtomicUsize,
    /// Commits, notarized heads and dropped transactions, for subscriptions.
    pub(crate) feed: tokio::sync::broadcast::Sender<taksa_rpc::FeedItem>,
    /// Transactions waiting to be gossiped together.
    pub(crate) tx_gossip: crate::admission::TxGossip,
}

impl Shared {
    /// Everything derived from the genesis, with no network; the [`ActorEnds`] go to the
    /// chain actor ([`Chain::new`]).
    pub(crate) fn new(
        genesis: Genesis,
        store: Store,
        validator: Option<taksa_consensus::Address>,
    ) -> (Shared, ActorEnds) {
        let genesis_hash = genesis.hash();
        let rules = Rules {
            chain_id: genesis.chain_id.clone(),
            genesis_hash,
            fee_floor: genesis.fee_floor,
            epochs: genesis.epochs(),
        };
        // The epoch and set consensus runs at the stored head; the actor publishes each next one.
        let epoch = genesis.epochs().after(store.head().height);
        let (publisher, chain) = Publisher::new(epoch, Arc::new(store.governance().set()));
        let (submissions, submissions_rx) = crossbeam_channel::bounded(SUBMISSIONS_MAX);
        let shared = Shared {
            domain: Domain { chain_id: genesis.chain_id.clone(), genesis_hash, epoch: 0 },
            genesis,
            genesis_hash,
            rules,
            store,
            submissions,
            chain,
            p2p: None,
            // No network task publishes on the dev chain: no peers, ever.
            peers: watch::channel(Arc::from(Vec::new())).1,
            listen_addrs: Vec::new(),
            validator,
            stopping: AtomicBool::new(false),
            queued_txs: std::sync::atomic::AtomicUsize::new(0),
            feed: tokio::sync::broadcast::channel(FEED_CAPACITY).0,
            tx_gossip: crate::admission::TxGossip::default(),
        };
        (shared, ActorEnds { publisher, submissions: submissions_rx })
    }

    /// Queues one checked transaction without waiting, for tests that drive the actor by hand:
    /// the verdict (a list of one) arrives on the returned receiver.
    #[cfg(test)]
    pub(crate) fn submit(
        &self,
        tx: SignedTransaction,
        hash: Hash,
        bytes: usize,
    ) -> Result<oneshot::Receiver<Vec<Verdict>>, NoVerdict> {
        self.enqueue(vec![Candidate { tx, hash, bytes }])
    }

    /// [`Shared::submit_many_and_wait`] for one transaction.
    #[cfg(test)]
    pub(crate) fn submit_and_wait(
        &self,
        tx: SignedTransaction,
        hash: Hash,
        bytes: usize,
    ) -> Result<Verdict, NoVerdict> {
        let mut verdicts = self.submit_many_and_wait(vec![Candidate { tx, hash, bytes }])?;
        verdicts.pop().ok_or(NoVerdict::Stopped)
    }

    /// Queues checked transactions for the chain actor as one submission, if
    /// [`QUEUED_TXS_MAX`] leaves room for them; otherwise [`NoVerdict::Busy`] at once.
    fn enqueue(&self, txs: Vec<Candidate>) -> Result<oneshot::Receiver<Vec<Verdict>>, NoVerdict> {
        let n = txs.len();
        let before = self.queued_txs.fetch_add(n, Ordering::AcqRel);
        if before + n > QUEUED_TXS_MAX {
            self.queued_txs.fetch_sub(n, Ordering::AcqRel);
            return Err(NoVerdict::Busy);
        }
        let (reply, verdicts) = oneshot::channel();
        // Every submission holds a transaction, so the message bound is never the one reached.
        if let Err(e) = self.submissions.try_send(Submission { txs, reply }) {
            self.queued_txs.fetch_sub(n, Ordering::AcqRel);
            return Err(match e {
                TrySendError::Full(_) => NoVerdict::Busy,
                TrySendError::Disconnected(_) => NoVerdict::Stopped,
            });
        }
        Ok(verdicts)
    }

    /// Hands checked transactions (at most [`taksa_rpc::TX_SUBMIT_BATCH_MAX`]) to the chain actor
    /// as one submission ([`Shared::enqueue`]) and waits for their verdicts, in order, for a
    /// caller that may block (an RPC worker, a gossip check): at most [`SUBMIT_WAIT`] (the actor
    /// admits between consensus steps).
    pub(crate) fn submit_many_and_wait(&self, txs: Vec<Candidate>) -> Result<Vec<Verdict>, NoVerdict> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let verdicts = self.enqueue(txs)?;
        // Parked by the runtime, not spinning: dozens of RPC workers wait at once on two cores.
        let answer = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.block_on(async { tokio::time::timeout(SUBMIT_WAIT, verdicts).await }),
            // Outside the node's runtime (a unit test's thread); the actor's `Drop` answers
            // every submission it leaves behind.
            Err(_) => Ok(verdicts.blocking_recv()),
        };
        match answer {
            Ok(Ok(verdicts)) => Ok(verdicts),
            Ok(Err(_)) => Err(NoVerdict::Stopped),
            // Given up: those admitted in the instant before show in the published pool, and a
            // resubmission answers their hashes.
            Err(_) => Err(NoVerdict::Busy),
        }
    }

    /// The chain as of the actor's latest step.
    pub(crate) fn chain(&self) -> Arc<ChainSnapshot> {
        Arc::clone(&self.chain.borrow())
    }

    /// Announces `item` to subscribers; nobody listening is fine.
    pub(crate) fn announce(&self, item: taksa_rpc::FeedItem) {
        let _ = self.feed.send(item);
    }
}

/// What the chain thread asks of the network.
pub(crate) trait Network: Send {
    /// Sends a consensus message to every peer. An error means it did not leave this node.
    fn broadcast(&self, msg: &Message) -> Result<(), taksa_p2p::Error>;
    /// Asks peers for the block with this hash; it arrives as [`Input::Fetched`].
    fn fetch_block(&self, hash: Hash);
    /// Sends a sync request; the answer (or its failure) arrives as [`Input::Response`].
    fn request(&self, peer: Peer, id: u64, request: Request);
    /// Lowers a peer's score for something no honest peer does.
    fn penalize(&self, peer: Peer, penalty: Penalty);
    /// The peer's name for logs.
    fn describe(&self, peer: Peer) -> String;
}

/// The network of a single-validator chain: nobody to tell, nobody to ask.
pub(crate) struct Alone;

impl Network for Alone {
    fn broadcast(&self, _msg: &Message) -> Result<(), taksa_p2p::Error> {
        Ok(())
    }
    fn fetch_block(&self, _hash: Hash) {}
    fn request(&self, _peer: Peer, _id: u64, _request: Request) {}
    fn penalize(&self, _peer: Peer, _penalty: Penalty) {}
    fn describe(&self, peer: Peer) -> String {
        format!("#{}", peer.0)
    }
}

/// The chain thread's state.
pub(crate) struct Chain {
    shared: Arc<Shared>,
    core: ChainCore,
    network: Box<dyn Network>,
    inbox: Receiver<ChainMsg>,
    submissions: Receiver<Submission>,
    /// The pool: owned here, lent to the core for each step.
    pool: RefCell<Mempool>,
    publisher: Publisher,
    /// What subscribers are told of this step, sent once readers can see it (after the
    /// snapshot is published), so that a subscriber that reads on an event reads its effect.
    feed_out: Vec<FeedItem>,
    /// Inbox messages handled in a row while transactions waited.
    inbox_streak: u32,
    /// When sync progress was last logged.
    sync_logged_ms: u64,
    /// Blocks only when transactions wait (engine rule D1).
    on_demand: bool,
    /// On demand: transactions admitted since the leader was last woken.
    unsealed: usize,
}

/// A short name of a consensus message for debug logs.
fn message_kind(msg: &Message) -> String {
    match msg {
        Message::Proposal { .. } => "proposal".to_owned(),
        Message::Vote(v) => format!("{:?} vote by {:?}", v.kind, v.signer),
        Message::Certificate(c) => format!("{:?} certificate", c.kind),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The consensus safety record the store holds, decoded.
pub(crate) fn stored_safety_record(store: &Store) -> anyhow::Result<Option<SafetyRecord>> {
    let Some(bytes) = store.safety_record()? else { return Ok(None) };
    let record = codec::decode::<SafetyRecord>(&bytes, codec::MESSAGE_BYTES_MAX)
        .context("the stored consensus safety record does not decode: the data folder is corrupt")?;
    Ok(Some(record))
}

impl Chain {
    /// Restores the core from the finalized head, the last safety record and the blocks stored
    /// pending (re-executed on [`Input::Start`]).
    pub(crate) fn new(
        shared: Arc<Shared>,
        keys: Vec<Keypair>,
        on_demand: bool,
        network: Box<dyn Network>,
        inbox: Receiver<ChainMsg>,
        ends: ActorEnds,
    ) -> anyhow::Result<Chain> {
        let record = stored_safety_record(&shared.store)?;
        let pending = shared.store.pending_blocks().context("reading uncommitted blocks")?;
        let block_time_ms = shared.genesis.block_time_ms;
        let engine = EngineConfig {
            domain: shared.domain.clone(),
            // The core replaces the domain's epoch and the set with each epoch's.
            validators: shared.store.governance().set(),
            epochs: shared.rules.epochs,
            key: keys.first().cloned(),
            // On demand, the next block may follow at once: pacing is what transactions wait.
            block_time_ms: if on_demand { 0 } else { block_time_ms },
            // A view whose leader is down costs block time plus this; one block time of slack
            // covers a proposal's trip and execution on loopback and LAN.
            timeout_base_ms: block_time_ms.max(1000),
            timeout_max_ms: 8000,
            future_timestamp_ms_max: 2000,
            on_demand,
        };
        let cfg = CoreConfig { engine, rules: shared.rules.clone(), more_keys: keys.iter().skip(1).cloned().collect() };
        let core = ChainCore::new(cfg, &shared.store, record, pending);
        let ActorEnds { publisher, submissions } = ends;
        let pool = RefCell::new(Mempool::new(Limits { fee_floor: shared.genesis.fee_floor, ..Limits::default() }));
        Ok(Chain {
            shared,
            core,
            network,
            inbox,
            submissions,
            pool,
            publisher,
            feed_out: Vec::new(),
            inbox_streak: 0,
            sync_logged_ms: 0,
            on_demand,
            unsealed: 0,
        })
    }

    /// Runs until shutdown; an error means the node must stop (a write failed, or the core
    /// halted on a broken invariant).
    pub(crate) fn run(mut self) -> anyhow::Result<()> {
        self.step(Input::Start)?;
        loop {
            if self.shared.stopping.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = now_ms();
            if self.core.next_deadline_ms().is_some_and(|at| at <= now) {
                self.step(Input::Tick)?;
            }
            let wait_ms = self.core.next_deadline_ms().map_or(1000, |at| at.saturating_sub(now_ms()).min(1000));
            // Biased: consensus and sync first, transactions when nothing else waits.
            crossbeam_channel::select_biased! {
                recv(self.inbox) -> msg => match msg {
                    Ok(ChainMsg::Shutdown) | Err(_) => return Ok(()),
                    Ok(msg) => {
                        self.handle(msg)?;
                        self.admit_if_starved()?;
                    }
                },
                recv(self.submissions) -> submission => match submission {
                    Ok(first) => self.admit(first)?,
                    // `Shared` holds a sender as long as this actor runs.
                    Err(_) => return Ok(()),
                },
                default(Duration::from_millis(wait_ms)) => {}
            }
        }
    }

    /// Counts inbox messages handled while transactions wait, and admits a batch of them
    /// after [`INBOX_STREAK_MAX`] in a row.
    fn admit_if_starved(&mut self) -> anyhow::Result<()> {
        if self.submissions.is_empty() {
            return Ok(());
        }
        self.inbox_streak += 1;
        if self.inbox_streak >= INBOX_STREAK_MAX {
            if let Ok(first) = self.submissions.try_recv() {
                self.admit(first)?;
            }
        }
        Ok(())
    }

    /// Admits `first` and whatever else waits (up to [`ADMIT_BATCH_MAX`]), publishes, tells
    /// each submitter its verdict, then wakes an idle on-demand leader (`taksa dev --instant`).
    fn admit(&mut self, first: Submission) -> anyhow::Result<()> {
        self.inbox_streak = 0;
        let next_height = self.core.head().height.saturating_add(1);
        let mut replies = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(Submission { txs, reply }) = next.take() {
            taken += txs.len().max(1);
            self.shared.queued_txs.fetch_sub(txs.len(), Ordering::AcqRel);
            // Nobody waits for them any more (the submitter was told "busy"): not admitted.
            if !reply.is_closed() {
                let mut pool = self.pool.borrow_mut();
                let verdicts: Vec<Verdict> = txs
                    .into_iter()
                    .map(|c| pool.admit(c.tx, c.hash, c.bytes, &self.shared.store, next_height))
                    .collect();
                replies.push((reply, verdicts));
            }
            if taken < ADMIT_BATCH_MAX {
                next = self.submissions.try_recv().ok();
            }
        }
        self.pool_outputs();
        self.publish();
        for item in self.feed_out.drain(..) {
            self.shared.announce(item);
        }
        let mut admitted = 0;
        for (reply, verdicts) in replies {
            admitted += verdicts.iter().filter(|v| v.is_ok()).count();
            // A submitter that stopped waiting is fine.
            let _ = reply.send(verdicts);
        }
        self.unsealed = self.unsealed.saturating_add(admitted);
        // Group commit under load: more submissions waiting join this block, up to a batch, as
        // long as they bring something (a stream of refused ones must not hold a block back).
        let more_coming = !self.submissions.is_empty() && admitted > 0;
        if self.on_demand && self.unsealed > 0 && (!more_coming || self.unsealed >= ADMIT_BATCH_MAX) {
            self.unsealed = 0;
            self.step(Input::Admitted)?;
        }
        Ok(())
    }

    /// Records and announces what admission dropped (replaced, evicted), and gossips the queued
    /// transactions that became proposable (their gap filled).
    fn pool_outputs(&mut self) {
        let (drops, promoted) = {
            let mut pool = self.pool.borrow_mut();
            (pool.take_drops(), pool.take_promoted())
        };
        if !drops.is_empty() {
            let height = self.core.head().height;
            let items: Vec<(Hash, DroppedTx)> = drops.iter().map(|d| (d.hash, d.record(height))).collect();
            // Evictions are free to cause, so they are announced but not written (see `evict`).
            let recorded: Vec<(Hash, DroppedTx)> =
                items.iter().filter(|(_, d)| d.reason != pool::EVICTED).cloned().collect();
            if let Err(e) = self.shared.store.put_dropped(&recorded) {
                tracing::error!(target: "mempool", error = %e, "could not record dropped transactions");
            }
            announce_dropped(&mut self.feed_out, &items);
        }
        // Peers that saw them while they were queued drop the copies as duplicates.
        self.shared.gossip_txs(promoted.iter().map(|stx| SignedTransaction::clone(stx)).collect());
    }

    /// Publishes the chain as it is now ([`ChainSnapshot`]).
    fn publish(&mut self) {
        let pool = self.pool.borrow().clone();
        self.publisher.publish(self.core.status(), self.core.sync_view(), self.core.timeouts(), pool);
    }

    fn handle(&mut self, msg: ChainMsg) -> anyhow::Result<()> {
        match msg {
            ChainMsg::Core(input) => {
                if let Input::Consensus(msg) = &input {
                    tracing::debug!(target: "consensus", view = msg.view(), kind = message_kind(msg), "received");
                    match msg {
                        Message::Vote(vote) => self.publisher.saw_validator(&vote.signer, now_ms()),
                        Message::Proposal { leader_vote, .. } => {
                            self.publisher.saw_validator(&leader_vote.signer, now_ms());
                        }
                        // A certificate may be relayed by anyone: it says nothing of who is
                        // online now.
                        Message::Certificate(_) => {}
                    }
                }
                self.step(input)
            }
            ChainMsg::Shutdown => Ok(()),
        }
    }

    /// Steps the core and runs its effects in order (C1, C2).
    fn step(&mut self, input: Input) -> anyhow::Result<()> {
        let shared = Arc::clone(&self.shared);
        let now = now_ms();
        let effects = self.core.step(&shared.store, &self.pool, input, now);
        for effect in effects {
            self.execute(effect)?;
        }
        self.pool_outputs();
        // After the step's writes: what readers see is on disk; and then what subscribers hear.
        self.publish();
        for item in self.feed_out.drain(..) {
            shared.announce(item);
        }
        let sync = self.core.sync_view();
        if sync.syncing && now.saturating_sub(self.sync_logged_ms) >= SYNC_LOG_EVERY_MS {
            self.sync_logged_ms = now;
            let height = self.core.head().height;
            let rate = sync.blocks_per_second.map(|r| format!("{r:.0}")).unwrap_or_default();
            tracing::info!(target: "sync", height, target = sync.target_height, blocks_per_s = rate, "syncing");
        }
        Ok(())
    }

    fn execute(&mut self, effect: Effect) -> anyhow::Result<()> {
        let shared = &*self.shared;
        match effect {
            Effect::Persist(record) => {
                // Durable before any later effect of this step leaves the node (no double sign).
                shared.store.put_safety_record(&codec::encode(&record)).context("persisting a vote failed")?;
            }
            Effect::StorePending(block) => {
                // The vote's fsync that follows makes this write durable too (one write-ahead log).
                shared.store.put_pending(&block).context("storing an executed block failed")?;
            }
            Effect::Commit(batch) => self.commit(*batch)?,
            Effect::Broadcast(msg) => {
                tracing::debug!(target: "consensus", view = msg.view(), kind = message_kind(&msg), "broadcast");
                self.broadcast(&msg)?;
            }
            Effect::Fetch(hash) => {
                tracing::debug!(target: "consensus", %hash, "fetching a missing block");
                self.network.fetch_block(hash);
            }
            Effect::Dropped(items) => {
                if let Err(e) = shared.store.put_dropped(&items) {
                    tracing::error!(target: "mempool", error = %e, "could not record dropped transactions");
                }
                announce_dropped(&mut self.feed_out, &items);
            }
            Effect::Notarized(header) => {
                tracing::debug!(target: "consensus", view = header.view, height = header.height, "notarized");
                self.feed_out.push(FeedItem::Notarized(header));
            }
            Effect::Evidence(e) => {
                tracing::warn!(target: "consensus", signer = %e.a.signer.to_bech32(&shared.genesis.address_hrp), view = e.a.view, "equivocation evidence");
                self.publisher.evidence(e);
            }
            Effect::Invalid { hash, error } => {
                tracing::warn!(target: "consensus", %hash, %error, "block does not execute");
            }
            Effect::Request { peer, id, request } => self.network.request(peer, id, request),
            Effect::Penalize { peer, penalty, detail } => {
                if !detail.is_empty() {
                    let peer = self.network.describe(peer);
                    tracing::warn!(target: "sync", %peer, reason = %detail, "refused blocks from a peer");
                }
                self.network.penalize(peer, penalty);
            }
            Effect::SyncStopped { peer, reason } => {
                let peer = self.network.describe(peer);
                tracing::info!(target: "sync", %peer, reason, "sync from a peer stopped; trying others");
            }
            Effect::Halt(why) => return Err(anyhow::anyhow!(why)),
            Effect::EpochStarted { epoch, validators } => {
                tracing::info!(target: "consensus", epoch, validators = validators.len(), "epoch started");
                self.publisher.set_epoch(epoch, validators);
            }
        }
        Ok(())
    }

    /// Writes one block's batch (with the drops it caused) and tells subscribers.
    fn commit(&mut self, batch: CommitBatch) -> anyhow::Result<()> {
        let shared = &*self.shared;
        let CommitBatch { block, outcome, finalization, dropped, live } = batch;
        let events = shared
            .store
            .commit_block(&block, finalization.as_ref(), &outcome, &dropped)
            .context("committing a block failed")?;
        let h = &block.header;
        tracing::info!(target: "consensus", height = h.height, hash = %block.hash(), view = h.view, txs = block.txs.len(), "committed block");
        if live {
            self.publisher.finality_lag(now_ms().saturating_sub(h.timestamp_ms));
        }
        self.feed_out.push(FeedItem::Committed(Arc::new(events)));
        announce_dropped(&mut self.feed_out, &dropped);
        Ok(())
    }

    /// Sends our own consensus message. Every message the engine makes fits its limit (blocks
    /// are built within [`taksa_consensus::codec::BLOCK_BYTES_MAX`]), so one that does not is a
    /// broken invariant that stops the node; a network too busy to take it costs this view at
    /// most (votes are sent again at each timeout).
    fn broadcast(&self, msg: &Message) -> anyhow::Result<()> {
        match self.network.broadcast(msg) {
            Ok(()) => Ok(()),
            Err(e @ taksa_p2p::Error::TooLarge { .. }) => Err(anyhow::anyhow!(
                "internal error: our own {} for view {} is too large to send ({e}); this is a bug, please report it",
                message_kind(msg),
                msg.view()
            )),
            Err(taksa_p2p::Error::Closed) if self.shared.stopping.load(Ordering::Relaxed) => Ok(()),
            Err(taksa_p2p::Error::Closed) => Err(anyhow::anyhow!("the p2p network stopped while consensus runs")),
            Err(e) => {
                tracing::warn!(target: "p2p", error = %e, view = msg.view(), kind = message_kind(msg), "could not send a consensus message");
                Ok(())
            }
        }
    }
}

impl Drop for Chain {
    /// Drops the submissions nobody will admit, so that their submitters hear at once that
    /// there is no verdict instead of waiting out their time.
    fn drop(&mut self) {
        while self.submissions.try_recv().is_ok() {}
    }
}

/// Logs dropped transactions and queues them for subscribers.
fn announce_dropped(feed: &mut Vec<FeedItem>, items: &[(Hash, DroppedTx)]) {
    for (h, d) in items {
        tracing::info!(target: "mempool", hash = %h, reason = %d.reason, "dropped transaction");
        feed.push(FeedItem::Dropped { hash: *h, status: dropped_status(d) });
    }
}

#[cfg(test)]
mod tests;
