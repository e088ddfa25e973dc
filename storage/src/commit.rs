//! Writes: a block and everything it changes go into one WriteBatch written with fsync, so a
//! node killed at any instant restarts either before or after the block, never between.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use rocksdb::WriteBatch;
use taksa_consensus::state::next_root;
use taksa_consensus::{codec, Account, Address, Block, Certificate, Hash};

use crate::schema::{
    head_value, height_key, history_key, DroppedTx, TxLocation, CF_ACCOUNTS, CF_BLOCKS, CF_DROPPED, CF_FINALITY,
    CF_HEIGHTS, CF_HISTORY, CF_META, CF_TXS, FLAG_RECEIVED, FLAG_SENT, HISTORY_KEY_BYTES, META_HEAD, META_SAFETY,
    SAFETY_RECORD_BYTES_MAX, STORED_BLOCK_BYTES_MAX, STORED_CERT_BYTES_MAX, STORED_DROPPED_BYTES_MAX,
};
use crate::{StorageError, Store};

impl Store {
    /// Commits `block` as the new head, atomically and durably (fsync) with everything it
    /// changes: `finalization` (its finalization certificate, if known; it must name this
    /// block), `changes` (the new value of every account the block changed), the transaction
    /// index, the history of each sender and recipient, and `dropped` pool records.
    ///
    /// Refuses a block that does not extend the head ([`StorageError::NotChild`]) and changes
    /// that do not produce the header's state root ([`StorageError::StateRootMismatch`]), since
    /// either would leave a database that fails its next open check.
    pub fn commit_block(
        &self,
        block: &Block,
        finalization: Option<&Certificate>,
        changes: &BTreeMap<Address, Account>,
        dropped: &[(Hash, DroppedTx)],
    ) -> Result<(), StorageError> {
        let _commit = self.inner.commit_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let header = &block.header;
        let hash = block.hash();
        {
            let hot = self.hot();
            if Some(header.height) != hot.head.height.checked_add(1) || header.parent_hash != hot.head_hash {
                return Err(StorageError::NotChild {
                    hash,
                    height: header.height,
                    parent_hash: header.parent_hash,
                    head_hash: hot.head_hash,
                    head_height: hot.head.height,
                });
            }
            let computed = next_root(&hot.accounts, &hot.head.state_root, changes);
            if computed != header.state_root {
                return Err(StorageError::StateRootMismatch {
                    hash,
                    height: header.height,
                    claimed: header.state_root,
                    computed,
                });
            }
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
        let batch = self.block_batch(block, &hash, finalization, changes, dropped)?;
        self.db().write(batch, true)?;
        let mut hot = self.hot_mut();
        for (addr, account) in changes {
            if *account == Account::default() {
                hot.accounts.remove(addr);
            } else {
                hot.accounts.insert(*addr, *account);
            }
        }
        hot.head = header.clone();
        hot.head_hash = hash;
        drop(hot);
        tracing::debug!(target: "storage", height = header.height, %hash, txs = block.txs.len(), changed = changes.len(), "block written");
        Ok(())
    }

    fn block_batch(
        &self,
        block: &Block,
        hash: &Hash,
        finalization: Option<&Certificate>,
        changes: &BTreeMap<Address, Account>,
        dropped: &[(Hash, DroppedTx)],
    ) -> Result<WriteBatch, StorageError> {
        let db = self.db();
        let height = block.header.height;
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf(CF_BLOCKS)?, hash.0, checked(block.encode(), "block", STORED_BLOCK_BYTES_MAX)?);
        batch.put_cf(db.cf(CF_HEIGHTS)?, height_key(height), hash.0);
        if let Some(cert) = finalization {
            let bytes = checked(cert.encode(), "finalization certificate", STORED_CERT_BYTES_MAX)?;
            batch.put_cf(db.cf(CF_FINALITY)?, height_key(height), bytes);
        }
        let (txs, dropped_cf) = (db.cf(CF_TXS)?, db.cf(CF_DROPPED)?);
        let mut history: BTreeMap<[u8; HISTORY_KEY_BYTES], u8> = BTreeMap::new();
        for (i, stx) in block.txs.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| StorageError::ValueTooLarge {
                what: "block transaction count",
                len: block.txs.len(),
                max: u32::MAX as usize,
            })?;
            let tx_hash = stx.hash();
            batch.put_cf(txs, tx_hash.0, codec::encode(&TxLocation { height, index }));
            // An included transaction is no longer dropped, whatever the pool said before.
            batch.delete_cf(dropped_cf, tx_hash.0);
            *history.entry(history_key(&stx.tx.from, height, index)).or_default() |= FLAG_SENT;
            *history.entry(history_key(&stx.tx.to, height, index)).or_default() |= FLAG_RECEIVED;
        }
        let history_cf = db.cf(CF_HISTORY)?;
        for (key, flags) in &history {
            batch.put_cf(history_cf, key, [*flags]);
        }
        let accounts = db.cf(CF_ACCOUNTS)?;
        for (addr, account) in changes {
            if *account == Account::default() {
                batch.delete_cf(accounts, addr.as_bytes());
            } else {
                batch.put_cf(accounts, addr.as_bytes(), codec::encode(account));
            }
        }
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
