//! Proposals: choosing the parent and pacing (P1, P2), checking a leader's block (V1), asking
//! the application, and notarizing (N1).

use super::round::{BlockMeta, Verify};
use super::{Effect, Engine, Message, Source, SKIPPED_NULLIFICATIONS_SENT_MAX, VIEWS_AHEAD_MAX};
use crate::crypto::Hash;
use crate::vote::VoteKind;
use crate::{Block, Certificate, Vote};

/// What V1 says about a proposal right now.
enum Check {
    /// Valid as far as the engine can tell: ask the application.
    Ready,
    /// A nullification P1 needs is missing; look again when certificates arrive.
    Wait,
    /// Invalid: nullify (N2).
    Invalid,
}

impl Engine {
    /// A proposal from the network. It is kept (one per view) if the leader signed it; what the
    /// leader signed twice is equivocation.
    pub(super) fn on_proposal(&mut self, block: Block, leader_vote: Vote) {
        let view = leader_vote.view;
        if view < self.evidence_floor() || view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
            return;
        }
        let leader = self.leader(view);
        let Some(leader_index) = self.cfg.validators.index_of(&leader) else { return };
        // R1: a re-proposal names the epoch's last block, proposed in an earlier view.
        let reproposal = block.header.view != view;
        if leader_vote.kind != VoteKind::Notarize
            || leader_vote.signer != leader
            || block.header.proposer != self.leader(block.header.view)
            || (reproposal && (block.header.view > view || block.header.height != self.last_height()))
        {
            return;
        }
        let hash = block.hash();
        if leader_vote.block_hash != Some(hash) {
            return;
        }
        let known = self.rounds.get(&view).and_then(|r| r.votes.get(&(VoteKind::Notarize, leader_index)));
        let stored = view <= self.finalized.view || self.rounds.get(&view).is_some_and(|r| r.proposal.is_some());
        if known == Some(&leader_vote) && stored {
            return;
        }
        if !self.verifier.vote(&self.cfg.domain, &leader_vote, leader_index) {
            return;
        }
        self.add_vote(leader_vote.clone(), leader_index);
        if view <= self.finalized.view {
            // Final already: the leader's vote only mattered as possible evidence (E1).
            return;
        }
        let header = &block.header;
        let parent_view = header.parent_cert.as_ref().map_or(0, |c| c.view);
        let meta = BlockMeta {
            view: header.view,
            height: header.height,
            timestamp_ms: Some(header.timestamp_ms),
            parent: Some((header.parent_hash, parent_view)),
        };
        let Some(round) = self.round_entry(view, false) else { return };
        let leader_signed_other =
            round.votes.get(&(VoteKind::Notarize, leader_index)).is_some_and(|v| v.block_hash != Some(hash));
        if leader_signed_other || round.proposal_hash().is_some_and(|h| h != hash) {
            round.equivocated = true;
        }
        if round.proposal.is_none() {
            round.proposal = Some((block, leader_vote));
            self.learn_header(hash, meta);
            // The parent named by an uncertified header (and its parent_cert's view) is
            // unchecked: a Byzantine leader can forge both. Only a certificate for this block
            // makes them facts (a certificate may have come before the proposal).
            if self.is_certified(view, hash) {
                self.learn_certified(hash);
            }
            self.try_finalize_pending();
        }
    }

    /// Records what a block's own header says of it. The hash binds the header, so its fields
    /// describe this block; they replace a record derived from a certified child, which lacks
    /// the timestamp.
    fn learn_header(&mut self, hash: Hash, meta: BlockMeta) {
        if self.blocks.get(&hash).is_none_or(|m| m.timestamp_ms.is_none()) {
            self.blocks.insert(hash, meta);
        }
    }

    /// Whether we hold a notarization or finalization of `hash` in `view`.
    fn is_certified(&self, view: u64, hash: Hash) -> bool {
        self.rounds.get(&view).is_some_and(|r| {
            r.notarization.as_ref().is_some_and(|c| c.block_hash == Some(hash))
                || r.finalization.as_ref().is_some_and(|c| c.block_hash == Some(hash))
        })
    }

    /// V1 then [`Effect::Verify`] for the current view's proposal, once.
    pub(super) fn try_verify(&mut self) {
        let view = self.view;
        let Some(signer) = &self.signer else { return };
        if signer.signed_any(view) {
            // Notarized or nullified already (maybe before a restart): nothing left to check.
            return;
        }
        let Some(round) = self.rounds.get(&view) else { return };
        if round.verify != Verify::Idle || round.equivocated {
            return;
        }
        let Some((block, _)) = round.proposal.clone() else { return };
        // R1: a re-proposal repeats a block honest validators checked already; the application
        // is not asked again.
        let reproposal = block.header.view != view;
        let check = if reproposal { self.check_reproposal(view, block.hash()) } else { self.check_proposal(&block) };
        let verify = match check {
            Check::Wait => return,
            Check::Invalid => Verify::Invalid,
            Check::Ready if reproposal => Verify::Valid,
            Check::Ready => Verify::Pending,
        };
        if let Some(r) = self.rounds.get_mut(&view) {
            r.verify = verify;
        }
        match verify {
            Verify::Invalid => self.nullify(view),
            Verify::Valid => self.notarize(view, block.hash()),
            _ => self.out.push(Effect::Verify { block }),
        }
    }

    /// R1: a re-proposal of `hash` for `view` is valid when `hash` is the epoch's last block and
    /// is notarized in the highest view u below `view` that P1 reaches (every view between
    /// nullified, u not below the finalized view).
    fn check_reproposal(&self, view: u64, hash: Hash) -> Check {
        if self.epoch_done() || self.blocks.get(&hash).is_none_or(|m| m.height != self.last_height()) {
            return Check::Invalid;
        }
        let fin = self.finalized.view;
        let mut u = view;
        while u > fin {
            u -= 1;
            let Some(round) = self.rounds.get(&u) else { return Check::Wait };
            if let Some(cert) = &round.notarization {
                return if cert.block_hash == Some(hash) { Check::Ready } else { Check::Invalid };
            }
            if round.nullification.is_none() {
                return Check::Wait;
            }
        }
        Check::Invalid
    }

    /// V1, the engine's part.
    fn check_proposal(&mut self, block: &Block) -> Check {
        let h = &block.header;
        let view = h.view;
        let future_max = self.now_ms.saturating_add(self.cfg.future_timestamp_ms_max);
        if h.chain_id != self.cfg.domain.chain_id
            || h.validator_set_hash != self.validator_set_hash
            || h.timestamp_ms > future_max
            || h.height > self.last_height()
            || self.cfg.epochs.of_height(h.height) != self.cfg.domain.epoch
            || block.check_shape().is_err()
        {
            return Check::Invalid;
        }
        let parent_view = match &h.parent_cert {
            None if h.parent_hash == self.finalized.hash && self.finalized.view == 0 => 0,
            None => return Check::Invalid,
            Some(cert) => match self.check_parent_cert(cert, h.parent_hash, view) {
                Some(v) => v,
                None => return Check::Invalid,
            },
        };
        if parent_view < self.finalized.view {
            return Check::Invalid;
        }
        if let Some(parent) = self.blocks.get(&h.parent_hash) {
            if parent.height.checked_add(1) != Some(h.height) || parent.timestamp_ms.is_some_and(|t| h.timestamp_ms < t)
            {
                return Check::Invalid;
            }
        }
        let needed = view.saturating_sub(parent_view).saturating_sub(1);
        let have =
            self.rounds.range(parent_view.saturating_add(1)..view).filter(|(_, r)| r.nullification.is_some()).count();
        if u64::try_from(have).unwrap_or(u64::MAX) < needed {
            return Check::Wait;
        }
        Check::Ready
    }

    /// V1's parent certificate: a notarization of `parent` below `view` and not below the
    /// finalized view, verified once per round. Returns the parent's view.
    fn check_parent_cert(&mut self, cert: &Certificate, parent: Hash, view: u64) -> Option<u64> {
        let fin = &self.finalized;
        if cert.kind != VoteKind::Notarize
            || cert.block_hash != Some(parent)
            || cert.view >= view
            || cert.view == 0
            || cert.view < fin.view
            || (cert.view == fin.view && parent != fin.hash)
        {
            return None;
        }
        let checked = self.rounds.get(&view).is_some_and(|r| r.parent_checked);
        if !checked {
            if !self.certificate_valid(cert) {
                return None;
            }
            if let Some(r) = self.rounds.get_mut(&view) {
                r.parent_checked = true;
            }
            self.on_certificate(cert.clone(), Source::Checked);
        }
        Some(cert.view)
    }

    /// N1: the application's verdict.
    pub(super) fn on_verified(&mut self, block_hash: Hash, valid: bool) {
        let Some(view) = self.blocks.get(&block_hash).map(|m| m.view) else { return };
        let Some(round) = self.rounds.get_mut(&view) else { return };
        if round.verify != Verify::Pending || round.proposal_hash() != Some(block_hash) {
            return;
        }
        round.verify = if valid { Verify::Valid } else { Verify::Invalid };
        if !valid {
            self.nullify(view);
            return;
        }
        if view != self.view || round.equivocated {
            return;
        }
        self.notarize(view, block_hash);
    }

    /// N1: notarize `block_hash` in `view`, unless we nullified it.
    fn notarize(&mut self, view: u64, block_hash: Hash) {
        if self.rounds.get(&view).is_none_or(|r| r.equivocated) {
            return;
        }
        let (Some(signer), Some(me)) = (&mut self.signer, self.me) else { return };
        if signer.signed(VoteKind::Nullify, view).is_some() {
            return;
        }
        if let Some(vote) = signer.sign(&self.cfg.domain, VoteKind::Notarize, view, Some(block_hash)) {
            self.out.push(Effect::Broadcast(Message::Vote(vote.clone())));
            self.add_vote(vote, me);
        }
    }

    /// P1 and P2: as leader of the current view, ask the application for a block once the
    /// parent is known and its block time has passed. A parent at the epoch's last height is
    /// re-proposed (R1): the application answers with that block itself, at once.
    pub(super) fn try_propose(&mut self) {
        let view = self.view;
        let Some(signer) = &self.signer else { return };
        if self.idle || self.epoch_done() || self.leader(view) != signer.address() || signer.signed_any(view) {
            return;
        }
        if self.rounds.get(&view).is_some_and(|r| r.requested_parent.is_some()) {
            return;
        }
        let Some((parent, parent_cert)) = self.choose_parent(view) else { return };
        let Some(meta) = self.blocks.get(&parent).copied() else { return };
        if meta.height >= self.last_height() {
            let Some(round) = self.round_entry(view, false) else { return };
            round.requested_parent = Some(parent);
            self.out.push(Effect::Propose { view, parent, parent_height: meta.height, parent_cert });
            return;
        }
        let at = meta.timestamp_ms.map_or(self.now_ms, |t| t.saturating_add(self.cfg.block_time_ms));
        if at > self.now_ms {
            self.propose_wait_at_ms = Some(at);
            return;
        }
        self.propose_wait_at_ms = None;
        let Some(round) = self.round_entry(view, false) else { return };
        round.requested_parent = Some(parent);
        self.out.push(Effect::Propose { view, parent, parent_height: meta.height, parent_cert });
    }

    /// P1: the block notarized in the highest view below `view` with every view in between
    /// nullified, or the finalized block (genesis has no certificate).
    fn choose_parent(&self, view: u64) -> Option<(Hash, Option<Certificate>)> {
        let fin = &self.finalized;
        let mut expected = view.checked_sub(1)?;
        for (&u, round) in self.rounds.range(fin.view..view).rev() {
            if u != expected {
                break;
            }
            if let Some(cert) = &round.notarization {
                return Some((cert.block_hash?, Some(cert.clone())));
            }
            if u == fin.view || round.nullification.is_none() {
                break;
            }
            expected = u.checked_sub(1)?;
        }
        (expected == fin.view && fin.view == 0).then_some((fin.hash, None))
    }

    /// Our own block, built on request: sign it (S1), send the nullifications it relies on
    /// (P1) and the proposal, and count our vote.
    pub(super) fn on_built(&mut self, block: Block) {
        let view = self.view;
        let hash = block.hash();
        let Some(round) = self.rounds.get(&view) else { return };
        if round.proposal.is_some() {
            return;
        }
        // R1: the answer to a re-proposal is the requested parent itself.
        let reproposal = round.requested_parent == Some(hash) && block.header.height == self.last_height();
        if !reproposal && (block.header.view != view || round.requested_parent != Some(block.header.parent_hash)) {
            return;
        }
        let (Some(signer), Some(me)) = (&mut self.signer, self.me) else { return };
        if !reproposal && block.header.proposer != signer.address() {
            return;
        }
        let Some(vote) = signer.sign(&self.cfg.domain, VoteKind::Notarize, view, Some(hash)) else { return };
        let h = &block.header;
        let parent_view = if reproposal {
            self.choose_parent(view).and_then(|(_, c)| c).map_or(0, |c| c.view)
        } else {
            h.parent_cert.as_ref().map_or(0, |c| c.view)
        };
        if !reproposal {
            let meta = BlockMeta {
                view,
                height: h.height,
                timestamp_ms: Some(h.timestamp_ms),
                parent: Some((h.parent_hash, parent_view)),
            };
            self.blocks.insert(hash, meta);
        }
        let skipped: Vec<Certificate> = self
            .rounds
            .range(parent_view.saturating_add(1)..view)
            .rev()
            .filter_map(|(_, r)| r.nullification.clone())
            .take(SKIPPED_NULLIFICATIONS_SENT_MAX)
            .collect();
        if reproposal {
            // Those who check the re-proposal need B's notarization (P1 with B as parent).
            if let Some(cert) = self.rounds.get(&parent_view).and_then(|r| r.notarization.clone()) {
                self.out.push(Effect::Broadcast(Message::Certificate(cert)));
            }
        }
        for cert in skipped.into_iter().rev() {
            self.out.push(Effect::Broadcast(Message::Certificate(cert)));
        }
        if let Some(r) = self.rounds.get_mut(&view) {
            r.proposal = Some((block.clone(), vote.clone()));
            r.verify = Verify::Valid;
        }
        self.out.push(Effect::Broadcast(Message::Proposal { block, leader_vote: vote.clone() }));
        self.add_vote(vote, me);
    }
}
