//! Integration tests of the RPC server: a real server on 127.0.0.1:0 over an in-memory backend,
//! called over HTTP and WebSocket with jsonrpsee's clients and with raw HTTP for malformed input.

mod errors;
mod fake;
mod methods;

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
