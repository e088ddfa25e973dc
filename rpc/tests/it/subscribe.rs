//! Subscriptions over a real server and the fake backend: backlog then live with no gap or
//! duplicate, each stream's shape, a transaction's status to its end, bad input, the limit on
//! subscriptions per connection, and a client that stops reading being told `lagged`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use taksa_consensus::{BlockEvent, Cursor, Event, Hash};
use taksa_rpc::{Config, FeedItem, RpcServer, TxStatus};

use crate::fake::{addr, alice, bob, transfer, Fake, HRP};
use crate::{assert_alive, http, RawWs};

async fn serve_shared(fake: Arc<Fake>, f: impl FnOnce(Config) -> Config) -> RpcServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    taksa_rpc::start(f(Config::new(addr)), fake).await.expect("server starts")
}

/// A JSON-RPC client over a raw WebSocket that reads notifications in order.
struct Sub {
    ws: RawWs,
    next_id: u64,
}

impl Sub {
    async fn connect(server: &RpcServer) -> Sub {
        Sub { ws: RawWs::connect(server.local_addr).await, next_id: 1 }
    }

    /// Calls `method` and returns the whole reply (result or error).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.ws.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()).await;
        loop {
            let msg = self.recv().await;
            if msg["id"] == id {
                return msg;
            }
        }
    }

    async fn recv(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.ws.recv()).await.expect("a message within 10 s")
    }

    /// The next notification's `result`.
    async fn next(&mut self) -> Value {
        let msg = self.recv().await;
        assert!(msg["method"].is_string(), "expected a notification, got {msg}");
        msg["params"]["result"].clone()
    }

    /// Nothing arrives for `ms`.
    async fn quiet(&mut self, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), self.ws.recv()).await.is_err()
    }
}

fn block_event(height: u64) -> (Cursor, Event) {
    let e = BlockEvent {
        hash: Hash([height as u8; 32]),
        height,
        view: height,
        parent_hash: Hash([height.wrapping_sub(1) as u8; 32]),
        proposer: addr(&bob()),
        timestamp_ms: 1_700_000_000_000 + height * 1000,
        tx_count: 0,
        fees: 0,
        state_root: Hash::ZERO,
    };
    (Cursor::new(height, 0), Event::Block(e))
}

fn heights(items: &[Value]) -> Vec<u64> {
    items.iter().map(|v| v["block"]["height"].as_u64().expect("height")).collect()
}

#[tokio::test]
async fn finalized_from_a_height_gets_the_backlog_then_live_blocks_without_gap_or_duplicate() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake.clone(), |c| c).await;
    let mut sub = Sub::connect(&server).await;
    let reply = sub.call("chain_subscribeFinalized", json!([{"fromHeight": 2}])).await;
    assert!(!reply["result"].is_null(), "{reply}");
    let backlog = vec![sub.next().await, sub.next().await];
    assert_eq!(heights(&backlog), vec![2, 3]);
    assert_eq!(backlog[0]["type"], "block");
    // A feed item carrying blocks already delivered (the seam) is skipped; new ones follow.
    fake.publish(vec![block_event(4)]);
    fake.announce(FeedItem::Committed(Arc::new(vec![block_event(4)])));
    fake.publish(vec![block_event(5)]);
    let live = vec![sub.next().await, sub.next().await];
    assert_eq!(heights(&live), vec![4, 5]);
    assert!(sub.quiet(300).await, "block 4 was not delivered twice");
    // Resuming after block 4's cursor gives block 5 only.
    let mut again = Sub::connect(&server).await;
    let cursor = live[0]["cursor"].clone();
    again.call("chain_subscribeFinalized", json!([{"after": cursor}])).await;
    assert_eq!(heights(&[again.next().await]), vec![5]);
    assert!(again.quiet(300).await);
}

#[tokio::test]
async fn account_activity_says_direction_counterparty_and_balance_after() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake, |c| c).await;
    let mut sub = Sub::connect(&server).await;
    let bob_addr = addr(&bob()).to_bech32(HRP);
    sub.call("account_subscribe", json!([bob_addr, {"fromHeight": 1}])).await;
    // Bob: received 100 at 1:0, sent 5 at 2:0, received 7 at 3:0 (the fake's receipts say
    // sender balance 1, recipient balance 2).
    let items = [sub.next().await, sub.next().await, sub.next().await];
    let summary: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|v| {
            (
                v["direction"].as_str().unwrap_or(""),
                v["amount"].as_str().unwrap_or(""),
                v["balanceAfter"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(summary, vec![("received", "100", "2"), ("sent", "5", "1"), ("received", "7", "2")]);
    assert_eq!(items[0]["counterparty"], addr(&alice()).to_bech32(HRP));
    assert_eq!(items[0]["type"], "activity");
    assert!(sub.quiet(200).await, "blocks and other addresses' transfers are not sent");
}

#[tokio::test]
async fn every_event_in_cursor_order_from_the_start() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake, |c| c).await;
    let mut sub = Sub::connect(&server).await;
    sub.call("events_subscribe", json!([{"fromHeight": 0}])).await;
    let mut kinds = Vec::new();
    for _ in 0..7 {
        let v = sub.next().await;
        kinds.push(format!(
            "{}@{}",
            v["type"].as_str().unwrap_or("?"),
            v["height"].as_u64().or(v["block"]["height"].as_u64()).unwrap_or(99)
        ));
    }
    assert_eq!(kinds, ["transfer@1", "block@1", "transfer@2", "transfer@2", "block@2", "transfer@3", "block@3"]);
}

#[tokio::test]
async fn new_heads_announce_notarized_then_finalized() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake.clone(), |c| c).await;
    let mut sub = Sub::connect(&server).await;
    sub.call("chain_subscribeNewHeads", json!([])).await;
    let mut header = fake.blocks[3].header.clone();
    header.height = 4;
    fake.announce(FeedItem::Notarized(Arc::new(header)));
    let notarized = sub.next().await;
    assert_eq!((notarized["status"].as_str(), notarized["block"]["height"].as_u64()), (Some("notarized"), Some(4)));
    fake.publish(vec![block_event(4)]);
    let finalized = sub.next().await;
    assert_eq!((finalized["status"].as_str(), finalized["block"]["height"].as_u64()), (Some("finalized"), Some(4)));
    assert!(finalized["cursor"].is_string());
}

#[tokio::test]
async fn tx_status_starts_with_the_current_status_and_ends_with_the_final_one() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake.clone(), |c| c).await;
    let tx = transfer(&alice(), &bob(), 1, 3, None);
    let hash: String =
        crate::call(&http(&server), "tx_submit", json!([hex::encode(tx.encode())])).await.expect("submitted");
    let mut sub = Sub::connect(&server).await;
    sub.call("tx_subscribeStatus", json!([hash])).await;
    assert_eq!(sub.next().await["status"], "pending");
    let status =
        TxStatus::Rejected { reason: "nonce_too_low".into(), message: "nonce 3 was used".into(), replaced_by: None };
    fake.drop_tx(tx.hash(), status);
    let last = sub.next().await;
    assert_eq!((last["status"].as_str(), last["reason"].as_str()), (Some("rejected"), Some("nonce_too_low")));
    assert!(sub.quiet(200).await, "the subscription ends with the final status");
    // A finalized transaction's subscription says so at once.
    let done = fake.blocks[1].txs[0].hash().to_hex();
    sub.call("tx_subscribeStatus", json!([done])).await;
    assert_eq!(sub.next().await["status"], "finalized");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_reasons_and_the_connection_keeps_serving() {
    let fake = Arc::new(Fake::new());
    let server = serve_shared(fake, |c| Config { subscriptions_per_connection_max: 2, ..c }).await;
    let mut sub = Sub::connect(&server).await;
    let reason = |v: &Value| {
        (v["error"]["code"].as_i64().unwrap_or(0), v["error"]["data"]["reason"].as_str().unwrap_or("").to_owned())
    };
    let r = sub.call("events_subscribe", json!([{"after": "zz"}])).await;
    assert_eq!(reason(&r), (3003, "bad_cursor".into()));
    let future = "01".to_owned() + &hex::encode(99u64.to_be_bytes()) + "00000000";
    let r = sub.call("events_subscribe", json!([{"after": future}])).await;
    assert_eq!(reason(&r), (3005, "cursor_ahead".into()));
    let r = sub.call("chain_subscribeFinalized", json!([{"fromHeight": 1000}])).await;
    assert_eq!(reason(&r), (3005, "cursor_ahead".into()));
    assert!(r["error"]["message"].as_str().unwrap_or("").contains("the head is 3"), "{r}");
    let r = sub.call("account_subscribe", json!(["tks1notanaddress"])).await;
    assert_eq!(reason(&r), (3001, "bad_address".into()));
    let r = sub.call("tx_subscribeStatus", json!([Hash([9; 32]).to_hex()])).await;
    assert_eq!(reason(&r), (2002, "tx_not_found".into()));
    let r = sub.call("events_subscribe", json!([{"whence": 1}])).await;
    assert_eq!(reason(&r), (-32602, "invalid_params".into()));
    assert!(!sub.call("events_subscribe", json!([])).await["result"].is_null());
    assert!(!sub.call("chain_subscribeFinalized", json!([])).await["result"].is_null());
    let r = sub.call("chain_subscribeNewHeads", json!([])).await;
    assert_eq!(reason(&r), (-32006, "too_many_subscriptions".into()));
    let health = sub.call("node_health", json!([])).await;
    assert_eq!(health["result"]["status"], "ok", "{health}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_told_lagged_with_a_cursor_that_resumes_without_gap() {
    let fake = Arc::new(Fake::new());
    let mut top = 10_003;
    fake.publish((4..=top).map(block_event).collect());
    // A small kernel send buffer, so that what the stalled client can be behind does not depend on
    // this machine's `net.ipv4.tcp_wmem` (some grow a connection's buffer past the whole backlog).
    let server = serve_shared(fake.clone(), |c| Config {
        lag_timeout_ms: 300,
        message_buffer_per_connection: 8,
        send_buffer_bytes: Some(64 * 1024),
        ..c
    })
    .await;
    let mut slow = RawWs::connect_with(server.local_addr, Some(4096)).await;
    slow.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeFinalized", "params": [{"fromHeight": 1}]})
            .to_string(),
    )
    .await;
    // The client reads nothing until the server has given up on it, however slow this machine and
    // however large its socket buffers: blocks keep coming meanwhile. Others are served meanwhile.
    let waited = std::time::Instant::now();
    while lagged_total(&server, "chain_finalized").await == 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the stalled subscriber was never told lagged");
        tokio::time::sleep(Duration::from_millis(100)).await;
        fake.publish((top + 1..=top + 1000).map(block_event).collect());
        top += 1000;
    }
    assert_alive(&http(&server)).await;
    let mut last_height = 0;
    let mut delivered = 0;
    let notice = loop {
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(10), slow.recv()).await else {
            panic!("nothing for 10 s after {delivered} blocks (last height {last_height})");
        };
        let result = &msg["params"]["result"];
        match result["type"].as_str() {
            Some("block") => {
                let h = result["block"]["height"].as_u64().expect("height");
                assert_eq!(h, last_height + 1, "blocks arrive in order with no gap");
                last_height = h;
                delivered += 1;
            }
            Some("lagged") => break result.clone(),
            _ => {}
        }
    };
    assert!(last_height < top, "the slow client was cut off before the end ({delivered} of {top} delivered)");
    let resume = notice["resumeCursor"].as_str().expect("a resume cursor").to_owned();
    assert!(notice["message"].as_str().unwrap_or("").contains("after"), "{notice}");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow.recv()).await.is_err(),
        "nothing follows the lagged notice"
    );
    let mut again = Sub::connect(&server).await;
    again.call("chain_subscribeFinalized", json!([{"after": resume}])).await;
    let next = again.next().await;
    assert_eq!(next["block"]["height"].as_u64(), Some(last_height + 1), "resuming continues right after");
}

/// `taksa_rpc_subscriptions_lagged_total` for `notification`, from `GET /metrics`.
async fn lagged_total(server: &RpcServer, notification: &str) -> u64 {
    let body = crate::http::get(server.local_addr, "/metrics").await.body;
    let series = format!("taksa_rpc_subscriptions_lagged_total{{method=\"{notification}\"}} ");
    body.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.parse().expect("a count"))
}

#[tokio::test]
async fn subscribing_over_plain_http_is_a_documented_error() {
    let server = crate::serve().await;
    let client = crate::http(&server);
    for method in ["chain_subscribeNewHeads", "tx_subscribeStatus"] {
        let params = if method == "tx_subscribeStatus" { json!([format!("0x{}", "11".repeat(32))]) } else { json!([]) };
        let d = crate::assert_error(
            crate::call::<serde_json::Value>(&client, method, params).await,
            -32011,
            "websocket_required",
        );
        assert_eq!(d["method"], method);
    }
}
