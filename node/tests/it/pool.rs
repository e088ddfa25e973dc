//! The pool against a cheap attacker and for a busy honest sender, on a real dev chain: long
//! gap-free runs are held, transactions behind a nonce gap cannot fill the pool, and every
//! transaction that leaves it is reported truthfully (`expired`, `rejected`/`replaced`).

use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::HttpClient;
use serde_json::{json, Value};
use taksa_consensus::pool::Limits;
use taksa_consensus::{Address, Hash, Keypair, Transaction};
use taksa_node::devnet;

use crate::support::{call, finalized_height, params, wait_status, DevNode};

const BLOCK_MS: u64 = 100;

/// A dev-chain transfer, hex-encoded for `tx_submit`, with its hash.
pub(crate) fn transfer(
    key: &Keypair,
    to: Address,
    amount: u128,
    nonce: u64,
    fee: u128,
    genesis: &Hash,
) -> (String, String) {
    transfer_until(key, to, amount, nonce, fee, None, genesis)
}

fn transfer_until(
    key: &Keypair,
    to: Address,
    amount: u128,
    nonce: u64,
    fee: u128,
    valid_until_height: Option<u64>,
    genesis: &Hash,
) -> (String, String) {
    let stx = Transaction {
        chain_id: devnet::DEV_CHAIN_ID.into(),
        from: Address(key.public()),
        to,
        amount,
        fee,
        nonce,
        valid_until_height,
        memo: None,
        action: None,
    }
    .sign(key, genesis);
    (format!("0x{}", hex::encode(stx.encode())), stx.hash().to_hex())
}

pub(crate) async fn genesis_hash(client: &HttpClient) -> Hash {
    let info = call(client, "chain_getInfo", params(&[])).await.expect("chain_getInfo");
    Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash")
}

/// A funded dev account, so transfers to it create no account (derived once: a mnemonic's
/// key derivation is slow on purpose).
pub(crate) fn recipient() -> Address {
    static RECIPIENT: std::sync::OnceLock<Address> = std::sync::OnceLock::new();
    *RECIPIENT.get_or_init(|| Address(devnet::dev_account(9).public()))
}

/// Submits `txs` in batches of 64 calls; returns each call's result or error object.
async fn submit_batched(client: &HttpClient, txs: &[String]) -> Vec<Result<Value, Value>> {
    let mut out = Vec::with_capacity(txs.len());
    for chunk in txs.chunks(64) {
        let mut batch = BatchRequestBuilder::new();
        for tx in chunk {
            batch.insert("tx_submit", params(&[json!(tx)])).expect("param");
        }
        let response = client.batch_request::<Value>(batch).await.expect("batch");
        for r in response.into_iter() {
            out.push(r.map_err(|e| serde_json::to_value(&e).expect("json")));
        }
    }
    out
}

/// Waits until every hash is finalized.
async fn wait_all_final(client: &HttpClient, hashes: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for hash in hashes {
        loop {
            let r = call(client, "tx_get", params(&[json!(hash)])).await.expect("tx_get");
            if r["status"] == "finalized" {
                break;
            }
            assert_eq!(r["status"], "pending", "{hash} left the pool: {r}");
            assert!(Instant::now() < deadline, "{hash} not final after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the chain has finalized `height`.
async fn wait_height(client: &HttpClient, height: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while finalized_height(client).await < height {
        assert!(Instant::now() < deadline, "height {height} not finalized within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_200_consecutive_transfers_in_flight_sees_them_all_finalize() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), BLOCK_MS);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let key = devnet::dev_account(1);
    let (txs, hashes): (Vec<String>, Vec<String>) =
        (0..200).map(|nonce| transfer(&key, recipient(), 1, nonce, devnet::FEE_FLOOR, &genesis)).unzip();
    // Before the pool kept gap-free runs to the per-sender cap, nonce 65 was refused as
    // "ahead of the account's next nonce 65".
    for (i, r) in submit_batched(&client, &txs).await.into_iter().enumerate() {
        assert_eq!(r, Ok(json!(hashes[i])), "nonce {i}");
    }
    wait_all_final(&client, &hashes, Duration::from_secs(60)).await;
    let account = call(&client, "account_get", params(&[json!(devnet_address(&key))])).await.expect("account");
    assert_eq!(account["nonce"], 200);
}

/// `tx_submitBatch` takes many transfers in one call through the same admission path as
/// `tx_submit`: each gets its own answer (a bad signature among them refuses only that one, a
/// repeat answers the same hash, an empty sender is refused before its signature is checked),
/// and the admitted ones finalize.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_transfers_is_admitted_one_answer_each_and_finalizes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), BLOCK_MS);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let key = devnet::dev_account(2);
    let (mut txs, hashes): (Vec<String>, Vec<String>) =
        (0..250).map(|nonce| transfer(&key, recipient(), 1, nonce, devnet::FEE_FLOOR, &genesis)).unzip();
    // A repeat, and one whose signature is broken (its last hex digit changed).
    txs.push(txs[5].clone());
    let (mut forged, _) = transfer(&key, recipient(), 1, 250, devnet::FEE_FLOOR, &genesis);
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    txs.push(forged);
    // A forged transfer from an empty account is refused for its balance before any signature
    // check: junk from empty accounts costs the node a lookup, not a verification.
    let (mut empty, _) = transfer(&Keypair::from_seed(&[0xe7; 32]), recipient(), 1, 0, devnet::FEE_FLOOR, &genesis);
    let last = if empty.ends_with('0') { "1" } else { "0" };
    empty.replace_range(empty.len() - 1.., last);
    txs.push(empty);
    let outcomes = call(&client, "tx_submitBatch", params(&[json!(txs)])).await.expect("tx_submitBatch");
    let outcomes = outcomes.as_array().expect("an array");
    assert_eq!(outcomes.len(), 253);
    for (i, hash) in hashes.iter().enumerate() {
        assert_eq!(outcomes[i], json!({"hash": hash}), "nonce {i}");
    }
    assert_eq!(outcomes[250], json!({"hash": hashes[5]}), "a repeat answers the same hash");
    assert_eq!(outcomes[251]["error"]["data"]["reason"], "bad_signature", "{}", outcomes[251]);
    assert_eq!(outcomes[252]["error"]["data"]["reason"], "insufficient_balance", "{}", outcomes[252]);
    wait_all_final(&client, &hashes, Duration::from_secs(60)).await;

    let too_many = vec![txs[0].clone(); taksa_rpc::TX_SUBMIT_BATCH_MAX + 1];
    let e = call(&client, "tx_submitBatch", params(&[json!(too_many)])).await.expect_err("over the limit");
    assert!(e.contains("itemsMax"), "{e}");
}

fn devnet_address(key: &Keypair) -> String {
    Address(key.public()).to_bech32(devnet::DEV_HRP)
}

/// About 1,563 funded accounts each sending 64 transfers behind a nonce gap (100,032 in all)
/// used to fill the 100,000-slot pool for good: every honest submission then got `pool_full`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gapped_transfers_from_1563_senders_do_not_keep_an_honest_transfer_out() {
    const SENDERS: u32 = 1_563;
    const GAPPED_EACH: u64 = 64;
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), BLOCK_MS);
    let client = node.client();
    let genesis = genesis_hash(&client).await;

    // Eight funded accounts fund the attacker's accounts, up to 196 transfers in flight each.
    let attackers: Vec<Keypair> = (0..SENDERS)
        .map(|i| {
            let mut seed = [0xa7; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(&seed)
        })
        .collect();
    let funders: Vec<Keypair> = (2..10).map(devnet::dev_account).collect();
    let mut funding = Vec::new();
    let mut funded = Vec::new();
    for (i, a) in attackers.iter().enumerate() {
        let nonce = u64::try_from(i / funders.len()).expect("small");
        let (tx, hash) = transfer(
            &funders[i % funders.len()],
            Address(a.public()),
            1_000_000,
            nonce,
            devnet::ACCOUNT_CREATION_FEE,
            &genesis,
        );
        funding.push(tx);
        funded.push(hash);
    }
    for r in submit_batched(&client, &funding).await {
        r.expect("funding is admitted");
    }
    let started = Instant::now();
    wait_all_final(&client, &funded[funded.len() - funders.len()..], Duration::from_secs(120)).await;
    eprintln!("{SENDERS} accounts funded in {:?}", started.elapsed());

    // Each sends nonces 1 to 64 and never nonce 0: none can ever be proposed.
    let mut gapped = Vec::with_capacity(attackers.len() * 64);
    for a in &attackers {
        for nonce in 1..=GAPPED_EACH {
            gapped.push(transfer(a, recipient(), 1, nonce, devnet::FEE_FLOOR, &genesis).0);
        }
    }
    let started = Instant::now();
    let outcomes = submit_batched(&client, &gapped).await;
    let held = outcomes.iter().filter(|r| r.is_ok()).count();
    let reasons: std::collections::BTreeMap<String, usize> =
        outcomes.iter().filter_map(|r| r.as_ref().err()).fold(Default::default(), |mut m, e| {
            *m.entry(e["data"]["reason"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
            m
        });
    eprintln!(
        "{} gapped transfers submitted in {:?}: {held} held, refused {reasons:?}",
        gapped.len(),
        started.elapsed()
    );
    assert!(held <= Limits::default().queued_max, "{held} held behind gaps");
    assert!(reasons.keys().all(|r| r == "queued_limit" || r == "pool_full"), "{reasons:?}");

    // An honest transfer is admitted and finalizes.
    let honest = devnet::dev_account(0);
    let (tx, hash) = transfer(&honest, recipient(), 5, 0, devnet::FEE_FLOOR, &genesis);
    let answer = call(&client, "tx_submit", params(&[json!(tx)])).await;
    assert_eq!(answer, Ok(json!(hash)), "the honest transfer is admitted");
    assert_eq!(wait_status(&client, &hash).await["status"], "finalized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_queued_transfer_is_reported_expired() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), BLOCK_MS);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let key = devnet::dev_account(2);
    let until = finalized_height(&client).await + 5;
    // Nonce 1 without nonce 0: queued until its expiry passes.
    let (tx, hash) = transfer_until(&key, recipient(), 1, 1, devnet::FEE_FLOOR, Some(until), &genesis);
    assert_eq!(call(&client, "tx_submit", params(&[json!(tx)])).await, Ok(json!(hash)));
    wait_height(&client, until + 1).await;
    let status = wait_status(&client, &hash).await;
    assert_eq!(status["status"], "expired", "{status}");
    assert_eq!(status["reason"], "expired", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_transfer_is_reported_rejected_and_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), BLOCK_MS);
    let client = node.client();
    let genesis = genesis_hash(&client).await;
    let key = devnet::dev_account(3);
    // Queued behind nonce 0, so the block producer cannot take it before it is replaced.
    let (first, first_hash) = transfer(&key, recipient(), 1, 1, devnet::FEE_FLOOR, &genesis);
    assert_eq!(call(&client, "tx_submit", params(&[json!(first)])).await, Ok(json!(first_hash)));
    let (cheap, _) = transfer(&key, recipient(), 2, 1, devnet::FEE_FLOOR + 100, &genesis);
    let refused = call(&client, "tx_submit", params(&[json!(cheap)])).await.expect_err("under +10 %");
    assert!(refused.contains("replacement_underpriced"), "{refused}");
    assert!(
        refused.contains(&format!("\"fee\":\"{}\"", devnet::FEE_FLOOR + 100)),
        "data.fee is the submitted fee: {refused}"
    );
    let (bump, bump_hash) = transfer(&key, recipient(), 2, 1, 2 * devnet::FEE_FLOOR, &genesis);
    assert_eq!(call(&client, "tx_submit", params(&[json!(bump)])).await, Ok(json!(bump_hash)));
    let (gap, gap_hash) = transfer(&key, recipient(), 1, 0, devnet::FEE_FLOOR, &genesis);
    assert_eq!(call(&client, "tx_submit", params(&[json!(gap)])).await, Ok(json!(gap_hash)));
    assert_eq!(wait_status(&client, &bump_hash).await["status"], "finalized");
    let old = call(&client, "tx_get", params(&[json!(first_hash)])).await.expect("the replaced one is known");
    assert_eq!(old["status"], "rejected", "{old}");
    assert_eq!(old["reason"], "replaced", "{old}");
    assert_eq!(old["replacedBy"], json!(bump_hash), "{old}");
}
