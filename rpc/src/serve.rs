//! The accept loop: each TCP connection served by hyper, each request checked ([`access`]) and
//! handed to jsonrpsee, with the node's own connection limits.
//!
//! jsonrpsee's built-in loop counts HTTP calls and WebSocket sessions against one limit, so 128
//! idle WebSockets made every HTTP call answer 429. Here each has its own budget:
//!
//! - **WebSocket sessions**: at most `connections_max` in all and `ws_per_ip_max` per client
//!   address; the server pings each and closes one that answers nothing for `ws_inactive_ms`.
//! - **HTTP calls**: at most `http_in_flight_max` in flight, whatever the WebSockets hold, and
//!   `http_per_ip_max` per address; a call that has not been answered within [`CALL_TIMEOUT`]
//!   (a body that never arrives) is answered 408.
//! - **TCP connections**: at most `tcp_max` in all and `tcp_per_ip_max` per address; a
//!   connection must send each request's headers within [`HEADER_READ_TIMEOUT`] (which also
//!   closes a keep-alive connection idle that long), and one with no request in flight for
//!   `idle_timeout_ms` is closed. Only HTTP/1.1 is spoken: no HTTP/2 streams multiplex past
//!   these limits.
//!
//! An address is an IPv4 address or an IPv6 /64, which one host usually holds whole.
//!
//! [`access`]: crate::access

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse, StopHandle};

use crate::access::{allow_origin, AccessConfig, Decision};

/// How long a connection may take to send a request's headers.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP call may take, its body included.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection may take to finish what it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A request handed to jsonrpsee: `true` for a WebSocket upgrade.
pub(crate) type Dispatch = Arc<
    dyn Fn(HttpRequest, bool) -> Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>> + Send + Sync,
>;

/// The connection limits ([`crate::Config`] holds their defaults' rationale).
#[derive(Clone, Debug)]
pub(crate) struct ConnLimits {
    pub(crate) tcp_max: usize,
    pub(crate) tcp_per_ip_max: usize,
    pub(crate) ws_per_ip_max: usize,
    pub(crate) http_per_ip_max: usize,
    pub(crate) idle_timeout: Duration,
}

/// Live counts per client address, for one kind of slot.
#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A held slot; dropping it frees it.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Slot {
    /// A slot for `ip`, if fewer than `max` are held in all and fewer than `per_ip_max` by `ip`.
    fn take(counts: &Arc<Mutex<Counts>>, ip: IpAddr, max: usize, per_ip_max: usize) -> Option<Slot> {
        let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let held = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= max || held >= per_ip_max {
            return None;
        }
        c.total += 1;
        c.per_ip.insert(ip, held + 1);
        Some(Slot { counts: counts.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A WebSocket session's per-address slot, kept in the upgrade request's extensions, which
/// jsonrpsee holds for the session's life.
#[derive(Clone)]
struct WsSlot(#[allow(dead_code)] Arc<Slot>);

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `limit`.
    async fn idle(&self, limit: Duration) {
        loop {
            let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let quiet = last.elapsed();
            if self.in_flight.load(Ordering::SeqCst) == 0 && quiet >= limit {
                return;
            }
            tokio::time::sleep(limit.saturating_sub(quiet).max(Duration::from_millis(100))).await;
        }
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections until `stop` fires; each connection task holds a clone of `stop`, so the
/// server counts as stopped once every connection has ended.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    dispatch: Dispatch,
    access: Arc<AccessConfig>,
    limits: ConnLimits,
    stop: StopHandle,
) {
    let tcp = Arc::new(Mutex::new(Counts::default()));
    let ws = Arc::new(Mutex::new(Counts::default()));
    let calls = Arc::new(Mutex::new(Counts::default()));
    loop {
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections end before the next.
                    tracing::debug!(target: "rpc", error = %e, "could not accept an RPC connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.clone().shutdown() => break,
        };
        let Some(slot) = Slot::take(&tcp, client_key(remote.ip()), limits.tcp_max, limits.tcp_per_ip_max) else {
            tracing::debug!(target: "rpc", %remote, "refused an RPC connection: too many open");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let server = Server {
            dispatch: dispatch.clone(),
            access: access.clone(),
            ws: ws.clone(),
            calls: calls.clone(),
            limits: limits.clone(),
        };
        tokio::spawn(serve_connection(socket, slot, server, stop.clone()));
    }
}

/// What every connection shares.
struct Server {
    dispatch: Dispatch,
    access: Arc<AccessConfig>,
    ws: Arc<Mutex<Counts>>,
    calls: Arc<Mutex<Counts>>,
    limits: ConnLimits,
}

async fn serve_connection(socket: tokio::net::TcpStream, slot: Slot, server: Server, stop: StopHandle) {
    let Server { dispatch, access, ws, calls, limits } = server;
    let _slot = slot;
    let ip = _slot.ip;
    let activity = Arc::new(Activity { in_flight: AtomicUsize::new(0), last: Mutex::new(Instant::now()) });
    let watched = activity.clone();
    let (ws_per_ip_max, http_per_ip_max) = (limits.ws_per_ip_max, limits.http_per_ip_max);
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let in_flight = watched.begin();
        let (dispatch, access, ws, calls) = (dispatch.clone(), access.clone(), ws.clone(), calls.clone());
        async move {
            let _in_flight = in_flight;
            let cors = match access.decide(&req) {
                Decision::Serve { cors } => cors,
                Decision::Answer(res) => return Ok::<_, std::convert::Infallible>(res),
            };
            let upgrade = is_upgrade_request(&req);
            let mut req = req.map(HttpBody::new);
            let mut call_slot = None;
            if upgrade {
                let Some(slot) = Slot::take(&ws, ip, usize::MAX, ws_per_ip_max) else {
                    return Ok(too_many("WebSocket connections", ws_per_ip_max));
                };
                req.extensions_mut().insert(WsSlot(Arc::new(slot)));
            } else {
                let Some(slot) = Slot::take(&calls, ip, usize::MAX, http_per_ip_max) else {
                    return Ok(too_many("calls in flight", http_per_ip_max));
                };
                call_slot = Some(slot);
            }
            let answer = tokio::time::timeout(CALL_TIMEOUT, dispatch(req, upgrade)).await;
            drop(call_slot);
            let Ok(answer) = answer else {
                return Ok(plain(http::StatusCode::REQUEST_TIMEOUT, "the request took too long to arrive\n".into()));
            };
            let mut res = match answer {
                Ok(res) => res,
                Err(e) => {
                    tracing::debug!(target: "rpc", error = %e, "an RPC request failed");
                    let mut res = HttpResponse::new(HttpBody::from("internal error\n"));
                    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    return Ok(res);
                }
            };
            if let Some(origin) = cors {
                allow_origin(&mut res, origin);
            }
            Ok(res)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(socket), service).with_upgrades();
    tokio::pin!(conn);
    let stopped = stop.shutdown();
    tokio::pin!(stopped);
    let closing = tokio::select! {
        result = &mut conn => Some(result),
        () = &mut stopped => None,
        () = activity.idle(limits.idle_timeout) => None,
    };
    let result = match closing {
        Some(result) => result,
        None => {
            conn.as_mut().graceful_shutdown();
            // A client that does not read its answer must not hold the connection (or the
            // server's shutdown) forever.
            match tokio::time::timeout(CLOSE_GRACE, conn).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "rpc", error = %e, "an RPC connection ended with an error");
    }
}

/// The address limits count by: an IPv4 address, or an IPv6 address's /64 (one host usually
/// holds a whole /64, so counting single addresses would give it no limit).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn too_many(what: &str, per_ip_max: usize) -> HttpResponse {
    let message = format!("too many {what} from this address (at most {per_ip_max}); retry when one has finished\n");
    plain(http::StatusCode::TOO_MANY_REQUESTS, message)
}

fn plain(status: http::StatusCode, message: String) -> HttpResponse {
    let mut res = HttpResponse::new(HttpBody::from(message));
    *res.status_mut() = status;
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}
