//! The on-disk layout: column families, key encodings, the stored value types and their decode
//! limits.
//!
//! Heights are big-endian so that RocksDB's byte order is height order; a history key is
//! `address || height || index` so that one address's entries are contiguous and sorted oldest
//! first, which lets [`crate::Store::history`] page newest-first with one reverse seek.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};
use taksa_consensus::codec::{BLOCK_BYTES_MAX, MESSAGE_BYTES_MAX};
use taksa_consensus::state::Receipt;
use taksa_consensus::{Address, Hash, Header, PublicKey};

/// hash -> encoded Block.
pub(crate) const CF_BLOCKS: &str = "blocks";
/// height (u64 BE) -> block hash.
pub(crate) const CF_HEIGHTS: &str = "heights";
/// height (u64 BE) -> encoded finalization Certificate.
pub(crate) const CF_FINALITY: &str = "finality";
/// tx hash -> encoded [`TxLocation`].
pub(crate) const CF_TXS: &str = "txs";
/// address (32 bytes) -> encoded Account.
pub(crate) const CF_ACCOUNTS: &str = "accounts";
/// address || height (u64 BE) || index (u32 BE) -> flags byte ([`FLAG_SENT`] | [`FLAG_RECEIVED`]).
pub(crate) const CF_HISTORY: &str = "history";
/// tx hash -> encoded [`DroppedTx`].
pub(crate) const CF_DROPPED: &str = "dropped";
/// height (u64 BE) -> the block's receipts ([`encode_receipts`]), present when it holds
/// transactions. A block's events derive from it and these (`taksa_consensus::event`), so no
/// transaction is stored twice.
pub(crate) const CF_EVENTS: &str = "events";
/// height (u64 BE) -> encoded [`taksa_consensus::BlockEvent`], the small record explorers list.
pub(crate) const CF_SUMMARIES: &str = "summaries";
/// node position ([`taksa_consensus::tree::NodeKey::to_bytes`], 34 bytes) -> encoded
/// [`taksa_consensus::tree::Node`]: the state tree after the head, one entry per node.
pub(crate) const CF_TREE: &str = "tree";
/// epoch e >= 1 (u64 BE) -> encoded `(Governance, Proof)`, for each epoch whose validator set
/// differs from the one before: the governance entry in the state after epoch e - 1's last
/// block, whose `validators` are epoch e's set, with the state tree's proof of it under that
/// block's state root (what receipts carry for each change of the set).
pub(crate) const CF_EPOCHS: &str = "epochs";
/// The state before each change, for proofs at past heights (`--state-history-blocks`):
/// [`HISTORY_ACCOUNT`] `|| address || height` (u64 BE) -> the account before the block at
/// `height` changed it (its encoding; empty: zero), [`HISTORY_NODE`] `|| position || height`
/// -> the state-tree node before (its encoding; empty: none). The value at a past height h is
/// the first entry after h, else the current one. A compaction filter drops the entries below
/// the window kept.
pub(crate) const CF_STATE_HISTORY: &str = "state_history";
/// Singletons: [`META_GENESIS`], [`META_HEAD`], [`META_SAFETY`], [`META_SCHEMA`],
/// [`META_TXS_TOTAL`], [`META_VALIDATOR_STATS`], [`META_GOVERNANCE`], [`META_ACCOUNT_COUNT`],
/// [`META_HISTORY_FROM`].
pub(crate) const CF_META: &str = "meta";

/// Every column family the store uses, besides RocksDB's own `default`.
pub(crate) const COLUMN_FAMILIES: [&str; 13] = [
    CF_BLOCKS,
    CF_HEIGHTS,
    CF_FINALITY,
    CF_TXS,
    CF_ACCOUNTS,
    CF_TREE,
    CF_HISTORY,
    CF_DROPPED,
    CF_EVENTS,
    CF_SUMMARIES,
    CF_EPOCHS,
    CF_STATE_HISTORY,
    CF_META,
];
/// The column family RocksDB always has.
pub(crate) const CF_DEFAULT: &str = "default";

/// meta key: the 32-byte genesis hash.
pub(crate) const META_GENESIS: &[u8] = b"genesis_hash";
/// meta key: the head, as height (u64 BE) || hash (32 bytes).
pub(crate) const META_HEAD: &[u8] = b"head";
/// meta key: the consensus safety record, opaque bytes.
pub(crate) const META_SAFETY: &[u8] = b"safety_record";
/// meta key: the layout version (u32 BE). Absent in databases written before events were kept.
pub(crate) const META_SCHEMA: &[u8] = b"schema";
/// meta key: transactions committed since genesis (u64 BE).
pub(crate) const META_TXS_TOTAL: &[u8] = b"txs_total";
/// meta key: encoded `Vec<ValidatorStats>`, one per validator in set order.
pub(crate) const META_VALIDATOR_STATS: &[u8] = b"validator_stats";
/// meta key: the encoded governance entry after the head (the validator set and its votes).
pub(crate) const META_GOVERNANCE: &[u8] = b"governance";
/// The lowest height whose state [`CF_STATE_HISTORY`] has held continuously since, then the
/// window of heights the last run kept (two u64, big-endian); absent while the node keeps no
/// history.
pub(crate) const META_HISTORY_FROM: &[u8] = b"history_from";
/// A [`CF_STATE_HISTORY`] key's first byte: an account's entry.
pub(crate) const HISTORY_ACCOUNT: u8 = b'a';
/// A [`CF_STATE_HISTORY`] key's first byte: a state-tree node's entry.
pub(crate) const HISTORY_NODE: u8 = b'n';

/// A [`CF_STATE_HISTORY`] key: `kind`, the account's address or the node's position, the height
/// of the block that changed it.
pub(crate) fn state_history_key(kind: u8, key: &[u8], height: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len() + 8);
    out.push(kind);
    out.extend_from_slice(key);
    out.extend_from_slice(&height.to_be_bytes());
    out
}

/// The height at the end of a [`CF_STATE_HISTORY`] key.
pub(crate) fn state_history_height(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    key.get(at..)?.try_into().ok().map(u64::from_be_bytes)
}

/// How many non-zero accounts the state after the head holds (u64, big-endian).
pub(crate) const META_ACCOUNT_COUNT: &[u8] = b"account_count";
/// Read limit for a stored epoch entry: a governance entry and a proof of at most 256 hashes.
pub(crate) const STORED_EPOCH_BYTES_MAX: usize = STORED_GOVERNANCE_BYTES_MAX + 16 * 1024;
/// Read limit for the stored governance entry: a full set and every pending change with all
/// its voters is about 40 KiB.
pub(crate) const STORED_GOVERNANCE_BYTES_MAX: usize = 256 * 1024;

/// The layout this code writes: 2 added events, summaries, totals and validator statistics; 3
/// dropped the evidence list from the block encoding; 4 keeps each block's receipts instead of
/// a copy of every transfer as an event, and keeps drop records of transactions included later;
/// 5 replaces the additive state digest by the state tree, whose nodes it keeps; 6 adds epochs to
/// votes and certificates and keeps the governance entry (the validator set) as state; 7 adds
/// committed equivocation evidence to blocks (and its root to headers) and the stored account
/// count.
pub(crate) const SCHEMA_VERSION: u32 = 7;

/// History flag: the address sent the transaction.
pub(crate) const FLAG_SENT: u8 = 1;
/// History flag: the address received the transaction.
pub(crate) const FLAG_RECEIVED: u8 = 2;

/// Stored blocks are read back with a limit well above the network's, so that a block the node
/// accepted can never become unreadable.
pub(crate) const STORED_BLOCK_BYTES_MAX: usize = 16 * BLOCK_BYTES_MAX;
/// Read limit for a stored certificate.
pub(crate) const STORED_CERT_BYTES_MAX: usize = 16 * MESSAGE_BYTES_MAX;
/// Read limit for a stored account (24 bytes today).
pub(crate) const STORED_ACCOUNT_BYTES_MAX: usize = 256;
/// Read limit for a stored [`TxLocation`] (20 bytes today, 12 for old entries).
pub(crate) const STORED_LOCATION_BYTES_MAX: usize = 256;
/// Read limit for one transaction read from its block's bytes (a valid one is at most
/// `TX_BYTES_MAX`; this leaves room, as the block limit does).
pub(crate) const STORED_TX_BYTES_MAX: usize = 16 * taksa_consensus::codec::TX_BYTES_MAX;
/// Read limit for a stored event (a transfer with the longest memo is well under this).
pub(crate) const STORED_EVENT_BYTES_MAX: usize = 64 * 1024;
/// Read limit for the validator statistics (a few dozen bytes per validator).
pub(crate) const STORED_STATS_BYTES_MAX: usize = 1024 * 1024;
/// Read and write limit for a stored [`DroppedTx`].
pub(crate) const STORED_DROPPED_BYTES_MAX: usize = 64 * 1024;
/// Write limit for the safety record.
pub(crate) const SAFETY_RECORD_BYTES_MAX: usize = 1024 * 1024;
/// A header is read from the front of a stored block during the open check; no header is this
/// large.
const HEADER_BYTES_MAX: usize = 1024 * 1024;

/// Where a committed transaction is: its block's height and its position in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TxLocation {
    /// The block height.
    pub height: u64,
    /// The position in the block's transaction list.
    pub index: u32,
}

/// What the tx index stores: a [`TxLocation`] and where the transaction's bytes lie in its
/// block's encoding, so that reading one transaction decodes only it. Entries written before
/// the span was kept are plain [`TxLocation`]s (12 bytes), read with no span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub(crate) struct StoredTxLocation {
    pub(crate) height: u64,
    pub(crate) index: u32,
    /// Byte offset of the transaction in the encoded block.
    pub(crate) offset: u32,
    /// Its encoded length.
    pub(crate) len: u32,
}

/// Where a transaction's bytes lie in its block's encoding: offset and length.
pub(crate) type TxSpan = (u32, u32);

impl StoredTxLocation {
    /// Reads either form; `None` for the span of an old entry.
    pub(crate) fn read(bytes: &[u8]) -> Option<(TxLocation, Option<TxSpan>)> {
        if let Ok(full) = taksa_consensus::codec::decode::<StoredTxLocation>(bytes, STORED_LOCATION_BYTES_MAX) {
            return Some((TxLocation { height: full.height, index: full.index }, Some((full.offset, full.len))));
        }
        let old = taksa_consensus::codec::decode::<TxLocation>(bytes, STORED_LOCATION_BYTES_MAX).ok()?;
        Some((old, None))
    }
}

pub use taksa_consensus::pool::DroppedTx;

/// A drop record as written before records named a replacing transaction (schema 3 without
/// `replaced_by`); read, never written.
#[derive(Decode)]
pub(crate) struct LegacyDroppedTx {
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) height: u64,
}

/// How one validator has signed, counted over finalized blocks from the notarization
/// certificate that each block's child carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ValidatorStats {
    /// Blocks whose certificate it signed.
    pub signed: u64,
    /// Blocks whose certificate lacks it.
    pub missed: u64,
    /// Blocks it proposed.
    pub proposed: u64,
    /// The newest block it signed.
    pub last_signed_height: Option<u64>,
}

/// One entry of an address's history: a transaction that it sent, received or both. Two items
/// are equal when they name the same entry; `span` only says where to read it.
#[derive(Clone, Copy, Debug, Eq)]
pub struct HistoryItem {
    /// The block height.
    pub height: u64,
    /// The position in the block.
    pub index: u32,
    /// The address is the transaction's sender.
    pub sent: bool,
    /// The address is the transaction's recipient.
    pub received: bool,
    /// Where the transaction's bytes lie in its block's encoding (offset, length), for
    /// [`crate::Store::tx_at`]; `None` for entries written before spans were kept.
    pub span: Option<(u32, u32)>,
}

impl PartialEq for HistoryItem {
    fn eq(&self, other: &Self) -> bool {
        (self.height, self.index, self.sent, self.received) == (other.height, other.index, other.sent, other.received)
    }
}

/// The bytes of one receipt in a [`CF_EVENTS`] value.
pub(crate) const RECEIPT_BYTES: usize = 32;

/// A block's receipts as stored: each one's sender balance then recipient balance, u128
/// little-endian, with no length prefix, so that receipt `i` is read without decoding the others.
pub(crate) fn encode_receipts(receipts: &[Receipt]) -> Vec<u8> {
    let mut out = Vec::with_capacity(receipts.len().saturating_mul(RECEIPT_BYTES));
    for r in receipts {
        out.extend_from_slice(&r.from_balance.to_le_bytes());
        out.extend_from_slice(&r.to_balance.to_le_bytes());
    }
    out
}

/// Receipt `index` of an [`encode_receipts`] value; `None` past its end.
pub(crate) fn receipt_at(bytes: &[u8], index: usize) -> Option<Receipt> {
    let start = index.checked_mul(RECEIPT_BYTES)?;
    let record = bytes.get(start..start.checked_add(RECEIPT_BYTES)?)?;
    let (from, to) = record.split_at(16);
    Some(Receipt {
        from_balance: u128::from_le_bytes(from.try_into().ok()?),
        to_balance: u128::from_le_bytes(to.try_into().ok()?),
    })
}

/// Every receipt of an [`encode_receipts`] value; `None` when its length is not a whole number
/// of receipts.
pub(crate) fn decode_receipts(bytes: &[u8]) -> Option<Vec<Receipt>> {
    if !bytes.len().is_multiple_of(RECEIPT_BYTES) {
        return None;
    }
    (0..bytes.len() / RECEIPT_BYTES).map(|i| receipt_at(bytes, i)).collect()
}

/// The key of a height in [`CF_HEIGHTS`], [`CF_FINALITY`], [`CF_EVENTS`] and [`CF_SUMMARIES`].
pub(crate) fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// The height a [`height_key`] encodes.
pub(crate) fn parse_height_key(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// The length of a [`history_key`].
pub(crate) const HISTORY_KEY_BYTES: usize = 32 + 8 + 4;

/// The key of a history entry.
pub(crate) fn history_key(addr: &Address, height: u64, index: u32) -> [u8; HISTORY_KEY_BYTES] {
    let mut key = [0u8; HISTORY_KEY_BYTES];
    let (a, rest) = key.split_at_mut(32);
    let (h, i) = rest.split_at_mut(8);
    a.copy_from_slice(addr.as_bytes());
    h.copy_from_slice(&height.to_be_bytes());
    i.copy_from_slice(&index.to_be_bytes());
    key
}

/// The (height, index) of a history key, if it is one.
pub(crate) fn parse_history_key(key: &[u8]) -> Option<(u64, u32)> {
    if key.len() != HISTORY_KEY_BYTES {
        return None;
    }
    let height = key.get(32..40)?.try_into().ok().map(u64::from_be_bytes)?;
    let index = key.get(40..44)?.try_into().ok().map(u32::from_be_bytes)?;
    Some((height, index))
}

/// The address an accounts key encodes.
pub(crate) fn parse_address(key: &[u8]) -> Option<Address> {
    key.try_into().ok().map(|bytes| Address(PublicKey(bytes)))
}

/// A 32-byte hash value.
pub(crate) fn parse_hash(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok().map(Hash)
}

/// The [`META_HEAD`] value.
pub(crate) fn head_value(height: u64, hash: &Hash) -> [u8; 40] {
    let mut out = [0u8; 40];
    let (h, rest) = out.split_at_mut(8);
    h.copy_from_slice(&height.to_be_bytes());
    rest.copy_from_slice(&hash.0);
    out
}

/// Parses a [`META_HEAD`] value.
pub(crate) fn parse_head_value(bytes: &[u8]) -> Option<(u64, Hash)> {
    if bytes.len() != 40 {
        return None;
    }
    let height = parse_height_key(bytes.get(..8)?)?;
    Some((height, parse_hash(bytes.get(8..)?)?))
}

/// The canonical configuration of `taksa_consensus::codec`, with a limit. It is repeated here
/// only to read a header from the front of a stored block without decoding the transactions;
/// `header_prefix_matches_the_canonical_codec` below pins the two together.
const PREFIX_CONFIG: Configuration<LittleEndian, Fixint, Limit<HEADER_BYTES_MAX>> =
    bincode::config::standard().with_little_endian().with_fixed_int_encoding().with_limit::<HEADER_BYTES_MAX>();

/// Decodes the header at the front of an encoded block and returns it with its hash. A block's
/// encoding starts with its header's canonical encoding, so the block hash is the SHA-256 of
/// exactly the bytes the header used.
pub(crate) fn decode_block_header(block_bytes: &[u8]) -> Result<(Header, Hash), String> {
    let (header, used): (Header, usize) =
        bincode::decode_from_slice(block_bytes, PREFIX_CONFIG).map_err(|e| e.to_string())?;
    let prefix = block_bytes.get(..used).ok_or_else(|| "header is longer than the block".to_owned())?;
    Ok((header, Hash::of(&[prefix])))
}

#[cfg(test)]
mod tests {
    use taksa_consensus::{Block, Certificate, VoteKind};

    use super::*;

    fn header() -> Header {
        Header {
            chain_id: "taksa-test".into(),
            height: 7,
            view: 9,
            parent_hash: Hash([3; 32]),
            proposer: Address(PublicKey([4; 32])),
            timestamp_ms: 1_700_000_000_000,
            tx_root: Hash([5; 32]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([6; 32]),
            validator_set_hash: Hash([7; 32]),
            parent_cert: Some(Certificate {
                epoch: 0,
                kind: VoteKind::Notarize,
                view: 8,
                block_hash: Some(Hash([3; 32])),
                signers: vec![0b101],
                signatures: vec![taksa_consensus::Signature([9; 64]); 2],
            }),
        }
    }

    #[test]
    fn tx_locations_read_with_their_span_and_old_entries_without() {
        let stored = StoredTxLocation { height: 9, index: 3, offset: 700, len: 180 };
        let loc = TxLocation { height: 9, index: 3 };
        assert_eq!(StoredTxLocation::read(&taksa_consensus::codec::encode(&stored)), Some((loc, Some((700, 180)))));
        assert_eq!(StoredTxLocation::read(&taksa_consensus::codec::encode(&loc)), Some((loc, None)), "12-byte entries");
        assert_eq!(StoredTxLocation::read(&[1, 2, 3]), None);
    }

    #[test]
    fn header_prefix_matches_the_canonical_codec() {
        let block = Block { header: header(), evidence: Vec::new(), txs: Vec::new() };
        let (decoded, hash) = decode_block_header(&block.encode()).expect("decodes");
        assert_eq!(decoded, block.header);
        assert_eq!(hash, block.hash());
    }

    #[test]
    fn truncated_block_header_does_not_decode() {
        let bytes = Block { header: header(), evidence: Vec::new(), txs: Vec::new() }.encode();
        assert!(decode_block_header(&bytes[..40]).is_err());
    }

    #[test]
    fn history_keys_sort_by_address_then_height_then_index() {
        let a = Address(PublicKey([1; 32]));
        let b = Address(PublicKey([2; 32]));
        let mut keys =
            [history_key(&b, 0, 0), history_key(&a, 256, 0), history_key(&a, 1, 70_000), history_key(&a, 1, 2)];
        keys.sort();
        let parsed: Vec<(u64, u32)> = keys.iter().filter_map(|k| parse_history_key(k)).collect();
        assert_eq!(parsed, vec![(1, 2), (1, 70_000), (256, 0), (0, 0)]);
        assert_eq!(parse_history_key(&keys[0][..43]), None);
    }

    #[test]
    fn receipts_read_back_one_at_a_time_and_all_together() {
        let receipts = [
            Receipt { from_balance: 1, to_balance: u128::MAX },
            Receipt { from_balance: 10u128.pow(30), to_balance: 0 },
        ];
        let bytes = encode_receipts(&receipts);
        assert_eq!(bytes.len(), 2 * RECEIPT_BYTES);
        assert_eq!(receipt_at(&bytes, 1), Some(receipts[1]));
        assert_eq!(receipt_at(&bytes, 2), None);
        assert_eq!(decode_receipts(&bytes), Some(receipts.to_vec()));
        assert_eq!(decode_receipts(&bytes[..40]), None, "a partial receipt is corruption");
        assert_eq!(decode_receipts(&[]), Some(Vec::new()));
    }

    #[test]
    fn head_value_roundtrips_and_rejects_wrong_lengths() {
        let hash = Hash([8; 32]);
        let value = head_value(u64::MAX - 1, &hash);
        assert_eq!(parse_head_value(&value), Some((u64::MAX - 1, hash)));
        assert_eq!(parse_head_value(&value[..39]), None);
        assert!(height_key(255) < height_key(256), "big-endian heights sort numerically");
    }
}
