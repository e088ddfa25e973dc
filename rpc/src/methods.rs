//! The methods: the node's side of [`TaksaApiServer`]. Each reads its parameters strictly (with
//! a specific error for each kind of bad input) and runs its backend call on the blocking pool,
//! bounded by the calls-in-flight semaphore.

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, RpcModule};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::api::{
    AccountJson, AccountProofJson, BlockJson, BlockRef, ChainInfoJson, ConsensusStatusJson, EvidenceJson, HealthJson,
    HistoryItemJson, HistoryJson, HistoryOptions, NodeInfoJson, Param, PeerJson, PendingVotesJson, RecentBlocksJson,
    RecentBlocksOptions, SearchJson, StatsJson, StatsOptions, StreamOptions, SubmitOutcomeJson, TaksaApiServer,
    TxStatusJson, ValidatorSetJson, ValidatorStatsJson,
};
use crate::backend::{Backend, HistoryOrder, TxProof};
use crate::cursor::{self, HistoryCursor};
use crate::error::{ApiError, ErrorCode, RpcError};
use crate::explorer;
use crate::json::ErrorJson;
use crate::params;
use crate::subscribe::{self, Stream};
use crate::TX_SUBMIT_BATCH_MAX;

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
    /// Bounds the `tx_submitBatch` calls running at once (each verifies up to 512 signatures on
    /// every core), so that batches cannot take every core from consensus.
    pub(crate) batch_calls: Arc<Semaphore>,
    /// How long a subscriber's full buffer is waited on before it is told `lagged`.
    pub(crate) lag_timeout: std::time::Duration,
    /// Counts the subscriptions told `lagged`, for `/metrics`.
    pub(crate) lagged: crate::metrics::LaggedCounter,
}

/// The server: every method of [`TaksaApiServer`] over one [`Ctx`].
pub(crate) struct Api {
    ctx: Arc<Ctx>,
}

/// Builds the module of every method and subscription.
pub(crate) fn module(ctx: Arc<Ctx>) -> Result<RpcModule<Api>, RpcError> {
    Ok(Api { ctx }.into_rpc())
}

impl Api {
    /// Runs `f` on the blocking pool: the backend may read from disk or wait on a lock.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ctx) -> Result<T, ApiError> + Send + 'static,
    ) -> RpcResult<T> {
        let ctx = self.ctx.clone();
        let permit =
            ctx.calls.clone().acquire_owned().await.map_err(|_| ApiError::internal("the server is stopping"))?;
        let outcome = tokio::task::spawn_blocking(move || {
            // Held by the blocking task, so a client that hangs up does not free the slot early.
            let _permit = permit;
            f(&ctx)
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
}

impl Api {
    /// Runs `f` here, on the async worker: only for work that reads memory (parameters,
    /// [`Backend::account_cached`]).
    fn inline<T>(&self, f: impl FnOnce(&Ctx) -> Result<T, ApiError>) -> RpcResult<T> {
        f(&self.ctx).map_err(ErrorObjectOwned::from)
    }

    /// The `address` parameter.
    fn address(&self, address: Param<String>) -> RpcResult<taksa_consensus::Address> {
        self.inline(move |ctx| params::address(address.required("address")?, &ctx.hrp))
    }

    /// An account: from memory on this worker when the node's state cache holds it, else read
    /// from disk on the blocking pool.
    async fn account_info(&self, address: taksa_consensus::Address) -> RpcResult<crate::backend::AccountInfo> {
        match self.ctx.backend.account_cached(&address) {
            Some(info) => Ok(info),
            None => self.run(move |ctx| Ok(ctx.backend.account(&address))).await,
        }
    }

    /// Runs a stream subscription from its `options`.
    async fn stream(
        &self,
        pending: PendingSubscriptionSink,
        options: &Option<Param<StreamOptions>>,
        stream: Stream,
    ) -> SubscriptionResult {
        let start = subscribe::start_options(given(options));
        subscribe::run_stream(pending, self.ctx.clone(), stream, start).await;
        Ok(())
    }
}

/// An absent optional parameter, as the handlers read it.
fn given<T>(p: &Option<Param<T>>) -> Option<&Value> {
    p.as_ref().and_then(Param::given)
}

#[async_trait]
impl TaksaApiServer for Api {
    async fn chain_get_info(&self) -> RpcResult<ChainInfoJson> {
        self.run(|ctx| Ok(ChainInfoJson::from(ctx.backend.chain_info()))).await
    }

    async fn chain_get_block(&self, id: Param<BlockRef>) -> RpcResult<BlockJson> {
        self.run(move |ctx| {
            let raw = id.required("id")?;
            match ctx.backend.block(params::block_id(raw)?)? {
                Some(record) => Ok(BlockJson::new(&record.block, record.finalized, &ctx.hrp)),
                None => Err(ApiError::new(ErrorCode::BlockNotFound, "no block with that height or hash")
                    .with("id", raw.clone())),
            }
        })
        .await
    }

    async fn account_get(&self, address: Param<String>) -> RpcResult<AccountJson> {
        let address = self.address(address)?;
        let info = self.account_info(address).await?;
        Ok(AccountJson::new(address.to_bech32(&self.ctx.hrp), &info))
    }

    async fn account_get_balance(&self, address: Param<String>) -> RpcResult<String> {
        let address = self.address(address)?;
        Ok(self.account_info(address).await?.account.balance.to_string())
    }

    async fn account_get_nonce(&self, address: Param<String>) -> RpcResult<u64> {
        let address = self.address(address)?;
        Ok(self.account_info(address).await?.next_nonce)
    }

    async fn account_get_proof(
        &self,
        address: Param<String>,
        height: Option<Param<u64>>,
    ) -> RpcResult<AccountProofJson> {
        self.run(move |ctx| {
            let address = params::address(address.required("address")?, &ctx.hrp)?;
            let wanted = given(&height).map(|h| params::height(h, "height")).transpose()?;
            let proof = ctx.backend.account_proof(&address, wanted)?;
            let key = taksa_consensus::tree::account_key(&address);
            Ok(AccountProofJson::new(address.to_bech32(&ctx.hrp), &key, &proof))
        })
        .await
    }

    async fn account_get_history(
        &self,
        address: Param<String>,
        options: Option<Param<HistoryOptions>>,
    ) -> RpcResult<HistoryJson> {
        self.run(move |ctx| {
            let address = params::address(address.required("address")?, &ctx.hrp)?;
            let query = params::history_query(given(&options))?;
            let page = ctx.backend.history(&address, &query)?;
            let reverse = match query.order {
                HistoryOrder::NewestFirst => HistoryOrder::OldestFirst,
                HistoryOrder::OldestFirst => HistoryOrder::NewestFirst,
            };
            let cursor = |after, order| cursor::encode_history(HistoryCursor { after, order, filter: query.filter });
            Ok(HistoryJson {
                items: page.entries.iter().map(|e| HistoryItemJson::new(e, &ctx.hrp)).collect(),
                next_cursor: page.next.map(|after| cursor(after, query.order)),
                prev_cursor: page.prev.map(|after| cursor(after, reverse)),
            })
        })
        .await
    }

    async fn tx_submit(&self, tx: Param<String>) -> RpcResult<String> {
        self.run(move |ctx| {
            let tx = params::signed_tx(tx.required("tx")?)?;
            Ok(ctx.backend.submit(tx)?.to_hex())
        })
        .await
    }

    async fn tx_submit_batch(&self, txs: Param<Vec<String>>) -> RpcResult<Vec<SubmitOutcomeJson>> {
        let _batch = self
            .ctx
            .batch_calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the server is stopping"))?;
        self.run(move |ctx| {
            let raw = txs.required("txs")?;
            let items = raw.as_array().ok_or_else(|| {
                ApiError::invalid_params("`txs` must be an array of transactions as hex").with("param", "txs")
            })?;
            if items.len() > TX_SUBMIT_BATCH_MAX {
                return Err(ApiError::invalid_params(format!(
                    "{} transactions; one call carries at most {TX_SUBMIT_BATCH_MAX}",
                    items.len()
                ))
                .with("param", "txs")
                .with("itemsMax", TX_SUBMIT_BATCH_MAX));
            }
            let refused = |e: ApiError| {
                let e = ErrorObjectOwned::from(e);
                let data = e.data().and_then(|d| serde_json::from_str(d.get()).ok());
                SubmitOutcomeJson {
                    hash: None,
                    error: Some(ErrorJson { code: e.code(), message: e.message().to_owned(), data }),
                }
            };
            let mut out: Vec<Option<SubmitOutcomeJson>> = vec![None; items.len()];
            let mut decoded = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match params::signed_tx(item) {
                    Ok(tx) => decoded.push((i, tx)),
                    Err(e) => out[i] = Some(refused(e)),
                }
            }
            let (indices, txs): (Vec<usize>, Vec<_>) = decoded.into_iter().unzip();
            let answers = ctx.backend.submit_many(txs);
            if answers.len() != indices.len() {
                return Err(ApiError::internal("the node answered a different number of transactions"));
            }
            for (i, answer) in indices.into_iter().zip(answers) {
                out[i] = Some(match answer {
                    Ok(hash) => SubmitOutcomeJson { hash: Some(hash.to_hex()), error: None },
                    Err(e) => refused(ApiError::from(e)),
                });
            }
            let unanswered = || refused(ApiError::internal("no answer for this transaction"));
            Ok(out.into_iter().map(|o| o.unwrap_or_else(unanswered)).collect())
        })
        .await
    }

    async fn tx_get_proof(&self, hash: Param<String>) -> RpcResult<taksa_consensus::receipt::PaymentReceipt> {
        self.run(move |ctx| {
            let hash = params::hash(hash.required("hash")?, "hash")?;
            match ctx.backend.tx_proof(&hash)? {
                TxProof::Receipt(r) => Ok(*r),
                TxProof::NotFinal => Err(ApiError::new(
                    ErrorCode::TxNotFound,
                    "no final block on this node holds that transaction (tx_get says whether it is pending)",
                )
                .with("hash", hash.to_hex())),
                TxProof::Uncertified { height } => Err(ApiError::new(
                    ErrorCode::ProofUnavailable,
                    format!(
                        "the transaction is final at height {height}, but this node stores no finalization certificate \
                         within {} blocks of it yet; retry after the next blocks",
                        taksa_consensus::receipt::RECEIPT_HEADERS_MAX
                    ),
                )
                .with("height", height)),
            }
        })
        .await
    }

    async fn tx_get(&self, hash: Param<String>) -> RpcResult<TxStatusJson> {
        self.run(move |ctx| {
            let hash = params::hash(hash.required("hash")?, "hash")?;
            match ctx.backend.tx(&hash)? {
                Some(record) => Ok(TxStatusJson::new(&record, &ctx.hrp)),
                None => Err(ApiError::new(ErrorCode::TxNotFound, "this node does not know that transaction")
                    .with("hash", hash.to_hex())),
            }
        })
        .await
    }

    async fn node_health(&self) -> RpcResult<HealthJson> {
        self.run(|ctx| Ok(HealthJson::from(ctx.backend.health()))).await
    }

    async fn node_info(&self) -> RpcResult<NodeInfoJson> {
        self.run(|ctx| Ok(NodeInfoJson::new(ctx.backend.node_info(), &ctx.hrp))).await
    }

    async fn node_peers(&self) -> RpcResult<Vec<PeerJson>> {
        self.run(|ctx| Ok(ctx.backend.peers().into_iter().map(PeerJson::from).collect())).await
    }

    async fn validators_get_set(&self, height: Option<Param<u64>>) -> RpcResult<ValidatorSetJson> {
        self.run(move |ctx| {
            let wanted = given(&height).map(|h| params::height(h, "height")).transpose()?;
            let epochs = ctx.backend.epochs();
            let (head, _) = ctx.backend.governance();
            let epoch = epochs.of_height(wanted.unwrap_or(head.saturating_add(1)));
            match ctx.backend.validator_set(epoch)? {
                Some(validators) => Ok(ValidatorSetJson::new(epoch, epochs, &validators, &ctx.hrp)),
                None => Err(ApiError::new(
                    ErrorCode::BlockNotFound,
                    format!(
                        "height {} is in epoch {epoch}, which has not started: the head is at {head}, in epoch {}",
                        wanted.unwrap_or_default(),
                        epochs.after(head)
                    ),
                )
                .with("epoch", epoch)
                .with("headHeight", head)),
            }
        })
        .await
    }

    async fn validators_get_pending_votes(&self) -> RpcResult<PendingVotesJson> {
        self.run(|ctx| {
            let (head, governance) = ctx.backend.governance();
            Ok(PendingVotesJson::new(head, ctx.backend.epochs(), &governance, &ctx.hrp))
        })
        .await
    }

    async fn consensus_get_status(&self) -> RpcResult<ConsensusStatusJson> {
        self.run(|ctx| Ok(ConsensusStatusJson::new(&ctx.backend.consensus_status(), &ctx.hrp))).await
    }

    async fn consensus_get_evidence(&self, limit: Option<Param<u32>>) -> RpcResult<Vec<EvidenceJson>> {
        self.run(move |ctx| {
            let limit = params::evidence_limit(given(&limit))?;
            // The page is bounded here too, whatever the backend returns.
            Ok(ctx.backend.evidence(limit).iter().take(limit).map(|e| EvidenceJson::new(e, &ctx.hrp)).collect())
        })
        .await
    }

    async fn explorer_search(&self, query: Param<String>) -> RpcResult<SearchJson> {
        self.run(move |ctx| explorer::search(ctx, query.required("query")?)).await
    }

    async fn explorer_recent_blocks(&self, options: Option<Param<RecentBlocksOptions>>) -> RpcResult<RecentBlocksJson> {
        self.run(move |ctx| explorer::recent_blocks(ctx, given(&options))).await
    }

    async fn explorer_get_stats(&self, options: Option<Param<StatsOptions>>) -> RpcResult<StatsJson> {
        self.run(move |ctx| explorer::stats(ctx, given(&options))).await
    }

    async fn explorer_get_validators(&self) -> RpcResult<Vec<ValidatorStatsJson>> {
        self.run(|ctx| Ok(explorer::validators(ctx))).await
    }

    async fn rpc_discover(&self) -> RpcResult<Value> {
        Ok(self.ctx.openrpc.clone())
    }

    async fn subscribe_new_heads(
        &self,
        pending: PendingSubscriptionSink,
        options: Option<Param<StreamOptions>>,
    ) -> SubscriptionResult {
        self.stream(pending, &options, Stream::Heads).await
    }

    async fn subscribe_finalized(
        &self,
        pending: PendingSubscriptionSink,
        options: Option<Param<StreamOptions>>,
    ) -> SubscriptionResult {
        self.stream(pending, &options, Stream::Finalized).await
    }

    async fn subscribe_account(
        &self,
        pending: PendingSubscriptionSink,
        address: Param<String>,
        options: Option<Param<StreamOptions>>,
    ) -> SubscriptionResult {
        let parsed = address
            .required("address")
            .and_then(|a| params::address(a, &self.ctx.hrp))
            .and_then(|a| Ok((a, subscribe::start_options(given(&options))?)));
        match parsed {
            Ok((address, start)) => {
                subscribe::run_stream(pending, self.ctx.clone(), Stream::Account(address), Ok(start)).await
            }
            Err(e) => pending.reject(e).await,
        }
        Ok(())
    }

    async fn subscribe_tx_status(&self, pending: PendingSubscriptionSink, hash: Param<String>) -> SubscriptionResult {
        match hash.required("hash").and_then(|h| params::hash(h, "hash")) {
            Ok(hash) => subscribe::follow_tx(pending, self.ctx.clone(), hash).await,
            Err(e) => pending.reject(e).await,
        }
        Ok(())
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        options: Option<Param<StreamOptions>>,
    ) -> SubscriptionResult {
        self.stream(pending, &options, Stream::All).await
    }
}
