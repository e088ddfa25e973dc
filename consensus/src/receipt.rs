//! Payment receipts: a transaction with everything needed to check, with no node, that it is in
//! a final block of a chain whose genesis the checker holds.
//!
//! A receipt carries the signed transaction, its inclusion path to the block's `tx_root`
//! (RFC 6962/9162 audit path, the shape of [`crate::block::tx_root`]), the block's header, the
//! headers of the descendants up to one whose finalization certificate the node stored, that
//! certificate, and the chain of validator sets from genesis to the block's epoch: for each
//! epoch whose set changed, the last block of the epoch before, its finalization, and the
//! governance entry of its state with the state tree's proof of it. A checker ([`verify`])
//! needs only the chain's genesis: starting from the genesis set, each epoch's last block must
//! be finalized by a quorum of its epoch's set, and its proven governance entry names the next
//! epoch's set; the block's finalization must carry a quorum of its own epoch's set, each
//! header must be its successor's parent, and the path must lead from the transaction's hash to
//! the first header's `tx_root`. A transaction in a final block was applied in full (a block
//! applies all or nothing), so the receipt proves the payment. `docs/receipts.md` writes the
//! format and the rules out with a vector.

use serde::{Deserialize, Serialize};

use crate::block::{tx_path_root, Header};
use crate::codec;
use crate::crypto::Hash;
use crate::governance::{governance_key, Governance};
use crate::tree::Proof;
use crate::tx::{SignedTransaction, TxError};
use crate::vote::{Certificate, Domain};
use crate::{Genesis, ValidatorSet};

/// The format tag every receipt carries.
pub const RECEIPT_FORMAT: &str = "taksa-receipt/v3";
/// The most links a receipt's chain of validator sets may carry (one per change of the set).
pub const RECEIPT_LINKS_MAX: usize = 10_000;
/// The most descendant headers a receipt carries to reach a finalization: twice the blocks a
/// sync session commits under one finalization (`chain::SYNC_STAGED_MAX`), so a transaction
/// synced in such a run still gets its receipt.
pub const RECEIPT_HEADERS_MAX: usize = 256;

/// A receipt as JSON (every byte string as `0x` hex of its canonical encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentReceipt {
    /// [`RECEIPT_FORMAT`].
    pub format: String,
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash.
    pub genesis_hash: String,
    /// The signed transaction's canonical bytes.
    pub tx: String,
    /// The transaction's position in its block.
    pub index: u64,
    /// How many transactions the block holds.
    pub tx_count: u64,
    /// The audit path from the transaction's leaf to `tx_root`, leaf side first.
    pub tx_path: Vec<String>,
    /// The block's header.
    pub header: String,
    /// Headers of the block's descendants, in height order, up to the one `finalization`
    /// certifies (empty when it certifies the block itself).
    pub headers_to_final: Vec<String>,
    /// The finalization certificate of the last header.
    pub finalization: String,
    /// How the block's epoch's validator set follows from the genesis set: one link per epoch
    /// whose set differs from the one before, in order (empty while the genesis set rules).
    pub epochs: Vec<EpochLink>,
}

/// How epoch e's validator set is proven from epoch e - 1's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EpochLink {
    /// The header of epoch e - 1's last block.
    pub header: String,
    /// Its finalization, by a quorum of epoch e - 1's set.
    pub finalization: String,
    /// The encoded governance entry in the state after it ([`crate::governance::Governance`]):
    /// its `validators` are epoch e's set.
    pub governance: String,
    /// The state tree's proof of that entry under the header's `state_root`.
    pub proof: String,
}

impl EpochLink {
    /// The link from the last block of an epoch (`header`, final by `finalization`) and the
    /// governance entry after it with its proof.
    pub fn new(header: &Header, finalization: &Certificate, governance: &Governance, proof: &Proof) -> EpochLink {
        EpochLink {
            header: hex0x(&codec::encode(header)),
            finalization: hex0x(&finalization.encode()),
            governance: hex0x(&codec::encode(governance)),
            proof: hex0x(&codec::encode(proof)),
        }
    }
}

/// What a valid receipt proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The transaction's hash.
    pub hash: Hash,
    /// The signed transaction.
    pub tx: SignedTransaction,
    /// The height of its block.
    pub height: u64,
    /// The block's hash.
    pub block_hash: Hash,
    /// The timestamp of its block, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The height of the block whose finalization the receipt carries.
    pub final_height: u64,
    /// The block's epoch: the receipt followed this many changes of epoch from the genesis set.
    pub epoch: u64,
}

/// Why a receipt does not prove its payment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// A field is missing its meaning (bad hex, does not decode, wrong format tag).
    #[error("the receipt's `{field}` is malformed: {why}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The receipt is for another chain than the genesis given.
    #[error("the receipt is for chain `{chain_id}` with genesis {genesis_hash}; the genesis given is `{expected_chain_id}` with {expected_genesis_hash}")]
    OtherChain {
        /// The receipt's chain id.
        chain_id: String,
        /// The receipt's genesis hash.
        genesis_hash: String,
        /// The genesis file's chain id.
        expected_chain_id: String,
        /// The genesis file's hash.
        expected_genesis_hash: Hash,
    },
    /// The transaction itself is not valid on this chain (its signature, chain id or fields).
    #[error("the transaction is not valid on this chain: {0}")]
    Tx(TxError),
    /// The path does not lead from the transaction to the header's `tx_root`.
    #[error("the inclusion path does not lead from transaction {hash} to the block's tx_root {tx_root}")]
    NotIncluded {
        /// The transaction's hash.
        hash: Hash,
        /// The header's root.
        tx_root: Hash,
    },
    /// The headers do not link from the block to the certified one.
    #[error("header {index} of headersToFinal does not follow the one before it")]
    BrokenLink {
        /// Its position in `headers_to_final`.
        index: usize,
    },
    /// The certificate does not finalize the last header with a quorum of its epoch's set, or a
    /// link of the chain of sets does not hold.
    #[error("the finalization does not certify the last header: {0}")]
    NotFinal(String),
}

fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, ReceiptError> {
    let s = s.strip_prefix("0x").ok_or_else(|| ReceiptError::Malformed { field, why: "no 0x prefix".into() })?;
    hex::decode(s).map_err(|e| ReceiptError::Malformed { field, why: e.to_string() })
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn cert_of(field: &'static str, s: &str) -> Result<Certificate, ReceiptError> {
    codec::decode(&unhex(field, s)?, codec::MESSAGE_BYTES_MAX)
        .map_err(|e| ReceiptError::Malformed { field, why: e.to_string() })
}

/// The validator set of `epoch`, following the receipt's links from the genesis set. Each link
/// is the last block of an earlier epoch k, in increasing order, final under the set carried so
/// far (epoch k's, since no link between says it changed), whose proven governance entry holds
/// epoch k + 1's set. A node links only the epochs whose set changed; a link where it did not
/// is allowed (it proves the same set again).
fn set_of_epoch(receipt: &PaymentReceipt, genesis: &Genesis, epoch: u64) -> Result<ValidatorSet, ReceiptError> {
    let links = &receipt.epochs;
    if links.len() > RECEIPT_LINKS_MAX {
        return Err(ReceiptError::Malformed {
            field: "epochs",
            why: format!("{} links; at most {RECEIPT_LINKS_MAX}", links.len()),
        });
    }
    let epochs = genesis.epochs();
    let genesis_hash = genesis.hash();
    let mut set = genesis.validator_set();
    let mut after = 0u64;
    for link in links {
        let header = header_of("epochs.header", &link.header)?;
        let k = epochs.of_height(header.height);
        let bad = |why: String| Err(ReceiptError::NotFinal(format!("the link at height {}: {why}", header.height)));
        if header.chain_id != genesis.chain_id || !epochs.is_last(header.height) {
            return bad("not the last block of an epoch of this chain".into());
        }
        if header.height <= after || k >= epoch {
            return bad(format!("links must be of epochs before the block's ({epoch}), in increasing order"));
        }
        after = header.height;
        if header.validator_set_hash != set.hash() {
            return bad(format!("the last block of epoch {k} names another validator set than the one carried"));
        }
        let cert = cert_of("epochs.finalization", &link.finalization)?;
        let domain = Domain { chain_id: genesis.chain_id.clone(), genesis_hash, epoch: k };
        if let Err(e) = cert.verify_finalizes(&header, &domain, &set) {
            return bad(format!("the last block of epoch {k} is not final: {e}"));
        }
        let governance: Governance =
            codec::decode(&unhex("epochs.governance", &link.governance)?, codec::MESSAGE_BYTES_MAX)
                .map_err(|e| ReceiptError::Malformed { field: "epochs.governance", why: e.to_string() })?;
        let proof: Proof = codec::decode(&unhex("epochs.proof", &link.proof)?, codec::MESSAGE_BYTES_MAX)
            .map_err(|e| ReceiptError::Malformed { field: "epochs.proof", why: e.to_string() })?;
        if proof.verify(&header.state_root, &governance_key(), Some(&governance.value_hash())).is_err() {
            return bad("the validator set is not the one in the state of the epoch's last block".into());
        }
        set = governance.set();
        if set.is_empty() {
            return bad("an empty validator set".into());
        }
    }
    Ok(set)
}

fn header_of(field: &'static str, s: &str) -> Result<Header, ReceiptError> {
    codec::decode(&unhex(field, s)?, codec::MESSAGE_BYTES_MAX)
        .map_err(|e| ReceiptError::Malformed { field, why: e.to_string() })
}

impl PaymentReceipt {
    /// The receipt of transaction `index` of the block with `header` and transaction hashes
    /// `tx_hashes`, final by `finalization` of the last of `headers_to_final` (or of `header`
    /// when there are none); a block after epoch 0 needs [`PaymentReceipt::with_epochs`].
    pub fn new(
        genesis_hash: &Hash,
        tx: &SignedTransaction,
        header: &Header,
        tx_hashes: &[Hash],
        index: usize,
        headers_to_final: &[Header],
        finalization: &Certificate,
    ) -> PaymentReceipt {
        PaymentReceipt {
            format: RECEIPT_FORMAT.to_owned(),
            chain_id: header.chain_id.clone(),
            genesis_hash: genesis_hash.to_hex(),
            tx: hex0x(&tx.encode()),
            index: index as u64,
            tx_count: tx_hashes.len() as u64,
            tx_path: crate::block::tx_path(tx_hashes, index).iter().map(Hash::to_hex).collect(),
            header: hex0x(&codec::encode(header)),
            headers_to_final: headers_to_final.iter().map(|h| hex0x(&codec::encode(h))).collect(),
            finalization: hex0x(&finalization.encode()),
            epochs: Vec::new(),
        }
    }

    /// The receipt with the chain of validator sets to its block's epoch (one link per epoch
    /// after the first).
    pub fn with_epochs(mut self, epochs: Vec<EpochLink>) -> PaymentReceipt {
        self.epochs = epochs;
        self
    }
}

/// Checks `receipt` against the chain that starts at `genesis`, with no node: see the module
/// docs. Returns what it proves.
pub fn verify(receipt: &PaymentReceipt, genesis: &Genesis) -> Result<Payment, ReceiptError> {
    if receipt.format != RECEIPT_FORMAT {
        return Err(ReceiptError::Malformed {
            field: "format",
            why: format!("`{}`, not `{RECEIPT_FORMAT}`", receipt.format),
        });
    }
    let genesis_hash = genesis.hash();
    if receipt.chain_id != genesis.chain_id || receipt.genesis_hash != genesis_hash.to_hex() {
        return Err(ReceiptError::OtherChain {
            chain_id: receipt.chain_id.clone(),
            genesis_hash: receipt.genesis_hash.clone(),
            expected_chain_id: genesis.chain_id.clone(),
            expected_genesis_hash: genesis_hash,
        });
    }
    let tx = SignedTransaction::decode(&unhex("tx", &receipt.tx)?)
        .map_err(|e| ReceiptError::Malformed { field: "tx", why: e.to_string() })?;
    tx.check_stateless(&genesis.chain_id, &genesis_hash, genesis.fee_floor).map_err(ReceiptError::Tx)?;
    let header = header_of("header", &receipt.header)?;
    if header.chain_id != genesis.chain_id {
        return Err(ReceiptError::NotFinal(format!("the header is for chain `{}`", header.chain_id)));
    }
    let path = receipt
        .tx_path
        .iter()
        .map(|h| Hash::from_hex(h).map_err(|e| ReceiptError::Malformed { field: "txPath", why: e.to_string() }))
        .collect::<Result<Vec<Hash>, ReceiptError>>()?;
    let hash = tx.hash();
    if tx_path_root(&hash, receipt.index, receipt.tx_count, &path) != Some(header.tx_root) {
        return Err(ReceiptError::NotIncluded { hash, tx_root: header.tx_root });
    }
    if receipt.headers_to_final.len() > RECEIPT_HEADERS_MAX {
        return Err(ReceiptError::Malformed {
            field: "headersToFinal",
            why: format!("{} headers; at most {RECEIPT_HEADERS_MAX}", receipt.headers_to_final.len()),
        });
    }
    let mut last = header.clone();
    for (index, h) in receipt.headers_to_final.iter().enumerate() {
        let next = header_of("headersToFinal", h)?;
        if next.parent_hash != last.hash() || Some(next.height) != last.height.checked_add(1) {
            return Err(ReceiptError::BrokenLink { index });
        }
        last = next;
    }
    let cert = cert_of("finalization", &receipt.finalization)?;
    let epochs = genesis.epochs();
    let epoch = epochs.of_height(last.height);
    if epochs.of_height(header.height) != epoch {
        return Err(ReceiptError::NotFinal("the block and the finalized header are in different epochs".into()));
    }
    let set = set_of_epoch(receipt, genesis, epoch)?;
    let domain = Domain { chain_id: genesis.chain_id.clone(), genesis_hash, epoch };
    cert.verify_finalizes(&last, &domain, &set).map_err(|e| ReceiptError::NotFinal(e.to_string()))?;
    Ok(Payment {
        hash,
        tx,
        height: header.height,
        block_hash: header.hash(),
        timestamp_ms: header.timestamp_ms,
        final_height: last.height,
        epoch,
    })
}
