//! The typed client ([`TaksaApiClient`], generated from the same definition as the server)
//! reads every answer and every kind of notification exactly as the server sent it: each typed
//! value serializes back to the raw JSON answer, so no field is lost, renamed or re-typed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::client::Subscription;
use serde::Serialize;
use serde_json::{json, Value};
use taksa_consensus::Hash;
use taksa_rpc::api::{
    BlockRef, HeadBlockJson, HeadStatusJson, HistoryOptions, NotificationJson, Param, RecentBlocksOptions, SearchJson,
    StatsOptions, StreamOptions, TaksaApiClient, TxStateJson,
};
use taksa_rpc::{Config, FeedItem};

use crate::fake::{addr, alice, bob, transfer, Fake, EXPIRED_HASH, HRP};
use crate::{call, http, serve, ws};

/// Asserts that `typed` is the raw answer to `method` with `params`, field for field.
async fn same_as_raw<T: Serialize>(server: &taksa_rpc::RpcServer, typed: T, method: &str, params: Value) {
    let raw: Value = call(&http(server), method, params.clone()).await.expect("the raw call succeeds");
    assert_eq!(serde_json::to_value(&typed).expect("serializes"), raw, "{method} {params}");
}

#[tokio::test]
async fn typed_client_reads_every_method_answer_as_sent() {
    let server = serve().await;
    let c = http(&server);
    let alice_addr = addr(&alice()).to_bech32(HRP);
    let final_tx = Fake::new().blocks[1].txs[0].hash().to_hex();

    let info = c.chain_get_info().await.expect("chain_getInfo");
    same_as_raw(&server, &info, "chain_getInfo", json!([])).await;
    let by_height = c.chain_get_block(Param::new(BlockRef::Height(2))).await.expect("chain_getBlock");
    assert_eq!(by_height.txs.len(), 2);
    same_as_raw(&server, &by_height, "chain_getBlock", json!([2])).await;
    let by_hash = c.chain_get_block(Param::new(BlockRef::Hash(by_height.hash.clone()))).await.expect("by hash");
    assert_eq!(by_hash, by_height);

    let account = c.account_get(Param::new(alice_addr.clone())).await.expect("account_get");
    same_as_raw(&server, &account, "account_get", json!([alice_addr])).await;
    let balance = c.account_get_balance(Param::new(alice_addr.clone())).await.expect("account_getBalance");
    assert_eq!(balance, account.balance);
    let nonce = c.account_get_nonce(Param::new(alice_addr.clone())).await.expect("account_getNonce");
    assert_eq!(nonce, account.next_nonce);
    let options = HistoryOptions { limit: Some(2), ..HistoryOptions::default() };
    let page = c
        .account_get_history(Param::new(alice_addr.clone()), Some(Param::new(options)))
        .await
        .expect("account_getHistory");
    assert_eq!(page.items.len(), 2);
    assert!(page.next_cursor.is_some(), "alice has more than two transfers");
    same_as_raw(&server, &page, "account_getHistory", json!([alice_addr, {"limit": 2}])).await;
    let all = c.account_get_history(Param::new(alice_addr.clone()), None).await.expect("default page");
    assert_eq!(all.items.len(), 4, "no options is the default page");

    let status = c.tx_get(Param::new(final_tx.clone())).await.expect("tx_get");
    assert_eq!(status.status, TxStateJson::Finalized);
    same_as_raw(&server, &status, "tx_get", json!([final_tx])).await;
    let expired = c.tx_get(Param::new(EXPIRED_HASH.to_hex())).await.expect("an expired tx");
    assert_eq!(expired.status, TxStateJson::Expired);
    same_as_raw(&server, &expired, "tx_get", json!([EXPIRED_HASH.to_hex()])).await;
    let tx = transfer(&alice(), &bob(), 1, 3, None);
    let hash = c.tx_submit(Param::new(hex::encode(tx.encode()))).await.expect("tx_submit");
    assert_eq!(hash, tx.hash().to_hex());
    let pending = c.tx_get(Param::new(hash.clone())).await.expect("pending");
    assert_eq!(pending.status, TxStateJson::Pending);
    same_as_raw(&server, &pending, "tx_get", json!([hash])).await;

    same_as_raw(&server, c.node_health().await.expect("node_health"), "node_health", json!([])).await;
    same_as_raw(&server, c.node_info().await.expect("node_info"), "node_info", json!([])).await;
    same_as_raw(&server, c.node_peers().await.expect("node_peers"), "node_peers", json!([])).await;
    let status = c.consensus_get_status().await.expect("consensus_getStatus");
    same_as_raw(&server, status, "consensus_getStatus", json!([])).await;
    let evidence = c.consensus_get_evidence(None).await.expect("consensus_getEvidence");
    assert!(!evidence.is_empty());
    same_as_raw(&server, evidence, "consensus_getEvidence", json!([])).await;
    let one = c.consensus_get_evidence(Some(Param::new(1))).await.expect("one piece");
    assert_eq!(one.len(), 1);

    for query in ["2".to_owned(), final_tx.clone(), alice_addr.clone(), Hash([9; 32]).to_hex()] {
        let found = c.explorer_search(Param::new(query.clone())).await.expect("explorer_search");
        same_as_raw(&server, &found, "explorer_search", json!([query])).await;
    }
    let kind = |s: SearchJson| match s {
        SearchJson::Block { .. } => "block",
        SearchJson::Tx { .. } => "tx",
        SearchJson::Address { .. } => "address",
        SearchJson::NotFound { .. } => "notFound",
    };
    assert_eq!(kind(c.explorer_search(Param::new(final_tx)).await.expect("tx")), "tx");
    assert_eq!(kind(c.explorer_search(Param::new(Hash([9; 32]).to_hex())).await.expect("none")), "notFound");
    let options = RecentBlocksOptions { limit: Some(2), before_height: None };
    let recent = c.explorer_recent_blocks(Some(Param::new(options))).await.expect("explorer_recentBlocks");
    assert_eq!(recent.blocks.len(), 2);
    same_as_raw(&server, recent, "explorer_recentBlocks", json!([{"limit": 2}])).await;
    let stats = c.explorer_get_stats(Some(Param::new(StatsOptions { window: Some(3) }))).await.expect("stats");
    same_as_raw(&server, stats, "explorer_getStats", json!([{"window": 3}])).await;
    let validators = c.explorer_get_validators().await.expect("explorer_getValidators");
    same_as_raw(&server, validators, "explorer_getValidators", json!([])).await;
    let doc = c.rpc_discover().await.expect("rpc.discover");
    assert_eq!(doc["openrpc"], "1.2.6");
}

#[tokio::test]
async fn a_batch_submission_answers_each_transaction_in_order() {
    let server = serve().await;
    let c = http(&server);
    let a = transfer(&alice(), &bob(), 1, 3, None);
    let b = transfer(&bob(), &alice(), 1, 1, None);
    let txs = vec![hex::encode(a.encode()), "0xzz".to_owned(), hex::encode(b.encode())];
    let outcomes = c.tx_submit_batch(Param::new(txs.clone())).await.expect("tx_submitBatch");
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].hash.as_deref(), Some(a.hash().to_hex().as_str()));
    let refused = outcomes[1].error.as_ref().expect("bad hex is refused");
    assert_eq!(refused.data.as_ref().map(|d| d["reason"].clone()), Some(json!("bad_encoding")));
    assert_eq!(outcomes[2].hash.as_deref(), Some(b.hash().to_hex().as_str()));
    let again = c.tx_submit_batch(Param::new(txs[..1].to_vec())).await.expect("again");
    same_as_raw(&server, &again, "tx_submitBatch", json!([[txs[0]]])).await;
    let empty = c.tx_submit_batch(Param::new(Vec::new())).await.expect("an empty batch");
    assert!(empty.is_empty());

    let not_a_list: Result<Value, _> = call(&c, "tx_submitBatch", json!(["0x00"])).await;
    let e = not_a_list.expect_err("txs must be an array");
    assert_eq!((e.code(), crate::data(&e)["param"].clone()), (-32602, json!("txs")));
    let too_many = vec![txs[0].clone(); taksa_rpc::TX_SUBMIT_BATCH_MAX + 1];
    let e = call::<Value>(&c, "tx_submitBatch", json!([too_many])).await.expect_err("over the limit");
    assert_eq!(crate::data(&e)["itemsMax"], json!(taksa_rpc::TX_SUBMIT_BATCH_MAX));
}

#[tokio::test]
async fn typed_client_gets_the_servers_own_errors() {
    let server = serve().await;
    let c = http(&server);
    let reason = |e: jsonrpsee::core::ClientError| match e {
        jsonrpsee::core::ClientError::Call(obj) => {
            let data: Value = serde_json::from_str(obj.data().expect("data").get()).expect("JSON data");
            (obj.code(), data["reason"].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("expected an error answer, got {other}"),
    };
    let bad = c.account_get(Param::new("tks1nope".to_owned())).await.expect_err("a bad address");
    assert_eq!(reason(bad).1, "bad_address");
    let unknown = c.tx_get(Param::new(Hash([9; 32]).to_hex())).await.expect_err("unknown");
    assert_eq!(reason(unknown).1, "tx_not_found");
    let big = c.consensus_get_evidence(Some(Param::new(100_000))).await.expect_err("over the limit");
    assert_eq!(reason(big), (-32602, "invalid_params".to_owned()));
}

/// The next notification, within 10 s.
async fn next(sub: &mut Subscription<NotificationJson>) -> NotificationJson {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a notification within 10 s")
        .expect("the subscription is open")
        .expect("a notification the typed client reads")
}

#[tokio::test]
async fn typed_client_reads_every_kind_of_notification() {
    let fake = Arc::new(Fake::new());
    let addr_: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let server = taksa_rpc::start(Config::new(addr_), fake.clone()).await.expect("server starts");
    let c = ws(&server).await;
    let from_start = || Some(Param::new(StreamOptions { after: None, from_height: Some(1) }));

    let mut events = c.subscribe_events(from_start()).await.expect("events_subscribe");
    assert!(matches!(next(&mut events).await, NotificationJson::Transfer(t) if t.height == 1));
    assert!(matches!(next(&mut events).await, NotificationJson::Block(b) if b.block.height == 1));

    let mut finalized = c.subscribe_finalized(from_start()).await.expect("chain_subscribeFinalized");
    assert!(matches!(next(&mut finalized).await, NotificationJson::Block(b) if b.block.height == 1));

    let alice_addr = addr(&alice()).to_bech32(HRP);
    let mut activity = c.subscribe_account(Param::new(alice_addr), from_start()).await.expect("account_subscribe");
    assert!(matches!(next(&mut activity).await, NotificationJson::Activity(a) if a.height == 1 && a.amount == "100"));

    let mut heads = c.subscribe_new_heads(None).await.expect("chain_subscribeNewHeads");
    let mut header = fake.blocks[3].header.clone();
    header.height = 4;
    fake.announce(FeedItem::Notarized(Arc::new(header)));
    match next(&mut heads).await {
        NotificationJson::Head(h) => {
            assert_eq!(h.status, HeadStatusJson::Notarized);
            assert!(matches!(h.block, HeadBlockJson::Notarized(b) if b.height == 4));
        }
        other => panic!("expected a head, got {other:?}"),
    }

    let done = fake.blocks[1].txs[0].hash().to_hex();
    let mut status = c.subscribe_tx_status(Param::new(done)).await.expect("tx_subscribeStatus");
    assert!(matches!(next(&mut status).await, NotificationJson::Status(s) if s.status == TxStateJson::Finalized));
}
