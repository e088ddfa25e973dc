//! Making blocks final: committing what the engine finalized, and catching up from finalized
//! blocks that peers send by height (each certificate verified, each block re-executed).

use std::sync::Arc;

use anyhow::Context as _;
use taksa_consensus::{Certificate, Hash};

/// The most blocks a sync session keeps executed while no finalization covers them: twice a
/// request's worth. Honest chains store a finalization at least that often.
const SYNC_STAGED_MAX: usize = 128;
use taksa_p2p::FinalizedBlock;
use taksa_rpc::FeedItem;
use taksa_storage::DroppedTx;

use super::blocks::{Ready, FETCH_DEPTH_MAX};
use super::Chain;
use crate::backend::dropped_status;
use crate::mempool::Dropped;

impl Chain {
    /// The engine finalized `tip`: commit it once it and its ancestors are executed here.
    pub(super) fn on_finalized(&mut self, tip: Hash, height: u64, certificate: Certificate) -> anyhow::Result<()> {
        if height <= self.shared.store.head().height {
            return Ok(());
        }
        if self.parked.commit.as_ref().is_none_or(|(_, h, _)| *h < height) {
            self.parked.commit = Some((tip, height, certificate));
        }
        self.try_commit()
    }

    /// Commits the parked finalized block if everything it needs is here.
    pub(super) fn try_commit(&mut self) -> anyhow::Result<()> {
        let head = self.shared.store.head().height;
        let Some((tip, height, cert)) = self.parked.commit.clone() else { return Ok(()) };
        if height <= head {
            self.parked.commit = None;
            return Ok(());
        }
        if height > head.saturating_add(FETCH_DEPTH_MAX) {
            // Far behind: sync brings the blocks by height.
            return Ok(());
        }
        match self.prepare(tip, height) {
            Ready::Yes => {
                self.parked.commit = None;
                self.commit_chain(tip, &cert, true)
            }
            Ready::Missing => Ok(()),
            // A quorum finalized it, so it must execute: more than a third of the validators
            // are faulty, or this node's state is wrong. Either way following on is unsafe.
            Ready::Invalid => Err(anyhow::anyhow!(
                "block {tip} at height {height} was finalized by a quorum of validators but does not execute on \
                 this node's state: more than a third of the validators are faulty, or this node's data is \
                 corrupt. The node stops rather than follow. Compare the block with other operators \
                 (chain_getBlock); to rebuild this node, move its data folder aside and start it again to sync \
                 from its peers"
            )),
        }
    }

    /// Commits `tip` and its executed ancestors, oldest first, each in one atomic batch, and
    /// announces each block's events. `live` when consensus finalized it here (not sync), so
    /// its finality lag means something.
    pub(super) fn commit_chain(&mut self, tip: Hash, certificate: &Certificate, live: bool) -> anyhow::Result<()> {
        let head = self.shared.store.head();
        let mut chain = Vec::new();
        let mut at = tip;
        while at != head.hash() {
            let Some(p) = self.pending.get(&at) else {
                anyhow::bail!("block {at} was prepared for commit but is not executed (internal error)");
            };
            at = p.block.header.parent_hash;
            chain.push(p.block.hash());
        }
        while let Some(hash) = chain.pop() {
            let Some(p) = self.pending.remove(&hash) else { continue };
            let cert = (hash == tip).then_some(certificate);
            let h = &p.block.header;
            let included: Vec<Hash> = p.block.txs.iter().map(|t| t.hash()).collect();
            let next_height = h.height.saturating_add(1);
            // The pool's lock spans the commit and the pool update, so an admission never sees
            // the new balances together with the old pending set (it would count spends twice).
            let (events, dropped) = {
                let mut pool = self.shared.mempool.lock().map_err(|_| anyhow::anyhow!("mempool lock poisoned"))?;
                let events = self
                    .shared
                    .store
                    .commit_block(&p.block, cert, &p.outcome, &[])
                    .context("committing a block failed")?;
                (events, pool.on_commit(&included, &self.shared.store, next_height))
            };
            tracing::info!(target: "consensus", height = h.height, hash = %hash, view = h.view, txs = p.block.txs.len(), "committed block");
            if live {
                self.shared.record_finality_lag(h.timestamp_ms);
            }
            self.shared.announce(FeedItem::Committed(Arc::new(events)));
            self.record_dropped(&dropped, h.height);
        }
        let committed = self.shared.store.head().height;
        self.pending.retain(|_, p| p.block.header.height > committed);
        self.seen.retain(|_, b| b.header.height > committed);
        self.staged.retain(|(_, h)| *h > committed);
        Ok(())
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
    /// the peer: an honest peer serving its final chain never fails these checks). An `Err` of
    /// the outer result is a local failure (a write).
    pub(super) fn apply_synced(
        &mut self,
        blocks: Vec<FinalizedBlock>,
        fresh: bool,
        cover: &(u64, Hash, Certificate),
    ) -> anyhow::Result<Result<u64, String>> {
        if fresh {
            self.drop_staged();
        }
        for FinalizedBlock { block, finalization } in blocks {
            let head = self.shared.store.head();
            let (tip_hash, tip_height) = self.staged.last().copied().unwrap_or((head.hash(), head.height));
            let hash = block.hash();
            let h = &block.header;
            if h.height <= head.height {
                continue;
            }
            if h.height != tip_height.saturating_add(1) || h.parent_hash != tip_hash {
                return Ok(Err(format!("block {} at height {} does not extend {tip_hash}", hash, h.height)));
            }
            let (cover_height, cover_hash, cover_cert) = cover;
            if h.height == *cover_height && hash != *cover_hash {
                return Ok(Err(format!("block {hash} at height {} is not the head it announced as final", h.height)));
            }
            let covering = match finalization {
                Some(fin) => {
                    if fin.verify_finalizes(h, &self.shared.domain, &self.shared.validators).is_err() {
                        return Ok(Err(format!("the finalization of block {hash} does not verify")));
                    }
                    Some(fin)
                }
                None => (hash == *cover_hash).then(|| cover_cert.clone()),
            };
            let height = h.height;
            if let Err(e) = self.execute_into_pending(block, false) {
                return Ok(Err(format!("block {hash} at height {height} does not execute: {e}")));
            }
            self.staged.push((hash, height));
            if let Some(fin) = covering {
                self.commit_chain(hash, &fin, false)?;
            } else if self.staged.len() > SYNC_STAGED_MAX {
                // Not provably a lie (an honest chain could have so long a stretch without a
                // stored finalization), but nothing to build on: start over, elsewhere.
                self.drop_staged();
                break;
            }
        }
        let head = self.shared.store.head().height;
        let next = self.staged.last().map_or(head, |(_, h)| (*h).max(head)).saturating_add(1);
        Ok(Ok(next))
    }

    /// Forgets the blocks staged by sync that no finalization covered.
    fn drop_staged(&mut self) {
        for (hash, _) in std::mem::take(&mut self.staged) {
            self.pending.remove(&hash);
        }
    }

    pub(super) fn record_dropped(&self, dropped: &[Dropped], height: u64) {
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
            self.shared.announce(FeedItem::Dropped { hash: *h, status: dropped_status(d) });
        }
        if let Err(e) = self.shared.store.put_dropped(&items) {
            tracing::error!(target: "mempool", error = %e, "could not record dropped transactions");
        }
    }
}
