//! The node's JSON-RPC interface as one typed definition: jsonrpsee generates the server trait
//! the node implements ([`TaksaApiServer`]) and the client the wallet, the bench and the tests
//! call ([`TaksaApiClient`], on an HTTP or WebSocket client), so a method's name, parameters and
//! result cannot differ between the two.
//!
//! Results are the types of [`crate::json`]. Parameters cross the wire as [`Param`]: the client
//! sends a typed value; the server receives whatever JSON was sent and reads it itself, so each
//! bad value gets its own error code and `data` (a malformed address is `bad_address`, not a
//! generic parse failure). The parameter list of each method (how many, which names, which are
//! required) is checked before the method runs, against `openrpc.json`.

use std::marker::PhantomData;

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::ApiError;
pub use crate::json::*;

/// One parameter of a method: a `T` as the client sends it; any JSON as the server receives
/// it, read by the method with its own errors.
pub struct Param<T> {
    raw: Value,
    _sent_as: PhantomData<fn() -> T>,
}

impl<T: Serialize> Param<T> {
    /// The parameter `value`.
    pub fn new(value: T) -> Param<T> {
        // Serializing plain data (strings, numbers, the option structs below) cannot fail; were
        // it to, the server would see null and say the parameter is missing.
        Param { raw: serde_json::to_value(value).unwrap_or(Value::Null), _sent_as: PhantomData }
    }
}

impl<T> Param<T> {
    /// The JSON as received, when given and not null.
    pub(crate) fn given(&self) -> Option<&Value> {
        Some(&self.raw).filter(|v| !v.is_null())
    }

    /// The JSON as received; a missing or null parameter is `invalid_params` naming it.
    pub(crate) fn required(&self, name: &str) -> Result<&Value, ApiError> {
        self.given().ok_or_else(|| ApiError::invalid_params(format!("missing param `{name}`")).with("param", name))
    }
}

impl<T: Serialize> From<T> for Param<T> {
    fn from(value: T) -> Param<T> {
        Param::new(value)
    }
}

impl<T> Clone for Param<T> {
    fn clone(&self) -> Param<T> {
        Param { raw: self.raw.clone(), _sent_as: PhantomData }
    }
}

impl<T> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T> Serialize for Param<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Param<T> {
    /// Accepts any JSON, and a missing object field as null.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Param<T>, D::Error> {
        let raw = Option::<Value>::deserialize(deserializer)?.unwrap_or(Value::Null);
        Ok(Param { raw, _sent_as: PhantomData })
    }
}

/// A block by height or by hash (`0x` + 64 hex digits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockRef {
    /// By height.
    Height(u64),
    /// By hash.
    Hash(String),
}

/// The options of `account_getHistory`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOptions {
    /// Continue a listing (a `nextCursor` or `prevCursor` from an earlier page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The page size, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `newest` (default) or `oldest` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// `all` (default), `sent` or `received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// Where a stream starts: after a cursor, at a height, or (neither) with what comes next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamOptions {
    /// Strictly after this event cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// From the first event at this height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_height: Option<u64>,
}

/// The options of `explorer_recentBlocks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentBlocksOptions {
    /// How many, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only blocks below this height (a `nextBeforeHeight` from an earlier page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_height: Option<u64>,
}

/// The options of `explorer_getStats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsOptions {
    /// The blocks the figures cover, 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

/// Every method and subscription of a Taksa node. `docs/rpc.md` describes each; `rpc.discover`
/// returns them as an OpenRPC document.
#[rpc(server, client)]
pub trait TaksaApi {
    /// The chain's identity, head, finality, validators and fees.
    #[method(name = "chain_getInfo")]
    async fn chain_get_info(&self) -> RpcResult<ChainInfoJson>;

    /// A block with its transactions, by height or hash.
    #[method(name = "chain_getBlock")]
    async fn chain_get_block(&self, id: Param<BlockRef>) -> RpcResult<BlockJson>;

    /// An account: balance, nonce and what it has in the pool.
    #[method(name = "account_get")]
    async fn account_get(&self, address: Param<String>) -> RpcResult<AccountJson>;

    /// An account's finalized balance, base units.
    #[method(name = "account_getBalance")]
    async fn account_get_balance(&self, address: Param<String>) -> RpcResult<String>;

    /// The nonce the account's next transaction should carry, counting the pool.
    #[method(name = "account_getNonce")]
    async fn account_get_nonce(&self, address: Param<String>) -> RpcResult<u64>;

    /// An account (or its absence) proven under the finalized head's state root, with the
    /// header and its finalization certificate.
    #[method(name = "account_getProof")]
    async fn account_get_proof(
        &self,
        address: Param<String>,
        height: Option<Param<u64>>,
    ) -> RpcResult<AccountProofJson>;

    /// A page of an account's finalized transfers.
    #[method(name = "account_getHistory")]
    async fn account_get_history(
        &self,
        address: Param<String>,
        options: Option<Param<HistoryOptions>>,
    ) -> RpcResult<HistoryJson>;

    /// Submits a signed transaction (hex of its canonical bytes); answers its hash.
    #[method(name = "tx_submit")]
    async fn tx_submit(&self, tx: Param<String>) -> RpcResult<String>;

    /// Submits up to [`crate::TX_SUBMIT_BATCH_MAX`] signed transactions; each gets the answer
    /// `tx_submit` would give it, in order.
    #[method(name = "tx_submitBatch")]
    async fn tx_submit_batch(&self, txs: Param<Vec<String>>) -> RpcResult<Vec<SubmitOutcomeJson>>;

    /// The receipt of a transaction in a final block: what `taksa verify-receipt` checks with
    /// only the genesis (`docs/receipts.md`).
    #[method(name = "tx_getProof")]
    async fn tx_get_proof(&self, hash: Param<String>) -> RpcResult<taksa_consensus::receipt::PaymentReceipt>;

    /// A transaction's status.
    #[method(name = "tx_get")]
    async fn tx_get(&self, hash: Param<String>) -> RpcResult<TxStatusJson>;

    /// Whether the node answers, with its heights, pool and peers.
    #[method(name = "node_health")]
    async fn node_health(&self) -> RpcResult<HealthJson>;

    /// The node's peer id, addresses, role and version.
    #[method(name = "node_info")]
    async fn node_info(&self) -> RpcResult<NodeInfoJson>;

    /// The connected peers.
    #[method(name = "node_peers")]
    async fn node_peers(&self) -> RpcResult<Vec<PeerJson>>;

    /// The validator set of the epoch of the block at `height` (default: the epoch consensus
    /// runs now), as the chain decided it.
    #[method(name = "validators_getSet")]
    async fn validators_get_set(&self, height: Option<Param<u64>>) -> RpcResult<ValidatorSetJson>;

    /// The current set, the changes to it collecting votes, and those that passed this epoch.
    #[method(name = "validators_getPendingVotes")]
    async fn validators_get_pending_votes(&self) -> RpcResult<PendingVotesJson>;

    /// The consensus engine's view, leader and finality.
    #[method(name = "consensus_getStatus")]
    async fn consensus_get_status(&self) -> RpcResult<ConsensusStatusJson>;

    /// Equivocation evidence held by the node, newest first.
    #[method(name = "consensus_getEvidence")]
    async fn consensus_get_evidence(&self, limit: Option<Param<u32>>) -> RpcResult<Vec<EvidenceJson>>;

    /// One search box: a height, a block or transaction hash, or an address.
    #[method(name = "explorer_search")]
    async fn explorer_search(&self, query: Param<String>) -> RpcResult<SearchJson>;

    /// The newest finalized blocks, newest first.
    #[method(name = "explorer_recentBlocks")]
    async fn explorer_recent_blocks(&self, options: Option<Param<RecentBlocksOptions>>) -> RpcResult<RecentBlocksJson>;

    /// Throughput and chain figures over a window of blocks.
    #[method(name = "explorer_getStats")]
    async fn explorer_get_stats(&self, options: Option<Param<StatsOptions>>) -> RpcResult<StatsJson>;

    /// Each validator's signing record.
    #[method(name = "explorer_getValidators")]
    async fn explorer_get_validators(&self) -> RpcResult<Vec<ValidatorStatsJson>>;

    /// This interface as an OpenRPC 1.2.6 document.
    #[method(name = "rpc.discover")]
    async fn rpc_discover(&self) -> RpcResult<Value>;

    /// Notarized and finalized heads.
    #[subscription(
        name = "chain_subscribeNewHeads" => "chain_newHead",
        unsubscribe = "chain_unsubscribeNewHeads",
        item = NotificationJson
    )]
    async fn subscribe_new_heads(&self, options: Option<Param<StreamOptions>>) -> SubscriptionResult;

    /// Finalized blocks.
    #[subscription(
        name = "chain_subscribeFinalized" => "chain_finalized",
        unsubscribe = "chain_unsubscribeFinalized",
        item = NotificationJson
    )]
    async fn subscribe_finalized(&self, options: Option<Param<StreamOptions>>) -> SubscriptionResult;

    /// Finalized transfers touching an address.
    #[subscription(name = "account_subscribe" => "account_activity", unsubscribe = "account_unsubscribe", item = NotificationJson)]
    async fn subscribe_account(
        &self,
        address: Param<String>,
        options: Option<Param<StreamOptions>>,
    ) -> SubscriptionResult;

    /// A transaction's status until it is final.
    #[subscription(name = "tx_subscribeStatus" => "tx_status", unsubscribe = "tx_unsubscribeStatus", item = NotificationJson)]
    async fn subscribe_tx_status(&self, hash: Param<String>) -> SubscriptionResult;

    /// Every finalized event: blocks and transfers.
    #[subscription(name = "events_subscribe" => "events_event", unsubscribe = "events_unsubscribe", item = NotificationJson)]
    async fn subscribe_events(&self, options: Option<Param<StreamOptions>>) -> SubscriptionResult;
}
