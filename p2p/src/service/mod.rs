//! The swarm task: owns the swarm, turns its events into [`Event`]s for the node and the node's
//! commands into swarm calls. It never waits on the node: every send to the node is a `try_send`.

mod reserved;
mod sync;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::core::ConnectedPoint;
use libp2p::futures::stream::FuturesUnordered;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, Multiaddr, StreamProtocol, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{self, Behaviour, BehaviourEvent};
use crate::config::{self, Names, PeerAddr};
use crate::events::Queues;
use crate::guard::{Admission, Guard};
use crate::score::{Outcome, Scores, APP_PENALTY, DECAY_INTERVAL, GOSSIP_REJECT};
use crate::{Error, Event, MessageId, PeerId, PeerInfo, Request, Response, Topic, Verdict};

/// How often the housekeeping runs (score decay, ban expiry, re-dials).
const TICK: Duration = Duration::from_millis(500);
/// Bootnodes and other priority peers we are not connected to are dialed again this often,
/// whatever else we are connected to: a node whose slots are taken by strangers must still
/// find its way back to the peers it was told to trust.
const REDIAL_INTERVAL: Duration = Duration::from_secs(2);
/// Listen addresses taken from one peer's identify message into the DHT.
const LISTEN_ADDRS_PER_PEER_MAX: usize = 8;
/// Characters of a peer's agent string kept.
const AGENT_CHARS_MAX: usize = 64;

/// What the [`crate::Handle`] asks of the swarm task.
pub(crate) enum Command {
    Publish { topic: Topic, data: Vec<u8> },
    Report { id: MessageId, from: PeerId, verdict: Verdict },
    Penalize { peer: PeerId, reason: &'static str },
    SetReserved { peers: Option<Vec<PeerId>> },
    Request { peer: PeerId, request: Request, reply: oneshot::Sender<Result<Response, Error>> },
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    ListenAddrs { reply: oneshot::Sender<Vec<String>> },
    Shutdown { done: oneshot::Sender<()> },
}

/// A connected peer: what we know of its first connection.
struct Connected {
    addr: Multiaddr,
    inbound: bool,
    connected_ms: u64,
    agent: Option<String>,
}

/// The node's pending answer to an inbound request: `None` if it dropped the [`crate::Reply`] or
/// took longer than the request timeout.
type PendingReply = Pin<Box<dyn Future<Output = (ResponseChannel<Response>, Option<Response>)> + Send>>;

pub(crate) struct Service {
    swarm: Swarm<Behaviour>,
    queues: Queues,
    topics: HashMap<TopicHash, Topic>,
    sync_protocol: StreamProtocol,
    kad_protocol: String,
    bootnodes: Vec<PeerAddr>,
    listen_addrs: Vec<Multiaddr>,
    peers: HashMap<libp2p::PeerId, Connected>,
    scores: Scores,
    guard: Guard,
    outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, Error>>>,
    replies: FuturesUnordered<PendingReply>,
    last_decay: Instant,
    last_redial: Instant,
}

impl Service {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        names: &Names,
        queues: Queues,
        bootnodes: Vec<PeerAddr>,
        listen_addrs: Vec<Multiaddr>,
    ) -> Result<Service, Error> {
        let topics = Topic::ALL.into_iter().map(|t| (gossipsub::IdentTopic::new(names.topic(t)).hash(), t)).collect();
        Ok(Service {
            swarm,
            queues,
            topics,
            sync_protocol: behaviour::protocol(names.sync_protocol())?,
            kad_protocol: names.kad_protocol(),
            bootnodes,
            listen_addrs,
            peers: HashMap::new(),
            scores: Scores::default(),
            guard: Guard::default(),
            outbound: HashMap::new(),
            replies: FuturesUnordered::new(),
            last_decay: Instant::now(),
            last_redial: Instant::now(),
        })
    }

    /// Runs until shutdown or until every handle is dropped; the swarm (listener and
    /// connections) is dropped before a shutdown is confirmed.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        self.dial_bootnodes(true);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(Command::Shutdown { done }) => break Some(done),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                Some((channel, response)) = self.replies.next(), if !self.replies.is_empty() => {
                    self.send_reply(channel, response);
                }
                _ = tick.tick() => self.on_tick(),
            }
        };
        let local = *self.swarm.local_peer_id();
        drop(self);
        tracing::info!(target: "p2p", peer = %local, "network stopped");
        if let Some(done) = done {
            // The caller may have stopped waiting; nothing to do then.
            let _ = done.send(());
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => self.publish(topic, data),
            Command::Report { id, from, verdict } => self.report(id, from, verdict),
            Command::Penalize { peer, reason } => self.penalize(peer.0, APP_PENALTY, reason),
            Command::SetReserved { peers } => self.set_reserved(peers),
            Command::Request { peer, request, reply } => self.start_request(peer, request, reply),
            Command::Peers { reply } => {
                // The asker may have given up; that is fine.
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddrs { reply } => {
                let local = *self.swarm.local_peer_id();
                let addrs = self.listen_addrs.iter().map(|a| a.clone().with(Protocol::P2p(local)).to_string());
                let _ = reply.send(addrs.collect());
            }
            // Handled by the run loop, which owns the exit.
            Command::Shutdown { done } => {
                let _ = done.send(());
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                self.on_identified(peer_id, info)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, addresses, .. })) => {
                self.discovered(peer, addresses.into_vec())
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. }
                if num_established.get() == 1 =>
            {
                self.on_connected(peer_id, &endpoint)
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                tracing::debug!(target: "p2p", peer = %peer_id, ?cause, "peer disconnected");
                self.peers.remove(&peer_id);
                self.guard.forget(&peer_id);
                self.emit(Event::Disconnected { peer: PeerId(peer_id) });
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen_addrs.contains(&address) => {
                self.listen_addrs.push(address)
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.listen_addrs.retain(|a| *a != address),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(target: "p2p", peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, peer: libp2p::PeerId, endpoint: &ConnectedPoint) {
        let mut addr = endpoint.get_remote_address().clone();
        // Dialed addresses carry the peer id; it is listed separately.
        if let Some(Protocol::P2p(_)) = addr.iter().last() {
            addr.pop();
        }
        tracing::debug!(target: "p2p", %peer, %addr, inbound = endpoint.is_listener(), "peer connected");
        let connected_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let connected = Connected { addr, inbound: endpoint.is_listener(), connected_ms, agent: None };
        self.peers.insert(peer, connected);
        self.emit(Event::Connected { peer: PeerId(peer) });
    }

    /// Sends a connection event to the node; if its queue is full the event is lost (the node
    /// can always ask [`crate::Handle::peers`]).
    fn emit(&mut self, event: Event) {
        if let Err(event) = self.queues.try_send(event) {
            tracing::warn!(target: "p2p", ?event, "event dropped: node's queue full");
        }
    }

    fn on_identified(&mut self, peer: libp2p::PeerId, info: identify::Info) {
        if !info.protocols.contains(&self.sync_protocol) {
            // Another chain, or not a Taksa node: it would only take a connection slot.
            tracing::debug!(target: "p2p", %peer, agent = %info.agent_version, "peer is not on our network");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        if let Some(connected) = self.peers.get_mut(&peer) {
            connected.agent = Some(info.agent_version.chars().take(AGENT_CHARS_MAX).collect());
        }
        if info.protocols.iter().any(|p| p.as_ref() == self.kad_protocol) {
            let addrs = info.listen_addrs.into_iter().filter(|a| config::check_tcp(a).is_ok());
            for addr in addrs.take(LISTEN_ADDRS_PER_PEER_MAX) {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
        }
    }

    /// A peer the DHT found: connect if there is room (priority peers always have room) and it
    /// may connect at all.
    fn discovered(&mut self, peer: libp2p::PeerId, addrs: Vec<Multiaddr>) {
        let limits = &self.swarm.behaviour().limits;
        let full = limits.outbound_full() && !limits.is_priority(&peer);
        if full || self.swarm.is_connected(&peer) || !self.may_connect(&peer) {
            return;
        }
        tracing::debug!(target: "p2p", %peer, ?addrs, "dialing discovered peer");
        if let Err(error) = self.swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build()) {
            tracing::debug!(target: "p2p", %peer, %error, "cannot dial discovered peer");
        }
    }

    /// Dials the bootnodes we are not connected to and may connect to. Those given without a
    /// peer id are known by the id found at their address once we have reached them; until
    /// then they cannot be told apart from our peers, so they are dialed only if `unnamed_too`.
    fn dial_bootnodes(&mut self, unnamed_too: bool) {
        self.last_redial = Instant::now();
        let local = *self.swarm.local_peer_id();
        for bootnode in &self.bootnodes {
            let peer = bootnode.peer.or_else(|| self.swarm.behaviour().limits.found_at(&bootnode.addr));
            let opts = match peer {
                Some(peer) if peer == local || self.swarm.is_connected(&peer) || !self.may_connect(&peer) => continue,
                Some(peer) => DialOpts::peer_id(peer).addresses(vec![bootnode.addr.clone()]).build(),
                None if !unnamed_too => continue,
                None => DialOpts::unknown_peer_id().address(bootnode.addr.clone()).build(),
            };
            if let Err(error) = self.swarm.dial(opts) {
                tracing::debug!(target: "p2p", addr = %bootnode.addr, %error, "cannot dial bootnode");
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_decay) >= DECAY_INTERVAL {
            self.scores.decay();
            self.last_decay = now;
        }
        for peer in self.scores.expire_bans(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        self.swarm.behaviour_mut().limits.expire(now);
        if now.duration_since(self.last_redial) >= REDIAL_INTERVAL {
            self.dial_bootnodes(true);
            self.dial_priority();
        }
    }

    /// Dials the priority peers we are not connected to (at the addresses Kademlia knows);
    /// bootnodes among them are dialed at their own addresses by `dial_bootnodes`.
    fn dial_priority(&mut self) {
        let local = *self.swarm.local_peer_id();
        for peer in self.swarm.behaviour().limits.priority_peers() {
            if peer == local || self.swarm.is_connected(&peer) || !self.may_connect(&peer) {
                continue;
            }
            // Not dialed twice at once (the default condition); no address known is no error.
            if let Err(error) = self.swarm.dial(DialOpts::peer_id(peer).build()) {
                tracing::debug!(target: "p2p", %peer, %error, "cannot dial priority peer");
            }
        }
    }

    fn publish(&mut self, topic: Topic, mut data: Vec<u8>) {
        let Some(hash) = self.topics.iter().find(|(_, t)| **t == topic).map(|(h, _)| h.clone()) else {
            return;
        };
        data.extend_from_slice(&send_stamp().to_le_bytes());
        match self.swarm.behaviour_mut().gossipsub.publish(hash, data) {
            Ok(id) => tracing::debug!(target: "p2p", ?topic, %id, "published"),
            Err(error @ (PublishError::Duplicate | PublishError::NoPeersSubscribedToTopic)) => {
                tracing::debug!(target: "p2p", ?topic, %error, "nothing published");
            }
            Err(error) => tracing::warn!(target: "p2p", ?topic, %error, "publish failed"),
        }
    }

    fn on_gossip(&mut self, source: libp2p::PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        // We subscribe to our two topics only, so gossipsub delivers nothing else.
        let Some(&topic) = self.topics.get(&message.topic) else {
            self.validate(&id, &source, MessageAcceptance::Ignore);
            return;
        };
        let mut data = message.data;
        let Some(payload_len) = data.len().checked_sub(SEND_STAMP_BYTES) else {
            self.validate(&id, &source, MessageAcceptance::Reject);
            self.penalize(source, GOSSIP_REJECT, "gossip without a send stamp");
            return;
        };
        if payload_len > topic.bytes_max() {
            self.validate(&id, &source, MessageAcceptance::Reject);
            self.penalize(source, GOSSIP_REJECT, "gossip over the topic's size limit");
            return;
        }
        data.truncate(payload_len);
        let now = Instant::now();
        let key = match self.guard.admit(source, topic, &data, now) {
            Admission::Deliver(key) => key,
            Admission::RateLimited => {
                tracing::debug!(target: "p2p", peer = %source, ?topic, "gossip ignored: peer over its rate");
                self.validate(&id, &source, MessageAcceptance::Ignore);
                return;
            }
            Admission::Replay => {
                tracing::debug!(target: "p2p", peer = %source, ?topic, "gossip ignored: payload delivered just now");
                self.validate(&id, &source, MessageAcceptance::Ignore);
                return;
            }
        };
        let event = Event::Gossip { topic, from: PeerId(source), id: MessageId(id.clone()), data };
        match self.queues.try_send(event) {
            Ok(()) => self.guard.delivered(key, now),
            Err(_) => {
                tracing::warn!(target: "p2p", ?topic, "gossip ignored: node's queue full");
                self.validate(&id, &source, MessageAcceptance::Ignore);
            }
        }
    }

    fn report(&mut self, id: MessageId, from: PeerId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => MessageAcceptance::Reject,
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        self.validate(&id.0, &from.0, acceptance);
        if verdict == Verdict::Reject {
            self.penalize(from.0, GOSSIP_REJECT, "gossip rejected by the node");
        }
    }

    fn validate(&mut self, id: &gossipsub::MessageId, source: &libp2p::PeerId, acceptance: MessageAcceptance) {
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if !gossipsub.report_message_validation_result(id, source, acceptance) {
            tracing::debug!(target: "p2p", %id, "verdict for a message that already expired");
        }
    }

    /// Lowers `peer`'s score; at the threshold the block list closes its connections and refuses
    /// new ones until the ban expires, and the ban counts against the peer's address.
    fn penalize(&mut self, peer: libp2p::PeerId, delta: i64, reason: &'static str) {
        let now = Instant::now();
        if let Outcome::Ban(_) = self.scores.penalize(peer, delta, reason, now) {
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            self.swarm.behaviour_mut().kad.remove_peer(&peer);
            self.ban_address_of(peer, now);
        }
    }

    /// Counts a ban against the banned peer's address; when that bans the address (see
    /// `limits`), the other non-priority peers that came in from it leave too.
    fn ban_address_of(&mut self, peer: libp2p::PeerId, now: Instant) {
        let Some(addr) = self.peers.get(&peer).map(|c| c.addr.clone()) else { return };
        let Some(group) = self.swarm.behaviour_mut().limits.record_ban(&addr, now) else { return };
        let limits = &self.swarm.behaviour().limits;
        let same_address: Vec<libp2p::PeerId> = self
            .peers
            .iter()
            .filter(|(p, c)| c.inbound && limits.in_group(&c.addr, group) && !limits.is_priority(p))
            .map(|(p, _)| *p)
            .collect();
        for other in same_address {
            tracing::debug!(target: "p2p", peer = %other, "disconnecting a peer from a banned address");
            // An error only means the peer is already gone.
            let _ = self.swarm.disconnect_peer_id(other);
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(peer, c)| PeerInfo {
                peer: PeerId(*peer),
                addr: c.addr.to_string(),
                inbound: c.inbound,
                score: self.scores.get(peer),
                agent: c.agent.clone(),
                connected_ms: c.connected_ms,
            })
            .collect();
        infos.sort_by_key(|info| info.peer);
        infos
    }
}

/// Every gossip message ends with the publisher's send time (Unix ms, u64 little-endian), which
/// the receiving side strips before the node sees the payload. Message ids hash the whole wire
/// message, so the same payload sent again later is a new message. Consensus recovery depends on
/// that: a stalled view re-sends the very same votes and certificates at each timeout, and
/// gossipsub would refuse (and its peers drop) bytes it has seen, for as long as nothing new
/// arrives to expire its seen-cache, which in a stalled network is forever. The price is that
/// anyone can replay a valid payload under a fresh stamp; `guard` hands each payload to the node
/// at most once per `guard::REPLAY_WINDOW`, shorter than any honest re-send.
pub(crate) const SEND_STAMP_BYTES: usize = 8;

fn send_stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
