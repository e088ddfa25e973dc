//! The contract between the RPC server and the node: what the server may ask, in domain types.
//!
//! The server knows nothing of storage or the mempool; the node implements [`Backend`] over them.
//! Every method is synchronous and may block briefly (a database read, a pool lock): the server
//! calls it on tokio's blocking pool, never on an async worker, except [`Backend::account`].

use std::sync::Arc;

use taksa_consensus::governance::{Governance, Validator};
use taksa_consensus::{
    Account, Address, Block, BlockEvent, Cursor, Epochs, Event, Evidence, Hash, Header, SignedTransaction, TxError,
};
use tokio::sync::broadcast;

/// What the node offers the RPC server.
pub trait Backend: Send + Sync + 'static {
    /// Static network parameters and the current head.
    fn chain_info(&self) -> ChainInfo;
    /// A block by height or hash; `Ok(None)` if the node does not have it.
    fn block(&self, id: BlockId) -> Result<Option<BlockRecord>, BackendError>;
    /// The account's state, with the next nonce counting the node's pool. It may read disk (an
    /// account outside the node's state cache): the server calls it on the blocking pool.
    fn account(&self, address: &Address) -> AccountInfo;
    /// [`Backend::account`] if the account is in memory, else `None`, reading memory only under
    /// locks no one holds across IO: the server calls it on an async worker first, since a hop
    /// to the blocking pool and back cost balance reads more than the read (issue 11).
    fn account_cached(&self, address: &Address) -> Option<AccountInfo>;
    /// The proof of `address`'s account (or of its absence) under the committed head's state
    /// root, with the head and its finalization.
    fn account_proof(&self, address: &Address, height: Option<u64>) -> Result<AccountProof, BackendError>;
    /// One page of the transactions touching `address`, as `query` asks.
    fn history(&self, address: &Address, query: &HistoryQuery) -> Result<HistoryPage, BackendError>;
    /// Admits a transaction to the pool. Idempotent: the same bytes again give `Ok` with the
    /// same hash, not an "already known" error.
    fn submit(&self, tx: SignedTransaction) -> Result<Hash, SubmitError>;
    /// Admits many transactions, each with its own answer, in order: what [`Backend::submit`]
    /// answers for each (a node verifies their signatures together).
    fn submit_many(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, SubmitError>> {
        txs.into_iter().map(|tx| self.submit(tx)).collect()
    }
    /// The receipt of a transaction in a final block ([`taksa_consensus::receipt`]).
    fn tx_proof(&self, hash: &Hash) -> Result<TxProof, BackendError>;
    /// What the node knows of a transaction; `Ok(None)` if it never saw it (or forgot it).
    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, BackendError>;
    /// Liveness and progress figures for operators.
    fn health(&self) -> HealthInfo;
    /// Who this node is on the network: its peer id, listen addresses, role and version.
    fn node_info(&self) -> NodeInfo;
    /// The peers connected now.
    fn peers(&self) -> Vec<PeerRecord>;
    /// Where consensus stands: the view, its leader, the finalized and notarized progress.
    fn consensus_status(&self) -> ConsensusStatus;
    /// Up to `limit` pieces of equivocation evidence this node holds, newest first.
    fn evidence(&self, limit: usize) -> Vec<Evidence>;

    /// Up to `limit` finalized events strictly after `after` (from the very first when `None`)
    /// that match `filter`, in cursor order. Read from storage, so they survive restarts.
    fn events(
        &self,
        after: Option<Cursor>,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<(Cursor, Event)>, BackendError>;
    /// The cursor of the newest finalized event: the head block's own event.
    fn last_cursor(&self) -> Cursor;
    /// A live feed of what happens from now on. A receiver that falls behind the channel gets
    /// `Lagged` and must re-read what it missed with [`Backend::events`]; the feed is a wake-up
    /// and a fast path, storage is the record.
    fn feed(&self) -> broadcast::Receiver<FeedItem>;
    /// Up to `limit` finalized blocks, newest first, strictly below `below_height` (from the
    /// head when `None`).
    fn block_summaries(&self, below_height: Option<u64>, limit: usize) -> Result<Vec<BlockEvent>, BackendError>;
    /// Throughput, block time and totals over the newest `window_blocks` blocks.
    fn stats(&self, window_blocks: usize) -> Result<ChainStats, BackendError>;
    /// Every validator of the current epoch with its signing record.
    fn validators(&self) -> Vec<ValidatorRecord>;
    /// The chain's epochs.
    fn epochs(&self) -> Epochs;
    /// The committed head's height and the governance entry after it: the current epoch's
    /// set, the changes collecting votes and those that passed.
    fn governance(&self) -> (u64, Arc<Governance>);
    /// Epoch `epoch`'s validators as the chain decided them; `None` for an epoch that has not
    /// started.
    fn validator_set(&self, epoch: u64) -> Result<Option<Vec<Validator>>, BackendError>;
    /// What a load balancer needs to decide whether to send traffic here.
    fn readiness(&self) -> Readiness;
    /// The node's figures for Prometheus.
    fn metrics(&self) -> NodeMetrics;
}

/// Which events a reader wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// Every event.
    All,
    /// Only block events.
    Blocks,
    /// Only transfers that this address sent or received.
    Address(Address),
}

/// Something that just happened, on the live feed.
#[derive(Clone, Debug)]
pub enum FeedItem {
    /// A block was committed (final): its events, in cursor order.
    Committed(Arc<Vec<(Cursor, Event)>>),
    /// Consensus notarized a block this node has executed; it is not final yet.
    Notarized(Arc<Header>),
    /// A transaction left the pool without being included; `status` is `Rejected` or `Expired`.
    Dropped {
        /// The transaction's hash.
        hash: Hash,
        /// Why it left.
        status: TxStatus,
    },
}

/// Which way a history page runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryOrder {
    /// Newest first; continuing goes to older entries.
    #[default]
    NewestFirst,
    /// Oldest first; continuing goes to newer entries.
    OldestFirst,
}

/// Which of an address's transactions a history page lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryFilter {
    /// Sent and received.
    #[default]
    All,
    /// Only those the address sent.
    Sent,
    /// Only those the address received.
    Received,
}

/// A history request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Start strictly after this `(height, index)` position in `order`; from the newest (or
    /// oldest) entry when `None`.
    pub after: Option<(u64, u32)>,
    /// Which way the page runs.
    pub order: HistoryOrder,
    /// Which entries it lists.
    pub filter: HistoryFilter,
    /// The most entries.
    pub limit: usize,
}

/// Throughput and totals over recent blocks, for the explorer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// How many blocks the rates cover.
    pub window_blocks: u64,
    /// Transactions in those blocks.
    pub window_txs: u64,
    /// Transactions per second over the window (0 when it spans no time).
    pub tps: f64,
    /// The mean time between the window's blocks, in milliseconds.
    pub block_time_ms: f64,
    /// The mean time from a block's timestamp to its commit on this node, over blocks this node
    /// committed live (not from sync), in milliseconds; `None` before there is one.
    pub finality_lag_ms: Option<f64>,
    /// The newest block's height.
    pub head_height: u64,
    /// The newest finalized block's height.
    pub finalized_height: u64,
    /// Transactions finalized since genesis.
    pub total_txs: u64,
    /// Accounts with a non-zero balance or nonce.
    pub total_accounts: u64,
    /// Validators in the set.
    pub validators: usize,
    /// Transactions waiting in the pool.
    pub mempool_txs: usize,
}

/// A validator and how it has signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorRecord {
    /// Its name in genesis.
    pub name: String,
    /// Its address.
    pub address: Address,
    /// Finalized blocks whose certificate it signed.
    pub signed: u64,
    /// Finalized blocks whose certificate lacks it.
    pub missed: u64,
    /// Finalized blocks it proposed.
    pub proposed: u64,
    /// The newest finalized block it signed, if any.
    pub last_signed_height: Option<u64>,
    /// When this node last received a valid consensus message from it, in Unix milliseconds;
    /// `None` if never since start (and always on a node without p2p, except for itself).
    pub last_seen_ms: Option<u64>,
}

/// The facts behind `GET /ready`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the node is catching up with the network.
    pub syncing: bool,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node should have peers (it runs p2p and the network has other validators).
    pub needs_peers: bool,
    /// `Ok` if a test write to storage succeeded; otherwise why not.
    pub storage: Result<(), String>,
}

/// The node's figures for Prometheus; the RPC server adds its own request counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeMetrics {
    /// The newest block's height.
    pub head_height: u64,
    /// The newest finalized block's height.
    pub finalized_height: u64,
    /// Transactions finalized since genesis.
    pub txs_finalized_total: u64,
    /// Transactions in the pool.
    pub mempool_txs: usize,
    /// Encoded bytes of the pool's transactions.
    pub mempool_bytes: usize,
    /// Connected peers.
    pub peers: usize,
    /// The consensus view the node is in.
    pub consensus_view: u64,
    /// The epoch consensus runs.
    pub epoch: u64,
    /// Its validator set's size.
    pub validator_set_size: usize,
    /// Views this node left by timeout since it started.
    pub consensus_timeouts_total: u64,
    /// Every validator's record (the `missed` count becomes `validator_missed_blocks`).
    pub validators: Vec<ValidatorRecord>,
    /// Bytes the database takes on disk.
    pub storage_bytes: u64,
    /// Non-zero accounts in the state after the head.
    pub accounts: u64,
    /// Accounts in the state cache.
    pub state_cache_accounts: usize,
    /// State-tree nodes in the state cache.
    pub state_cache_nodes: usize,
    /// Bytes the state cache's tables take.
    pub state_cache_bytes: usize,
    /// Whether the node is catching up.
    pub syncing: bool,
}

/// How a block is named: by height on the finalized chain, or by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    /// The block at this height.
    Height(u64),
    /// The block with this hash.
    Hash(Hash),
}

/// Network parameters and the chain's tip.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainInfo {
    /// The genesis chain id.
    pub chain_id: String,
    /// The hash of the genesis block.
    pub genesis_hash: Hash,
    /// The bech32m prefix of addresses on this network.
    pub address_hrp: String,
    /// The newest block.
    pub head: Header,
    /// The newest finalized block (the head, while every committed block is final).
    pub finalized: Header,
    /// The validators, by name and address, in set order.
    pub validators: Vec<(String, Address)>,
    /// The target time between blocks, in milliseconds.
    pub block_time_ms: u64,
    /// The lowest fee a transaction may pay, in base units.
    pub fee_floor: u128,
    /// The lowest fee of a transfer that creates its recipient's account, in base units.
    pub account_creation_fee: u128,
    /// The token's ticker, for display.
    pub token_symbol: String,
    /// How many decimal places a display amount has (base units per token = 10^decimals).
    pub token_decimals: u8,
    /// How far the node is from the network's tip.
    pub sync: SyncInfo,
}

/// Catch-up progress.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncInfo {
    /// Whether the node is fetching blocks it is missing.
    pub syncing: bool,
    /// The highest height peers have announced, when known.
    pub target_height: Option<u64>,
    /// The recent rate of blocks applied while syncing, when measured.
    pub blocks_per_second: Option<f64>,
}

/// A stored block and whether it is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// The block.
    pub block: Block,
    /// Whether the block can no longer be reverted.
    pub finalized: bool,
}

/// An account as a wallet sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountInfo {
    /// The committed account state.
    pub account: Account,
    /// The nonce the next transaction should carry, counting the sender's pooled transactions.
    pub next_nonce: u64,
    /// How many of the sender's transactions wait in the pool.
    pub pending: usize,
}

/// What [`Backend::tx_proof`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxProof {
    /// No final block here holds the transaction (unknown, or still pending).
    NotFinal,
    /// It is final, but no finalization certificate is stored within
    /// [`taksa_consensus::receipt::RECEIPT_HEADERS_MAX`] blocks of it yet.
    Uncertified {
        /// Its block's height.
        height: u64,
    },
    /// The receipt.
    Receipt(Box<taksa_consensus::receipt::PaymentReceipt>),
}

/// An account proven against a final header ([`Backend::account_proof`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The committed head the proof is under.
    pub header: Header,
    /// The account after it (zero if absent).
    pub account: Account,
    /// The state tree's proof.
    pub proof: taksa_consensus::tree::Proof,
    /// The head's finalization certificate, when stored with it.
    pub finalization: Option<taksa_consensus::Certificate>,
}

/// One committed transaction touching an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The block height.
    pub height: u64,
    /// The index within the block.
    pub index: u32,
    /// The block's timestamp, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// The transaction.
    pub tx: SignedTransaction,
    /// The transaction's hash.
    pub hash: Hash,
    /// The address sent it.
    pub sent: bool,
    /// The address received it.
    pub received: bool,
}

/// One page of history, in the query's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// The entries.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page in the same order starts (as `after`); `None` when nothing further
    /// exists now.
    pub next: Option<(u64, u32)>,
    /// Where a page in the reverse order starts (as `after`, reversed) to list what lies before
    /// this page's first entry; `None` when nothing does.
    pub prev: Option<(u64, u32)>,
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In the pool, not yet in a block.
    Pending,
    /// In a finalized block.
    Finalized {
        /// The block height.
        height: u64,
        /// The index within the block.
        index: u32,
        /// The block's hash.
        block_hash: Hash,
        /// The block's timestamp, in Unix milliseconds.
        timestamp_ms: u64,
    },
    /// Dropped because it can never be included (for example its nonce was used by another).
    Rejected {
        /// A stable snake_case reason, as [`TxError::reason`].
        reason: String,
        /// A human-readable explanation.
        message: String,
        /// For reason `replaced`: the transaction with the same sender and nonce that
        /// replaced it.
        replaced_by: Option<Hash>,
    },
    /// Dropped because its `valid_until_height` passed.
    Expired {
        /// A stable snake_case reason.
        reason: String,
        /// A human-readable explanation.
        message: String,
    },
}

/// What the node knows of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    /// The transaction's hash.
    pub hash: Hash,
    /// The transaction, if the node still has its body.
    pub tx: Option<SignedTransaction>,
    /// Its status.
    pub status: TxStatus,
}

/// Node liveness figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthInfo {
    /// The newest block's height.
    pub head_height: u64,
    /// The newest finalized block's height.
    pub finalized_height: u64,
    /// Transactions in the pool.
    pub mempool_txs: usize,
    /// Encoded bytes of the pool's transactions.
    pub mempool_bytes: usize,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is catching up with the network.
    pub syncing: bool,
}

/// This node's identity on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The libp2p peer id; `None` when the node runs without p2p (the dev chain).
    pub peer_id: Option<String>,
    /// The multiaddrs peers can dial, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<String>,
    /// Whether the node votes.
    pub role: NodeRole,
    /// The node software's version.
    pub version: String,
}

/// What part a node plays in consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// The node holds a validator key and votes.
    Validator {
        /// The validator's address.
        address: Address,
    },
    /// The node follows and serves the chain without voting.
    Full,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The peer's libp2p peer id.
    pub peer_id: String,
    /// The peer's multiaddr on this connection.
    pub address: String,
    /// Whether the peer dialled us.
    pub inbound: bool,
    /// The node's reputation score for the peer; misbehaviour lowers it.
    pub score: i64,
    /// The agent string the peer announced, if any.
    pub agent: Option<String>,
    /// How long the peer has been connected, in milliseconds.
    pub connected_ms: u64,
}

/// Where consensus stands on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// The view the node is in.
    pub view: u64,
    /// The leader of that view.
    pub leader: Address,
    /// Whether this node is in the validator set.
    pub is_validator: bool,
    /// The newest finalized block's height.
    pub finalized_height: u64,
    /// The view in which that block was finalized.
    pub finalized_view: u64,
    /// The newest finalized block's hash.
    pub finalized_hash: Hash,
    /// The newest view with a notarized block.
    pub notarized_view: u64,
    /// Consecutive views left by nullification (a timeout or a bad leader) up to now.
    pub failed_views: u64,
    /// Pieces of equivocation evidence the node holds.
    pub evidence_count: usize,
    /// Validators in the set.
    pub validators: usize,
    /// Votes needed for a certificate.
    pub quorum: usize,
}

/// Why the pool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool is full and the transaction does not pay enough to evict another.
    #[error("the pool is full ({txs_max} transactions, its byte limit, or its room for transactions behind a nonce gap); retry later")]
    PoolFull {
        /// The pool's capacity.
        txs_max: usize,
    },
    /// The sender already has the most pooled transactions one sender may have.
    #[error("the sender already has {per_sender_max} transactions in the pool; wait for some to finalize")]
    SenderLimit {
        /// The per-sender limit.
        per_sender_max: usize,
    },
    /// The sender already has the most transactions one sender may have behind a nonce gap.
    #[error("the sender already has {queued_per_sender_max} transactions waiting behind a nonce gap; send nonce {next_nonce} first")]
    QueuedLimit {
        /// The per-sender limit of queued transactions.
        queued_per_sender_max: usize,
        /// The nonce that fills the sender's first gap.
        next_nonce: u64,
    },
    /// A different transaction with the same sender and nonce is pooled and this one does not
    /// pay enough more to replace it.
    #[error("fee {fee} does not replace the pooled transaction with this nonce, which pays {pooled_fee}; a replacement pays at least {needed}")]
    ReplacementUnderpriced {
        /// The offered fee.
        fee: u128,
        /// The pooled transaction's fee.
        pooled_fee: u128,
        /// The lowest fee that would replace the pooled one.
        needed: u128,
    },
    /// The pooled transaction with this nonce was replaced too often.
    #[error("the transaction with this nonce was already replaced {replacements_max} times; wait for it to finalize or expire")]
    ReplacementLimit {
        /// The most replacements per sender and nonce.
        replacements_max: u8,
    },
    /// The node's admission queue stayed full: nothing was decided; retry in a moment.
    #[error("the node is busy admitting other transactions; retry in a moment")]
    Busy,
    /// The node failed (storage, a closed channel).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A failure inside the node while answering a read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Storage or another internal part failed.
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// The node does not keep the state at that height.
    #[error("no state kept at height {height}: this node proves heights {oldest} to its head {head} (--state-history-blocks)")]
    ProofUnavailable {
        /// The height asked.
        height: u64,
        /// The lowest height it proves.
        oldest: u64,
        /// Its finalized head.
        head: u64,
    },
}
