//! Taksa's JSON-RPC 2.0 server: HTTP and WebSocket on one port, for wallets, explorers and
//! operators.
//!
//! Bird's-eye view:
//! - [`backend`]: the [`Backend`] trait the node implements over its storage and mempool; this
//!   crate knows neither.
//! - `methods`: one table of method names and handlers (`chain_`, `account_`, `tx_`, `node_`,
//!   `consensus_`, `rpc.discover`), each reading strict parameters and returning camelCase JSON with amounts
//!   as decimal strings.
//! - `subscribe`: WebSocket subscriptions (heads, finalized blocks, an address's activity, a
//!   transaction's status, every event) that start from a cursor, read the backlog from storage
//!   and follow the live feed with no gap or duplicate; a client that stops reading is told
//!   `lagged` with its resume cursor.
//! - `cursor`: the opaque event and history cursors.
//! - `explorer`: the `explorer_` methods (search, recent blocks, stats, validators).
//! - `http`: plain `GET` on the same port for operators and browsers: `/health`, `/ready`,
//!   `/metrics` and the web explorer's files (`explorer/`, compiled in). `POST` and WebSocket
//!   upgrades pass through to JSON-RPC.
//! - `metrics`: the Prometheus exposition: the node's figures read at scrape time, and every
//!   JSON-RPC call counted and timed by method (`middleware::Metered`).
//! - `middleware`: per-call layers: metrics, and `data.reason` for jsonrpsee's own errors.
//! - [`error`]: the stable error codes; every failure carries `data.reason`.
//! - `openrpc.json` (served by `rpc.discover`) and `docs/rpc.md` describe every method and code;
//!   `docs/operators.md` the HTTP endpoints and metrics; tests keep them in step with the code.
//!
//! Limits: request and response bytes, connections, calls per batch, and backend calls in flight
//! are all bounded; an oversized or malformed request gets an error and the server keeps serving.

mod access;
pub mod api;
pub mod backend;
mod cursor;
pub mod error;
mod explorer;
mod http;
pub mod json;
mod methods;
mod metrics;
mod middleware;
mod params;
mod serve;
mod subscribe;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, PingConfig, Server, ServerConfig, ServerHandle};
use tokio::sync::Semaphore;
use tower::Service as _;

pub use access::AccessConfig;
pub use backend::{
    AccountInfo, AccountProof, Backend, BackendError, BlockId, BlockRecord, ChainInfo, ChainStats, ConsensusStatus,
    EventFilter, FeedItem, HealthInfo, HistoryEntry, HistoryFilter, HistoryOrder, HistoryPage, HistoryQuery, NodeInfo,
    NodeMetrics, NodeRole, PeerRecord, Readiness, SubmitError, SyncInfo, TxProof, TxRecord, TxStatus, ValidatorRecord,
};
pub use error::{ErrorCode, RpcError};

/// The OpenRPC 1.2.6 document that `rpc.discover` returns.
pub const OPENRPC_JSON: &str = include_str!("../openrpc.json");

/// The default request size limit, in bytes (a transaction is at most 1 KiB; this leaves room
/// for batches).
pub const REQUEST_BYTES_MAX_DEFAULT: u32 = 256 * 1024;
/// The default response size limit, in bytes (a full block of small transactions fits).
pub const RESPONSE_BYTES_MAX_DEFAULT: u32 = 16 * 1024 * 1024;
/// The most transactions one `tx_submitBatch` call carries (256 KiB of requests holds about 600
/// transfers as hex).
pub const TX_SUBMIT_BATCH_MAX: usize = 512;
/// `tx_submitBatch` calls running at once; more wait their turn.
const BATCH_SUBMISSIONS_IN_FLIGHT_MAX: usize = 2;
/// The default number of simultaneous WebSocket sessions.
pub const CONNECTIONS_MAX_DEFAULT: u32 = 128;
/// The default number of WebSocket sessions from one client address.
pub const WS_PER_IP_MAX_DEFAULT: u32 = 32;
/// The default number of HTTP calls in flight, whatever the WebSockets hold.
pub const HTTP_IN_FLIGHT_MAX_DEFAULT: u32 = 256;
/// The default number of HTTP calls in flight from one client address.
pub const HTTP_PER_IP_MAX_DEFAULT: u32 = 64;
/// The default number of open TCP connections, and from one client address.
pub const TCP_MAX_DEFAULT: u32 = 1024;
/// See [`TCP_MAX_DEFAULT`].
pub const TCP_PER_IP_MAX_DEFAULT: u32 = 128;
/// The default time between the server's pings on a WebSocket.
pub const WS_PING_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// The default time a WebSocket may answer nothing (not even a ping) before it is closed.
pub const WS_INACTIVE_MS_DEFAULT: u64 = 60_000;
/// The default time an HTTP connection may stay open with no request in flight.
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 60_000;
/// The most calls one batch request may hold.
pub const BATCH_CALLS_MAX: u32 = 64;
/// The most backend calls running at once; further calls wait their turn.
pub const BACKEND_CALLS_IN_FLIGHT_MAX: usize = 32;
/// The default number of subscriptions one WebSocket connection may hold.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX_DEFAULT: u32 = 16;
/// The default number of messages buffered per connection for a client that reads slowly.
pub const MESSAGE_BUFFER_PER_CONNECTION_DEFAULT: u32 = 256;
/// The default time a subscriber may leave its buffer full before it is told `lagged`.
pub const LAG_TIMEOUT_MS_DEFAULT: u64 = 5_000;

/// How to run the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where to listen (the node defaults to `127.0.0.1`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// The largest request accepted, in bytes; larger ones get error -32007.
    pub request_bytes_max: u32,
    /// The largest response sent, in bytes; larger ones become error -32008.
    pub response_bytes_max: u32,
    /// The most simultaneous WebSocket sessions; further upgrades get HTTP 429.
    pub connections_max: u32,
    /// The most WebSocket sessions from one client address; further upgrades get HTTP 429.
    pub ws_per_ip_max: u32,
    /// The most HTTP calls in flight; further ones get HTTP 429. WebSockets do not count.
    pub http_in_flight_max: u32,
    /// The most HTTP calls in flight from one client address; further ones get HTTP 429.
    pub http_per_ip_max: u32,
    /// The most open TCP connections in all, and from one client address; further ones are
    /// closed at once.
    pub tcp_max: u32,
    /// See `tcp_max`.
    pub tcp_per_ip_max: u32,
    /// Time between the server's WebSocket pings.
    pub ws_ping_interval_ms: u64,
    /// How long a WebSocket may send nothing, not even a pong, before it is closed.
    pub ws_inactive_ms: u64,
    /// How long an HTTP connection may stay open with no request in flight.
    pub idle_timeout_ms: u64,
    /// Which host names and web origins may reach the node ([`AccessConfig`]).
    pub access: AccessConfig,
    /// The most subscriptions one connection may hold; more get error -32006.
    pub subscriptions_per_connection_max: u32,
    /// Messages buffered per connection while the client is not reading.
    pub message_buffer_per_connection: u32,
    /// How long a subscriber's buffer may stay full before it is told `lagged` and closed.
    pub lag_timeout_ms: u64,
    /// The kernel's send buffer per connection, in bytes. `None` leaves it to the kernel, which
    /// grows it up to `net.ipv4.tcp_wmem`'s maximum (4 MiB on most machines, more on some). A
    /// smaller buffer holds less memory per slow client and notices it sooner: a subscriber is
    /// told `lagged` once this buffer and `message_buffer_per_connection` are both full.
    pub send_buffer_bytes: Option<u32>,
}

impl Config {
    /// Listens on `addr` with the default limits.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            ws_per_ip_max: WS_PER_IP_MAX_DEFAULT,
            http_in_flight_max: HTTP_IN_FLIGHT_MAX_DEFAULT,
            http_per_ip_max: HTTP_PER_IP_MAX_DEFAULT,
            tcp_max: TCP_MAX_DEFAULT,
            tcp_per_ip_max: TCP_PER_IP_MAX_DEFAULT,
            ws_ping_interval_ms: WS_PING_INTERVAL_MS_DEFAULT,
            ws_inactive_ms: WS_INACTIVE_MS_DEFAULT,
            idle_timeout_ms: IDLE_TIMEOUT_MS_DEFAULT,
            access: AccessConfig::default(),
            subscriptions_per_connection_max: SUBSCRIPTIONS_PER_CONNECTION_MAX_DEFAULT,
            message_buffer_per_connection: MESSAGE_BUFFER_PER_CONNECTION_DEFAULT,
            lag_timeout_ms: LAG_TIMEOUT_MS_DEFAULT,
            send_buffer_bytes: None,
        }
    }
}

/// A running server. Dropping it stops the server, so the node keeps it for its lifetime.
#[derive(Debug)]
pub struct RpcServer {
    /// The address actually bound (useful when the configured port was 0).
    pub local_addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// Asks the server to stop accepting and close its connections.
    pub fn stop(&self) -> Result<(), RpcError> {
        self.handle.stop().map_err(|_| RpcError::AlreadyStopped)
    }

    /// Resolves once the server has stopped and closed every connection (the future does not
    /// borrow the server, so a supervisor can watch it).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let handle = self.handle.clone();
        async move { handle.stopped().await }
    }
}

/// Binds `config.addr` and serves every method over HTTP and WebSocket, and the operator
/// endpoints and web explorer over plain HTTP `GET`, until stopped.
pub async fn start(config: Config, backend: Arc<dyn Backend>) -> Result<RpcServer, RpcError> {
    let openrpc: serde_json::Value = serde_json::from_str(OPENRPC_JSON)?;
    let signatures = Arc::new(params::Signatures::from_openrpc(&openrpc));
    let hrp = backend.chain_info().address_hrp;
    let calls = Arc::new(Semaphore::new(BACKEND_CALLS_IN_FLIGHT_MAX));
    let lag_timeout = std::time::Duration::from_millis(config.lag_timeout_ms);
    let lagged = metrics::LaggedCounter::default();
    let ctx = methods::Ctx {
        backend: backend.clone(),
        hrp: hrp.clone(),
        openrpc,
        calls: calls.clone(),
        batch_calls: Arc::new(Semaphore::new(BATCH_SUBMISSIONS_IN_FLIGHT_MAX)),
        lag_timeout,
        lagged: lagged.clone(),
    };
    let module = methods::module(Arc::new(ctx))?;
    let names: Arc<HashSet<&'static str>> = Arc::new(module.method_names().collect());
    let rpc_metrics = Arc::new(metrics::RpcMetrics::new(names.clone(), lagged));

    let server_config = ServerConfig::builder()
        .max_request_body_size(config.request_bytes_max)
        .max_response_body_size(config.response_bytes_max)
        .max_subscriptions_per_connection(config.subscriptions_per_connection_max)
        .set_message_buffer_capacity(config.message_buffer_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(BATCH_CALLS_MAX))
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(std::time::Duration::from_millis(config.ws_ping_interval_ms))
                .inactive_limit(std::time::Duration::from_millis(config.ws_inactive_ms))
                .max_failures(1),
        )
        .build();
    let response_bytes_max = config.response_bytes_max;
    let subscriptions_max = config.subscriptions_per_connection_max;
    // Metered is outermost, so calls that Reasons answers itself (unknown methods) are counted.
    let metered = rpc_metrics.clone();
    let rpc_middleware = RpcServiceBuilder::new()
        .layer_fn(move |inner| middleware::Metered { inner, metrics: metered.clone(), response_bytes_max })
        .layer_fn(move |inner| middleware::Reasons {
            inner,
            methods: names.clone(),
            signatures: signatures.clone(),
            response_bytes_max,
            subscriptions_max,
        });
    let operator = http::OperatorLayer::new(http::HttpState { backend, hrp, calls, metrics: rpc_metrics });
    let http_middleware = tower::ServiceBuilder::new().layer(operator);
    let bind_error = |source| RpcError::Bind { addr: config.addr, source };
    let listener = listen(config.addr, config.send_buffer_bytes).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_error)?;
    let services = Server::builder()
        .set_config(server_config)
        .set_rpc_middleware(rpc_middleware)
        .set_http_middleware(http_middleware)
        .to_service_builder();
    // Two budgets: WebSocket sessions, and HTTP calls in flight (see `serve`).
    let websockets = services.clone().max_connections(config.connections_max);
    let calls_in_flight = services.max_connections(config.http_in_flight_max);
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let stop_for_calls = stop.clone();
    let dispatch: serve::Dispatch = Arc::new(move |request, upgrade| {
        let builder = if upgrade { &websockets } else { &calls_in_flight };
        let mut service = builder.clone().build(module.clone(), stop_for_calls.clone());
        Box::pin(service.call(request))
    });
    let limits = serve::ConnLimits {
        tcp_max: config.tcp_max as usize,
        tcp_per_ip_max: config.tcp_per_ip_max as usize,
        ws_per_ip_max: config.ws_per_ip_max as usize,
        http_per_ip_max: config.http_per_ip_max as usize,
        idle_timeout: std::time::Duration::from_millis(config.idle_timeout_ms),
    };
    tokio::spawn(serve::accept_loop(listener, dispatch, Arc::new(config.access.clone()), limits, stop));
    tracing::debug!(target: "rpc", %local_addr, "JSON-RPC listening on HTTP and WebSocket, with /health /ready /metrics");
    Ok(RpcServer { local_addr, handle })
}

/// Binds `addr` as `TcpListener::bind` does; connections accepted from it inherit its send
/// buffer size.
fn listen(addr: SocketAddr, send_buffer_bytes: Option<u32>) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if let Some(bytes) = send_buffer_bytes {
        socket.set_send_buffer_size(bytes)?;
    }
    socket.bind(addr)?;
    let listener = socket.listen(1024)?.into_std()?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn openrpc() -> Value {
        serde_json::from_str(OPENRPC_JSON).expect("openrpc.json is valid JSON")
    }

    /// A backend no test calls: the module is built only to list what it registers.
    struct Uncalled;

    impl Backend for Uncalled {
        fn chain_info(&self) -> ChainInfo {
            unreachable!("not called")
        }
        fn block(&self, _: BlockId) -> Result<Option<BlockRecord>, BackendError> {
            unreachable!("not called")
        }
        fn account(&self, _: &taksa_consensus::Address) -> AccountInfo {
            unreachable!("not called")
        }
        fn account_cached(&self, _: &taksa_consensus::Address) -> Option<AccountInfo> {
            unreachable!("not called")
        }
        fn account_proof(&self, _: &taksa_consensus::Address, _: Option<u64>) -> Result<AccountProof, BackendError> {
            unreachable!("not called")
        }
        fn history(&self, _: &taksa_consensus::Address, _: &HistoryQuery) -> Result<HistoryPage, BackendError> {
            unreachable!("not called")
        }
        fn submit(&self, _: taksa_consensus::SignedTransaction) -> Result<taksa_consensus::Hash, SubmitError> {
            unreachable!("not called")
        }
        fn tx_proof(&self, _: &taksa_consensus::Hash) -> Result<TxProof, BackendError> {
            unreachable!("not called")
        }
        fn tx(&self, _: &taksa_consensus::Hash) -> Result<Option<TxRecord>, BackendError> {
            unreachable!("not called")
        }
        fn health(&self) -> HealthInfo {
            unreachable!("not called")
        }
        fn node_info(&self) -> NodeInfo {
            unreachable!("not called")
        }
        fn peers(&self) -> Vec<PeerRecord> {
            unreachable!("not called")
        }
        fn consensus_status(&self) -> ConsensusStatus {
            unreachable!("not called")
        }
        fn evidence(&self, _: usize) -> Vec<taksa_consensus::Evidence> {
            unreachable!("not called")
        }
        fn events(
            &self,
            _: Option<taksa_consensus::Cursor>,
            _: &EventFilter,
            _: usize,
        ) -> Result<Vec<(taksa_consensus::Cursor, taksa_consensus::Event)>, BackendError> {
            unreachable!("not called")
        }
        fn last_cursor(&self) -> taksa_consensus::Cursor {
            unreachable!("not called")
        }
        fn feed(&self) -> tokio::sync::broadcast::Receiver<FeedItem> {
            unreachable!("not called")
        }
        fn block_summaries(&self, _: Option<u64>, _: usize) -> Result<Vec<taksa_consensus::BlockEvent>, BackendError> {
            unreachable!("not called")
        }
        fn stats(&self, _: usize) -> Result<ChainStats, BackendError> {
            unreachable!("not called")
        }
        fn validators(&self) -> Vec<ValidatorRecord> {
            unreachable!("not called")
        }
        fn epochs(&self) -> taksa_consensus::Epochs {
            unreachable!("not called")
        }
        fn governance(&self) -> (u64, Arc<taksa_consensus::governance::Governance>) {
            unreachable!("not called")
        }
        fn validator_set(&self, _: u64) -> Result<Option<Vec<taksa_consensus::governance::Validator>>, BackendError> {
            unreachable!("not called")
        }
        fn readiness(&self) -> Readiness {
            unreachable!("not called")
        }
        fn metrics(&self) -> NodeMetrics {
            unreachable!("not called")
        }
    }

    /// Every method and subscription name the server registers, from the typed definition.
    fn registered() -> BTreeSet<String> {
        let ctx = methods::Ctx {
            backend: Arc::new(Uncalled),
            hrp: "tks".into(),
            openrpc: Value::Null,
            calls: Arc::new(Semaphore::new(1)),
            batch_calls: Arc::new(Semaphore::new(1)),
            lag_timeout: std::time::Duration::from_secs(1),
            lagged: metrics::LaggedCounter::default(),
        };
        let module = methods::module(Arc::new(ctx)).expect("the module builds");
        module.method_names().map(str::to_owned).collect()
    }

    #[test]
    fn openrpc_lists_exactly_the_registered_methods() {
        let doc = openrpc();
        assert_eq!(doc["openrpc"], "1.2.6");
        let documented: BTreeSet<String> = doc["methods"]
            .as_array()
            .expect("methods array")
            .iter()
            .map(|m| m["name"].as_str().expect("method name").to_owned())
            .collect();
        assert_eq!(documented, registered());
        let subscriptions: BTreeSet<String> =
            subscribe::SUBSCRIPTIONS.iter().flat_map(|(s, _, u)| [(*s).to_owned(), (*u).to_owned()]).collect();
        assert!(subscriptions.is_subset(&registered()), "the docs' subscription list is the registered one");
    }

    #[test]
    fn openrpc_lists_every_error_code_with_its_reason() {
        let doc = openrpc();
        let errors = doc["components"]["errors"].as_object().expect("components.errors");
        assert_eq!(errors.len(), ErrorCode::ALL.len(), "no stale codes in the document");
        for code in ErrorCode::ALL {
            let e = &errors[code.reason()];
            assert_eq!(e["code"], code.code(), "{code:?}");
            assert_eq!(e["data"]["reason"], code.reason(), "{code:?}");
        }
    }

    #[test]
    fn openrpc_error_references_resolve() {
        let doc = openrpc();
        let errors = doc["components"]["errors"].as_object().expect("components.errors");
        for m in doc["methods"].as_array().expect("methods") {
            for e in m["errors"].as_array().expect("errors per method") {
                let r = e["$ref"].as_str().expect("errors are references");
                let key = r.strip_prefix("#/components/errors/").expect("local reference");
                assert!(errors.contains_key(key), "{} refers to missing {key}", m["name"]);
            }
        }
    }

    #[test]
    fn rpc_docs_mention_every_method_and_code() {
        let docs = include_str!("../../docs/rpc.md");
        for name in registered() {
            assert!(docs.contains(&format!("`{name}`")), "docs/rpc.md lacks {name}");
        }
        for (subscribe, notification, unsubscribe) in subscribe::SUBSCRIPTIONS {
            for name in [subscribe, notification, unsubscribe] {
                assert!(docs.contains(&format!("`{name}`")), "docs/rpc.md lacks {name}");
            }
        }
        for code in ErrorCode::ALL {
            let row = format!("| {} | `{}` |", code.code(), code.reason());
            assert!(docs.contains(&row), "docs/rpc.md lacks the row `{row}`");
        }
    }
}
