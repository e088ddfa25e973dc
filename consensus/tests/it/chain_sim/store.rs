//! The simulated disk: what `taksa_storage::Store` keeps, in memory, with its write order. A
//! pending block is volatile until the next synced write (a vote or a commit), as RocksDB's
//! write-ahead log makes it; a crash loses the volatile writes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use std::convert::Infallible;

use taksa_consensus::chain::{BlockSource, ChainStore, CommitBatch};
use taksa_consensus::engine::SafetyRecord;
use taksa_consensus::governance::Governance;
use taksa_consensus::pool::DroppedTx;
use taksa_consensus::state::{next_tree, MemState, StateReader};
use taksa_consensus::tree::{Node, NodeKey, TreeReader};
use taksa_consensus::{Account, Address, Block, Certificate, Genesis, Hash, Header};

pub(crate) struct FakeStore {
    head: Header,
    genesis_hash: Hash,
    state: MemState,
    blocks: BTreeMap<u64, Arc<Block>>,
    by_hash: BTreeMap<Hash, u64>,
    finals: BTreeMap<u64, Certificate>,
    pub(crate) record: Option<SafetyRecord>,
    pending: BTreeMap<Hash, Arc<Block>>,
    volatile: Vec<Arc<Block>>,
    dropped: BTreeMap<Hash, DroppedTx>,
    committed_txs: HashSet<Hash>,
}

impl FakeStore {
    pub(crate) fn new(genesis: &Genesis) -> FakeStore {
        FakeStore {
            head: genesis.header(),
            genesis_hash: genesis.hash(),
            state: MemState::genesis(genesis),
            blocks: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            finals: BTreeMap::new(),
            record: None,
            pending: BTreeMap::new(),
            volatile: Vec::new(),
            dropped: BTreeMap::new(),
            committed_txs: HashSet::new(),
        }
    }

    /// The synced writes: everything volatile becomes durable.
    fn flush(&mut self) {
        for b in self.volatile.drain(..) {
            if b.header.height > self.head.height {
                self.pending.insert(b.hash(), b);
            }
        }
    }

    /// A crash: unsynced writes are lost.
    pub(crate) fn crash(&mut self) {
        self.volatile.clear();
    }

    pub(crate) fn put_pending(&mut self, block: Arc<Block>) {
        self.volatile.push(block);
    }

    pub(crate) fn put_record(&mut self, record: SafetyRecord) {
        self.flush();
        self.record = Some(record);
    }

    pub(crate) fn put_dropped(&mut self, items: &[(Hash, DroppedTx)]) {
        self.dropped.extend(items.iter().cloned());
    }

    /// What `Store::commit_block` does and refuses.
    pub(crate) fn commit(&mut self, batch: &CommitBatch) -> Result<(), String> {
        self.flush();
        let h = &batch.block.header;
        let hash = batch.block.hash();
        if h.height != self.head.height + 1 || h.parent_hash != self.head.hash() {
            return Err(format!("block {hash} at {} does not extend the head at {}", h.height, self.head.height));
        }
        // Recomputed here from the committed state alone: the core computed the outcome's tree
        // over layers of blocks not final yet, and must have written exactly these nodes.
        let tree = next_tree(&self.state, &batch.outcome.changes, batch.outcome.governance.as_deref())
            .map_err(|e| e.to_string())?;
        if tree.root != h.state_root {
            return Err(format!(
                "block {hash} at {}: state root {} computed, {} claimed",
                h.height, tree.root, h.state_root
            ));
        }
        if tree.nodes != batch.outcome.tree {
            return Err(format!("block {hash} at {}: the outcome's tree changes are not the store's", h.height));
        }
        for tx in &batch.block.txs {
            if !self.committed_txs.insert(tx.hash()) {
                return Err(format!("transaction {} committed twice (again at height {})", tx.hash(), h.height));
            }
        }
        self.state.apply_outcome(&batch.outcome);
        if let Some(fin) = &batch.finalization {
            self.finals.insert(h.height, fin.clone());
        }
        self.dropped.extend(batch.dropped.iter().cloned());
        self.blocks.insert(h.height, Arc::clone(&batch.block));
        self.by_hash.insert(hash, h.height);
        self.head = h.clone();
        let height = h.height;
        self.pending.retain(|_, b| b.header.height > height);
        Ok(())
    }

    /// The signers of every evidence item in the committed blocks, in block order.
    pub(crate) fn committed_offenders(&self) -> Vec<Address> {
        self.blocks.values().flat_map(|b| b.evidence.iter().map(|e| e.a.signer)).collect()
    }

    pub(crate) fn committed_txs(&self) -> usize {
        self.committed_txs.len()
    }

    pub(crate) fn head_height(&self) -> u64 {
        self.head.height
    }

    pub(crate) fn pending_blocks(&self) -> Vec<Block> {
        self.pending.values().map(|b| Block::clone(b)).collect()
    }

    /// What the node's open check asserts: blocks link from genesis to the head, and the head
    /// carries its finalization.
    pub(crate) fn check_open(&self) -> Result<(), String> {
        let mut parent = self.genesis_hash;
        for (height, b) in &self.blocks {
            if b.header.parent_hash != parent || b.header.height != *height {
                return Err(format!("stored block at {height} does not link to its parent"));
            }
            parent = b.hash();
        }
        if parent != self.head.hash() {
            return Err("the stored head is not the last stored block".into());
        }
        // The head need not have its own finalization: a crash between the batches of one
        // commit of several blocks (ancestors, then the finalized tip with its certificate)
        // leaves a final head whose certificate was in the lost batch. It is still final (C3:
        // only finality commits; the checker verifies agreement), and the node serves the
        // highest finalization stored below it (`chain::certified_head`). Slow-mode seed 616
        // of `sim_chain_validators_n4` found this check stricter than `Store::open`.
        Ok(())
    }
}

impl StateReader for FakeStore {
    fn account(&self, addr: &Address) -> Account {
        self.state.account(addr)
    }

    fn governance(&self) -> Arc<Governance> {
        self.state.governance()
    }
}

impl TreeReader for FakeStore {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        self.state.node(at)
    }
}

impl BlockSource for FakeStore {
    type Error = Infallible;
    fn head(&self) -> Header {
        self.head.clone()
    }
    fn finalization(&self, height: u64) -> Result<Option<Certificate>, Infallible> {
        Ok(self.finals.get(&height).cloned())
    }
    fn block_by_height(&self, height: u64) -> Result<Option<Block>, Infallible> {
        Ok(self.blocks.get(&height).map(|b| Block::clone(b)))
    }
    fn blocks_range(&self, from: u64, to: u64, _bytes_max: usize) -> Result<Vec<Block>, Infallible> {
        Ok(self.blocks.range(from..=to).map(|(_, b)| Block::clone(b)).collect())
    }
    fn block(&self, hash: &Hash) -> Result<Option<Block>, Infallible> {
        let committed = self.by_hash.get(hash).and_then(|h| self.blocks.get(h));
        Ok(committed.or_else(|| self.pending.get(hash)).map(|b| Block::clone(b)))
    }
}

impl ChainStore for FakeStore {
    fn head(&self) -> Header {
        self.head.clone()
    }
}
