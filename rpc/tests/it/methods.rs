//! Every method's happy path, over HTTP and over WebSocket.

use jsonrpsee::core::client::ClientT;
use serde_json::{json, Value};
use taksa_consensus::block::tx_path_root;
use taksa_consensus::receipt::PaymentReceipt;
use taksa_consensus::tree::{self, Proof, Terminal};
use taksa_consensus::{
    codec, Account, Certificate, Domain, Hash, Header, Keypair, SignedTransaction, ValidatorSet, VoteKind,
};
use taksa_rpc::OPENRPC_JSON;

use crate::fake::{self, addr, alice, bob, validator, Fake, CHAIN_ID, EXPIRED_HASH, FEE_FLOOR, GENESIS_HASH, HRP};
use crate::{assert_error, call, http, serve, ws};

fn bech(k: &taksa_consensus::Keypair) -> String {
    addr(k).to_bech32(HRP)
}

fn tx_hex(t: &SignedTransaction) -> String {
    format!("0x{}", hex::encode(t.encode()))
}

async fn chain_info_reports_head_and_validators(c: &impl ClientT) {
    let fake = Fake::new();
    let head = &fake.blocks[3].header;
    let info: Value = call(c, "chain_getInfo", json!([])).await.expect("chain_getInfo");
    assert_eq!(info["chainId"], CHAIN_ID);
    assert_eq!(info["genesisHash"], GENESIS_HASH.to_hex());
    assert_eq!(info["addressHrp"], HRP);
    assert_eq!(info["headHeight"], 3);
    assert_eq!(info["headHash"], head.hash().to_hex());
    assert_eq!(info["finalizedHeight"], 3);
    assert_eq!(info["finalizedHash"], head.hash().to_hex());
    assert_eq!(info["validators"], json!([{"name": "v0", "address": bech(&validator())}]));
    assert_eq!(info["blockTimeMs"], 1000);
    assert_eq!(info["feeFloor"], FEE_FLOOR.to_string());
    assert_eq!(info["tokenSymbol"], "TKS");
    assert_eq!(info["tokenDecimals"], 9);
}

async fn block_by_height_hash_and_numeric_string_agree(c: &impl ClientT) {
    let fake = Fake::new();
    let b = &fake.blocks[1];
    let by_height: Value = call(c, "chain_getBlock", json!([1])).await.expect("by height");
    let by_hash: Value = call(c, "chain_getBlock", json!([b.hash().to_hex()])).await.expect("by hash");
    let by_string: Value = call(c, "chain_getBlock", json!(["1"])).await.expect("by numeric string");
    let by_name: Value = call(c, "chain_getBlock", json!({"id": 1})).await.expect("by name");
    assert_eq!(by_height, by_hash);
    assert_eq!(by_height, by_string);
    assert_eq!(by_height, by_name);
    assert_eq!(by_height["hash"], b.hash().to_hex());
    assert_eq!(by_height["height"], 1);
    assert_eq!(by_height["view"], 1);
    assert_eq!(by_height["parentHash"], fake.blocks[0].hash().to_hex());
    assert_eq!(by_height["proposer"], bech(&validator()));
    assert_eq!(by_height["timestampMs"], b.header.timestamp_ms);
    assert_eq!(by_height["txRoot"], b.header.tx_root.to_hex());
    assert_eq!(by_height["stateRoot"], b.header.state_root.to_hex());
    assert_eq!(by_height["validatorSetHash"], b.header.validator_set_hash.to_hex());
    assert_eq!(by_height["txCount"], 1);
    assert_eq!(by_height["finalized"], true);
    let t = &b.txs[0];
    assert_eq!(
        by_height["txs"][0],
        json!({
            "hash": t.hash().to_hex(), "chainId": CHAIN_ID, "from": bech(&alice()), "to": bech(&bob()),
            "amount": "100", "fee": FEE_FLOOR.to_string(), "nonce": 0, "validUntilHeight": null,
            "memo": "rent", "signature": t.signature.to_hex(),
        })
    );
    let missing = call::<Value>(c, "chain_getBlock", json!([99])).await;
    let d = assert_error(missing, 2001, "block_not_found");
    assert_eq!(d["id"], 99);
}

async fn account_methods_agree(c: &impl ClientT) {
    let a = bech(&alice());
    let acct: Value = call(c, "account_get", json!([a])).await.expect("account_get");
    let balance: String = call(c, "account_getBalance", json!([a])).await.expect("balance");
    let nonce: u64 = call(c, "account_getNonce", json!({"address": a})).await.expect("nonce");
    assert_eq!(acct["address"], a);
    assert_eq!(acct["balance"], balance);
    assert_eq!(balance, (1_000_000 - 100 + 5 - 7 - 3 * FEE_FLOOR).to_string());
    assert_eq!(acct["nonce"], 3);
    assert_eq!(acct["nextNonce"], nonce);
    assert_eq!(acct["pending"], 0);
    // The fake's cache holds keys with an even first byte: reads of the others take the
    // server's blocking path, and both answer alike.
    let (alice_key, bob_key) = (addr(&alice()), addr(&bob()));
    assert_ne!(alice_key.as_bytes()[0] % 2, bob_key.as_bytes()[0] % 2, "one cached, one read from disk");
    for k in [alice_key, bob_key] {
        let b = k.to_bech32(HRP);
        let acct: Value = call(c, "account_get", json!([b])).await.expect("account_get");
        let balance: String = call(c, "account_getBalance", json!([b])).await.expect("balance");
        let nonce: u64 = call(c, "account_getNonce", json!([b])).await.expect("nonce");
        assert_eq!((acct["balance"].as_str(), acct["nextNonce"].as_u64()), (Some(balance.as_str()), Some(nonce)));
        assert_ne!(balance, "0", "{b} is funded");
    }
    let nobody = taksa_consensus::Address::default().to_bech32(HRP);
    let empty: Value = call(c, "account_get", json!([nobody])).await.expect("unknown account is zero");
    assert_eq!((empty["balance"].as_str(), empty["nonce"].as_u64()), (Some("0"), Some(0)));
}

/// The proof JSON of `address`, checked as a verifier without the node would: the header's
/// bytes hash to `blockHash` and hold `stateRoot`, the finalization certifies that header, and
/// the path leads from the account (or its absence) to the root.
async fn checked_proof(c: &impl ClientT, address: &str) -> Value {
    let p: Value = call(c, "account_getProof", json!([address])).await.expect("account_getProof");
    let bytes = |v: &Value| hex::decode(v.as_str().expect("hex").trim_start_matches("0x")).expect("hex");
    let hash = |v: &Value| Hash::from_hex(v.as_str().expect("a hash")).expect("a hash");
    let header: Header = codec::decode(&bytes(&p["header"]), codec::BLOCK_BYTES_MAX).expect("header decodes");
    assert_eq!(header.hash(), hash(&p["blockHash"]));
    assert_eq!(header.state_root, hash(&p["stateRoot"]));
    assert_eq!(header.height, p["height"].as_u64().expect("height"));
    let cert: Certificate = codec::decode(&bytes(&p["finalization"]), codec::MESSAGE_BYTES_MAX).expect("certificate");
    assert_eq!((cert.kind, cert.block_hash), (VoteKind::Finalize, Some(header.hash())));
    let domain = Domain { chain_id: CHAIN_ID.to_owned(), genesis_hash: GENESIS_HASH, epoch: 0 };
    cert.verify(&domain, &ValidatorSet::new(vec![addr(&validator())])).expect("the finalization verifies");
    let terminal = match &p["terminal"] {
        Value::Null => Terminal::Empty,
        leaf => Terminal::Leaf { key: hash(&leaf["key"]), value_hash: hash(&leaf["valueHash"]) },
    };
    let siblings = p["siblings"].as_array().expect("siblings").iter().map(hash).collect();
    let proof = Proof { siblings, terminal };
    let value_hash = (!p["valueHash"].is_null()).then(|| hash(&p["valueHash"]));
    proof.verify(&header.state_root, &hash(&p["key"]), value_hash.as_ref()).expect("the proof verifies");
    p
}

async fn account_proofs_verify_without_the_node(c: &impl ClientT) {
    let a = bech(&alice());
    let p = checked_proof(c, &a).await;
    let expected = Account { balance: 1_000_000 - 100 + 5 - 7 - 3 * FEE_FLOOR, nonce: 3 };
    assert_eq!(
        (p["exists"].as_bool(), p["balance"].as_str(), p["nonce"].as_u64()),
        (Some(true), Some(&*expected.balance.to_string()), Some(3))
    );
    assert_eq!(p["valueHash"], tree::account_value_hash(&expected).to_hex());
    assert_eq!(p["key"], tree::account_key(&addr(&alice())).to_hex());
    let nobody = taksa_consensus::Address::default().to_bech32(HRP);
    let absent = checked_proof(c, &nobody).await;
    assert_eq!((absent["exists"].as_bool(), absent["valueHash"].is_null()), (Some(false), true));
    // The head's own height is served; any other is refused with what the node can prove.
    let head = p["height"].as_u64().expect("height");
    let again: Value = call(c, "account_getProof", json!([a, head])).await.expect("at the head");
    assert_eq!(again["stateRoot"], p["stateRoot"]);
    let d = assert_error(
        call::<Value>(c, "account_getProof", json!({"address": a, "height": head - 1})).await,
        2003,
        "proof_unavailable",
    );
    assert_eq!((d["headHeight"].as_u64(), d["oldestHeight"].as_u64()), (Some(head), Some(head)));
}

async fn tx_proof_leads_from_the_transaction_to_a_finalized_header(c: &impl ClientT) {
    let fake = Fake::new();
    let (block, tx) = (&fake.blocks[1], &fake.blocks[1].txs[0]);
    let r: PaymentReceipt = call(c, "tx_getProof", json!([tx.hash().to_hex()])).await.expect("tx_getProof");
    assert_eq!((r.format.as_str(), r.index, r.tx_count), ("taksa-receipt/v3", 0, 1));
    assert_eq!(r.tx, tx_hex(tx));
    let path: Vec<Hash> = r.tx_path.iter().map(|h| Hash::from_hex(h).expect("hash")).collect();
    assert_eq!(tx_path_root(&tx.hash(), r.index, r.tx_count, &path), Some(block.header.tx_root));
    // Blocks 2 and 3 lead to the finalized head.
    assert_eq!(r.headers_to_final.len(), 2);
    let last: Header = codec::decode(
        &hex::decode(r.headers_to_final[1].trim_start_matches("0x")).expect("hex"),
        codec::MESSAGE_BYTES_MAX,
    )
    .expect("header");
    let cert: Certificate =
        codec::decode(&hex::decode(r.finalization.trim_start_matches("0x")).expect("hex"), codec::MESSAGE_BYTES_MAX)
            .expect("certificate");
    let domain = Domain { chain_id: CHAIN_ID.to_owned(), genesis_hash: GENESIS_HASH, epoch: 0 };
    cert.verify_finalizes(&last, &domain, &ValidatorSet::new(vec![addr(&validator())])).expect("finalizes the last");
    let unknown = Hash([0x42; 32]).to_hex();
    assert_error(call::<Value>(c, "tx_getProof", json!([unknown])).await, 2002, "tx_not_found");
}

async fn history_pages_newest_first_until_exhausted(c: &impl ClientT) {
    let a = bech(&alice());
    let mut seen: Vec<(u64, u64, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page: Value =
            call(c, "account_getHistory", json!([a, {"limit": 2, "cursor": cursor}])).await.expect("page");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        for i in items {
            seen.push((i["height"].as_u64().expect("h"), i["index"].as_u64().expect("i"), i["direction"].to_string()));
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<(u64, u64, String)> = [(3, 0, "sent"), (2, 1, "self"), (2, 0, "received"), (1, 0, "sent")]
        .iter()
        .map(|(h, i, d)| (*h, *i, format!("\"{d}\"")))
        .collect();
    assert_eq!(seen, expected);
    let whole: Value = call(c, "account_getHistory", json!([a])).await.expect("default page");
    assert_eq!(whole["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(whole["nextCursor"], Value::Null);
    let first = &whole["items"][3];
    assert_eq!(first["from"], a);
    assert_eq!(first["to"], bech(&bob()));
    assert_eq!(first["amount"], "100");
    assert_eq!(first["fee"], FEE_FLOOR.to_string());
    assert_eq!(first["nonce"], 0);
    assert_eq!(first["memo"], "rent");
    assert_eq!(first["timestampMs"], Fake::new().blocks[1].header.timestamp_ms);
}

async fn submit_is_idempotent_and_counts_in_the_nonce(c: &impl ClientT) {
    let nonce: u64 = call(c, "account_getNonce", json!([bech(&bob())])).await.expect("nonce");
    let t = fake::transfer(&bob(), &alice(), 1, nonce, Some("hi"));
    let hash: String = call(c, "tx_submit", json!([tx_hex(&t)])).await.expect("submit");
    assert_eq!(hash, t.hash().to_hex());
    let again: String = call(c, "tx_submit", json!([hex::encode(t.encode())])).await.expect("same bytes again, no 0x");
    assert_eq!(again, hash, "resubmitting the same bytes succeeds with the same hash");
    let next: u64 = call(c, "account_getNonce", json!([bech(&bob())])).await.expect("nonce");
    assert_eq!(next, nonce + 1, "the next nonce counts the pool");
    let status: Value = call(c, "tx_get", json!([hash])).await.expect("tx_get");
    assert_eq!(status["status"], "pending");
    assert_eq!(status["tx"]["memo"], "hi");
    assert!(status.get("height").is_none() && status.get("reason").is_none(), "{status}");
}

async fn tx_get_reports_finalized_and_expired(c: &impl ClientT) {
    let fake = Fake::new();
    let b = &fake.blocks[2];
    let t = &b.txs[1];
    let s: Value = call(c, "tx_get", json!({"hash": t.hash().to_hex()})).await.expect("finalized");
    assert_eq!(s["status"], "finalized");
    assert_eq!((s["height"].as_u64(), s["index"].as_u64()), (Some(2), Some(1)));
    assert_eq!(s["blockHash"], b.hash().to_hex());
    assert_eq!(s["timestampMs"], b.header.timestamp_ms);
    assert_eq!(s["tx"]["hash"], t.hash().to_hex());
    let e: Value = call(c, "tx_get", json!([EXPIRED_HASH.to_hex()])).await.expect("expired");
    assert_eq!(e["status"], "expired");
    assert_eq!(e["reason"], "expired");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("valid until")));
    assert!(e.get("tx").is_none() && e.get("height").is_none());
}

async fn health_and_discover(c: &impl ClientT) {
    let h: Value = call(c, "node_health", json!([])).await.expect("health");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["headHeight"], 3);
    assert_eq!(h["finalizedHeight"], 3);
    assert_eq!(h["peers"], 2);
    assert_eq!(h["syncing"], false);
    assert!(h["mempoolTxs"].is_u64() && h["mempoolBytes"].is_u64());
    let doc: Value = call(c, "rpc.discover", json!([])).await.expect("discover");
    let file: Value = serde_json::from_str(OPENRPC_JSON).expect("openrpc.json");
    assert_eq!(doc, file);
    // Every documented method is registered: none of them is "method not found".
    for m in doc["methods"].as_array().expect("methods") {
        let name = m["name"].as_str().expect("name");
        let outcome = call::<Value>(c, name, json!([])).await;
        assert!(outcome.as_ref().err().is_none_or(|e| e.code() != -32601), "{name} is documented but not served");
    }
}

async fn validator_set_and_pending_votes(c: &impl ClientT) {
    let set: Value = call(c, "validators_getSet", json!([])).await.expect("the current set");
    assert_eq!(set["epoch"], 0);
    assert_eq!((set["firstHeight"].as_u64(), set["lastHeight"].as_u64()), (Some(1), Some(fake::EPOCH_LENGTH)));
    assert_eq!(set["validators"], json!([{"name": "validator-0", "address": bech(&validator())}]));
    assert_eq!((set["quorum"].as_u64(), set["maxFaulty"].as_u64()), (Some(1), Some(0)));
    assert_eq!(set["setHash"], fake::validator_set().hash().to_hex());
    let at_one: Value = call(c, "validators_getSet", json!([1])).await.expect("height 1");
    assert_eq!(at_one, set);
    let err = call::<Value>(c, "validators_getSet", json!([fake::EPOCH_LENGTH * 5])).await.expect_err("not started");
    assert_eq!(err.code(), 2001, "{err:?}");
    let votes: Value = call(c, "validators_getPendingVotes", json!([])).await.expect("pending votes");
    assert_eq!(votes["set"], set);
    assert_eq!(votes["pending"], json!([]));
    let newcomer = bech(&Keypair::from_seed(&[77; 32]));
    let passed = &votes["passed"][0];
    assert_eq!(passed["change"], json!({"kind": "add", "key": newcomer, "name": "newcomer"}));
    assert_eq!((passed["height"].as_u64(), passed["appliesFromEpoch"].as_u64()), (Some(2), Some(1)));
    let change = fake::governance().passed[0].change.clone();
    assert_eq!(passed["id"], change.id().to_hex());
}

async fn every_method_answers(c: &impl ClientT) {
    chain_info_reports_head_and_validators(c).await;
    block_by_height_hash_and_numeric_string_agree(c).await;
    account_methods_agree(c).await;
    account_proofs_verify_without_the_node(c).await;
    tx_proof_leads_from_the_transaction_to_a_finalized_header(c).await;
    history_pages_newest_first_until_exhausted(c).await;
    submit_is_idempotent_and_counts_in_the_nonce(c).await;
    tx_get_reports_finalized_and_expired(c).await;
    health_and_discover(c).await;
    validator_set_and_pending_votes(c).await;
}

#[tokio::test]
async fn every_method_answers_over_http() {
    let server = serve().await;
    every_method_answers(&http(&server)).await;
}

#[tokio::test]
async fn every_method_answers_over_websocket() {
    let server = serve().await;
    every_method_answers(&ws(&server).await).await;
}

#[tokio::test]
async fn submit_maps_rule_breaches_to_codes_with_context() {
    let server = serve().await;
    let c = http(&server);
    let gap = fake::transfer(&alice(), &bob(), 1, 9, None);
    let d = assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&gap)])).await, 1005, "nonce_gap");
    assert_eq!((d["expected"].as_u64(), d["got"].as_u64()), (Some(3), Some(9)));
    let used = fake::transfer(&alice(), &bob(), 1, 0, None);
    assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&used)])).await, 1004, "nonce_too_low");
    let mut forged = fake::transfer(&alice(), &bob(), 1, 3, None);
    forged.tx.amount = 1_000;
    assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&forged)])).await, 1002, "bad_signature");
    let mut cheap = fake::transfer(&alice(), &bob(), 1, 3, None).tx;
    cheap.fee = FEE_FLOOR - 1;
    let cheap = cheap.sign(&alice(), &GENESIS_HASH);
    let d = assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&cheap)])).await, 1007, "fee_below_floor");
    assert_eq!((d["fee"].as_str(), d["floor"].as_str()), (Some("9"), Some("10")), "amounts are decimal strings");
    let mut other = fake::transfer(&alice(), &bob(), 1, 3, None).tx;
    other.chain_id = "elsewhere".to_owned();
    let other = other.sign(&alice(), &GENESIS_HASH);
    let d = assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&other)])).await, 1003, "wrong_chain");
    assert_eq!((d["expected"].as_str(), d["got"].as_str()), (Some(CHAIN_ID), Some("elsewhere")));
    crate::assert_alive(&c).await;
}

#[tokio::test]
async fn full_pool_is_reported_with_its_capacity() {
    let server = serve().await;
    let c = http(&server);
    for nonce in 3..3 + fake::POOL_TXS_MAX as u64 {
        let t = fake::transfer(&alice(), &bob(), 1, nonce, None);
        call::<String>(&c, "tx_submit", json!([tx_hex(&t)])).await.expect("fits in the pool");
    }
    let t = fake::transfer(&alice(), &bob(), 1, 3 + fake::POOL_TXS_MAX as u64, None);
    let d = assert_error(call::<String>(&c, "tx_submit", json!([tx_hex(&t)])).await, 1101, "pool_full");
    assert_eq!(d["txsMax"], fake::POOL_TXS_MAX);
    let acct: Value = call(&c, "account_get", json!([bech(&alice())])).await.expect("account");
    assert_eq!(acct["pending"], fake::POOL_TXS_MAX);
}

#[tokio::test]
async fn server_stops_on_request() {
    let server = serve().await;
    let addr = server.local_addr;
    server.stop().expect("first stop");
    server.stopped().await;
    assert!(server.stop().is_err(), "stopping a stopped server reports that it already stopped");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after stop");
}

#[test]
fn expired_fixture_hash_is_not_a_real_transaction() {
    // Guards the fixture: the helper's expired hash must not collide with a real one.
    assert!(Fake::new().blocks.iter().all(|b| b.txs.iter().all(|t| t.hash() != EXPIRED_HASH)));
    assert_ne!(EXPIRED_HASH, Hash::ZERO);
}
