//! Who may reach the server and how long they may hold it: web pages from other sites and
//! rebinding host names are refused, idle WebSockets cannot lock HTTP callers out, and idle
//! connections are closed by the server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{call, http, serve, serve_with};

/// Sends a WebSocket handshake with these headers; returns the status code and the stream.
async fn handshake(addr: SocketAddr, host: &str, origin: Option<&str>) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    let hello = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(hello.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("handshake reply"));
    }
    let status = String::from_utf8_lossy(&head).split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, stream)
}

/// A POST of a `node_health` call with this `Host` and `Origin`; returns the status code.
async fn post(addr: SocketAddr, host: &str, origin: Option<&str>) -> (u16, String) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"node_health","params":[]}"#;
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, text)
}

#[tokio::test]
async fn a_websocket_handshake_from_a_foreign_origin_is_refused() {
    let server = serve().await;
    let addr = server.local_addr;
    let (status, _) = handshake(addr, &addr.to_string(), Some("https://evil.example")).await;
    assert_eq!(status, 403, "a page on another site must not open a WebSocket to the node");
    let (status, _) = handshake(addr, &addr.to_string(), Some(&format!("http://{addr}"))).await;
    assert_eq!(status, 101, "the node's own explorer page may");
    let (status, _) = handshake(addr, &addr.to_string(), Some("http://localhost:3000")).await;
    assert_eq!(status, 101, "a page served from this machine may");
    let (status, _) = handshake(addr, &addr.to_string(), None).await;
    assert_eq!(status, 101, "a client that is not a browser sends no Origin");
    let (status, text) = post(addr, &addr.to_string(), Some("https://evil.example")).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("--rpc-cors"), "the refusal says how to allow it: {text}");

    let allowed = serve_with(|c| taksa_rpc::Config {
        access: taksa_rpc::AccessConfig { cors_origins: vec!["https://wallet.example".into()], ..Default::default() },
        ..c
    })
    .await;
    let (status, text) =
        post(allowed.local_addr, &allowed.local_addr.to_string(), Some("https://wallet.example")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.to_ascii_lowercase().contains("access-control-allow-origin: https://wallet.example"), "{text}");
}

#[tokio::test]
async fn a_request_for_host_evil_example_is_refused() {
    let server = serve().await;
    let addr = server.local_addr;
    // DNS rebinding: evil.example resolves to 127.0.0.1, and the browser names it in Host.
    let (status, text) = post(addr, "evil.example", None).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("--rpc-allowed-hosts"), "the refusal says how to allow it: {text}");
    let (status, _) = handshake(addr, &format!("evil.example:{}", addr.port()), None).await;
    assert_eq!(status, 403);
    for host in [addr.to_string(), format!("localhost:{}", addr.port())] {
        let (status, text) = post(addr, &host, None).await;
        assert_eq!(status, 200, "{host}: {text}");
    }
    let named = serve_with(|c| taksa_rpc::Config {
        access: taksa_rpc::AccessConfig { allowed_hosts: vec!["rpc.example.org".into()], ..Default::default() },
        ..c
    })
    .await;
    assert_eq!(post(named.local_addr, "rpc.example.org", None).await.0, 200);
}

#[tokio::test]
async fn http_answers_within_2_s_while_128_idle_websockets_are_open() {
    let server = serve().await;
    let addr = server.local_addr;
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..128 {
        let (status, stream) = handshake(addr, &addr.to_string(), None).await;
        match status {
            101 => open.push(stream),
            429 => refused += 1,
            other => panic!("handshake answered {other}"),
        }
    }
    assert_eq!(open.len(), taksa_rpc::WS_PER_IP_MAX_DEFAULT as usize, "one address holds at most its share");
    assert_eq!(refused, 128 - open.len());
    let client = http(&server);
    let started = Instant::now();
    let health: Value =
        tokio::time::timeout(Duration::from_secs(2), call(&client, "node_health", Value::Array(vec![])))
            .await
            .expect("HTTP answers within 2 s")
            .expect("node_health");
    assert_eq!(health["status"], "ok");
    eprintln!("node_health answered in {:?} with {} idle WebSockets open", started.elapsed(), open.len());
}

#[tokio::test]
async fn an_idle_websocket_is_closed_by_the_server() {
    let server = serve_with(|c| taksa_rpc::Config { ws_ping_interval_ms: 200, ws_inactive_ms: 500, ..c }).await;
    let addr = server.local_addr;
    let (status, mut stream) = handshake(addr, &addr.to_string(), None).await;
    assert_eq!(status, 101);
    // Never answers the server's pings: after the inactivity limit the server closes it.
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle WebSocket is still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(400), "closed before its inactivity limit");
}

#[tokio::test]
async fn an_idle_http_connection_is_closed_by_the_server() {
    let server = serve_with(|c| taksa_rpc::Config { idle_timeout_ms: 300, ..c }).await;
    let mut stream = TcpStream::connect(server.local_addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "a connection that sends nothing is closed: {read:?}");
}

#[tokio::test]
async fn calls_whose_bodies_never_arrive_hold_at_most_one_address_share() {
    let server = serve().await;
    let addr = server.local_addr;
    // Each sends its headers and promises a body that never comes: the call stays in flight.
    let mut stalled = Vec::new();
    for _ in 0..taksa_rpc::HTTP_PER_IP_MAX_DEFAULT {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head =
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, text) = post(addr, &addr.to_string(), None).await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("calls in flight from this address"), "{text}");
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(addr, &addr.to_string(), None).await.0, 200, "the share is free again once they hang up");
}
