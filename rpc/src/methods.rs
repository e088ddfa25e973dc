//! The methods: one table of names and handlers, so the registered set, the OpenRPC document
//! and the docs can be checked against each other.

use std::sync::Arc;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::backend::{Backend, HistoryOrder};
use crate::cursor::{self, HistoryCursor};
use crate::error::{ApiError, ErrorCode, RpcError};
use crate::explorer;
use crate::json::{
    AccountJson, BlockJson, ChainInfoJson, ConsensusStatusJson, EvidenceJson, HealthJson, HistoryItemJson, HistoryJson,
    NodeInfoJson, PeerJson, TxStatusJson,
};
use crate::params::{self, Args};

/// What every handler needs.
pub(crate) struct Ctx {
    pub(crate) backend: Arc<dyn Backend>,
    /// The network's address prefix, read once at start: it never changes.
    pub(crate) hrp: String,
    /// The OpenRPC document served by `rpc.discover`.
    pub(crate) openrpc: Value,
    /// Bounds the backend calls running at once, so a flood of requests queues here instead of
    /// occupying every thread of the blocking pool.
    pub(crate) calls: Arc<Semaphore>,
    /// How long a subscriber's full buffer is waited on before it is told `lagged`.
    pub(crate) lag_timeout: std::time::Duration,
    /// Counts the subscriptions told `lagged`, for `/metrics`.
    pub(crate) lagged: crate::metrics::LaggedCounter,
}

type Handler = fn(&Ctx, &Params<'_>) -> Result<Value, ApiError>;

/// Every method this server answers.
pub(crate) const METHODS: &[(&str, Handler)] = &[
    ("chain_getInfo", chain_get_info),
    ("chain_getBlock", chain_get_block),
    ("account_get", account_get),
    ("account_getBalance", account_get_balance),
    ("account_getNonce", account_get_nonce),
    ("account_getHistory", account_get_history),
    ("tx_submit", tx_submit),
    ("tx_get", tx_get),
    ("node_health", node_health),
    ("node_info", node_info),
    ("node_peers", node_peers),
    ("consensus_getStatus", consensus_get_status),
    ("consensus_getEvidence", consensus_get_evidence),
    ("explorer_search", explorer::explorer_search),
    ("explorer_recentBlocks", explorer::explorer_recent_blocks),
    ("explorer_getStats", explorer::explorer_get_stats),
    ("explorer_getValidators", explorer::explorer_get_validators),
    ("rpc.discover", rpc_discover),
];

/// Builds the module of every method in [`METHODS`].
pub(crate) fn module(ctx: Arc<Ctx>) -> Result<RpcModule<Ctx>, RpcError> {
    let mut module = RpcModule::from_arc(ctx);
    for &(name, handler) in METHODS {
        module
            .register_async_method(name, move |params, ctx, _| run(ctx, params, handler))
            .map_err(|e| RpcError::Register { method: name, message: e.to_string() })?;
    }
    crate::subscribe::register(&mut module)?;
    Ok(module)
}

/// Runs a handler on the blocking pool: the backend may read from disk or wait on a lock.
async fn run(ctx: Arc<Ctx>, params: Params<'static>, handler: Handler) -> Result<Value, ErrorObjectOwned> {
    let permit = ctx.calls.clone().acquire_owned().await.map_err(|_| ApiError::internal("the server is stopping"))?;
    let outcome = tokio::task::spawn_blocking(move || {
        // Held by the blocking task, so a client that hangs up does not free the slot early.
        let _permit = permit;
        handler(&ctx, &params)
    })
    .await;
    match outcome {
        Ok(result) => result.map_err(ErrorObjectOwned::from),
        Err(e) => {
            tracing::error!(target: "rpc", error = %e, "method handler panicked");
            Err(ApiError::internal("the method failed inside the node").into())
        }
    }
}

pub(crate) fn to_json<T: Serialize>(value: T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(format!("cannot serialize the result: {e}")))
}

fn chain_get_info(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    to_json(ChainInfoJson::from(ctx.backend.chain_info()))
}

fn chain_get_block(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["id"])?;
    let raw = args.required(0, "id")?;
    let id = params::block_id(raw)?;
    match ctx.backend.block(id)? {
        Some(record) => to_json(BlockJson::new(&record.block, record.finalized, &ctx.hrp)),
        None => {
            Err(ApiError::new(ErrorCode::BlockNotFound, "no block with that height or hash").with("id", raw.clone()))
        }
    }
}

fn account_get(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["address"])?;
    let address = params::address(args.required(0, "address")?, &ctx.hrp)?;
    let info = ctx.backend.account(&address);
    to_json(AccountJson::new(address.to_bech32(&ctx.hrp), &info))
}

fn account_get_balance(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["address"])?;
    let address = params::address(args.required(0, "address")?, &ctx.hrp)?;
    Ok(Value::from(ctx.backend.account(&address).account.balance.to_string()))
}

fn account_get_nonce(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["address"])?;
    let address = params::address(args.required(0, "address")?, &ctx.hrp)?;
    Ok(Value::from(ctx.backend.account(&address).next_nonce))
}

fn account_get_history(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["address", "options"])?;
    let address = params::address(args.required(0, "address")?, &ctx.hrp)?;
    let query = params::history_query(args.optional(1, "options"))?;
    let page = ctx.backend.history(&address, &query)?;
    let reverse = match query.order {
        HistoryOrder::NewestFirst => HistoryOrder::OldestFirst,
        HistoryOrder::OldestFirst => HistoryOrder::NewestFirst,
    };
    let cursor = |after, order| cursor::encode_history(HistoryCursor { after, order, filter: query.filter });
    to_json(HistoryJson {
        items: page.entries.iter().map(|e| HistoryItemJson::new(e, &ctx.hrp)).collect(),
        next_cursor: page.next.map(|after| cursor(after, query.order)),
        prev_cursor: page.prev.map(|after| cursor(after, reverse)),
    })
}

fn tx_submit(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["tx"])?;
    let tx = params::signed_tx(args.required(0, "tx")?)?;
    let hash = ctx.backend.submit(tx)?;
    Ok(Value::from(hash.to_hex()))
}

fn tx_get(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["hash"])?;
    let hash = params::hash(args.required(0, "hash")?, "hash")?;
    match ctx.backend.tx(&hash)? {
        Some(record) => to_json(TxStatusJson::new(&record, &ctx.hrp)),
        None => Err(ApiError::new(ErrorCode::TxNotFound, "this node does not know that transaction")
            .with("hash", hash.to_hex())),
    }
}

fn node_health(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    to_json(HealthJson::from(ctx.backend.health()))
}

fn node_info(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    to_json(NodeInfoJson::new(ctx.backend.node_info(), &ctx.hrp))
}

fn node_peers(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    to_json(ctx.backend.peers().into_iter().map(PeerJson::from).collect::<Vec<_>>())
}

fn consensus_get_status(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    to_json(ConsensusStatusJson::new(&ctx.backend.consensus_status(), &ctx.hrp))
}

fn consensus_get_evidence(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    let args = Args::read(params, &["limit"])?;
    let limit = params::evidence_limit(args.optional(0, "limit"))?;
    let evidence = ctx.backend.evidence(limit);
    // The page is bounded here too, whatever the backend returns.
    to_json(evidence.iter().take(limit).map(|e| EvidenceJson::new(e, &ctx.hrp)).collect::<Vec<_>>())
}

fn rpc_discover(ctx: &Ctx, params: &Params<'_>) -> Result<Value, ApiError> {
    Args::read(params, &[])?;
    Ok(ctx.openrpc.clone())
}
