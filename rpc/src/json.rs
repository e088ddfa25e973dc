//! The JSON shapes of results: camelCase keys, amounts as decimal strings, hashes as `0x` hex,
//! addresses as bech32m with the network's prefix.

use serde::Serialize;
use taksa_consensus::{Block, Hash, SignedTransaction};

use crate::backend::{AccountInfo, ChainInfo, HealthInfo, HistoryEntry, TxRecord, TxStatus};

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
    token_symbol: String,
    token_decimals: u8,
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
            token_symbol: info.token_symbol.clone(),
            token_decimals: info.token_decimals,
            address_hrp: info.address_hrp,
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
    pub(crate) next_cursor: Option<String>,
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
            TxStatus::Rejected { reason, message } => {
                out.status = "rejected";
                out.reason = Some(reason.clone());
                out.message = Some(message.clone());
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
