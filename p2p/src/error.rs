//! The crate's error type.

use crate::PeerId;

/// What can go wrong in the network layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listen or bootnode address that does not parse or resolve.
    #[error("invalid address `{input}`: {reason}")]
    BadAddress {
        /// The address as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A peer id that is not a base58 libp2p peer id.
    #[error("invalid peer id `{input}`: {reason}")]
    BadPeerId {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The swarm could not be built (identity, transport or protocol configuration).
    #[error("cannot set up the network ({what}): {reason}")]
    Setup {
        /// The part that failed.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Data to publish over its topic's size limit (in bytes), or a request for more blocks
    /// than [`crate::BLOCKS_PER_REQUEST_MAX`]; peers would refuse either and penalise us.
    #[error("{len} is over the limit of {max}")]
    TooLarge {
        /// The size asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The command queue, or the table of requests in flight, is full; try again later.
    #[error("the network is busy")]
    Busy,
    /// No response within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Closed,
    /// A request failed at or on the way to the peer (unreachable, connection lost, no answer).
    #[error("request to {peer} failed: {reason}")]
    Remote {
        /// The peer asked.
        peer: PeerId,
        /// Why it failed.
        reason: String,
    },
    /// The peer answered with bytes over the limit or that do not decode.
    #[error("{peer} sent an invalid response: {reason}")]
    Decode {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        reason: String,
    },
}
