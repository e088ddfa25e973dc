//! Our own score of each peer: penalties for misbehaviour, a slow drift back to neutral, and a
//! ban when the score falls to the threshold. Pure bookkeeping; the swarm task acts on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// A gossip message the node (or the size check) rejected.
pub(crate) const GOSSIP_REJECT: i64 = -10;
/// Misbehaviour the node reports through `Handle::penalize` (a lying sync response).
pub(crate) const APP_PENALTY: i64 = -25;
/// A sync request or response over its limit, or that does not decode.
pub(crate) const BAD_BYTES: i64 = -25;
/// At or below this score a peer is disconnected and banned.
pub(crate) const BAN_THRESHOLD: i64 = -50;
/// How long a ban lasts.
pub(crate) const BAN_DURATION: Duration = Duration::from_secs(10 * 60);
/// Every this long, each score moves one point back toward zero.
pub(crate) const DECAY_INTERVAL: Duration = Duration::from_secs(10);
/// The most peers with a non-zero score remembered; beyond it, penalties of unknown peers are
/// only logged (their connections are bounded by the connection limit anyway).
const SCORED_PEERS_MAX: usize = 4096;

/// What a penalty led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The peer stays, with this score.
    Scored(i64),
    /// The score reached the threshold: disconnect and block the peer until the ban expires.
    Ban(i64),
    /// The peer is already banned.
    AlreadyBanned,
}

#[derive(Debug, Default)]
pub(crate) struct Scores {
    scores: HashMap<PeerId, i64>,
    bans: HashMap<PeerId, Instant>,
}

impl Scores {
    pub(crate) fn get(&self, peer: &PeerId) -> i64 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// Applies `delta` (negative) to `peer`'s score and logs it.
    pub(crate) fn penalize(&mut self, peer: PeerId, delta: i64, reason: &str, now: Instant) -> Outcome {
        if self.is_banned(&peer) {
            return Outcome::AlreadyBanned;
        }
        if !self.scores.contains_key(&peer) && self.scores.len() >= SCORED_PEERS_MAX {
            tracing::warn!(target: "p2p", %peer, reason, "penalty not recorded: score table full");
            return Outcome::Scored(0);
        }
        let score = self.scores.entry(peer).or_insert(0);
        *score = score.saturating_add(delta);
        let score = *score;
        tracing::info!(target: "p2p", %peer, reason, delta, score, "peer penalised");
        if score > BAN_THRESHOLD {
            return Outcome::Scored(score);
        }
        self.bans.insert(peer, now + BAN_DURATION);
        tracing::warn!(target: "p2p", %peer, score, ban_secs = BAN_DURATION.as_secs(), "peer banned");
        Outcome::Ban(score)
    }

    /// Moves every score one point toward zero; forgets scores that reach it.
    pub(crate) fn decay(&mut self) {
        self.scores.retain(|_, score| {
            *score -= score.signum();
            *score != 0
        });
    }

    /// Lifts the bans that have expired by `now` and returns their peers.
    pub(crate) fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self.bans.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        for peer in &expired {
            self.bans.remove(peer);
            tracing::info!(target: "p2p", %peer, score = self.get(peer), "ban lifted");
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_rejects_ban_a_peer_and_a_banned_peer_is_not_banned_twice() {
        let mut scores = Scores::default();
        let peer = PeerId::random();
        let now = Instant::now();
        for expected in [-10, -20, -30, -40] {
            assert_eq!(scores.penalize(peer, GOSSIP_REJECT, "test", now), Outcome::Scored(expected));
        }
        assert_eq!(scores.penalize(peer, GOSSIP_REJECT, "test", now), Outcome::Ban(-50));
        assert!(scores.is_banned(&peer));
        assert_eq!(scores.penalize(peer, GOSSIP_REJECT, "test", now), Outcome::AlreadyBanned);
        assert_eq!(scores.get(&peer), -50);
        assert_eq!(scores.get(&PeerId::random()), 0);
    }

    #[test]
    fn two_app_penalties_reach_the_threshold() {
        let mut scores = Scores::default();
        let peer = PeerId::random();
        assert_eq!(scores.penalize(peer, APP_PENALTY, "lying", Instant::now()), Outcome::Scored(-25));
        assert_eq!(scores.penalize(peer, BAD_BYTES, "garbage", Instant::now()), Outcome::Ban(-50));
    }

    #[test]
    fn scores_decay_toward_zero_and_are_forgotten_there() {
        let mut scores = Scores::default();
        let peer = PeerId::random();
        scores.penalize(peer, -2, "test", Instant::now());
        scores.decay();
        assert_eq!(scores.get(&peer), -1);
        scores.decay();
        scores.decay();
        assert_eq!(scores.get(&peer), 0);
        assert!(scores.scores.is_empty());
    }

    #[test]
    fn bans_expire_after_their_duration_only() {
        let mut scores = Scores::default();
        let peer = PeerId::random();
        let now = Instant::now();
        scores.penalize(peer, BAN_THRESHOLD, "test", now);
        assert!(scores.expire_bans(now + BAN_DURATION - Duration::from_secs(1)).is_empty());
        assert_eq!(scores.expire_bans(now + BAN_DURATION), vec![peer]);
        assert!(!scores.is_banned(&peer));
    }
}
