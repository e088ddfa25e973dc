//! The validator network with real processes: four `taksa node` validators (and full nodes) on
//! loopback, killed, restarted, partitioned (with `--reserved-peers-file`) and wiped by pid.
//! These are the consensus guide's tests 2 to 6; test 7's bad data comes from an in-test libp2p
//! peer (`byzantine.rs`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;

use crate::support::{call, params, signed_transfer};
use crate::testnet::{exclusive, Testnet};

/// Test networks run faster blocks than the public testnet's 1000 ms.
const BLOCK_MS: u64 = 500;
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A testnet transfer at the fee floor, as `tx_submit` takes it.
pub(crate) fn transfer(key: &Keypair, to: Address, amount: u128, nonce: u64, genesis: &Hash) -> String {
    transfer_with_memo(key, to, amount, nonce, None, genesis)
}

/// [`transfer`] with a memo.
pub(crate) fn transfer_with_memo(
    key: &Keypair,
    to: Address,
    amount: u128,
    nonce: u64,
    memo: Option<String>,
    genesis: &Hash,
) -> String {
    signed_transfer(devnet::TESTNET_CHAIN_ID, key, to, amount, nonce, memo, genesis)
}

async fn genesis_hash(net: &Testnet) -> Hash {
    let info = net.info(0).await.expect("chain_getInfo");
    Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash")
}

/// Submits through node `via` and waits until node `via` reports it final; returns the
/// `tx_get` answer and the submit-to-final time.
async fn send_and_wait(net: &Testnet, via: usize, raw: &str) -> (Value, Duration) {
    let client = net.client(via);
    let started = Instant::now();
    let hash = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("tx_submit");
    loop {
        let r = call(&client, "tx_get", params(std::slice::from_ref(&hash))).await.expect("tx_get");
        if r["status"] == "finalized" {
            return (r, started.elapsed());
        }
        assert!(r["status"] == "pending", "transfer not accepted: {r}");
        assert!(started.elapsed() < Duration::from_secs(30), "transfer not final after 30 s{}", net.logs(&[via]));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Finalized blocks per second on node `i` over `window`: (blocks, mean interval ms).
async fn finalizing_rate(net: &Testnet, i: usize, window: Duration) -> (u64, f64) {
    let h0 = net.finalized(i).await;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let blocks = net.finalized(i).await.saturating_sub(h0);
    let interval_ms = t0.elapsed().as_secs_f64() * 1000.0 / (blocks.max(1) as f64);
    (blocks, interval_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_and_keep_finalizing_with_one_killed() {
    let _one = exclusive().await;
    let mut net = Testnet::start(4, 1, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3, 4], 2, START_TIMEOUT).await;
    let genesis = genesis_hash(&net).await;

    // A wallet may use any node: the full node gossips it to the validators.
    let to = Address(Keypair::from_seed(&[7; 32]).public());
    let raw = transfer(&devnet::testnet_account(0), to, 12_345, 0, &genesis);
    let (status, latency) = send_and_wait(&net, 4, &raw).await;
    eprintln!("submit-to-final through a full node: {} ms (block time {BLOCK_MS} ms)", latency.as_millis());
    assert!(latency < Duration::from_millis(6 * BLOCK_MS), "final after {latency:?}");
    let height = status["height"].as_u64().expect("height");
    net.wait_finalized(&[0, 1, 2, 3, 4], height, Duration::from_secs(20)).await;
    for i in 0..5 {
        let r = call(&net.client(i), "tx_get", params(&[status["hash"].clone()])).await.expect("tx_get");
        assert_eq!(
            (&r["status"], &r["height"], &r["blockHash"]),
            (&status["status"], &status["height"], &status["blockHash"]),
            "node {i}"
        );
        let bal =
            call(&net.client(i), "account_getBalance", params(&[json!(to.to_bech32("tks"))])).await.expect("balance");
        assert_eq!(bal, json!("12345"), "node {i}");
        assert_eq!(net.hash_at(i, height).await, net.hash_at(0, height).await, "node {i} at {height}");
    }

    let (blocks, interval) = finalizing_rate(&net, 0, Duration::from_secs(6)).await;
    eprintln!("4 of 4 up: {blocks} blocks in 6 s, mean interval {interval:.0} ms");
    net.kill_9(1);
    let (blocks, interval) = finalizing_rate(&net, 0, Duration::from_secs(12)).await;
    eprintln!("3 of 4 up: {blocks} blocks in 12 s, mean interval {interval:.0} ms");
    assert!(
        interval <= 2.0 * BLOCK_MS as f64,
        "mean interval {interval:.0} ms with one validator down{}",
        net.logs(&[0])
    );
    let top = net.finalized(0).await;
    net.wait_finalized(&[2, 3, 4], top, Duration::from_secs(10)).await;
    assert_eq!(net.hash_at(3, top).await, net.hash_at(0, top).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_four_down_finalizes_nothing_then_resumes_after_one_restart() {
    let _one = exclusive().await;
    let mut net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, START_TIMEOUT).await;
    net.kill_9(2);
    net.kill_9(3);
    // What was in flight when they died may still finalize; after that, nothing can.
    tokio::time::sleep(Duration::from_millis(4 * BLOCK_MS)).await;
    let stuck = net.finalized(0).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(net.finalized(0).await, stuck, "finalized without a quorum");
    assert_eq!(net.finalized(1).await, stuck, "finalized without a quorum");
    assert!(net.is_running(0) && net.is_running(1), "a survivor exited{}", net.logs(&[0, 1]));
    for i in 0..2 {
        assert!(!net.log(i).contains("panicked"), "node {i} panicked");
    }

    net.restart(2);
    let restarted = Instant::now();
    net.wait_finalized(&[0, 1, 2], stuck + 1, Duration::from_secs(30)).await;
    let resumed = restarted.elapsed();
    eprintln!("finalizing again {} ms after the restart", resumed.as_millis());
    assert!(resumed <= Duration::from_secs(10), "resumed after {resumed:?}");
}

/// The guide's test 4, partitioned with `--reserved-peers-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_two_two_finalizes_nothing_then_heals_to_equal_heads() {
    let _one = exclusive().await;
    let net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, START_TIMEOUT).await;
    for (side, peers) in [([0, 1], [0, 1]), ([2, 3], [2, 3])] {
        for i in side {
            net.reserve(i, &peers);
        }
    }
    // The reserved-peers files are read every second; what was in flight may still finalize.
    tokio::time::sleep(Duration::from_millis(2000 + 4 * BLOCK_MS)).await;
    let mut split = [0u64; 4];
    for (i, h) in split.iter_mut().enumerate() {
        *h = net.finalized(i).await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    for (i, h) in split.iter().enumerate() {
        assert_eq!(net.finalized(i).await, *h, "node {i} finalized with half the validators");
    }
    for i in 0..4 {
        net.unreserve(i);
    }
    let healed = Instant::now();
    let top = *split.iter().max().unwrap_or(&0);
    net.wait_finalized(&[0, 1, 2, 3], top + 1, Duration::from_secs(30)).await;
    let resumed = healed.elapsed();
    eprintln!("2|2 partition: nothing finalized for 6 s; finalizing again {} ms after the heal", resumed.as_millis());
    assert!(resumed <= Duration::from_secs(10), "resumed {resumed:?} after the heal");
    for i in 1..4 {
        assert_eq!(net.hash_at(i, top + 1).await, net.hash_at(0, top + 1).await, "node {i} at {}", top + 1);
    }
}

async fn kill_all_rounds(rounds: u64) {
    let _one = exclusive().await;
    let mut net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, START_TIMEOUT).await;
    let mut before = [0u64; 4];
    for round in 0..rounds {
        // Kill at an instant that drifts through the view.
        tokio::time::sleep(Duration::from_millis(300 + (round * 173) % BLOCK_MS)).await;
        for (i, b) in before.iter_mut().enumerate() {
            *b = net.finalized(i).await.max(*b);
        }
        for i in 0..4 {
            net.kill_9(i);
        }
        for i in 0..4 {
            net.restart(i);
        }
        for (i, b) in before.iter().enumerate() {
            let now = net.finalized(i).await;
            assert!(now >= *b, "round {round}: node {i} restarted at height {now}, below {b}");
        }
        let top = *before.iter().max().unwrap_or(&0);
        net.wait_finalized(&[0, 1, 2, 3], top + 1, Duration::from_secs(40)).await;
    }
    let low = {
        let mut low = u64::MAX;
        for i in 0..4 {
            low = low.min(net.finalized(i).await);
        }
        low
    };
    let head = net.hash_at(0, low).await;
    for i in 1..4 {
        assert_eq!(net.hash_at(i, low).await, head, "node {i} disagrees at height {low}");
    }
    for i in 0..4 {
        let evidence = call(&net.client(i), "consensus_getEvidence", params(&[])).await.expect("evidence");
        assert_eq!(evidence.as_array().map(Vec::len), Some(0), "node {i} saw equivocation: {evidence}");
    }
    eprintln!("{rounds} kill-all rounds: heights never went back, all agree at {low}, no equivocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_killed_mid_view_five_times_restart_to_the_same_head_without_equivocating() {
    kill_all_rounds(5).await;
}

/// The guide's test 5 in full: `cargo test -p taksa-node --test it network_slow -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: 20 kill-all rounds, about a minute"]
async fn network_slow_all_four_killed_twenty_times() {
    kill_all_rounds(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_validator_and_fresh_full_node_sync_from_genesis_and_the_validator_votes_again() {
    let _one = exclusive().await;
    let mut net = Testnet::start(4, 1, BLOCK_MS);
    net.kill_9(4);
    net.wait_finalized(&[0, 1, 2, 3], 40, START_TIMEOUT).await;
    net.wipe(3);
    net.wipe(4);
    let target = net.finalized(0).await;
    let started = Instant::now();
    net.restart(3);
    net.restart(4);
    net.wait_finalized(&[3, 4], target, Duration::from_secs(60)).await;
    eprintln!("a wiped validator and a fresh full node synced {target} blocks in {} ms", started.elapsed().as_millis());
    for i in [3, 4] {
        assert_eq!(net.hash_at(i, target).await, net.hash_at(0, target).await, "node {i} at {target}");
        assert_eq!(net.hash_at(i, 1).await, net.hash_at(0, 1).await, "node {i} at 1");
    }
    // With validator 1 down, a quorum (3 of 4) needs the resynced validator's votes.
    net.kill_9(1);
    let from = net.finalized(0).await;
    net.wait_finalized(&[0, 2, 3], from + 3, Duration::from_secs(60)).await;
    eprintln!(
        "the resynced validator votes: finalizing without validator 1 {} ms after the wipe",
        started.elapsed().as_millis()
    );
}
