//! Catching up by height: which peer to follow, what to ask it, and what its answers prove.
//!
//! Every [`SYNC_INTERVAL_MS`] the core asks every connected peer not cooling off for its status
//! at once: its finalized head with the certificate that finalizes it (a claimed height costs a
//! quorum's signatures to fake). A status that no honest node sends (a head above genesis with
//! no finalization, or one of our epoch that does not verify) costs the peer a penalty. A head
//! in a later epoch is signed by a set this node learns only from the chain on the way there
//! (G5 of [`crate::governance`]): it is followed as a claim and verified when its block is
//! reached, and every block's finalization is verified against the set of its own epoch. A run
//! of blocks crosses into a new epoch only after the last block of the epoch before committed
//! with its own finalization (which every honest node stores). When the round ends
//! (every answer in, or [`STATUS_TIMEOUT_MS`]), the highest verified head above ours becomes
//! the session's target, and finalized blocks are asked of that peer by height, 64 at a time,
//! until the target is committed. Only finality moves the head ([`super::ChainCore::step`] on
//! `Synced` blocks, rule C3), so a peer that serves blocks it cannot prove final makes no
//! progress, and a fresh session drops what an earlier one staged.
//!
//! Penalties only for what an honest peer never does: an uncertified status, a run of blocks
//! that does not start at the height asked for, or blocks that do not link, verify or execute.
//! A peer that is slow, withholds, or answers empty is not provably dishonest: it loses local
//! standing only, never network score. It gets a strike and is not asked again for
//! [`SYNC_COOLDOWN_MS`], doubled for each further strike (up to 8×), unless every peer is
//! cooling (then the least struck are asked); among peers proving the same head, the one with
//! fewer strikes is followed. Serving blocks that move our head
//! clears its strikes. (A peer that reconnects under a new number starts clean: strikes only
//! order peers, so that gains a liar one more session at most, and the network's ban score is
//! kept by peer id in p2p.)

use std::collections::{BTreeMap, BTreeSet};

use super::{ChainCore, Effect, Io, Request, Response, BLOCKS_PER_REQUEST_MAX};
use crate::{Certificate, Header};

/// How often a status round starts when no session runs.
pub const SYNC_INTERVAL_MS: u64 = 1000;
/// How long a status round waits for answers.
pub const STATUS_TIMEOUT_MS: u64 = 2000;
/// How long a blocks request may take before the peer counts as not serving.
pub const BLOCKS_TIMEOUT_MS: u64 = 15_000;
/// How long a peer that stopped serving is not asked again, after its first strike; each
/// further strike doubles it, up to [`STRIKES_COOLDOWN_MAX`] doublings.
pub const SYNC_COOLDOWN_MS: u64 = 30_000;
/// The most doublings of the cooldown (8×: four minutes).
const STRIKES_COOLDOWN_MAX: u32 = 3;
/// How far behind the best certified head a node counts as syncing.
const SYNCING_LAG_BLOCKS: u64 = 2;
/// How many peers sync keeps track of.
const PEERS_MAX: usize = 1024;

/// A peer, as the caller numbers them (the node maps its network ids to these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer(pub u64);

/// Why a peer is penalised: each is something an honest peer never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    /// A status head above genesis without a finalization.
    UncertifiedStatus,
    /// A status head whose finalization does not verify.
    BadStatus,
    /// Blocks that do not link to what we have or to each other, do not verify or do not
    /// execute, while served as final.
    BadBlocks,
    /// An answer of another kind than the request.
    WrongAnswer,
}

impl Penalty {
    /// A short description for logs and rejection counters.
    pub fn reason(self) -> &'static str {
        match self {
            Penalty::UncertifiedStatus => "status head above genesis without a finalization",
            Penalty::BadStatus => "status head's finalization does not verify",
            Penalty::BadBlocks => "sync answer does not verify",
            Penalty::WrongAnswer => "sync answer of the wrong kind",
        }
    }
}

/// What the caller shows of sync (RPC, logs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncView {
    /// The highest finalized height a peer proved.
    pub target_height: Option<u64>,
    /// Whether we are more than a couple of blocks behind it.
    pub syncing: bool,
    /// Blocks committed per second by the last session.
    pub blocks_per_second: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Status,
    /// Blocks from this height.
    Blocks(u64),
}

/// A status round: who has not answered, the best head so far.
struct Round {
    deadline_ms: u64,
    waiting: BTreeSet<u64>,
    best: Option<Candidate>,
}

/// A peer's status head as sync weighs it.
struct Candidate {
    peer: Peer,
    head: Header,
    finalization: Certificate,
    /// How far it takes us: its height, or for a head of a later epoch (signed by a set not
    /// known here yet), no further than the end of our epoch, which we can verify.
    reach: u64,
    /// Whether its finalization verified here.
    verified: bool,
}

/// A catch-up from one peer to its certified head.
struct Session {
    peer: Peer,
    /// The height this session syncs to (see [`Candidate::reach`]).
    target: u64,
    head: Header,
    finalization: Certificate,
    /// The next height to ask for.
    next: u64,
    /// Whether the next answer starts the session (drops blocks an earlier one staged).
    fresh: bool,
    started_ms: u64,
    start_height: u64,
}

/// The sync state of a [`ChainCore`].
#[derive(Default)]
pub(super) struct Sync {
    peers: BTreeSet<Peer>,
    cooling: BTreeMap<Peer, u64>,
    /// Sessions each connected peer let down since it last served (local standing only).
    strikes: BTreeMap<Peer, u32>,
    round: Option<Round>,
    next_round_ms: u64,
    session: Option<Session>,
    /// Requests in flight: id -> (peer, what, deadline).
    inflight: BTreeMap<u64, (Peer, Asked, u64)>,
    next_id: u64,
    view: SyncView,
}

impl Sync {
    /// When sync next needs a tick.
    pub(super) fn next_deadline_ms(&self) -> Option<u64> {
        let round = if self.peers.is_empty() || self.session.is_some() {
            None
        } else {
            Some(self.round.as_ref().map_or(self.next_round_ms, |r| r.deadline_ms))
        };
        let request = self.inflight.values().map(|(_, _, at)| *at).min();
        match (round, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn view(&self) -> SyncView {
        self.view
    }
}

impl ChainCore {
    /// The connected peers now.
    pub(super) fn sync_peers(&mut self, io: &Io<'_>, peers: Vec<Peer>) {
        self.sync.peers = peers.into_iter().take(PEERS_MAX).collect();
        let known = &self.sync.peers;
        self.sync.cooling.retain(|p, _| known.contains(p));
        self.sync.strikes.retain(|p, _| known.contains(p));
        self.sync_tick(io);
    }

    /// Expires requests and rounds, starts a round when one is due.
    pub(super) fn sync_tick(&mut self, io: &Io<'_>) {
        let now = io.now_ms;
        self.sync.cooling.retain(|_, until| *until > now);
        let expired: Vec<u64> =
            self.sync.inflight.iter().filter(|(_, (_, _, at))| *at <= now).map(|(id, _)| *id).collect();
        for id in expired {
            self.sync_answer(io, id, None);
        }
        if self.sync.round.as_ref().is_some_and(|r| r.deadline_ms <= now) {
            self.finish_round(io);
        }
        if self.sync.round.is_none() && self.sync.session.is_none() && now >= self.sync.next_round_ms {
            self.start_round(io);
        }
    }

    fn start_round(&mut self, io: &Io<'_>) {
        let now = io.now_ms;
        self.sync.next_round_ms = now.saturating_add(SYNC_INTERVAL_MS);
        let mut asked: Vec<Peer> =
            self.sync.peers.iter().filter(|p| !self.sync.cooling.contains_key(p)).copied().collect();
        if asked.is_empty() {
            // Every peer is cooling: strikes only order peers, they never leave a node with no
            // one to ask (an honest peer may have had a bad link), so ask the least struck.
            let strikes = |p: &Peer| self.sync.strikes.get(p).copied().unwrap_or(0);
            let fewest = self.sync.peers.iter().map(strikes).min();
            asked = self.sync.peers.iter().filter(|p| Some(strikes(p)) == fewest).copied().collect();
        }
        if asked.is_empty() {
            return;
        }
        let mut waiting = BTreeSet::new();
        for peer in asked {
            let id = self.request(io, peer, Asked::Status, Request::Status, STATUS_TIMEOUT_MS);
            waiting.insert(id);
        }
        self.sync.round = Some(Round { deadline_ms: now.saturating_add(STATUS_TIMEOUT_MS), waiting, best: None });
    }

    fn request(&mut self, io: &Io<'_>, peer: Peer, asked: Asked, request: Request, timeout_ms: u64) -> u64 {
        self.sync.next_id = self.sync.next_id.wrapping_add(1);
        let id = self.sync.next_id;
        self.sync.inflight.insert(id, (peer, asked, io.now_ms.saturating_add(timeout_ms)));
        self.out.push(Effect::Request { peer, id, request });
        id
    }

    /// The round is over: follow the highest verified head above ours, if any.
    fn finish_round(&mut self, io: &Io<'_>) {
        let Some(round) = self.sync.round.take() else { return };
        for id in &round.waiting {
            self.sync.inflight.remove(id);
        }
        let head = self.head.height;
        let target = round.best.as_ref().map(|c| c.reach);
        self.sync.view.target_height = target;
        self.sync.view.syncing = target.is_some_and(|t| t > head.saturating_add(SYNCING_LAG_BLOCKS));
        let Some(best) = round.best.filter(|c| c.reach > head) else { return };
        self.sync.session = Some(Session {
            peer: best.peer,
            target: best.reach,
            head: best.head,
            finalization: best.finalization,
            next: head.saturating_add(1),
            fresh: true,
            started_ms: io.now_ms,
            start_height: head,
        });
        self.ask_blocks(io);
    }

    fn ask_blocks(&mut self, io: &Io<'_>) {
        let Some(s) = &self.sync.session else { return };
        let (peer, from_height) = (s.peer, s.next.max(self.head.height.saturating_add(1)));
        let request = Request::Blocks { from_height, count: BLOCKS_PER_REQUEST_MAX };
        self.request(io, peer, Asked::Blocks(from_height), request, BLOCKS_TIMEOUT_MS);
    }

    /// An answer to request `id` (`None`: it failed or timed out). Answers to requests this
    /// core did not make, or made to another peer, are ignored.
    pub(super) fn sync_answer(&mut self, io: &Io<'_>, id: u64, answer: Option<Response>) {
        let Some((peer, asked, _)) = self.sync.inflight.remove(&id) else { return };
        match (asked, answer) {
            (Asked::Status, Some(Response::Status { head, finalization })) => {
                self.on_status(peer, head, finalization);
            }
            (Asked::Status, None) => {}
            (Asked::Blocks(from), Some(Response::Blocks(blocks))) if !blocks.is_empty() => {
                // An honest peer serves a contiguous run from the height asked for, at most as
                // many blocks as asked (`Request::Blocks`): anything else is not an answer.
                let heights = blocks.iter().map(|b| b.block.header.height);
                let in_order = heights.clone().zip(from..).all(|(h, want)| h == want);
                if in_order && blocks.len() <= BLOCKS_PER_REQUEST_MAX as usize {
                    self.on_blocks(io, peer, blocks);
                } else {
                    let first = blocks.first().map_or(0, |b| b.block.header.height);
                    let detail = format!("{} blocks from height {first} for a request from {from}", blocks.len());
                    self.penalize(peer, Penalty::BadBlocks, detail);
                    self.stop_session(io, "sync answer does not verify");
                }
            }
            (Asked::Blocks(_), Some(Response::Blocks(_))) => {
                self.stop_session(io, "announced finalized blocks it does not serve");
            }
            (Asked::Blocks(_), None) => self.stop_session(io, "no answer to a blocks request"),
            (_, Some(_)) => {
                self.penalize(peer, Penalty::WrongAnswer, String::new());
                if matches!(asked, Asked::Blocks(_)) {
                    self.stop_session(io, "sync answer of the wrong kind");
                }
            }
        }
        if let Some(round) = &mut self.sync.round {
            round.waiting.remove(&id);
            if round.waiting.is_empty() {
                self.finish_round(io);
            }
        }
    }

    fn on_status(&mut self, peer: Peer, head: Header, finalization: Option<Certificate>) {
        let Some(fin) = finalization else {
            if head.height > 0 || head.hash() != self.cfg.rules.genesis_hash {
                self.penalize(peer, Penalty::UncertifiedStatus, String::new());
            }
            return;
        };
        if head.height == 0 {
            return self.penalize(peer, Penalty::BadStatus, String::new());
        }
        let epoch = self.cfg.rules.epochs.of_height(head.height);
        if epoch < self.epoch {
            // Behind us: nothing to sync, and its set is no longer at hand.
            return;
        }
        // A later epoch's set is not known here yet: only what needs no set is checked now (the
        // certificate names this head, in its epoch), the signatures when sync reaches it
        // (`apply_synced`).
        let names_head = fin.names_final(&head) && fin.epoch == epoch;
        let later = epoch > self.epoch;
        let checked = || fin.verify_finalizes(&head, &self.cfg.rules.domain(epoch), &self.set).is_ok();
        if !names_head || (!later && !checked()) {
            return self.penalize(peer, Penalty::BadStatus, String::new());
        }
        // A claim we cannot check yet takes us no further than what we can: the end of our
        // epoch, whose last block comes with its own finalization; and any verified head above
        // ours is followed first. A keyless liar's huge claim then wins nothing over a proof.
        let reach = if later { head.height.min(self.cfg.rules.epochs.last_height(self.epoch)) } else { head.height };
        let verified = !later;
        if reach <= self.head.height {
            // Nothing to sync from it (a verified head at ours must not shadow a later claim).
            return;
        }
        let strikes = &self.sync.strikes;
        let Some(round) = &mut self.sync.round else { return };
        let count = |p: &Peer| strikes.get(p).copied().unwrap_or(0);
        let rank = |reach: u64, verified: bool, p: &Peer| (verified, reach, std::cmp::Reverse(count(p)));
        let better =
            round.best.as_ref().is_none_or(|b| rank(reach, verified, &peer) > rank(b.reach, b.verified, &b.peer));
        if better {
            round.best = Some(Candidate { peer, head, finalization: fin, reach, verified });
        }
    }

    fn on_blocks(&mut self, io: &Io<'_>, peer: Peer, blocks: Vec<super::FinalizedBlock>) {
        let Some(s) = &mut self.sync.session else { return };
        if s.peer != peer {
            return;
        }
        let fresh = std::mem::take(&mut s.fresh);
        let (next, target) = (s.next, s.target);
        let cover = (s.head.clone(), s.finalization.clone());
        match self.apply_synced(io, blocks, fresh, &cover) {
            Ok(n) if n > next => {
                self.sync.strikes.remove(&peer);
                if let Some(s) = &mut self.sync.session {
                    s.next = n;
                }
                self.note_progress(io);
                if n <= target && self.head.height < target {
                    self.ask_blocks(io);
                } else {
                    self.sync.session = None;
                }
            }
            Ok(_) => self.stop_session(io, "no progress"),
            Err(detail) => {
                self.penalize(peer, Penalty::BadBlocks, detail);
                self.stop_session(io, "sync answer does not verify");
            }
        }
    }

    fn note_progress(&mut self, io: &Io<'_>) {
        let Some(s) = &self.sync.session else { return };
        let done = self.head.height.saturating_sub(s.start_height);
        let secs = io.now_ms.saturating_sub(s.started_ms);
        if secs > 0 {
            #[allow(clippy::cast_precision_loss)]
            let rate = done as f64 * 1000.0 / secs as f64;
            self.sync.view.blocks_per_second = Some(rate);
        }
        let target = self.sync.view.target_height.unwrap_or(0);
        self.sync.view.syncing = target > self.head.height.saturating_add(SYNCING_LAG_BLOCKS);
    }

    /// The session's peer stopped being useful without proving itself dishonest.
    fn stop_session(&mut self, io: &Io<'_>, reason: &'static str) {
        let Some(s) = self.sync.session.take() else { return };
        let strikes = self.sync.strikes.entry(s.peer).or_insert(0);
        *strikes = strikes.saturating_add(1);
        let cooldown = SYNC_COOLDOWN_MS << strikes.saturating_sub(1).min(STRIKES_COOLDOWN_MAX);
        self.sync.cooling.insert(s.peer, io.now_ms.saturating_add(cooldown));
        self.out.push(Effect::SyncStopped { peer: s.peer, reason });
    }

    /// Each lie costs again: a peer that keeps lying is banned by the network within a few
    /// rounds (two penalties), and one that stops lying is no worse than slow.
    fn penalize(&mut self, peer: Peer, penalty: Penalty, detail: String) {
        self.out.push(Effect::Penalize { peer, penalty, detail });
    }
}
