//! A running testnet changes its validator set by vote (`taksa validator`), with real
//! processes: four validators add a fifth, which syncs as a full node and signs from the epoch
//! after the vote (the chain then needs its signature to go on); remove one that crashed (the
//! chain goes on without it); and rotate a key (the old key no longer votes, the new one must).

use std::process::Command;
use std::time::{Duration, Instant};

use jsonrpsee::core::params::ArrayParams;
use serde_json::Value;

use crate::support::{bin, call, params, wallet};
use crate::testnet::{exclusive, Testnet, TESTNET_MNEMONIC, TESTNET_PASSWORD};

/// Heights per epoch: short, so that changes apply within seconds.
const EPOCH: u64 = 8;
const BLOCK_TIME_MS: u64 = 250;
const WAIT: Duration = Duration::from_secs(120);

/// Runs `taksa validator --rpc URL ARGS`; returns its stdout, or panics with its stderr.
fn validator_cli(url: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("validator")
        .args(["--rpc", url])
        .args(args)
        .env("TAKSA_PASSWORD", TESTNET_PASSWORD)
        .output()
        .expect("run taksa validator");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "taksa validator {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The address of a keystore file.
fn address_in(file: &std::path::Path) -> String {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).expect("key file")).expect("json");
    doc["address"].as_str().expect("address").to_owned()
}

/// The addresses of the current epoch's set, as node `i` sees it, and the epoch.
async fn set_of(net: &Testnet, i: usize) -> (u64, Vec<String>) {
    let set = call(&net.client(i), "validators_getSet", ArrayParams::new()).await.expect("validators_getSet");
    let addrs =
        set["validators"].as_array().expect("list").iter().map(|v| v["address"].as_str().expect("address").to_owned());
    (set["epoch"].as_u64().expect("epoch"), addrs.collect())
}

/// Waits until node `i`'s current set satisfies `ok`.
async fn wait_set(net: &Testnet, i: usize, what: &str, ok: impl Fn(&[String]) -> bool) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let (epoch, set) = set_of(net, i).await;
        if ok(&set) {
            return epoch;
        }
        assert!(Instant::now() < deadline, "node {i}: the set never became {what}: {set:?}{}", net.logs(&[i]));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn is_validator(net: &Testnet, i: usize) -> bool {
    let st = call(&net.client(i), "consensus_getStatus", ArrayParams::new()).await.expect("status");
    st["isValidator"].as_bool().expect("isValidator")
}

/// Waits for `blocks` more finalized blocks on the listed nodes. When they are exactly a quorum
/// of the set and the only validators running, that happens only if each of them signs.
async fn goes_on(net: &Testnet, nodes: &[usize], blocks: u64) {
    let from = net.finalized(nodes[0]).await;
    net.wait_finalized(nodes, from + blocks, WAIT).await;
}

/// Sends a transfer and checks its receipt offline against the genesis file: it must carry the
/// link of the set change and say which epoch's validators finalized it.
async fn paid_with_a_receipt_through_the_change(net: &Testnet) {
    let dir = net.scratch();
    let ks = dir.join("keystore");
    let url = net.url(0);
    for i in ["0", "1"] {
        let name = format!("acct{i}");
        let (ok, _, err) = wallet(&url, &ks, &["import", "--name", &name, "--index", i], Some(TESTNET_MNEMONIC));
        assert!(ok, "{err}");
    }
    let to = address_in(&ks.join("acct1.json"));
    let (ok, out, err) = wallet(&url, &ks, &["send", "--from", "acct0", "--to", &to, "--amount", "1", "--yes"], None);
    assert!(ok, "send failed: {out}{err}");
    let hash = out.split_whitespace().chain(err.split_whitespace()).find(|w| w.starts_with("0x") && w.len() == 66);
    let hash = hash.unwrap_or_else(|| panic!("no hash in: {out}{err}")).to_owned();
    let (ok, receipt, err) = wallet(&url, &ks, &["receipt", &hash], None);
    assert!(ok, "receipt failed: {err}");
    let links = serde_json::from_str::<Value>(&receipt).expect("json")["epochs"].as_array().map(Vec::len);
    assert_eq!(links, Some(1), "one change of the set since genesis: {receipt}");
    let file = dir.join("receipt.json");
    std::fs::write(&file, &receipt).expect("write");
    let out = Command::new(bin()).arg("verify-receipt").arg(&file).arg("--genesis").arg(net.genesis_file()).output();
    let out = out.expect("verify-receipt runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("epoch ") && text.contains("validators at height"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_testnet_adds_a_validator_removes_one_and_rotates_a_key() {
    let _one = exclusive().await;
    let mut net = Testnet::start_epochs(4, 0, BLOCK_TIME_MS, Some(EPOCH), "info");
    net.wait_finalized(&[0, 1, 2, 3], 2, WAIT).await;
    let url = |net: &Testnet, i: usize| net.url(i);
    let key = |net: &Testnet, i: usize, k: usize| net.key_file(i, k).to_string_lossy().into_owned();

    // A fifth node with a key no genesis names: a full node until the set holds it.
    let five = net.add_node(Some(4));
    let new_key = address_in(&net.key_file(five, 4));
    assert!(!is_validator(&net, five).await);
    for v in 0..3 {
        let out = validator_cli(
            &url(&net, v),
            &["propose-add", "--address", &new_key, "--name", "validator-4", "--key", &key(&net, v, v)],
        );
        assert!(out.contains("final at height"), "{out}");
        if v == 2 {
            assert!(out.contains("the change passed"), "the third of four votes passes it: {out}");
        }
    }
    let votes = validator_cli(&url(&net, 0), &["votes"]);
    assert!(votes.contains("passed") || votes.contains(&new_key), "{votes}");
    let epoch = wait_set(&net, 0, "five validators", |s| s.len() == 5 && s.contains(&new_key)).await;
    wait_set(&net, five, "five validators", |s| s.len() == 5).await;
    assert!(epoch >= 1);
    // A payment in the new set's epoch comes with a receipt that proves the change from genesis.
    paid_with_a_receipt_through_the_change(&net).await;
    // It signs: with validator 3 down, the other four are exactly the quorum of five.
    net.kill_9(3);
    goes_on(&net, &[0, 1, 2, five], EPOCH + 2).await;
    assert!(is_validator(&net, five).await);

    // Remove the crashed validator; the chain goes on without it, now needing three of four.
    let three = address_in(&net.key_file(3, 3));
    for (node, k) in [(0, 0), (1, 1), (2, 2), (five, 4)] {
        validator_cli(&url(&net, node), &["propose-remove", "--address", &three, "--key", &key(&net, node, k)]);
    }
    wait_set(&net, 0, "without validator 3", |s| s.len() == 4 && !s.contains(&three)).await;
    net.kill_9(five);
    goes_on(&net, &[0, 1, 2], EPOCH + 2).await;
    net.restart(five);

    // Rotate validator 2's key to key 5: it proposes (the new key signs its consent), two
    // others vote by the change's id. Its node holds both keys, so it moves to the new one when
    // the change takes effect, with no restart.
    net.add_validator_key(2, 5);
    net.restart(2);
    let old = address_in(&net.key_file(2, 2));
    let rotated = address_in(&net.key_file(2, 5));
    let out = validator_cli(&url(&net, 2), &["rotate-key", "--key", &key(&net, 2, 2), "--new-key", &key(&net, 2, 5)]);
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("0x") && w.len() == 66)
        .unwrap_or_else(|| panic!("no change id in: {out}"))
        .to_owned();
    let pending = call(&net.client(0), "validators_getPendingVotes", ArrayParams::new()).await.expect("pending");
    assert_eq!(pending["pending"][0]["id"], Value::String(id.clone()), "{pending}");
    assert_eq!(pending["pending"][0]["change"]["kind"], "rotate");
    for (node, k) in [(0, 0), (1, 1)] {
        validator_cli(&url(&net, node), &["vote", &id, "--key", &key(&net, node, k)]);
    }
    wait_set(&net, 0, "with the rotated key", |s| s.contains(&rotated) && !s.contains(&old)).await;
    // The old key no longer counts and the new one must sign: with the fifth node down, 0, 1
    // and 2 (on its new key) are exactly the quorum of four.
    net.kill_9(five);
    goes_on(&net, &[0, 1, 2], EPOCH + 2).await;
    assert!(is_validator(&net, 2).await);
    // Every epoch's set is on record.
    let first = call(&net.client(0), "validators_getSet", params(&[1.into()])).await.expect("epoch 0");
    assert_eq!(first["validators"].as_array().map(Vec::len), Some(4));
    assert_eq!(first["epoch"], 0);
}
