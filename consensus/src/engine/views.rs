//! Views and time: entering a view (A1), timeouts with capped backoff and rebroadcast (T1),
//! nullifying (N2), finalizing (F1's commit side) and pruning (B1).

use super::{Effect, Engine, Message, Tip, SKIPPED_NULLIFICATIONS_SENT_MAX};
use crate::vote::VoteKind;

impl Engine {
    /// T1: the backoff part of a view's timeout.
    pub(super) fn timeout_ms(&self) -> u64 {
        let factor = 1u64 << self.failed_views.min(32);
        self.cfg.timeout_base_ms.saturating_mul(factor).min(self.cfg.timeout_max_ms).max(1)
    }

    /// A1: moves to `view` if it is ahead of ours. `failed` says we left by nullification.
    pub(super) fn enter_view(&mut self, view: u64, failed: bool) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.failed_views = if failed { self.failed_views.saturating_add(1) } else { 0 };
        if let Some(signer) = &mut self.signer {
            signer.advance(view);
        }
        self.start_view_timers();
    }

    pub(super) fn start_view_timers(&mut self) {
        let timeout = self.cfg.block_time_ms.saturating_add(self.timeout_ms());
        self.timeout_at_ms = if self.idle { u64::MAX } else { self.now_ms.saturating_add(timeout) };
        self.rebroadcast_at_ms = self.timeout_at_ms;
        self.propose_wait_at_ms = None;
    }

    /// D1: our proposal for `view` was not built because nothing waits: wait, without timers.
    pub(super) fn on_idle(&mut self, view: u64) {
        if !self.cfg.on_demand || view != self.view || self.signer.as_ref().is_some_and(|s| s.signed_any(view)) {
            return;
        }
        if let Some(round) = self.rounds.get_mut(&view) {
            round.requested_parent = None;
        }
        self.idle = true;
        self.start_view_timers();
    }

    /// D1: work waits again: the view starts its timers now and the leader proposes.
    pub(super) fn on_work(&mut self) {
        if self.idle {
            self.idle = false;
            self.start_view_timers();
        }
    }

    /// T1: a timer fired. Only the current view's timers matter.
    pub(super) fn on_timer(&mut self, view: u64) {
        if view != self.view {
            return;
        }
        if self.armed.is_some_and(|(v, at)| v == view && self.now_ms >= at) {
            self.armed = None;
        }
        let Some(signer) = &self.signer else { return };
        let nullified = signer.signed(VoteKind::Nullify, view).is_some();
        if !nullified && self.now_ms >= self.timeout_at_ms {
            self.nullify(view);
            self.rebroadcast_at_ms = self.now_ms.saturating_add(self.timeout_ms());
        } else if nullified && self.now_ms >= self.rebroadcast_at_ms {
            self.rebroadcast();
            self.rebroadcast_at_ms = self.now_ms.saturating_add(self.timeout_ms());
        }
    }

    /// Sets one timer for the current view at its next deadline: the leader's proposal time
    /// (P2), the timeout, or the next rebroadcast (T1). One at a time, so a node that keeps
    /// only the latest timer per view loses nothing.
    pub(super) fn arm_timer(&mut self) {
        let Some(signer) = &self.signer else { return };
        let view = self.view;
        let mut at =
            if signer.signed(VoteKind::Nullify, view).is_some() { self.rebroadcast_at_ms } else { self.timeout_at_ms };
        if let Some(p) = self.propose_wait_at_ms {
            at = at.min(p);
        }
        if at == u64::MAX {
            return;
        }
        if self.armed != Some((view, at)) {
            self.armed = Some((view, at));
            self.out.push(Effect::SetTimer { view, at_ms: at });
        }
    }

    /// N2: nullify `view` if it is our current view and we have not yet.
    pub(super) fn nullify(&mut self, view: u64) {
        if view != self.view {
            return;
        }
        let (Some(signer), Some(me)) = (&mut self.signer, self.me) else { return };
        if signer.signed(VoteKind::Nullify, view).is_some() {
            return;
        }
        if let Some(vote) = signer.sign(&self.cfg.domain, VoteKind::Nullify, view, None) {
            self.out.push(Effect::Broadcast(Message::Vote(vote.clone())));
            self.add_vote(vote, me);
        }
    }

    /// T1: resend our votes of this view and the certificates P1 needs for it: the highest
    /// notarization and every nullification above it (bounded), and the finalization. A node
    /// that jumped views on one certificate may lack the ones in between; without them it can
    /// neither propose nor notarize, so every node that holds them keeps offering them.
    fn rebroadcast(&mut self) {
        let view = self.view;
        if let Some(signer) = &self.signer {
            for vote in signer.votes().iter().filter(|v| v.view == view) {
                self.out.push(Effect::Broadcast(Message::Vote(vote.clone())));
            }
        }
        let mut certs = Vec::new();
        for (_, r) in self.rounds.range(self.finalized.view..view).rev() {
            certs.extend(r.nullification.iter().chain(&r.finalization).cloned());
            if let Some(n) = &r.notarization {
                certs.push(n.clone());
                break;
            }
            if certs.len() >= SKIPPED_NULLIFICATIONS_SENT_MAX {
                break;
            }
        }
        let fin = self.rounds.get(&self.finalized.view).and_then(|r| r.finalization.as_ref());
        if let Some(cert) = fin.filter(|c| !certs.contains(c)).cloned() {
            certs.push(cert);
        }
        for cert in certs.into_iter().rev() {
            self.out.push(Effect::Broadcast(Message::Certificate(cert)));
        }
    }

    /// Emits [`Effect::Finalized`] for the pending finalization once its block's height is known.
    pub(super) fn try_finalize_pending(&mut self) {
        let Some(cert) = &self.pending_final else { return };
        let Some(hash) = cert.block_hash else {
            self.pending_final = None;
            return;
        };
        let Some(meta) = self.blocks.get(&hash).copied() else { return };
        let Some(cert) = self.pending_final.take() else { return };
        if meta.height <= self.finalized.height || cert.view <= self.finalized.view {
            // More than f faulty validators could produce this; never go backwards.
            return;
        }
        self.finalized = Tip {
            height: meta.height,
            view: cert.view,
            hash,
            timestamp_ms: meta.timestamp_ms.unwrap_or(self.finalized.timestamp_ms),
        };
        self.out.push(Effect::Finalized { block_hash: hash, height: meta.height, certificate: cert });
        self.prune();
    }

    /// B1: forget everything below the finalized view but the evidence tail.
    fn prune(&mut self) {
        let low = self.evidence_floor();
        self.rounds = self.rounds.split_off(&low);
        self.blocks.retain(|_, m| m.view >= low);
        self.evidence_seen.retain(|(_, v)| *v >= low);
    }
}
