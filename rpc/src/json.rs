//! The JSON shapes of results: camelCase keys, amounts as decimal strings, hashes as `0x` hex,
//! addresses as bech32m with the network's prefix.

use serde::Serialize;
use taksa_consensus::{Block, Evidence, Hash, SignedTransaction, Vote, VoteKind};

use crate::backend::{
    AccountInfo, ChainInfo, ConsensusStatus, HealthInfo, HistoryEntry, NodeInfo, NodeRole, PeerRecord, SyncInfo,
    TxRecord, TxStatus,
};

/// A transaction.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TxJson {
    hash: String,
    chain_id: String,
    from: String,
    to: String,
    amount: String,
    fee: String,
    nonce: u64,
    valid_until_height: Option<u64>,
    memo: Option<String>,
    signature: String,
}

impl TxJson {
    pub(crate) fn new(stx: &SignedTransaction, hash: &Hash, hrp: &str) -> TxJson {
        let tx = &stx.tx;
        TxJson {
            hash: hash.to_hex(),
            chain_id: tx.chain_id.clone(),
            from: tx.from.to_bech32(hrp),
            to: tx.to.to_bech32(hrp),
            amount: tx.amount.to_string(),
            fee: tx.fee.to_string(),
            nonce: tx.nonce,
            valid_until_height: tx.valid_until_height,
            memo: tx.memo.clone(),
            signature: stx.signature.to_hex(),
        }
    }
}

#[derive(Serialize)]
struct ValidatorJson {
    name: String,
    address: String,
}

/// The result of `chain_getInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChainInfoJson {
    chain_id: String,
    genesis_hash: String,
    address_hrp: String,
    head_height: u64,
    head_hash: String,
    finalized_height: u64,
    finalized_hash: String,
    validators: Vec<ValidatorJson>,
    block_time_ms: u64,
    fee_floor: String,
    account_creation_fee: String,
    token_symbol: String,
    token_decimals: u8,
    sync: SyncJson,
}

/// Catch-up progress, inside `chain_getInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncJson {
    syncing: bool,
    target_height: Option<u64>,
    blocks_per_second: Option<f64>,
}

impl From<SyncInfo> for SyncJson {
    fn from(s: SyncInfo) -> SyncJson {
        SyncJson {
            syncing: s.syncing,
            target_height: s.target_height,
            // JSON has no NaN or infinity; an unmeasurable rate is unknown, not an error.
            blocks_per_second: s.blocks_per_second.filter(|r| r.is_finite()),
        }
    }
}

impl From<ChainInfo> for ChainInfoJson {
    fn from(info: ChainInfo) -> ChainInfoJson {
        let hrp = info.address_hrp.as_str();
        let validators = info
            .validators
            .iter()
            .map(|(name, address)| ValidatorJson { name: name.clone(), address: address.to_bech32(hrp) })
            .collect();
        ChainInfoJson {
            chain_id: info.chain_id.clone(),
            genesis_hash: info.genesis_hash.to_hex(),
            head_height: info.head.height,
            head_hash: info.head.hash().to_hex(),
            finalized_height: info.finalized.height,
            finalized_hash: info.finalized.hash().to_hex(),
            validators,
            block_time_ms: info.block_time_ms,
            fee_floor: info.fee_floor.to_string(),
            account_creation_fee: info.account_creation_fee.to_string(),
            token_symbol: info.token_symbol.clone(),
            token_decimals: info.token_decimals,
            sync: SyncJson::from(info.sync),
            address_hrp: info.address_hrp,
        }
    }
}

/// The result of `node_info`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeInfoJson {
    peer_id: Option<String>,
    listen_addrs: Vec<String>,
    role: &'static str,
    validator_address: Option<String>,
    version: String,
}

impl NodeInfoJson {
    pub(crate) fn new(info: NodeInfo, hrp: &str) -> NodeInfoJson {
        let (role, validator_address) = match info.role {
            NodeRole::Validator { address } => ("validator", Some(address.to_bech32(hrp))),
            NodeRole::Full => ("full", None),
        };
        NodeInfoJson {
            peer_id: info.peer_id,
            listen_addrs: info.listen_addrs,
            role,
            validator_address,
            version: info.version,
        }
    }
}

/// One item of `node_peers`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PeerJson {
    peer_id: String,
    address: String,
    inbound: bool,
    score: i64,
    agent: Option<String>,
    connected_ms: u64,
}

impl From<PeerRecord> for PeerJson {
    fn from(p: PeerRecord) -> PeerJson {
        PeerJson {
            peer_id: p.peer_id,
            address: p.address,
            inbound: p.inbound,
            score: p.score,
            agent: p.agent,
            connected_ms: p.connected_ms,
        }
    }
}

/// The result of `consensus_getStatus`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsensusStatusJson {
    view: u64,
    leader: String,
    is_validator: bool,
    finalized_height: u64,
    finalized_view: u64,
    finalized_hash: String,
    notarized_view: u64,
    failed_views: u64,
    evidence_count: usize,
    validators: usize,
    quorum: usize,
}

impl ConsensusStatusJson {
    pub(crate) fn new(s: &ConsensusStatus, hrp: &str) -> ConsensusStatusJson {
        ConsensusStatusJson {
            view: s.view,
            leader: s.leader.to_bech32(hrp),
            is_validator: s.is_validator,
            finalized_height: s.finalized_height,
            finalized_view: s.finalized_view,
            finalized_hash: s.finalized_hash.to_hex(),
            notarized_view: s.notarized_view,
            failed_views: s.failed_views,
            evidence_count: s.evidence_count,
            validators: s.validators,
            quorum: s.quorum,
        }
    }
}

/// A signed consensus vote.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VoteJson {
    kind: &'static str,
    view: u64,
    block_hash: Option<String>,
    signer: String,
    signature: String,
}

impl VoteJson {
    pub(crate) fn new(v: &Vote, hrp: &str) -> VoteJson {
        let kind = match v.kind {
            VoteKind::Notarize => "notarize",
            VoteKind::Nullify => "nullify",
            VoteKind::Finalize => "finalize",
        };
        VoteJson {
            kind,
            view: v.view,
            block_hash: v.block_hash.map(|h| h.to_hex()),
            signer: v.signer.to_bech32(hrp),
            signature: v.signature.to_hex(),
        }
    }
}

/// One item of `consensus_getEvidence`: two conflicting votes by one validator.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EvidenceJson {
    signer: String,
    view: u64,
    a: VoteJson,
    b: VoteJson,
}

impl EvidenceJson {
    pub(crate) fn new(e: &Evidence, hrp: &str) -> EvidenceJson {
        // Valid evidence has one signer and one view; the first vote names them.
        EvidenceJson {
            signer: e.a.signer.to_bech32(hrp),
            view: e.a.view,
            a: VoteJson::new(&e.a, hrp),
            b: VoteJson::new(&e.b, hrp),
        }
    }
}

/// The result of `chain_getBlock`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockJson {
    hash: String,
    height: u64,
    view: u64,
    parent_hash: String,
    proposer: String,
    timestamp_ms: u64,
    tx_root: String,
    state_root: String,
    validator_set_hash: String,
    tx_count: usize,
    finalized: bool,
    txs: Vec<TxJson>,
}

impl BlockJson {
    pub(crate) fn new(block: &Block, finalized: bool, hrp: &str) -> BlockJson {
        let h = &block.header;
        BlockJson {
            hash: h.hash().to_hex(),
            height: h.height,
            view: h.view,
            parent_hash: h.parent_hash.to_hex(),
            proposer: h.proposer.to_bech32(hrp),
            timestamp_ms: h.timestamp_ms,
            tx_root: h.tx_root.to_hex(),
            state_root: h.state_root.to_hex(),
            validator_set_hash: h.validator_set_hash.to_hex(),
            tx_count: block.txs.len(),
            finalized,
            txs: block.txs.iter().map(|stx| TxJson::new(stx, &stx.hash(), hrp)).collect(),
        }
    }
}

/// The result of `account_get`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountJson {
    address: String,
    balance: String,
    nonce: u64,
    next_nonce: u64,
    pending: usize,
}

impl AccountJson {
    pub(crate) fn new(address: String, info: &AccountInfo) -> AccountJson {
        AccountJson {
            address,
            balance: info.account.balance.to_string(),
            nonce: info.account.nonce,
            next_nonce: info.next_nonce,
            pending: info.pending,
        }
    }
}

/// One item of `account_getHistory`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryItemJson {
    hash: String,
    height: u64,
    index: u32,
    timestamp_ms: u64,
    direction: &'static str,
    from: String,
    to: String,
    amount: String,
    fee: String,
    nonce: u64,
    memo: Option<String>,
}

impl HistoryItemJson {
    pub(crate) fn new(e: &HistoryEntry, hrp: &str) -> HistoryItemJson {
        let tx = &e.tx.tx;
        let direction = match (e.sent, e.received) {
            (true, true) => "self",
            (true, false) => "sent",
            // A backend that sets neither flag listed the entry for this address anyway; it can
            // only have been received (fees go to proposers, which history does not list).
            (false, _) => "received",
        };
        HistoryItemJson {
            hash: e.hash.to_hex(),
            height: e.height,
            index: e.index,
            timestamp_ms: e.timestamp_ms,
            direction,
            from: tx.from.to_bech32(hrp),
            to: tx.to.to_bech32(hrp),
            amount: tx.amount.to_string(),
            fee: tx.fee.to_string(),
            nonce: tx.nonce,
            memo: tx.memo.clone(),
        }
    }
}

/// The result of `account_getHistory`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryJson {
    pub(crate) items: Vec<HistoryItemJson>,
    /// Continues in the same order.
    pub(crate) next_cursor: Option<String>,
    /// Lists what lies before the first item, in the reverse order.
    pub(crate) prev_cursor: Option<String>,
}

/// The result of `tx_get`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TxStatusJson {
    hash: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx: Option<TxJson>,
}

impl TxStatusJson {
    pub(crate) fn new(record: &TxRecord, hrp: &str) -> TxStatusJson {
        let mut out = TxStatusJson {
            hash: record.hash.to_hex(),
            status: "pending",
            height: None,
            index: None,
            block_hash: None,
            timestamp_ms: None,
            reason: None,
            message: None,
            replaced_by: None,
            tx: record.tx.as_ref().map(|stx| TxJson::new(stx, &record.hash, hrp)),
        };
        match &record.status {
            TxStatus::Pending => {}
            TxStatus::Finalized { height, index, block_hash, timestamp_ms } => {
                out.status = "finalized";
                out.height = Some(*height);
                out.index = Some(*index);
                out.block_hash = Some(block_hash.to_hex());
                out.timestamp_ms = Some(*timestamp_ms);
            }
            TxStatus::Rejected { reason, message, replaced_by } => {
                out.status = "rejected";
                out.reason = Some(reason.clone());
                out.message = Some(message.clone());
                out.replaced_by = replaced_by.map(|h| h.to_hex());
            }
            TxStatus::Expired { reason, message } => {
                out.status = "expired";
                out.reason = Some(reason.clone());
                out.message = Some(message.clone());
            }
        }
        out
    }
}

/// The result of `node_health`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthJson {
    status: &'static str,
    head_height: u64,
    finalized_height: u64,
    mempool_txs: usize,
    mempool_bytes: usize,
    peers: usize,
    syncing: bool,
}

impl From<HealthInfo> for HealthJson {
    fn from(h: HealthInfo) -> HealthJson {
        HealthJson {
            status: "ok",
            head_height: h.head_height,
            finalized_height: h.finalized_height,
            mempool_txs: h.mempool_txs,
            mempool_bytes: h.mempool_bytes,
            peers: h.peers,
            syncing: h.syncing,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, to_value};

    use super::*;

    #[test]
    fn sync_rate_that_is_not_finite_is_null() {
        for rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let sync = SyncInfo { syncing: true, target_height: Some(9), blocks_per_second: Some(rate) };
            let v = to_value(SyncJson::from(sync)).expect("serializes");
            assert_eq!(v, json!({"syncing": true, "targetHeight": 9, "blocksPerSecond": null}), "{rate}");
        }
        let measured = SyncInfo { syncing: true, target_height: None, blocks_per_second: Some(12.5) };
        let v = to_value(SyncJson::from(measured)).expect("serializes");
        assert_eq!(v, json!({"syncing": true, "targetHeight": null, "blocksPerSecond": 12.5}));
    }
}
