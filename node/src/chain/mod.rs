//! The chain service: drives the consensus engine, builds and executes blocks, commits what is
//! finalized, catches up from peers, and keeps the pool in step with the chain.
//!
//! It runs on its own thread because its work is CPU (execution, signature checks) and
//! synchronous disk writes (fsync of votes and blocks); the network and RPC reach it through a
//! bounded channel ([`ChainMsg`]). Effects are executed in the order the engine emits them, so a
//! `Persist` is durable before any `Broadcast` that follows it.
//!
//! Blocks move through three places: `seen` (proposals and fetched blocks, not executed),
//! `pending` (executed on their parent's state, not final) and storage (final). A block the
//! engine asks about whose ancestors are missing is parked, the missing block is fetched by hash
//! ([`Network::fetch_block`]), and the work resumes when it arrives. A node far behind catches
//! up by height instead ([`ChainMsg::Synced`], driven by `crate::network::sync`).

mod blocks;
mod commit;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use taksa_consensus::engine::{Config as EngineConfig, Effect, Engine, Input, Message, SafetyRecord, Status, Tip};
use taksa_consensus::state::Outcome;
use taksa_consensus::{codec, Block, Certificate, Domain, Evidence, Genesis, Hash, Keypair, Rules, ValidatorSet};
use taksa_p2p::FinalizedBlock;
use taksa_storage::Store;

use crate::mempool::Mempool;

/// How many messages may wait for the chain thread.
pub(crate) const INBOX_MAX: usize = 4096;
/// How many evidence items are kept for RPC.
const EVIDENCE_KEPT_MAX: usize = 1024;
/// How many items the live feed holds for its slowest receiver; one that falls further behind
/// re-reads from storage (see `taksa_rpc::Backend::feed`).
pub(crate) const FEED_CAPACITY: usize = 1024;
/// How many recent finality lags the explorer's figure averages.
const FINALITY_LAGS_KEPT: usize = 100;

/// What the rest of the node sends to the chain thread.
pub(crate) enum ChainMsg {
    /// A consensus message from a peer; the network checked its signatures already.
    Consensus(Message),
    /// A block fetched by hash after [`Network::fetch_block`] (the hash was checked).
    Fetched(Block),
    /// Finalized blocks from a peer, ascending from our next height (see
    /// [`Chain::apply_synced`]). `fresh` starts a new session from our committed head; `cover`
    /// is the peer's certified head (height, hash, finalization), which makes the blocks that
    /// link to it final. The reply says the next height to ask for, or why the peer's answer
    /// was refused (the peer is penalised).
    Synced {
        blocks: Vec<FinalizedBlock>,
        fresh: bool,
        cover: (u64, Hash, Certificate),
        reply: tokio::sync::oneshot::Sender<Result<u64, String>>,
    },
    /// Stop after the current step.
    Shutdown,
}

/// Catch-up progress, for RPC and logs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SyncStatus {
    /// The highest finalized height a peer reported.
    pub(crate) target_height: Option<u64>,
    /// Whether we are more than a couple of blocks behind it.
    pub(crate) syncing: bool,
    /// Blocks per second over the last batch.
    pub(crate) blocks_per_second: Option<f64>,
}

/// What the chain thread shares with RPC handlers and the network tasks.
pub(crate) struct Shared {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_hash: Hash,
    pub(crate) domain: Domain,
    pub(crate) validators: ValidatorSet,
    pub(crate) rules: Rules,
    pub(crate) store: Store,
    pub(crate) mempool: Mutex<Mempool>,
    pub(crate) evidence: RwLock<Vec<Evidence>>,
    /// The engine's status after its latest step.
    pub(crate) status: RwLock<Option<Status>>,
    pub(crate) sync: RwLock<SyncStatus>,
    /// The network, when this node has one (not the dev chain).
    pub(crate) p2p: Option<taksa_p2p::Handle>,
    /// Connected peers, refreshed by the network tasks.
    pub(crate) peers: RwLock<Vec<taksa_p2p::PeerInfo>>,
    pub(crate) listen_addrs: RwLock<Vec<String>>,
    /// Our validator address, if we hold a validator key.
    pub(crate) validator: Option<taksa_consensus::Address>,
    /// Set when the node is shutting down (the inbox may be full).
    pub(crate) stopping: AtomicBool,
    /// Commits, notarized heads and dropped transactions, for subscriptions.
    pub(crate) feed: tokio::sync::broadcast::Sender<taksa_rpc::FeedItem>,
    /// When each validator (in set order) last sent a valid consensus message, Unix ms.
    pub(crate) last_seen: RwLock<Vec<Option<u64>>>,
    /// Views this node left by timeout since it started.
    pub(crate) timeouts: AtomicU64,
    /// Commit time minus block timestamp, in ms, for the newest blocks committed live.
    pub(crate) finality_lags_ms: Mutex<VecDeque<u64>>,
}

impl Shared {
    /// Everything derived from the genesis, with no network.
    pub(crate) fn new(
        genesis: Genesis,
        store: Store,
        mempool: Mempool,
        validator: Option<taksa_consensus::Address>,
    ) -> Shared {
        let genesis_hash = genesis.hash();
        let genesis_validators = genesis.validators.len();
        let rules = Rules {
            chain_id: genesis.chain_id.clone(),
            genesis_hash,
            fee_floor: genesis.fee_floor,
            validators: genesis.validator_set(),
        };
        Shared {
            domain: Domain { chain_id: genesis.chain_id.clone(), genesis_hash },
            validators: genesis.validator_set(),
            genesis,
            genesis_hash,
            rules,
            store,
            mempool: Mutex::new(mempool),
            evidence: RwLock::new(Vec::new()),
            status: RwLock::new(None),
            sync: RwLock::new(SyncStatus::default()),
            p2p: None,
            peers: RwLock::new(Vec::new()),
            listen_addrs: RwLock::new(Vec::new()),
            validator,
            stopping: AtomicBool::new(false),
            feed: tokio::sync::broadcast::channel(FEED_CAPACITY).0,
            last_seen: RwLock::new(vec![None; genesis_validators]),
            timeouts: AtomicU64::new(0),
            finality_lags_ms: Mutex::new(VecDeque::with_capacity(FINALITY_LAGS_KEPT)),
        }
    }

    /// Notes that `validator` just sent a valid consensus message.
    pub(crate) fn saw_validator(&self, validator: &taksa_consensus::Address) {
        if let (Some(i), Ok(mut seen)) = (self.validators.index_of(validator), self.last_seen.write()) {
            if let Some(slot) = seen.get_mut(i) {
                *slot = Some(now_ms());
            }
        }
    }

    /// Announces `item` to subscribers; nobody listening is fine.
    pub(crate) fn announce(&self, item: taksa_rpc::FeedItem) {
        let _ = self.feed.send(item);
    }

    /// Records how long after its timestamp a block became final here.
    fn record_finality_lag(&self, timestamp_ms: u64) {
        if let Ok(mut lags) = self.finality_lags_ms.lock() {
            if lags.len() >= FINALITY_LAGS_KEPT {
                lags.pop_front();
            }
            lags.push_back(now_ms().saturating_sub(timestamp_ms));
        }
    }
}

/// What the chain thread asks of the network.
pub(crate) trait Network: Send {
    /// Sends a consensus message to every peer. An error means it did not leave this node.
    fn broadcast(&self, msg: &Message) -> Result<(), taksa_p2p::Error>;
    /// Asks peers for the block with this hash; it arrives as [`ChainMsg::Fetched`].
    fn fetch_block(&self, hash: Hash);
}

/// The network of a single-validator chain: nobody to tell, nobody to ask.
pub(crate) struct Alone;

impl Network for Alone {
    fn broadcast(&self, _msg: &Message) -> Result<(), taksa_p2p::Error> {
        Ok(())
    }
    fn fetch_block(&self, _hash: Hash) {}
}

struct PendingBlock {
    block: Block,
    outcome: Outcome,
}

/// Work parked until a missing block arrives.
#[derive(Default)]
struct Parked {
    /// Blocks the engine asked us to verify.
    verify: Vec<Block>,
    /// Our own proposal: (view, parent, parent height, parent_cert).
    propose: Option<(u64, Hash, u64, Option<Certificate>)>,
    /// The highest finalized block not yet committed here: (hash, height, certificate).
    commit: Option<(Hash, u64, Certificate)>,
}

/// The chain thread's state.
pub(crate) struct Chain {
    shared: Arc<Shared>,
    engine: Engine,
    key: Option<Keypair>,
    network: Box<dyn Network>,
    /// Executed on their parent's state, not yet final.
    pending: HashMap<Hash, PendingBlock>,
    /// Proposals and fetched blocks not yet executed (bounded, see `blocks::SEEN_MAX`).
    seen: HashMap<Hash, Block>,
    parked: Parked,
    /// Blocks asked for by hash, with when (Unix ms), so one is not asked for twice at once.
    fetching: BTreeMap<Hash, u64>,
    /// Blocks executed from the current sync session that no finalization covers yet, lowest
    /// first (at most `commit::SYNC_STAGED_MAX`). They count for nothing until one does.
    staged: Vec<(Hash, u64)>,
    timers: BTreeSet<(u64, u64)>,
    inbox: Receiver<ChainMsg>,
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

impl Chain {
    /// Restores the engine from the finalized head and the last safety record.
    pub(crate) fn new(
        shared: Arc<Shared>,
        key: Option<Keypair>,
        network: Box<dyn Network>,
        inbox: Receiver<ChainMsg>,
    ) -> anyhow::Result<Chain> {
        let head = shared.store.head();
        let record = match shared.store.safety_record()? {
            Some(bytes) => Some(
                codec::decode::<SafetyRecord>(&bytes, codec::MESSAGE_BYTES_MAX)
                    .context("the stored consensus safety record does not decode: the data folder is corrupt")?,
            ),
            None => None,
        };
        let block_time_ms = shared.genesis.block_time_ms;
        let config = EngineConfig {
            domain: shared.domain.clone(),
            validators: shared.validators.clone(),
            key: key.clone(),
            block_time_ms,
            // A view whose leader is down costs block time plus this; one block time of slack
            // covers a proposal's trip and execution on loopback and LAN.
            timeout_base_ms: block_time_ms.max(1000),
            timeout_max_ms: 8000,
            future_timestamp_ms_max: 2000,
        };
        let tip = Tip { height: head.height, view: head.view, hash: head.hash(), timestamp_ms: head.timestamp_ms };
        let engine = Engine::new(config, tip, record);
        let mut chain = Chain {
            shared,
            engine,
            key,
            network,
            pending: HashMap::new(),
            seen: HashMap::new(),
            parked: Parked::default(),
            fetching: BTreeMap::new(),
            staged: Vec::new(),
            timers: BTreeSet::new(),
            inbox,
        };
        chain.restore_pending()?;
        Ok(chain)
    }

    /// Re-executes the blocks this node built or verified but had not committed when it stopped:
    /// the engine may have voted to finalize one of them, and after a crash it asks to commit it.
    fn restore_pending(&mut self) -> anyhow::Result<()> {
        let blocks = self.shared.store.pending_blocks().context("reading uncommitted blocks")?;
        let head = self.shared.store.head().height;
        let mut restored = 0usize;
        for block in blocks {
            if block.header.height > head {
                self.remember(block);
            }
        }
        let known: Vec<(Hash, u64)> = self.seen.iter().map(|(h, b)| (*h, b.header.height)).collect();
        for (hash, height) in known {
            if matches!(self.prepare(hash, height), blocks::Ready::Yes) {
                restored += 1;
            }
        }
        if restored > 0 {
            tracing::info!(target: "consensus", restored, "re-executed uncommitted blocks from before the restart");
        }
        Ok(())
    }

    /// Runs until shutdown; an error means the node must stop (a write failed).
    pub(crate) fn run(mut self) -> anyhow::Result<()> {
        self.step(Input::Start)?;
        loop {
            if self.shared.stopping.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = now_ms();
            while let Some(&(at, view)) = self.timers.first() {
                if at > now {
                    break;
                }
                self.timers.pop_first();
                if self.engine.status().view == view {
                    self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                self.step(Input::Timer { view })?;
            }
            let wait_ms = self.timers.first().map_or(1000, |(at, _)| at.saturating_sub(now_ms()).min(1000));
            match self.inbox.recv_timeout(Duration::from_millis(wait_ms)) {
                Ok(ChainMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(msg) => self.handle(msg)?,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.retry_fetches();
        }
    }

    fn handle(&mut self, msg: ChainMsg) -> anyhow::Result<()> {
        match msg {
            ChainMsg::Consensus(msg) => {
                tracing::debug!(target: "consensus", view = msg.view(), kind = message_kind(&msg), "received");
                if let Message::Proposal { block, .. } = &msg {
                    self.remember(block.clone());
                }
                self.step(Input::Message(msg))
            }
            ChainMsg::Fetched(block) => {
                if self.fetching.remove(&block.hash()).is_some() {
                    self.remember(block);
                    self.resume()?;
                }
                Ok(())
            }
            ChainMsg::Synced { blocks, fresh, cover, reply } => {
                let result = self.apply_synced(blocks, fresh, &cover)?;
                let _ = reply.send(result);
                self.resume()
            }
            ChainMsg::Shutdown => Ok(()),
        }
    }

    fn step(&mut self, first: Input) -> anyhow::Result<()> {
        let mut inputs = vec![first];
        while let Some(input) = inputs.pop() {
            let effects = self.engine.step(input, now_ms());
            for effect in effects {
                if let Some(next) = self.execute(effect)? {
                    inputs.push(next);
                }
            }
        }
        if let Ok(mut status) = self.shared.status.write() {
            *status = Some(self.engine.status());
        }
        Ok(())
    }

    fn execute(&mut self, effect: Effect) -> anyhow::Result<Option<Input>> {
        match effect {
            Effect::Propose { view, parent, parent_height, parent_cert } => {
                Ok(self.propose(view, parent, parent_height, parent_cert))
            }
            Effect::Verify { block } => Ok(self.verify(block)),
            Effect::Persist(record) => {
                // Durable before any later effect of this step leaves the node (no double sign).
                self.shared.store.put_safety_record(&codec::encode(&record)).context("persisting a vote failed")?;
                Ok(None)
            }
            Effect::Broadcast(msg) => {
                tracing::debug!(target: "consensus", view = msg.view(), kind = message_kind(&msg), "broadcast");
                self.broadcast(&msg)?;
                Ok(None)
            }
            Effect::SetTimer { view, at_ms } => {
                self.timers.insert((at_ms, view));
                Ok(None)
            }
            Effect::Notarized { certificate } => {
                tracing::debug!(target: "consensus", view = certificate.view, "notarized");
                let executed = certificate.block_hash.and_then(|h| self.pending.get(&h));
                if let Some(p) = executed {
                    self.shared.announce(taksa_rpc::FeedItem::Notarized(Arc::new(p.block.header.clone())));
                }
                Ok(None)
            }
            Effect::Finalized { block_hash, height, certificate } => {
                self.on_finalized(block_hash, height, certificate)?;
                Ok(None)
            }
            Effect::Evidence(e) => {
                tracing::warn!(target: "consensus", signer = %e.a.signer.to_bech32(&self.shared.genesis.address_hrp), view = e.a.view, "equivocation evidence");
                if let Ok(mut list) = self.shared.evidence.write() {
                    if list.len() >= EVIDENCE_KEPT_MAX {
                        list.remove(0);
                    }
                    list.push(e);
                }
                Ok(None)
            }
        }
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

    /// Retries parked work after a block arrived or the head moved.
    fn resume(&mut self) -> anyhow::Result<()> {
        if let Some((view, parent, parent_height, cert)) = self.parked.propose.take() {
            if let Some(input) = self.propose(view, parent, parent_height, cert) {
                self.step(input)?;
            }
        }
        for block in std::mem::take(&mut self.parked.verify) {
            if let Some(input) = self.verify(block) {
                self.step(input)?;
            }
        }
        self.try_commit()
    }
}

#[cfg(test)]
mod tests;
