//! Taksa's domain and rules: addresses, transactions, blocks, votes, certificates, genesis, the
//! state transition and the consensus engine, with no IO.
//!
//! Bird's-eye view:
//! - [`codec`]: the one canonical encoding (bincode 2, fixed-width little-endian) and decode
//!   limits.
//! - [`crypto`], [`address`]: SHA-256, ed25519, bech32m addresses.
//! - [`tx`], [`block`], [`vote`], [`genesis`], [`validators`]: the data that is signed, hashed,
//!   stored and sent.
//! - [`governance`]: the validator set as state, changed by validators' votes per epoch.
//! - [`state`]: accounts and the state transition; a block applies all or nothing.
//! - [`pool`]: the transaction pool (admission, bounds, replacement, drops).
//! - [`event`]: the events each finalized block yields, ordered by a `(height, index)` cursor.
//! - [`chain`]: the chain core around the engine (blocks, fetch, commit, sync answers), as a
//!   state machine with the same shape.
//! - [`engine`]: the sans-IO Simplex-style consensus state machine (`step(input, now_ms) ->
//!   effects`); its module docs write out the protocol.
//!
//! This crate never depends on tokio, libp2p, RocksDB or jsonrpsee: everything here is a pure
//! function or a state machine, so it can be tested deterministically.

pub mod address;
pub mod block;
pub mod chain;
pub mod codec;
pub mod crypto;
pub mod engine;
mod error;
pub mod event;
pub mod genesis;
pub mod governance;
pub mod pool;
pub mod receipt;
pub mod state;
pub mod tree;
pub mod tx;
pub mod validators;
pub mod vote;

pub use address::Address;
pub use block::{Block, Header};
pub use crypto::{Hash, Keypair, PublicKey, Signature};
pub use error::Error;
pub use event::{BlockEvent, Cursor, Event, TransferEvent};
pub use genesis::Genesis;
pub use state::{Account, Rules};
pub use tx::{SignedTransaction, Transaction, TxError};
pub use validators::{Epochs, ValidatorSet};
pub use vote::{Certificate, Domain, Evidence, Vote, VoteKind};
