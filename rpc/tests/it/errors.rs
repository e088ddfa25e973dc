//! Bad input of every kind gets a specific error code and `data.reason`, and the server keeps
//! serving afterwards.

use serde_json::{json, Value};
use taksa_consensus::codec::TX_BYTES_MAX;
use taksa_consensus::Hash;

use crate::fake::{self, addr, alice, bob, HRP};
use crate::{assert_alive, assert_error, call, http, raw_post, serve, serve_with, ws, RawWs};

fn alice_bech() -> String {
    addr(&alice()).to_bech32(HRP)
}

#[tokio::test]
async fn malformed_json_gets_parse_error_and_server_keeps_serving() {
    let server = serve().await;
    for body in [&b"{\"jsonrpc\":"[..], b"not json at all", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"] {
        let (status, reply) = raw_post(server.local_addr, body).await;
        assert!(
            status == 200 || status == 400,
            "a body that is not JSON gets a JSON-RPC reply, HTTP {status}: {reply}"
        );
        assert_eq!(reply["error"]["code"], -32700, "{reply}");
        assert_eq!(reply["id"], Value::Null);
    }
    let (status, reply) = raw_post(server.local_addr, br#"{"jsonrpc":"2.0","id":7,"method":"node_health"}"#).await;
    assert_eq!((status, reply["result"]["status"].as_str()), (200, Some("ok")), "{reply}");
    assert_alive(&http(&server)).await;
}

#[tokio::test]
async fn unknown_method_has_a_reason_over_http_and_websocket() {
    let server = serve().await;
    let h = http(&server);
    let w = ws(&server).await;
    let d = assert_error(call::<Value>(&h, "chain_getBlocks", json!([])).await, -32601, "method_not_found");
    assert_eq!(d["method"], "chain_getBlocks");
    assert_error(call::<Value>(&w, "eth_blockNumber", json!([])).await, -32601, "method_not_found");
    assert_alive(&h).await;
    assert_alive(&w).await;
}

#[tokio::test]
async fn batch_answers_each_call_and_names_unknown_methods() {
    let server = serve().await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "node_health", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "account_getBalance", "params": [alice_bech()]},
    ]);
    let (status, reply) = raw_post(server.local_addr, batch.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    let replies = reply.as_array().expect("a batch answer is an array");
    let by_id = |id: u64| replies.iter().find(|r| r["id"] == id).expect("reply for every id");
    assert_eq!(by_id(1)["result"]["status"], "ok");
    assert_eq!(by_id(2)["error"]["code"], -32601);
    assert_eq!(by_id(2)["error"]["data"]["reason"], "method_not_found");
    assert!(by_id(3)["result"].is_string());
}

#[tokio::test]
async fn batch_over_the_limit_is_refused_whole() {
    let server = serve().await;
    let calls: Vec<Value> = (0..=taksa_rpc::BATCH_CALLS_MAX)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "node_health", "params": []}))
        .collect();
    let (_, reply) = raw_post(server.local_addr, Value::Array(calls).to_string().as_bytes()).await;
    assert_eq!(reply["error"]["code"], -32010, "{reply}");
    assert_alive(&http(&server)).await;
}

#[tokio::test]
async fn wrong_param_types_and_shapes_are_invalid_params() {
    let server = serve().await;
    let c = http(&server);
    let cases: Vec<(&str, Value)> = vec![
        ("account_get", json!([42])),
        ("account_get", json!([])),
        ("account_get", json!([alice_bech(), "extra"])),
        ("account_get", json!({"adress": alice_bech()})),
        ("account_getHistory", json!([alice_bech(), {"limit": "ten"}])),
        ("account_getHistory", json!([alice_bech(), {"limit": 0}])),
        ("account_getHistory", json!([alice_bech(), {"cursor": 5}])),
        ("account_getHistory", json!([alice_bech(), {"page": 2}])),
        ("account_getHistory", json!([alice_bech(), "cursor"])),
        ("tx_submit", json!([{"tx": "00"}])),
        ("tx_get", json!([true])),
        ("chain_getInfo", json!([1])),
        ("node_health", json!("not params")),
    ];
    for (method, params) in cases {
        let outcome = call::<Value>(&c, method, params.clone()).await;
        let e = outcome.as_ref().expect_err("must fail");
        assert_eq!(e.code(), -32602, "{method} {params}: {e:?}");
        assert_eq!(crate::data(e)["reason"], "invalid_params", "{method} {params}");
    }
    assert_alive(&c).await;
}

#[tokio::test]
async fn bad_values_get_their_specific_codes() {
    let server = serve().await;
    let c = ws(&server).await;
    let other_net = addr(&alice()).to_bech32("xyz");
    let mut typo: Vec<char> = alice_bech().chars().collect();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    for a in [other_net, typo, "tks1".to_owned(), String::new()] {
        let d = assert_error(call::<Value>(&c, "account_get", json!([a])).await, 3001, "bad_address");
        assert_eq!(d["hrp"], HRP);
    }
    for h in ["0x1234", "zz", &format!("0x{}", "g".repeat(64))] {
        assert_error(call::<Value>(&c, "tx_get", json!([h])).await, 3002, "bad_hash");
    }
    assert_error(call::<Value>(&c, "chain_getBlock", json!(["latest"])).await, 3004, "bad_block_id");
    assert_error(call::<Value>(&c, "chain_getBlock", json!([-3])).await, 3004, "bad_block_id");
    assert_error(call::<Value>(&c, "chain_getBlock", json!(["0xabc"])).await, 3002, "bad_hash");
    let unknown = Hash([0x42; 32]).to_hex();
    let d = assert_error(call::<Value>(&c, "tx_get", json!([unknown])).await, 2002, "tx_not_found");
    assert_eq!(d["hash"], unknown);
    assert_alive(&c).await;
}

#[tokio::test]
async fn tampered_or_foreign_cursor_is_bad_cursor() {
    let server = serve().await;
    let c = http(&server);
    let page: Value = call(&c, "account_getHistory", json!([alice_bech(), {"limit": 1}])).await.expect("page");
    let cursor = page["nextCursor"].as_str().expect("more pages").to_owned();
    let mut bumped = cursor.clone();
    bumped.replace_range(0..2, "ff");
    for bad in [bumped, cursor[..cursor.len() - 1].to_owned(), "eyJoIjozfQ==".to_owned(), String::new()] {
        let outcome = call::<Value>(&c, "account_getHistory", json!([alice_bech(), {"cursor": bad}])).await;
        assert_error(outcome, 3003, "bad_cursor");
    }
    let ok: Value = call(&c, "account_getHistory", json!([alice_bech(), {"cursor": cursor}])).await.expect("good");
    assert_eq!(ok["items"][0]["height"], 2, "the issued cursor still works after the failures");
}

#[tokio::test]
async fn undecodable_truncated_and_oversized_tx_hex_are_refused() {
    let server = serve().await;
    let c = http(&server);
    let good = hex::encode(fake::transfer(&alice(), &bob(), 1, 3, None).encode());
    let truncated = good[..good.len() - 10].to_owned();
    let trailing = format!("{good}00");
    for bad in ["0xnothex".to_owned(), "abc".to_owned(), truncated, trailing, String::new(), "0x".to_owned()] {
        assert_error(call::<String>(&c, "tx_submit", json!([bad])).await, 1001, "bad_encoding");
    }
    let big = "ab".repeat(TX_BYTES_MAX + 1);
    let d = assert_error(call::<String>(&c, "tx_submit", json!([big])).await, 1011, "too_large");
    assert_eq!(d["bytesMax"], TX_BYTES_MAX);
    let hash: String = call(&c, "tx_submit", json!([good])).await.expect("the valid one still goes in");
    assert!(hash.starts_with("0x") && hash.len() == 66);
}

#[tokio::test]
async fn oversized_request_gets_413_and_server_keeps_serving() {
    let server = serve().await;
    let padding = "a".repeat(taksa_rpc::REQUEST_BYTES_MAX_DEFAULT as usize + 1);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tx_submit", "params": [padding]}).to_string();
    let (status, reply) = raw_post(server.local_addr, body.as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(reply["error"]["code"], -32007, "{reply}");
    assert_alive(&http(&server)).await;
}

#[tokio::test]
async fn oversized_websocket_message_gets_an_error_and_the_connection_survives() {
    let server = serve_with(|c| taksa_rpc::Config { request_bytes_max: 4096, ..c }).await;
    let mut ws = RawWs::connect(server.local_addr).await;
    let padding = "a".repeat(8192);
    ws.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tx_submit", "params": [padding]}).to_string()).await;
    let reply = ws.recv().await;
    assert_eq!(reply["error"]["code"], -32007, "{reply}");
    ws.send("{not json").await;
    let reply = ws.recv().await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    ws.send(r#"{"jsonrpc":"2.0","id":2,"method":"node_health","params":[]}"#).await;
    let reply = ws.recv().await;
    assert_eq!((reply["id"].as_u64(), reply["result"]["status"].as_str()), (Some(2), Some("ok")), "{reply}");
}

#[tokio::test]
async fn response_over_the_limit_is_an_error_with_a_reason() {
    let server = serve_with(|c| taksa_rpc::Config { response_bytes_max: 300, ..c }).await;
    let c = http(&server);
    let d = assert_error(call::<Value>(&c, "rpc.discover", json!([])).await, -32008, "response_too_large");
    assert_eq!(d["bytesMax"], 300);
    assert_alive(&c).await;
}
