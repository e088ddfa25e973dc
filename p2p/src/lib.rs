//! Taksa's peer-to-peer network: libp2p gossip of transactions and consensus messages and
//! request-response sync of blocks, behind a small handle so that the rest of the node never
//! sees libp2p.
//!
//! Bird's-eye view:
//! - [`start`] builds a libp2p swarm (TCP, Noise, Yamux) from a [`Config`], binds the listen
//!   address, dials the bootnodes and spawns the swarm task; it returns a cloneable [`Handle`]
//!   (commands in) and a bounded receiver of [`Event`]s (gossip, sync requests, peers coming and
//!   going).
//! - `service`: the swarm task. It owns the swarm and is the only code that touches it; every
//!   queue it feeds is bounded and it never waits on the node.
//! - `behaviour`: the libp2p protocols and their tuning: gossipsub (two topics per network,
//!   validated by the node before forwarding), the sync request-response protocol, identify,
//!   Kademlia discovery, connection limits and a block list.
//! - `codec`: the sync wire format, length-prefixed canonical bincode with a hard cap on reads.
//! - `score`: our own per-peer score; misbehaving peers are disconnected and banned.
//! - `reserved`: the optional set of reserved peers ([`Config::reserved`],
//!   [`Handle::set_reserved`]); while it is in force nobody else may connect, either way.
//! - `types`, `config`, `error`: the public vocabulary; no libp2p type appears in it.
//!
//! Gossip is content-addressed: the message id is the SHA-256 of the wire bytes, the payload
//! followed by the publisher's 8-byte send time (stripped on receipt), so the copies of one send
//! travel once, while the same payload sent again later (consensus re-sends its votes while a
//! view is stuck) is a new message that reaches peers which missed the first. Every [`Event::Gossip`] must be answered with
//! [`Handle::report`]; until then the message is held and not forwarded.

mod behaviour;
mod codec;
mod config;
mod error;
mod handle;
mod reserved;
mod score;
mod service;
mod types;

pub use config::Config;
pub use error::Error;
pub use handle::{start, Handle};
pub use types::{Event, FinalizedBlock, MessageId, PeerId, PeerInfo, Reply, Request, Response, Topic, Verdict};

/// The largest encoded sync request accepted, in bytes.
pub const SYNC_REQUEST_BYTES_MAX: usize = 1024;
/// The largest encoded sync response accepted, in bytes.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The most blocks one [`Request::Blocks`] may ask for.
pub const BLOCKS_PER_REQUEST_MAX: u32 = 64;
/// Capacity of the p2p -> node event queue.
pub const EVENTS_QUEUE_MAX: usize = 4096;
/// Capacity of the node -> p2p command queue.
pub const COMMANDS_QUEUE_MAX: usize = 4096;
/// How long a sync request may take, from sending it to the whole response, in milliseconds.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
