//! Integration tests of the RPC server: a real server on 127.0.0.1:0 over an in-memory backend,
//! called over HTTP and WebSocket with jsonrpsee's clients and with raw HTTP for malformed input.

mod access;
mod errors;
mod explorer;
mod fake;
mod http;
mod methods;
mod network;
mod subscribe;
mod typed;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use taksa_rpc::{Config, RpcServer};

use crate::fake::Fake;

/// Parameters given as any JSON value (array, object), including malformed shapes.
pub(crate) struct Params(pub Value);

impl ToRpcParams for Params {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

/// A server over a fresh fake backend with the default limits.
pub(crate) async fn serve() -> RpcServer {
    serve_with(|c| c).await
}

/// A server whose config is adjusted by `f`.
pub(crate) async fn serve_with(f: impl FnOnce(Config) -> Config) -> RpcServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    taksa_rpc::start(f(Config::new(addr)), Arc::new(Fake::new())).await.expect("server starts")
}

/// A server with the default limits over `fake`.
pub(crate) async fn serve_fake(fake: Fake) -> RpcServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    taksa_rpc::start(Config::new(addr), Arc::new(fake)).await.expect("server starts")
}

pub(crate) fn http(server: &RpcServer) -> HttpClient {
    HttpClientBuilder::default().build(format!("http://{}", server.local_addr)).expect("http client")
}

pub(crate) async fn ws(server: &RpcServer) -> WsClient {
    WsClientBuilder::default().build(format!("ws://{}", server.local_addr)).await.expect("ws client")
}

/// Calls `method`; a JSON-RPC error comes back as `Err`, any other failure panics.
pub(crate) async fn call<T: DeserializeOwned>(
    client: &impl ClientT,
    method: &str,
    params: Value,
) -> Result<T, ErrorObjectOwned> {
    match client.request::<T, _>(method, Params(params)).await {
        Ok(v) => Ok(v),
        Err(ClientError::Call(e)) => Err(e),
        Err(e) => panic!("{method}: transport failure: {e}"),
    }
}

/// The error's `data` as JSON.
pub(crate) fn data(e: &ErrorObjectOwned) -> Value {
    e.data().map(|d| serde_json::from_str(d.get()).expect("data is JSON")).unwrap_or(Value::Null)
}

/// Asserts the code and `data.reason` of a failed call, and returns `data`.
pub(crate) fn assert_error<T: std::fmt::Debug>(result: Result<T, ErrorObjectOwned>, code: i32, reason: &str) -> Value {
    let e = result.expect_err("the call must fail");
    let d = data(&e);
    assert_eq!((e.code(), d["reason"].as_str()), (code, Some(reason)), "error was {e:?}");
    d
}

/// The server still answers on this client.
pub(crate) async fn assert_alive(client: &impl ClientT) {
    let health: Value = call(client, "node_health", Value::Array(vec![])).await.expect("node_health after an error");
    assert_eq!(health["status"], "ok");
}

/// A raw HTTP/1.1 POST of `body`; returns the status and the body parsed as JSON.
pub(crate) async fn raw_post(addr: SocketAddr, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer and close before reading all of an oversized body.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())))
}

/// A minimal WebSocket client over raw TCP, for what jsonrpsee's client will not send or
/// survive (it drops the connection on a reply with a null id).
pub(crate) struct RawWs(TcpStream);

impl RawWs {
    pub(crate) async fn connect(addr: SocketAddr) -> RawWs {
        RawWs::connect_with(addr, None).await
    }

    /// Connects with the socket's receive buffer set to `recv_buffer_bytes` when given (a tiny
    /// one makes a client that does not read fill the server's buffers quickly).
    pub(crate) async fn connect_with(addr: SocketAddr, recv_buffer_bytes: Option<u32>) -> RawWs {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(bytes) = recv_buffer_bytes {
            socket.set_recv_buffer_size(bytes).expect("buffer size");
        }
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
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        RawWs(stream)
    }

    /// Sends one masked text frame (clients must mask; the mask is fixed, which is allowed).
    pub(crate) async fn send(&mut self, text: &str) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81u8];
        match text.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).await.expect("send frame");
    }

    /// The next text message, parsed as JSON; other frames are skipped.
    pub(crate) async fn recv(&mut self) -> Value {
        loop {
            let opcode = self.0.read_u8().await.expect("frame header") & 0x0f;
            let len = match self.0.read_u8().await.expect("frame length") & 0x7f {
                126 => u64::from(self.0.read_u16().await.expect("length")),
                127 => self.0.read_u64().await.expect("length"),
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).expect("fits")];
            self.0.read_exact(&mut payload).await.expect("payload");
            if opcode == 1 {
                return serde_json::from_slice(&payload).expect("a JSON message");
            }
            assert_ne!(opcode, 8, "the server closed the connection");
        }
    }
}
