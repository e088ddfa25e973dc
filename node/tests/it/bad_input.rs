//! Hostile and mistaken input gets a clear error, and the node keeps serving.

use std::io::{Read as _, Write as _};
use std::process::Command;

use serde_json::json;
use taksa_consensus::{Address, Hash, Keypair, SignedTransaction, Transaction};
use taksa_node::devnet;

use crate::support::{bin, call, params, wait_status, DevNode};

fn transfer(key: &Keypair, nonce: u64) -> Transaction {
    Transaction {
        chain_id: "taksa-dev".into(),
        from: Address(key.public()),
        to: Address(Keypair::from_seed(&[77; 32]).public()),
        amount: 5,
        fee: devnet::ACCOUNT_CREATION_FEE,
        nonce,
        valid_until_height: None,
        memo: None,
        action: None,
    }
}

fn hex_of(stx: &SignedTransaction) -> String {
    format!("0x{}", hex::encode(stx.encode()))
}

/// Submits and returns the error's `data.reason`.
async fn reason_of(client: &jsonrpsee::http_client::HttpClient, raw: &str) -> String {
    match call(client, "tx_submit", params(&[json!(raw)])).await {
        Ok(v) => panic!("expected an error for {raw:.40}…, got {v}"),
        Err(e) => {
            let reason = e.split("\"reason\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_owned();
            assert!(!reason.is_empty(), "error without data.reason: {e}");
            reason
        }
    }
}

fn raw_post(url: &str, body: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let head = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).expect("write");
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transactions_are_rejected_with_reasons_and_the_node_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 50);
    let client = node.client();
    let info = call(&client, "chain_getInfo", params(&[])).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("hash")).expect("hash");
    let key = devnet::dev_account(4);

    let good = transfer(&key, 0).sign(&key, &genesis);
    let raw = hex_of(&good);
    assert_eq!(reason_of(&client, &raw[..raw.len() - 10]).await, "bad_encoding", "truncated bytes");
    assert_eq!(reason_of(&client, "0xzz").await, "bad_encoding", "not hex");

    let mut forged = good.clone();
    forged.tx.amount = 6;
    assert_eq!(reason_of(&client, &hex_of(&forged)).await, "bad_signature");

    let other_chain = Transaction { chain_id: "other".into(), ..transfer(&key, 0) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&other_chain)).await, "wrong_chain");

    let other_genesis = transfer(&key, 0).sign(&key, &Hash([1; 32]));
    assert_eq!(reason_of(&client, &hex_of(&other_genesis)).await, "bad_signature", "signed for another genesis");

    let low_fee = Transaction { fee: 999, ..transfer(&key, 0) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&low_fee)).await, "fee_below_floor");

    let overflow = Transaction { amount: u128::MAX, ..transfer(&key, 0) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&overflow)).await, "overflow");

    let future = transfer(&key, 1_000).sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&future)).await, "nonce_gap");

    let poor = Keypair::from_seed(&[99; 32]);
    let broke = transfer(&poor, 0).sign(&poor, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&broke)).await, "insufficient_balance");

    let mut identity = [0u8; 32];
    identity[0] = 1;
    let burn = Transaction { to: Address(taksa_consensus::crypto::PublicKey(identity)), ..transfer(&key, 0) }
        .sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&burn)).await, "bad_recipient", "funds sent there could never be spent");

    let long_memo = Transaction { memo: Some("x".repeat(300)), ..transfer(&key, 0) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&long_memo)).await, "memo_too_long");

    // Idempotent submit, then a reused nonce once it is final.
    let h1 = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("submit");
    let h2 = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("the same bytes again succeed");
    assert_eq!(h1, h2);
    assert_eq!(h1, json!(good.hash().to_hex()));
    assert_eq!(wait_status(&client, h1.as_str().expect("hash")).await["status"], "finalized");
    let h3 = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("resubmitting a final tx");
    assert_eq!(h3, h1, "resubmitting a finalized transaction returns its hash, not an error");
    let reuse = Transaction { amount: 9, ..transfer(&key, 0) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&reuse)).await, "nonce_too_low");

    let expired = Transaction { valid_until_height: Some(0), ..transfer(&key, 1) }.sign(&key, &genesis);
    assert_eq!(reason_of(&client, &hex_of(&expired)).await, "expired");

    // Protocol-level garbage.
    let resp = raw_post(&node.url, b"{\"jsonrpc\":\"2.0\",\"method\":");
    assert!(resp.contains("-32700"), "malformed JSON gets a parse error: {resp}");
    let resp = raw_post(&node.url, br#"{"jsonrpc":"2.0","id":1,"method":"no_such_method","params":[]}"#);
    assert!(resp.contains("-32601"), "unknown method: {resp}");
    let resp = raw_post(&node.url, br#"{"jsonrpc":"2.0","id":1,"method":"account_get","params":[12345]}"#);
    assert!(resp.contains("\"error\""), "wrong parameter type: {resp}");
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["0x{}"]}}"#, "00".repeat(2_000_000));
    let resp = raw_post(&node.url, big.as_bytes());
    assert!(!resp.contains("\"result\""), "an oversized request is refused: {:.200}", resp);
    let bad_addr = call(&client, "account_get", params(&[json!("tks1notanaddress")])).await;
    assert!(bad_addr.is_err_and(|e| e.contains("bad_address")));

    // Still serving.
    let health = call(&client, "node_health", params(&[])).await.expect("health after all that");
    assert_eq!(health["status"], "ok");
}

#[test]
fn a_genesis_file_that_does_not_parse_is_refused_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let g = tmp.path().join("genesis.json");
    std::fs::write(&g, "{ \"chain_id\": 5 }").expect("write");
    let out = Command::new(bin())
        .args(["node", "--genesis"])
        .arg(&g)
        .arg("--data-dir")
        .arg(tmp.path().join("d"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("genesis"), "stderr: {err}");
}

#[test]
fn a_data_folder_of_another_chain_or_corrupt_is_refused_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    drop(DevNode::start(&data, 100));
    // Another dev block time is another genesis: the folder belongs to a different chain.
    let out = Command::new(bin())
        .args(["dev", "--rpc-addr", "127.0.0.1:0", "--block-time-ms", "300", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--data-dir") || err.contains("--reset"), "the error says what to do: {err}");

    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join("CURRENT"), "MANIFEST-999999\n").expect("write");
    let out = Command::new(bin())
        .args(["dev", "--rpc-addr", "127.0.0.1:0", "--data-dir"])
        .arg(&corrupt)
        .output()
        .expect("run");
    assert!(!out.status.success(), "a corrupt folder must not start");
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn reset_deletes_only_a_taksa_data_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A folder of someone's files, passed to --reset by mistake: refused, and nothing deleted.
    let mine = tmp.path().join("documents");
    std::fs::create_dir_all(&mine).expect("mkdir");
    std::fs::write(mine.join("thesis.txt"), "years of work").expect("write");
    let out = Command::new(bin())
        .args(["dev", "--reset", "--rpc-addr", "127.0.0.1:0", "--data-dir"])
        .arg(&mine)
        .output()
        .expect("run");
    assert!(!out.status.success(), "a folder of other files must not be reset");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--reset deletes only a Taksa data folder") && err.contains("not a Taksa database"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("thesis.txt")).expect("still there"), "years of work");

    // A dev chain's own folder is reset: it starts again at height 0.
    let data = tmp.path().join("data");
    drop(DevNode::start(&data, 50));
    let node = DevNode::start_with(&data, 50, &["--reset"]);
    let log = node.log();
    let opened = log.lines().find(|l| l.contains("opened chain data")).expect("the open line");
    assert!(opened.contains(" height=0 "), "{opened}");
}
