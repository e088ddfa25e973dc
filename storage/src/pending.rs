//! Blocks the node built or verified but has not committed: kept so that a crash between a
//! vote and the commit of the block it voted for can never leave a finalized block unknown.
//!
//! They live under the `pending/` prefix of the meta column family (a handful at a time) and
//! are written without fsync: the node fsyncs its vote right after, and RocksDB's write-ahead
//! log is one sequence, so the vote's sync makes the block durable too.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use taksa_consensus::{codec, Block};

use crate::schema::{CF_META, STORED_BLOCK_BYTES_MAX};
use crate::{StorageError, Store};

const PENDING_PREFIX: &[u8] = b"pending/";

fn pending_key(block: &Block) -> Vec<u8> {
    let mut key = PENDING_PREFIX.to_vec();
    key.extend_from_slice(&block.header.height.to_be_bytes());
    key.extend_from_slice(&block.hash().0);
    key
}

impl Store {
    /// Stores an uncommitted block, and forgets stored ones at or below the committed head.
    pub fn put_pending(&self, block: &Block) -> Result<(), StorageError> {
        let db = &self.inner.db;
        let head = self.head().height;
        let meta = db.cf(CF_META)?;
        let mut batch = WriteBatch::default();
        for (key, stale) in self.pending_entries()? {
            if stale.header.height <= head {
                batch.delete_cf(meta, key);
            }
        }
        batch.put_cf(meta, pending_key(block), codec::encode(block));
        db.write(batch, false)
    }

    /// The stored uncommitted blocks above the committed head, lowest first.
    pub fn pending_blocks(&self) -> Result<Vec<Block>, StorageError> {
        let head = self.head().height;
        Ok(self.pending_entries()?.into_iter().map(|(_, b)| b).filter(|b| b.header.height > head).collect())
    }

    fn pending_entries(&self) -> Result<Vec<(Vec<u8>, Block)>, StorageError> {
        let db = &self.inner.db;
        let iter = db.db.iterator_cf(db.cf(CF_META)?, IteratorMode::From(PENDING_PREFIX, Direction::Forward));
        let mut out = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
            if !key.starts_with(PENDING_PREFIX) {
                break;
            }
            let block: Block = db.decode(&value, STORED_BLOCK_BYTES_MAX, || "an uncommitted block".to_owned())?;
            out.push((key.to_vec(), block));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taksa_consensus::{Address, Genesis, Hash, Keypair};

    fn genesis() -> Genesis {
        let v = Address(Keypair::from_seed(&[1; 32]).public());
        Genesis {
            chain_id: "t".into(),
            address_hrp: "t".into(),
            genesis_time_ms: 0,
            block_time_ms: 100,
            fee_floor: 1,
            epoch_length: 100,
            validators: vec![v],
            validator_names: vec!["v".into()],
            allocations: vec![],
        }
    }

    #[test]
    fn pending_blocks_survive_reopen_and_are_forgotten_once_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = genesis();
        let store = Store::open(dir.path(), &g).expect("open");
        let parent = store.head();
        let header = taksa_consensus::Header {
            height: 1,
            view: 1,
            parent_hash: parent.hash(),
            tx_root: taksa_consensus::block::tx_root(&[]),
            parent_cert: None,
            ..parent.clone()
        };
        let block = Block { header, evidence: Vec::new(), txs: vec![] };
        store.put_pending(&block).expect("put");
        drop(store);
        let store = Store::open(dir.path(), &g).expect("reopen");
        assert_eq!(store.pending_blocks().expect("read"), vec![block.clone()]);
        store
            .commit_block(
                &block,
                None,
                &taksa_consensus::state::Outcome {
                    changes: Default::default(),
                    governance: None,
                    state_root: block.header.state_root,
                    tree: Default::default(),
                    receipts: vec![],
                },
                &[],
            )
            .expect("commit");
        assert!(store.pending_blocks().expect("read").is_empty(), "a committed block is not pending");
        let other = Block {
            header: taksa_consensus::Header { height: 2, parent_hash: Hash([9; 32]), ..block.header.clone() },
            ..block
        };
        store.put_pending(&other).expect("put");
        assert_eq!(store.pending_blocks().expect("read").len(), 1);
    }
}
