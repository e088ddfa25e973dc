//! The libp2p protocols the swarm runs, and their tuning for small validator networks (4 to 10
//! peers).

use std::collections::HashSet;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::store::MemoryStore;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, gossipsub, identify, kad, request_response, StreamProtocol};
use sha2::{Digest, Sha256};
use taksa_consensus::engine::Message;

use crate::codec::SyncCodec;
use crate::config::Names;
use crate::{limits, reserved, Error, Topic, REQUEST_TIMEOUT_MS};

/// The identify protocol version every Taksa node announces.
pub(crate) const IDENTIFY_PROTOCOL: &str = "/taksa/id/1";
/// Room for gossipsub's envelope (author, sequence number, signature, topic) around the data.
const GOSSIP_ENVELOPE_BYTES: usize = 1024;
/// The largest gossipsub RPC: one full proposal plus room for control messages.
const GOSSIP_TRANSMIT_BYTES_MAX: usize = Message::PROPOSAL_BYTES_MAX + 64 * 1024;
/// Gossipsub heartbeat: mesh maintenance and gossip emission.
const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(500);
/// Heartbeats a received message stays in the cache; it is also how long the node has to report
/// a verdict before the message expires (12 x 500 ms = 6 s).
const GOSSIP_HISTORY_HEARTBEATS: usize = 12;
/// Streams of the sync protocol open at once per connection.
const SYNC_STREAMS_PER_CONNECTION_MAX: usize = 32;
/// Connections per peer: two, so that two peers dialing each other at the same moment both keep
/// one instead of each refusing the other's.
const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Connections still in their handshake, each way.
const PENDING_CONNECTIONS_MAX: u32 = 32;
/// A random walk of the DHT this often finds peers that joined after us.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// Every protocol of a Taksa node. Reserved set, block list and limits come first so that a
/// refused connection never reaches the others.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) reserved: reserved::Behaviour,
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Inbound and outbound budgets, the per-address cap, priority peers and address bans.
    pub(crate) limits: limits::Behaviour,
    /// Handshakes in progress and connections per peer.
    pub(crate) pending_limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
}

pub(crate) fn build(
    key: &Keypair,
    names: &Names,
    limits: limits::Behaviour,
    reserved: Option<HashSet<libp2p::PeerId>>,
) -> Result<Behaviour, Error> {
    let pending_limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_pending_incoming(Some(PENDING_CONNECTIONS_MAX))
        .with_max_pending_outgoing(Some(PENDING_CONNECTIONS_MAX));
    // Anonymous: no libp2p signature on each message. Transactions and consensus messages carry
    // their own signatures, checked by the node before anything is forwarded; the connection
    // (Noise) identifies the peer that forwarded a message, which is whom scoring charges.
    let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossipsub_config(names)?)
        .map_err(|reason| Error::Setup { what: "gossipsub", reason: reason.to_string() })?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec,
        [(protocol(names.sync_protocol())?, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .with_max_concurrent_streams(SYNC_STREAMS_PER_CONNECTION_MAX),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
            .with_agent_version(format!("taksa/{}", env!("CARGO_PKG_VERSION"))),
    );
    Ok(Behaviour {
        reserved: reserved::Behaviour::new(reserved),
        blocked: allow_block_list::Behaviour::default(),
        limits,
        pending_limits: connection_limits::Behaviour::new(pending_limits),
        gossipsub,
        sync,
        identify,
        kad: kademlia(key, names)?,
    })
}

pub(crate) fn protocol(name: String) -> Result<StreamProtocol, Error> {
    StreamProtocol::try_from_owned(name).map_err(|e| Error::Setup { what: "protocol name", reason: e.to_string() })
}

/// Content-addressed ids over the wire bytes (the payload and its send stamp, see
/// `service::SEND_STAMP_BYTES`): the copies of one send are one message wherever they travel.
fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::new(&Sha256::digest(&message.data))
}

fn gossipsub_config(names: &Names) -> Result<gossipsub::Config, Error> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(message_id)
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .history_length(GOSSIP_HISTORY_HEARTBEATS)
        .history_gossip(3)
        .flood_publish(true)
        .max_transmit_size(GOSSIP_TRANSMIT_BYTES_MAX);
    for topic in Topic::ALL {
        let name = names.topic(topic);
        // A backstop at the wire: our exact check of the data length happens on receipt, where a
        // violation can be charged to the peer.
        let topic_max = topic.bytes_max() + GOSSIP_ENVELOPE_BYTES + name.len();
        builder.max_transmit_size_for_topic(topic_max, gossipsub::IdentTopic::new(name).hash());
    }
    builder.build().map_err(|e| Error::Setup { what: "gossipsub config", reason: e.to_string() })
}

fn kademlia(key: &Keypair, names: &Names) -> Result<kad::Behaviour<MemoryStore>, Error> {
    let peer = key.public().to_peer_id();
    let mut config = kad::Config::new(protocol(names.kad_protocol())?);
    // Only peer routing is used: records that peers push are dropped rather than stored.
    config.set_record_filtering(kad::StoreInserts::FilterBoth);
    config.set_periodic_bootstrap_interval(Some(DISCOVERY_INTERVAL));
    config.set_query_timeout(Duration::from_secs(10));
    let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), config);
    // Without confirmed external addresses kad would stay a client and never be asked for peers,
    // which is the normal case on a LAN or loopback.
    kad.set_mode(Some(kad::Mode::Server));
    Ok(kad)
}
