//! `taksa dev --instant`: a block as soon as a transaction waits, and none while idle.

use std::time::Duration;

use serde_json::json;
use taksa_node::devnet;

use crate::pool::{genesis_hash, recipient, transfer};
use crate::support::{call, finalized_height, params, wait_status, DevNode};

/// A genesis block time no test waits out: only `--instant` can finalize within the tests'
/// 30 s deadline.
const BLOCK_MS: u64 = 600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_dev_chain_seals_on_submit_and_writes_nothing_while_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("dev");
    let node = DevNode::start_with(&data, BLOCK_MS, &["--instant"]);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let sender = devnet::dev_account(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(finalized_height(&client).await, 0, "no empty blocks while idle");

    for nonce in 0..3 {
        let (tx, hash) = transfer(&sender, recipient(), 1, nonce, devnet::FEE_FLOOR, &genesis);
        call(&client, "tx_submit", params(&[json!(tx)])).await.expect("tx_submit");
        assert_eq!(wait_status(&client, &hash).await["status"], "finalized", "sealed long before the block time");
    }
    let height = finalized_height(&client).await;
    assert!((1..=3).contains(&height), "one block per waiting transaction at most, got {height}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(finalized_height(&client).await, height, "idle again: no more blocks");

    // A restarted instant chain is idle, then seals again.
    node.terminate();
    let node = DevNode::start_with(&data, BLOCK_MS, &["--instant"]);
    let client = node.client();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(finalized_height(&client).await, height, "no block on restart while idle");
    let (tx, hash) = transfer(&sender, recipient(), 1, 3, devnet::FEE_FLOOR, &genesis);
    call(&client, "tx_submit", params(&[json!(tx)])).await.expect("tx_submit");
    assert_eq!(wait_status(&client, &hash).await["status"], "finalized");
    assert_eq!(finalized_height(&client).await, height + 1);
}

/// A transaction that cannot go into a block yet (a nonce gap) wakes the leader but seals no
/// empty block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_transaction_behind_a_gap_seals_no_empty_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(&dir.path().join("dev"), BLOCK_MS, &["--instant"]);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let sender = devnet::dev_account(1);
    let (gapped, _) = transfer(&sender, recipient(), 1, 5, devnet::FEE_FLOOR, &genesis);
    call(&client, "tx_submit", params(&[json!(gapped)])).await.expect("tx_submit");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(finalized_height(&client).await, 0, "a queued transaction is not work");
}
