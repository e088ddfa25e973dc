//! Making blocks final: committing what the engine finalized (C3), with the pool's drops in each
//! block's batch (C4), and catching up from finalized blocks that peers send by height (each
//! certificate verified, each block re-executed).

use std::sync::Arc;

use super::blocks::{Ready, FETCH_DEPTH_MAX};
use super::{ChainCore, CommitBatch, Effect, FinalizedBlock, Io, SYNC_STAGED_MAX};
use crate::state::StateReader as _;
use crate::{Certificate, Hash, Header};

impl ChainCore {
    /// The engine finalized `tip`: commit it once it and its ancestors are executed here.
    pub(super) fn on_finalized(&mut self, io: &Io<'_>, tip: Hash, height: u64, certificate: Certificate) {
        if height <= self.head.height {
            return;
        }
        if self.parked.commit.as_ref().is_none_or(|(_, h, _)| *h < height) {
            self.parked.commit = Some((tip, height, certificate));
        }
        self.try_commit(io);
    }

    /// Commits the parked finalized block if everything it needs is here.
    pub(super) fn try_commit(&mut self, io: &Io<'_>) {
        let Some((tip, height, cert)) = self.parked.commit.clone() else { return };
        if height <= self.head.height {
            self.parked.commit = None;
            return;
        }
        if height > self.head.height.saturating_add(FETCH_DEPTH_MAX) {
            // Far behind: sync brings the blocks by height.
            return;
        }
        match self.prepare(io, tip, height) {
            Ready::Yes => {
                self.parked.commit = None;
                self.commit_chain(io, tip, &cert, true);
            }
            Ready::Missing => {}
            // C5: a quorum finalized it, so it must execute: more than a third of the
            // validators are faulty, or this node's state is wrong. Following on is unsafe.
            Ready::Invalid => self.halt(format!(
                "block {tip} at height {height} was finalized by a quorum of validators but does not execute on \
                 this node's state: more than a third of the validators are faulty, or this node's data is \
                 corrupt. The node stops rather than follow. Compare the block with other operators \
                 (chain_getBlock); to rebuild this node, move its data folder aside and start it again to sync \
                 from its peers"
            )),
        }
    }

    /// Commits `tip` and its executed ancestors, oldest first, one [`Effect::Commit`] each.
    /// `live` when consensus finalized it here (not sync).
    pub(super) fn commit_chain(&mut self, io: &Io<'_>, tip: Hash, certificate: &Certificate, live: bool) {
        let mut chain = Vec::new();
        let mut at = tip;
        while at != self.head.hash() {
            let Some(p) = self.pending.get(&at) else {
                return self.halt(format!("internal error: block {at} was prepared for commit but is not executed"));
            };
            chain.push(at);
            at = p.block.header.parent_hash;
        }
        while let Some(hash) = chain.pop() {
            let Some(p) = self.pending.remove(&hash) else { continue };
            let included: Vec<Hash> = p.block.txs.iter().map(|t| t.hash()).collect();
            let height = p.block.header.height;
            self.head = p.block.header.clone();
            self.committing.push(Arc::clone(&p.outcome));
            let dropped = match self.state_at(io, &hash) {
                Some(after) => io.pool.on_commit(&included, &after, height.saturating_add(1)),
                None => Vec::new(),
            };
            let dropped = dropped.iter().map(|d| (d.hash, d.record(height))).collect();
            let finalization = (hash == tip).then(|| certificate.clone());
            self.out.push(Effect::Commit(Box::new(CommitBatch {
                block: p.block,
                outcome: p.outcome,
                finalization,
                dropped,
                live,
            })));
        }
        let committed = self.head.height;
        self.pending.retain(|_, p| p.block.header.height > committed);
        self.seen.retain(|_, b| b.header.height > committed);
        self.staged.retain(|(_, h)| *h > committed);
        self.fetching.retain(|hash, _| !self.pending.contains_key(hash));
    }

    /// Finalized blocks from a peer, ascending from our next height. Each must extend the one
    /// before and execute on it (which checks its header against the parent, its parent
    /// certificate and its state root: `state::execute_block`). Only finality counts as
    /// progress: a block is committed, with everything staged below it, once a verified
    /// finalization covers it: its own, or the peer's certified head (`cover`) it links to.
    /// Blocks no finalization covers yet stay staged for the rest of this session only
    /// (`fresh` drops what an earlier session left), so a peer that serves valid blocks that
    /// never become final cannot make the next, honest peer's answers look wrong.
    ///
    /// Returns the next height to ask for, or why the answer was refused (the caller penalises
    /// the peer: an honest peer serving its final chain never fails these checks).
    pub(super) fn apply_synced(
        &mut self,
        io: &Io<'_>,
        blocks: Vec<FinalizedBlock>,
        fresh: bool,
        cover: &(Header, Certificate),
    ) -> Result<u64, String> {
        if fresh {
            self.drop_staged();
        }
        let (cover_header, cover_cert) = cover;
        let (cover_height, cover_hash) = (cover_header.height, cover_header.hash());
        let epochs = self.cfg.rules.epochs;
        let cover_epoch = epochs.of_height(cover_height);
        if cover_epoch == self.epoch
            && cover_cert.verify_finalizes(cover_header, &self.cfg.rules.domain(cover_epoch), &self.set).is_err()
        {
            return Err(format!("the finalization of its head {cover_hash} does not verify"));
        }
        for FinalizedBlock { block, finalization } in blocks {
            if self.halted {
                break;
            }
            let (tip_hash, tip_height) = self.staged.last().copied().unwrap_or((self.head.hash(), self.head.height));
            let hash = block.hash();
            let h = &block.header;
            if h.height <= self.head.height {
                continue;
            }
            if h.height != tip_height.saturating_add(1) || h.parent_hash != tip_hash {
                return Err(format!("block {hash} at height {} does not extend {tip_hash}", h.height));
            }
            if h.height == cover_height && hash != cover_hash {
                return Err(format!("block {hash} at height {} is not the head it announced as final", h.height));
            }
            if epochs.starts_epoch(h.height) && h.height > 1 && !self.staged.is_empty() {
                return Err(format!(
                    "block {hash} starts epoch {} but the last block of the epoch before came without its finalization",
                    epochs.of_height(h.height)
                ));
            }
            // The set of the block's epoch is in its parent's state (G5).
            let set = match self.state_at(io, &tip_hash) {
                Some(state) => state.governance().set(),
                None => return Err(format!("block {hash} does not extend the head")),
            };
            let domain = self.cfg.rules.domain(epochs.of_height(h.height));
            let covering = match finalization {
                Some(fin) => {
                    if fin.verify_finalizes(h, &domain, &set).is_err() {
                        return Err(format!("the finalization of block {hash} does not verify"));
                    }
                    Some(fin)
                }
                None if hash == cover_hash => {
                    if cover_cert.verify_finalizes(h, &domain, &set).is_err() {
                        return Err(format!("the finalization of its head {cover_hash} does not verify"));
                    }
                    Some(cover_cert.clone())
                }
                None => None,
            };
            let height = h.height;
            if let Err(e) = self.execute_into_pending(io, block, false) {
                return Err(format!("block {hash} at height {height} does not execute: {e}"));
            }
            self.staged.push((hash, height));
            if let Some(fin) = covering {
                self.commit_chain(io, hash, &fin, false);
            } else if self.staged.len() > SYNC_STAGED_MAX {
                // Not provably a lie (an honest chain could have so long a stretch without a
                // stored finalization), but nothing to build on: start over, elsewhere.
                self.drop_staged();
                break;
            }
        }
        let head = self.head.height;
        Ok(self.staged.last().map_or(head, |(_, h)| (*h).max(head)).saturating_add(1))
    }

    /// Forgets the blocks staged by sync that no finalization covered.
    fn drop_staged(&mut self) {
        for (hash, _) in std::mem::take(&mut self.staged) {
            self.pending.remove(&hash);
        }
    }
}
