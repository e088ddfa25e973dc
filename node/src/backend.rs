//! The JSON-RPC backend: answers reads from storage and the pool, admits submissions.

use std::sync::Arc;

use taksa_consensus::governance::{Governance, Validator};
use taksa_consensus::receipt::{EpochLink, PaymentReceipt, RECEIPT_HEADERS_MAX};
use taksa_consensus::{Address, BlockEvent, Cursor, Event, Hash, SignedTransaction};
use taksa_rpc::{
    AccountInfo, AccountProof, Backend, BackendError, BlockId, BlockRecord, ChainInfo, ChainStats, ConsensusStatus,
    EventFilter, FeedItem, HealthInfo, HistoryEntry, HistoryFilter, HistoryOrder, HistoryPage, HistoryQuery, NodeInfo,
    NodeMetrics, NodeRole, PeerRecord, Readiness, SubmitError, SyncInfo, TxProof, TxRecord, TxStatus, ValidatorRecord,
};
use taksa_storage::{DroppedTx, HistoryItem, StorageError};
use tokio::sync::broadcast;

use crate::admission::{Admission, Origin};
use crate::chain::{now_ms, NoVerdict, Shared};
use taksa_consensus::pool::AdmitError;

/// The token's display symbol.
pub(crate) const TOKEN_SYMBOL: &str = "TKS";
/// Base units per token: 10^9.
pub(crate) const TOKEN_DECIMALS: u8 = 9;

/// The node's [`Backend`].
pub(crate) struct NodeBackend {
    pub(crate) shared: Arc<Shared>,
}

/// What a drop record tells a client: expired, or rejected with the pool's reason.
pub(crate) fn dropped_status(d: &DroppedTx) -> TxStatus {
    let (reason, message) = (d.reason.clone(), d.message.clone());
    if reason == "expired" {
        TxStatus::Expired { reason, message }
    } else {
        TxStatus::Rejected { reason, message, replaced_by: d.replaced_by }
    }
}

fn internal(e: StorageError) -> BackendError {
    BackendError::Internal { message: e.to_string() }
}

impl Backend for NodeBackend {
    fn chain_info(&self) -> ChainInfo {
        let s = &self.shared;
        let head = s.store.head();
        ChainInfo {
            chain_id: s.genesis.chain_id.clone(),
            genesis_hash: s.genesis_hash,
            address_hrp: s.genesis.address_hrp.clone(),
            finalized: head.clone(),
            head,
            // The set consensus runs now (the genesis set until a vote changes it).
            validators: s.store.governance().validators.iter().map(|v| (v.name.clone(), v.address)).collect(),
            block_time_ms: s.genesis.block_time_ms,
            fee_floor: s.genesis.fee_floor,
            account_creation_fee: taksa_consensus::state::account_creation_fee(s.genesis.fee_floor),
            token_symbol: TOKEN_SYMBOL.to_owned(),
            token_decimals: TOKEN_DECIMALS,
            sync: self.sync_info(),
        }
    }

    fn block(&self, id: BlockId) -> Result<Option<BlockRecord>, BackendError> {
        let store = &self.shared.store;
        let block = match id {
            BlockId::Height(h) => store.block_by_height(h),
            BlockId::Hash(h) => store.block_by_hash(&h),
        }
        .map_err(internal)?;
        Ok(block.map(|block| BlockRecord { block, finalized: true }))
    }

    fn account_cached(&self, address: &Address) -> Option<AccountInfo> {
        self.shared.store.cached_account(address)?;
        Some(self.account(address))
    }

    fn account(&self, address: &Address) -> AccountInfo {
        let s = &self.shared;
        // Any client may ask for any address: read without filling the state cache.
        let state = s.store.peeking();
        let account = s.store.peek_account(address);
        let pool = &s.chain().pool;
        let (next_nonce, pending) = (pool.next_nonce(address, &state), pool.pending_of(address));
        AccountInfo { account, next_nonce, pending }
    }

    fn account_proof(&self, address: &Address, height: Option<u64>) -> Result<AccountProof, BackendError> {
        let store = &self.shared.store;
        let (header, account, proof) = store.account_proof(address, height).map_err(|e| match e {
            StorageError::HistoryUnavailable { height, oldest, head } => {
                BackendError::ProofUnavailable { height, oldest, head }
            }
            e => internal(e),
        })?;
        let finalization = store.finalization(header.height).map_err(internal)?;
        Ok(AccountProof { header, account, proof, finalization })
    }

    fn tx_proof(&self, hash: &Hash) -> Result<TxProof, BackendError> {
        let s = &self.shared;
        let store = &s.store;
        let Some((tx, loc)) = store.tx(hash).map_err(internal)? else { return Ok(TxProof::NotFinal) };
        let block = store.block_by_height(loc.height).map_err(internal)?.ok_or_else(|| BackendError::Internal {
            message: format!("transaction {hash} is indexed at height {}, which holds no block", loc.height),
        })?;
        // The block's own finalization, or the nearest descendant's; headers are read only up
        // to the one it certifies.
        let head = store.head().height;
        let last = loc.height.saturating_add(RECEIPT_HEADERS_MAX as u64).min(head);
        let mut found = None;
        for height in loc.height..=last {
            if let Some(cert) = store.finalization(height).map_err(internal)? {
                found = Some((height, cert));
                break;
            }
        }
        let Some((certified, cert)) = found else { return Ok(TxProof::Uncertified { height: loc.height }) };
        let mut later = Vec::new();
        for height in loc.height.saturating_add(1)..=certified {
            let header = store.header_by_height(height).map_err(internal)?.ok_or_else(|| BackendError::Internal {
                message: format!("no block at height {height}, below the head {head}"),
            })?;
            later.push(header);
        }
        let hashes: Vec<Hash> = block.txs.iter().map(|t| t.hash()).collect();
        let index = usize::try_from(loc.index).unwrap_or(usize::MAX);
        let links = self.epoch_links(store.epochs().of_height(loc.height))?;
        let receipt =
            PaymentReceipt::new(&s.genesis_hash, &tx, &block.header, &hashes, index, &later, &cert).with_epochs(links);
        Ok(TxProof::Receipt(Box::new(receipt)))
    }

    fn history(&self, address: &Address, query: &HistoryQuery) -> Result<HistoryPage, BackendError> {
        let store = &self.shared.store;
        let newest_first = query.order == HistoryOrder::NewestFirst;
        let filter = match query.filter {
            HistoryFilter::All => taksa_storage::HistoryFilter::Any,
            HistoryFilter::Sent => taksa_storage::HistoryFilter::Sent,
            HistoryFilter::Received => taksa_storage::HistoryFilter::Received,
        };
        // One more than asked says whether a next page exists.
        let mut items = store
            .history_page(address, query.after, newest_first, filter, query.limit.saturating_add(1))
            .map_err(internal)?;
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        let entries = self.history_entries(&items)?;
        let next = if more { items.last().map(|i| (i.height, i.index)) } else { None };
        // Something lies before the first entry only if the listing did not start at the edge.
        let prev = match (query.after, items.first()) {
            (Some(_), Some(first)) => {
                let back = store.history_page(address, Some((first.height, first.index)), !newest_first, filter, 1);
                back.map_err(internal)?.first().map(|_| (first.height, first.index))
            }
            _ => None,
        };
        Ok(HistoryPage { entries, next, prev })
    }

    fn submit(&self, tx: SignedTransaction) -> Result<Hash, SubmitError> {
        self.submit_many(vec![tx]).pop().unwrap_or_else(|| Err(SubmitError::Internal("no verdict".into())))
    }

    /// The one admission path ([`Shared::admit_many`]), for `tx_submit` (a batch of one) and
    /// `tx_submitBatch`; what is newly admitted is gossiped.
    fn submit_many(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, SubmitError>> {
        self.shared
            .admit_many(txs, Origin::Rpc)
            .into_iter()
            .map(|(hash, admission)| match admission {
                Admission::Known => Ok(hash),
                Admission::Invalid(e) => Err(SubmitError::Rejected(e)),
                Admission::Pool(Ok(_)) => Ok(hash),
                Admission::Pool(Err(e)) => submit_error(hash, e),
                Admission::Unanswered(NoVerdict::Busy) => Err(SubmitError::Busy),
                Admission::Unanswered(NoVerdict::Stopped) => {
                    Err(SubmitError::Internal("the node's chain service stopped".into()))
                }
                Admission::Internal(e) => Err(SubmitError::Internal(e)),
            })
            .collect()
    }

    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, BackendError> {
        let snapshot = self.shared.chain();
        if let Some(tx) = snapshot.pool.get(hash) {
            return Ok(Some(TxRecord { hash: *hash, tx: Some(tx.clone()), status: TxStatus::Pending }));
        }
        if let Some(record) = self.stored_tx(hash)? {
            return Ok(Some(record));
        }
        // Out of the pool in this snapshot, so its block or drop record was written before it
        // was published; read the store once more in case that write landed after the read above.
        if let Some(tx) = snapshot.pool.leaving(hash).cloned() {
            if let Some(record) = self.stored_tx(hash)? {
                return Ok(Some(record));
            }
            return Ok(Some(TxRecord { hash: *hash, tx: Some(tx), status: TxStatus::Pending }));
        }
        Ok(None)
    }

    fn health(&self) -> HealthInfo {
        let s = &self.shared;
        let head = s.store.head().height;
        let pool = &s.chain().pool;
        let (mempool_txs, mempool_bytes) = (pool.len(), pool.bytes());
        let peers = s.peers.borrow().len();
        let syncing = self.sync_info().syncing;
        HealthInfo { head_height: head, finalized_height: head, mempool_txs, mempool_bytes, peers, syncing }
    }

    fn node_info(&self) -> NodeInfo {
        let s = &self.shared;
        NodeInfo {
            peer_id: s.p2p.as_ref().map(|p| p.local_peer_id().to_string()),
            listen_addrs: s.listen_addrs.clone(),
            role: s.validator.map_or(NodeRole::Full, |address| NodeRole::Validator { address }),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    fn peers(&self) -> Vec<PeerRecord> {
        let now = now_ms();
        let peers = Arc::clone(&self.shared.peers.borrow());
        peers
            .iter()
            .map(|p| PeerRecord {
                peer_id: p.peer.to_string(),
                address: p.addr.clone(),
                inbound: p.inbound,
                score: p.score,
                agent: p.agent.clone(),
                connected_ms: now.saturating_sub(p.connected_ms),
            })
            .collect()
    }

    fn consensus_status(&self) -> ConsensusStatus {
        let s = &self.shared;
        let head = s.store.head();
        let chain = s.chain();
        let status = chain.status.clone();
        let validators = chain.validators.len();
        let quorum = chain.validators.quorum();
        match status {
            Some(st) => ConsensusStatus {
                view: st.view,
                leader: st.leader,
                is_validator: st.is_validator,
                // The engine's view of finality may run ahead of what is committed here.
                finalized_height: head.height.max(st.finalized_height),
                finalized_view: st.finalized_view.max(head.view),
                finalized_hash: if st.finalized_height > head.height { st.finalized_hash } else { head.hash() },
                notarized_view: st.notarized_view,
                failed_views: u64::from(st.failed_views),
                evidence_count: st.evidence_count,
                validators,
                quorum,
            },
            None => ConsensusStatus {
                view: head.view.saturating_add(1),
                leader: chain.validators.leader_in(chain.epoch, head.view.saturating_add(1)),
                is_validator: s.validator.is_some(),
                finalized_height: head.height,
                finalized_view: head.view,
                finalized_hash: head.hash(),
                notarized_view: head.view,
                failed_views: 0,
                evidence_count: 0,
                validators,
                quorum,
            },
        }
    }

    fn evidence(&self, limit: usize) -> Vec<taksa_consensus::Evidence> {
        self.shared.chain().evidence.iter().rev().take(limit).cloned().collect()
    }

    fn events(
        &self,
        after: Option<Cursor>,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<(Cursor, Event)>, BackendError> {
        let store = &self.shared.store;
        match filter {
            EventFilter::All => store.events_after(after, limit),
            EventFilter::Blocks => store.block_events_after(after, limit),
            EventFilter::Address(a) => store.address_events_after(a, after, limit),
        }
        .map_err(internal)
    }

    fn last_cursor(&self) -> Cursor {
        let store = &self.shared.store;
        store.last_cursor().unwrap_or_else(|_| Cursor::new(store.head().height, 0))
    }

    fn feed(&self) -> broadcast::Receiver<FeedItem> {
        self.shared.feed.subscribe()
    }

    fn block_summaries(&self, below_height: Option<u64>, limit: usize) -> Result<Vec<BlockEvent>, BackendError> {
        self.shared.store.summaries_before(below_height, limit).map_err(internal)
    }

    fn stats(&self, window_blocks: usize) -> Result<ChainStats, BackendError> {
        let s = &self.shared;
        let blocks = s.store.summaries_before(None, window_blocks).map_err(internal)?;
        let window_txs: u64 = blocks.iter().map(|b| u64::from(b.tx_count)).sum();
        let span_ms = match (blocks.first(), blocks.last()) {
            (Some(newest), Some(oldest)) => newest.timestamp_ms.saturating_sub(oldest.timestamp_ms),
            _ => 0,
        };
        let gaps = blocks.len().saturating_sub(1);
        // The oldest block's transactions were made before the span began: rate over the gaps.
        let txs_in_span = window_txs.saturating_sub(blocks.last().map_or(0, |b| u64::from(b.tx_count)));
        let lags = Arc::clone(&s.chain().finality_lags_ms);
        let head = s.store.head().height;
        Ok(ChainStats {
            window_blocks: blocks.len() as u64,
            window_txs,
            tps: if span_ms > 0 { txs_in_span as f64 * 1000.0 / span_ms as f64 } else { 0.0 },
            block_time_ms: if gaps > 0 { span_ms as f64 / gaps as f64 } else { 0.0 },
            finality_lag_ms: (!lags.is_empty()).then(|| lags.iter().sum::<u64>() as f64 / lags.len() as f64),
            head_height: head,
            finalized_height: head,
            total_txs: s.store.txs_total(),
            total_accounts: s.store.account_count(),
            validators: s.chain().validators.len(),
            mempool_txs: s.chain().pool.len(),
        })
    }

    fn validators(&self) -> Vec<ValidatorRecord> {
        let s = &self.shared;
        let stats = s.store.validator_stats();
        let chain = s.chain();
        let governance = s.store.governance();
        let seen = Arc::clone(&chain.last_seen_ms);
        chain
            .validators
            .addresses()
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let st = stats.iter().find(|(a, _)| a == address).map(|(_, st)| *st).unwrap_or_default();
                // A validator hears itself without the network.
                let seen_ms =
                    if s.validator == Some(*address) { Some(now_ms()) } else { seen.get(i).copied().flatten() };
                // The name from the set in force, or the set that follows it (a validator that
                // a change removes keeps its seat until its epoch ends).
                let name = governance.validators.iter().find(|v| v.address == *address).map(|v| v.name.clone());
                let name = name.or_else(|| {
                    let at = s.genesis.validators.iter().position(|a| a == address)?;
                    s.genesis.validator_names.get(at).cloned()
                });
                ValidatorRecord {
                    name: name.unwrap_or_default(),
                    address: *address,
                    signed: st.signed,
                    missed: st.missed,
                    proposed: st.proposed,
                    last_signed_height: st.last_signed_height,
                    last_seen_ms: seen_ms,
                }
            })
            .collect()
    }

    fn epochs(&self) -> taksa_consensus::Epochs {
        self.shared.store.epochs()
    }

    fn governance(&self) -> (u64, Arc<Governance>) {
        let (head, governance) = self.shared.store.head_governance();
        (head.height, governance)
    }

    fn validator_set(&self, epoch: u64) -> Result<Option<Vec<Validator>>, BackendError> {
        let store = &self.shared.store;
        let (head, governance) = store.head_governance();
        let current = store.epochs().after(head.height);
        Ok(if epoch > current {
            None
        } else if epoch == current {
            Some(governance.validators.clone())
        } else {
            // The last change at or before the epoch, else the genesis set.
            let changes = store.set_changes(epoch).map_err(internal)?;
            Some(match changes.into_iter().last() {
                Some((_, g, _)) => g.validators,
                None => self.shared.genesis.governance().validators,
            })
        })
    }

    fn readiness(&self) -> Readiness {
        let s = &self.shared;
        Readiness {
            syncing: self.sync_info().syncing,
            peers: s.peers.borrow().len(),
            needs_peers: s.p2p.is_some() && (s.chain().validators.len() > 1 || s.validator.is_none()),
            storage: s.store.probe_write(now_ms()).map_err(|e| e.to_string()),
        }
    }

    fn metrics(&self) -> NodeMetrics {
        let s = &self.shared;
        let cache = s.store.cache_usage();
        let health = self.health();
        NodeMetrics {
            head_height: health.head_height,
            finalized_height: health.finalized_height,
            txs_finalized_total: s.store.txs_total(),
            mempool_txs: health.mempool_txs,
            mempool_bytes: health.mempool_bytes,
            peers: health.peers,
            consensus_view: self.consensus_status().view,
            epoch: s.chain().epoch,
            validator_set_size: s.chain().validators.len(),
            consensus_timeouts_total: s.chain().timeouts_total,
            validators: self.validators(),
            storage_bytes: s.store.size_bytes(),
            accounts: s.store.account_count(),
            state_cache_accounts: cache.0,
            state_cache_nodes: cache.1,
            state_cache_bytes: cache.2 .0.saturating_add(cache.2 .1),
            syncing: health.syncing,
        }
    }
}

impl NodeBackend {
    /// The chain of validator sets from genesis to `epoch`: for each epoch whose set changed,
    /// the last block of the one before, its finalization, and the proven set after it.
    fn epoch_links(&self, epoch: u64) -> Result<Vec<EpochLink>, BackendError> {
        let store = &self.shared.store;
        let missing = |what: String| BackendError::Internal { message: format!("{what} is missing from the store") };
        let mut links = Vec::new();
        for (e, governance, proof) in store.set_changes(epoch).map_err(internal)? {
            let height = store.epochs().last_height(e.saturating_sub(1));
            let header =
                store.header_by_height(height).map_err(internal)?.ok_or_else(|| missing(format!("block {height}")))?;
            let cert = store
                .finalization(height)
                .map_err(internal)?
                .ok_or_else(|| missing(format!("the finalization of epoch {}'s last block", e - 1)))?;
            links.push(EpochLink::new(&header, &cert, &governance, &proof));
        }
        Ok(links)
    }

    /// A transaction as the store knows it: finalized in a block, or dropped from the pool.
    fn stored_tx(&self, hash: &Hash) -> Result<Option<TxRecord>, BackendError> {
        let s = &self.shared;
        if let Some((tx, loc)) = s.store.tx(hash).map_err(internal)? {
            let header = s.store.header_by_height(loc.height).map_err(internal)?;
            let (block_hash, timestamp_ms) = header.map_or((Hash::ZERO, 0), |h| (h.hash(), h.timestamp_ms));
            let status = TxStatus::Finalized { height: loc.height, index: loc.index, block_hash, timestamp_ms };
            return Ok(Some(TxRecord { hash: *hash, tx: Some(tx), status }));
        }
        if let Some(d) = s.store.dropped(hash).map_err(internal)? {
            return Ok(Some(TxRecord { hash: *hash, tx: None, status: dropped_status(&d) }));
        }
        Ok(None)
    }

    /// The transactions behind history items, each decoded from its span of its block (no
    /// whole block is decoded), with its block's time read from the block's header.
    fn history_entries(&self, items: &[HistoryItem]) -> Result<Vec<HistoryEntry>, BackendError> {
        let store = &self.shared.store;
        let mut entries = Vec::with_capacity(items.len());
        let mut header: Option<taksa_consensus::Header> = None;
        for item in items {
            if header.as_ref().map(|h| h.height) != Some(item.height) {
                header = store.header_by_height(item.height).map_err(internal)?;
            }
            let Some(timestamp_ms) = header.as_ref().map(|h| h.timestamp_ms) else { continue };
            let Some(tx) = store.tx_at(item.height, item.index, item.span).map_err(internal)? else { continue };
            entries.push(HistoryEntry {
                height: item.height,
                index: item.index,
                timestamp_ms,
                hash: tx.hash(),
                tx,
                sent: item.sent,
                received: item.received,
            });
        }
        Ok(entries)
    }

    fn sync_info(&self) -> SyncInfo {
        let s = self.shared.chain().sync;
        SyncInfo { syncing: s.syncing, target_height: s.target_height, blocks_per_second: s.blocks_per_second }
    }
}

/// The pool's refusal as the RPC reports it; `Committed` (final a moment ago) answers the hash.
fn submit_error(hash: Hash, e: AdmitError) -> Result<Hash, SubmitError> {
    match e {
        AdmitError::Committed => Ok(hash),
        AdmitError::Rejected(e) => Err(SubmitError::Rejected(e)),
        AdmitError::PoolFull { txs_max } => Err(SubmitError::PoolFull { txs_max }),
        AdmitError::SenderLimit { per_sender_max } => Err(SubmitError::SenderLimit { per_sender_max }),
        AdmitError::ReplacementUnderpriced { fee, pooled_fee, needed } => {
            Err(SubmitError::ReplacementUnderpriced { fee, pooled_fee, needed })
        }
        AdmitError::ReplacementLimit { replacements_max } => Err(SubmitError::ReplacementLimit { replacements_max }),
        AdmitError::QueuedLimit { queued_per_sender_max, next_nonce } => {
            Err(SubmitError::QueuedLimit { queued_per_sender_max, next_nonce })
        }
    }
}
