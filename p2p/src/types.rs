//! The public vocabulary of the network: peers, topics, gossip verdicts, sync messages and the
//! events the node receives. libp2p types stay behind private fields.

use std::fmt;
use std::str::FromStr;

use taksa_consensus::engine::Message;
use tokio::sync::oneshot;

/// A peer's identity on the network (its libp2p peer id); displays in base58.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) libp2p::PeerId);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses the base58 form that [`fmt::Display`] writes (`12D3KooW...`).
impl FromStr for PeerId {
    type Err = crate::Error;

    fn from_str(input: &str) -> Result<PeerId, crate::Error> {
        let bad =
            |e: libp2p::identity::ParseError| crate::Error::BadPeerId { input: input.into(), reason: e.to_string() };
        input.parse::<libp2p::PeerId>().map(PeerId).map_err(bad)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

/// The id of a gossip message: the SHA-256 of its data. Hand it back in [`crate::Handle::report`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageId(pub(crate) libp2p::gossipsub::MessageId);

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        for b in self.0 .0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// A gossip topic. Each network (chain id and genesis) has its own pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Signed transactions, up to `taksa_consensus::tx::GOSSIP_BATCH_TXS_MAX` per message.
    Transactions,
    /// Consensus messages: proposals, votes and certificates.
    Consensus,
}

impl Topic {
    /// Both topics.
    pub(crate) const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    /// The largest message data accepted on this topic; larger ones are rejected inside p2p.
    pub(crate) fn bytes_max(self) -> usize {
        match self {
            Topic::Transactions => taksa_consensus::tx::GOSSIP_BATCH_BYTES_MAX,
            Topic::Consensus => Message::PROPOSAL_BYTES_MAX,
        }
    }

    /// The last part of the topic name.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Topic::Transactions => "tx",
            Topic::Consensus => "consensus",
        }
    }
}

/// The node's judgement of a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver and forward to our peers.
    Accept,
    /// Invalid: drop it and penalise the peer that sent it.
    Reject,
    /// Not useful (stale, duplicate, cannot judge now): drop it without a penalty.
    Ignore,
}

pub use taksa_consensus::chain::{FinalizedBlock, Request, Response};

/// What the network tells the node.
#[derive(Debug)]
pub enum Event {
    /// A gossip message within its topic's size limit. Must be answered with
    /// [`crate::Handle::report`]; until then it is not forwarded, and unanswered messages expire
    /// inside gossipsub after a few seconds.
    Gossip {
        /// Its topic.
        topic: Topic,
        /// The peer that forwarded it to us (not necessarily its author).
        from: PeerId,
        /// Its id.
        id: MessageId,
        /// The data, at most [`Topic`]'s limit.
        data: Vec<u8>,
    },
    /// A peer's sync request; answer through `reply` within [`crate::REQUEST_TIMEOUT_MS`].
    Request {
        /// The peer asking.
        from: PeerId,
        /// What it asks for.
        request: Request,
        /// Where the answer goes.
        reply: Reply,
    },
    /// The first connection to a peer was established.
    Connected {
        /// The peer.
        peer: PeerId,
    },
    /// The last connection to a peer was closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
}

/// The answer slot of an inbound sync request. Dropping it without sending makes the peer see an
/// error.
pub struct Reply(pub(crate) oneshot::Sender<Response>);

impl Reply {
    /// Sends the response. Does nothing if the request has already timed out or the peer left.
    pub fn send(self, response: Response) {
        // A closed slot means the requester gave up: nobody is left to tell.
        let _ = self.0.send(response);
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

/// A connected peer, as [`crate::Handle::peers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub peer: PeerId,
    /// The remote address of our first connection to it (a multiaddr).
    pub addr: String,
    /// Whether that connection was opened by the peer.
    pub inbound: bool,
    /// Our score of it: 0 is neutral, the peer is banned at -50.
    pub score: i64,
    /// The agent it announced through identify, once known.
    pub agent: Option<String>,
    /// When it connected, in Unix milliseconds.
    pub connected_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_parse_back_from_their_display_form() {
        let peer = PeerId(libp2p::PeerId::random());
        assert_eq!(peer.to_string().parse::<PeerId>().expect("parses"), peer);
    }

    #[test]
    fn malformed_peer_ids_are_refused_with_the_input_named() {
        for input in ["", "not-base58-0OIl", "12D3KooW", "/ip4/127.0.0.1/tcp/1"] {
            match input.parse::<PeerId>() {
                Err(crate::Error::BadPeerId { input: named, .. }) => assert_eq!(named, input),
                other => panic!("{input:?} gave {other:?}"),
            }
        }
    }
}
