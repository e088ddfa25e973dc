//! Crash and restart: nothing reported final is ever lost, and the node restarts consistent.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;

use crate::support::{bin, call, finalized_height, params, signed_transfer, DevNode};

async fn genesis_hash(client: &jsonrpsee::http_client::HttpClient) -> Hash {
    let info = call(client, "chain_getInfo", params(&[])).await.expect("info");
    Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash")
}

async fn status(client: &jsonrpsee::http_client::HttpClient, hash: &str) -> Value {
    call(client, "tx_get", params(&[json!(hash)])).await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_transfers_keeps_everything_reported_final() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let key = devnet::dev_account(3);
    let to = Address(Keypair::from_seed(&[42; 32]).public());
    let to_s = to.to_bech32("tdev");
    let mut nonce = 0u64;
    // Every hash ever acknowledged by tx_submit, with its amount. A transfer re-signed with the
    // same nonce after a crash has the same bytes, hence the same hash: the map counts it once.
    let mut sent: HashMap<String, u128> = HashMap::new();
    let mut reported_final: Vec<(String, u64)> = Vec::new();
    for round in 0..3u64 {
        let node = DevNode::start(&data, 50);
        let client = node.client();
        let genesis = genesis_hash(&client).await;
        // Stream transfers for a while, then kill -9 at an instant that varies per round.
        let stream_for = Duration::from_millis(1200 + 370 * round);
        let start = Instant::now();
        let mut recent: Vec<String> = Vec::new();
        while start.elapsed() < stream_for {
            let amount = u128::from(nonce % 7 + 1);
            let raw = signed_transfer(devnet::DEV_CHAIN_ID, &key, to, amount, nonce, None, &genesis);
            if let Ok(h) = call(&client, "tx_submit", params(&[json!(raw)])).await {
                let h = h.as_str().expect("hash").to_owned();
                sent.insert(h.clone(), amount);
                recent.push(h);
                nonce += 1;
            }
            if let Some(h) = recent.iter().rev().nth(5) {
                let st = status(&client, h).await;
                if st["status"] == "finalized" {
                    reported_final.push((h.clone(), st["height"].as_u64().expect("height")));
                }
            }
        }
        let head_before = finalized_height(&client).await;
        let block_before = call(&client, "chain_getBlock", params(&[json!(head_before)])).await.expect("block");
        node.kill_9();

        let node = DevNode::start(&data, 50);
        let client = node.client();
        let head_after = finalized_height(&client).await;
        assert!(
            head_after >= head_before,
            "round {round}: finalized height went back from {head_before} to {head_after}"
        );
        let same = call(&client, "chain_getBlock", params(&[json!(head_before)])).await.expect("block");
        assert_eq!(same["hash"], block_before["hash"], "round {round}: block {head_before} changed across the crash");
        assert!(!reported_final.is_empty() || round > 0, "round {round}: nothing was finalized while streaming");
        for (h, height) in &reported_final {
            let st = status(&client, h).await;
            assert_eq!(st["status"], "finalized", "round {round}: {h} was reported final, now {st}");
            assert_eq!(st["height"].as_u64(), Some(*height));
        }
        // The state equals the finalized transactions: recipient balance and sender nonce.
        let mut finalized_sum = 0u128;
        let mut finalized_count = 0u64;
        for (h, amount) in &sent {
            if status(&client, h).await["status"] == "finalized" {
                finalized_sum += amount;
                finalized_count += 1;
            }
        }
        let bal = call(&client, "account_getBalance", params(&[json!(to_s)])).await.expect("balance");
        assert_eq!(bal, json!(finalized_sum.to_string()), "round {round}");
        let acct = call(&client, "account_get", params(&[json!(Address(key.public()).to_bech32("tdev"))]))
            .await
            .expect("account");
        assert_eq!(acct["nonce"].as_u64(), Some(finalized_count), "round {round}");
        // Pool contents are not kept across a crash: continue from the chain's nonce.
        nonce = finalized_count;
        node.kill_9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_restart_keeps_the_head() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let node = DevNode::start(&data, 50);
    let client = node.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    while finalized_height(&client).await < 5 {
        assert!(Instant::now() < deadline, "no blocks within 20 s; log:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = finalized_height(&client).await;
    let status = node.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let node = DevNode::start(&data, 50);
    let after = finalized_height(&node.client()).await;
    assert!(after >= before, "head went back from {before} to {after}");
}

/// A disk write that fails stops the node at once, with a non-zero exit and a message naming the
/// height its data is consistent up to, and the node restarts there. The write fails through
/// the file-size limit (`prlimit --fsize`, with its signal ignored so the write returns EFBIG),
/// because this suite runs as root, which writes through a read-only folder's permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_disk_write_stops_the_node_loudly_and_it_restarts_where_it_said() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let stderr_path = tmp.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    // RocksDB's write-ahead log reaches 128 KiB after some tens of blocks.
    let mut child = Command::new("bash")
        .args(["-c", "trap '' XFSZ; exec prlimit --fsize=131072 \"$@\"", "limited"])
        .args([bin(), "dev", "--rpc-addr", "127.0.0.1:0", "--block-time-ms", "50", "--data-dir"])
        .arg(&data)
        .env("TAKSA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn taksa dev under prlimit");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node ran on for 90 s: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert!(!status.success(), "a failed write must not look like a clean stop: {status}");
    let said = "the data on disk is consistent up to height ";
    let line = log.lines().find(|l| l.contains(said)).unwrap_or_else(|| panic!("no height named:\n{log}"));
    assert!(line.contains("the chain service failed") && line.contains("File too large"), "{line}");
    assert!(line.contains("check free disk space"), "the message says what to do: {line}");
    let height: u64 = line[line.find(said).expect("said") + said.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|h| h.parse().ok())
        .expect("a height");
    assert!(height > 0, "it committed blocks before the write failed");

    let node = DevNode::start(&data, 50);
    let opened = node.log();
    let opened = opened.lines().find(|l| l.contains("opened chain data")).expect("the open line");
    assert!(opened.contains(&format!(" height={height} ")), "restarts where it said ({height}): {opened}");
    let client = node.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while finalized_height(&client).await <= height {
        assert!(Instant::now() < deadline, "no block after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
