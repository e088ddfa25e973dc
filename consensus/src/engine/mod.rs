//! The consensus engine: a sans-IO state machine for Simplex-style BFT proof of authority.
//! `step(input, now_ms) -> Vec<Effect>`; the node executes the effects (persist, broadcast,
//! timers, build, verify, commit). No clock reads, no randomness, no IO: one input sequence
//! gives one effect sequence.
//!
//! # The protocol
//!
//! n validators, f = floor((n - 1) / 3), quorum q = n - f. View v of epoch e has one leader,
//! `validators[(v + e) mod n]`. Votes are `Notarize(v, block)`, `Nullify(v)` and `Finalize(v, block)`
//! ([`crate::vote`]); q votes of one kind for one (view, block) make a certificate. Genesis is
//! height 0, view 0; the first view is 1. The rules, cited in the code by their tags:
//!
//! - **P1 (parent)**: the parent of a proposal for view v is the block notarized in some view
//!   u < v (or the finalized block, or genesis) such that every view strictly between u and v has
//!   a nullification. The leader takes the highest such u.
//! - **P2 (pacing)**: a leader proposes no earlier than `parent.timestamp_ms + block_time_ms`.
//!   Clocks pace proposals; they never decide safety.
//! - **V1 (validity)**: a proposal is valid when `header.view == v`, `header.proposer ==
//!   leader(v)`, the leader's notarize vote for `block.hash()` verifies, the chain id and
//!   validator set hash match, the block's shape checks out, `parent_cert` is a verifying
//!   notarization of `parent_hash` in a view below v and not below the finalized view (or is
//!   `None` with genesis as parent), P1's nullifications are all known (otherwise we wait),
//!   `height == parent.height + 1` and `parent.timestamp_ms <= timestamp_ms <= now +
//!   future_timestamp_ms_max`. Then the application checks it ([`Effect::Verify`]).
//! - **N1 (notarize)**: in our current view v we notarize the first valid proposal once the
//!   application said it is valid, unless we nullified v.
//! - **N2 (nullify)**: we nullify our current view on its timeout, on an invalid proposal and on
//!   an equivocating leader.
//! - **F1 (finalize)**: on a notarization for view v >= our view we sign `Finalize(v)`, unless
//!   we nullified v. A finalization makes the block and all its ancestors final.
//! - **A1 (advance)**: a notarization, nullification or finalization for view u >= our view
//!   moves us to u + 1. This is also the catch-up rule: certificates prove themselves, so one
//!   for a later view moves us there. There is no other round-change protocol.
//! - **T1 (timeouts)**: a view times out `block_time_ms + min(timeout_base_ms * 2^k,
//!   timeout_max_ms)` after we enter it, where k counts the consecutive views we left by
//!   nullification. While stuck after nullifying, we rebroadcast every timeout our votes and
//!   the certificates P1 needs for our view (the highest notarization, the nullifications above
//!   it, the finalization): a node that jumped views on one certificate lacks the ones in
//!   between and can neither propose nor notarize until someone resends them.
//! - **D1 (on demand)**: with [`Config::on_demand`] (a one-validator chain: `taksa dev
//!   --instant`), a leader whose application has nothing to propose answers [`Input::Idle`]
//!   instead of a block; the view then waits, proposing nothing and arming no timer, until
//!   [`Input::Work`]. Other validators would time an idle leader out, so a chain of several
//!   keeps the pacing of P2.
//! - **S1 (safety record)**: never sign two conflicting votes in one view (two notarizes or two
//!   finalizes for different blocks, or nullify and finalize), also across restarts: the
//!   [`SafetyRecord`] with our current view and our votes in it is persisted ([`Effect::Persist`]
//!   comes first in a step) before any vote of that step is sent, and after a restart nothing
//!   below the recorded view is signed. The record also keeps the height and timestamp of the
//!   blocks our votes name and of the highest notarized block, so that after every validator
//!   restarts, the honest voters of a notarized block can still propose on it.
//! - **E1 (evidence)**: two conflicting votes of one validator in one view are kept (bounded)
//!   and emitted once.
//! - **R1 (epochs and re-proposal)**: one engine decides one epoch ([`crate::Epochs`]) with
//!   that epoch's set; every vote signs the epoch, and views start at 1 on the epoch's base
//!   (genesis, or the last epoch's final boundary, which stands at view 0 as genesis does, so
//!   an epoch's first block carries no `parent_cert`). No proposal above the epoch's last height
//!   is valid. When P1 gives the epoch's last block B as parent, the leader re-proposes B itself
//!   (same hash; the header keeps its view): a proposal whose leader vote names a later view.
//!   It is valid when B is notarized in a view u below v, u not below the finalized view, with
//!   every view between nullified (P1 with B as its own parent); B was checked by the honest
//!   voters of its notarization, so the application is not asked again. Notarize and finalize
//!   votes of (v, B) then finalize B even when its own view was nullified after notarizing,
//!   which otherwise would leave the epoch unable to end. Once B is final the engine proposes
//!   and votes no more; the node starts the next epoch's engine on B.
//! - **B1 (bounds)**: votes and proposals more than [`VIEWS_AHEAD_MAX`] views ahead are
//!   ignored; everything more than [`EVIDENCE_TAIL_VIEWS`] below the finalized view is pruned
//!   (the views below the finalized one serve only E1); at most [`ROUNDS_KEPT_MAX`] views are
//!   kept.
//!
//! Safety in one sentence: a finalization for block B in view v means q validators did not
//! nullify v, so no quorum can nullify v, so every later proposal's parent is at view >= v, and
//! the one notarized block of view v is B; by induction every later notarized block extends B.
//!
//! Headers are trusted only once certified: every header the engine learns is keyed by its hash,
//! and a certificate for that hash means honest validators checked it. Heights and timestamps
//! for [`Effect::Finalized`] come from such headers (or from a certified child's height minus
//! one).

mod message;
mod proposal;
mod record;
mod round;
mod verify;
mod views;
mod votes;

use std::collections::{BTreeMap, BTreeSet};

pub use message::Message;
pub use record::{BlockFacts, CertifiedBlock, SafetyRecord, RECORD_NULLIFICATIONS_MAX};

use crate::crypto::{Hash, Keypair};
use crate::vote::Domain;
use crate::{Address, Block, Certificate, Epochs, Evidence, ValidatorSet};
use record::Signer;
use round::{BlockMeta, Round};
use verify::Verifier;

/// Votes and proposals for views further than this ahead of ours are ignored (B1).
pub const VIEWS_AHEAD_MAX: u64 = 64;
/// The most views the engine keeps state for (B1).
pub const ROUNDS_KEPT_MAX: usize = 16_384;
/// The most evidence items kept; older ones are dropped first (E1).
pub const EVIDENCE_KEPT_MAX: usize = 1024;
/// Views below the finalized one kept for evidence only (E1): a leader's second proposal or a
/// double vote may arrive after the view was finalized here.
pub const EVIDENCE_TAIL_VIEWS: u64 = 32;
/// The most nullification certificates a leader sends along with its proposal (P1).
pub const SKIPPED_NULLIFICATIONS_SENT_MAX: usize = 32;

/// The engine's parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// The network identity every vote signs over.
    pub domain: Domain,
    /// The validators of this engine's epoch (`domain.epoch`), in leader order.
    pub validators: ValidatorSet,
    /// The chain's epochs: this engine decides heights of `domain.epoch` only (rule R1).
    pub epochs: Epochs,
    /// Our key; `None` (or a key outside the set) makes a full node that only follows
    /// certificates and never votes or proposes.
    pub key: Option<Keypair>,
    /// The target block time: a leader proposes no earlier than `parent.timestamp_ms + block_time_ms`.
    pub block_time_ms: u64,
    /// The view timeout before nullifying; doubles per consecutive failed view (T1)...
    pub timeout_base_ms: u64,
    /// ...capped here.
    pub timeout_max_ms: u64,
    /// Proposals whose timestamp is further than this ahead of now are invalid.
    pub future_timestamp_ms_max: u64,
    /// D1: the application may answer [`Effect::Propose`] with [`Input::Idle`].
    pub on_demand: bool,
}

/// The finalized tip the node restarts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Its height (0 for genesis).
    pub height: u64,
    /// The view it was proposed in (0 for genesis).
    pub view: u64,
    /// Its hash.
    pub hash: Hash,
    /// Its timestamp, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// What the engine is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The first step after [`Engine::new`].
    Start,
    /// A timer set by [`Effect::SetTimer`] fired.
    Timer {
        /// The view it was set for.
        view: u64,
    },
    /// A message from the network (untrusted).
    Message(Message),
    /// Our own proposal, answering [`Effect::Propose`]; already executed and valid.
    Built(Block),
    /// D1: the answer to [`Effect::Propose`] for `view` when nothing waits to be proposed
    /// (ignored unless [`Config::on_demand`]).
    Idle {
        /// The view of the proposal not built.
        view: u64,
    },
    /// D1: something waits to be proposed now (ignored unless idle).
    Work,
    /// The application's verdict on a block of [`Effect::Verify`].
    Verified {
        /// The block.
        block_hash: Hash,
        /// Whether it executes on its parent's state and its header matches.
        valid: bool,
    },
}

/// What the node must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Build a child of `parent` with `header.view = view`, `proposer` = us and `parent_cert`,
    /// then answer [`Input::Built`]. When `parent_height` is the epoch's last height, answer
    /// with the parent block itself instead: a re-proposal (R1).
    Propose {
        /// The view.
        view: u64,
        /// The parent block.
        parent: Hash,
        /// The parent's height.
        parent_height: u64,
        /// The parent's notarization (`None` when the parent is genesis).
        parent_cert: Option<Certificate>,
    },
    /// Execute `block` on its parent's state and answer [`Input::Verified`]. The parent is
    /// certified; if the node lacks it, it fetches it first. The application checks what the
    /// engine could not: `height == parent.height + 1`, `timestamp_ms >= parent.timestamp_ms`
    /// and the state root.
    Verify {
        /// The block.
        block: Block,
    },
    /// Write this record durably before executing any later effect of this step.
    Persist(SafetyRecord),
    /// Send to every validator.
    Broadcast(Message),
    /// Deliver `Input::Timer { view }` at `at_ms` (timers of views we left may be dropped).
    SetTimer {
        /// The view.
        view: u64,
        /// When, Unix milliseconds.
        at_ms: u64,
    },
    /// A block was notarized (informational).
    Notarized {
        /// The notarization.
        certificate: Certificate,
    },
    /// Commit this block and its uncommitted ancestors, in height order. Emitted in increasing
    /// height order, each height at most once.
    Finalized {
        /// The block.
        block_hash: Hash,
        /// Its height.
        height: u64,
        /// Its finalization certificate.
        certificate: Certificate,
    },
    /// A validator signed two conflicting votes in one view.
    Evidence(Evidence),
}

/// A snapshot for RPC and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Our current view.
    pub view: u64,
    /// Its leader.
    pub leader: Address,
    /// The finalized height.
    pub finalized_height: u64,
    /// The view of the finalized block.
    pub finalized_view: u64,
    /// The finalized block's hash.
    pub finalized_hash: Hash,
    /// The highest view with a notarization we hold (the finalized view if none is higher).
    pub notarized_view: u64,
    /// Whether we vote (our key is in the validator set).
    pub is_validator: bool,
    /// Consecutive views left by nullification (the timeout exponent of T1).
    pub failed_views: u32,
    /// How many evidence items are kept.
    pub evidence_count: usize,
}

/// The Simplex-style consensus state machine. See the module docs for the rules.
pub struct Engine {
    cfg: Config,
    validator_set_hash: Hash,
    verifier: Verifier,
    signer: Option<Signer>,
    me: Option<usize>,
    started: bool,
    now_ms: u64,
    view: u64,
    failed_views: u32,
    timeout_at_ms: u64,
    rebroadcast_at_ms: u64,
    propose_wait_at_ms: Option<u64>,
    /// D1: the application said nothing waits; no proposal and no timer until [`Input::Work`].
    idle: bool,
    armed: Option<(u64, u64)>,
    finalized: Tip,
    pending_final: Option<Certificate>,
    rounds: BTreeMap<u64, Round>,
    blocks: BTreeMap<Hash, BlockMeta>,
    evidence: Vec<Evidence>,
    evidence_seen: BTreeSet<(Address, u64)>,
    out: Vec<Effect>,
}

impl Engine {
    /// An engine resuming from the finalized `tip` and the last persisted `record` (`None` on a
    /// fresh start). It does nothing until [`Input::Start`].
    pub fn new(config: Config, tip: Tip, record: Option<SafetyRecord>) -> Engine {
        let record = record.filter(|r| r.epoch == config.domain.epoch);
        let me = config.key.as_ref().and_then(|k| config.validators.index_of(&Address(k.public())));
        let view = record.as_ref().map_or(0, |r| r.view).max(tip.view.saturating_add(1));
        let signer = match (&config.key, me) {
            (Some(key), Some(_)) => {
                Some(Signer::new(key.clone(), view, record.as_ref().map(|r| r.votes.clone()).unwrap_or_default()))
            }
            _ => None,
        };
        let mut engine = Engine {
            validator_set_hash: config.validators.hash(),
            verifier: Verifier::new(&config.validators),
            cfg: config,
            signer,
            me,
            started: false,
            now_ms: 0,
            view,
            failed_views: 0,
            timeout_at_ms: 0,
            rebroadcast_at_ms: 0,
            propose_wait_at_ms: None,
            idle: false,
            armed: None,
            finalized: tip,
            pending_final: None,
            rounds: BTreeMap::new(),
            blocks: BTreeMap::new(),
            evidence: Vec::new(),
            evidence_seen: BTreeSet::new(),
            out: Vec::new(),
        };
        engine.blocks.insert(
            tip.hash,
            BlockMeta { view: tip.view, height: tip.height, timestamp_ms: Some(tip.timestamp_ms), parent: None },
        );
        if let Some(record) = record {
            engine.restore(record);
        }
        engine
    }

    /// Runs one input; returns the effects to execute in order.
    pub fn step(&mut self, input: Input, now_ms: u64) -> Vec<Effect> {
        // Time never runs backwards inside the engine, whatever the wall clock does.
        self.now_ms = self.now_ms.max(now_ms);
        if !self.started {
            self.start();
        }
        match input {
            Input::Start => {}
            Input::Timer { view } => self.on_timer(view),
            Input::Message(Message::Proposal { block, leader_vote }) => self.on_proposal(block, leader_vote),
            Input::Message(Message::Vote(vote)) => self.on_vote_message(vote),
            Input::Message(Message::Certificate(cert)) => self.on_certificate(cert, Source::Network),
            Input::Built(block) => self.on_built(block),
            Input::Verified { block_hash, valid } => self.on_verified(block_hash, valid),
            Input::Idle { view } => self.on_idle(view),
            Input::Work => self.on_work(),
        }
        self.refresh();
        self.arm_timer();
        let mut out = std::mem::take(&mut self.out);
        if self.signer.as_mut().is_some_and(Signer::take_dirty) {
            // S1: first, so nothing this step signed leaves the node before it is durable.
            out.insert(0, Effect::Persist(self.record()));
        }
        out
    }

    /// A snapshot of where consensus stands.
    pub fn status(&self) -> Status {
        let notarized_view = self
            .rounds
            .iter()
            .rev()
            .find(|(_, r)| r.notarization.is_some())
            .map_or(self.finalized.view, |(v, _)| *v)
            .max(self.finalized.view);
        Status {
            view: self.view,
            leader: self.leader(self.view),
            finalized_height: self.finalized.height,
            finalized_view: self.finalized.view,
            finalized_hash: self.finalized.hash,
            notarized_view,
            is_validator: self.signer.is_some(),
            failed_views: self.failed_views,
            evidence_count: self.evidence.len(),
        }
    }

    /// The evidence kept (at most [`EVIDENCE_KEPT_MAX`], oldest first).
    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    /// The first step: arm the view's timers, resend what a crash may have swallowed, and
    /// finalize what the record knows beyond the tip.
    fn start(&mut self) {
        self.started = true;
        self.start_view_timers();
        if let Some(signer) = &self.signer {
            let votes: Vec<_> = signer.votes().to_vec();
            for vote in votes {
                if let Some(i) = self.me {
                    self.add_vote(vote.clone(), i);
                }
                self.out.push(Effect::Broadcast(Message::Vote(vote)));
            }
        }
        self.try_finalize_pending();
    }

    /// Re-checks whatever an input may have unblocked, until the view settles.
    fn refresh(&mut self) {
        // Each pass that changes the view needed a new certificate; the bound only guards
        // against a bug turning this into a hot loop.
        for _ in 0..64 {
            let view = self.view;
            self.try_finalize_pending();
            if self.rounds.get(&view).is_some_and(|r| r.equivocated || r.verify == round::Verify::Invalid) {
                self.nullify(view);
            }
            self.try_verify();
            self.try_propose();
            if self.view == view {
                break;
            }
        }
    }

    /// The lowest view whose votes are still looked at (for evidence only below the finalized view).
    fn evidence_floor(&self) -> u64 {
        self.finalized.view.saturating_sub(EVIDENCE_TAIL_VIEWS)
    }

    fn quorum(&self) -> usize {
        self.cfg.validators.quorum()
    }

    /// The leader of `view` in this engine's epoch.
    fn leader(&self, view: u64) -> Address {
        self.cfg.validators.leader_in(self.cfg.domain.epoch, view)
    }

    /// The last height of this engine's epoch (R1).
    fn last_height(&self) -> u64 {
        self.cfg.epochs.last_height(self.cfg.domain.epoch)
    }

    /// R1: the epoch's last block is final here; this engine has nothing left to decide.
    pub fn epoch_done(&self) -> bool {
        self.finalized.height >= self.last_height()
    }

    /// A certificate from outside: checked, except for signatures identical to votes we hold.
    fn certificate_valid(&self, cert: &Certificate) -> bool {
        let round = self.rounds.get(&cert.view);
        let known = |i: usize, sig: &crate::Signature| {
            round
                .and_then(|r| r.votes.get(&(cert.kind, i)))
                .is_some_and(|v| v.signature == *sig && v.block_hash == cert.block_hash)
        };
        self.verifier.certificate(&self.cfg.domain, self.quorum(), cert, known)
    }

    /// The round of `view`, created if it lies in the kept window (B1). `force` admits views
    /// far ahead, for certificates (which move us there).
    fn round_entry(&mut self, view: u64, force: bool) -> Option<&mut Round> {
        if view < self.finalized.view || (!force && view > self.view.saturating_add(VIEWS_AHEAD_MAX)) {
            return None;
        }
        if !self.rounds.contains_key(&view) && self.rounds.len() >= ROUNDS_KEPT_MAX {
            // No finalization for a very long time: drop the oldest view (the least likely to
            // matter) and the headers of views no longer kept, but not the finalized tip's.
            self.rounds.pop_first();
            let low = self.rounds.first_key_value().map_or(view, |(v, _)| *v);
            let fin = self.finalized.view;
            self.blocks.retain(|_, m| m.view >= low || m.view == fin);
        }
        Some(self.rounds.entry(view).or_insert_with(Round::new))
    }
}

/// Where a certificate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Built here from verified votes: trusted, and broadcast.
    Formed,
    /// Checked already (a proposal's `parent_cert`).
    Checked,
    /// From the network: verified before use.
    Network,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::tx_root;
    use crate::vote::VoteKind;
    use crate::{Header, Vote};

    const GENESIS: Hash = Hash([0xAA; 32]);
    const T0: u64 = 1_000_000;

    fn keys(n: u8) -> Vec<Keypair> {
        (0..n).map(|i| Keypair::from_seed(&[i.wrapping_add(1); 32])).collect()
    }

    fn config(keys: &[Keypair], me: Option<usize>) -> Config {
        Config {
            domain: Domain { chain_id: "taksa-test".into(), genesis_hash: GENESIS, epoch: 0 },
            validators: ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect()),
            epochs: Epochs::new(1_000_000),
            key: me.and_then(|i| keys.get(i).cloned()),
            block_time_ms: 200,
            timeout_base_ms: 1000,
            timeout_max_ms: 8000,
            future_timestamp_ms_max: 2000,
            on_demand: false,
        }
    }

    fn genesis() -> Tip {
        Tip { height: 0, view: 0, hash: GENESIS, timestamp_ms: T0 }
    }

    fn build(
        cfg: &Config,
        view: u64,
        parent: Hash,
        parent_height: u64,
        parent_cert: Option<Certificate>,
        ts: u64,
    ) -> Block {
        let header = Header {
            chain_id: cfg.domain.chain_id.clone(),
            height: parent_height + 1,
            view,
            parent_hash: parent,
            proposer: cfg.validators.leader(view),
            timestamp_ms: ts,
            tx_root: tx_root(&[]),
            evidence_root: crate::block::evidence_root(&[]),
            state_root: Hash([9; 32]),
            validator_set_hash: cfg.validators.hash(),
            parent_cert,
        };
        Block { header, evidence: Vec::new(), txs: Vec::new() }
    }

    fn proposal(cfg: &Config, keys: &[Keypair], block: &Block) -> Message {
        let leader = cfg.validators.leader(block.header.view);
        let key = keys.iter().find(|k| Address(k.public()) == leader).expect("leader key");
        let leader_vote = Vote::sign(&cfg.domain, key, VoteKind::Notarize, block.header.view, Some(block.hash()));
        Message::Proposal { block: block.clone(), leader_vote }
    }

    fn cert(cfg: &Config, keys: &[Keypair], kind: VoteKind, view: u64, hash: Option<Hash>) -> Certificate {
        let votes: Vec<Vote> = keys.iter().map(|k| Vote::sign(&cfg.domain, k, kind, view, hash)).collect();
        Certificate::from_votes(&cfg.validators, cfg.domain.epoch, kind, view, hash, &votes)
    }

    fn find_propose(fx: &[Effect]) -> Option<(u64, Hash, u64, Option<Certificate>)> {
        fx.iter().find_map(|e| match e {
            Effect::Propose { view, parent, parent_height, parent_cert } => {
                Some((*view, *parent, *parent_height, parent_cert.clone()))
            }
            _ => None,
        })
    }

    fn position(fx: &[Effect], f: impl Fn(&Effect) -> bool) -> Option<usize> {
        fx.iter().position(f)
    }

    fn persisted(fx: &[Effect]) -> Option<SafetyRecord> {
        fx.iter().find_map(|e| match e {
            Effect::Persist(r) => Some(r.clone()),
            _ => None,
        })
    }

    fn our_votes(fx: &[Effect], kind: VoteKind) -> Vec<Vote> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Broadcast(Message::Vote(v)) if v.kind == kind => Some(v.clone()),
                Effect::Broadcast(Message::Proposal { leader_vote, .. }) if kind == VoteKind::Notarize => {
                    Some(leader_vote.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Drives a single validator through `views` views; returns the engine, the last Built
    /// step's effects and the time.
    fn run_single(views: u64) -> (Engine, Config, Vec<Effect>, Vec<Block>) {
        let cfg = config(&keys(1), Some(0));
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        let mut now = T0 + 500;
        let mut fx = e.step(Input::Start, now);
        let mut built_fx = Vec::new();
        let mut blocks = Vec::new();
        for view in 1..=views {
            let (v, parent, parent_height, parent_cert) = find_propose(&fx).expect("a proposal request");
            assert_eq!((v, parent_height), (view, view - 1));
            assert_eq!(parent_cert.is_none(), view == 1, "only genesis children carry no parent cert");
            let block = build(&cfg, view, parent, parent_height, parent_cert, now);
            built_fx = e.step(Input::Built(block.clone()), now);
            let timer = built_fx.iter().find_map(|x| match x {
                Effect::SetTimer { view, at_ms } => Some((*view, *at_ms)),
                _ => None,
            });
            assert_eq!(timer, Some((view + 1, now + 200)), "next proposal one block time after the last");
            blocks.push(block);
            if view < views {
                now += 200;
                fx = e.step(Input::Timer { view: view + 1 }, now);
            }
        }
        (e, cfg, built_fx, blocks)
    }

    #[test]
    fn single_validator_finalizes_every_view() {
        let (e, _cfg, fx, blocks) = run_single(5);
        let last = blocks.last().expect("blocks");
        let persist = position(&fx, |x| matches!(x, Effect::Persist(_)));
        let broadcast = position(&fx, |x| matches!(x, Effect::Broadcast(Message::Proposal { .. })));
        let notarized = position(&fx, |x| matches!(x, Effect::Notarized { .. }));
        let finalized = position(&fx, |x| matches!(x, Effect::Finalized { height: 5, .. }));
        assert_eq!(persist, Some(0), "the record is written before anything else");
        assert!(broadcast.is_some() && notarized.is_some() && finalized.is_some(), "{fx:?}");
        assert!(broadcast < notarized && notarized < finalized);
        let st = e.status();
        assert_eq!((st.view, st.finalized_height, st.finalized_view, st.finalized_hash), (6, 5, 5, last.hash()));
        for (i, b) in blocks.iter().enumerate().skip(1) {
            assert_eq!(b.header.parent_hash, blocks[i - 1].hash());
        }
    }

    #[test]
    fn an_idle_on_demand_leader_waits_without_timers_until_work_comes() {
        let cfg = Config { on_demand: true, block_time_ms: 0, ..config(&keys(1), Some(0)) };
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        let now = T0 + 500;
        let fx = e.step(Input::Start, now);
        let (view, parent, parent_height, parent_cert) = find_propose(&fx).expect("asks at once");
        let fx = e.step(Input::Idle { view }, now);
        assert!(fx.is_empty(), "idle: no proposal, no timer, no vote: {fx:?}");
        // Long after any timeout: nothing fires, nothing is signed.
        let later = now + 60_000;
        assert!(e.step(Input::Timer { view }, later).is_empty());
        assert_eq!(e.status().failed_views, 0);
        let fx = e.step(Input::Work, later);
        assert_eq!(find_propose(&fx), Some((view, parent, parent_height, parent_cert.clone())), "{fx:?}");
        // Built at once; the next view asks again at once (block time 0), and goes idle again.
        let block = build(&cfg, view, parent, parent_height, parent_cert, later);
        let fx = e.step(Input::Built(block), later);
        assert!(fx.iter().any(|x| matches!(x, Effect::Finalized { height: 1, .. })), "{fx:?}");
        let (next, ..) = find_propose(&fx).expect("the next view asks at once");
        assert_eq!(next, view + 1);
        assert!(e.step(Input::Idle { view: next }, later).is_empty());
        assert!(e.step(Input::Work, later).iter().any(|x| matches!(x, Effect::Propose { .. })));
    }

    #[test]
    fn idle_is_ignored_unless_on_demand() {
        let cfg = config(&keys(1), Some(0));
        let mut e = Engine::new(cfg, genesis(), None);
        let now = T0 + 500;
        let fx = e.step(Input::Start, now);
        let (view, ..) = find_propose(&fx).expect("asks");
        e.step(Input::Idle { view }, now);
        let fx = e.step(Input::Timer { view }, now + 60_000);
        assert!(our_votes(&fx, VoteKind::Nullify).len() == 1, "the view still times out: {fx:?}");
    }

    #[test]
    fn single_validator_restart_proposes_on_its_last_finalized_block() {
        let (_e, cfg, fx, blocks) = run_single(3);
        let record = persisted(&fx).expect("a record");
        assert_eq!(record.view, 4);
        let b3 = &blocks[2];
        let tip = Tip { height: 3, view: 3, hash: b3.hash(), timestamp_ms: b3.header.timestamp_ms };
        let mut e = Engine::new(cfg.clone(), tip, Some(record.clone()));
        let fx = e.step(Input::Start, b3.header.timestamp_ms + 1000);
        let (view, parent, height, parent_cert) = find_propose(&fx).expect("proposes after restart");
        assert_eq!((view, parent, height), (4, b3.hash(), 3));
        assert!(parent_cert.is_some_and(|c| c.view == 3 && c.block_hash == Some(b3.hash())));

        // The node crashed after persisting but before committing block 3: it is finalized again.
        let b2 = &blocks[1];
        let behind = Tip { height: 2, view: 2, hash: b2.hash(), timestamp_ms: b2.header.timestamp_ms };
        let mut e = Engine::new(cfg, behind, Some(record));
        let fx = e.step(Input::Start, b3.header.timestamp_ms + 1000);
        assert!(fx
            .iter()
            .any(|x| matches!(x, Effect::Finalized { height: 3, block_hash, .. } if *block_hash == b3.hash())));
    }

    #[test]
    fn restart_does_not_resign_a_different_block_in_the_same_view() {
        let ks = keys(4);
        let cfg = config(&ks, Some(1)); // validator 1 leads view 1
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        let now = T0 + 500;
        let fx = e.step(Input::Start, now);
        let (_, parent, ph, pc) = find_propose(&fx).expect("leader of view 1 proposes");
        let a = build(&cfg, 1, parent, ph, pc.clone(), now);
        let fx = e.step(Input::Built(a.clone()), now);
        let record = persisted(&fx).expect("the vote is persisted");
        assert_eq!(position(&fx, |x| matches!(x, Effect::Persist(_))), Some(0));
        assert_eq!(record.view, 1);
        assert_eq!(record.votes.len(), 1);

        // Crash and restart from the record: no second proposal, no vote for another block.
        let mut e = Engine::new(cfg.clone(), genesis(), Some(record));
        let fx = e.step(Input::Start, now + 10);
        assert!(find_propose(&fx).is_none(), "must not ask for a second block in view 1");
        let b = build(&cfg, 1, parent, ph, pc, now + 10);
        let fx = e.step(Input::Built(b.clone()), now + 10);
        assert!(our_votes(&fx, VoteKind::Notarize).iter().all(|v| v.block_hash != Some(b.hash())), "{fx:?}");
        // The restored vote still counts: two more notarizes for A make a notarization.
        let mut fx = Vec::new();
        for k in [&ks[0], &ks[2]] {
            let v = Vote::sign(&cfg.domain, k, VoteKind::Notarize, 1, Some(a.hash()));
            fx.extend(e.step(Input::Message(Message::Vote(v)), now + 20));
        }
        assert!(fx
            .iter()
            .any(|x| matches!(x, Effect::Notarized { certificate } if certificate.block_hash == Some(a.hash()))));
        assert_eq!(our_votes(&fx, VoteKind::Finalize).len(), 1);
    }

    #[test]
    fn restarted_voter_can_build_on_the_block_it_voted_for() {
        let ks = keys(4);
        let cfg = config(&ks, Some(2)); // validator 2 leads view 2
        let b1 = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        e.step(Input::Start, T0 + 100);
        e.step(Input::Message(proposal(&cfg, &ks, &b1)), T0 + 100);
        let fx = e.step(Input::Verified { block_hash: b1.hash(), valid: true }, T0 + 110);
        let record = persisted(&fx).expect("the notarize vote is persisted");
        assert_eq!(record.voted_blocks.len(), 1);

        // Crash; nobody resends the proposal, only the notarization arrives.
        let mut e = Engine::new(cfg.clone(), genesis(), Some(record));
        e.step(Input::Start, T0 + 2000);
        let n1 = cert(&cfg, &ks[..3], VoteKind::Notarize, 1, Some(b1.hash()));
        let fx = e.step(Input::Message(Message::Certificate(n1)), T0 + 2000);
        let (view, parent, parent_height, _) = find_propose(&fx).expect("proposes on the voted block");
        assert_eq!((view, parent, parent_height), (2, b1.hash(), 1));
    }

    #[test]
    fn full_node_follows_certificates_in_either_order() {
        let ks = keys(4);
        let cfg = config(&ks, None);
        let b1 = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        let fin = cert(&cfg, &ks, VoteKind::Finalize, 1, Some(b1.hash()));
        for proposal_first in [true, false] {
            let mut e = Engine::new(cfg.clone(), genesis(), None);
            let mut fx = e.step(Input::Start, T0 + 200);
            let msgs = [proposal(&cfg, &ks, &b1), Message::Certificate(fin.clone())];
            let order: Vec<&Message> = if proposal_first { msgs.iter().collect() } else { msgs.iter().rev().collect() };
            for m in order {
                fx.extend(e.step(Input::Message(m.clone()), T0 + 200));
            }
            let finals: Vec<_> = fx.iter().filter(|x| matches!(x, Effect::Finalized { .. })).collect();
            assert_eq!(finals.len(), 1);
            assert!(matches!(finals[0], Effect::Finalized { height: 1, block_hash, .. } if *block_hash == b1.hash()));
            assert!(!fx.iter().any(|x| matches!(x, Effect::Broadcast(_) | Effect::Persist(_) | Effect::Verify { .. })));
            assert_eq!(e.status().view, 2);
        }
    }

    #[test]
    fn equivocating_leader_is_reported_once_and_the_view_nullified() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        e.step(Input::Start, T0 + 100);
        let a = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        let b = build(&cfg, 1, GENESIS, 0, None, T0 + 101);
        let fx = e.step(Input::Message(proposal(&cfg, &ks, &a)), T0 + 100);
        assert!(fx.iter().any(|x| matches!(x, Effect::Verify { block } if block.hash() == a.hash())));
        let fx = e.step(Input::Message(proposal(&cfg, &ks, &b)), T0 + 110);
        assert_eq!(fx.iter().filter(|x| matches!(x, Effect::Evidence(_))).count(), 1);
        assert_eq!(our_votes(&fx, VoteKind::Nullify).len(), 1);
        let fx = e.step(Input::Message(proposal(&cfg, &ks, &b)), T0 + 120);
        assert!(!fx.iter().any(|x| matches!(x, Effect::Evidence(_))), "evidence is emitted once");
        // The verdict on A arrives after the nullify: no notarize follows.
        let fx = e.step(Input::Verified { block_hash: a.hash(), valid: true }, T0 + 130);
        assert!(our_votes(&fx, VoteKind::Notarize).is_empty());
        assert_eq!(e.evidence().len(), 1);
        assert!(e.evidence()[0].verify(&cfg.domain, &cfg.validators).is_ok());
    }

    #[test]
    fn invalid_proposals_are_nullified_without_asking_the_application() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let far_future = build(&cfg, 1, GENESIS, 0, None, T0 + 100 + 2001);
        let wrong_height = build(&cfg, 1, GENESIS, 5, None, T0 + 100);
        let mut wrong_chain = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        wrong_chain.header.chain_id = "other".into();
        let bogus_cert = Some(cert(&cfg, &ks[..2], VoteKind::Notarize, 1, Some(GENESIS)));
        let short_cert = build(&cfg, 1, GENESIS, 0, bogus_cert, T0 + 100);
        for bad in [far_future, wrong_height, wrong_chain, short_cert] {
            let mut e = Engine::new(cfg.clone(), genesis(), None);
            e.step(Input::Start, T0 + 100);
            let fx = e.step(Input::Message(proposal(&cfg, &ks, &bad)), T0 + 100);
            assert!(!fx.iter().any(|x| matches!(x, Effect::Verify { .. })), "{:?}", bad.header);
            assert_eq!(our_votes(&fx, VoteKind::Nullify).len(), 1, "{:?}", bad.header);
        }
    }

    #[test]
    fn application_rejection_nullifies_and_acceptance_notarizes() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let a = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        for valid in [false, true] {
            let mut e = Engine::new(cfg.clone(), genesis(), None);
            e.step(Input::Start, T0 + 100);
            e.step(Input::Message(proposal(&cfg, &ks, &a)), T0 + 100);
            let fx = e.step(Input::Verified { block_hash: a.hash(), valid }, T0 + 110);
            assert_eq!(our_votes(&fx, VoteKind::Nullify).len(), usize::from(!valid));
            assert_eq!(our_votes(&fx, VoteKind::Notarize).len(), usize::from(valid));
            assert_eq!(position(&fx, |x| matches!(x, Effect::Persist(_))), Some(0));
        }
    }

    #[test]
    fn timeouts_double_per_failed_view_and_are_capped() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        let mut now = T0 + 100;
        let mut fx = e.step(Input::Start, now);
        let mut waits = Vec::new();
        for view in 1..=7u64 {
            let at = fx
                .iter()
                .rev()
                .find_map(|x| match x {
                    Effect::SetTimer { view: v, at_ms } if *v == view => Some(*at_ms),
                    _ => None,
                })
                .expect("a timer for the view");
            waits.push(at - now);
            now = at;
            let fx_timeout = e.step(Input::Timer { view }, now);
            assert_eq!(our_votes(&fx_timeout, VoteKind::Nullify).len(), 1);
            fx = Vec::new();
            for k in &ks[1..3] {
                let v = Vote::sign(&cfg.domain, k, VoteKind::Nullify, view, None);
                fx.extend(e.step(Input::Message(Message::Vote(v)), now));
            }
            assert_eq!(e.status().view, view + 1);
        }
        assert_eq!(waits, vec![1200, 2200, 4200, 8200, 8200, 8200, 8200]);
    }

    #[test]
    fn a_later_proposal_with_a_forged_parent_certificate_cannot_poison_its_parents_height() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        let now = T0 + 300;
        e.step(Input::Start, now);
        let x = build(&cfg, 1, GENESIS, 0, None, T0 + 200);
        // View 5's leader (validator 1) also leads view 1. Its view-5 proposal names X as parent
        // with a "notarization" signed by itself alone and claims height u64::MAX.
        let forged = cert(&cfg, &ks[1..2], VoteKind::Notarize, 1, Some(x.hash()));
        let poison = build(&cfg, 5, x.hash(), u64::MAX - 1, Some(forged), T0 + 250);
        assert_eq!(poison.header.height, u64::MAX);
        e.step(Input::Message(proposal(&cfg, &ks, &poison)), now);

        let mut fx = e.step(Input::Message(proposal(&cfg, &ks, &x)), now);
        fx.extend(e.step(Input::Verified { block_hash: x.hash(), valid: true }, now));
        let notarization = cert(&cfg, &ks[..3], VoteKind::Notarize, 1, Some(x.hash()));
        fx.extend(e.step(Input::Message(Message::Certificate(notarization.clone())), now));
        let finalization = cert(&cfg, &ks[..3], VoteKind::Finalize, 1, Some(x.hash()));
        fx.extend(e.step(Input::Message(Message::Certificate(finalization)), now));
        let finals: Vec<_> = fx
            .iter()
            .filter_map(|f| match f {
                Effect::Finalized { block_hash, height, .. } => Some((*block_hash, *height)),
                _ => None,
            })
            .collect();
        assert_eq!(finals, vec![(x.hash(), 1)], "X is final at its own height");
        assert_eq!(e.status().finalized_height, 1);

        // A child of X in view 2 (validator 2 leads) is checked against X's true height.
        let child = build(&cfg, 2, x.hash(), 1, Some(notarization), T0 + 400);
        let fx = e.step(Input::Message(proposal(&cfg, &ks, &child)), T0 + 400);
        assert!(
            fx.iter().any(|f| matches!(f, Effect::Verify { block } if block.hash() == child.hash())),
            "the child of X goes to the application: {fx:?}"
        );
    }

    #[test]
    fn notarization_after_nullify_moves_on_without_finalizing() {
        let ks = keys(4);
        let cfg = config(&ks, Some(0));
        let mut e = Engine::new(cfg.clone(), genesis(), None);
        e.step(Input::Start, T0);
        e.step(Input::Timer { view: 1 }, T0 + 5000);
        let a = build(&cfg, 1, GENESIS, 0, None, T0 + 100);
        let n = cert(&cfg, &ks[1..], VoteKind::Notarize, 1, Some(a.hash()));
        let fx = e.step(Input::Message(Message::Certificate(n)), T0 + 5001);
        assert!(our_votes(&fx, VoteKind::Finalize).is_empty(), "F1: no finalize after nullify");
        assert_eq!(e.status().view, 2);
    }
}
