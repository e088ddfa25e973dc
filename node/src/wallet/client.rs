//! The wallet's view of a node: a JSON-RPC HTTP client with typed answers and errors that
//! carry the node's machine-readable reason.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use jsonrpsee::core::client::{ClientT, Subscription, SubscriptionClientT};
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use taksa_consensus::Hash;

/// How long one request may take.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// The largest answer accepted, in bytes.
const RESPONSE_BYTES_MAX: u32 = 4 * 1024 * 1024;

/// `chain_getInfo`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChainInfo {
    /// The chain id transactions must carry.
    pub(crate) chain_id: String,
    /// The genesis hash transactions sign over, `0x` + 64 hex.
    pub(crate) genesis_hash: String,
    /// The bech32m prefix of addresses.
    pub(crate) address_hrp: String,
    /// The smallest fee, base units, decimal string.
    pub(crate) fee_floor: String,
    /// The smallest fee of a transfer that creates its recipient's account.
    #[serde(default)]
    pub(crate) account_creation_fee: Option<String>,
    /// The token's symbol, for display.
    #[serde(default)]
    pub(crate) token_symbol: Option<String>,
}

impl ChainInfo {
    /// The genesis hash, parsed.
    pub(crate) fn genesis_hash(&self) -> anyhow::Result<Hash> {
        Hash::from_hex(&self.genesis_hash).with_context(|| format!("node sent genesis hash `{}`", self.genesis_hash))
    }

    /// The fee floor, parsed.
    pub(crate) fn fee_floor(&self) -> anyhow::Result<u128> {
        taksa_consensus::genesis::parse_amount(&self.fee_floor)
            .with_context(|| format!("node sent fee floor `{}`", self.fee_floor))
    }

    /// The account-creation fee, parsed; 100 fee floors when the node does not say.
    pub(crate) fn account_creation_fee(&self) -> anyhow::Result<u128> {
        match &self.account_creation_fee {
            Some(fee) => taksa_consensus::genesis::parse_amount(fee)
                .with_context(|| format!("node sent account creation fee `{fee}`")),
            None => Ok(taksa_consensus::state::account_creation_fee(self.fee_floor()?)),
        }
    }

    /// The token symbol, "TKS" when the node does not say.
    pub(crate) fn symbol(&self) -> &str {
        self.token_symbol.as_deref().unwrap_or("TKS")
    }
}

/// `account_get`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountView {
    /// Finalized balance, base units.
    pub(crate) balance: String,
    /// The next nonce after finalized transactions.
    pub(crate) nonce: u64,
    /// The next nonce counting the node's pool.
    #[serde(default)]
    pub(crate) next_nonce: Option<u64>,
    /// Transactions of this account waiting in the pool.
    #[serde(default)]
    pub(crate) pending: Option<Value>,
}

/// One item of `account_getHistory`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryItem {
    /// Transaction hash.
    pub(crate) hash: String,
    /// Block height.
    pub(crate) height: u64,
    /// Block time, Unix milliseconds.
    #[serde(default)]
    pub(crate) timestamp_ms: Option<u64>,
    /// "sent", "received" or "self".
    pub(crate) direction: String,
    /// Sender.
    pub(crate) from: String,
    /// Recipient.
    pub(crate) to: String,
    /// Amount, base units.
    pub(crate) amount: String,
    /// Fee, base units.
    pub(crate) fee: String,
    /// Sender's nonce.
    pub(crate) nonce: u64,
    /// Memo.
    #[serde(default)]
    pub(crate) memo: Option<String>,
}

/// `account_getHistory`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryPage {
    /// Newest first.
    pub(crate) items: Vec<HistoryItem>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(default)]
    pub(crate) next_cursor: Option<Value>,
}

/// `tx_get`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TxStatus {
    /// "pending", "finalized", "rejected" or "expired".
    pub(crate) status: String,
    /// Block height, once included.
    #[serde(default)]
    pub(crate) height: Option<u64>,
    /// Position in the block.
    #[serde(default)]
    pub(crate) index: Option<u64>,
    /// Why it was rejected or expired (machine-readable).
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// Why, for people.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// For reason `replaced`: the transaction that replaced it.
    #[serde(default)]
    pub(crate) replaced_by: Option<String>,
}

impl TxStatus {
    /// Whether the status can no longer change.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "finalized" | "rejected" | "expired")
    }
}

/// How following a transaction over a subscription ended.
pub(crate) enum Followed {
    /// Its final status.
    Final(TxStatus),
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

    async fn call<T: DeserializeOwned>(&self, method: &str, params: ArrayParams) -> anyhow::Result<T> {
        let value: Value = self.http.request(method, params).await.map_err(|e| self.describe(method, e))?;
        serde_json::from_value(value).with_context(|| format!("unexpected answer to {method} from {}", self.url))
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
            other => anyhow::anyhow!("{method} at {}: {other}", self.url),
        }
    }

    /// `chain_getInfo`.
    pub(crate) async fn chain_info(&self) -> anyhow::Result<ChainInfo> {
        self.call("chain_getInfo", rpc_params![]).await
    }

    /// `account_get`.
    pub(crate) async fn account(&self, address: &str) -> anyhow::Result<AccountView> {
        self.call("account_get", rpc_params![address]).await
    }

    /// `account_getNonce`: the next nonce, counting the node's pool.
    pub(crate) async fn next_nonce(&self, address: &str) -> anyhow::Result<u64> {
        self.call("account_getNonce", rpc_params![address]).await
    }

    /// `account_getHistory`.
    pub(crate) async fn history(
        &self,
        address: &str,
        cursor: Option<Value>,
        limit: u32,
    ) -> anyhow::Result<HistoryPage> {
        let mut opts = serde_json::Map::new();
        opts.insert("limit".into(), limit.into());
        if let Some(c) = cursor {
            opts.insert("cursor".into(), c);
        }
        self.call("account_getHistory", rpc_params![address, Value::Object(opts)]).await
    }

    /// `tx_submit`: returns the hash the node computed.
    pub(crate) async fn submit(&self, signed_bytes: &[u8]) -> anyhow::Result<String> {
        self.call("tx_submit", rpc_params![format!("0x{}", hex::encode(signed_bytes))]).await
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
        let mut sub: Subscription<Value> =
            match ws.subscribe("tx_subscribeStatus", rpc_params![hash.to_hex()], "tx_unsubscribeStatus").await {
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
            let status = match next.map(|item| item.map(serde_json::from_value::<TxStatus>)) {
                Some(Ok(Ok(status))) => status,
                Some(Ok(Err(e))) => {
                    return Followed::Unavailable(anyhow::anyhow!("unexpected status notification: {e}"))
                }
                Some(Err(e)) => return Followed::Unavailable(anyhow::anyhow!("status subscription failed: {e}")),
                None => return Followed::Unavailable(anyhow::anyhow!("the node ended the status subscription")),
            };
            if status.is_final() {
                return Followed::Final(status);
            }
            last = status.status;
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

    /// `tx_get`; `None` when the node does not know the hash.
    pub(crate) async fn tx_status(&self, hash: &Hash) -> anyhow::Result<Option<TxStatus>> {
        self.call("tx_get", rpc_params![hash.to_hex()]).await
    }
}
