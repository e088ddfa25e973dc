//! The chain core: the layer around the consensus engine, as a pure state machine.
//!
//! It owns the engine and every block that is not final yet, and turns consensus into a chain:
//! it builds our proposals from the pool, executes and verifies others' proposals, fetches
//! missing ancestors by hash, commits what is finalized (live, or from finalized blocks a peer
//! sent while we caught up), and keeps the pool in step with each commit. Like the engine it is
//! `step(input, now) -> effects`: no clock, RNG, thread or disk. The node runs the effects
//! (fsync, gossip, requests); the simulation (`consensus/tests/it/sim_chain`) runs them on an
//! in-memory store and network, so the same code is tested under faults and lies.
//!
//! Blocks move through three places: `seen` (proposals and fetched blocks, not executed),
//! `pending` (executed on their parent's state, not final) and the store (final). A block the
//! engine asks about whose ancestors are missing is parked, the missing block is fetched by
//! hash ([`Effect::Fetch`]), and the work resumes when it arrives ([`Input::Fetched`]).
//!
//! Rules of [`ChainCore::step`], cited by tag:
//! - **C1 order.** Effects are causal and must run in order: a block's [`Effect::StorePending`]
//!   comes before the engine's [`Effect::Persist`] of the vote that names it, which comes before
//!   the [`Effect::Broadcast`] of that vote.
//! - **C2 one writer.** The caller runs every effect of a step before the next step. Blocks
//!   committed within a step stay as layers over the store until then, so later execution in the
//!   same step reads the state after them. A store whose head is not ours at the start of a step
//!   is a broken caller: [`Effect::Halt`].
//! - **C3 commit only under finality.** A block commits only when its hash chain reaches a
//!   verified finalization: the engine's, one a peer sent with a block, or a peer's certified
//!   head.
//! - **C4 atomic drops.** The pool is updated on the state after each committed block, and the
//!   drop records that causes go into that block's [`CommitBatch`].
//! - **C5 halt, never skip.** A finalized block that does not execute here stops the core: more
//!   than a third of the validators are faulty, or this node's state is wrong.

mod blocks;
mod commit;
mod serve;
mod sync;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bincode::{Decode, Encode};

use crate::engine::{self, Engine, Message, SafetyRecord, Status, Tip};
use crate::pool::{DroppedTx, PoolAccess};
use crate::state::{Outcome, StateReader};
use crate::tree::{self, Node, NodeKey, TreeReader};
use crate::{Account, Address, Block, Certificate, Evidence, Hash, Header, Keypair, Rules};

pub use blocks::FETCH_DEPTH_MAX;
pub use serve::{certified_head, serve, BlockSource};
pub use sync::{Peer, Penalty, SyncView, BLOCKS_TIMEOUT_MS, STATUS_TIMEOUT_MS, SYNC_COOLDOWN_MS, SYNC_INTERVAL_MS};

/// The most blocks a sync session keeps executed while no finalization covers them: twice a
/// request's worth. Honest chains store a finalization at least that often.
pub const SYNC_STAGED_MAX: usize = 128;
/// The most messages of the next epoch kept until it starts here (rule R1): a node still
/// committing an epoch's last block would otherwise lose the next epoch's first proposal and
/// votes, and the view they belong to would time out.
pub const EARLY_MESSAGES_MAX: usize = 1024;
/// Of those, the most proposals (each up to a block's size).
pub const EARLY_PROPOSALS_MAX: usize = 4;

/// A finalized block and, when the sender has it, the certificate that finalized it (what sync
/// sends; only the last block of a run needs one, its ancestors are final by their hashes).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct FinalizedBlock {
    /// The block.
    pub block: Block,
    /// Its finalization certificate.
    pub finalization: Option<Certificate>,
}

/// The most blocks one sync request asks for.
pub const BLOCKS_PER_REQUEST_MAX: u32 = 64;

/// A sync request. Decoded with a limit of `taksa_p2p::SYNC_REQUEST_BYTES_MAX` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Request {
    /// The peer's finalized head.
    Status,
    /// Finalized blocks from `from_height` on, ascending; `count` is at most
    /// [`BLOCKS_PER_REQUEST_MAX`] (larger requests are refused inside p2p).
    Blocks {
        /// The first height wanted.
        from_height: u64,
        /// How many blocks, at most.
        count: u32,
    },
    /// Any block the peer has, finalized or pending.
    Block {
        /// The block's hash.
        hash: Hash,
    },
}

/// A sync response. Decoded with a limit of `taksa_p2p::SYNC_RESPONSE_BYTES_MAX` bytes; a larger
/// one is not sent at all (the requester sees an error), so the node must stop adding blocks
/// before the encoding reaches the limit.
// Responses are moved once, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Response {
    /// The responder's finalized head with the certificate that proves it final, so that a
    /// claimed height costs a quorum's signatures to fake.
    Status {
        /// The head's header (its height and hash are what the responder claims).
        head: Header,
        /// The finalization of `head`; `None` only when `head` is genesis.
        finalization: Option<Certificate>,
    },
    /// Finalized blocks, ascending by height, possibly fewer than asked (none if unknown).
    Blocks(Vec<FinalizedBlock>),
    /// The block asked for, if the responder has it.
    Block(Option<Block>),
}

/// The committed chain as the core reads it: the head, the accounts and the state tree after
/// it. Reads never fail (a node missing from the tree is a damaged store, and the core halts);
/// writes are effects.
pub trait ChainStore: StateReader + TreeReader {
    /// The committed head.
    fn head(&self) -> Header;
}

/// What the core is set up with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The engine's configuration (our key, timing). Its domain's epoch, validators and epochs
    /// are replaced by each epoch's: the set in the state before the epoch.
    pub engine: engine::Config,
    /// The chain's rules (chain id, fee floor, epochs).
    pub rules: Rules,
    /// More keys this node may validate with: each epoch's engine signs with the first of
    /// `engine.key` and these that its set holds (a key rotation then needs no restart).
    pub more_keys: Vec<Keypair>,
}

/// What the core is told.
#[derive(Debug)]
pub enum Input {
    /// Start (or restart): restores uncommitted blocks and starts the engine.
    Start,
    /// A deadline passed ([`ChainCore::next_deadline_ms`]): view timers, fetch retries.
    Tick,
    /// A consensus message from a peer, whose signatures the network checked.
    Consensus(Message),
    /// A block a peer sent for an [`Effect::Fetch`]. Anything not asked for is ignored.
    Fetched(Block),
    /// The pool admitted transactions: an idle on-demand leader proposes (engine rule D1).
    Admitted,
    /// The peers connected now (sync asks them for their status).
    Peers(Vec<Peer>),
    /// The answer to [`Effect::Request`] `id`; `None` if it failed or timed out. The network
    /// ties an answer to its request, so it comes from the peer that was asked.
    Response {
        /// The request.
        id: u64,
        /// The answer.
        answer: Option<Response>,
    },
}

/// One block's commit: written as one atomic, synced batch.
#[derive(Clone, Debug)]
pub struct CommitBatch {
    /// The block.
    pub block: Arc<Block>,
    /// Its execution on its parent's state.
    pub outcome: Arc<Outcome>,
    /// The finalization, on the last block of a committed run (its ancestors are final by hash).
    pub finalization: Option<Certificate>,
    /// The pool's drops this block caused (C4).
    pub dropped: Vec<(Hash, DroppedTx)>,
    /// Finalized here by consensus rather than brought by sync (its finality lag means something).
    pub live: bool,
}

/// What the caller must do, in order (C1).
#[derive(Clone, Debug)]
pub enum Effect {
    /// Write the engine's safety record durably (fsync) before any later effect.
    Persist(SafetyRecord),
    /// Keep this executed, not final block (no sync needed: durable with the next synced write,
    /// which is the vote that names it). After a crash it is restored ([`ChainCore::new`]).
    StorePending(Arc<Block>),
    /// Commit one block in one atomic, synced batch.
    Commit(Box<CommitBatch>),
    /// Send a consensus message to every peer (boxed: a proposal carries a whole block header).
    Broadcast(Box<Message>),
    /// Ask peers for the block with this hash; answer with [`Input::Fetched`].
    Fetch(Hash),
    /// The pool dropped these transactions outside any commit (a proposal found them invalid).
    Dropped(Vec<(Hash, DroppedTx)>),
    /// An executed block was notarized (for subscribers).
    Notarized(Arc<Header>),
    /// A validator signed two conflicting votes.
    Evidence(Evidence),
    /// A block that is not final does not execute here (informational: the engine does not
    /// vote for it).
    Invalid {
        /// The block.
        hash: Hash,
        /// Why.
        error: String,
    },
    /// Ask `peer`; answer with [`Input::Response`] (sync: statuses and finalized blocks).
    Request {
        /// Whom.
        peer: Peer,
        /// The request's id, for the answer.
        id: u64,
        /// What.
        request: Request,
    },
    /// The peer did what no honest peer does: lower its score.
    Penalize {
        /// Whom.
        peer: Peer,
        /// What it did.
        penalty: Penalty,
        /// Details for the log.
        detail: String,
    },
    /// Sync stopped following this peer without blaming it (slow, withholding); it is not asked
    /// again for [`SYNC_COOLDOWN_MS`] (informational).
    SyncStopped {
        /// Whom.
        peer: Peer,
        /// Why.
        reason: &'static str,
    },
    /// A broken invariant (C2, C5): stop the node with this message for its operator.
    Halt(String),
    /// Consensus runs this epoch with this set, from [`Input::Start`] or since the last block of
    /// the epoch before was committed (informational: the network checks that epoch's messages
    /// against it).
    EpochStarted {
        /// The new epoch.
        epoch: u64,
        /// Its validators.
        validators: Arc<crate::ValidatorSet>,
    },
}

/// An executed block that is not final yet.
struct PendingBlock {
    block: Arc<Block>,
    outcome: Arc<Outcome>,
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

/// What one step reads: the store, the pool and the time.
struct Io<'a> {
    store: &'a dyn ChainStore,
    pool: &'a dyn PoolAccess,
    now_ms: u64,
}

/// The chain core. See the module docs.
pub struct ChainCore {
    cfg: Config,
    /// The epoch the engine decides: the epoch of the block after the head.
    epoch: u64,
    /// Its validator set.
    set: Arc<crate::ValidatorSet>,
    /// The key the engine signs with in this epoch.
    engine_key: Option<Keypair>,
    /// Messages of the next epoch, oldest first, for its engine once it starts (bounded by
    /// [`EARLY_MESSAGES_MAX`] and [`EARLY_PROPOSALS_MAX`]; unchecked until then: the engine
    /// checks every message it uses).
    early: std::collections::VecDeque<Message>,
    engine: Engine,
    /// The committed head, including this step's commits (C2).
    head: Header,
    /// The account changes of blocks committed in this step, oldest first (C2).
    committing: Vec<Arc<Outcome>>,
    pending: HashMap<Hash, PendingBlock>,
    seen: HashMap<Hash, Block>,
    parked: Parked,
    /// Blocks asked for by hash, with when.
    fetching: BTreeMap<Hash, u64>,
    /// Blocks executed from the current sync session that no finalization covers yet, lowest
    /// first (at most [`SYNC_STAGED_MAX`]). They count for nothing until one does.
    staged: Vec<(Hash, u64)>,
    sync: sync::Sync,
    /// View timers: (when, view).
    timers: BTreeSet<(u64, u64)>,
    /// Views left by timeout.
    timeouts: u64,
    /// Effects of the current step.
    out: Vec<Effect>,
    halted: bool,
}

impl ChainCore {
    /// A core on the committed `store`, with the engine's last safety record and the blocks
    /// that were stored pending (restored on [`Input::Start`]).
    pub fn new(cfg: Config, store: &dyn ChainStore, record: Option<SafetyRecord>, pending: Vec<Block>) -> ChainCore {
        let head = store.head();
        let epoch = cfg.rules.epochs.after(head.height);
        let set = Arc::new(store.governance().set());
        let engine_cfg = engine_config(&cfg, epoch, &set);
        let engine_key = engine_cfg.key.clone();
        let engine = Engine::new(engine_cfg, epoch_tip(&cfg, &head), record);
        let mut core = ChainCore {
            cfg,
            epoch,
            set,
            engine_key,
            early: std::collections::VecDeque::new(),
            engine,
            head,
            committing: Vec::new(),
            pending: HashMap::new(),
            seen: HashMap::new(),
            parked: Parked::default(),
            fetching: BTreeMap::new(),
            staged: Vec::new(),
            sync: sync::Sync::default(),
            timers: BTreeSet::new(),
            timeouts: 0,
            out: Vec::new(),
            halted: false,
        };
        for block in pending {
            core.remember(block);
        }
        core
    }

    /// Runs one input; returns what the caller must do, in order (C1, C2).
    pub fn step(&mut self, store: &dyn ChainStore, pool: &dyn PoolAccess, input: Input, now_ms: u64) -> Vec<Effect> {
        if self.halted {
            return Vec::new();
        }
        let io = Io { store, pool, now_ms };
        let stored = store.head();
        if stored.hash() != self.head.hash() {
            self.halt(format!(
                "internal error: the store's head is {} at height {} but the chain core committed {} at height {}; \
                 this is a bug, please report it",
                stored.hash(),
                stored.height,
                self.head.hash(),
                self.head.height
            ));
            return std::mem::take(&mut self.out);
        }
        self.committing.clear();
        match input {
            Input::Start => {
                self.out.push(Effect::EpochStarted { epoch: self.epoch, validators: Arc::clone(&self.set) });
                self.restore(&io);
                self.engine_step(&io, engine::Input::Start);
            }
            Input::Tick => self.tick(&io),
            Input::Admitted => self.engine_step(&io, engine::Input::Work),
            Input::Consensus(msg) => {
                // Another epoch's message names another set: of no use to this engine. The
                // next epoch's waits for it; older or further ones are dropped.
                if msg.epoch() == self.epoch.saturating_add(1) {
                    self.keep_early(msg);
                } else if msg.epoch() == self.epoch {
                    if let Message::Proposal { block, .. } = &msg {
                        self.remember(block.clone());
                    }
                    self.engine_step(&io, engine::Input::Message(msg));
                    self.resume(&io);
                }
            }
            Input::Fetched(block) => {
                if self.fetching.remove(&block.hash()).is_some() {
                    self.remember(block);
                    self.resume(&io);
                }
            }
            Input::Peers(peers) => {
                self.sync_peers(&io, peers);
                self.resume(&io);
            }
            Input::Response { id, answer } => {
                self.sync_answer(&io, id, answer);
                self.resume(&io);
            }
        }
        self.next_epochs(&io);
        std::mem::take(&mut self.out)
    }

    /// R1: once the head is the last block of the engine's epoch, the next epoch's engine starts
    /// on it with the set the state after it holds (G5 of [`crate::governance`]).
    fn next_epochs(&mut self, io: &Io<'_>) {
        let epochs = self.cfg.rules.epochs;
        while !self.halted && epochs.after(self.head.height) > self.epoch {
            let Some(state) = self.state_at(io, &self.head.hash()) else { return };
            let set = Arc::new(state.governance().set());
            drop(state);
            self.epoch = epochs.after(self.head.height);
            self.set = set;
            self.engine =
                Engine::new(engine_config(&self.cfg, self.epoch, &self.set), epoch_tip(&self.cfg, &self.head), None);
            self.timers.clear();
            self.parked.propose = None;
            self.parked.verify.clear();
            self.out.push(Effect::EpochStarted { epoch: self.epoch, validators: Arc::clone(&self.set) });
            self.engine_step(io, engine::Input::Start);
            let epoch = self.epoch;
            for msg in std::mem::take(&mut self.early) {
                if msg.epoch() == epoch {
                    if let Message::Proposal { block, .. } = &msg {
                        self.remember(block.clone());
                    }
                    self.engine_step(io, engine::Input::Message(msg));
                }
            }
            self.resume(io);
        }
    }

    /// Keeps a message of the next epoch (bounded: the oldest goes first, and beyond
    /// [`EARLY_PROPOSALS_MAX`] proposals new ones are dropped).
    fn keep_early(&mut self, msg: Message) {
        let proposal = matches!(msg, Message::Proposal { .. });
        if proposal
            && self.early.iter().filter(|m| matches!(m, Message::Proposal { .. })).count() >= EARLY_PROPOSALS_MAX
        {
            return;
        }
        if self.early.len() >= EARLY_MESSAGES_MAX {
            self.early.pop_front();
        }
        self.early.push_back(msg);
    }

    /// When the core next needs an [`Input::Tick`], Unix ms.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let timer = self.timers.first().map(|(at, _)| *at);
        let fetch = self.fetching.values().min().map(|at| at.saturating_add(blocks::FETCH_RETRY_MS));
        [timer, fetch, self.sync.next_deadline_ms()].into_iter().flatten().min()
    }

    /// The engine's status after the last step.
    pub fn status(&self) -> Status {
        self.engine.status()
    }

    /// Sync's target and progress.
    pub fn sync_view(&self) -> SyncView {
        self.sync.view()
    }

    /// The committed head.
    pub fn head(&self) -> &Header {
        &self.head
    }

    /// Views this core left by timeout since it started.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Whether the core halted ([`Effect::Halt`]); it does nothing more.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// How many blocks the core holds that are not final, for the bounds checks: (seen,
    /// pending, fetching, staged).
    pub fn held(&self) -> (usize, usize, usize, usize) {
        (self.seen.len(), self.pending.len(), self.fetching.len(), self.staged.len())
    }

    /// The key this epoch's engine signs with.
    fn key(&self) -> Option<&Keypair> {
        self.engine_key.as_ref()
    }

    fn halt(&mut self, why: String) {
        self.halted = true;
        self.out.push(Effect::Halt(why));
    }

    /// Re-executes the blocks this node built or verified but had not committed when it stopped:
    /// the engine may have voted to finalize one of them, and after a crash it asks to commit it.
    fn restore(&mut self, io: &Io<'_>) {
        let known: Vec<(Hash, u64)> = self.seen.iter().map(|(h, b)| (*h, b.header.height)).collect();
        for (hash, height) in known {
            self.prepare(io, hash, height);
        }
    }

    /// Fires due view timers and retries fetches whose answer has not come.
    fn tick(&mut self, io: &Io<'_>) {
        while let Some(&(at, view)) = self.timers.first() {
            if at > io.now_ms {
                break;
            }
            self.timers.pop_first();
            if self.engine.status().view == view {
                self.timeouts += 1;
            }
            self.engine_step(io, engine::Input::Timer { view });
        }
        self.retry_fetches(io);
        self.sync_tick(io);
        self.resume(io);
    }

    /// Steps the engine, running its effects; `Built` and `Verified` answers go straight back.
    fn engine_step(&mut self, io: &Io<'_>, first: engine::Input) {
        let mut inputs = vec![first];
        while let Some(input) = inputs.pop() {
            for effect in self.engine.step(input, io.now_ms) {
                if self.halted {
                    return;
                }
                if let Some(next) = self.on_engine_effect(io, effect) {
                    inputs.push(next);
                }
            }
        }
    }

    fn on_engine_effect(&mut self, io: &Io<'_>, effect: engine::Effect) -> Option<engine::Input> {
        match effect {
            engine::Effect::Propose { view, parent, parent_height, parent_cert } => {
                self.propose(io, view, parent, parent_height, parent_cert)
            }
            engine::Effect::Verify { block } => self.verify(io, block),
            engine::Effect::Persist(record) => {
                self.out.push(Effect::Persist(record));
                None
            }
            engine::Effect::Broadcast(msg) => {
                self.out.push(Effect::Broadcast(Box::new(msg)));
                None
            }
            engine::Effect::SetTimer { view, at_ms } => {
                // Each fires within the engine's longest timeout, and is then gone.
                self.timers.insert((at_ms, view));
                None
            }
            engine::Effect::Notarized { certificate } => {
                if let Some(p) = certificate.block_hash.and_then(|h| self.pending.get(&h)) {
                    self.out.push(Effect::Notarized(Arc::new(p.block.header.clone())));
                }
                None
            }
            engine::Effect::Finalized { block_hash, height, certificate } => {
                self.on_finalized(io, block_hash, height, certificate);
                None
            }
            engine::Effect::Evidence(e) => {
                self.out.push(Effect::Evidence(e));
                None
            }
        }
    }

    /// Retries parked work after a block arrived or the head moved.
    fn resume(&mut self, io: &Io<'_>) {
        if let Some((view, parent, parent_height, cert)) = self.parked.propose.take() {
            if let Some(input) = self.propose(io, view, parent, parent_height, cert) {
                self.engine_step(io, input);
            }
        }
        for block in std::mem::take(&mut self.parked.verify) {
            if let Some(input) = self.verify(io, block) {
                self.engine_step(io, input);
            }
        }
        self.try_commit(io);
    }

    /// The state after `tip` (an executed block or the head): the changes of the executed
    /// blocks down to the head, this step's commits, then the store. `None` if `tip` does not
    /// reach the head.
    fn state_at<'a>(&'a self, io: &Io<'a>, tip: &Hash) -> Option<Layered<'a>> {
        let head = self.head.hash();
        let mut layers = Vec::new();
        let mut at = *tip;
        while at != head {
            let p = self.pending.get(&at)?;
            layers.push(&*p.outcome);
            at = p.block.header.parent_hash;
        }
        layers.extend(self.committing.iter().rev().map(|o| &**o));
        Some(Layered { store: io.store, layers })
    }
}

/// The engine configuration of `epoch`, whose validators are `set`: it signs with the first of
/// our keys the set holds.
fn engine_config(cfg: &Config, epoch: u64, set: &crate::ValidatorSet) -> engine::Config {
    let ours = cfg.engine.key.iter().chain(&cfg.more_keys);
    let key = ours.clone().find(|k| set.index_of(&Address(k.public())).is_some()).or(cfg.engine.key.as_ref());
    engine::Config {
        domain: cfg.rules.domain(epoch),
        validators: set.clone(),
        epochs: cfg.rules.epochs,
        key: key.cloned(),
        ..cfg.engine.clone()
    }
}

/// The engine's starting tip on the committed `head`: an epoch's base (genesis or the last
/// epoch's final boundary) stands at view 0, since views restart with each epoch (R1).
fn epoch_tip(cfg: &Config, head: &Header) -> Tip {
    let base = head.height == 0 || cfg.rules.epochs.is_last(head.height);
    Tip {
        height: head.height,
        view: if base { 0 } else { head.view },
        hash: head.hash(),
        timestamp_ms: head.timestamp_ms,
    }
}

/// The committed state with the outcomes of uncommitted blocks on top (newest first).
struct Layered<'a> {
    store: &'a dyn ChainStore,
    layers: Vec<&'a Outcome>,
}

impl StateReader for Layered<'_> {
    fn account(&self, addr: &Address) -> Account {
        self.layers.iter().find_map(|l| l.changes.get(addr).copied()).unwrap_or_else(|| self.store.account(addr))
    }

    fn governance(&self) -> Arc<crate::governance::Governance> {
        self.layers.iter().find_map(|l| l.governance.clone()).unwrap_or_else(|| self.store.governance())
    }
}

impl TreeReader for Layered<'_> {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        tree::node_after(self.layers.iter().map(|o| &o.tree), self.store, at)
    }
}
