//! Opening: reopen, wrong genesis, folders that are not ours, locks, and corruption found by the
//! open check.

use std::path::Path;

use rocksdb::{Options, DB};
use taksa_consensus::{codec, Account};
use taksa_storage::{StorageError, Store};

use crate::support::Chain;

/// Opens the raw database as the store left it, for tests that damage it.
fn raw(path: &Path) -> DB {
    let cfs = DB::list_cf(&Options::default(), path).expect("lists column families");
    DB::open_cf(&Options::default(), path, cfs).expect("raw open")
}

/// A store with three committed blocks, closed; returns the chain that built it.
fn closed_store_with_blocks(path: &Path) -> Chain {
    let mut chain = Chain::new();
    let store = chain.open(path);
    chain.commit_next(&store, &[(0, 1, 10)]);
    chain.commit_next(&store, &[(1, 2, 20), (2, 3, 30)]);
    chain.commit_next(&store, &[(3, 0, 40)]);
    store.put_safety_record(b"voted view 3").expect("writes");
    chain
}

#[test]
fn reopen_gives_the_same_head_accounts_and_safety_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    let store = chain.open(dir.path());
    chain.assert_matches(&store);
    assert_eq!(store.safety_record().expect("reads"), Some(b"voted view 3".to_vec()));
    assert_eq!(store.history(&chain.addr(0), None, 10).expect("reads").len(), 2);
}

#[test]
fn store_for_another_genesis_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    let other = Chain::with_id("taksa-other");
    let err = Store::open(dir.path(), &other.genesis).expect_err("another genesis is refused");
    assert!(matches!(err, StorageError::GenesisMismatch { .. }), "{err}");
    let text = err.to_string();
    for needle in ["taksa-test", "taksa-other", &chain.genesis.hash().to_hex(), "use another --data-dir or remove it"] {
        assert!(text.contains(needle), "`{text}` should mention `{needle}`");
    }
}

#[test]
fn folder_with_other_files_or_a_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("writes");
    let chain = Chain::new();
    let err = Store::open(dir.path(), &chain.genesis).expect_err("foreign folder is refused");
    assert!(matches!(err, StorageError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("no RocksDB database"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("lists").count(), 1, "nothing was written");

    let file = dir.path().join("notes.txt");
    let err = Store::open(&file, &chain.genesis).expect_err("a file is refused");
    assert!(err.to_string().contains("not a folder"), "{err}");
}

#[test]
fn foreign_rocksdb_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = DB::open_cf(&opts, dir.path(), ["orders"]).expect("creates");
        db.put(b"k", b"v").expect("writes");
    }
    let err = Store::open(dir.path(), &Chain::new().genesis).expect_err("refused");
    assert!(matches!(err, StorageError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("orders"), "{err}");
}

#[test]
fn second_open_while_the_first_is_alive_reports_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::new();
    let first = chain.open(dir.path());
    let err = Store::open(dir.path(), &chain.genesis).expect_err("locked");
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("stop the other taksa node"), "{err}");
    drop(first);
    chain.open(dir.path());
}

#[test]
fn undecodable_account_is_reported_as_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("accounts").expect("cf");
        db.put_cf(cf, chain.addr(2).as_bytes(), [1, 2, 3]).expect("writes");
    }
    // A start reads no account; the first read of this one, and the full check, find it.
    let store = Store::open(dir.path(), &chain.genesis).expect("opens: accounts stay on disk");
    let err = store.account_proof(&chain.addr(2), None).expect_err("corruption found");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("account") && text.contains("does not decode"), "{text}");
    assert!(text.contains("remove the data folder and resync"), "{text}");
    drop(store);
    let err = taksa_storage::verify_chain(dir.path(), &mut |_| {}).expect_err("corruption found");
    assert!(err.to_string().contains("does not decode"), "{err}");
}

#[test]
fn changed_balance_is_found_by_the_full_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("accounts").expect("cf");
        let mut account = chain.state.accounts[&chain.addr(1)];
        account.balance += 1;
        db.put_cf(cf, chain.addr(1).as_bytes(), codec::encode(&account)).expect("writes");
    }
    // A start checks the tree's root and its leaf count, not every account's hash (that would
    // grow with the accounts); `taksa db-check` rebuilds the tree from the accounts.
    let err = taksa_storage::verify_chain(dir.path(), &mut |_| {}).expect_err("the rebuilt tree differs");
    assert!(err.to_string().contains("is not the tree of the"), "{err}");
}

#[test]
fn a_state_tree_that_is_not_the_heads_is_refused_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("tree").expect("cf");
        db.delete_cf(cf, taksa_consensus::tree::NodeKey::ROOT.to_bytes()).expect("writes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("mismatch found");
    assert!(matches!(err, StorageError::StateMismatch { head_height: 3, .. }), "{err}");
    assert!(err.to_string().contains("remove the data folder and resync"), "{err}");
}

#[test]
fn an_account_without_a_leaf_is_found_by_the_full_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("accounts").expect("cf");
        db.put_cf(cf, [42u8; 32], codec::encode(&Account { balance: 5, nonce: 0 })).expect("writes");
    }
    // A start reads no account (the state stays on disk); `taksa db-check` counts the leaves.
    let err = taksa_storage::verify_chain(dir.path(), &mut |_| {}).expect_err("a leaf is missing");
    assert!(err.to_string().contains("leaves but"), "{err}");
}

#[test]
fn missing_height_is_reported_with_its_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        db.delete_cf(db.cf_handle("heights").expect("cf"), 2u64.to_be_bytes()).expect("deletes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("gap found");
    let text = err.to_string();
    assert!(text.contains("block at height 2 is missing"), "{text}");
    assert!(text.contains("remove the data folder and resync"), "{text}");
}

#[test]
fn missing_head_block_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        db.delete_cf(db.cf_handle("blocks").expect("cf"), chain.head.hash().0).expect("deletes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("missing block found");
    assert!(err.to_string().contains("at height 3 is missing"), "{err}");
}

#[test]
fn height_pointing_at_the_wrong_block_breaks_the_parent_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let heights = db.cf_handle("heights").expect("cf");
        let h1 = db.get_cf(heights, 1u64.to_be_bytes()).expect("reads").expect("present");
        let h2 = db.get_cf(heights, 2u64.to_be_bytes()).expect("reads").expect("present");
        db.put_cf(heights, 1u64.to_be_bytes(), &h2).expect("writes");
        db.put_cf(heights, 2u64.to_be_bytes(), &h1).expect("writes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("broken chain found");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("height 1"), "{err}");
}

#[test]
fn head_record_ahead_of_the_blocks_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_store_with_blocks(dir.path());
    {
        let db = raw(dir.path());
        let mut head = 9u64.to_be_bytes().to_vec();
        head.extend_from_slice(&chain.head.hash().0);
        db.put_cf(db.cf_handle("meta").expect("cf"), b"head", head).expect("writes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("short chain found");
    assert!(err.to_string().contains("block at height 4 is missing"), "{err}");
}

/// A closed store whose chain is longer than the window the open check walks.
fn closed_long_store(path: &Path) -> Chain {
    let mut chain = Chain::new();
    let store = chain.open(path);
    for _ in 0..1100 {
        chain.commit_next(&store, &[]);
    }
    chain
}

#[test]
fn a_start_walks_only_the_newest_heights_and_db_check_walks_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_long_store(dir.path());
    let mut steps = Vec::new();
    let head =
        taksa_storage::verify_chain(dir.path(), &mut |s| steps.push(s.to_owned())).expect("a sound chain verifies");
    assert_eq!(head, 1100);
    assert!(
        steps.iter().any(|s| s.starts_with("rebuilding the state tree of 4 accounts")),
        "db-check says what it does: {steps:?}"
    );
    {
        let db = raw(dir.path());
        db.delete_cf(db.cf_handle("heights").expect("cf"), 5u64.to_be_bytes()).expect("deletes");
    }
    // The restart does not grow with the chain: a gap this deep is left to the full check.
    let store = Store::open(dir.path(), &chain.genesis).expect("opens");
    assert_eq!(store.head().height, 1100);
    drop(store);
    let err = taksa_storage::verify_chain(dir.path(), &mut |_| {}).expect_err("the full walk finds the gap");
    assert!(err.to_string().contains("block at height 5 is missing"), "{err}");
    {
        let db = raw(dir.path());
        db.delete_cf(db.cf_handle("heights").expect("cf"), 1000u64.to_be_bytes()).expect("deletes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("a gap in the newest heights is found at start");
    assert!(err.to_string().contains("block at height 1000 is missing"), "{err}");
}

#[test]
fn a_long_chain_still_starts_from_its_own_genesis_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_long_store(dir.path());
    {
        let db = raw(dir.path());
        db.put_cf(db.cf_handle("heights").expect("cf"), 0u64.to_be_bytes(), chain.head.hash().0).expect("writes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("a foreign genesis block is found");
    assert!(err.to_string().contains("at height 0"), "{err}");
}

#[test]
fn a_height_above_the_head_is_found_without_walking_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = closed_long_store(dir.path());
    {
        let db = raw(dir.path());
        db.put_cf(db.cf_handle("heights").expect("cf"), 5000u64.to_be_bytes(), chain.head.hash().0).expect("writes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("found");
    assert!(err.to_string().contains("a block is stored at height 5000, above the head 1100"), "{err}");
}
