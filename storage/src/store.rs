//! [`Store`]: the handle the node shares. Opening runs the checks of [`crate::check`]; reads of
//! accounts and the head come from memory, everything else from RocksDB.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use taksa_consensus::codec;
use taksa_consensus::governance::Governance;
use taksa_consensus::state::StateReader;
use taksa_consensus::tree::{self, Node, NodeKey, Proof, TreeReader};
use taksa_consensus::{Account, Address, Block, Certificate, Epochs, Genesis, Hash, Header, SignedTransaction};

use crate::cache::{StateCache, STATE_CACHE_BYTES_DEFAULT};
use crate::check::open_checked;
use crate::db::Db;
use crate::schema::{
    decode_block_header, height_key, parse_hash, state_history_key, DroppedTx, HistoryItem, LegacyDroppedTx,
    StoredTxLocation, TxLocation, TxSpan, ValidatorStats, CF_ACCOUNTS, CF_BLOCKS, CF_DROPPED, CF_EPOCHS, CF_FINALITY,
    CF_HEIGHTS, CF_META, CF_STATE_HISTORY, CF_TREE, CF_TXS, HISTORY_ACCOUNT, HISTORY_NODE, META_GOVERNANCE, META_HEAD,
    META_SAFETY, STORED_ACCOUNT_BYTES_MAX, STORED_BLOCK_BYTES_MAX, STORED_CERT_BYTES_MAX, STORED_DROPPED_BYTES_MAX,
    STORED_EPOCH_BYTES_MAX, STORED_GOVERNANCE_BYTES_MAX, STORED_TX_BYTES_MAX,
};
use crate::StorageError;

/// Heights of state history kept below the window proofs may ask for: a proof started just
/// before the window moved on still finds the entries it reads, however RocksDB's compaction
/// filter treats its snapshot.
pub(crate) const HISTORY_PRUNE_MARGIN: u64 = 256;

/// The most entries one [`Store::history`] call returns.
pub const HISTORY_LIMIT_MAX: usize = 1000;
/// The most blocks one [`Store::blocks_range`] call returns.
pub const BLOCKS_RANGE_MAX: usize = 1000;

/// How a store is opened: what it keeps in memory and how much state history it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The state cache's budget in bytes ([`STATE_CACHE_BYTES_DEFAULT`]).
    pub cache_bytes: u64,
    /// How many heights below the head the store can prove accounts at (0: the head only).
    pub history_blocks: u64,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { cache_bytes: STATE_CACHE_BYTES_DEFAULT, history_blocks: 0 }
    }
}

/// The finalized chain and its state. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) genesis_hash: Hash,
    /// The chain's epochs (each epoch's last block is stored with its finalization and the
    /// next epoch's set).
    pub(crate) epochs: Epochs,
    /// The head and what is read with it, changed together so a reader never sees one without
    /// the other.
    pub(crate) hot: RwLock<Hot>,
    /// The accounts and state-tree nodes used lately; the rest of the state is read from disk.
    pub(crate) cache: StateCache,
    /// How many heights below the head the store proves (0: the head only).
    pub(crate) history_blocks: u64,
    /// The lowest height whose state the history has held continuously since this open (or an
    /// earlier one that kept history too).
    pub(crate) history_from: u64,
    /// The state history below this height may go (the compaction filter reads it).
    pub(crate) history_below: Arc<AtomicU64>,
    /// Serialises commits: the head check, the write and the memory update happen as one step.
    pub(crate) commit_lock: Mutex<()>,
}

/// The state served from memory.
pub(crate) struct Hot {
    pub(crate) head: Header,
    pub(crate) head_hash: Hash,
    /// How many non-zero accounts the state after the head holds.
    pub(crate) account_count: u64,
    /// The governance entry after the head: the validator set of the next block's epoch.
    pub(crate) governance: Arc<Governance>,
    /// Transactions committed since genesis.
    pub(crate) txs_total: u64,
    /// One entry per validator that ever signed, missed or proposed.
    pub(crate) validator_stats: Vec<(Address, ValidatorStats)>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hot = self.hot();
        f.debug_struct("Store")
            .field("path", &self.inner.db.path)
            .field("head_height", &hot.head.height)
            .field("head_hash", &hot.head_hash)
            .field("accounts", &hot.account_count)
            .finish()
    }
}

impl Store {
    /// Checks that `path` may be deleted to start a chain over (`--reset`): it is missing,
    /// empty, or a Taksa database; anything else is refused, and nothing is deleted here.
    pub fn check_resettable(path: &Path) -> Result<(), StorageError> {
        crate::db::check_resettable(path)
    }

    /// Opens the database in `path` (creating and initialising it from `genesis` if the folder
    /// is missing or empty) and checks it: same genesis, head present, heights contiguous and
    /// linked, accounts matching the head's state root. Refuses to open otherwise.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Store, StorageError> {
        Store::open_with(path, genesis, StoreOptions::default())
    }

    /// [`Store::open`] with `options`: a state cache of about `cache_bytes` (accounts and tree
    /// nodes kept in memory; the rest of the state is read from disk when used) and
    /// `history_blocks` heights of state history for proofs at past heights.
    pub fn open_with(path: &Path, genesis: &Genesis, options: StoreOptions) -> Result<Store, StorageError> {
        let history_below = Arc::new(AtomicU64::new(0));
        let db = Db::open_with(path, &history_below)?;
        let loaded = open_checked(&db, genesis, options.history_blocks)?;
        let below = loaded.head.height.saturating_sub(options.history_blocks).saturating_sub(HISTORY_PRUNE_MARGIN);
        history_below.store(below, Ordering::Relaxed);
        tracing::info!(
            target: "storage",
            path = %path.display(),
            head_height = loaded.head.height,
            head_hash = %loaded.head_hash,
            accounts = loaded.account_count,
            "opened database"
        );
        let hot = Hot {
            head: loaded.head,
            head_hash: loaded.head_hash,
            account_count: loaded.account_count,
            governance: loaded.governance,
            txs_total: loaded.txs_total,
            validator_stats: loaded.validator_stats,
        };
        let inner = Inner {
            db,
            genesis_hash: genesis.hash(),
            epochs: genesis.epochs(),
            hot: RwLock::new(hot),
            cache: StateCache::new(options.cache_bytes),
            history_blocks: options.history_blocks,
            history_from: loaded.history_from,
            history_below,
            commit_lock: Mutex::new(()),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// The folder the database lives in.
    pub fn path(&self) -> &Path {
        &self.inner.db.path
    }

    /// The genesis hash this database belongs to.
    pub fn genesis_hash(&self) -> Hash {
        self.inner.genesis_hash
    }

    /// The finalized head's header.
    pub fn head(&self) -> Header {
        self.hot().head.clone()
    }

    /// The finalized head's hash.
    pub fn head_hash(&self) -> Hash {
        self.hot().head_hash
    }

    /// The account at `addr` after the head (zero if never touched): from the cache, else from
    /// disk. A database that cannot be read stops the node here (a state it cannot read is not
    /// one it may execute on); run `taksa db-check` on it.
    pub fn account(&self, addr: &Address) -> Account {
        self.read_account(addr, true)
    }

    /// [`Store::account`] without filling the cache on a miss: for reads anyone outside may ask
    /// for (RPC, admission), so that a flood of lookups of other addresses cannot push the
    /// accounts blocks use out of the cache. Only block execution fills it (and commits write
    /// through).
    pub fn peek_account(&self, addr: &Address) -> Account {
        self.read_account(addr, false)
    }

    /// The state as [`Store::peek_account`] reads it.
    pub fn peeking(&self) -> Peeking<'_> {
        Peeking(self)
    }

    fn read_account(&self, addr: &Address, fill: bool) -> Account {
        if let Some(account) = self.inner.cache.accounts.get(addr) {
            return account;
        }
        let head = self.hot().head.height;
        let account = match self
            .db()
            .get_decoded(CF_ACCOUNTS, addr.as_bytes(), STORED_ACCOUNT_BYTES_MAX, || format!("the account of {addr:?}"))
        {
            Ok(account) => account.unwrap_or_default(),
            Err(e) => panic!("the state database cannot be read, so this node stops: {e}"),
        };
        if fill {
            self.fill(head, || self.inner.cache.accounts.insert(*addr, account));
        }
        account
    }

    /// The account at `addr` if the state cache holds it (no disk read).
    pub fn cached_account(&self, addr: &Address) -> Option<Account> {
        self.inner.cache.accounts.get(addr)
    }

    /// The state-tree node at `at` after the head, from the cache, else from disk (`Err` when
    /// the database cannot be read).
    pub(crate) fn tree_node(&self, at: &NodeKey) -> Result<Option<Node>, StorageError> {
        if let Some(node) = self.inner.cache.nodes.get(at) {
            return Ok(node);
        }
        let head = self.hot().head.height;
        let node = read_node(self.db(), at)?;
        self.fill(head, || self.inner.cache.nodes.insert(*at, node));
        Ok(node)
    }

    /// Runs `insert` (a cache fill with a value read from disk after reading `head_height` as
    /// the head) unless a commit has moved the head since: a commit writes its values through
    /// after its batch, so a value read before it must not land after it. The read lock keeps
    /// the next commit's write-through after the fill.
    fn fill(&self, head_height: u64, insert: impl FnOnce()) {
        let hot = self.hot();
        if hot.head.height == head_height {
            insert();
        }
    }

    /// How many accounts and tree nodes the state cache holds, and the bytes each part takes.
    pub fn cache_usage(&self) -> (usize, usize, (usize, usize)) {
        let (accounts, nodes) = self.inner.cache.len();
        (accounts, nodes, self.inner.cache.memory_bytes())
    }

    /// The governance entry after the head: the validator set of the next block's epoch and
    /// the votes on changing it.
    pub fn governance(&self) -> Arc<Governance> {
        Arc::clone(&self.hot().governance)
    }

    /// The changes of the validator set up to epoch `epoch`, oldest first: for each epoch whose
    /// set differs from the one before, the governance entry in the state after the last block
    /// of the epoch before, with the state tree's proof of it under that block's state root.
    /// Empty while the genesis set rules.
    pub fn set_changes(&self, epoch: u64) -> Result<Vec<(u64, Governance, Proof)>, StorageError> {
        let db = self.db();
        let mut out = Vec::new();
        for item in db.db.iterator_cf(db.cf(CF_EPOCHS)?, rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
            let Some(e) = key.as_ref().try_into().ok().map(u64::from_be_bytes) else {
                return Err(db.corrupt("an epochs key is not 8 bytes".into()));
            };
            if e > epoch {
                break;
            }
            if value.len() > STORED_EPOCH_BYTES_MAX {
                return Err(db.corrupt(format!("the validator set of epoch {e} is {} bytes", value.len())));
            }
            let (governance, proof): (Governance, Proof) = codec::decode(&value, STORED_EPOCH_BYTES_MAX)
                .map_err(|err| db.corrupt(format!("the validator set of epoch {e} does not decode: {err}")))?;
            out.push((e, governance, proof));
        }
        Ok(out)
    }

    /// The committed head and the governance entry after it, read together.
    pub fn head_governance(&self) -> (Header, Arc<Governance>) {
        let hot = self.hot();
        (hot.head.clone(), Arc::clone(&hot.governance))
    }

    /// The chain's epochs.
    pub fn epochs(&self) -> Epochs {
        self.inner.epochs
    }

    /// How many non-zero accounts exist.
    pub fn account_count(&self) -> u64 {
        self.hot().account_count
    }

    /// The block at `height`, if committed.
    pub fn block_by_height(&self, height: u64) -> Result<Option<Block>, StorageError> {
        match self.hash_at(height)? {
            None => Ok(None),
            Some(hash) => self
                .block_by_hash(&hash)?
                .map(Some)
                .ok_or_else(|| self.db().corrupt(format!("block {hash} at height {height} is missing"))),
        }
    }

    /// The committed block with this hash.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        self.db().get_decoded(CF_BLOCKS, &hash.0, STORED_BLOCK_BYTES_MAX, || format!("block {hash}"))
    }

    /// The hash of the committed block at `height`.
    pub fn hash_at(&self, height: u64) -> Result<Option<Hash>, StorageError> {
        match self.db().get(CF_HEIGHTS, &height_key(height))? {
            None => Ok(None),
            Some(bytes) => parse_hash(&bytes)
                .map(Some)
                .ok_or_else(|| self.db().corrupt(format!("the hash stored for height {height} is not 32 bytes"))),
        }
    }

    /// The header at `height` (the committed head when `None`), `addr`'s account after it and
    /// the state tree's proof of that account (or of its absence) under its state root, read
    /// together from one RocksDB snapshot (a commit landing meanwhile changes none of them). A
    /// past height is answered from the state history ([`StoreOptions::history_blocks`]);
    /// outside the heights kept, [`StorageError::HistoryUnavailable`].
    pub fn account_proof(&self, addr: &Address, height: Option<u64>) -> Result<(Header, Account, Proof), StorageError> {
        let db = self.db();
        let snapshot = db.db.snapshot();
        let head = snapshot
            .get_cf(db.cf(CF_META)?, META_HEAD)
            .map_err(|source| StorageError::Db { op: "read", source })?
            .ok_or_else(|| db.corrupt("the head record is missing".into()))?;
        let (head_height, head_hash) = crate::schema::parse_head_value(&head)
            .ok_or_else(|| db.corrupt("the head record is not 40 bytes".into()))?;
        let height = height.unwrap_or(head_height);
        let oldest = self.oldest_provable(head_height);
        if height < oldest || height > head_height {
            return Err(StorageError::HistoryUnavailable { height, oldest, head: head_height });
        }
        let header = if height == head_height {
            self.block_by_hash(&head_hash)?.map(|b| b.header)
        } else {
            self.header_by_height(height)?
        }
        .ok_or_else(|| db.corrupt(format!("the block at height {height} is missing")))?;
        // The state after `height`: the history entries after it, else the current values.
        let past = (height < head_height).then_some(height);
        let reader = StateAt { db, snapshot: &snapshot, past };
        let account = match reader.read(CF_ACCOUNTS, HISTORY_ACCOUNT, addr.as_bytes())? {
            None => Account::default(),
            Some(bytes) => db.decode(&bytes, STORED_ACCOUNT_BYTES_MAX, || format!("the account of {addr:?}"))?,
        };
        let key = tree::account_key(addr);
        let proof = DiskTree::new(reader).prove(&key, || format!("account {addr:?}"))?;
        // Checked before it is served: a past height's entries gone to compaction (a proof read
        // while hundreds of blocks landed) make it fail, and a failed proof is not an answer.
        let value = (account != Account::default()).then(|| tree::account_value_hash(&account));
        if proof.verify(&header.state_root, &key, value.as_ref()).is_err() {
            return Err(match past {
                Some(height) => StorageError::HistoryUnavailable {
                    height,
                    oldest: self.oldest_provable(head_height),
                    head: head_height,
                },
                None => {
                    db.corrupt(format!("the proof of account {addr:?} does not verify under the head's state root"))
                }
            });
        }
        Ok((header, account, proof))
    }

    /// The lowest height [`Store::account_proof`] answers while `head` is the head.
    pub fn oldest_provable(&self, head: u64) -> u64 {
        if self.inner.history_blocks == 0 {
            return head;
        }
        head.saturating_sub(self.inner.history_blocks).max(self.inner.history_from).min(head)
    }

    /// The finalization certificate stored with the block at `height`, if one was.
    pub fn finalization(&self, height: u64) -> Result<Option<Certificate>, StorageError> {
        self.db().get_decoded(CF_FINALITY, &height_key(height), STORED_CERT_BYTES_MAX, || {
            format!("the finalization certificate at height {height}")
        })
    }

    /// Where a committed transaction is.
    pub fn tx_location(&self, hash: &Hash) -> Result<Option<TxLocation>, StorageError> {
        Ok(self.stored_location(hash)?.map(|(loc, _)| loc))
    }

    fn stored_location(&self, hash: &Hash) -> Result<Option<(TxLocation, Option<TxSpan>)>, StorageError> {
        let Some(bytes) = self.db().get(CF_TXS, &hash.0)? else { return Ok(None) };
        StoredTxLocation::read(&bytes)
            .map(Some)
            .ok_or_else(|| self.db().corrupt(format!("the location of tx {hash} does not decode")))
    }

    /// A committed transaction and where it is. Decodes only that transaction's bytes from its
    /// block (the whole block for index entries older than the spans).
    pub fn tx(&self, hash: &Hash) -> Result<Option<(SignedTransaction, TxLocation)>, StorageError> {
        let Some((loc, span)) = self.stored_location(hash)? else { return Ok(None) };
        let tx = self.tx_at(loc.height, loc.index, span)?.filter(|tx| tx.hash() == *hash).ok_or_else(|| {
            self.db().corrupt(format!(
                "tx {hash} is indexed at height {} index {}, which is missing or holds another",
                loc.height, loc.index
            ))
        })?;
        Ok(Some((tx, loc)))
    }

    /// The committed transaction at `index` of the block at `height`: decoded from `span` of
    /// the block's bytes when given (as history items carry it), else from the whole block.
    pub fn tx_at(
        &self,
        height: u64,
        index: u32,
        span: Option<TxSpan>,
    ) -> Result<Option<SignedTransaction>, StorageError> {
        let Some(block_hash) = self.hash_at(height)? else { return Ok(None) };
        if let Some((offset, len)) = span.and_then(|(o, l)| usize::try_from(o).ok().zip(usize::try_from(l).ok())) {
            let found = self.db().with_pinned(CF_BLOCKS, &block_hash.0, |bytes| {
                let slice = bytes.get(offset..offset.saturating_add(len))?;
                codec::decode::<SignedTransaction>(slice, STORED_TX_BYTES_MAX).ok()
            })?;
            if let Some(Some(tx)) = found {
                return Ok(Some(tx));
            }
        }
        let block = self.block_by_hash(&block_hash)?;
        Ok(block.and_then(|b| usize::try_from(index).ok().and_then(|i| b.txs.into_iter().nth(i))))
    }

    /// The header of the committed block at `height`, read from the front of its encoding
    /// without decoding its transactions.
    pub fn header_by_height(&self, height: u64) -> Result<Option<Header>, StorageError> {
        let Some(hash) = self.hash_at(height)? else { return Ok(None) };
        let header = self.db().with_pinned(CF_BLOCKS, &hash.0, decode_block_header)?;
        match header {
            None => Err(self.db().corrupt(format!("block {hash} at height {height} is missing"))),
            Some(Ok((header, _))) => Ok(Some(header)),
            Some(Err(why)) => Err(self.db().corrupt(format!("the header of block {hash} does not decode: {why}"))),
        }
    }

    /// Why a transaction was dropped from the pool, if it was and has not been committed since:
    /// a commit leaves an earlier drop record in place (deleting it would write a tombstone for
    /// every transaction), so inclusion is checked first.
    /// Records written before drop records named a replacing transaction read as naming none.
    pub fn dropped(&self, hash: &Hash) -> Result<Option<DroppedTx>, StorageError> {
        let Some(bytes) = self.db().get(CF_DROPPED, &hash.0)? else { return Ok(None) };
        if self.db().get(CF_TXS, &hash.0)?.is_some() {
            return Ok(None);
        }
        if let Ok(legacy) = codec::decode::<LegacyDroppedTx>(&bytes, STORED_DROPPED_BYTES_MAX) {
            return Ok(Some(DroppedTx {
                reason: legacy.reason,
                message: legacy.message,
                height: legacy.height,
                replaced_by: None,
            }));
        }
        self.db().decode(&bytes, STORED_DROPPED_BYTES_MAX, || format!("the drop record of tx {hash}")).map(Some)
    }

    /// The transactions `addr` sent or received, newest first. With `before`, only entries
    /// strictly older than that (height, index). At most `limit`, capped at
    /// [`HISTORY_LIMIT_MAX`].
    pub fn history(
        &self,
        addr: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, StorageError> {
        self.history_page(addr, before, true, crate::HistoryFilter::Any, limit)
    }

    /// Committed blocks from `from` to `to_inclusive` (clamped to the head), in order, stopping
    /// before the total encoded size would pass `bytes_max` (the first block is always returned
    /// if it exists) and after [`BLOCKS_RANGE_MAX`] blocks. For serving sync.
    pub fn blocks_range(&self, from: u64, to_inclusive: u64, bytes_max: usize) -> Result<Vec<Block>, StorageError> {
        let to = to_inclusive.min(self.hot().head.height);
        let mut out = Vec::new();
        let mut bytes_total: usize = 0;
        let mut height = from;
        while height <= to && out.len() < BLOCKS_RANGE_MAX {
            let hash = self
                .hash_at(height)?
                .ok_or_else(|| self.db().corrupt(format!("block at height {height} is missing")))?;
            let bytes = self
                .db()
                .get(CF_BLOCKS, &hash.0)?
                .ok_or_else(|| self.db().corrupt(format!("block {hash} at height {height} is missing")))?;
            bytes_total = bytes_total.saturating_add(bytes.len());
            if !out.is_empty() && bytes_total > bytes_max {
                break;
            }
            out.push(self.db().decode(&bytes, STORED_BLOCK_BYTES_MAX, || format!("block {hash}"))?);
            let Some(next) = height.checked_add(1) else { break };
            height = next;
        }
        Ok(out)
    }

    /// The last consensus safety record written by [`Store::put_safety_record`].
    pub fn safety_record(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.db().get(CF_META, META_SAFETY)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn hot(&self) -> RwLockReadGuard<'_, Hot> {
        // The only writer does plain inserts and removals under the lock, which do not panic,
        // so even a poisoned lock holds a whole state.
        self.inner.hot.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn hot_mut(&self) -> RwLockWriteGuard<'_, Hot> {
        self.inner.hot.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateReader for Store {
    fn account(&self, addr: &Address) -> Account {
        Store::account(self, addr)
    }

    fn governance(&self) -> Arc<Governance> {
        Store::governance(self)
    }
}

/// The store read without filling its cache ([`Store::peek_account`]).
#[derive(Clone, Copy)]
pub struct Peeking<'a>(&'a Store);

impl StateReader for Peeking<'_> {
    fn account(&self, addr: &Address) -> Account {
        self.0.peek_account(addr)
    }

    fn governance(&self) -> Arc<Governance> {
        self.0.governance()
    }
}

/// A missing node and an unreadable one are both `None` to the tree code, which reports a
/// missing node; the chain halts on either, and the log says which.
impl TreeReader for Store {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        self.tree_node(at).unwrap_or_else(|e| {
            tracing::error!(target: "storage", error = %e, "a state-tree node cannot be read");
            None
        })
    }
}

/// The state in one RocksDB snapshot: after its head, or after the `past` height, read through
/// the state history.
pub(crate) struct StateAt<'a> {
    pub(crate) db: &'a Db,
    pub(crate) snapshot: &'a rocksdb::Snapshot<'a>,
    pub(crate) past: Option<u64>,
}

impl StateAt<'_> {
    /// The raw value of `key` in `cf` (accounts or tree nodes, whose history entries are of
    /// `kind`); an empty history entry is `None` (absent then).
    fn read(&self, cf: &'static str, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let read_error = |source| StorageError::Db { op: "read", source };
        if let Some(height) = self.past {
            let start = state_history_key(kind, key, height.saturating_add(1));
            let mut it = self.snapshot.raw_iterator_cf(self.db.cf(CF_STATE_HISTORY)?);
            it.seek(&start);
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                if k.len() == start.len() && k.get(..=key.len()) == start.get(..=key.len()) {
                    return Ok((!v.is_empty()).then(|| v.to_vec()));
                }
            }
            it.status().map_err(read_error)?;
        }
        self.snapshot.get_cf(self.db.cf(cf)?, key).map_err(read_error)
    }
}

/// The state tree as RocksDB holds it: the newest state, or as [`StateAt`] reads it.
pub(crate) struct DiskTree<'a> {
    db: &'a Db,
    at: Option<StateAt<'a>>,
    /// The first read that failed.
    failed: Mutex<Option<StorageError>>,
}

impl<'a> DiskTree<'a> {
    /// The tree as `at` reads it.
    pub(crate) fn new(at: StateAt<'a>) -> DiskTree<'a> {
        DiskTree { db: at.db, at: Some(at), failed: Mutex::new(None) }
    }

    /// The newest tree.
    pub(crate) fn newest(db: &'a Db) -> DiskTree<'a> {
        DiskTree { db, at: None, failed: Mutex::new(None) }
    }

    /// The proof of `key`; a read that fails or a node that is missing is an error (`what`
    /// names the entry in it).
    pub(crate) fn prove(self, key: &Hash, what: impl FnOnce() -> String) -> Result<Proof, StorageError> {
        let proof = tree::prove(&self, key);
        if let Some(e) = self.failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
        proof.map_err(|e| self.db.corrupt(format!("proving {}: {e}", what())))
    }
}

impl TreeReader for DiskTree<'_> {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        let read = match &self.at {
            None => read_node(self.db, at),
            Some(state) => state
                .read(CF_TREE, HISTORY_NODE, &at.to_bytes())
                .and_then(|bytes| bytes.map(|b| decode_node(self.db, at, &b)).transpose()),
        };
        read.unwrap_or_else(|e| {
            self.failed.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
            None
        })
    }
}

/// The newest tree node stored at `at`.
pub(crate) fn read_node(db: &Db, at: &NodeKey) -> Result<Option<Node>, StorageError> {
    let bytes = db
        .db
        .get_pinned_cf(db.cf(CF_TREE)?, at.to_bytes())
        .map_err(|source| StorageError::Db { op: "read", source })?;
    bytes.map(|b| decode_node(db, at, &b)).transpose()
}

fn decode_node(db: &Db, at: &NodeKey, bytes: &[u8]) -> Result<Node, StorageError> {
    Node::decode(bytes).map_err(|e| db.corrupt(format!("the tree node at {at:?} does not decode: {e}")))
}

/// The stored governance entry.
pub(crate) fn read_governance(db: &Db) -> Result<Governance, StorageError> {
    db.get_decoded(CF_META, META_GOVERNANCE, STORED_GOVERNANCE_BYTES_MAX, || "the governance entry".into())?
        .ok_or_else(|| db.corrupt("the governance entry (the validator set) is missing".into()))
}

impl taksa_consensus::chain::ChainStore for Store {
    fn head(&self) -> Header {
        Store::head(self)
    }
}

impl taksa_consensus::chain::BlockSource for Store {
    type Error = StorageError;
    fn head(&self) -> Header {
        Store::head(self)
    }
    fn finalization(&self, height: u64) -> Result<Option<Certificate>, StorageError> {
        Store::finalization(self, height)
    }
    fn block_by_height(&self, height: u64) -> Result<Option<Block>, StorageError> {
        Store::block_by_height(self, height)
    }
    fn blocks_range(&self, from: u64, to: u64, bytes_max: usize) -> Result<Vec<Block>, StorageError> {
        Store::blocks_range(self, from, to, bytes_max)
    }
    fn block(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        if let Some(b) = self.block_by_hash(hash)? {
            return Ok(Some(b));
        }
        Ok(self.pending_blocks()?.into_iter().find(|b| b.hash() == *hash))
    }
}
