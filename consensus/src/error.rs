//! The crate's error type.

/// What can be wrong with data handed to this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input longer than the limit for its type.
    #[error("{len} bytes is over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes that do not decode.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Bytes left over after a value.
    #[error("{extra} trailing bytes after the value")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Hex that does not parse.
    #[error("{what} must be {expected_bytes} bytes of hex")]
    BadHex {
        /// What was parsed.
        what: &'static str,
        /// Its length in bytes.
        expected_bytes: usize,
    },
    /// An address that does not parse.
    #[error("invalid address `{input}`: {why}")]
    BadAddress {
        /// The input, truncated.
        input: String,
        /// Why.
        why: String,
    },
    /// An amount that does not parse.
    #[error("invalid amount: {0}")]
    BadAmount(String),
    /// A genesis file that is not valid.
    #[error("invalid genesis: {0}")]
    BadGenesis(String),
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A block that is malformed.
    #[error("invalid block: {0}")]
    BadBlock(String),
    /// A vote that is malformed.
    #[error("invalid vote: {0}")]
    BadVote(String),
    /// A certificate that is malformed or short of a quorum.
    #[error("invalid certificate: {0}")]
    BadCertificate(String),
}
