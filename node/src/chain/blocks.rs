//! Blocks before they are final: remembering proposals, executing a block on its parent's state
//! (fetching missing ancestors first), building our own proposals and verifying others'.

use std::collections::BTreeMap;

use taksa_consensus::block::{tx_bytes_max, tx_root, BLOCK_TXS_MAX};
use taksa_consensus::engine::Input;
use taksa_consensus::state::{self, BlockBudget, StateReader};
use taksa_consensus::{Account, Address, Block, Certificate, Hash, Header};
use taksa_storage::Store;

use super::{now_ms, Chain, PendingBlock};

/// The most unexecuted blocks kept (proposals of views we may need as parents).
pub(super) const SEEN_MAX: usize = 512;
/// The most blocks the engine may have us wait on at once.
const PARKED_VERIFY_MAX: usize = 16;
/// How far above our head a missing block is fetched by hash; further behind, sync by height
/// is faster.
pub(super) const FETCH_DEPTH_MAX: u64 = 64;
/// The most blocks asked for by hash at once.
const FETCHING_MAX: usize = 64;
/// When a block asked for by hash is asked for again.
const FETCH_RETRY_MS: u64 = 2000;

/// Whether a block can be executed now.
pub(super) enum Ready {
    /// It is executed (in `pending`) or is the head.
    Yes,
    /// This ancestor is missing (asked for by hash).
    Missing,
    /// It does not extend our finalized chain or does not execute.
    Invalid,
}

impl Chain {
    /// Keeps a block that may later be needed, unless it is executed or final already.
    pub(super) fn remember(&mut self, block: Block) {
        let head = self.shared.store.head().height;
        let hash = block.hash();
        if block.header.height <= head || self.pending.contains_key(&hash) {
            return;
        }
        if self.seen.len() >= SEEN_MAX {
            // Keep the blocks nearest the head: the far ones sync brings by height anyway.
            if let Some(far) = self.seen.iter().max_by_key(|(_, b)| b.header.height).map(|(h, _)| *h) {
                self.seen.remove(&far);
            }
        }
        self.seen.insert(hash, block);
    }

    /// Executes `target` (at `height`) and its unexecuted ancestors, oldest first, from the
    /// head's state; a missing ancestor near the head is asked for by hash.
    pub(super) fn prepare(&mut self, target: Hash, height: u64) -> Ready {
        let head = self.shared.store.head();
        let head_hash = head.hash();
        let mut path = Vec::new();
        let mut at = (target, height);
        while at.0 != head_hash && !self.pending.contains_key(&at.0) {
            if at.1 <= head.height {
                // At or below the head but not the head: a dead fork, never final.
                return Ready::Invalid;
            }
            match self.seen.get(&at.0) {
                Some(b) if b.header.height == at.1 => {
                    path.push(at.0);
                    at = (b.header.parent_hash, at.1.saturating_sub(1));
                }
                Some(_) => return Ready::Invalid,
                None => {
                    // Far ahead, sync by height brings it faster than hash by hash.
                    if at.1 <= head.height.saturating_add(FETCH_DEPTH_MAX) {
                        self.fetch(at.0);
                    }
                    return Ready::Missing;
                }
            }
        }
        while let Some(hash) = path.pop() {
            let Some(block) = self.seen.remove(&hash) else { return Ready::Missing };
            if let Err(e) = self.execute_into_pending(block, true) {
                tracing::warn!(target: "consensus", %hash, error = %e, "block does not execute");
                return Ready::Invalid;
            }
        }
        Ready::Yes
    }

    /// Executes `block` on its parent (the head or an executed block) and keeps the result.
    /// `durable` blocks are also stored: the engine may vote for them, and after a crash it may
    /// ask to commit a block only this node and its vote remember.
    pub(super) fn execute_into_pending(&mut self, block: Block, durable: bool) -> Result<(), String> {
        let hash = block.hash();
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let parent = self.header_of(&block.header.parent_hash).ok_or("its parent is not executed here")?;
        let layers = self.layers(&block.header.parent_hash).ok_or("its parent does not extend the head")?;
        let base = Layered { store: &self.shared.store, layers };
        let known = |h: &Hash| self.shared.mempool.lock().is_ok_and(|p| p.contains(h));
        let outcome =
            state::execute_block(&self.shared.rules, &base, &parent, &block, &known).map_err(|e| e.to_string())?;
        if durable {
            // The vote's fsync that follows makes this write durable too (one write-ahead log).
            self.shared.store.put_pending(&block).map_err(|e| format!("cannot store the block: {e}"))?;
        }
        self.pending.insert(hash, PendingBlock { block, outcome });
        Ok(())
    }

    /// The header of a block we can build on: the committed head or an executed block.
    pub(super) fn header_of(&self, hash: &Hash) -> Option<Header> {
        let head = self.shared.store.head();
        if head.hash() == *hash {
            return Some(head);
        }
        self.pending.get(hash).map(|p| p.block.header.clone())
    }

    /// The account changes of the executed blocks from `tip` down to the committed head,
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

    /// Asks peers for a block by hash, unless it was asked for recently.
    pub(super) fn fetch(&mut self, hash: Hash) {
        if self.fetching.contains_key(&hash) || self.fetching.len() >= FETCHING_MAX {
            return;
        }
        tracing::debug!(target: "consensus", %hash, "fetching a missing block");
        self.fetching.insert(hash, now_ms());
        self.network.fetch_block(hash);
    }

    /// Asks again for blocks whose answer has not come.
    pub(super) fn retry_fetches(&mut self) {
        // Runs after every message the chain thread handles: nothing to read when nothing is asked.
        if self.fetching.is_empty() {
            return;
        }
        let now = now_ms();
        let stale: Vec<Hash> = self
            .fetching
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) >= FETCH_RETRY_MS)
            .map(|(h, _)| *h)
            .collect();
        let head = self.shared.store.head().height;
        let wanted = self.parked.commit.as_ref().is_some_and(|(_, height, _)| *height > head)
            || !self.parked.verify.is_empty()
            || self.parked.propose.is_some();
        for hash in stale {
            self.fetching.remove(&hash);
            if wanted {
                self.fetch(hash);
            }
        }
    }

    /// Builds our proposal for `view` on `parent` (fetching the parent first if we missed it).
    pub(super) fn propose(
        &mut self,
        view: u64,
        parent: Hash,
        parent_height: u64,
        parent_cert: Option<Certificate>,
    ) -> Option<Input> {
        let key = self.key.as_ref()?;
        let proposer = Address(key.public());
        match self.prepare(parent, parent_height) {
            Ready::Yes => {}
            Ready::Missing => {
                self.parked.propose = Some((view, parent, parent_height, parent_cert));
                return None;
            }
            Ready::Invalid => return None,
        }
        let parent_header = self.header_of(&parent)?;
        let layers = self.layers(&parent)?;
        let base = Layered { store: &self.shared.store, layers };
        let candidates = self.shared.mempool.lock().map(|p| p.candidates(BLOCK_TXS_MAX, &base)).unwrap_or_default();
        let height = parent_header.height.saturating_add(1);
        let mut header = Header {
            chain_id: self.shared.genesis.chain_id.clone(),
            height,
            view,
            parent_hash: parent,
            proposer,
            timestamp_ms: now_ms().max(parent_header.timestamp_ms),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            validator_set_hash: self.shared.validators.hash(),
            parent_cert,
        };
        let budget = BlockBudget { txs_max: BLOCK_TXS_MAX, tx_bytes_max: tx_bytes_max(&header) };
        let (txs, outcome, refused) =
            state::select_transactions(&base, &parent_header.state_root, height, &proposer, candidates, budget);
        header.tx_root = tx_root(&txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
        header.state_root = outcome.state_root;
        let block = Block { header, txs };
        if !refused.is_empty() {
            let dropped = self.shared.mempool.lock().map(|mut p| p.reject(&refused)).unwrap_or_default();
            self.record_dropped(&dropped, height);
        }
        if let Err(e) = self.shared.store.put_pending(&block) {
            tracing::error!(target: "storage", error = %e, "cannot store the proposal; not proposing");
            return None;
        }
        self.pending.insert(block.hash(), PendingBlock { block: block.clone(), outcome });
        Some(Input::Built(block))
    }

    /// The application's half of checking a proposal: it executes on its parent's state.
    /// `None` when a missing ancestor must be fetched first (the answer comes later).
    pub(super) fn verify(&mut self, block: Block) -> Option<Input> {
        let block_hash = block.hash();
        let parent = block.header.parent_hash;
        let valid = match self.prepare(parent, block.header.height.saturating_sub(1)) {
            Ready::Yes => match self.execute_into_pending(block, true) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(target: "consensus", hash = %block_hash, error = %e, "invalid proposal");
                    false
                }
            },
            Ready::Missing => {
                if self.parked.verify.len() >= PARKED_VERIFY_MAX {
                    self.parked.verify.remove(0);
                }
                self.parked.verify.push(block);
                return None;
            }
            Ready::Invalid => false,
        };
        Some(Input::Verified { block_hash, valid })
    }
}

/// The committed state with the changes of uncommitted blocks on top (newest first).
pub(super) struct Layered<'a> {
    pub(super) store: &'a Store,
    pub(super) layers: Vec<&'a BTreeMap<Address, Account>>,
}

impl StateReader for Layered<'_> {
    fn account(&self, addr: &Address) -> Account {
        self.layers.iter().find_map(|l| l.get(addr).copied()).unwrap_or_else(|| self.store.account(addr))
    }
}
