//! The state on disk: a store whose accounts outgrow its cache reads the rest from RocksDB, the
//! same values and proofs, across commits and restarts; a start reads no account.

use std::collections::BTreeMap;

use taksa_consensus::state::StateReader;
use taksa_consensus::tree::{self, account_value_hash};
use taksa_consensus::{Account, Address, PublicKey};
use taksa_storage::{StorageError, Store, StoreOptions, STATE_CACHE_BYTES_MIN};

use crate::support::Chain;

/// Accounts made per block, and blocks: far more accounts than the smallest cache holds.
const NEW_PER_BLOCK: u32 = 600;
const BLOCKS: u32 = 4;

fn new_accounts(block: u32) -> BTreeMap<Address, Account> {
    (0..NEW_PER_BLOCK)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&block.to_be_bytes());
            key[4..8].copy_from_slice(&i.to_be_bytes());
            key[31] = 0xAA;
            (Address(PublicKey(key)), Account { balance: u128::from(i) + 1, nonce: u64::from(block) })
        })
        .collect()
}

fn open_small(chain: &Chain, path: &std::path::Path) -> Store {
    open_with(chain, path, 0)
}

/// A store with the smallest cache, keeping `history_blocks` heights of state history.
fn open_with(chain: &Chain, path: &std::path::Path, history_blocks: u64) -> Store {
    let options = StoreOptions { cache_bytes: STATE_CACHE_BYTES_MIN, history_blocks };
    Store::open_with(path, &chain.genesis, options).expect("store opens")
}

/// Every account reads back right and proves under the head's state root.
fn assert_every_account_reads_and_proves(chain: &Chain, store: &Store) {
    chain.assert_matches(store);
    let root = store.head().state_root;
    for (addr, account) in chain.expected_accounts().iter().step_by(97) {
        let (header, read, proof) = store.account_proof(addr, None).expect("proves");
        assert_eq!(header.state_root, root);
        assert_eq!(read, *account);
        proof.verify(&root, &tree::account_key(addr), Some(&account_value_hash(account))).expect("the proof verifies");
    }
    let absent = Address(PublicKey([0x55; 32]));
    let (_, read, proof) = store.account_proof(&absent, None).expect("proves absence");
    assert_eq!(read, Account::default());
    proof.verify(&root, &tree::account_key(&absent), None).expect("the absence proof verifies");
}

#[test]
fn a_state_larger_than_the_cache_is_read_from_disk_the_same_across_commits_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = open_small(&chain, dir.path());
    for block in 0..BLOCKS {
        let (b, outcome) = chain.next_block_with(&[(0, 1, 5), (2, 3, 7)], new_accounts(block));
        let cert = chain.finalization(&b);
        store.commit_block(&b, Some(&cert), &outcome, &[]).expect("commits");
    }
    let total = chain.expected_accounts().len();
    assert!(total > (NEW_PER_BLOCK * BLOCKS) as usize);
    let (cached_accounts, cached_nodes, _) = store.cache_usage();
    assert!(
        cached_accounts < total / 2 && cached_nodes < total / 2,
        "the cache is bounded: {cached_accounts} accounts and {cached_nodes} nodes cached of {total} accounts"
    );
    assert_every_account_reads_and_proves(&chain, &store);
    drop(store);

    // A restart reads no account: the count is stored, the tree is checked at its root.
    let store = open_small(&chain, dir.path());
    assert_eq!(store.cache_usage().0, 0, "nothing was loaded into the cache on open");
    assert_eq!(store.account_count(), total as u64);
    // A block over a tree mostly on disk: its update reads the nodes it needs.
    let (b, outcome) = chain.next_block_with(&[(1, 0, 3)], new_accounts(BLOCKS));
    let cert = chain.finalization(&b);
    store.commit_block(&b, Some(&cert), &outcome, &[]).expect("commits over the on-disk tree");
    assert_every_account_reads_and_proves(&chain, &store);
}

#[test]
fn an_account_deleted_to_zero_leaves_the_count_and_reads_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = open_small(&chain, dir.path());
    let made = new_accounts(0);
    let (b, outcome) = chain.next_block_with(&[], made.clone());
    store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    let before = store.account_count();
    let gone: BTreeMap<Address, Account> = made.keys().take(10).map(|a| (*a, Account::default())).collect();
    let (b, outcome) = chain.next_block_with(&[], gone.clone());
    store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    assert_eq!(store.account_count(), before - 10);
    for addr in gone.keys() {
        assert_eq!(store.account(addr), Account::default());
    }
    drop(store);
    let store = open_small(&chain, dir.path());
    assert_eq!(store.account_count(), before - 10);
    chain.assert_matches(&store);
}

/// Proves every sampled account at `height` as `accounts` held it then.
fn assert_proves_at(store: &Store, height: u64, accounts: &BTreeMap<Address, Account>, sample: &[Address]) {
    for addr in sample {
        let (header, read, proof) = store.account_proof(addr, Some(height)).expect("a kept height proves");
        assert_eq!(header.height, height);
        let then = accounts.get(addr).copied().unwrap_or_default();
        assert_eq!(read, then, "{addr:?} at height {height}");
        let value = (then != Account::default()).then(|| account_value_hash(&then));
        proof.verify(&header.state_root, &tree::account_key(addr), value.as_ref()).expect("verifies at that height");
    }
}

#[test]
fn accounts_are_proven_at_past_heights_within_the_kept_window_and_refused_beyond() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = open_with(&chain, dir.path(), 3);
    let mut states = vec![chain.expected_accounts()];
    // Each block creates accounts and moves funds, so every height's state differs.
    for block in 0..5 {
        let (b, outcome) = chain.next_block_with(&[(0, 1, 5 + u128::from(block))], new_accounts(block));
        store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
        states.push(chain.expected_accounts());
    }
    let sample: Vec<Address> = [chain.addr(0), chain.addr(1), Address(PublicKey([0x55; 32]))]
        .into_iter()
        .chain(new_accounts(1).keys().copied().step_by(150))
        .chain(new_accounts(4).keys().copied().step_by(150))
        .collect();
    for height in 2..=5 {
        assert_proves_at(&store, height, &states[height as usize], &sample);
    }
    for height in [0, 1, 6] {
        let err = store.account_proof(&chain.addr(0), Some(height)).expect_err("outside the window");
        assert!(matches!(err, StorageError::HistoryUnavailable { oldest: 2, head: 5, .. }), "height {height}: {err}");
    }
    drop(store);

    // A restart keeps the window; a run without history leaves a gap the next one does not
    // claim to fill.
    let store = open_with(&chain, dir.path(), 3);
    assert_proves_at(&store, 3, &states[3], &sample);
    drop(store);
    let store = open_small(&chain, dir.path());
    assert!(store.account_proof(&chain.addr(0), Some(4)).is_err(), "no history kept: the head only");
    let (b, outcome) = chain.next_block_with(&[(1, 0, 1)], BTreeMap::new());
    store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    states.push(chain.expected_accounts());
    drop(store);
    let store = open_with(&chain, dir.path(), 3);
    let err = store.account_proof(&chain.addr(0), Some(5)).expect_err("height 6 changed state without history");
    assert!(matches!(err, StorageError::HistoryUnavailable { oldest: 6, head: 6, .. }), "{err}");
    assert_proves_at(&store, 6, &states[6], &sample);
}

#[test]
fn a_run_with_a_smaller_history_window_moves_the_oldest_provable_height_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = open_with(&chain, dir.path(), 1_000);
    let (b, outcome) = chain.next_block_with(&[(0, 1, 5)], BTreeMap::new());
    store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    assert_eq!(store.oldest_provable(1), 0);
    drop(store);
    // A run keeping one height lets compaction drop the history below head - 1 - 256.
    let store = open_with(&chain, dir.path(), 1);
    for _ in 0..300 {
        let (b, outcome) = chain.next_block_with(&[(0, 1, 1)], BTreeMap::new());
        store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    }
    drop(store);
    let store = open_with(&chain, dir.path(), 1_000);
    let head = store.head().height;
    assert_eq!(head, 301);
    // What the last run may have dropped is not claimed: at most its window and the margin.
    assert_eq!(store.oldest_provable(head), head - 1 - 256);
    let err = store.account_proof(&chain.addr(0), Some(10)).expect_err("compacted away, maybe");
    assert!(matches!(err, StorageError::HistoryUnavailable { oldest: 44, head: 301, .. }), "{err}");
    store.account_proof(&chain.addr(0), Some(44)).expect("within what the last run kept");
}

#[test]
fn reads_from_outside_do_not_fill_the_cache_that_blocks_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = open_small(&chain, dir.path());
    let (b, outcome) = chain.next_block_with(&[], new_accounts(0));
    store.commit_block(&b, Some(&chain.finalization(&b)), &outcome, &[]).expect("commits");
    drop(store);
    let store = open_small(&chain, dir.path());
    let stranger = |i: u32| {
        let mut key = [0x77u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        Address(PublicKey(key))
    };
    // A client asking for a thousand addresses, real or not, reads them right and caches none.
    for (i, (addr, account)) in new_accounts(0).iter().enumerate().take(500) {
        assert_eq!(store.peek_account(addr), *account);
        assert_eq!(store.peeking().account(&stranger(i as u32)), Account::default());
    }
    assert_eq!(store.cache_usage().0, 0, "outside reads left the cache as it was");
    // Block execution's reads do fill it.
    for addr in new_accounts(0).keys().take(10) {
        store.account(addr);
    }
    assert_eq!(store.cache_usage().0, 10);
}
