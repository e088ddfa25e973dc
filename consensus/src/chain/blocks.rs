//! Blocks before they are final: remembering proposals, executing a block on its parent's state
//! (fetching missing ancestors first), building our own proposals and verifying others'.

use std::sync::Arc;

use super::{ChainCore, Effect, Io, PendingBlock};
use crate::block::{evidence_root, tx_bytes_max, tx_root, BLOCK_TXS_MAX};
use crate::engine::Input;
use crate::state::{self, BlockBudget, BlockError};
use crate::{Address, Block, Certificate, Hash, Header};

/// The most unexecuted blocks kept (proposals of views we may need as parents).
pub(super) const SEEN_MAX: usize = 512;
/// The most blocks the engine may have us wait on at once.
const PARKED_VERIFY_MAX: usize = 16;
/// How far above our head a missing block is fetched by hash; further behind, sync by height
/// is faster.
pub const FETCH_DEPTH_MAX: u64 = 64;
/// The most blocks asked for by hash at once.
pub(super) const FETCHING_MAX: usize = 64;
/// When a block asked for by hash is asked for again.
pub(super) const FETCH_RETRY_MS: u64 = 2000;

/// Whether a block can be executed now.
pub(super) enum Ready {
    /// It is executed (in `pending`) or is the head.
    Yes,
    /// This ancestor is missing (asked for by hash).
    Missing,
    /// It does not extend our finalized chain or does not execute.
    Invalid,
}

impl ChainCore {
    /// Keeps a block that may later be needed, unless it is executed or final already.
    pub(super) fn remember(&mut self, block: Block) {
        let hash = block.hash();
        if block.header.height <= self.head.height || self.pending.contains_key(&hash) {
            return;
        }
        if self.seen.len() >= SEEN_MAX && !self.seen.contains_key(&hash) {
            // Keep the blocks nearest the head: the far ones sync brings by height anyway.
            if let Some(far) = self.seen.iter().max_by_key(|(h, b)| (b.header.height, **h)).map(|(h, _)| *h) {
                self.seen.remove(&far);
            }
        }
        self.seen.insert(hash, block);
    }

    /// Executes `target` (at `height`) and its unexecuted ancestors, oldest first, from the
    /// head's state; a missing ancestor near the head is asked for by hash.
    pub(super) fn prepare(&mut self, io: &Io<'_>, target: Hash, height: u64) -> Ready {
        let head_hash = self.head.hash();
        let mut path = Vec::new();
        let mut at = (target, height);
        while at.0 != head_hash && !self.pending.contains_key(&at.0) {
            if at.1 <= self.head.height {
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
                    if at.1 <= self.head.height.saturating_add(FETCH_DEPTH_MAX) {
                        self.fetch(io, at.0);
                    }
                    return Ready::Missing;
                }
            }
        }
        while let Some(hash) = path.pop() {
            let Some(block) = self.seen.remove(&hash) else { return Ready::Missing };
            if let Err(error) = self.execute_into_pending(io, block, true) {
                self.out.push(Effect::Invalid { hash, error });
                return Ready::Invalid;
            }
        }
        Ready::Yes
    }

    /// Executes `block` on its parent (the head or an executed block) and keeps the result.
    /// `durable` blocks are also stored: the engine may vote for them, and after a crash it may
    /// ask to commit a block only this node and its vote remember.
    pub(super) fn execute_into_pending(&mut self, io: &Io<'_>, block: Block, durable: bool) -> Result<(), String> {
        let hash = block.hash();
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let parent = self.header_of(&block.header.parent_hash).ok_or("its parent is not executed here")?;
        let outcome = {
            let base = self.state_at(io, &block.header.parent_hash).ok_or("its parent does not extend the head")?;
            let known = |h: &Hash| io.pool.contains(h);
            match state::execute_block(&self.cfg.rules, &base, &parent, &block, &known) {
                Ok(outcome) => outcome,
                Err(BlockError::Store(e)) => {
                    self.halt(format!("executing block {hash}: {e}"));
                    return Err(e.to_string());
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let block = Arc::new(block);
        if durable {
            self.out.push(Effect::StorePending(Arc::clone(&block)));
        }
        self.pending.insert(hash, PendingBlock { block, outcome: Arc::new(outcome) });
        Ok(())
    }

    /// The header of a block we can build on: the committed head or an executed block.
    pub(super) fn header_of(&self, hash: &Hash) -> Option<Header> {
        if self.head.hash() == *hash {
            return Some(self.head.clone());
        }
        self.pending.get(hash).map(|p| p.block.header.clone())
    }

    /// Asks peers for a block by hash, unless it was asked for recently.
    pub(super) fn fetch(&mut self, io: &Io<'_>, hash: Hash) {
        if self.fetching.contains_key(&hash) || self.fetching.len() >= FETCHING_MAX {
            return;
        }
        self.fetching.insert(hash, io.now_ms);
        self.out.push(Effect::Fetch(hash));
    }

    /// Asks again for blocks whose answer has not come, while work waits on them.
    pub(super) fn retry_fetches(&mut self, io: &Io<'_>) {
        let now = io.now_ms;
        let stale: Vec<Hash> = self
            .fetching
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) >= FETCH_RETRY_MS)
            .map(|(h, _)| *h)
            .collect();
        let wanted = self.parked.commit.as_ref().is_some_and(|(_, height, _)| *height > self.head.height)
            || !self.parked.verify.is_empty()
            || self.parked.propose.is_some();
        for hash in stale {
            self.fetching.remove(&hash);
            if wanted {
                self.fetch(io, hash);
            }
        }
    }

    /// Builds our proposal for `view` on `parent` (fetching the parent first if we missed it).
    pub(super) fn propose(
        &mut self,
        io: &Io<'_>,
        view: u64,
        parent: Hash,
        parent_height: u64,
        parent_cert: Option<Certificate>,
    ) -> Option<Input> {
        let proposer = Address(self.key()?.public());
        match self.prepare(io, parent, parent_height) {
            Ready::Yes => {}
            Ready::Missing => {
                self.parked.propose = Some((view, parent, parent_height, parent_cert));
                return None;
            }
            Ready::Invalid => return None,
        }
        if parent_height == self.cfg.rules.epochs.last_height(self.epoch) {
            // R1: the epoch's last block is re-proposed, as it is.
            let block = self.pending.get(&parent)?.block.as_ref().clone();
            return Some(Input::Built(block));
        }
        let parent_header = self.header_of(&parent)?;
        let height = parent_header.height.saturating_add(1);
        let mut header = Header {
            chain_id: self.cfg.rules.chain_id.clone(),
            height,
            view,
            parent_hash: parent,
            proposer,
            timestamp_ms: io.now_ms.max(parent_header.timestamp_ms),
            tx_root: Hash::ZERO,
            evidence_root: Hash::ZERO,
            state_root: Hash::ZERO,
            validator_set_hash: self.set.hash(),
            parent_cert,
        };
        let budget = BlockBudget { txs_max: BLOCK_TXS_MAX, tx_bytes_max: tx_bytes_max(&header, &[]) };
        // G7: the equivocations this epoch's engine saw; those recorded already are refused by
        // `record_offence`'s first, cheap check and left out.
        let evidence = self.engine.evidence().to_vec();
        let selection = {
            let base = self.state_at(io, &parent)?;
            let candidates = io.pool.candidates(BLOCK_TXS_MAX, &base);
            if candidates.is_empty() && self.cfg.engine.on_demand {
                // D1: no empty blocks on demand; the engine waits for Input::Admitted.
                return Some(Input::Idle { view });
            }
            match state::select_transactions(&self.cfg.rules, &base, height, &proposer, evidence, candidates, budget) {
                Ok(selection) => selection,
                Err(e) => {
                    self.halt(format!("building a block at height {height}: {e}"));
                    return None;
                }
            }
        };
        let state::Selection { evidence, txs, outcome, refused } = selection;
        header.tx_root = tx_root(&txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
        header.evidence_root = evidence_root(&evidence);
        header.state_root = outcome.state_root;
        let block = Arc::new(Block { header, evidence, txs });
        if !refused.is_empty() {
            let dropped = io.pool.reject(&refused);
            let records = dropped.iter().map(|d| (d.hash, d.record(height))).collect::<Vec<_>>();
            if !records.is_empty() {
                self.out.push(Effect::Dropped(records));
            }
        }
        self.out.push(Effect::StorePending(Arc::clone(&block)));
        self.pending.insert(block.hash(), PendingBlock { block: Arc::clone(&block), outcome: Arc::new(outcome) });
        Some(Input::Built(Block::clone(&block)))
    }

    /// The application's half of checking a proposal: it executes on its parent's state.
    /// `None` when a missing ancestor must be fetched first (the answer comes later).
    pub(super) fn verify(&mut self, io: &Io<'_>, block: Block) -> Option<Input> {
        let block_hash = block.hash();
        let parent = block.header.parent_hash;
        let valid = match self.prepare(io, parent, block.header.height.saturating_sub(1)) {
            Ready::Yes => match self.execute_into_pending(io, block, true) {
                Ok(()) => true,
                Err(error) => {
                    self.out.push(Effect::Invalid { hash: block_hash, error });
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
