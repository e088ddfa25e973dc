//! What the engine knows about one view: the leader's proposal, the votes (one per validator and
//! kind) and the certificates.

use std::collections::BTreeMap;

use crate::crypto::Hash;
use crate::vote::VoteKind;
use crate::{Block, Certificate, Vote};

/// Where the application's check of a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Not asked yet.
    Idle,
    /// [`super::Effect::Verify`] was emitted.
    Pending,
    /// Checked, valid.
    Valid,
    /// Invalid (by the engine's checks or the application's).
    Invalid,
}

/// What one header tells us, keyed by its hash. A header is trusted only once its hash is
/// certified; the hash binds these fields, so they are then true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub(crate) view: u64,
    pub(crate) height: u64,
    /// `None` when the height was learned from a certified child rather than from the header.
    pub(crate) timestamp_ms: Option<u64>,
    /// The parent's hash and view, when learned from the header itself.
    pub(crate) parent: Option<(Hash, u64)>,
}

/// One view's state.
pub(crate) struct Round {
    /// The first authenticated proposal: the block and the leader's notarize vote for it.
    pub(crate) proposal: Option<(Block, Vote)>,
    /// The leader signed two different blocks for this view.
    pub(crate) equivocated: bool,
    pub(crate) verify: Verify,
    /// The proposal's `parent_cert` was verified (so later re-checks need not verify it again).
    pub(crate) parent_checked: bool,
    /// We asked the application to build our proposal for this view (and on which parent).
    pub(crate) requested_parent: Option<Hash>,
    /// First vote of each kind per validator index; a later conflicting vote is evidence, not a
    /// second vote.
    pub(crate) votes: BTreeMap<(VoteKind, usize), Vote>,
    pub(crate) notarization: Option<Certificate>,
    pub(crate) nullification: Option<Certificate>,
    pub(crate) finalization: Option<Certificate>,
}

impl Round {
    pub(crate) fn new() -> Round {
        Round {
            proposal: None,
            equivocated: false,
            verify: Verify::Idle,
            parent_checked: false,
            requested_parent: None,
            votes: BTreeMap::new(),
            notarization: None,
            nullification: None,
            finalization: None,
        }
    }

    /// How many validators voted `kind` for `block_hash`, and who.
    pub(crate) fn voters(&self, kind: VoteKind, block_hash: Option<Hash>) -> Vec<&Vote> {
        self.votes
            .range((kind, 0)..=(kind, usize::MAX))
            .map(|(_, v)| v)
            .filter(|v| v.block_hash == block_hash)
            .collect()
    }

    /// The certificate of `kind` held for this view.
    pub(crate) fn certificate(&self, kind: VoteKind) -> Option<&Certificate> {
        match kind {
            VoteKind::Notarize => self.notarization.as_ref(),
            VoteKind::Nullify => self.nullification.as_ref(),
            VoteKind::Finalize => self.finalization.as_ref(),
        }
    }

    /// Stores a certificate of its kind; returns false if one was already held.
    pub(crate) fn set_certificate(&mut self, cert: Certificate) -> bool {
        let slot = match cert.kind {
            VoteKind::Notarize => &mut self.notarization,
            VoteKind::Nullify => &mut self.nullification,
            VoteKind::Finalize => &mut self.finalization,
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(cert);
        true
    }

    /// The proposal's hash, if any.
    pub(crate) fn proposal_hash(&self) -> Option<Hash> {
        self.proposal.as_ref().and_then(|(_, leader_vote)| leader_vote.block_hash)
    }
}
