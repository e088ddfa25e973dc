//! The README's wallet walk-through against a real dev chain: import a dev account, create two
//! wallets, fund one, send between them, and check balances, history and status over JSON-RPC,
//! then the payment's receipt and a balance proof with no node.

use std::path::Path;

use serde_json::{json, Value};
use taksa_consensus::tree::{self, Proof, Terminal};
use taksa_consensus::{codec, Account, Hash, Header};

use crate::support::{bin, call, params, wait_status, wallet, DevNode, DEV_MNEMONIC};

fn token<'a>(text: &'a str, prefix: &str, len: Option<usize>) -> Option<&'a str> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == ':')
        .find(|w| w.starts_with(prefix) && len.is_none_or(|l| w.len() == l))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_wallet_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // It keeps a window of state history, so balances are proven at past heights too.
    let node = DevNode::start_with(&tmp.path().join("data"), 100, &["--state-history-blocks", "10000"]);
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
    assert!(
        err.contains("sending 10 TKS from") && err.contains("fee 0.0001 TKS, which creates"),
        "the fee is shown first: {err}"
    );
    assert!(out.contains("finalized at height"), "{out}");
    assert!(!err.contains("cannot follow"), "the wallet follows the status over a WebSocket: {err}");
    let hash = token(&out, "0x", Some(66)).expect("the transaction hash in send's output").to_owned();

    // Bob's account did not exist: alice paid the account-creation fee.
    let creation_fee: u128 = taksa_node::devnet::ACCOUNT_CREATION_FEE;
    let alice_bal = call(&client, "account_getBalance", params(&[json!(alice)])).await.expect("balance");
    assert_eq!(alice_bal, json!((100_000_000_000u128 - 10_000_000_000 - creation_fee).to_string()));
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
    assert!(ok && out.contains("89.9999"), "balance output: {out}");
    let (ok, out, _) = wallet(&url, &ks, &["history", "alice"], None);
    assert!(ok && out.contains(&hash[..10]), "history output: {out}");
    assert!(out.contains(" UTC") && out.contains("20"), "history shows dates: {out}");
    let (ok, out, _) = wallet(&url, &ks, &["list"], None);
    assert!(ok && out.contains("alice") && out.contains("bob") && out.contains("dev0"), "list output: {out}");

    receipts_and_proofs_check_out_with_no_node(&url, &ks, tmp.path(), &hash, &alice, &bob).await;
}

/// The receipt of `hash` (alice paid bob 10 TKS) verifies with only the dev genesis, and not once
/// changed or against another genesis; alice's balance is proven under the head's state root,
/// and under the roots before and after her payment.
async fn receipts_and_proofs_check_out_with_no_node(
    url: &str,
    ks: &Path,
    dir: &Path,
    hash: &str,
    alice: &str,
    bob: &str,
) {
    let (ok, receipt, err) = wallet(url, ks, &["receipt", hash], None);
    assert!(ok, "receipt failed: {err}");
    assert!(err.contains("taksa verify-receipt"), "says how to check it: {err}");
    let file = dir.join("receipt.json");
    std::fs::write(&file, &receipt).expect("write the receipt");
    let dev = ["--dev", "--block-time-ms", "100"];
    let (ok, out, err) = verify_receipt(&file, &dev);
    assert!(ok, "verify-receipt refused a real receipt: {out}{err}");
    assert!(out.contains("valid") && out.contains(alice) && out.contains(bob) && out.contains("10 TKS"), "{out}");
    assert!(out.starts_with("WARNING: the validator keys of the dev chain are public"), "{out}");

    let testnet_genesis = concat!(env!("CARGO_MANIFEST_DIR"), "/../genesis.json");
    let (ok, _, err) = verify_receipt(&file, &["--genesis", testnet_genesis]);
    assert!(!ok && err.contains("is for chain"), "another genesis: {err}");
    let (ok, _, err) = verify_receipt(&file, &["--dev", "--block-time-ms", "200"]);
    assert!(!ok && err.contains("is for chain"), "the dev genesis of another block time: {err}");

    let mut changed: Value = serde_json::from_str(&receipt).expect("receipt JSON");
    changed["index"] = json!(changed["txCount"].as_u64().expect("txCount"));
    std::fs::write(&file, changed.to_string()).expect("write");
    let (ok, _, err) = verify_receipt(&file, &dev);
    assert!(!ok && err.contains("does not prove"), "a receipt moved to another position: {err}");

    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(url).expect("client");
    let (_, balance) = proven_balance(&client, alice, None).await;
    assert_eq!(balance, 100_000_000_000u128 - 10_000_000_000 - taksa_node::devnet::ACCOUNT_CREATION_FEE);
    // The payment's block took 10 TKS and the fee of creating bob's account from alice.
    let status = call(&client, "tx_get", params(&[json!(hash)])).await.expect("tx_get");
    let paid_at = status["height"].as_u64().expect("the payment's height");
    let (at, after) = proven_balance(&client, alice, Some(paid_at)).await;
    let (before_at, before) = proven_balance(&client, alice, Some(paid_at - 1)).await;
    assert_eq!((at, before_at), (paid_at, paid_at - 1));
    assert_eq!(before - after, 10_000_000_000 + taksa_node::devnet::ACCOUNT_CREATION_FEE);
}

/// `account`'s balance proven at `height` (the head when `None`), checked here against the
/// header the node sends: (the header's height, the balance).
async fn proven_balance(
    client: &jsonrpsee::http_client::HttpClient,
    account: &str,
    height: Option<u64>,
) -> (u64, u128) {
    let args = match height {
        Some(h) => params(&[json!(account), json!(h)]),
        None => params(&[json!(account)]),
    };
    let p = call(client, "account_getProof", args).await.expect("account_getProof");
    let h = |v: &Value| Hash::from_hex(v.as_str().expect("hash")).expect("hash");
    let header: Header = codec::decode(
        &hex::decode(p["header"].as_str().expect("header").trim_start_matches("0x")).expect("hex"),
        codec::MESSAGE_BYTES_MAX,
    )
    .expect("header decodes");
    assert_eq!((header.hash(), header.state_root), (h(&p["blockHash"]), h(&p["stateRoot"])));
    let terminal = Terminal::Leaf { key: h(&p["terminal"]["key"]), value_hash: h(&p["terminal"]["valueHash"]) };
    let proof = Proof { siblings: p["siblings"].as_array().expect("siblings").iter().map(h).collect(), terminal };
    let balance: u128 = p["balance"].as_str().expect("balance").parse().expect("a number");
    let account = Account { balance, nonce: p["nonce"].as_u64().expect("nonce") };
    proof
        .verify(&header.state_root, &h(&p["key"]), Some(&tree::account_value_hash(&account)))
        .expect("the proof verifies");
    (header.height, balance)
}

/// Runs `taksa verify-receipt FILE ARGS…`: (success, stdout, stderr).
fn verify_receipt(file: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin()).arg("verify-receipt").arg(file).args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// A JSON-RPC endpoint that claims a huge fee floor, and remembers every `tx_submit`.
async fn hostile_endpoint(
    submitted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> (String, jsonrpsee::server::ServerHandle) {
    use jsonrpsee::server::{RpcModule, Server};
    use taksa_rpc::json::{AccountJson, ChainInfoJson, SyncJson};
    let genesis = taksa_node::devnet::dev_genesis(1000).hash();
    // Answers in the node's own types, so the wallet's typed client reads them.
    let info = ChainInfoJson {
        chain_id: taksa_node::devnet::DEV_CHAIN_ID.to_owned(),
        genesis_hash: genesis.to_hex(),
        address_hrp: taksa_node::devnet::DEV_HRP.to_owned(),
        head_height: 1,
        head_hash: genesis.to_hex(),
        finalized_height: 1,
        finalized_hash: genesis.to_hex(),
        validators: Vec::new(),
        block_time_ms: 500,
        // 1,000,000 TKS: the whole balance of a funded dev account.
        fee_floor: "1000000000000000".to_owned(),
        account_creation_fee: "100000000000000000".to_owned(),
        token_symbol: "TKS".to_owned(),
        token_decimals: 9,
        sync: SyncJson { syncing: false, target_height: None, blocks_per_second: None },
    };
    let account = AccountJson { address: String::new(), balance: "5".to_owned(), nonce: 1, next_nonce: 1, pending: 0 };
    let mut module = RpcModule::new(submitted);
    module.register_method("chain_getInfo", move |_, _, _| json!(info)).expect("register");
    module.register_method("account_getNonce", |_, _, _| json!(0)).expect("register");
    module.register_method("account_get", move |_, _, _| json!(account)).expect("register");
    module
        .register_method("tx_submit", |params, seen, _| {
            let tx: String = params.one().unwrap_or_default();
            seen.lock().expect("lock").push(tx);
            json!(format!("0x{}", "00".repeat(32)))
        })
        .expect("register");
    let server = Server::builder().build("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", server.local_addr().expect("addr"));
    (url, server.start(module))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_rpc_endpoint_that_reports_a_huge_fee_floor_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ks = tmp.path().join("keystore");
    let submitted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (url, _server) = hostile_endpoint(submitted.clone()).await;
    let run = |args: Vec<String>, stdin: Option<&'static str>| {
        let (url, ks) = (url.clone(), ks.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            wallet(&url, &ks, &args, stdin)
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let (ok, _, err) = run(args(&["import", "--name", "dev0", "--index", "0", "--hrp", "tdev"]), Some(DEV_MNEMONIC))
        .await
        .expect("run");
    assert!(ok, "{err}");
    let to = taksa_consensus::Address(taksa_node::devnet::dev_account(1).public()).to_bech32("tdev");

    // The default fee would be the endpoint's "floor": refused before anything is signed.
    let (ok, _, err) = run(args(&["send", "--from", "dev0", "--to", &to, "--amount", "1"]), None).await.expect("run");
    assert!(!ok, "a huge reported floor must not be paid by default");
    assert!(err.contains("of 1000000 TKS, above this wallet's fee cap") && err.contains("--fee"), "{err}");

    // A fee above the cap needs a confirmation, which a script gives with --yes.
    let (ok, _, err) = run(args(&["send", "--from", "dev0", "--to", &to, "--amount", "1", "--fee", "1000000"]), None)
        .await
        .expect("run");
    assert!(!ok, "a fee above the cap is not signed without a confirmation");
    assert!(err.contains("--yes"), "{err}");
    assert!(submitted.lock().expect("lock").is_empty(), "nothing reached the endpoint");

    // A recipient that is no key anyone holds is refused by the wallet too.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let burn = taksa_consensus::Address(taksa_consensus::crypto::PublicKey(identity)).to_bech32("tdev");
    let (ok, _, err) = run(
        args(&["send", "--from", "dev0", "--to", &burn, "--amount", "1", "--fee", "1000000", "--yes", "--no-wait"]),
        None,
    )
    .await
    .expect("run");
    assert!(!ok && err.contains("not a valid ed25519 public key"), "{err}");
    assert!(submitted.lock().expect("lock").is_empty());

    // Confirmed, it is sent, and the fee was shown before signing.
    let (ok, _, err) = run(
        args(&["send", "--from", "dev0", "--to", &to, "--amount", "1", "--fee", "1000000", "--yes", "--no-wait"]),
        None,
    )
    .await
    .expect("run");
    assert!(ok, "{err}");
    assert!(err.contains("fee 1000000 TKS"), "the fee is shown: {err}");
    assert_eq!(submitted.lock().expect("lock").len(), 1);
}

/// The receipt in `docs/receipts.md`'s vector (a dev chain with 100 ms blocks, a block of epoch
/// 1; the set never changed, so it carries no link) verifies with the dev genesis alone, and a
/// change to any of its byte strings breaks it.
#[test]
fn the_documented_receipt_vector_verifies() {
    use taksa_consensus::receipt::{verify, PaymentReceipt};
    let text = include_str!("../../../docs/receipt-vector.json");
    let receipt: PaymentReceipt = serde_json::from_str(text).expect("the vector parses");
    let genesis = taksa_node::devnet::dev_genesis(100);
    let paid = verify(&receipt, &genesis).expect("the vector verifies");
    assert_eq!((paid.height, paid.epoch, receipt.index, receipt.tx_count), (1023, 1, 0, 1));
    assert!(receipt.epochs.is_empty(), "the set never changed: no link");
    let flip = |s: &str, at: usize| -> String {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).expect("ascii")
    };
    let mut broken = Vec::new();
    for at in [2, 40, 120] {
        broken.push(PaymentReceipt { tx: flip(&receipt.tx, at), ..receipt.clone() });
        broken.push(PaymentReceipt { header: flip(&receipt.header, at), ..receipt.clone() });
        broken.push(PaymentReceipt { finalization: flip(&receipt.finalization, at), ..receipt.clone() });
    }
    // The vector's block holds one transaction, so its path is empty; one hash added breaks it.
    let mut path = receipt.tx_path.clone();
    path.push(flip(&receipt.genesis_hash, 10));
    broken.push(PaymentReceipt { tx_path: path, ..receipt.clone() });
    broken.push(PaymentReceipt { genesis_hash: flip(&receipt.genesis_hash, 10), ..receipt.clone() });
    for b in &broken {
        assert!(verify(b, &genesis).is_err(), "a changed receipt verified: {b:?}");
    }
}
