//! Plain HTTP on the JSON-RPC port, for load balancers, Prometheus and browsers: `GET /health`,
//! `/ready`, `/metrics` and the web explorer's files.
//!
//! [`OperatorLayer`] wraps jsonrpsee's HTTP service. It answers `GET` and `HEAD` requests without
//! a WebSocket upgrade itself (`HEAD` as `GET`, hyper drops the body) and passes everything else
//! on: `POST` stays JSON-RPC and a `GET /` that asks for a WebSocket upgrade reaches jsonrpsee's
//! subscriptions. Any other `GET` path gets a plain-text 404.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::Serialize;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::backend::{Backend, Readiness};
use crate::metrics::{self, RpcMetrics};

/// The explorer may load only its own files, connect only to its own node (`ws:` to the page's
/// own host is spelled out, since some browsers do not count it as `'self'`), and may not be
/// framed by another page.
fn explorer_csp(host: Option<&str>) -> String {
    // The host passed the access check; anything odd in it is left out rather than echoed.
    let safe = host.filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    let own_ws = safe.map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
    format!("default-src 'self'; connect-src 'self'{own_ws}; frame-ancestors 'none'")
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A file of the web explorer, compiled in.
struct Asset {
    content_type: &'static str,
    body: &'static str,
}

const INDEX_HTML: Asset =
    Asset { content_type: "text/html; charset=utf-8", body: include_str!("../explorer/index.html") };
const APP_JS: Asset =
    Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("../explorer/app.js") };
const STYLE_CSS: Asset = Asset { content_type: "text/css; charset=utf-8", body: include_str!("../explorer/style.css") };
const FAVICON_SVG: Asset = Asset { content_type: "image/svg+xml", body: include_str!("../explorer/favicon.svg") };

/// What a plain `GET` asks for.
enum Route {
    Health,
    Ready,
    Metrics,
    Asset(&'static Asset, Option<String>),
    NotFound,
}

/// The route of a request this layer answers; `None` for what jsonrpsee answers.
fn route(req: &HttpRequest) -> Option<Route> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    if !get || is_upgrade_request(req) {
        return None;
    }
    let host = || req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
    Some(match req.uri().path() {
        "/health" => Route::Health,
        "/ready" => Route::Ready,
        "/metrics" => Route::Metrics,
        "/" | "/index.html" => Route::Asset(&INDEX_HTML, host()),
        "/app.js" => Route::Asset(&APP_JS, host()),
        "/style.css" => Route::Asset(&STYLE_CSS, host()),
        "/favicon.svg" => Route::Asset(&FAVICON_SVG, host()),
        _ => Route::NotFound,
    })
}

/// What the endpoints read.
pub(crate) struct HttpState {
    pub(crate) backend: Arc<dyn Backend>,
    /// The network's address prefix, for validator labels.
    pub(crate) hrp: String,
    /// The same bound on backend calls in flight as the JSON-RPC methods use, so scrapes and
    /// probes cannot occupy the blocking pool either.
    pub(crate) calls: Arc<Semaphore>,
    pub(crate) metrics: Arc<RpcMetrics>,
}

impl HttpState {
    /// Runs `f` on the blocking pool under a backend-call permit; `None` if it could not run
    /// to the end (the server is stopping, or the backend panicked).
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&HttpState) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.calls.clone().acquire_owned().await.ok()?;
        let this = self.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            // Held by the blocking task, so a client that hangs up does not free the slot early.
            let _permit = permit;
            f(&this)
        })
        .await;
        match outcome {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(target: "rpc", error = %e, "an HTTP endpoint's backend call panicked");
                None
            }
        }
    }

    async fn answer(self: Arc<Self>, route: Route) -> HttpResponse {
        match route {
            Route::Health => respond(StatusCode::OK, JSON, r#"{"status":"ok"}"#),
            Route::Ready => self.ready().await,
            Route::Metrics => self.metrics().await,
            Route::Asset(asset, host) => explorer_file(asset, host.as_deref()),
            Route::NotFound => {
                respond(StatusCode::NOT_FOUND, TEXT, "not found: this node serves /health, /ready, /metrics and /\n")
            }
        }
    }

    async fn ready(self: &Arc<Self>) -> HttpResponse {
        let json = match self.blocking(|s| s.backend.readiness()).await {
            Some(readiness) => ReadyJson::new(&readiness),
            None => ReadyJson::unknown(),
        };
        let status = if json.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        match serde_json::to_string(&json) {
            Ok(body) => respond(status, JSON, body),
            Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("cannot encode readiness: {e}\n")),
        }
    }

    async fn metrics(self: &Arc<Self>) -> HttpResponse {
        // Encoding walks every series; done on the blocking pool with the backend read.
        match self.blocking(|s| s.metrics.encode(s.backend.metrics(), &s.hrp)).await {
            Some(Ok(body)) => respond(StatusCode::OK, metrics::CONTENT_TYPE, body),
            Some(Err(_)) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "cannot encode the metrics\n"),
            None => respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, "the node could not read its metrics\n"),
        }
    }
}

/// The body of `GET /ready`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadyJson {
    ready: bool,
    syncing: bool,
    peers: usize,
    storage_writable: bool,
    /// One sentence per failed check; absent when ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

impl ReadyJson {
    fn new(r: &Readiness) -> ReadyJson {
        let mut problems = Vec::new();
        if r.syncing {
            problems.push("syncing: the node is catching up with the network and its state is behind".to_owned());
        }
        if r.needs_peers && r.peers == 0 {
            problems.push("no peers: the node has no connected peers, so it cannot follow the chain".to_owned());
        }
        if let Err(why) = &r.storage {
            problems.push(format!("storage not writable: {why}"));
        }
        ReadyJson {
            ready: problems.is_empty(),
            syncing: r.syncing,
            peers: r.peers,
            storage_writable: r.storage.is_ok(),
            problems,
        }
    }

    /// The answer when the checks could not run at all.
    fn unknown() -> ReadyJson {
        ReadyJson {
            ready: false,
            syncing: false,
            peers: 0,
            storage_writable: false,
            problems: vec!["readiness unknown: the node failed while checking it".to_owned()],
        }
    }
}

fn explorer_file(asset: &'static Asset, host: Option<&str>) -> HttpResponse {
    let mut res = respond(StatusCode::OK, asset.content_type, asset.body);
    let headers = res.headers_mut();
    // The files change with the node's version; `no-cache` makes a browser check each time.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(&explorer_csp(host)) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    res
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<HttpBody>) -> HttpResponse {
    let mut res = HttpResponse::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if !res.headers().contains_key(CACHE_CONTROL) {
        // Probes and scrapes must see the node as it is now, not a proxy's copy.
        res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The HTTP middleware layer; see the module docs.
#[derive(Clone)]
pub(crate) struct OperatorLayer {
    state: Arc<HttpState>,
}

impl OperatorLayer {
    pub(crate) fn new(state: HttpState) -> OperatorLayer {
        OperatorLayer { state: Arc::new(state) }
    }
}

impl<S> Layer<S> for OperatorLayer {
    type Service = Operator<S>;

    fn layer(&self, inner: S) -> Operator<S> {
        Operator { inner, state: self.state.clone() }
    }
}

/// jsonrpsee's HTTP service with the operator endpoints in front.
#[derive(Clone)]
pub(crate) struct Operator<S> {
    inner: S,
    state: Arc<HttpState>,
}

impl<S> Service<HttpRequest> for Operator<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        match route(&req) {
            Some(route) => {
                let state = self.state.clone();
                Box::pin(async move { Ok(state.answer(route).await) })
            }
            None => Box::pin(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness(syncing: bool, peers: usize, needs_peers: bool, storage: Result<(), String>) -> Readiness {
        Readiness { syncing, peers, needs_peers, storage }
    }

    #[test]
    fn every_failed_check_is_a_problem_with_its_tag() {
        let json = ReadyJson::new(&readiness(true, 0, true, Err("disk full (28)".to_owned())));
        assert!(!json.ready);
        assert!(!json.storage_writable);
        let tags: Vec<&str> = json.problems.iter().filter_map(|p| p.split_once(": ").map(|(tag, _)| tag)).collect();
        assert_eq!(tags, ["syncing", "no peers", "storage not writable"]);
        assert!(json.problems[2].ends_with("disk full (28)"), "{:?}", json.problems);
    }

    #[test]
    fn node_that_needs_no_peers_is_ready_alone() {
        let json = ReadyJson::new(&readiness(false, 0, false, Ok(())));
        assert!(json.ready && json.problems.is_empty(), "{json:?}");
        let body = serde_json::to_value(&json).expect("serializes");
        assert_eq!(body, serde_json::json!({"ready": true, "syncing": false, "peers": 0, "storageWritable": true}));
    }

    fn request(method: &str, path: &str, upgrade: bool) -> HttpRequest {
        let mut builder = HttpRequest::builder().method(method).uri(path);
        if upgrade {
            builder = builder.header("connection", "Upgrade").header("upgrade", "websocket");
        }
        builder.body(HttpBody::empty()).expect("a valid request")
    }

    #[test]
    fn the_explorer_may_connect_only_to_its_own_node_and_may_not_be_framed() {
        assert_eq!(
            explorer_csp(Some("127.0.0.1:8545")),
            "default-src 'self'; connect-src 'self' ws://127.0.0.1:8545 wss://127.0.0.1:8545; frame-ancestors 'none'"
        );
        assert_eq!(
            explorer_csp(Some("x\"; script-src *")),
            "default-src 'self'; connect-src 'self'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn websocket_upgrades_and_non_get_methods_reach_json_rpc() {
        assert!(route(&request("GET", "/", true)).is_none());
        assert!(route(&request("GET", "/health", true)).is_none());
        assert!(route(&request("POST", "/", false)).is_none());
        assert!(route(&request("OPTIONS", "/health", false)).is_none());
        assert!(matches!(route(&request("GET", "/", false)), Some(Route::Asset(..))));
        assert!(matches!(route(&request("HEAD", "/ready?verbose=1", false)), Some(Route::Ready)));
        assert!(matches!(route(&request("GET", "/wallet", false)), Some(Route::NotFound)));
    }
}
