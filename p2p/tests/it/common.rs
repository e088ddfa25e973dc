//! Helpers shared by the scenarios: nodes on 127.0.0.1, an event pump that answers gossip and
//! requests the way a scenario wants, and real blocks to send.

use std::time::{Duration, Instant};

use taksa_consensus::block::tx_root;
use taksa_consensus::{
    Address, Block, Certificate, Domain, Genesis, Hash, Header, Keypair, Transaction, Vote, VoteKind,
};
use taksa_p2p::{Config, Event, Events, FinalizedBlock, Handle, PeerId, PeerInfo, Request, Response, Topic, Verdict};
use tokio::sync::mpsc;

pub(crate) const CHAIN_ID: &str = "taksa-p2p-test";

/// The network's genesis hash; its first four bytes (5a5a5a5a) name the topics and protocols.
pub(crate) fn genesis_hash() -> Hash {
    Hash([0x5a; 32])
}

/// A protocol or topic name of the test network, e.g. `name("tx")`.
pub(crate) fn name(suffix: &str) -> String {
    // The sync protocol is at version 2 (its status carries a finalization); topics at 2
    // (transactions in batches, messages without a libp2p signature).
    let version = 2;
    format!("/taksa/{CHAIN_ID}/5a5a5a5a/{suffix}/{version}")
}

pub(crate) struct Node {
    pub(crate) handle: Handle,
    pub(crate) id: PeerId,
    /// Our listen address, ending in `/p2p/<id>`.
    pub(crate) addr: String,
    events: Option<Events>,
}

/// Starts a node on a free port of 127.0.0.1 with `bootnodes`' addresses and at most
/// `peers_max` connections each way (the bootnodes, priority peers, do not count).
pub(crate) async fn start_node(seed: u8, bootnodes: &[&Node], peers_max: usize) -> Node {
    let bootnodes = bootnodes.iter().map(|n| n.addr.clone()).collect();
    start_at(seed, "127.0.0.1:0", bootnodes, peers_max).await
}

pub(crate) async fn start_at(seed: u8, listen: &str, bootnodes: Vec<String>, peers_max: usize) -> Node {
    let mut config = Config::new(listen, CHAIN_ID, genesis_hash(), [seed; 32]);
    config.bootnodes = bootnodes;
    config.inbound_connections_max = peers_max;
    config.outbound_connections_max = peers_max;
    start_config(config).await
}

/// Starts a node with a configuration of the scenario's own.
pub(crate) async fn start_config(config: Config) -> Node {
    let (handle, events) = taksa_p2p::start(config).await.expect("the network starts");
    let addr = handle.listen_addrs().await.into_iter().next().expect("a listen address");
    Node { id: handle.local_peer_id(), handle, addr, events: Some(events) }
}

pub(crate) async fn peer(handle: &Handle, peer: &PeerId) -> Option<PeerInfo> {
    handle.peers().await.into_iter().find(|p| p.peer == *peer)
}

/// What a node's event pump saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Gossip { topic: Topic, from: PeerId, data: Vec<u8> },
    Request(Request),
    Connected(PeerId),
    Disconnected(PeerId),
}

impl Seen {
    pub(crate) fn is_gossip(&self, bytes: &[u8]) -> bool {
        matches!(self, Seen::Gossip { data, .. } if data == bytes)
    }
}

/// The scenario's view of a node's events; the pump task answers them meanwhile.
pub(crate) struct Pump {
    rx: mpsc::UnboundedReceiver<Seen>,
    pub(crate) log: Vec<Seen>,
}

impl Pump {
    /// Waits up to `timeout` for an event matching `want`; everything seen goes to `log`.
    pub(crate) async fn wait_for(&mut self, timeout: Duration, want: impl Fn(&Seen) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(seen)) => {
                    let found = want(&seen);
                    self.log.push(seen);
                    if found {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Moves everything already delivered into `log`.
    pub(crate) fn drain(&mut self) {
        while let Ok(seen) = self.rx.try_recv() {
            self.log.push(seen);
        }
    }

    pub(crate) fn count_gossip(&mut self, data: &[u8]) -> usize {
        self.drain();
        self.log.iter().filter(|s| s.is_gossip(data)).count()
    }
}

impl Node {
    /// The node's events, for a scenario that reads them itself.
    pub(crate) fn take_events(&mut self) -> Events {
        self.events.take().expect("one reader per node")
    }

    /// Spawns the node's event loop: every gossip gets `verdict(data)`, every request
    /// `respond(request)` (`None` drops the reply).
    pub(crate) fn pump(
        &mut self,
        verdict: impl Fn(&[u8]) -> Verdict + Send + 'static,
        respond: impl Fn(&Request) -> Option<Response> + Send + 'static,
    ) -> Pump {
        let mut events = self.take_events();
        let handle = self.handle.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let seen = match event {
                    Event::Gossip { topic, from, id, data } => {
                        handle.report(id, from, verdict(&data));
                        Seen::Gossip { topic, from, data }
                    }
                    Event::Request { request, reply, .. } => {
                        if let Some(response) = respond(&request) {
                            reply.send(response);
                        }
                        Seen::Request(request)
                    }
                    Event::Connected { peer } => Seen::Connected(peer),
                    Event::Disconnected { peer } => Seen::Disconnected(peer),
                };
                // The scenario may have stopped looking; keep answering anyway.
                let _ = tx.send(seen);
            }
        });
        Pump { rx, log: Vec::new() }
    }

    /// A pump that accepts all gossip and answers no request.
    pub(crate) fn accept_all(&mut self) -> Pump {
        self.pump(|_| Verdict::Accept, |_| None)
    }
}

/// Publishes `data` from `publisher` until `receiver` sees it. Right after connecting, the
/// publisher may not know the receiver's subscriptions yet and the message goes nowhere;
/// publishing the same bytes again after a success is dropped as a duplicate.
pub(crate) async fn publish_until_seen(publisher: &Handle, topic: Topic, data: &[u8], receiver: &mut Pump) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publisher.publish(topic, data.to_vec()).expect("publish is queued");
        if receiver.wait_for(Duration::from_millis(300), |s| s.is_gossip(data)).await {
            return;
        }
        assert!(Instant::now() < deadline, "gossip {:?} never arrived", String::from_utf8_lossy(data));
    }
}

/// Two real, finalized blocks on a one-validator chain: the first carries a signed transaction,
/// the second its parent's notarization.
pub(crate) fn sample_blocks() -> Vec<FinalizedBlock> {
    let key = Keypair::from_seed(&[9; 32]);
    let validator = Address::from_public_key(key.public());
    let genesis = Genesis {
        chain_id: CHAIN_ID.into(),
        address_hrp: "tk".into(),
        genesis_time_ms: 0,
        block_time_ms: 1000,
        fee_floor: 1,
        epoch_length: 1_000,
        validators: vec![validator],
        validator_names: vec!["v0".into()],
        allocations: vec![(validator, 1_000_000)],
    };
    let domain = Domain { chain_id: CHAIN_ID.into(), genesis_hash: genesis.hash(), epoch: 0 };
    let validators = genesis.validator_set();
    let tx = Transaction {
        chain_id: CHAIN_ID.into(),
        from: validator,
        to: validator,
        amount: 5,
        fee: 1,
        nonce: 0,
        valid_until_height: None,
        memo: Some("over p2p".into()),
        action: None,
    }
    .sign(&key, &genesis.hash());
    let mut parent = genesis.header();
    let mut parent_cert = None;
    let mut out = Vec::new();
    for height in 1..=2u64 {
        let txs = if height == 1 { vec![tx.clone()] } else { vec![] };
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
        let header = Header {
            chain_id: CHAIN_ID.into(),
            height,
            view: height,
            parent_hash: parent.hash(),
            proposer: validator,
            timestamp_ms: height * 1000,
            tx_root: tx_root(&hashes),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([height as u8; 32]),
            validator_set_hash: validators.hash(),
            parent_cert: parent_cert.take(),
        };
        let block = Block { header: header.clone(), evidence: Vec::new(), txs };
        let hash = Some(block.hash());
        let notarize = Vote::sign(&domain, &key, VoteKind::Notarize, height, hash);
        let finalize = Vote::sign(&domain, &key, VoteKind::Finalize, height, hash);
        parent_cert = Some(Certificate::from_votes(&validators, 0, VoteKind::Notarize, height, hash, [&notarize]));
        let finalization = Certificate::from_votes(&validators, 0, VoteKind::Finalize, height, hash, [&finalize]);
        out.push(FinalizedBlock { block, finalization: Some(finalization) });
        parent = header;
    }
    out
}
