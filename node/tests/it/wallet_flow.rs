//! The README's wallet walk-through against a real dev chain: import a dev account, create two
//! wallets, fund one, send between them, and check balances, history and status over JSON-RPC.

use serde_json::json;

use crate::support::{call, params, wait_status, wallet, DevNode, DEV_MNEMONIC};

fn token<'a>(text: &'a str, prefix: &str, len: Option<usize>) -> Option<&'a str> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == ':')
        .find(|w| w.starts_with(prefix) && len.is_none_or(|l| w.len() == l))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_wallet_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let ks = tmp.path().join("keystore");
    let url = node.url.clone();

    let (ok, out, err) = wallet(&url, &ks, &["import", "--name", "dev0", "--index", "0"], Some(DEV_MNEMONIC));
    assert!(ok, "import failed: {out}{err}");
    let (ok, out, err) = wallet(&url, &ks, &["new", "--name", "alice"], None);
    assert!(ok, "new alice failed: {out}{err}");
    let alice = token(&out, "tdev1", None).expect("alice's address in the output").to_owned();
    let (ok, out, err) = wallet(&url, &ks, &["new", "--name", "bob"], None);
    assert!(ok, "new bob failed: {out}{err}");
    let bob = token(&out, "tdev1", None).expect("bob's address").to_owned();
    assert_ne!(alice, bob);

    let client = node.client();
    let zero = call(&client, "account_getBalance", params(&[json!(alice)])).await.expect("balance");
    assert_eq!(zero, json!("0"), "a new wallet starts with a zero balance");

    let (ok, out, err) = wallet(&url, &ks, &["send", "--from", "dev0", "--to", &alice, "--amount", "100"], None);
    assert!(ok, "funding send failed: {out}{err}");
    let (ok, out, err) = wallet(&url, &ks, &["send", "--from", "alice", "--to", &bob, "--amount", "10"], None);
    assert!(ok, "alice -> bob failed: {out}{err}");
    let hash = token(&out, "0x", Some(66)).expect("the transaction hash in send's output").to_owned();

    let fee_floor: u128 = 1000;
    let alice_bal = call(&client, "account_getBalance", params(&[json!(alice)])).await.expect("balance");
    assert_eq!(alice_bal, json!((100_000_000_000u128 - 10_000_000_000 - fee_floor).to_string()));
    let bob_bal = call(&client, "account_getBalance", params(&[json!(bob)])).await.expect("balance");
    assert_eq!(bob_bal, json!("10000000000"));

    let status = wait_status(&client, &hash).await;
    assert_eq!(status["status"], "finalized", "{status}");
    assert!(status["height"].as_u64().is_some_and(|h| h >= 1), "{status}");

    let hist =
        call(&client, "account_getHistory", params(&[json!(alice), json!({"limit": 10})])).await.expect("history");
    let items = hist["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{hist}");
    assert_eq!(items[0]["direction"], "sent");
    assert_eq!(items[0]["hash"], json!(hash));
    assert_eq!(items[1]["direction"], "received");

    // Paging: one item per page, following the cursor, gives the same two entries.
    let p1 = call(&client, "account_getHistory", params(&[json!(alice), json!({"limit": 1})])).await.expect("page 1");
    let cursor = p1["nextCursor"].as_str().expect("a cursor to the next page").to_owned();
    let p2 = call(&client, "account_getHistory", params(&[json!(alice), json!({"limit": 1, "cursor": cursor})]))
        .await
        .expect("page 2");
    assert_eq!(p2["items"][0]["hash"], items[1]["hash"]);

    let (ok, out, _) = wallet(&url, &ks, &["balance", "alice"], None);
    assert!(ok && out.contains("89.999999"), "balance output: {out}");
    let (ok, out, _) = wallet(&url, &ks, &["history", "alice"], None);
    assert!(ok && out.contains(&hash[..10]), "history output: {out}");
    let (ok, out, _) = wallet(&url, &ks, &["list"], None);
    assert!(ok && out.contains("alice") && out.contains("bob") && out.contains("dev0"), "list output: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keystore_password_fails_and_sends_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let ks = tmp.path().join("keystore");
    let (ok, out, err) = wallet(&node.url, &ks, &["import", "--name", "dev1", "--index", "1"], Some(DEV_MNEMONIC));
    assert!(ok, "{out}{err}");
    let pw = tmp.path().join("wrong-password");
    std::fs::write(&pw, "not the password\n").expect("write");
    let pw = pw.to_string_lossy().into_owned();
    let to = taksa_consensus::Address(taksa_consensus::Keypair::from_seed(&[5; 32]).public()).to_bech32("tdev");
    let (ok, out, err) =
        wallet(&node.url, &ks, &["--password-file", &pw, "send", "--from", "dev1", "--to", &to, "--amount", "1"], None);
    assert!(!ok, "a wrong password must fail: {out}");
    assert!(err.to_lowercase().contains("password"), "the error says what is wrong: {err}");
    let client = node.client();
    let info = call(&client, "node_health", params(&[])).await.expect("health");
    assert_eq!(info["mempoolTxs"], 0);
}
