//! The safety record and the signer that keeps it: a validator never signs two conflicting votes
//! for one view, also across restarts (rule S1 of [`super`]).

use bincode::{Decode, Encode};

use super::round::{BlockMeta, Round};
use super::Engine;
use crate::crypto::{Hash, Keypair};
use crate::vote::{Domain, VoteKind};
use crate::{Certificate, Vote};

/// How many nullification certificates the record keeps (the most recent), so that it stays
/// small: with 100 validators a certificate is about 4.3 KiB and the record stays below
/// [`crate::codec::MESSAGE_BYTES_MAX`].
pub const RECORD_NULLIFICATIONS_MAX: usize = 8;

/// What survives a crash. The node writes it durably when the engine emits
/// [`super::Effect::Persist`], before it executes any later effect of the same step, so a vote
/// is never sent before it is recorded. It holds only the latest view's votes and the latest
/// certificates, never a growing log.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SafetyRecord {
    /// The epoch the engine was in; a record of another epoch is not used (views restart).
    pub epoch: u64,
    /// The view the engine was in. After a restart it signs nothing in a lower view.
    pub view: u64,
    /// Our own signed votes in views `>= view`.
    pub votes: Vec<Vote>,
    /// Height and timestamp of the blocks those votes name: if one of them is notarized while
    /// we are down, we can still build on it after a restart (the leader must know the parent's
    /// height, and a block nobody else remembers is otherwise a dead end).
    pub voted_blocks: Vec<BlockFacts>,
    /// The highest notarized block whose height we knew, with its certificate.
    pub notarized: Option<CertifiedBlock>,
    /// Nullifications of views above `notarized` (at most [`RECORD_NULLIFICATIONS_MAX`], newest).
    pub nullifications: Vec<Certificate>,
    /// The highest finalized block we knew, with its finalization certificate.
    pub finalized: Option<CertifiedBlock>,
}

/// A certificate for a block together with the block's height and timestamp, taken from the
/// block's header (which the certificate's hash commits to).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CertifiedBlock {
    /// The notarization or finalization certificate (its `view` and `block_hash` name the block).
    pub certificate: Certificate,
    /// The block's height.
    pub height: u64,
    /// The block's timestamp, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// What a header says about its block, as far as the engine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockFacts {
    /// The block's hash.
    pub hash: Hash,
    /// The view it was proposed in.
    pub view: u64,
    /// Its height.
    pub height: u64,
    /// Its timestamp, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// Signs votes, refusing anything below its floor view and anything that conflicts with a vote
/// it already signed. Its floor and votes are exactly what the record persists.
pub(crate) struct Signer {
    key: Keypair,
    floor_view: u64,
    votes: Vec<Vote>,
    dirty: bool,
}

impl Signer {
    /// A signer that resumes from `floor_view` with the votes it had signed there.
    pub(crate) fn new(key: Keypair, floor_view: u64, votes: Vec<Vote>) -> Signer {
        let me = crate::Address(key.public());
        let votes = votes.into_iter().filter(|v| v.signer == me && v.view >= floor_view).collect();
        Signer { key, floor_view, votes, dirty: false }
    }

    /// Signs `kind` for `view` (and `block_hash`), or returns `None` when that would break S1:
    /// the view is below the floor, or we already signed a different vote of this kind or a
    /// conflicting one (nullify against finalize) in this view. Re-signing the same vote
    /// returns it again.
    pub(crate) fn sign(
        &mut self,
        domain: &Domain,
        kind: VoteKind,
        view: u64,
        block_hash: Option<Hash>,
    ) -> Option<Vote> {
        if view < self.floor_view {
            return None;
        }
        if let Some(same) = self.votes.iter().find(|v| v.view == view && v.kind == kind && v.block_hash == block_hash) {
            return Some(same.clone());
        }
        let vote = Vote::sign(domain, &self.key, kind, view, block_hash);
        if self.votes.iter().any(|v| v.view == view && (v.kind == kind || v.conflicts_with(&vote))) {
            return None;
        }
        self.votes.push(vote.clone());
        self.dirty = true;
        Some(vote)
    }

    /// Whether we signed a vote of `kind` in `view`.
    pub(crate) fn signed(&self, kind: VoteKind, view: u64) -> Option<&Vote> {
        self.votes.iter().find(|v| v.view == view && v.kind == kind)
    }

    /// Whether we signed anything in `view`.
    pub(crate) fn signed_any(&self, view: u64) -> bool {
        self.votes.iter().any(|v| v.view == view)
    }

    /// Raises the floor: nothing below `view` will be signed again, so votes below it need not
    /// be remembered.
    pub(crate) fn advance(&mut self, view: u64) {
        if view > self.floor_view {
            self.floor_view = view;
            self.votes.retain(|v| v.view >= view);
            self.dirty = true;
        }
    }

    /// The votes to persist.
    pub(crate) fn votes(&self) -> &[Vote] {
        &self.votes
    }

    /// Whether something changed since the last [`Signer::take_dirty`].
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    /// The key's public address.
    pub(crate) fn address(&self) -> crate::Address {
        crate::Address(self.key.public())
    }
}

impl Engine {
    /// The record to persist: our view and votes (S1) and the latest certificates, so a restart
    /// can propose and finalize without waiting for the network.
    pub(super) fn record(&self) -> SafetyRecord {
        let notarized = self.rounds.iter().rev().find_map(|(_, r)| {
            let cert = r.notarization.as_ref()?;
            let meta = self.blocks.get(&cert.block_hash?)?;
            Some(CertifiedBlock { certificate: cert.clone(), height: meta.height, timestamp_ms: meta.timestamp_ms? })
        });
        let above = notarized.as_ref().map_or(self.finalized.view, |n| n.certificate.view);
        let mut nullifications: Vec<Certificate> = self
            .rounds
            .range(above.saturating_add(1)..)
            .rev()
            .filter_map(|(_, r)| r.nullification.clone())
            .take(RECORD_NULLIFICATIONS_MAX)
            .collect();
        nullifications.reverse();
        let finalized = self.rounds.get(&self.finalized.view).and_then(|r| r.finalization.clone()).map(|certificate| {
            CertifiedBlock { certificate, height: self.finalized.height, timestamp_ms: self.finalized.timestamp_ms }
        });
        let votes = self.signer.as_ref().map(|s| s.votes().to_vec()).unwrap_or_default();
        let mut voted_blocks: Vec<BlockFacts> = votes
            .iter()
            .filter_map(|v| {
                let hash = v.block_hash?;
                let meta = self.blocks.get(&hash)?;
                Some(BlockFacts { hash, view: meta.view, height: meta.height, timestamp_ms: meta.timestamp_ms? })
            })
            .collect();
        voted_blocks.dedup();
        SafetyRecord {
            epoch: self.cfg.domain.epoch,
            view: self.view,
            votes,
            voted_blocks,
            notarized,
            nullifications,
            finalized,
        }
    }

    /// Loads the certificates of a record (checked again: the disk is outside the engine).
    pub(super) fn restore(&mut self, record: SafetyRecord) {
        for f in &record.voted_blocks {
            if f.view > self.finalized.view {
                let meta =
                    BlockMeta { view: f.view, height: f.height, timestamp_ms: Some(f.timestamp_ms), parent: None };
                self.blocks.entry(f.hash).or_insert(meta);
            }
        }
        let mut certs: Vec<(Certificate, Option<(u64, u64)>)> = Vec::new();
        if let Some(n) = record.notarized {
            certs.push((n.certificate, Some((n.height, n.timestamp_ms))));
        }
        certs.extend(record.nullifications.into_iter().map(|c| (c, None)));
        if let Some(f) = record.finalized {
            certs.push((f.certificate, Some((f.height, f.timestamp_ms))));
        }
        for (cert, meta) in certs {
            if cert.view < self.finalized.view || cert.verify(&self.cfg.domain, &self.cfg.validators).is_err() {
                continue;
            }
            if let (Some(hash), Some((height, ts))) = (cert.block_hash, meta) {
                self.blocks.entry(hash).or_insert(BlockMeta {
                    view: cert.view,
                    height,
                    timestamp_ms: Some(ts),
                    parent: None,
                });
            }
            if cert.kind == VoteKind::Finalize && cert.view > self.finalized.view {
                self.pending_final = Some(cert.clone());
            }
            self.rounds.entry(cert.view).or_insert_with(Round::new).set_certificate(cert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain { chain_id: "t".into(), genesis_hash: Hash([1; 32]), epoch: 0 }
    }

    #[test]
    fn signer_refuses_a_second_block_and_finalize_after_nullify() {
        let mut s = Signer::new(Keypair::from_seed(&[3; 32]), 5, Vec::new());
        let d = domain();
        assert!(s.sign(&d, VoteKind::Notarize, 5, Some(Hash([1; 32]))).is_some());
        assert!(s.sign(&d, VoteKind::Notarize, 5, Some(Hash([2; 32]))).is_none());
        assert!(s.sign(&d, VoteKind::Nullify, 5, None).is_some());
        assert!(s.sign(&d, VoteKind::Finalize, 5, Some(Hash([1; 32]))).is_none());
        assert!(s.sign(&d, VoteKind::Notarize, 4, Some(Hash([1; 32]))).is_none(), "below the floor");
    }

    #[test]
    fn signer_restored_from_its_votes_keeps_refusing() {
        let d = domain();
        let mut s = Signer::new(Keypair::from_seed(&[3; 32]), 5, Vec::new());
        let first = s.sign(&d, VoteKind::Notarize, 5, Some(Hash([1; 32])));
        assert!(s.take_dirty());
        let mut again = Signer::new(Keypair::from_seed(&[3; 32]), 5, s.votes().to_vec());
        assert!(again.sign(&d, VoteKind::Notarize, 5, Some(Hash([2; 32]))).is_none());
        assert_eq!(again.sign(&d, VoteKind::Notarize, 5, Some(Hash([1; 32]))), first);
        assert!(!again.take_dirty(), "re-signing the same vote changes nothing");
    }
}
