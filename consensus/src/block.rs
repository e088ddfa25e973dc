//! Blocks and headers. A header commits to its parent, its transactions (`tx_root`), the
//! equivocation evidence it records (`evidence_root`), the state after them (`state_root`) and
//! the validator set, and carries the certificate that notarized its parent, so a syncing node
//! can check the chain from genesis without the votes.

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::Hash;
use crate::tx::SignedTransaction;
use crate::vote::{Certificate, Evidence};
use crate::{Address, Error};

/// The most transactions one block may carry.
pub const BLOCK_TXS_MAX: usize = 10_000;
/// The most evidence items one block may carry (G7 of [`crate::governance`]).
pub const BLOCK_EVIDENCE_MAX: usize = 8;
/// Bytes a block's transaction list costs beyond the transactions: its length prefix.
const TX_LIST_PREFIX_BYTES: usize = 8;

/// A block header. Its hash is the block's hash.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// The network's chain id.
    pub chain_id: String,
    /// Height: 0 is genesis, each block is its parent's height + 1.
    pub height: u64,
    /// The consensus view in which this block was proposed (0 for genesis).
    pub view: u64,
    /// The parent's hash ([`Hash::ZERO`] has no meaning except as genesis's parent: genesis
    /// commits to its parameters through `tx_root`).
    pub parent_hash: Hash,
    /// The validator that proposed it, who collects the fees.
    pub proposer: Address,
    /// Proposer's clock when proposing, in Unix milliseconds; never decides safety.
    pub timestamp_ms: u64,
    /// Merkle root (RFC 6962 shape) of the transaction hashes.
    pub tx_root: Hash,
    /// Merkle root (the same shape) of the hashes of the evidence the block records
    /// ([`evidence_root`]).
    pub evidence_root: Hash,
    /// The root of the state tree after applying this block ([`crate::tree`]).
    pub state_root: Hash,
    /// Hash of the validator set that votes on this block.
    pub validator_set_hash: Hash,
    /// The notarization certificate of the parent; `None` only when the parent is genesis.
    pub parent_cert: Option<Certificate>,
}

impl Header {
    /// The block hash: SHA-256 of the canonical header bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(&[&codec::encode(self)])
    }
}

/// A block: a header, the equivocation evidence and the transactions it commits to. Everything
/// in it is covered by its hash (the header's): the evidence through `evidence_root`, the
/// transactions through `tx_root`. The transactions are the last field, so each one's bytes can
/// be found from the end of the encoding.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Proofs that validators of the block's epoch signed conflicting votes, recorded in the
    /// state before the transactions apply (G7).
    pub evidence: Vec<Evidence>,
    /// The transactions, applied in order, all or nothing.
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    /// The block hash (its header's).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes from exactly `bytes`, at most [`codec::BLOCK_BYTES_MAX`] long.
    pub fn decode(bytes: &[u8]) -> Result<Block, Error> {
        codec::decode(bytes, codec::BLOCK_BYTES_MAX)
    }

    /// Checks the block's shape against its header: at most [`BLOCK_TXS_MAX`] transactions and
    /// [`BLOCK_EVIDENCE_MAX`] evidence items, at most [`codec::BLOCK_BYTES_MAX`] encoded bytes
    /// (so that a proposal always fits its message limit), and both roots match.
    pub fn check_shape(&self) -> Result<(), Error> {
        if self.txs.len() > BLOCK_TXS_MAX {
            return Err(Error::BadBlock(format!("{} transactions; the limit is {BLOCK_TXS_MAX}", self.txs.len())));
        }
        if self.evidence.len() > BLOCK_EVIDENCE_MAX {
            return Err(Error::BadBlock(format!(
                "{} evidence items; the limit is {BLOCK_EVIDENCE_MAX}",
                self.evidence.len()
            )));
        }
        let root = evidence_root(&self.evidence);
        if root != self.header.evidence_root {
            return Err(Error::BadBlock(format!(
                "evidence_root {} does not match the evidence ({root})",
                self.header.evidence_root
            )));
        }
        let bytes = codec::encoded_len(self);
        if bytes > codec::BLOCK_BYTES_MAX {
            return Err(Error::BadBlock(format!("{bytes} bytes; the limit is {}", codec::BLOCK_BYTES_MAX)));
        }
        let root = tx_root(&self.txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
        if root != self.header.tx_root {
            return Err(Error::BadBlock(format!(
                "tx_root {} does not match the transactions ({root})",
                self.header.tx_root
            )));
        }
        Ok(())
    }
}

/// How many bytes of transactions a block under `header` with `evidence` may carry: what
/// [`codec::BLOCK_BYTES_MAX`] leaves after the header (with its parent certificate), the
/// evidence list and the transaction list's length prefix. The header's size does not depend on
/// the transactions (its roots are fixed-size), so a proposer can take it from the header it is
/// about to fill.
pub fn tx_bytes_max(header: &Header, evidence: &[Evidence]) -> usize {
    codec::BLOCK_BYTES_MAX
        .saturating_sub(codec::encoded_len(header))
        .saturating_sub(codec::encoded_len(&evidence.to_vec()))
        .saturating_sub(TX_LIST_PREFIX_BYTES)
}

/// The root of a block's evidence: [`tx_root`] of the items' hashes ([`Evidence::hash`]); no
/// evidence gives the empty list's root, `H()`.
pub fn evidence_root(evidence: &[Evidence]) -> Hash {
    tx_root(&evidence.iter().map(Evidence::hash).collect::<Vec<_>>())
}

/// The Merkle root of transaction hashes, shaped as RFC 6962: leaves are `H(0x00 || hash)`,
/// inner nodes `H(0x01 || left || right)`, the tree splits at the largest power of two below
/// the count, and the empty list hashes to `H()`.
pub fn tx_root(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => Hash::of(&[]),
        [one] => Hash::of(&[&[0u8], &one.0]),
        _ => {
            let split = hashes.len().next_power_of_two() / 2;
            let (l, r) = hashes.split_at(split);
            Hash::of(&[&[1u8], &tx_root(l).0, &tx_root(r).0])
        }
    }
}

/// The audit path of transaction `index` among `hashes` to their [`tx_root`] (RFC 6962
/// section 2.1.1 `PATH`): the sibling hashes from the leaf up. Empty when `index` is out of
/// range or the block holds one transaction.
pub fn tx_path(hashes: &[Hash], index: usize) -> Vec<Hash> {
    let mut out = Vec::new();
    let (mut part, mut at) = (hashes, index);
    let mut ups = Vec::new();
    while part.len() > 1 && at < part.len() {
        let split = part.len().next_power_of_two() / 2;
        let (l, r) = part.split_at(split);
        if at < split {
            ups.push(tx_root(r));
            part = l;
        } else {
            ups.push(tx_root(l));
            part = r;
            at -= split;
        }
    }
    // Collected from the root down; the path lists them from the leaf up.
    out.extend(ups.into_iter().rev());
    out
}

/// The root that the audit path `path` leads to from transaction `hash` at `index` of
/// `count` (RFC 9162 section 2.1.3.2), or `None` when the path cannot be one of such a tree.
pub fn tx_path_root(hash: &Hash, index: u64, count: u64, path: &[Hash]) -> Option<Hash> {
    if index >= count {
        return None;
    }
    let (mut f, mut s) = (index, count - 1);
    let mut r = Hash::of(&[&[0u8], &hash.0]);
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = Hash::of(&[&[1u8], &p.0, &r.0]);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = Hash::of(&[&[1u8], &r.0, &p.0]);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_root_changes_with_order_and_content() {
        let a = Hash([1; 32]);
        let b = Hash([2; 32]);
        let c = Hash([3; 32]);
        assert_ne!(tx_root(&[a, b]), tx_root(&[b, a]));
        assert_ne!(tx_root(&[a, b, c]), tx_root(&[a, b]));
        assert_ne!(tx_root(&[a]), a, "a leaf is domain-separated from its hash");
        assert_eq!(tx_root(&[a, b, c]), tx_root(&[a, b, c]));
    }

    #[test]
    fn every_transactions_path_leads_to_the_root_and_no_other_position() {
        for n in 1..=20u8 {
            let hashes: Vec<Hash> = (0..n).map(|i| Hash([i; 32])).collect();
            let root = tx_root(&hashes);
            for (i, h) in hashes.iter().enumerate() {
                let path = tx_path(&hashes, i);
                let (i, count) = (i as u64, u64::from(n));
                assert_eq!(tx_path_root(h, i, count, &path), Some(root), "n {n} index {i}");
                let elsewhere = (0..count).filter(|j| *j != i).any(|j| tx_path_root(h, j, count, &path) == Some(root));
                assert!(!elsewhere, "n {n}: the path of {i} proves no other position");
            }
            assert_eq!(tx_path_root(&hashes[0], u64::from(n), u64::from(n), &[]), None, "index beyond the count");
        }
    }
}
