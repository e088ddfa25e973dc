//! Writes: a block and everything it changes go into one WriteBatch written with fsync, so a
//! node killed at any instant restarts either before or after the block, never between.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use rocksdb::WriteBatch;
use taksa_consensus::event::block_events;
use taksa_consensus::state::{Outcome, Receipt};
use taksa_consensus::tree::{self, Node, NodeKey};
use taksa_consensus::{codec, Account, Address, Block, Certificate, Cursor, Event, Hash};

use crate::schema::{
    encode_receipts, head_value, height_key, history_key, state_history_key, DroppedTx, StoredTxLocation,
    ValidatorStats, CF_ACCOUNTS, CF_BLOCKS, CF_DROPPED, CF_EPOCHS, CF_EVENTS, CF_FINALITY, CF_HEIGHTS, CF_HISTORY,
    CF_META, CF_STATE_HISTORY, CF_SUMMARIES, CF_TREE, CF_TXS, FLAG_RECEIVED, FLAG_SENT, HISTORY_ACCOUNT,
    HISTORY_KEY_BYTES, HISTORY_NODE, META_ACCOUNT_COUNT, META_GOVERNANCE, META_HEAD, META_SAFETY, META_TXS_TOTAL,
    META_VALIDATOR_STATS, SAFETY_RECORD_BYTES_MAX, STORED_BLOCK_BYTES_MAX, STORED_CERT_BYTES_MAX,
    STORED_DROPPED_BYTES_MAX, STORED_EPOCH_BYTES_MAX, STORED_EVENT_BYTES_MAX, STORED_STATS_BYTES_MAX,
};
use crate::{StorageError, Store};

impl Store {
    /// Commits `block` as the new head, atomically and durably (fsync) with everything it
    /// changes: `finalization` (its finalization certificate, if known; it must name this
    /// block), `outcome` (its execution: the new value of every account it changed and one
    /// receipt per transaction), the transaction index, the history of each sender and
    /// recipient, its receipts and summary, the totals and validator statistics, and `dropped`
    /// pool records. Returns the block's events, in cursor order, for the live feed.
    ///
    /// Refuses a block that does not extend the head ([`StorageError::NotChild`]), tree changes
    /// whose root is not the header's state root ([`StorageError::StateRootMismatch`]), since
    /// either would leave a database that fails its next open check, and an outcome without one
    /// receipt per transaction ([`StorageError::ReceiptsMismatch`]), whose events could not be
    /// read back. The tree changes are the ones execution computed over this head's tree (the
    /// simulation's store recomputes them from the accounts and compares); checking their root
    /// costs one hash, where recomputing them would cost the block's tree update again.
    pub fn commit_block(
        &self,
        block: &Block,
        finalization: Option<&Certificate>,
        outcome: &Outcome,
        dropped: &[(Hash, DroppedTx)],
    ) -> Result<Vec<(Cursor, Event)>, StorageError> {
        let changes = &outcome.changes;
        let _commit = self.inner.commit_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let header = &block.header;
        let hash = block.hash();
        {
            let (head, head_hash) = {
                let hot = self.hot();
                (hot.head.height, hot.head_hash)
            };
            if Some(header.height) != head.checked_add(1) || header.parent_hash != head_hash {
                return Err(StorageError::NotChild {
                    hash,
                    height: header.height,
                    parent_hash: header.parent_hash,
                    head_hash,
                    head_height: head,
                });
            }
            let root_after = match outcome.tree.get(&NodeKey::ROOT) {
                Some(change) => *change,
                None => self.tree_node(&NodeKey::ROOT)?,
            };
            let computed = root_after.map_or(Hash::ZERO, |n: Node| n.hash());
            if computed != header.state_root {
                return Err(StorageError::StateRootMismatch {
                    hash,
                    height: header.height,
                    claimed: header.state_root,
                    computed,
                });
            }
        }
        let epochs = self.inner.epochs;
        if epochs.is_last(header.height) && finalization.is_none() {
            // The chain of validator sets runs through each epoch's last block and its own
            // finalization: receipts and syncing peers need both.
            return Err(StorageError::BoundaryWithoutFinalization { hash, height: header.height });
        }
        if outcome.receipts.len() != block.txs.len() {
            return Err(StorageError::ReceiptsMismatch {
                hash,
                height: header.height,
                txs: block.txs.len(),
                receipts: outcome.receipts.len(),
            });
        }
        if let Some(cert) = finalization {
            if cert.block_hash != Some(hash) {
                return Err(StorageError::CertificateMismatch {
                    hash,
                    height: header.height,
                    cert_block: cert.block_hash,
                });
            }
        }
        let events = block_events(block, &outcome.receipts);
        let (txs_total, stats) = self.next_totals(block);
        // Each changed account as it was, read once for the count and the history.
        let before: Vec<Account> = changes.keys().map(|addr| self.account(addr)).collect();
        let account_count = self.next_account_count(changes, &before);
        let mut batch = self.block_batch(block, &hash, finalization, outcome, dropped)?;
        self.add_state_history(&mut batch, header.height, outcome, &before)?;
        self.add_events(&mut batch, header.height, &outcome.receipts, &events, txs_total, &stats)?;
        batch.put_cf(self.db().cf(CF_META)?, META_ACCOUNT_COUNT, account_count.to_be_bytes());
        self.db().write(batch, true)?;
        let mut hot = self.hot_mut();
        hot.txs_total = txs_total;
        hot.validator_stats = stats;
        hot.account_count = account_count;
        // Written through under the write lock: see `crate::cache` for why a reader's fill
        // cannot undo it.
        let cache = &self.inner.cache;
        for (addr, account) in changes {
            cache.accounts.insert(*addr, *account);
        }
        for (at, node) in &outcome.tree {
            cache.nodes.insert(*at, *node);
        }
        if let Some(g) = &outcome.governance {
            hot.governance = Arc::clone(g);
        }
        hot.head = header.clone();
        hot.head_hash = hash;
        drop(hot);
        let below =
            header.height.saturating_sub(self.inner.history_blocks).saturating_sub(crate::store::HISTORY_PRUNE_MARGIN);
        self.inner.history_below.store(below, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(target: "storage", height = header.height, %hash, txs = block.txs.len(), changed = changes.len(), "block written");
        Ok(events)
    }

    /// The state history of the block at `height` (when the store keeps one): the value of each
    /// account and tree node it changes, as it was before (`before`: the accounts', in the
    /// order of `outcome.changes`).
    fn add_state_history(
        &self,
        batch: &mut WriteBatch,
        height: u64,
        outcome: &Outcome,
        before: &[Account],
    ) -> Result<(), StorageError> {
        if self.inner.history_blocks == 0 {
            return Ok(());
        }
        let cf = self.db().cf(CF_STATE_HISTORY)?;
        for (addr, before) in outcome.changes.keys().zip(before) {
            let value = if *before == Account::default() { Vec::new() } else { codec::encode(before) };
            batch.put_cf(cf, state_history_key(HISTORY_ACCOUNT, addr.as_bytes(), height), value);
        }
        for at in outcome.tree.keys() {
            let value = self.tree_node(at)?.map_or_else(Vec::new, |n| n.encode());
            batch.put_cf(cf, state_history_key(HISTORY_NODE, &at.to_bytes(), height), value);
        }
        Ok(())
    }

    /// How many non-zero accounts there are once `changes` apply to accounts that were `before`
    /// (in the order of `changes`).
    fn next_account_count(&self, changes: &BTreeMap<Address, Account>, before: &[Account]) -> u64 {
        let zero = Account::default();
        let start = self.hot().account_count;
        changes.values().zip(before).fold(start, |count, (after, before)| match (*before == zero, *after == zero) {
            (true, false) => count.saturating_add(1),
            (false, true) => count.saturating_sub(1),
            _ => count,
        })
    }

    /// The transaction total and validator statistics after `block`: its parent's notarization
    /// (which it carries) counts as signed or missed for each validator of the block's epoch
    /// (the set in the state after the head).
    fn next_totals(&self, block: &Block) -> (u64, Vec<(Address, ValidatorStats)>) {
        let hot = self.hot();
        let txs_total = hot.txs_total.saturating_add(u64::try_from(block.txs.len()).unwrap_or(u64::MAX));
        let mut stats = hot.validator_stats.clone();
        let set = hot.governance.set();
        drop(hot);
        let h = &block.header;
        stats_of(&mut stats, h.proposer).proposed += 1;
        if let (Some(cert), Some(parent_height)) = (&h.parent_cert, h.height.checked_sub(1)) {
            let signers = cert.signer_indices();
            for (i, address) in set.addresses().iter().enumerate() {
                let s = stats_of(&mut stats, *address);
                if signers.contains(&i) {
                    s.signed = s.signed.saturating_add(1);
                    s.last_signed_height = Some(parent_height);
                } else {
                    s.missed = s.missed.saturating_add(1);
                }
            }
        }
        (txs_total, stats)
    }

    /// What the block's events need besides the block: its receipts and its summary (the block
    /// event, which explorers list without reading blocks).
    fn add_events(
        &self,
        batch: &mut WriteBatch,
        height: u64,
        receipts: &[Receipt],
        events: &[(Cursor, Event)],
        txs_total: u64,
        stats: &[(Address, ValidatorStats)],
    ) -> Result<(), StorageError> {
        let db = self.db();
        if !receipts.is_empty() {
            let bytes = checked(encode_receipts(receipts), "receipts", STORED_BLOCK_BYTES_MAX)?;
            batch.put_cf(db.cf(CF_EVENTS)?, height_key(height), bytes);
        }
        let summaries = db.cf(CF_SUMMARIES)?;
        for (_, event) in events {
            if let Event::Block(summary) = event {
                let bytes = checked(codec::encode(summary), "block summary", STORED_EVENT_BYTES_MAX)?;
                batch.put_cf(summaries, height_key(summary.height), bytes);
            }
        }
        let meta = db.cf(CF_META)?;
        batch.put_cf(meta, META_TXS_TOTAL, txs_total.to_be_bytes());
        let stats = checked(codec::encode(&stats.to_vec()), "validator statistics", STORED_STATS_BYTES_MAX)?;
        batch.put_cf(meta, META_VALIDATOR_STATS, stats);
        Ok(())
    }

    fn block_batch(
        &self,
        block: &Block,
        hash: &Hash,
        finalization: Option<&Certificate>,
        outcome: &Outcome,
        dropped: &[(Hash, DroppedTx)],
    ) -> Result<WriteBatch, StorageError> {
        let db = self.db();
        let height = block.header.height;
        let mut batch = WriteBatch::default();
        let encoded = checked(block.encode(), "block", STORED_BLOCK_BYTES_MAX)?;
        // The transactions are the last field of a block's encoding: each one's span follows
        // from the lengths after it, whatever the header and the list's length prefix take.
        let tx_lens: Vec<usize> = block.txs.iter().map(codec::encoded_len).collect();
        let mut offset = encoded.len().saturating_sub(tx_lens.iter().sum::<usize>());
        batch.put_cf(db.cf(CF_BLOCKS)?, hash.0, encoded);
        batch.put_cf(db.cf(CF_HEIGHTS)?, height_key(height), hash.0);
        if let Some(cert) = finalization {
            let bytes = checked(cert.encode(), "finalization certificate", STORED_CERT_BYTES_MAX)?;
            batch.put_cf(db.cf(CF_FINALITY)?, height_key(height), bytes);
        }
        let txs = db.cf(CF_TXS)?;
        let mut history: BTreeMap<[u8; HISTORY_KEY_BYTES], (u8, (u32, u32))> = BTreeMap::new();
        for (i, stx) in block.txs.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| StorageError::ValueTooLarge {
                what: "block transaction count",
                len: block.txs.len(),
                max: u32::MAX as usize,
            })?;
            let tx_hash = stx.hash();
            let len = tx_lens.get(i).copied().unwrap_or(0);
            // Blocks are at most STORED_BLOCK_BYTES_MAX, far below u32::MAX.
            let span = u32::try_from(offset).ok().zip(u32::try_from(len).ok()).unwrap_or((0, 0));
            let loc = StoredTxLocation { height, index, offset: span.0, len: span.1 };
            batch.put_cf(txs, tx_hash.0, codec::encode(&loc));
            offset += len;
            history.entry(history_key(&stx.tx.from, height, index)).or_insert((0, span)).0 |= FLAG_SENT;
            history.entry(history_key(&stx.tx.to, height, index)).or_insert((0, span)).0 |= FLAG_RECEIVED;
        }
        let history_cf = db.cf(CF_HISTORY)?;
        for (key, (flags, (offset, len))) in &history {
            let mut value = [0u8; 9];
            value[0] = *flags;
            value[1..5].copy_from_slice(&offset.to_be_bytes());
            value[5..].copy_from_slice(&len.to_be_bytes());
            batch.put_cf(history_cf, key, value);
        }
        let accounts = db.cf(CF_ACCOUNTS)?;
        for (addr, account) in &outcome.changes {
            if *account == Account::default() {
                batch.delete_cf(accounts, addr.as_bytes());
            } else {
                batch.put_cf(accounts, addr.as_bytes(), codec::encode(account));
            }
        }
        let tree_cf = db.cf(CF_TREE)?;
        for (at, node) in &outcome.tree {
            match node {
                Some(node) => batch.put_cf(tree_cf, at.to_bytes(), node.encode()),
                None => batch.delete_cf(tree_cf, at.to_bytes()),
            }
        }
        if let Some(g) = &outcome.governance {
            batch.put_cf(db.cf(CF_META)?, META_GOVERNANCE, codec::encode(&**g));
        }
        let epochs = self.inner.epochs;
        let before = self.governance();
        let changed = outcome.governance.as_ref().filter(|g| g.validators != before.validators);
        if let Some(governance) = changed.filter(|_| epochs.is_last(height)) {
            // The next epoch's set, changed at this block, proven in the state after it.
            let after = tree::Layered { base: self, layers: vec![&outcome.tree] };
            let proof = tree::prove(&after, &taksa_consensus::governance::governance_key())
                .map_err(|e| db.corrupt(format!("proving the validator set after height {height}: {e}")))?;
            let entry = codec::encode(&(&**governance, &proof));
            let next = epochs.of_height(height).saturating_add(1);
            batch.put_cf(db.cf(CF_EPOCHS)?, next.to_be_bytes(), checked(entry, "epoch entry", STORED_EPOCH_BYTES_MAX)?);
        }
        let dropped_cf = db.cf(CF_DROPPED)?;
        for (tx_hash, item) in dropped {
            batch.put_cf(dropped_cf, tx_hash.0, checked(codec::encode(item), "drop record", STORED_DROPPED_BYTES_MAX)?);
        }
        batch.put_cf(db.cf(CF_META)?, META_HEAD, head_value(height, hash));
        Ok(batch)
    }

    /// Records why transactions left the pool, in one batch. Not fsynced: losing the last few
    /// records in a power cut only makes a status query answer "unknown".
    pub fn put_dropped(&self, items: &[(Hash, DroppedTx)]) -> Result<(), StorageError> {
        let db = self.db();
        let cf = db.cf(CF_DROPPED)?;
        let mut batch = WriteBatch::default();
        for (hash, item) in items {
            batch.put_cf(cf, hash.0, checked(codec::encode(item), "drop record", STORED_DROPPED_BYTES_MAX)?);
        }
        db.write(batch, false)
    }

    /// Stores the consensus safety record and fsyncs before returning, so a vote signed after
    /// this call can never be forgotten by a restart.
    pub fn put_safety_record(&self, bytes: &[u8]) -> Result<(), StorageError> {
        if bytes.len() > SAFETY_RECORD_BYTES_MAX {
            return Err(StorageError::ValueTooLarge {
                what: "safety record",
                len: bytes.len(),
                max: SAFETY_RECORD_BYTES_MAX,
            });
        }
        let db = self.db();
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf(CF_META)?, META_SAFETY, bytes);
        db.write(batch, true)
    }
}

/// Refuses to store a value the store could not read back.
fn checked(bytes: Vec<u8>, what: &'static str, max: usize) -> Result<Vec<u8>, StorageError> {
    if bytes.len() > max {
        return Err(StorageError::ValueTooLarge { what, len: bytes.len(), max });
    }
    Ok(bytes)
}

/// The statistics of `address`, added (at zero) the first time it signs or misses.
fn stats_of(stats: &mut Vec<(Address, ValidatorStats)>, address: Address) -> &mut ValidatorStats {
    let at = match stats.iter().position(|(a, _)| *a == address) {
        Some(at) => at,
        None => {
            stats.push((address, ValidatorStats::default()));
            stats.len() - 1
        }
    };
    &mut stats[at].1
}
