//! The explorer methods against the fake chain (genesis, then blocks 1..3 with 1, 2 and 1
//! transactions): search, recent blocks, stats and validators, and their refusals.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{json, Value};
use taksa_consensus::Hash;

use crate::fake::{self, addr, alice, bob, validator, Fake, FEE_FLOOR, HRP};
use crate::{assert_error, call, http, serve, ws};

/// An event cursor as the server encodes it: version 1, height and index big-endian, in hex.
fn event_cursor(height: u64, index: u32) -> String {
    format!("01{height:016x}{index:08x}")
}

/// The summary the explorer must show for the fake's block at `height`.
fn summary(fake: &Fake, height: usize) -> Value {
    let b = &fake.blocks[height];
    let h = &b.header;
    json!({
        "hash": b.hash().to_hex(),
        "height": h.height,
        "view": h.view,
        "parentHash": h.parent_hash.to_hex(),
        "proposer": h.proposer.to_bech32(HRP),
        "timestampMs": h.timestamp_ms,
        "txCount": b.txs.len(),
        "fees": (FEE_FLOOR * b.txs.len() as u128).to_string(),
        "stateRoot": h.state_root.to_hex(),
        "cursor": event_cursor(h.height, b.txs.len() as u32),
    })
}

async fn search(c: &impl jsonrpsee::core::client::ClientT, query: &str) -> Value {
    call(c, "explorer_search", json!([query])).await.unwrap_or_else(|e| panic!("search {query:?}: {e:?}"))
}

/// Asserts an `invalid_params` refusal whose message says what the search box accepts.
fn assert_unsearchable(result: Result<Value, ErrorObjectOwned>, query: &str) {
    let e = result.as_ref().err().cloned();
    let d = assert_error(result, -32602, "invalid_params");
    assert_eq!(d["param"], "query", "{query:?}");
    let message = e.map(|e| e.message().to_owned()).unwrap_or_default();
    assert!(message.contains("search accepts") && message.contains("64 hex digits"), "{query:?}: {message}");
}

#[tokio::test]
async fn search_by_height_returns_the_block_summary() {
    let server = serve().await;
    let c = http(&server);
    let fake = Fake::new();
    for height in 0..=3 {
        let found = search(&c, &height.to_string()).await;
        assert_eq!(found, json!({"kind": "block", "block": summary(&fake, height)}), "height {height}");
    }
    let padded: Value = call(&c, "explorer_search", json!({"query": "  2\n"})).await.expect("by name, padded");
    assert_eq!(padded, json!({"kind": "block", "block": summary(&fake, 2)}), "whitespace is trimmed");
}

#[tokio::test]
async fn search_by_block_hash_with_or_without_0x_returns_the_block_summary() {
    let server = serve().await;
    let c = http(&server);
    let fake = Fake::new();
    let hash = fake.blocks[2].hash().to_hex();
    let expected = json!({"kind": "block", "block": summary(&fake, 2)});
    assert_eq!(search(&c, &hash).await, expected);
    assert_eq!(search(&c, &hash[2..]).await, expected, "64 hex digits without 0x");
    assert_eq!(search(&c, &hash.to_uppercase().replacen("0X", "0x", 1)).await, expected, "upper-case hex");
}

#[tokio::test]
async fn search_by_tx_hash_returns_the_same_object_as_tx_get() {
    let server = serve().await;
    let c = http(&server);
    let fake = Fake::new();
    let hash = fake.blocks[2].txs[1].hash().to_hex();
    let status: Value = call(&c, "tx_get", json!([hash])).await.expect("tx_get");
    let found = search(&c, &hash).await;
    assert_eq!(found, json!({"kind": "tx", "tx": status}));
    assert_eq!((found["tx"]["status"].as_str(), found["tx"]["height"].as_u64()), (Some("finalized"), Some(2)));

    let nonce: u64 = call(&c, "account_getNonce", json!([addr(&bob()).to_bech32(HRP)])).await.expect("nonce");
    let pooled = fake::transfer(&bob(), &alice(), 1, nonce, None);
    let bytes = format!("0x{}", hex::encode(pooled.encode()));
    let hash: String = call(&c, "tx_submit", json!([bytes])).await.expect("submit");
    let found = search(&c, &hash).await;
    assert_eq!((found["kind"].as_str(), found["tx"]["status"].as_str()), (Some("tx"), Some("pending")));
}

#[tokio::test]
async fn search_by_address_returns_the_same_object_as_account_get() {
    let server = serve().await;
    let c = http(&server);
    let a = addr(&alice()).to_bech32(HRP);
    let account: Value = call(&c, "account_get", json!([a])).await.expect("account_get");
    let expected = json!({"kind": "address", "address": a, "account": account});
    assert_eq!(search(&c, &a).await, expected);
    assert_eq!(search(&c, &a.to_uppercase()).await, expected, "an all-upper-case address reads the same");
}

#[tokio::test]
async fn search_for_an_unknown_hash_is_not_found() {
    let server = serve().await;
    let c = http(&server);
    let hash = Hash([0x55; 32]).to_hex();
    let found = search(&c, &hash).await;
    assert_eq!((found["kind"].as_str(), found["query"].as_str()), (Some("notFound"), Some(hash.as_str())));
    assert!(found["message"].as_str().is_some_and(|m| m.contains(&hash)), "{found}");
    assert_eq!(found.as_object().map(|o| o.len()), Some(3), "only kind, query and message: {found}");
}

#[tokio::test]
async fn search_beyond_the_head_is_not_found_naming_the_head() {
    let server = serve().await;
    let c = http(&server);
    for query in ["4", "18446744073709551615", "99999999999999999999999"] {
        let found = search(&c, query).await;
        assert_eq!((found["kind"].as_str(), found["query"].as_str()), (Some("notFound"), Some(query)));
        let message = found["message"].as_str().unwrap_or_default();
        assert!(message.contains("the head is at height 3"), "{query}: {message}");
    }
}

#[tokio::test]
async fn empty_search_query_is_invalid_params() {
    let server = serve().await;
    let c = http(&server);
    for query in ["", "   \t"] {
        assert_unsearchable(call::<Value>(&c, "explorer_search", json!([query])).await, query);
    }
    let missing = call::<Value>(&c, "explorer_search", json!([])).await;
    assert_eq!(assert_error(missing, -32602, "invalid_params")["param"], "query");
}

#[tokio::test]
async fn garbage_search_query_is_invalid_params_saying_what_search_accepts() {
    let server = serve().await;
    let c = http(&server);
    let too_long = "1".repeat(257);
    for query in ["hello", "0x12", "-1", "1.5", "tks", "block 5", too_long.as_str()] {
        assert_unsearchable(call::<Value>(&c, "explorer_search", json!([query])).await, query);
    }
    let not_a_string = call::<Value>(&c, "explorer_search", json!([5])).await;
    assert_eq!(assert_error(not_a_string, -32602, "invalid_params")["param"], "query");
    crate::assert_alive(&c).await;
}

#[tokio::test]
async fn search_for_another_networks_address_is_bad_address() {
    let server = serve().await;
    let c = http(&server);
    let foreign = addr(&alice()).to_bech32("tdev");
    let result = call::<Value>(&c, "explorer_search", json!([foreign])).await;
    let message = result.as_ref().err().map(|e| e.message().to_owned()).unwrap_or_default();
    let d = assert_error(result, 3001, "bad_address");
    assert_eq!((d["hrp"].as_str(), d["got"].as_str()), (Some(HRP), Some("tdev")));
    assert!(message.contains("`tdev`") && message.contains("`tks`"), "{message}");
}

#[tokio::test]
async fn recent_blocks_lists_newest_first_without_genesis() {
    let server = serve().await;
    let c = http(&server);
    let fake = Fake::new();
    let expected = json!({
        "blocks": [summary(&fake, 3), summary(&fake, 2), summary(&fake, 1)],
        "nextBeforeHeight": null,
    });
    let positional: Value = call(&c, "explorer_recentBlocks", json!([])).await.expect("no options");
    let named: Value = call(&c, "explorer_recentBlocks", json!({"options": {}})).await.expect("empty options");
    assert_eq!(positional, expected);
    assert_eq!(named, expected);
}

#[tokio::test]
async fn recent_blocks_pages_down_with_next_before_height() {
    let server = serve().await;
    let c = http(&server);
    let fake = Fake::new();
    let first: Value = call(&c, "explorer_recentBlocks", json!([{"limit": 2}])).await.expect("first page");
    assert_eq!(first, json!({"blocks": [summary(&fake, 3), summary(&fake, 2)], "nextBeforeHeight": 2}));
    let second: Value =
        call(&c, "explorer_recentBlocks", json!([{"limit": 2, "beforeHeight": 2}])).await.expect("second page");
    assert_eq!(second, json!({"blocks": [summary(&fake, 1)], "nextBeforeHeight": null}));
    let below_one: Value =
        call(&c, "explorer_recentBlocks", json!([{"beforeHeight": 1}])).await.expect("below the first block");
    assert_eq!(below_one, json!({"blocks": [], "nextBeforeHeight": null}));
}

#[tokio::test]
async fn recent_blocks_refuses_limit_zero_and_over_one_hundred() {
    let server = serve().await;
    let c = http(&server);
    for limit in [json!(0), json!(101), json!(-1), json!("5"), json!(2.5)] {
        let result = call::<Value>(&c, "explorer_recentBlocks", json!([{"limit": limit}])).await;
        let d = assert_error(result, -32602, "invalid_params");
        assert_eq!((d["param"].as_str(), d["limitMax"].as_u64()), (Some("limit"), Some(100)), "{limit}");
    }
    let most: Value = call(&c, "explorer_recentBlocks", json!([{"limit": 100}])).await.expect("limit 100");
    assert_eq!(most["blocks"].as_array().map(Vec::len), Some(3));
    let bad_before = call::<Value>(&c, "explorer_recentBlocks", json!([{"beforeHeight": "3"}])).await;
    assert_eq!(assert_error(bad_before, -32602, "invalid_params")["param"], "beforeHeight");
}

#[tokio::test]
async fn explorer_options_refuse_unknown_keys() {
    let server = serve().await;
    let c = http(&server);
    let typo = call::<Value>(&c, "explorer_recentBlocks", json!([{"limt": 5}])).await;
    assert_eq!(assert_error(typo, -32602, "invalid_params")["expected"], json!(["limit", "beforeHeight"]));
    let typo = call::<Value>(&c, "explorer_getStats", json!([{"windw": 5}])).await;
    assert_eq!(assert_error(typo, -32602, "invalid_params")["expected"], json!(["window"]));
    let not_object = call::<Value>(&c, "explorer_getStats", json!([5])).await;
    assert_error(not_object, -32602, "invalid_params");
}

#[tokio::test]
async fn stats_cover_the_window_and_the_totals() {
    let server = serve().await;
    let c = http(&server);
    // Blocks 1..3 are one second apart and hold 4 transactions: 4 over 2 s.
    let all: Value = call(&c, "explorer_getStats", json!([])).await.expect("default window");
    let expected = json!({
        "windowBlocks": 3, "windowTxs": 4, "tps": 2.0, "blockTimeMs": 1000.0, "finalityLagMs": 150.0,
        "headHeight": 3, "finalizedHeight": 3, "totalTxs": 4, "totalAccounts": 2, "validators": 1, "mempoolTxs": 0,
    });
    assert_eq!(all, expected);
    assert!(all["tps"].is_number() && all["blockTimeMs"].is_number(), "rates are JSON numbers");
    let one: Value = call(&c, "explorer_getStats", json!({"options": {"window": 1}})).await.expect("window 1");
    let figures = |v: &Value| (v["windowBlocks"].as_u64(), v["windowTxs"].as_u64(), v["tps"].as_f64());
    assert_eq!(figures(&one), (Some(1), Some(1), Some(0.0)), "one block spans no time: {one}");
    assert_eq!(one["totalTxs"], 4, "totals do not depend on the window");
}

#[tokio::test]
async fn stats_refuse_window_zero_and_over_one_thousand() {
    let server = serve().await;
    let c = http(&server);
    for window in [0, 1001] {
        let result = call::<Value>(&c, "explorer_getStats", json!([{"window": window}])).await;
        let d = assert_error(result, -32602, "invalid_params");
        assert_eq!((d["param"].as_str(), d["windowMax"].as_u64()), (Some("window"), Some(1000)), "{window}");
    }
    let widest: Value = call(&c, "explorer_getStats", json!([{"window": 1000}])).await.expect("window 1000");
    assert_eq!(widest["windowBlocks"], 3);
}

#[tokio::test]
async fn validators_report_their_signing_records_and_take_no_params() {
    let server = serve().await;
    let c = http(&server);
    let list: Value = call(&c, "explorer_getValidators", json!([])).await.expect("validators");
    let expected = json!([{
        "name": "validator-0", "address": addr(&validator()).to_bech32(HRP), "signed": 3, "missed": 0,
        "proposed": 3, "lastSignedHeight": 3, "lastSeenMs": 1_700_000_003_000u64,
    }]);
    assert_eq!(list, expected);
    let extra = call::<Value>(&c, "explorer_getValidators", json!([{}])).await;
    assert_error(extra, -32602, "invalid_params");
}

#[tokio::test]
async fn explorer_answers_the_same_over_websocket() {
    let server = serve().await;
    let (h, w) = (http(&server), ws(&server).await);
    let fake = Fake::new();
    let calls = [
        ("explorer_search", json!(["2"])),
        ("explorer_search", json!([fake.blocks[1].txs[0].hash().to_hex()])),
        ("explorer_search", json!([addr(&bob()).to_bech32(HRP)])),
        ("explorer_recentBlocks", json!([{"limit": 2}])),
        ("explorer_getStats", json!([{"window": 2}])),
        ("explorer_getValidators", json!([])),
    ];
    for (method, params) in calls {
        let over_http: Value = call(&h, method, params.clone()).await.expect("over HTTP");
        let over_ws: Value = call(&w, method, params.clone()).await.expect("over WebSocket");
        assert_eq!(over_http, over_ws, "{method} {params}");
    }
}
