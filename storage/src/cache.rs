//! The state cache: the accounts and state-tree nodes read or written lately, bounded in bytes.
//! Everything else of the state stays in RocksDB, so a node's memory does not grow with its
//! accounts (held in hash maps, 10^6 accounts took 673 MB of a node's memory; the cache holds
//! what fits in its budget, by default [`STATE_CACHE_BYTES_DEFAULT`]: `taksa bench-state`).
//!
//! One rule keeps it true: an entry is the value after the committed head, or after a head
//! newer than the one a reader started from (never older). Commits write their changes through
//! after the batch is on disk, under the store's `hot` write lock; a reader that missed inserts
//! what it read from disk only under the read lock and only if the head has not moved since it
//! read the head (see [`crate::Store`]), so a value read before a commit can never land after
//! that commit's own write-through.

use quick_cache::sync::Cache;
use taksa_consensus::tree::{Node, NodeKey};
use taksa_consensus::{Account, Address};

/// The cache's default budget: enough for every account and node of a chain of about
/// 700,000 accounts (about 300 bytes each); a larger chain keeps its busiest ones.
pub const STATE_CACHE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// The least budget [`StateCache::new`] takes (smaller budgets are raised to it).
pub const STATE_CACHE_BYTES_MIN: u64 = 64 * 1024;

/// What one cached account costs: its key and value plus the cache's own bookkeeping (about
/// 40 bytes per entry; measured with `taksa bench-state`).
const ACCOUNT_ENTRY_BYTES: u64 = 112;
/// What one cached tree node costs (a 34-byte position, a 65-byte node, the bookkeeping).
const NODE_ENTRY_BYTES: u64 = 192;
/// Of the budget, the share (in 1/8) that goes to tree nodes: a block's update reads about
/// two nodes per changed account beside the nodes every update shares near the root.
const NODE_SHARE_EIGHTHS: u64 = 5;

/// The accounts and the tree nodes most recently used.
pub(crate) struct StateCache {
    pub(crate) accounts: Cache<Address, Account>,
    pub(crate) nodes: Cache<NodeKey, Option<Node>>,
}

impl StateCache {
    /// A cache holding about `budget_bytes` (at least [`STATE_CACHE_BYTES_MIN`]).
    pub(crate) fn new(budget_bytes: u64) -> StateCache {
        let budget = budget_bytes.max(STATE_CACHE_BYTES_MIN);
        let node_bytes = budget / 8 * NODE_SHARE_EIGHTHS;
        let account_bytes = budget.saturating_sub(node_bytes);
        let items = |bytes: u64, entry: u64| usize::try_from(bytes / entry).unwrap_or(usize::MAX).max(1);
        StateCache {
            accounts: Cache::new(items(account_bytes, ACCOUNT_ENTRY_BYTES)),
            nodes: Cache::new(items(node_bytes, NODE_ENTRY_BYTES)),
        }
    }

    /// How many entries it holds now: accounts, nodes.
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.accounts.len(), self.nodes.len())
    }

    /// The bytes its tables take now (quick_cache's own count): accounts, nodes.
    pub(crate) fn memory_bytes(&self) -> (usize, usize) {
        (self.accounts.memory_used().total(), self.nodes.memory_used().total())
    }
}
