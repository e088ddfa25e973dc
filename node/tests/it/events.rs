//! Events against the real `taksa dev` binary: a subscription resumed across a kill -9 and
//! restart with no gap or duplicate, and a client that stops reading told `lagged` while
//! another client keeps its stream.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{json, Value};
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{bin, call, http_get, params, signed_transfer, DevNode};

fn signed(key: &Keypair, to: Address, nonce: u64, genesis: &Hash) -> String {
    signed_transfer(devnet::DEV_CHAIN_ID, key, to, 1 + u128::from(nonce), nonce, None, genesis)
}

async fn submit(node: &DevNode, key: &Keypair, to: Address, nonces: std::ops::Range<u64>) -> Vec<String> {
    let client = node.client();
    let info = call(&client, "chain_getInfo", params(&[])).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesis")).expect("hash");
    let mut hashes = Vec::new();
    for nonce in nonces {
        let raw = signed(key, to, nonce, &genesis);
        let h = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("submitted");
        hashes.push(h.as_str().expect("hash").to_owned());
    }
    hashes
}

fn ws_url(node: &DevNode) -> String {
    node.url.replacen("http://", "ws://", 1)
}

/// Reads `n` activity notifications, with their cursors.
async fn activity(sub: &mut jsonrpsee::core::client::Subscription<Value>, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("a notification within 20 s")
            .expect("the subscription is open")
            .expect("a notification");
        out.push((v["hash"].as_str().expect("hash").to_owned(), v["cursor"].as_str().expect("cursor").to_owned()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_subscription_resumes_across_a_kill_9_and_restart_with_no_gap_or_duplicate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let key = devnet::dev_account(4);
    let to = Address(Keypair::from_seed(&[77; 32]).public());
    let to_s = to.to_bech32("tdev");

    let node = DevNode::start(&data, 100);
    let ws = WsClientBuilder::default().build(ws_url(&node)).await.expect("ws");
    let mut sub = ws
        .subscribe::<Value, _>("account_subscribe", params(&[json!(to_s)]), "account_unsubscribe")
        .await
        .expect("subscribed");
    let mut sent = submit(&node, &key, to, 0..15).await;
    // The client reads ten and remembers the last cursor it saw; the node then dies.
    let first = activity(&mut sub, 10).await;
    let resume = first.last().expect("ten").1.clone();
    node.kill_9();
    drop(ws);

    let node = DevNode::start(&data, 100);
    sent.extend(submit(&node, &key, to, 15..30).await);
    let ws = WsClientBuilder::default().build(ws_url(&node)).await.expect("ws");
    let mut sub = ws
        .subscribe::<Value, _>(
            "account_subscribe",
            params(&[json!(to_s), json!({"after": resume})]),
            "account_unsubscribe",
        )
        .await
        .expect("resubscribed");
    let rest = activity(&mut sub, 20).await;
    let all: Vec<&String> = first.iter().chain(&rest).map(|(h, _)| h).collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(unique.len(), 30, "no duplicate across the restart");
    assert_eq!(all, sent.iter().collect::<Vec<_>>(), "every transfer, in the order sent, no gap");
    let cursors: Vec<&String> = first.iter().chain(&rest).map(|(_, c)| c).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors only increase");
    println!(
        "resumed after {resume} across kill -9: 10 before, 20 after, 30 distinct transfers in order, none missing"
    );
}

/// A WebSocket connection with a tiny receive buffer that the test reads only when it wants.
async fn stalled_ws(addr: SocketAddr, request: &Value) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stream = socket.connect(addr).await.expect("connect");
    let hello = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(hello.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("handshake reply"));
    }
    let text = request.to_string();
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81u8, 0x80 | 126];
    frame.extend_from_slice(&u16::try_from(text.len()).expect("short request").to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.expect("request");
    stream
}

/// `taksa_rpc_subscriptions_lagged_total` for `notification`, from the node's `GET /metrics`.
async fn lagged_total(addr: SocketAddr, notification: &str) -> u64 {
    let reply = http_get(addr, "/metrics").await;
    let series = format!("taksa_rpc_subscriptions_lagged_total{{method=\"{notification}\"}} ");
    reply.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.parse().expect("a count"))
}

/// The next text message on a raw WebSocket, or `None` when nothing comes for `wait`.
async fn next_text(stream: &mut TcpStream, wait: Duration) -> Option<Value> {
    let read = async {
        loop {
            let opcode = stream.read_u8().await.ok()? & 0x0f;
            let len = match stream.read_u8().await.ok()? & 0x7f {
                126 => u64::from(stream.read_u16().await.ok()?),
                127 => stream.read_u64().await.ok()?,
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).ok()?];
            stream.read_exact(&mut payload).await.ok()?;
            if opcode == 1 {
                return serde_json::from_slice(&payload).ok();
            }
            if opcode == 8 {
                return None;
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_told_lagged_and_another_keeps_its_stream() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Ten thousand transfers make a backlog larger than every buffer between node and client; the
    // node's send buffer is set so that this does not depend on the machine's `net.ipv4.tcp_wmem`.
    let node = DevNode::start_with(&tmp.path().join("data"), 200, &["--rpc-send-buffer-bytes", "65536"]);
    let out = Command::new(bin())
        .args(["bench", "--rpc", &node.url, "--accounts", "200", "--txs", "10000", "--concurrency", "32"])
        .output()
        .expect("bench runs");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let addr: SocketAddr = node.url.trim_start_matches("http://").trim_end_matches('/').parse().expect("addr");
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "events_subscribe", "params": [{"fromHeight": 1}]});
    let mut slow = stalled_ws(addr, &request).await;

    // A well-behaved client on another connection reads the same stream meanwhile.
    let ws = WsClientBuilder::default().build(ws_url(&node)).await.expect("ws");
    let mut fast = ws
        .subscribe::<Value, _>("events_subscribe", params(&[json!({"fromHeight": 1})]), "events_unsubscribe")
        .await
        .expect("subscribed");
    let started = Instant::now();
    let mut fast_count = 0u64;
    while started.elapsed() < Duration::from_secs(8) {
        match tokio::time::timeout(Duration::from_millis(500), fast.next()).await {
            Ok(Some(Ok(v))) => {
                assert_ne!(v["type"], "lagged", "the reading client is never cut off");
                fast_count += 1;
            }
            Ok(other) => panic!("the reading client's stream ended: {other:?}"),
            Err(_) => {}
        }
    }
    assert!(fast_count > 10_000, "the reading client got the whole backlog ({fast_count} events)");
    // However slow this machine, the stalled client reads only once the node has given up on it.
    let waited = Instant::now();
    while lagged_total(addr, "events_event").await == 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the stalled subscriber was never told lagged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The stalled client now reads: what was buffered, then the lagged notice, then nothing.
    let mut received = 0u64;
    let notice = loop {
        let msg = next_text(&mut slow, Duration::from_secs(20)).await.expect("messages, then the lagged notice");
        let result = &msg["params"]["result"];
        if result["type"] == "lagged" {
            break result.clone();
        }
        if result.is_object() {
            received += 1;
        }
    };
    assert!(notice["resumeCursor"].is_string(), "{notice}");
    assert!(next_text(&mut slow, Duration::from_millis(500)).await.is_none(), "the subscription ended");
    println!(
        "stalled client: {received} events, then lagged with resumeCursor {}; reading client: {fast_count} events",
        notice["resumeCursor"]
    );
}
