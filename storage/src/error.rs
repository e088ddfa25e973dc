//! The crate's error type. Every message says what is wrong and what the operator can do.

use std::path::PathBuf;

use taksa_consensus::Hash;

/// What can go wrong opening, reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data folder cannot be inspected or created.
    #[error("cannot use data folder {}: {source}; check that the path and its permissions are right", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path holds something other than a Taksa database.
    #[error("{} is not a Taksa database ({why}): use another --data-dir or remove it", path.display())]
    NotADatabase {
        /// The folder.
        path: PathBuf,
        /// What was found there.
        why: String,
    },
    /// Another process (usually another node) holds the database lock.
    #[error(
        "the database in {} is in use by another process ({source}): stop the other taksa node that uses this \
         --data-dir, or use another --data-dir",
        path.display()
    )]
    Locked {
        /// The folder.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// RocksDB refuses to open the folder for another reason.
    #[error(
        "cannot open the database in {}: {source}; if it is damaged, remove the data folder and resync",
        path.display()
    )]
    Open {
        /// The folder.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The folder holds another chain.
    #[error(
        "data folder {} belongs to chain `{stored_chain_id}` (genesis {stored_genesis}), not `{expected_chain_id}` \
         (genesis {expected_genesis}): use another --data-dir or remove it",
        path.display()
    )]
    GenesisMismatch {
        /// The folder.
        path: PathBuf,
        /// The chain id of the stored genesis block, or a note that it is unreadable.
        stored_chain_id: String,
        /// The stored genesis hash.
        stored_genesis: Hash,
        /// The chain id of the genesis the node was started with.
        expected_chain_id: String,
        /// Its hash.
        expected_genesis: Hash,
    },
    /// The folder was written by an older Taksa whose layout lacks what this one needs.
    #[error(
        "the database in {} has layout version {found}, but this node needs version {needed} (its blocks or \
         indexes are stored differently); move the folder aside and start again: a full node or validator \
         syncs the chain back from its peers (`taksa dev --reset` starts the dev chain over, \
         `scripts/testnet.sh start --reset` the local testnet)",
        path.display()
    )]
    OldSchema {
        /// The folder.
        path: PathBuf,
        /// The version found (1 for databases written before versions were recorded).
        found: u32,
        /// The version this code writes.
        needed: u32,
    },
    /// A stored value is missing, does not decode, or breaks an invariant.
    #[error("the database in {} is corrupt: {what}; remove the data folder and resync", path.display())]
    Corrupt {
        /// The folder.
        path: PathBuf,
        /// What is wrong and where (column family, key, height).
        what: String,
    },
    /// The stored state tree does not match the head block's state root.
    #[error(
        "the database in {} is corrupt: the stored state tree has root {computed}, but the head block at height \
         {head_height} says {expected}; remove the data folder and resync",
        path.display()
    )]
    StateMismatch {
        /// The folder.
        path: PathBuf,
        /// The head height.
        head_height: u64,
        /// The head header's state root.
        expected: Hash,
        /// The root of the stored tree.
        computed: Hash,
    },
    /// A proof was asked at a height whose state the store does not keep.
    #[error(
        "this node proves accounts at heights {oldest} to {head} (its finalized head), not at {height}; it keeps \
         the state of the newest --state-history-blocks heights"
    )]
    HistoryUnavailable {
        /// The height asked.
        height: u64,
        /// The lowest height it proves.
        oldest: u64,
        /// The head.
        head: u64,
    },
    /// A block handed to [`crate::Store::commit_block`] does not extend the head.
    #[error(
        "block {hash} at height {height} (parent {parent_hash}) does not extend the head {head_hash} at height \
         {head_height}"
    )]
    NotChild {
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: u64,
        /// Its parent hash.
        parent_hash: Hash,
        /// The stored head's hash.
        head_hash: Hash,
        /// The stored head's height.
        head_height: u64,
    },
    /// The state tree changes handed to [`crate::Store::commit_block`] do not give the header's state root.
    #[error("block {hash} at height {height}: the state tree changes give root {computed}, the header says {claimed}")]
    StateRootMismatch {
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: u64,
        /// The header's state root.
        claimed: Hash,
        /// The root the changes produce.
        computed: Hash,
    },
    /// The finalization certificate handed to [`crate::Store::commit_block`] is for another block.
    #[error("the finalization certificate names block {cert_block:?}, not block {hash} at height {height}")]
    CertificateMismatch {
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: u64,
        /// The block the certificate names.
        cert_block: Option<Hash>,
    },
    /// The execution outcome handed to [`crate::Store::commit_block`] does not hold one receipt
    /// per transaction, which the block's events need.
    #[error("block {hash} at height {height} holds {txs} transactions but its outcome {receipts} receipts")]
    ReceiptsMismatch {
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: u64,
        /// Its transaction count.
        txs: usize,
        /// The receipts given.
        receipts: usize,
    },
    /// An epoch's last block handed to [`crate::Store::commit_block`] without its own
    /// finalization, which the chain of validator sets needs.
    #[error("block {hash} at height {height} ends its epoch and must be committed with its finalization")]
    BoundaryWithoutFinalization {
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: u64,
    },
    /// A value to store is larger than what the store reads back.
    #[error("{what} is {len} bytes encoded; the limit is {max}")]
    ValueTooLarge {
        /// Which value.
        what: &'static str,
        /// Its encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A RocksDB read or write failed.
    #[error("storage {op} failed: {source}; check free disk space and the data folder's permissions")]
    Db {
        /// What was being done.
        op: &'static str,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
}
