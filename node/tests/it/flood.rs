//! A cheap user against the validator network: a flood of maximum-memo transfers is more than
//! one block may carry. Before blocks had a byte budget, every leader built the same oversize
//! block, could not send it, and the chain stopped finalizing.

use std::time::{Duration, Instant};

use jsonrpsee::http_client::HttpClient;
use serde_json::{json, Value};
use taksa_consensus::codec::BLOCK_BYTES_MAX;
use taksa_consensus::tx::MEMO_BYTES_MAX;
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;

use crate::network::{transfer, transfer_with_memo};
use crate::support::{call, params};
use crate::testnet::{exclusive, Testnet};

const BLOCK_MS: u64 = 500;
/// Fresh senders, each with a run of transfers that the pool holds (within its nonce window).
const SENDERS: usize = 160;
const TRANSFERS_EACH: u64 = 64;

/// Fresh sender `i`: a key nobody else uses.
fn sender(i: usize) -> Keypair {
    let mut seed = [0x5e; 32];
    seed[..8].copy_from_slice(&u64::try_from(i).expect("small").to_le_bytes());
    Keypair::from_seed(&seed)
}

/// Submits every transaction, in order, through `client`; returns their hashes.
async fn submit_all(client: HttpClient, txs: Vec<String>) -> Vec<Value> {
    let mut hashes = Vec::with_capacity(txs.len());
    for tx in txs {
        hashes.push(call(&client, "tx_submit", params(&[json!(tx)])).await.expect("tx_submit"));
    }
    hashes
}

/// Waits until every validator's pool holds at least `count` transactions.
async fn wait_pools_hold(net: &Testnet, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for i in 0..4 {
        loop {
            let m = call(&net.client(i), "node_health", params(&[])).await.expect("node_health");
            let held = m["mempoolTxs"].as_u64().unwrap_or(0);
            if held >= u64::try_from(count).expect("fits") {
                break;
            }
            assert!(Instant::now() < deadline, "node {i}'s pool holds {held} of {count} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn wait_final(client: &HttpClient, hashes: &[Value], timeout: Duration) -> Vec<u64> {
    let deadline = Instant::now() + timeout;
    let mut heights = Vec::with_capacity(hashes.len());
    for hash in hashes {
        loop {
            let r = call(client, "tx_get", params(std::slice::from_ref(hash))).await.expect("tx_get");
            if r["status"] == "finalized" {
                heights.push(r["height"].as_u64().expect("height"));
                break;
            }
            assert_eq!(r["status"], "pending", "{hash} left the pool: {r}");
            assert!(Instant::now() < deadline, "{hash} not final after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    heights
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_maximum_memo_transfers_keeps_four_validators_finalizing() {
    let _one = exclusive().await;
    let net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await;
    let info = net.info(0).await.expect("chain_getInfo");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash");

    // Ten funded accounts give 1 TKS to each of the fresh senders.
    let senders: Vec<Keypair> = (0..SENDERS).map(sender).collect();
    let mut funding = Vec::new();
    for (i, s) in senders.iter().enumerate() {
        let funder = devnet::testnet_account(u32::try_from(i % 10).expect("small"));
        let nonce = u64::try_from(i / 10).expect("small");
        funding.push(transfer(&funder, Address(s.public()), 1_000_000_000, nonce, &genesis));
    }
    let funded = submit_all(net.client(0), funding).await;
    wait_final(&net.client(0), &funded, Duration::from_secs(60)).await;

    // Each sender sends a run of transfers with the longest memo: about 4.5 MB in all, more
    // than one block may carry. While the validators are split 2|2 (no quorum, nothing final)
    // the flood goes to every validator (gossip alone may leave gaps under load; that is the
    // pool's business, not this test's). Then the network heals and every leader has the
    // whole flood to propose from.
    let to = Address(Keypair::from_seed(&[5; 32]).public());
    let memo = "x".repeat(MEMO_BYTES_MAX);
    let mut flood = Vec::new();
    for s in &senders {
        for nonce in 0..TRANSFERS_EACH {
            flood.push(transfer_with_memo(s, to, 1, nonce, Some(memo.clone()), &genesis));
        }
    }
    let flood_bytes: usize = flood.iter().map(|t| (t.len() - 2) / 2).sum();
    assert!(flood_bytes > BLOCK_BYTES_MAX, "the flood ({flood_bytes} bytes) must not fit one block");
    for side in [[0, 1], [2, 3]] {
        for i in side {
            net.reserve(i, &side);
        }
    }
    // The reserved-peers files are read every second; what was in flight may still finalize.
    tokio::time::sleep(Duration::from_millis(2000 + 4 * BLOCK_MS)).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..4 {
        tasks.spawn(submit_all(net.client(i), flood.clone()));
    }
    let mut hashes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        hashes = done.expect("submitter");
    }
    wait_pools_hold(&net, hashes.len(), Duration::from_secs(60)).await;
    eprintln!("every pool holds {} transfers ({flood_bytes} bytes) after {:?}", hashes.len(), started.elapsed());
    let height_before = net.finalized(0).await;
    for i in 0..4 {
        net.unreserve(i);
    }

    // Each sender's transfers are final once its last one is (nonces apply in order).
    let healed = Instant::now();
    let lasts: Vec<Value> =
        hashes.chunks(usize::try_from(TRANSFERS_EACH).expect("fits")).filter_map(|c| c.last().cloned()).collect();
    let heights = wait_final(&net.client(0), &lasts, Duration::from_secs(120)).await;
    let last = heights.iter().copied().max().unwrap_or(0);
    eprintln!("all {} final by height {last}, {:?} after the network healed", hashes.len(), healed.elapsed());
    net.wait_finalized(&[0, 1, 2, 3], last, Duration::from_secs(20)).await;

    // The biggest block is close to the byte limit, not over it.
    let mut biggest = (0usize, 0u64);
    for h in height_before + 1..=last {
        let block = call(&net.client(0), "chain_getBlock", params(&[h.into()])).await.expect("chain_getBlock");
        let txs = usize::try_from(block["txCount"].as_u64().expect("txCount")).expect("fits");
        biggest = biggest.max((txs, h));
    }
    eprintln!("largest block: {} transfers at height {}", biggest.0, biggest.1);
    assert!(biggest.0 > 8_000, "a leader filled a block: {biggest:?}");
    assert!(biggest.0 < hashes.len(), "no block carried the whole flood");
}
