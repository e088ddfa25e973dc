//! The chain core's sync, stepped by hand: what a peer that announces a head and does not serve
//! it costs (locally: it is followed last and cooled off longer each time, never penalised).

use std::cell::RefCell;

use taksa_consensus::chain::{ChainCore, Effect, Input, Peer, Request, Response, STATUS_TIMEOUT_MS, SYNC_COOLDOWN_MS};
use taksa_consensus::pool::{Limits, Mempool};
use taksa_consensus::vote::{Domain, VoteKind};
use taksa_consensus::{Certificate, Genesis, Hash, Header, Vote};

use crate::chain_sim::store::FakeStore;
use crate::chain_sim::{config, genesis};
use crate::sim::{keys, T0};

/// A full node (no key) of a 4-validator chain that is at genesis, and the head its peers prove.
struct Node {
    core: ChainCore,
    store: FakeStore,
    pool: RefCell<Mempool>,
    now: u64,
    head: Header,
    finalization: Certificate,
}

impl Node {
    fn new() -> Node {
        let keys = keys(4);
        let genesis: Genesis = genesis(&keys, &[], 1_000_000);
        let store = FakeStore::new(&genesis);
        let cfg = config(&genesis, None);
        let validators = genesis.validator_set();
        // A head far above ours, finalized by a quorum: what honest and withholding peers show.
        let head = Header {
            chain_id: genesis.chain_id.clone(),
            height: 500,
            view: 500,
            parent_hash: Hash([7; 32]),
            proposer: validators.leader(500),
            timestamp_ms: T0 + 100_000,
            tx_root: Hash([8; 32]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([9; 32]),
            validator_set_hash: validators.hash(),
            parent_cert: None,
        };
        let domain = Domain { chain_id: genesis.chain_id.clone(), genesis_hash: genesis.hash(), epoch: 0 };
        let votes: Vec<Vote> =
            keys[..3].iter().map(|k| Vote::sign(&domain, k, VoteKind::Finalize, 500, Some(head.hash()))).collect();
        let finalization = Certificate::from_votes(&validators, 0, VoteKind::Finalize, 500, Some(head.hash()), &votes);
        let core = ChainCore::new(cfg, &store, None, Vec::new());
        let mut node =
            Node { core, store, pool: RefCell::new(Mempool::new(Limits::default())), now: T0, head, finalization };
        node.step(Input::Start);
        node
    }

    fn step(&mut self, input: Input) -> Vec<Effect> {
        let effects = self.core.step(&self.store, &self.pool, input, self.now);
        for e in &effects {
            assert!(!matches!(e, Effect::Penalize { .. }), "withholding is not provably dishonest: {e:?}");
        }
        effects
    }

    /// The sync requests among `effects`: (peer, id, request).
    fn requests(effects: &[Effect]) -> Vec<(Peer, u64, Request)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Request { peer, id, request } => Some((*peer, *id, request.clone())),
                _ => None,
            })
            .collect()
    }

    /// Answers the status requests among `effects` that went to `answering` (in peer order),
    /// each proving the same head, and lets the round end (the others stay silent); returns
    /// the blocks request the round then made: (peer, id).
    fn answer_round(&mut self, effects: &[Effect], answering: &[Peer]) -> Option<(Peer, u64)> {
        let mut asked: Vec<(Peer, u64, Request)> = Self::requests(effects)
            .into_iter()
            .filter(|(p, _, r)| matches!(r, Request::Status) && answering.contains(p))
            .collect();
        asked.sort_by_key(|(peer, _, _)| *peer);
        let mut later = Vec::new();
        for (_, id, _) in asked {
            let answer = Response::Status { head: self.head.clone(), finalization: Some(self.finalization.clone()) };
            later.extend(self.step(Input::Response { id, answer: Some(answer) }));
        }
        if !Self::requests(&later).iter().any(|(_, _, r)| matches!(r, Request::Blocks { .. })) {
            // Someone stayed silent: the round ends at its deadline.
            self.now += STATUS_TIMEOUT_MS;
            later.extend(self.step(Input::Tick));
        }
        Self::requests(&later)
            .into_iter()
            .find(|(_, _, r)| matches!(r, Request::Blocks { .. }))
            .map(|(p, id, _)| (p, id))
    }

    /// The peer asked for blocks withholds them (an empty answer).
    fn withhold(&mut self, id: u64) {
        let effects = self.step(Input::Response { id, answer: Some(Response::Blocks(Vec::new())) });
        assert!(effects.iter().any(|e| matches!(e, Effect::SyncStopped { .. })), "{effects:?}");
    }

    /// Ticks each second until `peer` is asked for its status; returns how long that took and
    /// the step's effects.
    fn until_asked(&mut self, peer: Peer) -> (u64, Vec<Effect>) {
        let from = self.now;
        loop {
            self.now += 1000;
            let effects = self.step(Input::Tick);
            if Self::requests(&effects).iter().any(|(p, _, r)| *p == peer && matches!(r, Request::Status)) {
                return (self.now - from, effects);
            }
            assert!(self.now - from < 100 * SYNC_COOLDOWN_MS, "never asked again");
        }
    }
}

#[test]
fn a_peer_that_announces_and_does_not_serve_is_followed_last_among_equal_heads() {
    let mut node = Node::new();
    let (withholder, honest) = (Peer(1), Peer(2));
    let effects = node.step(Input::Peers(vec![withholder]));
    let (peer, id) = node.answer_round(&effects, &[withholder]).expect("a session starts");
    assert_eq!(peer, withholder);
    node.withhold(id);
    // Its cooldown over, it answers first again, with the same head as a peer that never let us
    // down: that peer is followed.
    node.now += SYNC_COOLDOWN_MS + 1000;
    let effects = node.step(Input::Peers(vec![withholder, honest]));
    let asked: Vec<Peer> = Node::requests(&effects).iter().map(|(p, _, _)| *p).collect();
    assert_eq!(asked, vec![withholder, honest]);
    let followed = node.answer_round(&effects, &[withholder, honest]).map(|(p, _)| p);
    assert_eq!(followed, Some(honest), "ties go to fewer strikes");
}

#[test]
fn each_session_a_peer_lets_down_cools_it_off_longer() {
    // A second peer that never answers keeps the node from running out of peers to ask.
    let (withholder, silent) = (Peer(1), Peer(2));
    let mut node = Node::new();
    let mut effects = node.step(Input::Peers(vec![withholder, silent]));
    let mut cooled = Vec::new();
    for _ in 0..4 {
        let (peer, id) = node.answer_round(&effects, &[withholder]).expect("the withholder is followed");
        assert_eq!(peer, withholder);
        node.withhold(id);
        let (waited, next) = node.until_asked(withholder);
        cooled.push(waited);
        effects = next;
    }
    for (strikes, waited) in (0u32..).zip(&cooled) {
        let cooldown = SYNC_COOLDOWN_MS << strikes.min(3);
        assert!(*waited >= cooldown && *waited <= cooldown + 4000, "strike {}: {cooled:?}", strikes + 1);
    }
}

#[test]
fn strikes_never_leave_a_node_with_no_peer_to_ask() {
    // The only peer let a session down (a bad link looks the same as withholding): the next
    // round asks it again rather than nobody for half a minute.
    let peer = Peer(1);
    let mut node = Node::new();
    let effects = node.step(Input::Peers(vec![peer]));
    let (_, id) = node.answer_round(&effects, &[peer]).expect("followed");
    node.withhold(id);
    let (waited, _) = node.until_asked(peer);
    assert!(waited <= 2000, "asked again after {waited} ms");
}

/// A keyless peer claims a head of a later epoch (its certificate names the head, in the head's
/// epoch, but no one's signatures can be checked before sync gets there). It is not penalised
/// (an honest peer ahead sends the same), but a verified head wins over it, and alone it takes
/// sync no further than the end of our epoch.
#[test]
fn a_head_of_a_later_epoch_is_weighed_only_up_to_the_end_of_ours() {
    let keys = keys(4);
    let genesis: Genesis = genesis(&keys, &[], 10);
    let validators = genesis.validator_set();
    let head_at = |height: u64, epoch: u64| {
        let head = Header {
            chain_id: genesis.chain_id.clone(),
            height,
            view: 3,
            parent_hash: Hash([7; 32]),
            proposer: validators.leader_in(epoch, 3),
            timestamp_ms: T0 + 100_000,
            tx_root: Hash([8; 32]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([9; 32]),
            validator_set_hash: validators.hash(),
            parent_cert: None,
        };
        let domain = Domain { chain_id: genesis.chain_id.clone(), genesis_hash: genesis.hash(), epoch };
        // The liar holds no key: signatures of its own making.
        let signers: Vec<taksa_consensus::Keypair> = if epoch == 0 {
            keys[..3].to_vec()
        } else {
            (0..3u8).map(|i| taksa_consensus::Keypair::from_seed(&[90 + i; 32])).collect()
        };
        let votes: Vec<Vote> =
            signers.iter().map(|k| Vote::sign(&domain, k, VoteKind::Finalize, 3, Some(head.hash()))).collect();
        let mut cert = Certificate::from_votes(&validators, epoch, VoteKind::Finalize, 3, Some(head.hash()), &votes);
        if epoch > 0 {
            cert.signers = vec![0b111];
            cert.signatures = votes.iter().map(|v| v.signature).collect();
        }
        (head, cert)
    };
    let run = |answers: &[(u64, u64)]| {
        let store = FakeStore::new(&genesis);
        let mut core = ChainCore::new(config(&genesis, None), &store, None, Vec::new());
        let pool = RefCell::new(Mempool::new(Limits::default()));
        let mut now = T0;
        core.step(&store, &pool, Input::Start, now);
        now += 1000;
        let peers: Vec<Peer> = (0..answers.len() as u64).map(Peer).collect();
        let effects = core.step(&store, &pool, Input::Peers(peers), now);
        let mut later = Vec::new();
        for (peer, id, _) in Node::requests(&effects) {
            let (height, epoch) = answers[peer.0 as usize];
            let (head, cert) = head_at(height, epoch);
            let answer = Response::Status { head, finalization: Some(cert) };
            later.extend(core.step(&store, &pool, Input::Response { id, answer: Some(answer) }, now));
        }
        assert!(!later.iter().any(|e| matches!(e, Effect::Penalize { .. })), "no penalty: {later:?}");
        let asked = Node::requests(&later).into_iter().find(|(_, _, r)| matches!(r, Request::Blocks { .. }));
        (asked.map(|(p, _, _)| p), core.sync_view().target_height)
    };
    // Peer 0 proves height 8 (epoch 0); peer 1 claims height 1,000,000 (epoch 99,999).
    assert_eq!(run(&[(8, 0), (1_000_000, 99_999)]), (Some(Peer(0)), Some(8)), "the proof wins");
    // Alone, the claim is followed to the end of epoch 0 only.
    assert_eq!(run(&[(1_000_000, 99_999)]), (Some(Peer(0)), Some(10)));
}
