//! What happens on open: a new folder is initialised from genesis in one batch; an existing one
//! must belong to the same genesis, have a head, the genesis block at height 0, no height above
//! the head, the newest [`OPEN_CHECK_BLOCKS`] heights contiguous and linked, a state tree whose
//! root is the head's state root and which proves the stored validator set. Anything else
//! refuses to start.
//!
//! Every block is committed in one batch that also checks it extends the head and gives its
//! state root, so the older heights were linked and the tree whole when written; walking every
//! height, reading every account or re-hashing them at each start would make a restart grow with
//! the chain. The state stays on disk: the store reads what it uses through its cache.
//! [`verify_chain`] (`taksa db-check`) walks every height and rebuilds the tree on demand.

use std::collections::HashMap;
use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch};
use taksa_consensus::governance::Governance;
use taksa_consensus::state::MemState;
use taksa_consensus::tree::{Node, NodeKey};
use taksa_consensus::{Account, Address, Block, Genesis, Hash, Header};

use crate::db::Db;
use crate::schema::{
    decode_block_header, head_value, height_key, parse_address, parse_hash, parse_head_value, parse_height_key,
    ValidatorStats, CF_ACCOUNTS, CF_BLOCKS, CF_HEIGHTS, CF_META, CF_TREE, META_ACCOUNT_COUNT, META_GENESIS,
    META_GOVERNANCE, META_HEAD, META_HISTORY_FROM, META_SCHEMA, META_TXS_TOTAL, META_VALIDATOR_STATS, SCHEMA_VERSION,
    STORED_ACCOUNT_BYTES_MAX, STORED_STATS_BYTES_MAX,
};
use crate::store::{read_governance, read_node, DiskTree};
use crate::StorageError;

/// Above this many blocks, the chain check logs its progress.
const PROGRESS_EVERY_BLOCKS: u64 = 100_000;
/// How many of the newest heights (the head's included) each open walks.
pub(crate) const OPEN_CHECK_BLOCKS: u64 = 1024;

/// What the open check hands to the store.
pub(crate) struct Loaded {
    pub(crate) head: Header,
    pub(crate) head_hash: Hash,
    pub(crate) account_count: u64,
    pub(crate) history_from: u64,
    pub(crate) governance: Arc<Governance>,
    pub(crate) txs_total: u64,
    pub(crate) validator_stats: Vec<(Address, ValidatorStats)>,
}

/// Initialises an empty database or checks an existing one against `genesis`.
pub(crate) fn open_checked(db: &Db, genesis: &Genesis, history_blocks: u64) -> Result<Loaded, StorageError> {
    let expected = genesis.hash();
    match db.get(CF_META, META_GENESIS)? {
        None => {
            ensure_empty(db)?;
            init_from_genesis(db, genesis)?;
            tracing::info!(target: "storage", path = %db.path.display(), genesis = %expected, "initialised a new database from genesis");
        }
        Some(bytes) => {
            // First: an older layout's genesis hash differs too (version 5 changed the state
            // root), and "older version" is the message that says what to do.
            check_schema(db)?;
            let stored =
                parse_hash(&bytes).ok_or_else(|| db.corrupt("the stored genesis hash is not 32 bytes".into()))?;
            if stored != expected {
                return Err(StorageError::GenesisMismatch {
                    path: db.path.clone(),
                    stored_chain_id: stored_chain_id(db),
                    stored_genesis: stored,
                    expected_chain_id: genesis.chain_id.clone(),
                    expected_genesis: expected,
                });
            }
        }
    }
    // Before anything is decoded: an older layout may encode blocks differently.
    check_schema(db)?;
    let (head, head_hash) = check_chain(db, &expected, Some(OPEN_CHECK_BLOCKS))?;
    let account_count = load_account_count(db)?;
    let computed = check_root(db, &head, read_node(db, &NodeKey::ROOT)?)?;
    let governance = read_governance(db)?;
    let key = taksa_consensus::governance::governance_key();
    let proof = DiskTree::newest(db).prove(&key, || "the governance entry".into())?;
    if proof.verify(&computed, &key, Some(&governance.value_hash())).is_err() {
        return Err(db.corrupt("the stored governance entry is not the one the state tree holds".into()));
    }
    let (txs_total, validator_stats) = load_totals(db)?;
    let history_from = history_from(db, history_blocks, head.height)?;
    Ok(Loaded {
        head,
        head_hash,
        account_count,
        history_from,
        governance: Arc::new(governance),
        txs_total,
        validator_stats,
    })
}

/// The lowest height the state history holds continuously. The record is that height and the
/// window the last run kept: the history below `head - window - margin` may be compacted away,
/// so a run that kept a smaller window moves the height up; a run without history leaves a gap,
/// so its record goes and the next run starts at its head.
fn history_from(db: &Db, history_blocks: u64, head: u64) -> Result<u64, StorageError> {
    let stored = match db.get(CF_META, META_HISTORY_FROM)? {
        None => None,
        Some(bytes) => {
            let bad = || db.corrupt("the state history's record is not 16 bytes".into());
            let from: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
            let window: [u8; 8] = bytes.get(8..16).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
            Some((u64::from_be_bytes(from), u64::from_be_bytes(window)))
        }
    };
    let mut batch = WriteBatch::default();
    let meta = db.cf(CF_META)?;
    let from = match (history_blocks, stored) {
        (0, None) => return Ok(head),
        (0, Some(_)) => {
            batch.delete_cf(meta, META_HISTORY_FROM);
            head
        }
        (_, Some((from, window))) if from <= head => {
            // What the last run's window let compaction drop (up to the head it reached).
            from.max(head.saturating_sub(window).saturating_sub(crate::store::HISTORY_PRUNE_MARGIN))
        }
        (_, _) => head,
    };
    if history_blocks > 0 {
        let mut value = from.to_be_bytes().to_vec();
        value.extend_from_slice(&history_blocks.to_be_bytes());
        batch.put_cf(meta, META_HISTORY_FROM, value);
    }
    db.write(batch, true)?;
    Ok(from)
}

/// Checks that the stored tree's root node hashes to the head's state root; returns that root.
fn check_root(db: &Db, head: &Header, root: Option<Node>) -> Result<Hash, StorageError> {
    let computed = root.map_or(Hash::ZERO, |n| n.hash());
    if computed != head.state_root {
        return Err(StorageError::StateMismatch {
            path: db.path.clone(),
            head_height: head.height,
            expected: head.state_root,
            computed,
        });
    }
    Ok(computed)
}

/// The stored account count (written with genesis and by every commit).
fn load_account_count(db: &Db) -> Result<u64, StorageError> {
    let bytes =
        db.get(CF_META, META_ACCOUNT_COUNT)?.ok_or_else(|| db.corrupt("the account count is missing".into()))?;
    let bytes: [u8; 8] =
        bytes.as_slice().try_into().map_err(|_| db.corrupt("the account count is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// A database of an older layout is refused with what to do: even a genesis-only one holds its
/// genesis block in the older block encoding.
fn check_schema(db: &Db) -> Result<(), StorageError> {
    let found = match db.get(CF_META, META_SCHEMA)? {
        None => 1,
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| db.corrupt("the layout version is not 4 bytes".into()))?,
    };
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StorageError::OldSchema { path: db.path.clone(), found, needed: SCHEMA_VERSION })
}

/// The transaction total and one statistics entry per validator (zeros when absent).
fn load_totals(db: &Db) -> Result<(u64, Vec<(Address, ValidatorStats)>), StorageError> {
    let txs_total = match db.get(CF_META, META_TXS_TOTAL)? {
        None => 0,
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| db.corrupt("the transaction total is not 8 bytes".into()))?,
    };
    let stats: Vec<(Address, ValidatorStats)> = db
        .get_decoded(CF_META, META_VALIDATOR_STATS, STORED_STATS_BYTES_MAX, || "the validator statistics".into())?
        .unwrap_or_default();
    Ok((txs_total, stats))
}

/// A database without a genesis hash must hold nothing else: genesis is written in the same
/// batch as the first block and accounts.
fn ensure_empty(db: &Db) -> Result<(), StorageError> {
    for cf in [CF_BLOCKS, CF_HEIGHTS, CF_ACCOUNTS, CF_TREE, CF_META] {
        if db.db.iterator_cf(db.cf(cf)?, IteratorMode::Start).next().is_some() {
            return Err(db.corrupt(format!("the genesis hash is missing but column family `{cf}` holds data")));
        }
    }
    Ok(())
}

fn init_from_genesis(db: &Db, genesis: &Genesis) -> Result<(), StorageError> {
    let block = Block { header: genesis.header(), evidence: Vec::new(), txs: Vec::new() };
    let hash = block.hash();
    let mut batch = WriteBatch::default();
    batch.put_cf(db.cf(CF_BLOCKS)?, hash.0, block.encode());
    batch.put_cf(db.cf(CF_HEIGHTS)?, height_key(0), hash.0);
    let state = MemState::genesis(genesis);
    let accounts = db.cf(CF_ACCOUNTS)?;
    // Zero accounts are not stored: every address starts at zero, and the tree leaves them out.
    for (addr, account) in &state.accounts {
        batch.put_cf(accounts, addr.as_bytes(), taksa_consensus::codec::encode(account));
    }
    let tree = db.cf(CF_TREE)?;
    for (at, node) in &state.tree {
        batch.put_cf(tree, at.to_bytes(), node.encode());
    }
    let meta = db.cf(CF_META)?;
    batch.put_cf(meta, META_ACCOUNT_COUNT, (state.accounts.len() as u64).to_be_bytes());
    batch.put_cf(meta, META_GOVERNANCE, taksa_consensus::codec::encode(&*state.governance));
    batch.put_cf(meta, META_GENESIS, hash.0);
    batch.put_cf(meta, META_HEAD, head_value(0, &hash));
    batch.put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_be_bytes());
    db.write(batch, true)
}

/// The chain id in the stored genesis block, for the mismatch message.
fn stored_chain_id(db: &Db) -> String {
    let header = db
        .get(CF_HEIGHTS, &height_key(0))
        .ok()
        .flatten()
        .and_then(|hash| db.get(CF_BLOCKS, &hash).ok().flatten())
        .and_then(|bytes| decode_block_header(&bytes).ok());
    header.map_or_else(|| "(unreadable)".to_owned(), |(h, _)| h.chain_id)
}

/// Walks every stored height of the database in `path` (which no node may hold): each maps to a
/// block of that height whose parent is the previous one, from the genesis block to the head;
/// then rebuilds the state tree from the stored accounts and compares it with the stored one,
/// node for node. Tells `progress` when each long step starts. Returns the head's height.
pub fn verify_chain(path: &std::path::Path, progress: &mut dyn FnMut(&str)) -> Result<u64, StorageError> {
    let db = Db::open_existing(path)?;
    check_schema(&db)?;
    let genesis = db.get(CF_META, META_GENESIS)?.ok_or_else(|| db.corrupt("the genesis hash is missing".into()))?;
    let genesis = parse_hash(&genesis).ok_or_else(|| db.corrupt("the stored genesis hash is not 32 bytes".into()))?;
    progress("walking every stored height");
    let (head, _) = check_chain(&db, &genesis, None)?;
    progress(&format!("heights 0..={} link; reading the accounts and the state tree", head.height));
    let accounts = load_accounts(&db)?;
    let tree = load_tree(&db, &head, accounts.len())?;
    let governance = read_governance(&db)?;
    progress(&format!(
        "rebuilding the state tree of {} accounts to compare with the {} stored nodes (about 5 s per 10^6 accounts)",
        accounts.len(),
        tree.len()
    ));
    let rebuilt = MemState::new(accounts.iter().map(|(a, acct)| (*a, *acct)), governance);
    if rebuilt.tree != tree {
        return Err(db.corrupt(format!(
            "the stored state tree ({} nodes) is not the tree of the {} stored accounts ({} nodes, root {})",
            tree.len(),
            accounts.len(),
            rebuilt.tree.len(),
            rebuilt.root()
        )));
    }
    Ok(head.height)
}

/// Checks the stored chain: the genesis block at height 0, nothing above the head, and the
/// newest `tail` heights (all of them when `None`) each mapping to a stored block of that
/// height whose parent is the previous one. Returns the head header and hash.
fn check_chain(db: &Db, genesis_hash: &Hash, tail: Option<u64>) -> Result<(Header, Hash), StorageError> {
    let head_bytes = db.get(CF_META, META_HEAD)?.ok_or_else(|| db.corrupt("the head record is missing".into()))?;
    let (head_height, head_hash) =
        parse_head_value(&head_bytes).ok_or_else(|| db.corrupt("the head record is not 40 bytes".into()))?;
    let heights = db.cf(CF_HEIGHTS)?;
    if let Some(item) = db.db.iterator_cf(heights, IteratorMode::End).next() {
        let (key, _) = item.map_err(|source| StorageError::Db { op: "read", source })?;
        let top =
            parse_height_key(&key).ok_or_else(|| db.corrupt(format!("heights key 0x{} is not 8 bytes", hex(&key))))?;
        if top > head_height {
            return Err(db.corrupt(format!("a block is stored at height {top}, above the head {head_height}")));
        }
    }
    let start = tail.map_or(0, |n| head_height.saturating_sub(n.saturating_sub(1)));
    if start > 0 {
        // The genesis block, which the walk below does not reach.
        let hash = db.get(CF_HEIGHTS, &height_key(0))?.ok_or_else(|| missing_block(db, 0))?;
        let hash =
            parse_hash(&hash).ok_or_else(|| db.corrupt("the hash stored for height 0 is not 32 bytes".into()))?;
        let (header, computed) = stored_header(db, 0, &hash)?;
        check_link(db, 0, &hash, &computed, &header, None, genesis_hash)?;
    }
    let mut expected_height = start;
    let mut prev: Option<(Header, Hash)> = None;
    for item in db.db.iterator_cf(heights, IteratorMode::From(&height_key(start), rocksdb::Direction::Forward)) {
        let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
        let height =
            parse_height_key(&key).ok_or_else(|| db.corrupt(format!("heights key 0x{} is not 8 bytes", hex(&key))))?;
        if height != expected_height {
            return Err(missing_block(db, expected_height));
        }
        let hash = parse_hash(&value)
            .ok_or_else(|| db.corrupt(format!("the hash stored for height {height} is not 32 bytes")))?;
        let (header, computed) = stored_header(db, height, &hash)?;
        check_link(db, height, &hash, &computed, &header, prev.as_ref(), genesis_hash)?;
        if head_height - start > PROGRESS_EVERY_BLOCKS && height % PROGRESS_EVERY_BLOCKS == 0 {
            tracing::info!(target: "storage", checked = height, head = head_height, "checking the stored chain");
        }
        prev = Some((header, hash));
        expected_height = height.saturating_add(1);
    }
    match prev {
        Some((header, hash)) if header.height == head_height => {
            if hash != head_hash {
                return Err(
                    db.corrupt(format!("the head record names {head_hash} but height {head_height} holds {hash}"))
                );
            }
            Ok((header, hash))
        }
        _ => Err(missing_block(db, expected_height)),
    }
}

/// The header of the block stored under `hash` for `height`, and the hash its bytes give.
fn stored_header(db: &Db, height: u64, hash: &Hash) -> Result<(Header, Hash), StorageError> {
    db.with_pinned(CF_BLOCKS, &hash.0, decode_block_header)?
        .ok_or_else(|| db.corrupt(format!("block {hash} at height {height} is missing")))?
        .map_err(|e| db.corrupt(format!("block {hash} at height {height} does not decode: {e}")))
}

fn check_link(
    db: &Db,
    height: u64,
    hash: &Hash,
    computed: &Hash,
    header: &Header,
    prev: Option<&(Header, Hash)>,
    genesis_hash: &Hash,
) -> Result<(), StorageError> {
    if computed != hash {
        return Err(db.corrupt(format!("block stored under {hash} at height {height} hashes to {computed}")));
    }
    if header.height != height {
        return Err(
            db.corrupt(format!("block {hash} is stored at height {height} but its header says {}", header.height))
        );
    }
    // With no previous block (the genesis block, or the first height a start walks), only the
    // genesis block has something to match.
    match prev {
        None if height == 0 && hash != genesis_hash => {
            Err(db.corrupt(format!("height 0 holds {hash}, not the genesis block {genesis_hash}")))
        }
        Some((_, prev_hash)) if header.parent_hash != *prev_hash => Err(db.corrupt(format!(
            "block {hash} at height {height} has parent {}, but height {} holds {prev_hash}",
            header.parent_hash,
            height.saturating_sub(1)
        ))),
        _ => Ok(()),
    }
}

fn missing_block(db: &Db, height: u64) -> StorageError {
    db.corrupt(format!("block at height {height} is missing"))
}

/// Reads every account.
fn load_accounts(db: &Db) -> Result<HashMap<Address, Account>, StorageError> {
    let mut accounts = HashMap::new();
    for item in db.db.iterator_cf(db.cf(CF_ACCOUNTS)?, IteratorMode::Start) {
        let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
        let addr = parse_address(&key)
            .ok_or_else(|| db.corrupt(format!("accounts key 0x{} is not a 32-byte address", hex(&key))))?;
        let account: Account =
            db.decode(&value, STORED_ACCOUNT_BYTES_MAX, || format!("the account of 0x{}", hex(&key)))?;
        accounts.insert(addr, account);
    }
    Ok(accounts)
}

/// Reads every node of the state tree (for `taksa db-check`, which compares it with the tree it
/// rebuilds) and checks that its root is the head's state root and that it has one leaf per
/// stored account.
fn load_tree(db: &Db, head: &Header, accounts: usize) -> Result<HashMap<NodeKey, Node>, StorageError> {
    let mut tree = HashMap::new();
    let mut leaves = 0usize;
    for item in db.db.iterator_cf(db.cf(CF_TREE)?, IteratorMode::Start) {
        let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
        let at = NodeKey::from_bytes(&key)
            .ok_or_else(|| db.corrupt(format!("tree key 0x{} is not a node position", hex(&key))))?;
        let node = Node::decode(&value)
            .map_err(|e| db.corrupt(format!("the tree node at 0x{} does not decode: {e}", hex(&key))))?;
        if matches!(node, Node::Leaf { .. }) {
            leaves += 1;
        }
        tree.insert(at, node);
    }
    check_root(db, head, tree.get(&NodeKey::ROOT).copied())?;
    // One leaf per account and one for the governance entry.
    if leaves != accounts.saturating_add(1) {
        return Err(db.corrupt(format!(
            "the stored state tree has {leaves} leaves but {accounts} accounts are stored (one leaf each, and one for \
             the validator set)"
        )));
    }
    Ok(tree)
}

/// Lower-case hex of a short key, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(64).map(|b| format!("{b:02x}")).collect()
}
