//! Taksa storage: the finalized chain and its account state in RocksDB, checked on open and
//! written one block per atomic, fsynced batch.
//!
//! Bird's-eye view:
//! - [`Store`] is the shared handle. [`Store::open`] initialises a new folder from genesis or
//!   checks an existing one (same genesis, head present, the newest heights linked to their
//!   parents, the stored tree's root the head's state root) and refuses to start otherwise.
//! - The head header is served from memory, updated after each [`Store::commit_block`]; the
//!   accounts and the state tree live in RocksDB behind a cache bounded in bytes (`cache.rs`),
//!   which commits write through; blocks, certificates, the transaction index, per-address
//!   history and drop records are read from RocksDB.
//! - Each block's commit also writes its events (`(height, index)` cursors), its summary, the
//!   transaction total and validator signing statistics; `events.rs` reads them.
//! - The layout (column families and key encodings) is in `schema.rs`.

// StorageError carries paths, hashes and messages so that its Display says what to do; it is
// returned only on cold paths (open, a failed write), where its size costs nothing.
#![allow(clippy::result_large_err)]

mod cache;
mod check;
mod commit;
mod db;
mod error;
mod events;
mod pending;
mod schema;
mod store;
mod usage;

pub use cache::{STATE_CACHE_BYTES_DEFAULT, STATE_CACHE_BYTES_MIN};
pub use check::verify_chain;
pub use error::StorageError;
pub use events::{HistoryFilter, EVENTS_LIMIT_MAX};
pub use schema::{DroppedTx, HistoryItem, TxLocation, ValidatorStats};
pub use store::{Peeking, Store, StoreOptions, BLOCKS_RANGE_MAX, HISTORY_LIMIT_MAX};
pub use usage::{ColumnUsage, DiskUsage};
