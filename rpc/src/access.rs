//! Which web pages and host names may reach the node: the `Host` and `Origin` checks that keep a
//! web page the user happens to visit from driving a local node (cross-origin requests and DNS
//! rebinding), as geth's `--http.vhosts` and `--http.corsdomain` do.
//!
//! - **Host**: a request must name the node by an IP address, a localhost name (`localhost`,
//!   `*.localhost`) or a name the operator allowed (`--rpc-allowed-hosts`). A rebinding attack
//!   reaches the node under the attacker's domain name, which is refused.
//! - **Origin**: browsers send it on WebSocket handshakes and cross-origin calls. Allowed: the
//!   node's own origin (its explorer page: the origin equals the `Host` it was loaded from), any
//!   localhost origin, and origins the operator allowed (`--rpc-cors`). Requests without
//!   `Origin` (wallets, curl, servers) are not browsers' and pass.
//!
//! An allowed cross-origin request gets `Access-Control-Allow-Origin` for its origin, and a
//! preflight (`OPTIONS`) is answered here.

use std::net::IpAddr;

use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CONTENT_TYPE, HOST, ORIGIN, VARY,
};
use http::{Method, StatusCode};
use jsonrpsee::server::{HttpBody, HttpResponse};

/// The operator's allow-lists; each may hold `*` for anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// Host names (without port) allowed besides IP addresses and localhost names.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) allowed besides the node's own and localhost ones.
    pub cors_origins: Vec<String>,
}

/// What a request may do, decided before it reaches JSON-RPC.
pub(crate) enum Decision {
    /// Serve it; for an allowed cross-origin request, the origin to echo back.
    Serve { cors: Option<HeaderValue> },
    /// Answer with this response and do not serve it (a refusal, or a preflight's answer).
    Answer(HttpResponse),
}

impl AccessConfig {
    /// Whether `host` (a `Host` header: name or address, with an optional port) may be served.
    fn host_allowed(&self, host: &str) -> bool {
        self.host_named(host) || self.allowed_hosts.iter().any(|h| h == "*")
    }

    /// Whether `host` is one this node knows as its own: an IP address, a localhost name or a
    /// name listed explicitly (not merely let through by `*`).
    fn host_named(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        is_ip(&name) || is_localhost_name(&name) || self.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&name))
    }

    /// Whether a page from `origin` may call a node reached as `host`.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.cors_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(&origin)) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else { return false };
        if scheme != "http" && scheme != "https" {
            return false;
        }
        // The node's own page (only under a host it knows as its own: under `*` a rebinding
        // page's origin equals its host), or a page served from this machine.
        (authority == host.to_ascii_lowercase() && self.host_named(host))
            || is_localhost_name(strip_port(authority))
            || is_loopback(strip_port(authority))
    }

    /// Checks a request's `Host` and `Origin`.
    pub(crate) fn decide<B>(&self, req: &http::Request<B>) -> Decision {
        let host =
            req.headers().get(HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
        let Some(host) = host else {
            return Decision::Answer(refuse("a request must name the node in its Host header\n".to_owned()));
        };
        if !self.host_allowed(host) {
            return Decision::Answer(refuse(format!(
                "host `{}` is not allowed: this node answers requests addressed to an IP address or a localhost name; \
                 start it with --rpc-allowed-hosts {} (or TAKSA_RPC_ALLOWED_HOSTS) to allow that name\n",
                printable(host),
                printable(strip_port(host))
            )));
        }
        let Some(origin) = req.headers().get(ORIGIN) else {
            return Decision::Serve { cors: None };
        };
        let origin_text = origin.to_str().unwrap_or("");
        if !self.origin_allowed(origin_text, host) {
            return Decision::Answer(refuse(format!(
                "origin `{}` is not allowed: web pages may call this node only from its own origin or localhost; \
                 start it with --rpc-cors {} (or TAKSA_RPC_CORS) to allow that site\n",
                printable(origin_text),
                printable(origin_text)
            )));
        }
        if req.method() == Method::OPTIONS {
            let mut res = HttpResponse::new(HttpBody::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            let headers = res.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS"));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            headers.insert(VARY, HeaderValue::from_static("Origin"));
            return Decision::Answer(res);
        }
        Decision::Serve { cors: Some(origin.clone()) }
    }
}

/// Adds the CORS answer for an allowed cross-origin request.
pub(crate) fn allow_origin(res: &mut HttpResponse, origin: HeaderValue) {
    res.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    res.headers_mut().insert(VARY, HeaderValue::from_static("Origin"));
}

fn refuse(message: String) -> HttpResponse {
    let mut res = HttpResponse::new(HttpBody::from(message));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// At most 100 characters of a header, for an error message.
fn printable(s: &str) -> String {
    s.chars().take(100).filter(|c| !c.is_control()).collect()
}

/// `name:port`, `[v6]:port`, `[v6]` or `name` without the port (and brackets).
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => authority,
    }
}

fn is_ip(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok()
}

fn is_loopback(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, origin: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::builder().method(Method::POST).uri("/");
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(()).expect("request")
    }

    fn served(c: &AccessConfig, host: Option<&str>, origin: Option<&str>) -> bool {
        matches!(c.decide(&request(host, origin)), Decision::Serve { .. })
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_names_or_allowed_names() {
        let c = AccessConfig::default();
        for host in ["127.0.0.1:8545", "10.1.2.3", "[::1]:8545", "localhost:8545", "LOCALHOST", "node.localhost:1"] {
            assert!(served(&c, Some(host), None), "{host}");
        }
        for host in ["evil.example", "evil.example:8545", "localhost.evil.example", "127.0.0.1.evil.example:80"] {
            assert!(!served(&c, Some(host), None), "{host}");
        }
        assert!(!served(&c, None, None), "no Host");
        let named = AccessConfig { allowed_hosts: vec!["rpc.example.org".into()], ..Default::default() };
        assert!(served(&named, Some("RPC.example.org:443"), None));
        assert!(!served(&named, Some("evil.example"), None));
        let any = AccessConfig { allowed_hosts: vec!["*".into()], ..Default::default() };
        assert!(served(&any, Some("evil.example"), None));
    }

    #[test]
    fn origins_are_the_nodes_own_localhost_or_allowed_ones() {
        let c = AccessConfig::default();
        let host = Some("127.0.0.1:8545");
        assert!(served(&c, host, None), "no Origin: not a browser");
        assert!(served(&c, host, Some("http://127.0.0.1:8545")), "the explorer's own page");
        assert!(served(&c, host, Some("http://localhost:3000")), "a page on this machine");
        assert!(served(&c, host, Some("http://[::1]:3000")));
        assert!(!served(&c, host, Some("https://evil.example")));
        assert!(!served(&c, host, Some("null")));
        assert!(!served(&c, host, Some("http://127.0.0.1.evil.example")));
        let cors = AccessConfig { cors_origins: vec!["https://wallet.example".into()], ..Default::default() };
        assert!(served(&cors, host, Some("https://wallet.example")));
        assert!(!served(&cors, host, Some("https://wallet.example.evil")));
        let any = AccessConfig { cors_origins: vec!["*".into()], ..Default::default() };
        assert!(served(&any, host, Some("https://evil.example")));
        // With any host allowed, a rebinding page's origin equals its host: still refused.
        let any_host = AccessConfig { allowed_hosts: vec!["*".into()], ..Default::default() };
        assert!(!served(&any_host, Some("a.evil:8545"), Some("http://a.evil:8545")));
        let named = AccessConfig { allowed_hosts: vec!["rpc.example.org".into()], ..Default::default() };
        assert!(served(&named, Some("rpc.example.org"), Some("http://rpc.example.org")));
    }

    #[test]
    fn an_allowed_preflight_is_answered_with_the_origin() {
        let c = AccessConfig { cors_origins: vec!["https://wallet.example".into()], ..Default::default() };
        let req = http::Request::builder()
            .method(Method::OPTIONS)
            .header(HOST, "127.0.0.1:8545")
            .header(ORIGIN, "https://wallet.example")
            .body(())
            .expect("request");
        let Decision::Answer(res) = c.decide(&req) else { panic!("a preflight is answered here") };
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "https://wallet.example");
    }
}
