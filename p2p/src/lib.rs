//! Taksa's peer-to-peer network: libp2p gossip of transactions and consensus messages and
//! request-response sync of blocks, behind a small handle so that the rest of the node never
//! sees libp2p.
//!
//! Bird's-eye view:
//! - [`start`] builds a libp2p swarm (TCP, Noise, Yamux) from a [`Config`], binds the listen
//!   address, dials the bootnodes and spawns the swarm task; it returns a cloneable [`Handle`]
//!   (commands in) and [`Events`] (gossip, sync requests, peers coming and going): one bounded
//!   queue per kind of traffic, read consensus first, so that a flood of transactions cannot
//!   delay or drop a consensus message.
//! - `service`: the swarm task. It owns the swarm and is the only code that touches it; every
//!   queue it feeds is bounded and it never waits on the node.
//! - `behaviour`: the libp2p protocols and their tuning: gossipsub (two topics per network,
//!   validated by the node before forwarding), the sync request-response protocol, identify,
//!   Kademlia discovery, connection limits and a block list.
//! - `limits`: connection budgets that fresh identities cannot turn into an eclipse: inbound
//!   and outbound apart, a cap on inbound peers per address, slots of their own for priority
//!   peers (bootnodes, reserved peers, [`Config::priority_peers`]), and bans of addresses that
//!   keep producing banned peers.
//! - `guard`: what gossip reaches the node: a per-peer rate budget per topic and replay
//!   suppression, both answered `Ignore` inside p2p without penalty.
//! - `events`: the queues to the node and [`Events`], which reads them by priority.
//! - `codec`: the sync wire format, length-prefixed canonical bincode with a hard cap on reads.
//! - `score`: our own per-peer score; misbehaving peers are disconnected and banned.
//! - `reserved`: the optional set of reserved peers ([`Config::reserved`],
//!   [`Handle::set_reserved`]); while it is in force nobody else may connect, either way.
//! - `types`, `config`, `error`: the public vocabulary; no libp2p type appears in it.
//!
//! Gossip is content-addressed: the message id is the SHA-256 of the wire bytes, the payload
//! followed by the publisher's 8-byte send time (stripped on receipt), so the copies of one send
//! travel once, while the same payload sent again later (consensus re-sends its votes while a
//! view is stuck) is a new message that reaches peers which missed the first. That would let
//! anyone replay valid messages under fresh stamps forever, so the same payload is handed to the
//! node at most once per 750 ms (shorter than any honest re-send, which comes a view timeout,
//! at least 1000 ms, later), and each peer's gossip is rate-limited per topic. Every
//! [`Event::Gossip`] must be answered with [`Handle::report`]; until then the message is held
//! and not forwarded.

mod behaviour;
mod codec;
mod config;
mod error;
mod events;
mod guard;
mod handle;
mod limits;
mod reserved;
mod score;
mod service;
mod types;

pub use config::Config;
pub use error::Error;
pub use events::Events;
pub use handle::{start, Handle};
pub use types::{Event, FinalizedBlock, MessageId, PeerId, PeerInfo, Reply, Request, Response, Topic, Verdict};

/// The largest encoded sync request accepted, in bytes.
pub const SYNC_REQUEST_BYTES_MAX: usize = 1024;
/// The largest encoded sync response accepted, in bytes.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
pub use taksa_consensus::chain::BLOCKS_PER_REQUEST_MAX;
/// Capacity of the p2p -> node queue of consensus gossip, in messages. Its own queue, read first
/// by [`Events::recv`], so that no flood of other traffic delays or drops consensus messages.
pub const CONSENSUS_QUEUE_MAX: usize = 1024;
/// Capacity of the p2p -> node queue of consensus gossip, in bytes of its large messages
/// (proposals): sixteen of the largest. Messages of at most `MESSAGE_BYTES_MAX` (votes,
/// certificates) are bounded by [`CONSENSUS_QUEUE_MAX`] alone, so large ones cannot crowd them out.
pub const CONSENSUS_QUEUE_BYTES_MAX: usize = 16 * taksa_consensus::engine::Message::PROPOSAL_BYTES_MAX;
/// Capacity of the p2p -> node queue of transaction gossip, in messages.
pub const TRANSACTIONS_QUEUE_MAX: usize = 4096;
/// Capacity of the p2p -> node queue of transaction gossip, in bytes: 256 messages of the
/// longest transactions (about 33 MB), three seconds of one peer's gossip budget.
pub const TRANSACTIONS_QUEUE_BYTES_MAX: usize = 256 * taksa_consensus::tx::GOSSIP_BATCH_BYTES_MAX;
/// Capacity of the p2p -> node queue of the other events (sync requests, peers coming and going).
pub const EVENTS_QUEUE_MAX: usize = 4096;
/// Capacity of the node -> p2p command queue.
pub const COMMANDS_QUEUE_MAX: usize = 4096;
/// How long a sync request may take, from sending it to the whole response, in milliseconds.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
