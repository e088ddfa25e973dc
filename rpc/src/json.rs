//! The JSON shapes of results and notifications: camelCase keys, amounts as decimal strings,
//! hashes as `0x` hex, addresses as bech32m with the network's prefix.
//!
//! The server builds them from the backend's records; clients (the wallet, the bench, tests)
//! read them back with the same types through [`crate::api::TaksaApiClient`], so the two sides
//! cannot drift apart.

use serde::{Deserialize, Serialize};
use taksa_consensus::governance::{Change, Governance, Validator};
use taksa_consensus::tree::{self, Terminal};
use taksa_consensus::{codec, Epochs, ValidatorSet, Vote, VoteKind};
use taksa_consensus::{Address, Block, BlockEvent, Cursor, Evidence, Hash, Header, SignedTransaction, TransferEvent};

use crate::backend::{
    AccountInfo, AccountProof, ChainInfo, ConsensusStatus, HealthInfo, HistoryEntry, NodeInfo, NodeRole, PeerRecord,
    SyncInfo, TxRecord, TxStatus, ValidatorRecord,
};
use crate::cursor;

/// A transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxJson {
    /// Its hash, `0x` + 64 hex digits.
    pub hash: String,
    /// The chain it is signed for.
    pub chain_id: String,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Base units, decimal.
    pub amount: String,
    /// Base units, decimal.
    pub fee: String,
    /// The sender's nonce.
    pub nonce: u64,
    /// The last height it may be included at, if limited.
    pub valid_until_height: Option<u64>,
    /// The sender's note.
    pub memo: Option<String>,
    /// The ed25519 signature, `0x` hex.
    pub signature: String,
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

/// A validator in `chain_getInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorJson {
    /// Its operator's name for it.
    pub name: String,
    /// Its address (fees it earns go here).
    pub address: String,
}

/// The result of `chain_getInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfoJson {
    /// The chain id transactions must carry.
    pub chain_id: String,
    /// The genesis hash transactions sign over.
    pub genesis_hash: String,
    /// The bech32m prefix of addresses.
    pub address_hrp: String,
    /// The newest block's height.
    pub head_height: u64,
    /// The newest block's hash.
    pub head_hash: String,
    /// The newest final block's height.
    pub finalized_height: u64,
    /// The newest final block's hash.
    pub finalized_hash: String,
    /// The validator set.
    pub validators: Vec<ValidatorJson>,
    /// The target time between blocks.
    pub block_time_ms: u64,
    /// The smallest fee, base units.
    pub fee_floor: String,
    /// The smallest fee of a transfer that creates its recipient's account, base units.
    pub account_creation_fee: String,
    /// The token's symbol.
    pub token_symbol: String,
    /// Decimal places of one token.
    pub token_decimals: u8,
    /// Catch-up progress.
    pub sync: SyncJson,
}

/// Catch-up progress, inside `chain_getInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncJson {
    /// Whether the node is catching up.
    pub syncing: bool,
    /// The height it is catching up to, if known.
    pub target_height: Option<u64>,
    /// How fast it catches up, if measured.
    pub blocks_per_second: Option<f64>,
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

/// What a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleJson {
    /// It votes and proposes.
    Validator,
    /// It follows the chain.
    Full,
}

/// The result of `node_info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfoJson {
    /// Its libp2p peer id, if networked.
    pub peer_id: Option<String>,
    /// The multiaddresses it listens on.
    pub listen_addrs: Vec<String>,
    /// Validator or full node.
    pub role: RoleJson,
    /// The validator's address, for a validator.
    pub validator_address: Option<String>,
    /// The node's version.
    pub version: String,
}

impl NodeInfoJson {
    pub(crate) fn new(info: NodeInfo, hrp: &str) -> NodeInfoJson {
        let (role, validator_address) = match info.role {
            NodeRole::Validator { address } => (RoleJson::Validator, Some(address.to_bech32(hrp))),
            NodeRole::Full => (RoleJson::Full, None),
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerJson {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// The address it is connected on.
    pub address: String,
    /// Whether it dialled this node.
    pub inbound: bool,
    /// Its behaviour score.
    pub score: i64,
    /// The agent it announced.
    pub agent: Option<String>,
    /// How long it has been connected.
    pub connected_ms: u64,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusStatusJson {
    /// The current view.
    pub view: u64,
    /// The current view's leader.
    pub leader: String,
    /// Whether this node votes.
    pub is_validator: bool,
    /// The newest final height.
    pub finalized_height: u64,
    /// The view it was finalized in.
    pub finalized_view: u64,
    /// The newest final block's hash.
    pub finalized_hash: String,
    /// The newest notarized view.
    pub notarized_view: u64,
    /// Views that ended without a block.
    pub failed_views: u64,
    /// Pieces of equivocation evidence held.
    pub evidence_count: usize,
    /// The number of validators.
    pub validators: usize,
    /// Votes needed for a certificate.
    pub quorum: usize,
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

/// What a vote is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoteKindJson {
    /// For a block in a view.
    Notarize,
    /// For no block in a view.
    Nullify,
    /// To finalize a notarized block.
    Finalize,
}

/// A signed consensus vote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteJson {
    /// The epoch: whose validator set it counts in.
    pub epoch: u64,
    /// What it votes for.
    pub kind: VoteKindJson,
    /// Its view.
    pub view: u64,
    /// The block voted for; none for a nullify vote.
    pub block_hash: Option<String>,
    /// The validator that signed it.
    pub signer: String,
    /// Its signature.
    pub signature: String,
}

impl VoteJson {
    pub(crate) fn new(v: &Vote, hrp: &str) -> VoteJson {
        let kind = match v.kind {
            VoteKind::Notarize => VoteKindJson::Notarize,
            VoteKind::Nullify => VoteKindJson::Nullify,
            VoteKind::Finalize => VoteKindJson::Finalize,
        };
        VoteJson {
            epoch: v.epoch,
            kind,
            view: v.view,
            block_hash: v.block_hash.map(|h| h.to_hex()),
            signer: v.signer.to_bech32(hrp),
            signature: v.signature.to_hex(),
        }
    }
}

/// One item of `consensus_getEvidence`: two conflicting votes by one validator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceJson {
    /// The validator that signed both.
    pub signer: String,
    /// The view both are in.
    pub view: u64,
    /// One vote.
    pub a: VoteJson,
    /// The vote that conflicts with it.
    pub b: VoteJson,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockJson {
    /// The block's hash.
    pub hash: String,
    /// Its height.
    pub height: u64,
    /// The consensus view it was proposed in.
    pub view: u64,
    /// Its parent's hash.
    pub parent_hash: String,
    /// The validator that proposed it (and earned its fees).
    pub proposer: String,
    /// The proposer's clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The Merkle root of its transactions.
    pub tx_root: String,
    /// The Merkle root of the evidence it records.
    pub evidence_root: String,
    /// The state root after it.
    pub state_root: String,
    /// The hash of the validator set that signs it.
    pub validator_set_hash: String,
    /// The number of transactions.
    pub tx_count: usize,
    /// Whether it is final.
    pub finalized: bool,
    /// The equivocation evidence it records, in order (G7).
    pub evidence: Vec<EvidenceJson>,
    /// Its transactions, in order.
    pub txs: Vec<TxJson>,
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
            evidence_root: h.evidence_root.to_hex(),
            state_root: h.state_root.to_hex(),
            validator_set_hash: h.validator_set_hash.to_hex(),
            evidence: block.evidence.iter().map(|e| EvidenceJson::new(e, hrp)).collect(),
            tx_count: block.txs.len(),
            finalized,
            txs: block.txs.iter().map(|stx| TxJson::new(stx, &stx.hash(), hrp)).collect(),
        }
    }
}

/// The result of `account_getProof`: an account proven under a final header's state root
/// (`docs/state-tree.md` gives the rules a verifier applies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProofJson {
    /// The address.
    pub address: String,
    /// The balance under `stateRoot`, base units ("0" when absent).
    pub balance: String,
    /// The nonce under `stateRoot` (0 when absent).
    pub nonce: u64,
    /// Whether the account is in the tree (a zero account is not).
    pub exists: bool,
    /// The height of the header the proof is under.
    pub height: u64,
    /// That header's hash (SHA-256 of `header`).
    pub block_hash: String,
    /// That header's state root.
    pub state_root: String,
    /// The account's key in the state tree (T1).
    pub key: String,
    /// The hash of the account's canonical bytes (T2), `null` when absent.
    pub value_hash: Option<String>,
    /// The sibling hashes from the root's children down (T5).
    pub siblings: Vec<String>,
    /// What sits at the key's position: `null` (nothing) or a leaf's key and value hash.
    pub terminal: Option<ProofLeafJson>,
    /// The header's canonical bytes, hex.
    pub header: String,
    /// The header's finalization certificate's canonical bytes, hex; `null` when the node did
    /// not store one with it.
    pub finalization: Option<String>,
}

/// A leaf in a proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofLeafJson {
    /// The leaf's key.
    pub key: String,
    /// The leaf's value hash.
    pub value_hash: String,
}

impl AccountProofJson {
    pub(crate) fn new(address: String, key: &Hash, p: &AccountProof) -> AccountProofJson {
        let exists = p.account != taksa_consensus::Account::default();
        let terminal = match p.proof.terminal {
            Terminal::Empty => None,
            Terminal::Leaf { key, value_hash } => {
                Some(ProofLeafJson { key: key.to_hex(), value_hash: value_hash.to_hex() })
            }
        };
        AccountProofJson {
            address,
            balance: p.account.balance.to_string(),
            nonce: p.account.nonce,
            exists,
            height: p.header.height,
            block_hash: p.header.hash().to_hex(),
            state_root: p.header.state_root.to_hex(),
            key: key.to_hex(),
            value_hash: exists.then(|| tree::account_value_hash(&p.account).to_hex()),
            siblings: p.proof.siblings.iter().map(Hash::to_hex).collect(),
            terminal,
            header: format!("0x{}", hex::encode(codec::encode(&p.header))),
            finalization: p.finalization.as_ref().map(|c| format!("0x{}", hex::encode(c.encode()))),
        }
    }
}

/// The result of `account_get`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountJson {
    /// The address.
    pub address: String,
    /// The finalized balance, base units.
    pub balance: String,
    /// The next nonce after finalized transactions.
    pub nonce: u64,
    /// The next nonce counting the node's pool.
    pub next_nonce: u64,
    /// This account's transactions waiting in the pool.
    pub pending: usize,
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

/// Which way a transfer went, from one address's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionJson {
    /// The address sent it.
    Sent,
    /// The address received it.
    Received,
    /// The address sent it to itself.
    #[serde(rename = "self")]
    ToSelf,
}

/// One item of `account_getHistory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItemJson {
    /// The transaction's hash.
    pub hash: String,
    /// The block's height.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The block's time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Which way it went.
    pub direction: DirectionJson,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Base units.
    pub amount: String,
    /// Base units.
    pub fee: String,
    /// The sender's nonce.
    pub nonce: u64,
    /// The sender's note.
    pub memo: Option<String>,
}

impl HistoryItemJson {
    pub(crate) fn new(e: &HistoryEntry, hrp: &str) -> HistoryItemJson {
        let tx = &e.tx.tx;
        let direction = match (e.sent, e.received) {
            (true, true) => DirectionJson::ToSelf,
            (true, false) => DirectionJson::Sent,
            // A backend that sets neither flag listed the entry for this address anyway; it can
            // only have been received (fees go to proposers, which history does not list).
            (false, _) => DirectionJson::Received,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJson {
    /// This page.
    pub items: Vec<HistoryItemJson>,
    /// Continues in the same order; none on the last page.
    pub next_cursor: Option<String>,
    /// Lists what lies before the first item, in the reverse order.
    pub prev_cursor: Option<String>,
}

/// One transaction's answer in `tx_submitBatch`: its hash, or the error `tx_submit` would give.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitOutcomeJson {
    /// The hash, when admitted (or already known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

/// A JSON-RPC error object, as a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorJson {
    /// The code (see `docs/rpc.md`).
    pub code: i32,
    /// For people.
    pub message: String,
    /// `reason` and the error's details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxStateJson {
    /// In the pool, not yet final.
    Pending,
    /// In a final block.
    Finalized,
    /// Will never be included (see `reason`).
    Rejected,
    /// Its `validUntilHeight` or pool lifetime passed.
    Expired,
}

impl TxStateJson {
    /// The state as the JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStateJson::Pending => "pending",
            TxStateJson::Finalized => "finalized",
            TxStateJson::Rejected => "rejected",
            TxStateJson::Expired => "expired",
        }
    }

    /// Whether the state can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, TxStateJson::Pending)
    }
}

/// The result of `tx_get`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxStatusJson {
    /// The transaction's hash.
    pub hash: String,
    /// Where it stands.
    pub status: TxStateJson,
    /// The block's height, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Its position in the block, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The block's hash, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// The block's time, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
    /// Why it was rejected or expired, machine-readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For reason `replaced`: the transaction that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The transaction itself, when the node still has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxJson>,
}

impl TxStatusJson {
    pub(crate) fn new(record: &TxRecord, hrp: &str) -> TxStatusJson {
        let mut out = TxStatusJson {
            hash: record.hash.to_hex(),
            status: TxStateJson::Pending,
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
                out.status = TxStateJson::Finalized;
                out.height = Some(*height);
                out.index = Some(*index);
                out.block_hash = Some(block_hash.to_hex());
                out.timestamp_ms = Some(*timestamp_ms);
            }
            TxStatus::Rejected { reason, message, replaced_by } => {
                out.status = TxStateJson::Rejected;
                out.reason = Some(reason.clone());
                out.message = Some(message.clone());
                out.replaced_by = replaced_by.map(|h| h.to_hex());
            }
            TxStatus::Expired { reason, message } => {
                out.status = TxStateJson::Expired;
                out.reason = Some(reason.clone());
                out.message = Some(message.clone());
            }
        }
        out
    }
}

/// The node's health, as `node_health` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatusJson {
    /// It answers.
    Ok,
}

/// The result of `node_health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// Always `ok` when it answers at all.
    pub status: HealthStatusJson,
    /// The newest block's height.
    pub head_height: u64,
    /// The newest final height.
    pub finalized_height: u64,
    /// Transactions in the pool.
    pub mempool_txs: usize,
    /// Bytes in the pool.
    pub mempool_bytes: usize,
    /// Connected peers.
    pub peers: usize,
    /// Whether it is catching up.
    pub syncing: bool,
}

impl From<HealthInfo> for HealthJson {
    fn from(h: HealthInfo) -> HealthJson {
        HealthJson {
            status: HealthStatusJson::Ok,
            head_height: h.head_height,
            finalized_height: h.finalized_height,
            mempool_txs: h.mempool_txs,
            mempool_bytes: h.mempool_bytes,
            peers: h.peers,
            syncing: h.syncing,
        }
    }
}

/// A finalized block as lists, search and streams show it (built from its [`BlockEvent`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockSummaryJson {
    /// The block's hash.
    pub hash: String,
    /// Its height.
    pub height: u64,
    /// The consensus view it was proposed in.
    pub view: u64,
    /// Its parent's hash.
    pub parent_hash: String,
    /// The validator that proposed it.
    pub proposer: String,
    /// The proposer's clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The number of transactions.
    pub tx_count: u32,
    /// The fees its proposer earned, base units.
    pub fees: String,
    /// The state root after it.
    pub state_root: String,
    /// The cursor of the block's own event: resuming after it starts at the next block.
    pub cursor: String,
}

impl BlockSummaryJson {
    pub(crate) fn new(e: &BlockEvent, hrp: &str) -> BlockSummaryJson {
        BlockSummaryJson {
            hash: e.hash.to_hex(),
            height: e.height,
            view: e.view,
            parent_hash: e.parent_hash.to_hex(),
            proposer: e.proposer.to_bech32(hrp),
            timestamp_ms: e.timestamp_ms,
            tx_count: e.tx_count,
            fees: e.fees.to_string(),
            state_root: e.state_root.to_hex(),
            cursor: cursor::encode_event(Cursor::new(e.height, e.tx_count)),
        }
    }
}

/// The result of `explorer_search`, told apart by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SearchJson {
    /// A block (by height or hash).
    Block {
        /// The block.
        block: BlockSummaryJson,
    },
    /// A transaction (by hash).
    Tx {
        /// Its status.
        tx: Box<TxStatusJson>,
    },
    /// An address of this network.
    Address {
        /// The address, normalized.
        address: String,
        /// Its account.
        account: AccountJson,
    },
    /// Well-formed, but nothing matches.
    NotFound {
        /// The query, trimmed.
        query: String,
        /// What was looked for.
        message: String,
    },
}

/// The result of `explorer_recentBlocks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentBlocksJson {
    /// Newest first.
    pub blocks: Vec<BlockSummaryJson>,
    /// Where the next (older) page starts, as `beforeHeight`; none when nothing older is listed.
    pub next_before_height: Option<u64>,
}

/// The result of `explorer_getStats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsJson {
    /// The blocks the window covers.
    pub window_blocks: u64,
    /// Transactions in the window.
    pub window_txs: u64,
    /// Transactions per second over the window.
    pub tps: f64,
    /// The mean time between blocks in the window.
    pub block_time_ms: f64,
    /// How far finality trails the head, if measured.
    pub finality_lag_ms: Option<f64>,
    /// The newest block's height.
    pub head_height: u64,
    /// The newest final height.
    pub finalized_height: u64,
    /// Transactions ever finalized.
    pub total_txs: u64,
    /// Accounts in the state.
    pub total_accounts: u64,
    /// The number of validators.
    pub validators: usize,
    /// Transactions in the pool.
    pub mempool_txs: usize,
}

/// One item of `explorer_getValidators`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorStatsJson {
    /// Its operator's name for it.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Blocks it signed.
    pub signed: u64,
    /// Blocks it did not sign.
    pub missed: u64,
    /// Blocks it proposed.
    pub proposed: u64,
    /// The newest height it signed, if any.
    pub last_signed_height: Option<u64>,
    /// When it was last heard from, Unix milliseconds.
    pub last_seen_ms: Option<u64>,
}

impl ValidatorStatsJson {
    pub(crate) fn new(v: ValidatorRecord, hrp: &str) -> ValidatorStatsJson {
        ValidatorStatsJson {
            address: v.address.to_bech32(hrp),
            name: v.name,
            signed: v.signed,
            missed: v.missed,
            proposed: v.proposed,
            last_signed_height: v.last_signed_height,
            last_seen_ms: v.last_seen_ms,
        }
    }
}

/// One notification of a subscription, told apart by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NotificationJson {
    /// `chain_subscribeNewHeads`: a notarized or finalized head.
    Head(HeadJson),
    /// `chain_subscribeFinalized`, `events_subscribe`: a finalized block.
    Block(BlockNoticeJson),
    /// `events_subscribe`: a finalized transfer.
    Transfer(TransferNoticeJson),
    /// `account_subscribe`: a finalized transfer touching the address.
    Activity(ActivityJson),
    /// `tx_subscribeStatus`: the transaction's status.
    Status(TxStatusJson),
    /// Any stream: the client read too slowly and the subscription is closed.
    Lagged(LaggedJson),
}

/// Whether a head is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadStatusJson {
    /// Notarized: likely, not yet final.
    Notarized,
    /// Final.
    Finalized,
}

/// A head of `chain_subscribeNewHeads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadJson {
    /// Notarized or finalized.
    pub status: HeadStatusJson,
    /// The event cursor, for a finalized head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The block.
    pub block: HeadBlockJson,
}

/// The block of a head: a summary once final, the header before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeadBlockJson {
    /// A finalized block.
    Finalized(BlockSummaryJson),
    /// A notarized block's header.
    Notarized(HeaderJson),
}

/// A notarized (not yet final) block's header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderJson {
    /// The block's hash.
    pub hash: String,
    /// Its height.
    pub height: u64,
    /// The consensus view it was proposed in.
    pub view: u64,
    /// Its parent's hash.
    pub parent_hash: String,
    /// The validator that proposed it.
    pub proposer: String,
    /// The proposer's clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The state root after it.
    pub state_root: String,
}

impl HeaderJson {
    pub(crate) fn new(h: &Header, hrp: &str) -> HeaderJson {
        HeaderJson {
            hash: h.hash().to_hex(),
            height: h.height,
            view: h.view,
            parent_hash: h.parent_hash.to_hex(),
            proposer: h.proposer.to_bech32(hrp),
            timestamp_ms: h.timestamp_ms,
            state_root: h.state_root.to_hex(),
        }
    }
}

/// A finalized block in a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockNoticeJson {
    /// Resume after this.
    pub cursor: String,
    /// The block.
    pub block: BlockSummaryJson,
}

/// A finalized transfer in `events_subscribe`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferNoticeJson {
    /// Resume after this.
    pub cursor: String,
    /// The block's height.
    pub height: u64,
    /// The transfer's position in the block.
    pub index: u32,
    /// The transfer.
    pub transfer: TransferJson,
}

/// A finalized transfer with both balances after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferJson {
    /// The transaction's hash.
    pub hash: String,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Base units.
    pub amount: String,
    /// Base units.
    pub fee: String,
    /// The sender's nonce.
    pub nonce: u64,
    /// The sender's note.
    pub memo: Option<String>,
    /// The sender's balance after it.
    pub from_balance: String,
    /// The recipient's balance after it.
    pub to_balance: String,
    /// The block's hash.
    pub block_hash: String,
    /// The block's time, Unix milliseconds.
    pub timestamp_ms: u64,
}

impl TransferJson {
    pub(crate) fn new(t: &TransferEvent, hrp: &str) -> TransferJson {
        TransferJson {
            hash: t.hash.to_hex(),
            from: t.from.to_bech32(hrp),
            to: t.to.to_bech32(hrp),
            amount: t.amount.to_string(),
            fee: t.fee.to_string(),
            nonce: t.nonce,
            memo: t.memo.clone(),
            from_balance: t.from_balance.to_string(),
            to_balance: t.to_balance.to_string(),
            block_hash: t.block_hash.to_hex(),
            timestamp_ms: t.timestamp_ms,
        }
    }
}

/// A finalized transfer from the subscribed address's point of view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityJson {
    /// Resume after this.
    pub cursor: String,
    /// The block's height.
    pub height: u64,
    /// The transfer's position in the block.
    pub index: u32,
    /// The transaction's hash.
    pub hash: String,
    /// Which way it went.
    pub direction: DirectionJson,
    /// The other side (the address itself for a transfer to self).
    pub counterparty: String,
    /// Base units.
    pub amount: String,
    /// Base units.
    pub fee: String,
    /// The sender's nonce.
    pub nonce: u64,
    /// The sender's note.
    pub memo: Option<String>,
    /// The address's balance after it.
    pub balance_after: String,
    /// The block's hash.
    pub block_hash: String,
    /// The block's time, Unix milliseconds.
    pub timestamp_ms: u64,
}

impl ActivityJson {
    pub(crate) fn new(me: &Address, c: Cursor, t: &TransferEvent, hrp: &str) -> ActivityJson {
        let (direction, counterparty, balance) = match (t.from == *me, t.to == *me) {
            (true, true) => (DirectionJson::ToSelf, t.to, t.to_balance),
            (true, false) => (DirectionJson::Sent, t.to, t.from_balance),
            _ => (DirectionJson::Received, t.from, t.to_balance),
        };
        ActivityJson {
            cursor: cursor::encode_event(c),
            height: c.height,
            index: c.index,
            hash: t.hash.to_hex(),
            direction,
            counterparty: counterparty.to_bech32(hrp),
            amount: t.amount.to_string(),
            fee: t.fee.to_string(),
            nonce: t.nonce,
            memo: t.memo.clone(),
            balance_after: balance.to_string(),
            block_hash: t.block_hash.to_hex(),
            timestamp_ms: t.timestamp_ms,
        }
    }
}

/// The last notification of a subscription whose client read too slowly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaggedJson {
    /// Subscribe again with `{"after": resumeCursor}` to continue without a gap.
    pub resume_cursor: Option<String>,
    /// What happened, for people.
    pub message: String,
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

impl ValidatorJson {
    pub(crate) fn new(v: &Validator, hrp: &str) -> ValidatorJson {
        ValidatorJson { name: v.name.clone(), address: v.address.to_bech32(hrp) }
    }
}

/// The result of `validators_getSet`: one epoch's validator set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorSetJson {
    /// The epoch.
    pub epoch: u64,
    /// Its first height.
    pub first_height: u64,
    /// Its last height: the block after which the next epoch's set takes over.
    pub last_height: u64,
    /// The validators in leader order.
    pub validators: Vec<ValidatorJson>,
    /// Signatures a certificate needs: n - f.
    pub quorum: usize,
    /// Faulty validators the set tolerates: f = floor((n - 1) / 3).
    pub max_faulty: usize,
    /// The hash headers of the epoch carry as `validatorSetHash`.
    pub set_hash: String,
}

impl ValidatorSetJson {
    pub(crate) fn new(epoch: u64, epochs: Epochs, validators: &[Validator], hrp: &str) -> ValidatorSetJson {
        let set = ValidatorSet::new(validators.iter().map(|v| v.address).collect());
        ValidatorSetJson {
            epoch,
            first_height: epochs.last_height(epoch).saturating_sub(epochs.length).saturating_add(1),
            last_height: epochs.last_height(epoch),
            validators: validators.iter().map(|v| ValidatorJson::new(v, hrp)).collect(),
            quorum: set.quorum(),
            max_faulty: set.max_faulty(),
            set_hash: set.hash().to_hex(),
        }
    }
}

/// A change to the validator set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChangeJson {
    /// Add a validator.
    Add {
        /// Its address.
        key: String,
        /// Its name.
        name: String,
    },
    /// Remove a validator.
    Remove {
        /// Its address.
        key: String,
    },
    /// Replace a validator's key.
    Rotate {
        /// The key replaced.
        old: String,
        /// The new key.
        new: String,
        /// The new key's signature of the rotation, `0x` hex.
        proof: String,
    },
}

impl ChangeJson {
    pub(crate) fn new(change: &Change, hrp: &str) -> ChangeJson {
        match change {
            Change::Add { key, name } => ChangeJson::Add { key: key.to_bech32(hrp), name: name.clone() },
            Change::Remove { key } => ChangeJson::Remove { key: key.to_bech32(hrp) },
            Change::Rotate { old, new, proof } => {
                ChangeJson::Rotate { old: old.to_bech32(hrp), new: new.to_bech32(hrp), proof: proof.to_hex() }
            }
        }
    }

    /// The change this names, or why it names none.
    pub fn to_change(&self, hrp: &str) -> Result<Change, String> {
        let addr = |s: &str| Address::parse(s, hrp).map_err(|e| format!("`{s}`: {e}"));
        Ok(match self {
            ChangeJson::Add { key, name } => Change::Add { key: addr(key)?, name: name.clone() },
            ChangeJson::Remove { key } => Change::Remove { key: addr(key)? },
            ChangeJson::Rotate { old, new, proof } => {
                let bytes = proof.strip_prefix("0x").and_then(|h| hex::decode(h).ok()).unwrap_or_default();
                let proof =
                    <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| "the proof is not 64 bytes".to_owned())?;
                Change::Rotate { old: addr(old)?, new: addr(new)?, proof: taksa_consensus::Signature(proof) }
            }
        })
    }
}

/// A change collecting votes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingChangeJson {
    /// The change's id, what `taksa validator vote` and `withdraw` name.
    pub id: String,
    /// The change.
    pub change: ChangeJson,
    /// Who voted for it.
    pub voters: Vec<String>,
    /// Votes it needs to pass: the current set's quorum.
    pub needed: usize,
    /// The height of the block in which it was opened.
    pub opened_height: u64,
    /// It expires unless passed by the end of this epoch.
    pub expires_after_epoch: u64,
}

/// A change that passed, waiting for its epoch to end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassedChangeJson {
    /// The change's id.
    pub id: String,
    /// The change.
    pub change: ChangeJson,
    /// The height of the block in which it passed.
    pub height: u64,
    /// The first epoch whose set includes it.
    pub applies_from_epoch: u64,
}

/// A validator's proven equivocation, as a block recorded it (G7 of `docs/validator-changes.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffenceJson {
    /// Who signed the two conflicting votes.
    pub validator: String,
    /// The epoch they were signed in.
    pub epoch: u64,
    /// The view they were signed in.
    pub view: u64,
    /// The height of the block that carries the evidence.
    pub height: u64,
    /// The evidence's hash: the item in that block.
    pub evidence: String,
}

/// The result of `validators_getPendingVotes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingVotesJson {
    /// The finalized head these votes stand at.
    pub head_height: u64,
    /// The current epoch's set.
    pub set: ValidatorSetJson,
    /// Changes collecting votes, oldest first.
    pub pending: Vec<PendingChangeJson>,
    /// Changes that passed this epoch, in order; they apply when it ends.
    pub passed: Vec<PassedChangeJson>,
    /// Equivocations recorded on chain in this epoch and the last, oldest first: what a vote to
    /// remove the offender cites.
    pub offences: Vec<OffenceJson>,
}

impl PendingVotesJson {
    pub(crate) fn new(head_height: u64, epochs: Epochs, g: &Governance, hrp: &str) -> PendingVotesJson {
        let epoch = epochs.after(head_height);
        let set = ValidatorSetJson::new(epoch, epochs, &g.validators, hrp);
        let needed = set.quorum;
        PendingVotesJson {
            head_height,
            pending: g
                .pending
                .iter()
                .map(|p| PendingChangeJson {
                    id: p.change.id().to_hex(),
                    change: ChangeJson::new(&p.change, hrp),
                    voters: p.voters.iter().map(|a| a.to_bech32(hrp)).collect(),
                    needed,
                    opened_height: p.opened_height,
                    expires_after_epoch: p.last_epoch(epochs),
                })
                .collect(),
            passed: g
                .passed
                .iter()
                .map(|p| PassedChangeJson {
                    id: p.change.id().to_hex(),
                    change: ChangeJson::new(&p.change, hrp),
                    height: p.height,
                    applies_from_epoch: epochs.of_height(p.height).saturating_add(1),
                })
                .collect(),
            offences: g
                .offences
                .iter()
                .map(|o| OffenceJson {
                    validator: o.validator.to_bech32(hrp),
                    epoch: o.epoch,
                    view: o.view,
                    height: o.height,
                    evidence: o.evidence.to_hex(),
                })
                .collect(),
            set,
        }
    }
}
