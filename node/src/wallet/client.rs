//! The wallet's view of a node: the typed client of [`TaksaApiClient`] (the same definition the
//! node serves), with timeouts, and errors that carry the node's machine-readable reason.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::Value;
use taksa_consensus::Hash;
use taksa_rpc::api::{
    AccountJson, ChainInfoJson, HistoryJson, HistoryOptions, NotificationJson, Param, TaksaApiClient, TxStatusJson,
};

/// How long one request may take.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// The largest answer accepted, in bytes.
const RESPONSE_BYTES_MAX: u32 = 4 * 1024 * 1024;

/// What the wallet reads from `chain_getInfo`, parsed.
pub(crate) trait ChainInfoExt {
    /// The genesis hash transactions sign over.
    fn genesis(&self) -> anyhow::Result<Hash>;
    /// The smallest fee, base units.
    fn fee_floor_units(&self) -> anyhow::Result<u128>;
    /// The smallest fee of a transfer that creates its recipient's account, base units.
    fn account_creation_fee_units(&self) -> anyhow::Result<u128>;
}

impl ChainInfoExt for ChainInfoJson {
    fn genesis(&self) -> anyhow::Result<Hash> {
        Hash::from_hex(&self.genesis_hash).with_context(|| format!("node sent genesis hash `{}`", self.genesis_hash))
    }

    fn fee_floor_units(&self) -> anyhow::Result<u128> {
        taksa_consensus::genesis::parse_amount(&self.fee_floor)
            .with_context(|| format!("node sent fee floor `{}`", self.fee_floor))
    }

    fn account_creation_fee_units(&self) -> anyhow::Result<u128> {
        taksa_consensus::genesis::parse_amount(&self.account_creation_fee)
            .with_context(|| format!("node sent account creation fee `{}`", self.account_creation_fee))
    }
}

/// How following a transaction over a subscription ended.
pub(crate) enum Followed {
    /// Its final status.
    Final(Box<TxStatusJson>),
    /// Still not final when the time ran out; its last status.
    TimedOut(String),
    /// The node could not be followed this way (no WebSocket, or the stream ended early).
    Unavailable(anyhow::Error),
}

/// A JSON-RPC error answer from the node.
#[derive(Debug)]
pub(crate) struct NodeRefused {
    /// The method called.
    pub(crate) method: String,
    /// The JSON-RPC error code.
    pub(crate) code: i32,
    /// The node's message.
    pub(crate) message: String,
    /// `error.data.reason`, when given.
    pub(crate) reason: Option<String>,
}

impl fmt::Display for NodeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node refused {}: {}", self.method, self.message)?;
        match &self.reason {
            Some(r) => write!(f, " (reason: {r}, code {})", self.code),
            None => write!(f, " (code {})", self.code),
        }
    }
}

impl std::error::Error for NodeRefused {}

/// A connection to one node's JSON-RPC endpoint.
pub(crate) struct NodeClient {
    http: HttpClient,
    url: String,
}

impl NodeClient {
    /// A client for `url` (for example `http://127.0.0.1:8545`). Connects lazily.
    pub(crate) fn new(url: &str) -> anyhow::Result<NodeClient> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .max_response_size(RESPONSE_BYTES_MAX)
            .build(url)
            .with_context(|| format!("bad RPC address `{url}`"))?;
        Ok(NodeClient { http, url: url.to_owned() })
    }

    /// The endpoint.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn describe(&self, method: &str, e: ClientError) -> anyhow::Error {
        match e {
            ClientError::Call(obj) => {
                let reason = obj
                    .data()
                    .and_then(|d| serde_json::from_str::<Value>(d.get()).ok())
                    .and_then(|d| d.get("reason").and_then(Value::as_str).map(str::to_owned));
                anyhow::Error::new(NodeRefused {
                    method: method.to_owned(),
                    code: obj.code(),
                    message: obj.message().to_owned(),
                    reason,
                })
            }
            ClientError::Transport(t) => anyhow::anyhow!("cannot reach the node at {} ({method}): {t}", self.url),
            ClientError::RequestTimeout => {
                anyhow::anyhow!("the node at {} did not answer {method} within {REQUEST_TIMEOUT_MS} ms", self.url)
            }
            ClientError::ParseError(e) => anyhow::anyhow!("unexpected answer to {method} from {}: {e}", self.url),
            other => anyhow::anyhow!("{method} at {}: {other}", self.url),
        }
    }

    /// `chain_getInfo`.
    pub(crate) async fn chain_info(&self) -> anyhow::Result<ChainInfoJson> {
        self.http.chain_get_info().await.map_err(|e| self.describe("chain_getInfo", e))
    }

    /// `account_get`.
    pub(crate) async fn account(&self, address: &str) -> anyhow::Result<AccountJson> {
        self.http.account_get(Param::new(address.to_owned())).await.map_err(|e| self.describe("account_get", e))
    }

    /// `account_getNonce`: the next nonce, counting the node's pool.
    pub(crate) async fn next_nonce(&self, address: &str) -> anyhow::Result<u64> {
        self.http
            .account_get_nonce(Param::new(address.to_owned()))
            .await
            .map_err(|e| self.describe("account_getNonce", e))
    }

    /// `account_getHistory`.
    pub(crate) async fn history(
        &self,
        address: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> anyhow::Result<HistoryJson> {
        let options = HistoryOptions { cursor, limit: Some(limit), ..HistoryOptions::default() };
        self.http
            .account_get_history(Param::new(address.to_owned()), Some(Param::new(options)))
            .await
            .map_err(|e| self.describe("account_getHistory", e))
    }

    /// `tx_submit`: returns the hash the node computed.
    pub(crate) async fn submit(&self, signed_bytes: &[u8]) -> anyhow::Result<String> {
        let hex = format!("0x{}", hex::encode(signed_bytes));
        self.http.tx_submit(Param::new(hex)).await.map_err(|e| self.describe("tx_submit", e))
    }

    /// Follows the transaction's status over a WebSocket (`tx_subscribeStatus` on the same
    /// port) until it is final or `timeout` passes.
    pub(crate) async fn follow_status(&self, hash: &Hash, timeout: Duration) -> Followed {
        let Some(ws_url) = self.ws_url() else {
            return Followed::Unavailable(anyhow::anyhow!("{} is not an http(s) URL", self.url));
        };
        let ws = match WsClientBuilder::default()
            .request_timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .max_response_size(RESPONSE_BYTES_MAX)
            .build(&ws_url)
            .await
        {
            Ok(ws) => ws,
            Err(e) => return Followed::Unavailable(self.describe("tx_subscribeStatus", e)),
        };
        let mut sub = match ws.subscribe_tx_status(Param::new(hash.to_hex())).await {
            Ok(sub) => sub,
            Err(e) => return Followed::Unavailable(self.describe("tx_subscribeStatus", e)),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = "unknown".to_owned();
        loop {
            let next = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(next) => next,
                Err(_) => return Followed::TimedOut(last),
            };
            let status = match next {
                Some(Ok(NotificationJson::Status(status))) => status,
                Some(Ok(NotificationJson::Lagged(notice))) => {
                    return Followed::Unavailable(anyhow::anyhow!(
                        "the node closed the subscription: {}",
                        notice.message
                    ))
                }
                Some(Ok(other)) => {
                    return Followed::Unavailable(anyhow::anyhow!("unexpected status notification: {other:?}"))
                }
                Some(Err(e)) => return Followed::Unavailable(anyhow::anyhow!("status subscription failed: {e}")),
                None => return Followed::Unavailable(anyhow::anyhow!("the node ended the status subscription")),
            };
            if status.status.is_final() {
                return Followed::Final(Box::new(status));
            }
            last = status.status.as_str().to_owned();
        }
    }

    /// The WebSocket URL of the same endpoint.
    fn ws_url(&self) -> Option<String> {
        if let Some(rest) = self.url.strip_prefix("http://") {
            Some(format!("ws://{rest}"))
        } else {
            self.url.strip_prefix("https://").map(|rest| format!("wss://{rest}"))
        }
    }

    /// `validators_getPendingVotes`: the current set and the votes on changing it.
    pub(crate) async fn pending_votes(&self) -> anyhow::Result<taksa_rpc::api::PendingVotesJson> {
        self.http.validators_get_pending_votes().await.map_err(|e| self.describe("validators_getPendingVotes", e))
    }

    /// `tx_getProof`: the transaction's receipt.
    pub(crate) async fn tx_proof(&self, hash: &Hash) -> anyhow::Result<taksa_consensus::receipt::PaymentReceipt> {
        self.http.tx_get_proof(Param::new(hash.to_hex())).await.map_err(|e| self.describe("tx_getProof", e))
    }

    /// `tx_get`; `None` when the node does not know the hash.
    pub(crate) async fn tx_status(&self, hash: &Hash) -> anyhow::Result<Option<TxStatusJson>> {
        match self.http.tx_get(Param::new(hash.to_hex())).await {
            Ok(status) => Ok(Some(status)),
            Err(e) => {
                let e = self.describe("tx_get", e);
                match e.downcast_ref::<NodeRefused>() {
                    Some(refused) if refused.reason.as_deref() == Some("tx_not_found") => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }
}
