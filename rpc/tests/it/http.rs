//! Plain HTTP on the JSON-RPC port: `/health`, `/ready`, `/metrics` and the explorer's files,
//! next to JSON-RPC over `POST` and WebSocket, which must keep working.

use std::net::SocketAddr;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake::{addr, validator, Fake, HRP};
use crate::{call, http, raw_post, serve, serve_fake, ws, RawWs};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP response read off the wire.
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request without a body, on a fresh connection the server closes after replying.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Reply { status, headers, body: body.to_owned() }
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path).await
}

fn validator_labels() -> String {
    format!("{{validator=\"validator-0\",address=\"{}\"}}", addr(&validator()).to_bech32(HRP))
}

#[tokio::test]
async fn health_answers_ok_as_json() {
    let server = serve().await;
    let reply = get(server.local_addr, "/health").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_is_200_for_a_synced_node_with_peers() {
    let server = serve().await;
    let reply = get(server.local_addr, "/ready").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"ready": true, "syncing": false, "peers": 2, "storageWritable": true}));
}

#[tokio::test]
async fn ready_is_503_with_the_problem_while_syncing() {
    let server = serve_fake(Fake::syncing_full_node()).await;
    let reply = get(server.local_addr, "/ready").await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert_eq!((body["ready"].as_bool(), body["syncing"].as_bool()), (Some(false), Some(true)), "{body}");
    assert_eq!((body["peers"].as_u64(), body["storageWritable"].as_bool()), (Some(0), Some(true)), "{body}");
    // A node without p2p needs no peers, so syncing is the only problem.
    let problems = body["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{body}");
    assert!(problems[0].as_str().is_some_and(|p| p.starts_with("syncing: ") && p.len() > 20), "{body}");
}

#[tokio::test]
async fn metrics_expose_the_node_figures_in_openmetrics_text() {
    let server = serve().await;
    let reply = get(server.local_addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    let text = &reply.body;
    // OpenMetrics names a counter's family without `_total`; its samples carry the suffix.
    for name in [
        "taksa_block_height",
        "taksa_transactions_finalized",
        "taksa_mempool_size",
        "taksa_mempool_bytes",
        "taksa_peers",
        "taksa_consensus_view",
        "taksa_consensus_timeouts",
        "taksa_validator_missed_blocks",
        "taksa_validator_signed_blocks",
        "taksa_storage_bytes",
        "taksa_syncing",
        "taksa_rpc_requests",
        "taksa_rpc_request_duration_seconds",
    ] {
        assert!(text.contains(&format!("\n# TYPE {name} ")), "{name} missing:\n{text}");
    }
    let labels = validator_labels();
    for line in [
        "taksa_block_height{status=\"head\"} 3".to_owned(),
        "taksa_block_height{status=\"finalized\"} 3".to_owned(),
        "taksa_transactions_finalized_total 4".to_owned(),
        "taksa_mempool_size 0".to_owned(),
        "taksa_peers 2".to_owned(),
        "taksa_consensus_view 12".to_owned(),
        "taksa_consensus_timeouts_total 2".to_owned(),
        "taksa_storage_bytes 123456".to_owned(),
        "taksa_syncing 0".to_owned(),
        format!("taksa_validator_missed_blocks{labels} 0"),
        format!("taksa_validator_signed_blocks{labels} 3"),
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// The `taksa_rpc_requests_total` value for these labels, if the series exists.
fn requests(text: &str, method: &str, outcome: &str) -> Option<u64> {
    let prefix = format!("taksa_rpc_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.parse().expect("a count"))
}

#[tokio::test]
async fn rpc_calls_are_counted_with_bounded_method_labels() {
    let server = serve().await;
    let client = http(&server);
    for _ in 0..2 {
        call::<Value>(&client, "chain_getInfo", json!([])).await.expect("chain_getInfo");
    }
    call::<Value>(&client, "made_up_method_4d1f", json!([])).await.expect_err("unknown method");
    let text = get(server.local_addr, "/metrics").await.body;
    assert_eq!(requests(&text, "chain_getInfo", "ok"), Some(2), "{text}");
    assert_eq!(requests(&text, "unknown", "error"), Some(1), "{text}");
    assert_eq!(requests(&text, "chain_getInfo", "error"), None, "{text}");
    assert!(text.contains("taksa_rpc_request_duration_seconds_count{method=\"chain_getInfo\"} 2\n"), "{text}");
    assert!(
        text.contains("taksa_rpc_request_duration_seconds_bucket{le=\"+Inf\",method=\"chain_getInfo\"} 2\n"),
        "{text}"
    );
    assert!(!text.contains("made_up_method"), "a client-chosen name became a label:\n{text}");
}

#[tokio::test]
async fn websocket_batch_and_failed_calls_are_counted() {
    let server = serve().await;
    let w = ws(&server).await;
    call::<Value>(&w, "node_info", json!([])).await.expect("node_info over WebSocket");
    call::<Value>(&w, "chain_getBlock", json!(["not a block id"])).await.expect_err("invalid params");
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "node_health", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "node_health", "params": []},
    ]);
    let (status, reply) = raw_post(server.local_addr, batch.to_string().as_bytes()).await;
    assert_eq!((status, reply.as_array().map(Vec::len)), (200, Some(3)), "{reply}");
    let text = get(server.local_addr, "/metrics").await.body;
    assert_eq!(requests(&text, "node_info", "ok"), Some(1), "{text}");
    assert_eq!(requests(&text, "chain_getBlock", "error"), Some(1), "{text}");
    assert_eq!(requests(&text, "node_health", "ok"), Some(2), "{text}");
    assert_eq!(requests(&text, "unknown", "error"), Some(1), "{text}");
}

#[tokio::test]
async fn explorer_files_are_served_with_their_types_and_csp() {
    let server = serve().await;
    let index = include_str!("../../explorer/index.html");
    let files = [
        ("/", "text/html; charset=utf-8", index),
        ("/index.html", "text/html; charset=utf-8", index),
        ("/app.js", "text/javascript; charset=utf-8", include_str!("../../explorer/app.js")),
        ("/style.css", "text/css; charset=utf-8", include_str!("../../explorer/style.css")),
        ("/favicon.svg", "image/svg+xml", include_str!("../../explorer/favicon.svg")),
    ];
    for (path, content_type, body) in files {
        let reply = get(server.local_addr, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        let a = server.local_addr;
        let csp = format!("default-src 'self'; connect-src 'self' ws://{a} wss://{a}; frame-ancestors 'none'");
        assert_eq!(reply.header("content-security-policy"), Some(csp.as_str()), "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.body, body, "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_text() {
    let server = serve().await;
    for path in ["/nope", "/health/", "/metrics.txt", "/../../etc/passwd", "/explorer/index.html"] {
        let reply = get(server.local_addr, path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"), "{path}");
        assert!(reply.body.starts_with("not found"), "{path}: {}", reply.body);
    }
}

#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let server = serve().await;
    let reply = request(server.local_addr, "HEAD", "/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some(r#"{"status":"ok"}"#.len().to_string().as_str()));
    assert_eq!(reply.body, "");
    assert_eq!(request(server.local_addr, "HEAD", "/nope").await.status, 404);
}

#[tokio::test]
async fn websocket_upgrade_on_root_still_reaches_json_rpc() {
    let server = serve().await;
    let w = ws(&server).await;
    let info: Value = call(&w, "chain_getInfo", json!([])).await.expect("chain_getInfo over WebSocket");
    assert_eq!(info["headHeight"], 3);
    let mut raw = RawWs::connect(server.local_addr).await;
    raw.send(r#"{"jsonrpc":"2.0","id":5,"method":"node_health","params":[]}"#).await;
    let reply = raw.recv().await;
    assert_eq!((reply["id"].as_u64(), reply["result"]["status"].as_str()), (Some(5), Some("ok")), "{reply}");
}

#[tokio::test]
async fn post_stays_json_rpc_and_other_methods_are_refused() {
    let server = serve().await;
    let (status, reply) = raw_post(server.local_addr, br#"{"jsonrpc":"2.0","id":1,"method":"chain_getInfo"}"#).await;
    assert_eq!((status, reply["result"]["headHeight"].as_u64()), (200, Some(3)), "{reply}");
    let info: Value = call(&http(&server), "chain_getInfo", json!([])).await.expect("chain_getInfo over HTTP");
    assert_eq!(info["headHeight"], 3);
    for method in ["PUT", "DELETE"] {
        let reply = request(server.local_addr, method, "/health").await;
        assert_eq!(reply.status, 405, "{method}: {}", reply.body);
    }
}
