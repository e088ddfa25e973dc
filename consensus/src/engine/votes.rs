//! Votes and certificates: verification, quorum counting, evidence (E1), and what a new
//! certificate sets off (F1, A1).

use super::{Effect, Engine, Message, Source, EVIDENCE_KEPT_MAX, VIEWS_AHEAD_MAX};
use crate::crypto::Hash;
use crate::vote::VoteKind;
use crate::{Certificate, Evidence, Vote};

impl Engine {
    /// A vote from the network: checked, deduplicated, counted.
    pub(super) fn on_vote_message(&mut self, vote: Vote) {
        let Some(index) = self.cfg.validators.index_of(&vote.signer) else { return };
        if vote.view < self.evidence_floor() || vote.view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
            return;
        }
        // A replayed vote costs a map lookup, not a signature check.
        if self.rounds.get(&vote.view).and_then(|r| r.votes.get(&(vote.kind, index))) == Some(&vote) {
            return;
        }
        if !self.verifier.vote(&self.cfg.domain, &vote, index) {
            return;
        }
        self.add_vote(vote, index);
    }

    /// Counts a verified vote of validator `index`; conflicting votes become evidence (E1).
    pub(super) fn add_vote(&mut self, vote: Vote, index: usize) {
        let (view, kind, block_hash) = (vote.view, vote.kind, vote.block_hash);
        let final_view = view < self.finalized.view;
        let round = if final_view { self.rounds.get_mut(&view) } else { self.round_entry(view, false) };
        let Some(round) = round else { return };
        if let Some(existing) = round.votes.get(&(kind, index)) {
            if existing.conflicts_with(&vote) {
                let first = existing.clone();
                self.record_evidence(first, vote);
            }
            return;
        }
        let other = match kind {
            VoteKind::Nullify => round.votes.get(&(VoteKind::Finalize, index)),
            VoteKind::Finalize => round.votes.get(&(VoteKind::Nullify, index)),
            VoteKind::Notarize => None,
        };
        let conflict = other.filter(|o| o.conflicts_with(&vote)).cloned();
        round.votes.insert((kind, index), vote.clone());
        if let Some(first) = conflict {
            self.record_evidence(first, vote);
        }
        if !final_view {
            self.check_quorum(view, kind, block_hash);
        }
    }

    fn check_quorum(&mut self, view: u64, kind: VoteKind, block_hash: Option<Hash>) {
        let quorum = self.quorum();
        let Some(round) = self.rounds.get(&view) else { return };
        if round.certificate(kind).is_some() {
            return;
        }
        let voters = round.voters(kind, block_hash);
        if voters.len() < quorum {
            return;
        }
        let cert = Certificate::from_votes(&self.cfg.validators, self.cfg.domain.epoch, kind, view, block_hash, voters);
        self.on_certificate(cert, Source::Formed);
    }

    /// E1: keeps and emits the first evidence against a validator in a view.
    fn record_evidence(&mut self, a: Vote, b: Vote) {
        if !self.evidence_seen.insert((a.signer, a.view)) {
            return;
        }
        if self.evidence.len() >= EVIDENCE_KEPT_MAX {
            self.evidence.remove(0);
        }
        let e = Evidence { a, b };
        self.evidence.push(e.clone());
        self.out.push(Effect::Evidence(e));
    }

    /// A certificate: checked unless trusted, stored once per kind and view, acted on.
    pub(super) fn on_certificate(&mut self, cert: Certificate, source: Source) {
        let view = cert.view;
        if view < self.finalized.view {
            return;
        }
        if self.rounds.get(&view).and_then(|r| r.certificate(cert.kind)).is_some() {
            return;
        }
        if source == Source::Network && !self.certificate_valid(&cert) {
            return;
        }
        let signers: Vec<_> = cert.signer_indices().into_iter().map(|i| self.cfg.validators.get(i).copied()).collect();
        let Some(round) = self.round_entry(view, true) else { return };
        if !round.set_certificate(cert.clone()) {
            return;
        }
        // The certificate's signatures are verified votes: keeping them makes the same votes,
        // when they arrive on their own, duplicates that need no second check.
        for ((i, signer), signature) in cert.signer_indices().into_iter().zip(signers).zip(&cert.signatures) {
            if let Some(signer) = signer {
                let vote = Vote {
                    epoch: cert.epoch,
                    kind: cert.kind,
                    view,
                    block_hash: cert.block_hash,
                    signer,
                    signature: *signature,
                };
                round.votes.entry((cert.kind, i)).or_insert(vote);
            }
        }
        if source == Source::Formed {
            self.out.push(Effect::Broadcast(Message::Certificate(cert.clone())));
        }
        match cert.kind {
            VoteKind::Notarize => self.on_notarization(cert),
            VoteKind::Nullify => self.enter_view(view.saturating_add(1), true),
            VoteKind::Finalize => self.on_finalization(cert),
        }
    }

    /// F1 and A1 for a notarization.
    fn on_notarization(&mut self, cert: Certificate) {
        let view = cert.view;
        if let Some(hash) = cert.block_hash {
            self.learn_certified(hash);
        }
        self.out.push(Effect::Notarized { certificate: cert.clone() });
        if view >= self.view {
            self.sign_finalize(view, cert.block_hash);
        }
        self.enter_view(view.saturating_add(1), false);
    }

    /// F1: finalize unless we nullified the view (the signer refuses that too).
    fn sign_finalize(&mut self, view: u64, block_hash: Option<Hash>) {
        let (Some(signer), Some(me)) = (&mut self.signer, self.me) else { return };
        if signer.signed(VoteKind::Nullify, view).is_some() {
            return;
        }
        if let Some(vote) = signer.sign(&self.cfg.domain, VoteKind::Finalize, view, block_hash) {
            self.out.push(Effect::Broadcast(Message::Vote(vote.clone())));
            self.add_vote(vote, me);
        }
    }

    fn on_finalization(&mut self, cert: Certificate) {
        let view = cert.view;
        let hash = cert.block_hash;
        self.enter_view(view.saturating_add(1), false);
        if view > self.finalized.view && self.pending_final.as_ref().is_none_or(|p| p.view < view) {
            self.pending_final = Some(cert);
        }
        if let Some(hash) = hash {
            self.learn_certified(hash);
        }
        self.try_finalize_pending();
    }

    /// A certified block's header was checked by honest validators, so its parent's height is
    /// its own minus one: record that if the parent's header is unknown here.
    pub(super) fn learn_certified(&mut self, hash: Hash) {
        let Some(meta) = self.blocks.get(&hash).copied() else { return };
        let Some((parent, parent_view)) = meta.parent else { return };
        if parent_view < self.finalized.view || self.blocks.contains_key(&parent) {
            return;
        }
        if let Some(height) = meta.height.checked_sub(1) {
            let derived = super::BlockMeta { view: parent_view, height, timestamp_ms: None, parent: None };
            self.blocks.insert(parent, derived);
        }
    }
}
