//! Byzantine mocks: a node runs an honest engine, and the mock rewrites what it sends (and, for
//! the double voter, votes for whatever it receives).

use std::rc::Rc;

use rand::seq::SliceRandom;
use rand::Rng;
use taksa_consensus::engine::Message;
use taksa_consensus::vote::{Domain, VoteKind};
use taksa_consensus::{Hash, Keypair, Vote};

use super::{app, Sim};

/// How many received messages the replaying mock remembers.
const HEARD_MAX: usize = 256;

/// A Byzantine behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Byzantine {
    /// Signs a second block for each of its proposals; sends both to everyone or splits peers.
    EquivocatingLeader,
    /// Sends a conflicting vote with each of its votes, and notarizes and finalizes every
    /// proposal it receives.
    DoubleVoter,
    /// Corrupts signatures (or the block under the leader's vote) of half its messages.
    BadSignatures,
    /// Signs its votes for another chain id.
    WrongChainId,
    /// Resends old messages it received, along with its own.
    Replayer,
    /// Proposes on its grandparent instead of its parent, skipping a notarized view (P1 forbids
    /// it: the skipped view is not nullified).
    ForkingLeader,
}

impl Byzantine {
    pub(crate) const ALL: [Byzantine; 6] = [
        Byzantine::EquivocatingLeader,
        Byzantine::DoubleVoter,
        Byzantine::BadSignatures,
        Byzantine::WrongChainId,
        Byzantine::Replayer,
        Byzantine::ForkingLeader,
    ];
}

type Outgoing = Vec<(Option<Vec<usize>>, Message)>;

impl Sim<'_> {
    fn key(&self, node: usize) -> Keypair {
        self.nodes[node].cfg.key.clone().expect("validators have keys")
    }

    fn domain(&self, node: usize) -> Domain {
        self.nodes[node].cfg.domain.clone()
    }

    /// What a Byzantine node sends instead of `msg`.
    pub(super) fn byzantine_outgoing(&mut self, from: usize, b: Byzantine, msg: Message) -> Outgoing {
        match b {
            Byzantine::EquivocatingLeader => self.equivocate(from, msg),
            Byzantine::DoubleVoter => self.double_vote(from, msg),
            Byzantine::BadSignatures => {
                let msg = if self.rng.gen_bool(0.5) { self.corrupt(msg) } else { msg };
                vec![(None, msg)]
            }
            Byzantine::WrongChainId => vec![(None, self.wrong_chain(from, msg))],
            Byzantine::ForkingLeader => vec![(None, self.fork(from, msg))],
            Byzantine::Replayer => {
                let mut out = vec![(None, msg)];
                let old = self.rng.gen_range(0..=3);
                for _ in 0..old {
                    let Some(bytes) = self.nodes[from].heard.choose(&mut self.rng).cloned() else { break };
                    if let Ok(m) = Message::decode(&bytes) {
                        out.push((None, m));
                    }
                }
                out
            }
        }
    }

    /// What a Byzantine node does with a message it receives (besides its engine's work).
    pub(super) fn byzantine_received(&mut self, node: usize, b: Byzantine, msg: &Message, bytes: Rc<Vec<u8>>) {
        match (b, msg) {
            (Byzantine::Replayer, _) => {
                let heard = &mut self.nodes[node].heard;
                if heard.len() >= HEARD_MAX {
                    let i = self.rng.gen_range(0..heard.len());
                    heard.swap_remove(i);
                }
                heard.push(bytes);
            }
            (Byzantine::DoubleVoter, Message::Proposal { block, .. }) => {
                let (key, domain) = (self.key(node), self.domain(node));
                let view = block.header.view;
                for kind in [VoteKind::Notarize, VoteKind::Finalize] {
                    let v = Vote::sign(&domain, &key, kind, view, Some(block.hash()));
                    self.send_all(node, &Message::Vote(v));
                }
            }
            _ => {}
        }
    }

    fn send_all(&mut self, from: usize, msg: &Message) {
        let bytes = Rc::new(msg.encode());
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, &bytes);
            }
        }
    }

    fn equivocate(&mut self, from: usize, msg: Message) -> Outgoing {
        let Message::Proposal { block, leader_vote } = msg else { return vec![(None, msg)] };
        let mut other = block.clone();
        other.header.timestamp_ms += 1;
        let other_vote =
            Vote::sign(&self.domain(from), &self.key(from), VoteKind::Notarize, other.header.view, Some(other.hash()));
        self.blocks.insert(other.hash(), other.clone());
        let first = Message::Proposal { block, leader_vote };
        let second = Message::Proposal { block: other, leader_vote: other_vote };
        let split = self.checker.equivocations_to_all(from) > 0 && self.rng.gen_bool(0.3);
        if !split {
            self.checker.equivocated_to_all(from);
            return vec![(None, first), (None, second)];
        }
        let mut peers: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != from).collect();
        peers.shuffle(&mut self.rng);
        let half = peers.split_off(peers.len() / 2);
        vec![(Some(peers), first), (Some(half), second)]
    }

    fn double_vote(&mut self, from: usize, msg: Message) -> Outgoing {
        let Message::Vote(v) = &msg else { return vec![(None, msg)] };
        let (domain, key) = (self.domain(from), self.key(from));
        let random = Hash(self.rng.gen());
        let conflicting = match v.kind {
            VoteKind::Notarize => Vote::sign(&domain, &key, VoteKind::Notarize, v.view, Some(random)),
            VoteKind::Finalize => Vote::sign(&domain, &key, VoteKind::Nullify, v.view, None),
            VoteKind::Nullify => Vote::sign(&domain, &key, VoteKind::Finalize, v.view, Some(random)),
        };
        self.checker.equivocated_to_all(from);
        vec![(None, msg), (None, Message::Vote(conflicting))]
    }

    fn fork(&mut self, from: usize, msg: Message) -> Message {
        let Message::Proposal { block, .. } = &msg else { return msg };
        let Some(parent) = self.blocks.get(&block.header.parent_hash) else { return msg };
        let Some(grandparent_cert) = parent.header.parent_cert.clone() else { return msg };
        let (gp, gp_height) = (parent.header.parent_hash, parent.header.height - 1);
        let cfg = self.nodes[from].cfg.clone();
        let proposer = block.header.proposer;
        let request = app::Request {
            view: block.header.view,
            parent: gp,
            parent_height: gp_height,
            parent_cert: Some(grandparent_cert),
        };
        let Ok(fork) = app::build(&self.blocks, &cfg, proposer, request, self.now) else { return msg };
        let vote = Vote::sign(&cfg.domain, &self.key(from), VoteKind::Notarize, fork.header.view, Some(fork.hash()));
        self.blocks.insert(fork.hash(), fork.clone());
        Message::Proposal { block: fork, leader_vote: vote }
    }

    fn corrupt(&mut self, msg: Message) -> Message {
        match msg {
            Message::Vote(mut v) => {
                v.signature.0[0] ^= 1;
                Message::Vote(v)
            }
            Message::Proposal { mut block, mut leader_vote } => {
                if self.rng.gen_bool(0.5) {
                    leader_vote.signature.0[0] ^= 1;
                } else {
                    block.header.timestamp_ms += 7;
                }
                Message::Proposal { block, leader_vote }
            }
            Message::Certificate(mut c) => {
                if let Some(s) = c.signatures.first_mut() {
                    s.0[0] ^= 1;
                }
                Message::Certificate(c)
            }
        }
    }

    fn wrong_chain(&mut self, from: usize, msg: Message) -> Message {
        let domain = Domain { chain_id: "taksa-evil".into(), ..self.domain(from) };
        let key = self.key(from);
        let resign = |v: &Vote| Vote::sign(&domain, &key, v.kind, v.view, v.block_hash);
        match msg {
            Message::Vote(v) => Message::Vote(resign(&v)),
            Message::Proposal { block, leader_vote } => Message::Proposal { leader_vote: resign(&leader_vote), block },
            other => other,
        }
    }
}
