//! Committing blocks and reading back what they wrote.

use taksa_consensus::{Account, Hash};
use taksa_storage::{DroppedTx, HistoryItem, StorageError, TxLocation};

use crate::support::{Chain, FEE, FUNDS};

#[test]
fn new_store_starts_at_genesis_with_the_allocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::new();
    let store = chain.open(dir.path());
    chain.assert_matches(&store);
    assert_eq!(store.genesis_hash(), chain.genesis.hash());
    assert_eq!(store.head().height, 0);
    assert_eq!(store.account(&chain.addr(0)), Account { balance: FUNDS, nonce: 0 });
    let genesis_block = store.block_by_height(0).expect("reads").expect("genesis stored");
    assert_eq!(genesis_block.header, chain.genesis.header());
    assert!(genesis_block.txs.is_empty());
    assert_eq!(store.hash_at(1).expect("reads"), None);
}

#[test]
fn committed_blocks_txs_and_accounts_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let b1 = chain.commit_next(&store, &[(0, 1, 100), (2, 3, 5)]);
    let b2 = chain.commit_next(&store, &[(0, 1, 7)]);
    chain.assert_matches(&store);

    assert_eq!(store.block_by_height(1).expect("reads"), Some(b1.clone()));
    assert_eq!(store.block_by_hash(&b2.hash()).expect("reads"), Some(b2.clone()));
    assert_eq!(store.hash_at(2).expect("reads"), Some(b2.hash()));
    assert_eq!(store.block_by_hash(&Hash([0xee; 32])).expect("reads"), None);
    let cert = store.finalization(2).expect("reads").expect("finalization stored");
    assert_eq!(cert.block_hash, Some(b2.hash()));
    assert_eq!(store.finalization(3).expect("reads"), None);

    let tx = &b1.txs[1];
    let loc = TxLocation { height: 1, index: 1 };
    assert_eq!(store.tx_location(&tx.hash()).expect("reads"), Some(loc));
    assert_eq!(store.tx(&tx.hash()).expect("reads"), Some((tx.clone(), loc)));
    assert_eq!(store.tx(&Hash([1; 32])).expect("reads"), None);
    // Each transaction is read from its span in the block's bytes.
    for (block, height) in [(&b1, 1u64), (&b2, 2)] {
        for (i, tx) in block.txs.iter().enumerate() {
            let loc = TxLocation { height, index: u32::try_from(i).expect("small") };
            assert_eq!(store.tx(&tx.hash()).expect("reads"), Some((tx.clone(), loc)), "height {height} index {i}");
        }
        assert_eq!(store.header_by_height(height).expect("reads"), Some(block.header.clone()));
    }
    assert_eq!(store.header_by_height(3).expect("reads"), None);

    assert_eq!(store.account(&chain.addr(0)), Account { balance: FUNDS - 107 - 2 * FEE, nonce: 2 });
    assert_eq!(store.account(&chain.addr(1)), Account { balance: FUNDS + 107, nonce: 0 });
}

#[test]
fn block_that_does_not_extend_the_head_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let mut skipped = Chain::new();
    let _ = skipped.next_block(&[]);
    let (grandchild, outcome) = skipped.next_block(&[(0, 1, 1)]);
    let err = store.commit_block(&grandchild, None, &outcome, &[]).expect_err("height 2 on head 0 is refused");
    assert!(matches!(err, StorageError::NotChild { height: 2, head_height: 0, .. }), "{err}");

    let mut fork = Chain::with_id("taksa-test");
    let (mut sibling, outcome) = fork.next_block(&[]);
    sibling.header.parent_hash = Hash([9; 32]);
    let err = store.commit_block(&sibling, None, &outcome, &[]).expect_err("wrong parent is refused");
    assert!(matches!(err, StorageError::NotChild { height: 1, .. }), "{err}");
    assert!(err.to_string().contains("does not extend the head"), "{err}");
    chain.assert_matches(&store);
    // The right child still commits afterwards.
    chain.commit_next(&store, &[(1, 0, 3)]);
    chain.assert_matches(&store);
}

#[test]
fn tree_changes_that_do_not_give_the_state_root_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let before = chain.head.clone();
    let (block, mut outcome) = chain.next_block(&[(0, 1, 50)]);
    // The tree of another state: account 3's change added to the accounts and the tree alike.
    outcome.changes.insert(chain.addr(3), Account { balance: 1, nonce: 0 });
    let mut parent_state = taksa_consensus::state::MemState::genesis(&chain.genesis);
    outcome.tree = taksa_consensus::state::next_tree(&parent_state, &outcome.changes, None).expect("whole").nodes;
    parent_state.apply(&outcome.changes, None, &outcome.tree);
    assert_ne!(parent_state.root(), block.header.state_root);
    let err = store.commit_block(&block, None, &outcome, &[]).expect_err("wrong changes are refused");
    assert!(matches!(err, StorageError::StateRootMismatch { height: 1, .. }), "{err}");
    assert_eq!(store.head(), before);
    assert_eq!(store.account(&chain.addr(3)), Account { balance: FUNDS, nonce: 0 });
}

#[test]
fn an_outcome_without_a_receipt_per_transaction_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let before = chain.head.clone();
    let (block, mut outcome) = chain.next_block(&[(0, 1, 50), (1, 2, 5)]);
    outcome.receipts.pop();
    let err = store.commit_block(&block, None, &outcome, &[]).expect_err("a missing receipt is refused");
    assert!(matches!(err, StorageError::ReceiptsMismatch { height: 1, txs: 2, receipts: 1, .. }), "{err}");
    assert_eq!(store.head(), before, "nothing was written");
}

#[test]
fn finalization_for_another_block_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let (b1, c1) = chain.next_block(&[]);
    let (b2, _) = chain.next_block(&[]);
    let err = store.commit_block(&b1, Some(&chain.finalization(&b2)), &c1, &[]).expect_err("refused");
    assert!(matches!(err, StorageError::CertificateMismatch { height: 1, .. }), "{err}");
    assert_eq!(store.head().height, 0);
}

#[test]
fn history_pages_newest_first_with_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    chain.commit_next(&store, &[(0, 1, 1), (2, 0, 1)]);
    chain.commit_next(&store, &[(3, 2, 1)]);
    chain.commit_next(&store, &[(0, 0, 1), (1, 2, 1), (0, 3, 1)]);
    let a0 = chain.addr(0);
    let item = |height, index, sent, received| HistoryItem { height, index, sent, received, span: None };
    let all = vec![item(3, 2, true, false), item(3, 0, true, true), item(1, 1, false, true), item(1, 0, true, false)];
    assert_eq!(store.history(&a0, None, 100).expect("reads"), all);

    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store.history(&a0, before, 3).expect("reads");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some((last.height, last.index));
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(store.history(&a0, Some((3, 0)), 10).expect("reads"), all[2..].to_vec());
    assert_eq!(store.history(&a0, Some((2, 5)), 1).expect("reads"), all[2..3].to_vec());
    assert_eq!(store.history(&a0, None, 0).expect("reads"), Vec::new());
    assert_eq!(
        store.history(&chain.addr(3), None, 10).expect("reads"),
        vec![item(3, 2, false, true), item(2, 0, true, false)]
    );
}

#[test]
fn history_limit_is_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let transfers: Vec<(usize, usize, u128)> = (0..1100).map(|_| (0, 1, 1)).collect();
    chain.commit_next(&store, &transfers);
    let page = store.history(&chain.addr(1), None, usize::MAX).expect("reads");
    assert_eq!(page.len(), taksa_storage::HISTORY_LIMIT_MAX);
    assert_eq!(page.first().map(|i| i.index), Some(1099));
}

#[test]
fn dropped_records_are_stored_and_cleared_when_the_tx_is_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let later = chain.transfer(2, 3, 9, 0);
    let record = |reason: &str| DroppedTx {
        reason: reason.into(),
        message: format!("{reason} happened"),
        height: 0,
        replaced_by: None,
    };
    let other = Hash([4; 32]);
    store.put_dropped(&[(later.hash(), record("expired")), (other, record("nonce_too_low"))]).expect("writes");
    assert_eq!(store.dropped(&later.hash()).expect("reads"), Some(record("expired")));

    let (block, outcome) = chain.next_block(&[(2, 3, 9)]);
    assert_eq!(block.txs[0], later);
    let third = Hash([5; 32]);
    store.commit_block(&block, None, &outcome, &[(third, record("evicted"))]).expect("commits");
    assert_eq!(store.dropped(&later.hash()).expect("reads"), None, "included tx is no longer dropped");
    assert_eq!(store.dropped(&other).expect("reads"), Some(record("nonce_too_low")));
    assert_eq!(store.dropped(&third).expect("reads"), Some(record("evicted")));

    let huge = DroppedTx { reason: "x".into(), message: "m".repeat(100_000), height: 1, replaced_by: None };
    assert!(matches!(store.put_dropped(&[(other, huge)]), Err(StorageError::ValueTooLarge { .. })));
}

#[test]
fn blocks_range_clamps_to_the_head_and_respects_bytes_max() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let blocks: Vec<_> = (0..5).map(|i| chain.commit_next(&store, &[(i % 4, (i + 1) % 4, 1)])).collect();
    let all = store.blocks_range(1, 100, usize::MAX).expect("reads");
    assert_eq!(all, blocks);
    let one_size = blocks[0].encode().len();
    let two = store.blocks_range(2, 5, 2 * one_size + one_size / 2).expect("reads");
    assert_eq!(two, blocks[1..3].to_vec());
    assert_eq!(store.blocks_range(3, 5, 1).expect("reads"), blocks[2..3].to_vec(), "first block always returned");
    assert_eq!(store.blocks_range(6, 9, usize::MAX).expect("reads"), Vec::new());
}

#[test]
fn account_that_returns_to_zero_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let (block, mut outcome) = chain.next_block(&[]);
    // Only the state root matters to the store: a change to the zero account leaves it.
    let ghost = taksa_consensus::Address(taksa_consensus::PublicKey([77; 32]));
    outcome.changes.insert(ghost, Account::default());
    store.commit_block(&block, None, &outcome, &[]).expect("commits");
    assert_eq!(store.account_count(), chain.expected_accounts().len() as u64);
    assert_eq!(store.account(&ghost), Account::default());
    let (next, empty) = chain.next_block(&[]);
    assert!(empty.changes.is_empty());
    store.commit_block(&next, None, &empty, &[]).expect("an empty block commits");
    chain.assert_matches(&store);
}

#[test]
fn store_reads_accounts_through_the_state_reader_trait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    chain.commit_next(&store, &[(0, 1, 10)]);
    let reader: &dyn taksa_consensus::state::StateReader = &store;
    assert_eq!(reader.account(&chain.addr(0)).nonce, 1);
    let same = store.clone();
    assert_eq!((same.head().height, same.account_count()), (1, chain.expected_accounts().len() as u64));
}

#[test]
fn history_items_read_their_transaction_from_its_span() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let b1 = chain.commit_next(&store, &[(0, 1, 1), (2, 0, 1), (0, 3, 1)]);
    let items = store.history(&chain.addr(0), None, 100).expect("reads");
    assert_eq!(items.len(), 3);
    for item in &items {
        assert!(item.span.is_some(), "new entries carry their span");
        let expected = b1.txs.get(usize::try_from(item.index).expect("small")).cloned();
        assert_eq!(store.tx_at(item.height, item.index, item.span).expect("reads"), expected);
        assert_eq!(store.tx_at(item.height, item.index, None).expect("reads"), expected, "without a span too");
    }
    assert_eq!(store.tx_at(9, 0, None).expect("reads"), None);
}
