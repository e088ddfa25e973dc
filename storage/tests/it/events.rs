//! What each commit derives: events by cursor, block summaries, history in both orders with a
//! direction filter, totals, validator statistics; and the refusal of a pre-events database.

use std::path::Path;

use rocksdb::{Options, DB};
use taksa_consensus::{Cursor, Event};
use taksa_storage::{HistoryFilter, StorageError, Store, ValidatorStats};

use crate::support::{Chain, FEE, FUNDS};

/// Blocks 1..=3: 1 transfer, 2 transfers, 0 transfers.
fn three_blocks(path: &Path) -> (Chain, Store) {
    let mut chain = Chain::new();
    let store = chain.open(path);
    chain.commit_next(&store, &[(0, 1, 10)]);
    chain.commit_next(&store, &[(1, 2, 20), (0, 2, 30)]);
    chain.commit_next(&store, &[]);
    (chain, store)
}

fn cursors(events: &[(Cursor, Event)]) -> Vec<(u64, u32)> {
    events.iter().map(|(c, _)| (c.height, c.index)).collect()
}

#[test]
fn every_block_yields_its_transfers_then_its_block_event_in_cursor_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_chain, store) = three_blocks(dir.path());
    let all = store.events_after(None, 100).expect("reads");
    assert_eq!(cursors(&all), vec![(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0)]);
    assert!(matches!(all[1].1, Event::Block(_)) && matches!(all[5].1, Event::Block(_)));
    assert_eq!(store.last_cursor().expect("reads"), Cursor::new(3, 0));
    assert_eq!(store.txs_total(), 3);
}

#[test]
fn reading_after_a_cursor_resumes_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_chain, store) = three_blocks(dir.path());
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.events_after(after, 2).expect("reads");
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        seen.extend(page);
    }
    assert_eq!(seen, store.events_after(None, 100).expect("reads"));
    assert!(store.events_after(Some(Cursor::new(3, 0)), 10).expect("reads").is_empty());
    assert!(store.events_after(Some(Cursor::new(99, 0)), 10).expect("reads").is_empty());
}

#[test]
fn events_read_back_are_the_ones_the_commit_returned_for_the_live_feed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let mut live = Vec::new();
    for transfers in [vec![(0, 1, 10)], vec![], vec![(1, 2, 20), (0, 2, 30), (2, 3, 5)], vec![(3, 0, 1)]] {
        let (block, outcome) = chain.next_block(&transfers);
        let cert = chain.finalization(&block);
        live.extend(store.commit_block(&block, Some(&cert), &outcome, &[]).expect("commits"));
    }
    assert_eq!(store.events_after(None, 100).expect("reads"), live);
    for (i, (cursor, _)) in live.iter().enumerate() {
        assert_eq!(store.events_after(Some(*cursor), 100).expect("reads"), live[i + 1..], "after {cursor}");
    }
    for key in 0..4 {
        let addr = chain.addr(key);
        let theirs: Vec<_> = live.iter().filter(|(_, e)| e.touches(&addr)).cloned().collect();
        assert_eq!(store.address_events_after(&addr, None, 100).expect("reads"), theirs, "key {key}");
    }
}

#[test]
fn transfer_events_carry_both_balances_after_the_transfer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chain, store) = three_blocks(dir.path());
    let mine = store.address_events_after(&chain.addr(2), None, 10).expect("reads");
    assert_eq!(cursors(&mine), vec![(2, 0), (2, 1)]);
    let Event::Transfer(first) = &mine[0].1 else { panic!("a transfer") };
    // Key 1 received 10, then sent 20 with a fee; key 2 starts funded and receives 20.
    assert_eq!(first.from_balance, FUNDS + 10 - 20 - FEE);
    assert_eq!(first.to_balance, FUNDS + 20);
    let Event::Transfer(second) = &mine[1].1 else { panic!("a transfer") };
    assert_eq!(second.to_balance, FUNDS + 20 + 30);
    assert_eq!(second.from_balance, FUNDS - 10 - FEE - 30 - FEE);
    let later = store.address_events_after(&chain.addr(2), Some(Cursor::new(2, 0)), 10).expect("reads");
    assert_eq!(cursors(&later), vec![(2, 1)]);
}

#[test]
fn block_events_and_summaries_list_blocks_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_chain, store) = three_blocks(dir.path());
    let blocks = store.block_events_after(None, 10).expect("reads");
    assert_eq!(cursors(&blocks), vec![(1, 1), (2, 2), (3, 0)]);
    let after_first = store.block_events_after(Some(Cursor::new(1, 1)), 10).expect("reads");
    assert_eq!(cursors(&after_first), vec![(2, 2), (3, 0)]);
    // A cursor in the middle of block 2 still gets block 2's own event.
    let mid = store.block_events_after(Some(Cursor::new(2, 0)), 10).expect("reads");
    assert_eq!(cursors(&mid), vec![(2, 2), (3, 0)]);
    let newest: Vec<u64> = store.summaries_before(None, 10).expect("reads").iter().map(|s| s.height).collect();
    assert_eq!(newest, vec![3, 2, 1]);
    let below: Vec<u64> = store.summaries_before(Some(3), 1).expect("reads").iter().map(|s| s.height).collect();
    assert_eq!(below, vec![2]);
    assert!(store.summaries_before(Some(1), 10).expect("reads").is_empty());
    assert_eq!(store.summary(2).expect("reads").map(|s| (s.tx_count, s.fees)), Some((2, 2 * FEE)));
}

#[test]
fn history_pages_both_ways_and_filters_by_direction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chain, store) = three_blocks(dir.path());
    let key0 = chain.addr(0);
    let pos = |items: Vec<taksa_storage::HistoryItem>| items.iter().map(|i| (i.height, i.index)).collect::<Vec<_>>();
    let newest = store.history_page(&key0, None, true, HistoryFilter::Any, 10).expect("reads");
    assert_eq!(pos(newest), vec![(2, 1), (1, 0)]);
    let oldest = store.history_page(&key0, None, false, HistoryFilter::Any, 1).expect("reads");
    assert_eq!(pos(oldest), vec![(1, 0)]);
    let next = store.history_page(&key0, Some((1, 0)), false, HistoryFilter::Any, 10).expect("reads");
    assert_eq!(pos(next), vec![(2, 1)]);
    let key1 = chain.addr(1);
    let sent = store.history_page(&key1, None, true, HistoryFilter::Sent, 10).expect("reads");
    assert_eq!(pos(sent), vec![(2, 0)]);
    let received = store.history_page(&key1, None, false, HistoryFilter::Received, 10).expect("reads");
    assert_eq!(pos(received), vec![(1, 0)]);
}

#[test]
fn the_parent_certificate_a_block_carries_counts_as_signed_and_the_proposer_as_proposed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    chain.commit_next(&store, &[]);
    let (mut block, outcome) = chain.next_block(&[]);
    let parent = store.block_by_height(1).expect("reads").expect("block 1");
    block.header.parent_cert = Some(chain.finalization(&parent));
    store.commit_block(&block, None, &outcome, &[]).expect("commits");
    let stats = store.validator_stats();
    let validator = chain.genesis.validators[0];
    assert_eq!(
        stats,
        vec![(validator, ValidatorStats { signed: 1, missed: 0, proposed: 2, last_signed_height: Some(1) })]
    );
    drop(store);
    let reopened = Store::open(dir.path(), &chain.genesis).expect("reopens");
    assert_eq!(reopened.validator_stats(), stats, "statistics are stored with the block");
    assert_eq!(reopened.last_cursor().expect("reads"), Cursor::new(2, 0));
}

#[test]
fn a_database_written_before_events_were_kept_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chain, store) = three_blocks(dir.path());
    drop(store);
    {
        let cfs = DB::list_cf(&Options::default(), dir.path()).expect("lists column families");
        let db = DB::open_cf(&Options::default(), dir.path(), cfs).expect("raw open");
        db.delete_cf(db.cf_handle("meta").expect("meta"), b"schema").expect("deletes");
    }
    let err = Store::open(dir.path(), &chain.genesis).expect_err("refused");
    assert!(matches!(err, StorageError::OldSchema { found: 1, needed: 7, .. }), "{err}");
    assert!(err.to_string().contains("move the folder aside"), "{err}");
}

#[test]
fn databases_of_older_layouts_are_refused_before_their_genesis_is_compared() {
    // 3 kept a copy of every transfer as an event; 4 had the additive state digest, 5 votes
    // without epochs and 6 blocks without evidence, so their genesis hash differs too, and the
    // layout is what the operator must hear about.
    for old in [3u32, 4, 5, 6] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (chain, store) = three_blocks(dir.path());
        drop(store);
        {
            let cfs = DB::list_cf(&Options::default(), dir.path()).expect("lists column families");
            let db = DB::open_cf(&Options::default(), dir.path(), cfs).expect("raw open");
            let meta = db.cf_handle("meta").expect("meta");
            db.put_cf(meta, b"schema", old.to_be_bytes()).expect("writes");
            db.put_cf(meta, b"genesis_hash", [9u8; 32]).expect("writes");
        }
        let err = Store::open(dir.path(), &chain.genesis).expect_err("refused");
        assert!(matches!(err, StorageError::OldSchema { found, needed: 7, .. } if found == old), "{err}");
    }
}

#[test]
fn readiness_probe_writes_and_size_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_chain, store) = three_blocks(dir.path());
    store.probe_write(1).expect("the probe writes");
    assert!(store.size_bytes() > 0);
}
