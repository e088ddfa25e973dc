//! The chain service: drives the consensus engine, builds and executes blocks, commits what is
//! finalized, and keeps the pool in step with the chain.
//!
//! It runs on its own thread because its work is CPU (execution, signature checks) and
//! synchronous disk writes (fsync of votes and blocks); async callers reach it through a bounded
//! channel. Effects are executed in the order the engine emits them, so a `Persist` is durable
//! before any `Broadcast` that follows it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use taksa_consensus::block::{tx_root, BLOCK_TXS_MAX};
use taksa_consensus::engine::{Config as EngineConfig, Effect, Engine, Input, Message, SafetyRecord, Tip};
use taksa_consensus::state::{self, Outcome, StateReader};
use taksa_consensus::{codec, Account, Address, Block, Certificate, Evidence, Genesis, Hash, Header, Keypair, Rules};
use taksa_storage::{DroppedTx, Store};

use crate::mempool::{Dropped, Mempool};

/// How many messages may wait for the chain thread.
pub(crate) const INBOX_MAX: usize = 1024;
/// How many evidence items are kept for RPC.
const EVIDENCE_KEPT_MAX: usize = 1024;

/// What the rest of the node sends to the chain thread.
pub(crate) enum ChainMsg {
    /// Stop after the current step.
    Shutdown,
}

/// What the chain thread shares with RPC handlers.
pub(crate) struct Shared {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_hash: Hash,
    pub(crate) rules: Rules,
    pub(crate) store: Store,
    pub(crate) mempool: Mutex<Mempool>,
    pub(crate) evidence: RwLock<Vec<Evidence>>,
}

/// Something that can send consensus messages to the other validators.
pub(crate) trait Network: Send {
    fn broadcast(&self, msg: &Message);
}

/// The network of a single-validator chain: nobody to tell.
pub(crate) struct Alone;

impl Network for Alone {
    fn broadcast(&self, _msg: &Message) {}
}

struct PendingBlock {
    block: Block,
    outcome: Outcome,
}

/// The chain thread's state.
pub(crate) struct Chain {
    shared: Arc<Shared>,
    engine: Engine,
    key: Option<Keypair>,
    network: Box<dyn Network>,
    pending: HashMap<Hash, PendingBlock>,
    timers: BTreeSet<(u64, u64)>,
    inbox: Receiver<ChainMsg>,
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
        block_time_ms: u64,
    ) -> anyhow::Result<(Chain, SyncSender<ChainMsg>)> {
        let head = shared.store.head();
        let record = match shared.store.safety_record()? {
            Some(bytes) => Some(
                codec::decode::<SafetyRecord>(&bytes, codec::MESSAGE_BYTES_MAX)
                    .context("the stored consensus safety record does not decode: the data folder is corrupt")?,
            ),
            None => None,
        };
        let config = EngineConfig {
            domain: taksa_consensus::Domain {
                chain_id: shared.genesis.chain_id.clone(),
                genesis_hash: shared.genesis_hash,
            },
            validators: shared.genesis.validator_set(),
            key: key.clone(),
            block_time_ms,
            timeout_base_ms: block_time_ms.saturating_mul(2).max(1000),
            timeout_max_ms: 8000,
            future_timestamp_ms_max: 2000,
        };
        let tip = Tip { height: head.height, view: head.view, hash: head.hash(), timestamp_ms: head.timestamp_ms };
        let engine = Engine::new(config, tip, record);
        let (tx, rx) = std::sync::mpsc::sync_channel(INBOX_MAX);
        let mut chain =
            Chain { shared, engine, key, network, pending: HashMap::new(), timers: BTreeSet::new(), inbox: rx };
        chain.restore_pending()?;
        Ok((chain, tx))
    }

    /// Re-executes the blocks this node built or verified but had not committed when it stopped:
    /// the engine may have voted to finalize one of them, and after a crash it asks to commit it.
    fn restore_pending(&mut self) -> anyhow::Result<()> {
        let mut blocks = self.shared.store.pending_blocks().context("reading uncommitted blocks")?;
        blocks.sort_by_key(|b| b.header.height);
        let head = self.shared.store.head().height;
        let mut restored = 0usize;
        for block in blocks {
            if block.header.height > head && self.verify(block) {
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
            let now = now_ms();
            while let Some(&(at, view)) = self.timers.first() {
                if at > now {
                    break;
                }
                self.timers.pop_first();
                self.step(Input::Timer { view })?;
            }
            let wait_ms = self.timers.first().map_or(1000, |(at, _)| at.saturating_sub(now_ms()).min(1000));
            match self.inbox.recv_timeout(Duration::from_millis(wait_ms)) {
                Ok(ChainMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
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
        Ok(())
    }

    fn execute(&mut self, effect: Effect) -> anyhow::Result<Option<Input>> {
        match effect {
            Effect::Propose { view, parent, parent_height, parent_cert } => {
                Ok(self.propose(view, parent, parent_height, parent_cert).map(Input::Built))
            }
            Effect::Verify { block } => {
                let block_hash = block.hash();
                let valid = self.verify(block);
                Ok(Some(Input::Verified { block_hash, valid }))
            }
            Effect::Persist(record) => {
                // Durable before any later effect of this step leaves the node (no double sign).
                self.shared.store.put_safety_record(&codec::encode(&record)).context("persisting a vote failed")?;
                Ok(None)
            }
            Effect::Broadcast(msg) => {
                self.network.broadcast(&msg);
                Ok(None)
            }
            Effect::SetTimer { view, at_ms } => {
                self.timers.insert((at_ms, view));
                Ok(None)
            }
            Effect::Notarized { certificate } => {
                tracing::debug!(target: "consensus", view = certificate.view, "notarized");
                Ok(None)
            }
            Effect::Finalized { block_hash, height, certificate } => {
                self.commit(block_hash, height, &certificate)?;
                Ok(None)
            }
            Effect::Evidence(e) => {
                tracing::warn!(target: "consensus", signer = ?e.a.signer, view = e.a.view, "equivocation evidence");
                if let Ok(mut list) = self.shared.evidence.write() {
                    if list.len() < EVIDENCE_KEPT_MAX {
                        list.push(e);
                    }
                }
                Ok(None)
            }
        }
    }

    /// The header of a block we can build on: the committed head or a pending block.
    fn header_of(&self, hash: &Hash) -> Option<Header> {
        let head = self.shared.store.head();
        if head.hash() == *hash {
            return Some(head);
        }
        self.pending.get(hash).map(|p| p.block.header.clone())
    }

    /// The account changes of the uncommitted blocks from `tip` down to the committed head,
    /// newest first; `None` if the chain from `tip` does not reach the head.
    fn layers(&self, tip: &Hash) -> Option<Vec<&BTreeMap<Address, Account>>> {
        let head = self.shared.store.head().hash();
        let mut out = Vec::new();
        let mut at = *tip;
        while at != head {
            let p = self.pending.get(&at)?;
            out.push(&p.outcome.changes);
            at = p.block.header.parent_hash;
        }
        Some(out)
    }

    fn propose(
        &mut self,
        view: u64,
        parent: Hash,
        parent_height: u64,
        parent_cert: Option<Certificate>,
    ) -> Option<Block> {
        let key = self.key.as_ref()?;
        let proposer = Address(key.public());
        let parent_header = self.header_of(&parent)?;
        let layers = self.layers(&parent)?;
        let base = Layered { store: &self.shared.store, layers };
        let candidates = self.shared.mempool.lock().map(|p| p.candidates(BLOCK_TXS_MAX)).unwrap_or_default();
        let height = parent_height.saturating_add(1);
        let (txs, outcome, refused) =
            state::select_transactions(&base, &parent_header.state_root, height, &proposer, candidates, BLOCK_TXS_MAX);
        let header = Header {
            chain_id: self.shared.genesis.chain_id.clone(),
            height,
            view,
            parent_hash: parent,
            proposer,
            timestamp_ms: now_ms().max(parent_header.timestamp_ms),
            tx_root: tx_root(&txs.iter().map(|t| t.hash()).collect::<Vec<_>>()),
            state_root: outcome.state_root,
            validator_set_hash: self.shared.genesis.validator_set().hash(),
            parent_cert,
        };
        let block = Block { header, txs, evidence: Vec::new() };
        if !refused.is_empty() {
            let dropped = self.shared.mempool.lock().map(|mut p| p.reject(&refused)).unwrap_or_default();
            self.record_dropped(&dropped, height);
        }
        if let Err(e) = self.shared.store.put_pending(&block) {
            tracing::error!(target: "storage", error = %e, "cannot store the proposal; not proposing");
            return None;
        }
        self.pending.insert(block.hash(), PendingBlock { block: block.clone(), outcome });
        Some(block)
    }

    fn verify(&mut self, block: Block) -> bool {
        let hash = block.hash();
        if self.pending.contains_key(&hash) {
            return true;
        }
        let Some(parent) = self.header_of(&block.header.parent_hash) else {
            tracing::debug!(target: "consensus", %hash, "proposal's parent is unknown here");
            return false;
        };
        let Some(layers) = self.layers(&block.header.parent_hash) else { return false };
        let base = Layered { store: &self.shared.store, layers };
        let known = |h: &Hash| self.shared.mempool.lock().is_ok_and(|p| p.contains(h));
        match state::execute_block(&self.shared.rules, &base, &parent, &block, &known) {
            Ok(outcome) => {
                // Stored before the engine votes for it: the vote's fsync makes this write
                // durable too (one write-ahead log), so a finalized block is never unknown here.
                if let Err(e) = self.shared.store.put_pending(&block) {
                    tracing::error!(target: "storage", %hash, error = %e, "cannot store a verified block");
                    return false;
                }
                self.pending.insert(hash, PendingBlock { block, outcome });
                true
            }
            Err(e) => {
                tracing::warn!(target: "consensus", %hash, error = %e, "invalid proposal");
                false
            }
        }
    }

    /// Commits `tip` and its uncommitted ancestors, oldest first, each in one atomic batch.
    fn commit(&mut self, tip: Hash, height: u64, certificate: &Certificate) -> anyhow::Result<()> {
        let head = self.shared.store.head();
        if height <= head.height {
            return Ok(());
        }
        let mut chain = Vec::new();
        let mut at = tip;
        while at != head.hash() {
            let Some(p) = self.pending.remove(&at) else {
                tracing::error!(target: "consensus", %tip, missing = %at, "finalized block is not known here; waiting for sync");
                return Ok(());
            };
            at = p.block.header.parent_hash;
            chain.push(p);
        }
        while let Some(p) = chain.pop() {
            let cert = (p.block.hash() == tip).then_some(certificate);
            let h = &p.block.header;
            let included: Vec<Hash> = p.block.txs.iter().map(|t| t.hash()).collect();
            let next_height = h.height.saturating_add(1);
            // The pool's lock spans the commit and the pool update, so an admission never sees
            // the new balances together with the old pending set (it would count spends twice).
            let dropped = {
                let mut pool = self.shared.mempool.lock().map_err(|_| anyhow::anyhow!("mempool lock poisoned"))?;
                self.shared
                    .store
                    .commit_block(&p.block, cert, &p.outcome.changes, &[])
                    .context("committing a block failed")?;
                pool.on_commit(&included, &self.shared.store, next_height)
            };
            tracing::info!(target: "consensus", height = h.height, hash = %p.block.hash(), view = h.view, txs = p.block.txs.len(), "committed block");
            self.record_dropped(&dropped, h.height);
        }
        let committed = self.shared.store.head().height;
        self.pending.retain(|_, p| p.block.header.height > committed);
        Ok(())
    }

    fn record_dropped(&self, dropped: &[Dropped], height: u64) {
        if dropped.is_empty() {
            return;
        }
        let items: Vec<(Hash, DroppedTx)> = dropped
            .iter()
            .map(|d| {
                let reason = if d.expired { "expired".to_owned() } else { d.reason.clone() };
                (d.hash, DroppedTx { reason, message: d.message.clone(), height })
            })
            .collect();
        for (h, d) in &items {
            tracing::info!(target: "mempool", hash = %h, reason = %d.reason, "dropped transaction");
        }
        if let Err(e) = self.shared.store.put_dropped(&items) {
            tracing::error!(target: "mempool", error = %e, "could not record dropped transactions");
        }
    }
}

/// The committed state with the changes of uncommitted blocks on top (newest first).
struct Layered<'a> {
    store: &'a Store,
    layers: Vec<&'a BTreeMap<Address, Account>>,
}

impl StateReader for Layered<'_> {
    fn account(&self, addr: &Address) -> Account {
        self.layers.iter().find_map(|l| l.get(addr).copied()).unwrap_or_else(|| self.store.account(addr))
    }
}
