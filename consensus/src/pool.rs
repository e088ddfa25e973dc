//! The transaction pool: admission checks, bounded in count, bytes and per sender, with
//! same-nonce replacement by a higher fee and idempotent resubmission.
//!
//! Signatures are checked by the caller before it takes the pool's lock, so that admission
//! verifies on every core. Per sender the pool keeps two kinds of transaction, like Ethereum's
//! `pending` and `queued`:
//!
//! - **Pending**: the gap-free run of nonces from the account's committed nonce. These are
//!   proposed, gossiped, and what `next_nonce` counts; a run may grow to the per-sender cap
//!   ([`Limits::per_sender_max`]).
//! - **Queued**: nonces after a gap, waiting for the ones before them (gossip delivers a
//!   sender's transactions in any order). A queued transaction is never proposed and never
//!   pays, so queued ones are held on a short leash: at most [`NONCE_WINDOW`] past the end of
//!   the sender's run, at most [`Limits::queued_per_sender_max`] per sender and
//!   [`Limits::queued_max`] in all, for at most [`QUEUED_LIFETIME_BLOCKS`] blocks, and the
//!   lowest fee is evicted first when their room or the pool is full. They are not gossiped
//!   until the gap fills ([`Mempool::take_promoted`]).
//!
//! The pool does no IO and has one owner: the node's chain actor, which admits transactions
//! and runs the chain core ([`crate::chain`]), which updates the pool when a block commits (in
//! the same step that makes the commit's batch, so the drop records go into that batch).
//! [`PoolAccess`] is what the core sees of it. Its maps are persistent (`imbl`): a clone costs
//! a few reference counts and shares everything, so the actor publishes a clone to readers
//! after each step, and later changes copy only the paths they touch.

use std::cell::RefCell;
use std::sync::Arc;

use imbl::{HashMap, HashSet, OrdMap, OrdSet, Vector};

use bincode::{Decode, Encode};

use crate::block::BLOCK_TXS_MAX;
use crate::state::StateReader;
use crate::{Address, Hash, SignedTransaction, TxError};

/// How many transactions that recently left the pool it remembers. The chain core takes them
/// out when it makes a block's commit batch, and the store shows them a moment later, when the
/// batch is written: meanwhile a transaction committed a moment ago must not come back from
/// gossip, and a wallet asking for one must not be told it is unknown.
const RECENT_MAX: usize = 2 * BLOCK_TXS_MAX;

/// How far past the end of a sender's gap-free run a transaction may wait for the ones before
/// it.
pub const NONCE_WINDOW: u64 = 64;

/// How many blocks a transaction may wait behind a nonce gap before it is dropped as expired.
pub const QUEUED_LIFETIME_BLOCKS: u64 = 600;

/// How many times one sender's transaction with one nonce may be replaced while pooled. Each
/// replacement leaves a record on disk (so `tx_get` can say what replaced it) and costs nothing
/// until a version is included, so the number is bounded.
pub const REPLACEMENTS_MAX: u8 = 4;

/// The pool's bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most transactions held.
    pub txs_max: usize,
    /// Most encoded bytes held.
    pub bytes_max: usize,
    /// Most transactions held per sender, pending and queued.
    pub per_sender_max: usize,
    /// Most transactions held behind nonce gaps, over all senders.
    pub queued_max: usize,
    /// Most transactions held behind nonce gaps per sender.
    pub queued_per_sender_max: usize,
    /// The chain's fee floor, for the account-creation rule
    /// ([`crate::state::check_account_creation`]); 0 leaves the rule to block execution.
    pub fee_floor: u128,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            txs_max: 100_000,
            bytes_max: 64 * 1024 * 1024,
            per_sender_max: 256,
            queued_max: 10_000,
            queued_per_sender_max: 64,
            fee_floor: 0,
        }
    }
}

/// The reason of a queued transaction evicted from a full pool. Such drops are announced to
/// subscribers but not recorded ([`Mempool::evict`]).
pub const EVICTED: &str = "evicted";

/// The least fee that replaces a pooled transaction paying `fee`: more than a tenth above it.
pub fn replacement_fee(fee: u128) -> u128 {
    fee.saturating_add(fee / 10).saturating_add(1)
}

/// A refusal that [`Mempool::admit`] gives `tx` whatever the pool holds, decided from its
/// sender's committed account alone: a nonce already used, or a balance that does not cover the
/// amount and fee (the pool counts pending spends on top). Admission asks it before verifying
/// the signature, so transfers from empty or spent accounts cost a lookup, not a verification.
pub fn refusal_before_signature(tx: &crate::Transaction, committed: &crate::Account) -> Option<TxError> {
    if tx.nonce < committed.nonce {
        return Some(TxError::NonceTooLow { expected: committed.nonce, got: tx.nonce });
    }
    let Some(needed) = tx.amount.checked_add(tx.fee) else { return Some(TxError::Overflow) };
    (needed > committed.balance).then_some(TxError::InsufficientBalance { needed, available: committed.balance })
}

/// Why the pool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool is full.
    #[error("the pool is full ({txs_max} transactions, its byte limit, or its room for transactions behind a nonce gap); retry later")]
    PoolFull {
        /// The pool's capacity.
        txs_max: usize,
    },
    /// The sender has too many pooled transactions.
    #[error("the sender already has {per_sender_max} transactions in the pool; wait for some to finalize")]
    SenderLimit {
        /// The per-sender limit.
        per_sender_max: usize,
    },
    /// The sender has too many transactions waiting behind a nonce gap.
    #[error("the sender already has {queued_per_sender_max} transactions waiting behind a nonce gap; send nonce {next_nonce} first")]
    QueuedLimit {
        /// The per-sender limit of queued transactions.
        queued_per_sender_max: usize,
        /// The nonce that fills the sender's first gap.
        next_nonce: u64,
    },
    /// A replacement must pay more.
    #[error("fee {fee} does not replace the pooled transaction with this nonce, which pays {pooled_fee}; a replacement pays at least {needed}")]
    ReplacementUnderpriced {
        /// The submitted fee.
        fee: u128,
        /// The pooled transaction's fee.
        pooled_fee: u128,
        /// The least a replacement pays ([`replacement_fee`]).
        needed: u128,
    },
    /// The pooled transaction with this nonce was replaced too often.
    #[error("the transaction with this nonce was already replaced {replacements_max} times; wait for it to finalize or expire")]
    ReplacementLimit {
        /// [`REPLACEMENTS_MAX`].
        replacements_max: u8,
    },
    /// The transaction is in a block that was just committed.
    #[error("the transaction is already in a committed block")]
    Committed,
}

/// What admission did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Newly added to the sender's gap-free run: it will be proposed.
    New,
    /// Newly added behind a nonce gap (or replacing a transaction there): held until the gap
    /// fills, neither proposed nor gossiped meanwhile.
    Queued,
    /// The same bytes were already pooled.
    AlreadyPending,
    /// Replaced the pending transaction with this hash.
    Replaced(Hash),
}

impl Admitted {
    /// Whether the transaction is newly proposable here, so peers should hear of it.
    pub fn gossip(&self) -> bool {
        matches!(self, Admitted::New | Admitted::Replaced(_))
    }
}

/// A transaction that left the pool without being finalized, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The transaction.
    pub hash: Hash,
    /// "expired" for expiries, otherwise "rejected".
    pub expired: bool,
    /// The machine-readable reason ([`TxError::reason`], `replaced` or `evicted`).
    pub reason: String,
    /// A message for humans.
    pub message: String,
    /// The transaction that replaced it (same sender and nonce, higher fee).
    pub replaced_by: Option<Hash>,
}

impl Dropped {
    /// What storage keeps of a drop at head height `height`.
    pub fn record(&self, height: u64) -> DroppedTx {
        let reason = if self.expired { "expired".to_owned() } else { self.reason.clone() };
        DroppedTx { reason, message: self.message.clone(), height, replaced_by: self.replaced_by }
    }
}

/// Why a transaction left the pool without being included, as storage keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct DroppedTx {
    /// The machine-readable reason (for example a [`TxError::reason`]).
    pub reason: String,
    /// A message for humans.
    pub message: String,
    /// The head height when it was dropped.
    pub height: u64,
    /// For `replaced`: the transaction that replaced it.
    pub replaced_by: Option<Hash>,
}

#[derive(Clone)]
struct Entry {
    stx: Arc<SignedTransaction>,
    bytes: usize,
    arrival: u64,
    /// The height of the next block when it last became queued (a queued one's age).
    queued_since: u64,
    /// Behind a nonce gap.
    queued: bool,
    /// How many transactions with its sender and nonce it replaced, in a chain.
    replacements: u8,
}

impl Entry {
    fn queue_key(&self, hash: Hash) -> (u128, u64, Hash) {
        (self.stx.tx.fee, self.arrival, hash)
    }
}

/// One sender's pooled transactions.
#[derive(Clone, Default)]
struct Sender {
    /// By nonce.
    txs: OrdMap<u64, Hash>,
    /// The nonce after the gap-free run: those below are pending, those above queued.
    run_end: u64,
    /// How many are queued.
    queued: usize,
}

/// The pool. Cloning it is O(1): the clone is a snapshot that later changes do not touch.
#[derive(Clone)]
pub struct Mempool {
    limits: Limits,
    by_hash: HashMap<Hash, Entry>,
    by_sender: HashMap<Address, Sender>,
    /// The queued transactions, cheapest (then oldest) first: the order of eviction.
    queued: OrdSet<(u128, u64, Hash)>,
    bytes: usize,
    arrivals: u64,
    /// Transactions that recently left the pool or were committed, oldest first (at most
    /// [`RECENT_MAX`]).
    recent: Vector<Hash>,
    /// Those of them that are in a committed block.
    recent_included: HashSet<Hash>,
    /// Those of them that this pool held, with their bodies.
    recent_bodies: HashMap<Hash, Arc<SignedTransaction>>,
    /// Per sender, the nonce after its transactions in the last two committed blocks (this
    /// pool's view of them): admission and `next_nonce` read the store, which shows a commit a
    /// moment after the pool learns of it.
    committed_next: [HashMap<Address, u64>; 2],
    /// Drops made by admission (replaced, evicted) that the owner has not taken yet.
    drops: Vec<Dropped>,
    /// Queued transactions that became pending, which the owner has not taken yet (at most
    /// [`RECENT_MAX`]: an owner that does not gossip them need not take them).
    promoted: Vec<Hash>,
    /// The height of the next block, as of the latest admission or commit.
    next_height: u64,
}

impl Mempool {
    /// An empty pool with these bounds.
    pub fn new(limits: Limits) -> Mempool {
        Mempool {
            limits,
            by_hash: HashMap::new(),
            by_sender: HashMap::new(),
            queued: OrdSet::new(),
            bytes: 0,
            arrivals: 0,
            recent: Vector::new(),
            recent_included: HashSet::new(),
            recent_bodies: HashMap::new(),
            committed_next: [HashMap::new(), HashMap::new()],
            drops: Vec::new(),
            promoted: Vec::new(),
            next_height: 0,
        }
    }

    /// How many transactions are pooled, pending and queued.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// How many of them wait behind a nonce gap.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is pooled.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Their encoded bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether this transaction is pooled.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The pooled transaction with this hash.
    pub fn get(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.by_hash.get(hash).map(|e| &*e.stx)
    }

    /// Whether this pooled transaction waits behind a nonce gap.
    pub fn is_queued(&self, hash: &Hash) -> bool {
        self.by_hash.get(hash).is_some_and(|e| e.queued)
    }

    /// How many transactions of `addr` are pooled.
    pub fn pending_of(&self, addr: &Address) -> usize {
        self.by_sender.get(addr).map_or(0, |s| s.txs.len())
    }

    /// The nonce the sender's next transaction should use, counting the pool: the end of its
    /// gap-free run.
    pub fn next_nonce(&self, addr: &Address, state: &(impl StateReader + ?Sized)) -> u64 {
        let committed = self.nonce_of(addr, state);
        self.run_end(addr, committed)
    }

    fn run_end(&self, addr: &Address, committed: u64) -> u64 {
        self.by_sender.get(addr).map_or(committed, |s| s.run_end.max(committed))
    }

    /// Admits a transaction whose signature and stateless fields the caller has checked.
    /// `next_height` is the height of the next block (for expiry). Transactions it replaced or
    /// evicted wait in [`Mempool::take_drops`], queued ones it made pending in
    /// [`Mempool::take_promoted`].
    pub fn admit(
        &mut self,
        stx: SignedTransaction,
        hash: Hash,
        bytes: usize,
        state: &(impl StateReader + ?Sized),
        next_height: u64,
    ) -> Result<Admitted, AdmitError> {
        if self.by_hash.contains_key(&hash) {
            return Ok(Admitted::AlreadyPending);
        }
        if self.recent_included.contains(&hash) {
            return Err(AdmitError::Committed);
        }
        self.next_height = self.next_height.max(next_height);
        let tx = &stx.tx;
        if let Some(until) = tx.valid_until_height {
            if until < next_height {
                return Err(TxError::Expired { valid_until: until, height: next_height }.into());
            }
        }
        let mut account = state.account(&tx.from);
        account.nonce = self.nonce_of(&tx.from, state);
        if tx.nonce < account.nonce {
            return Err(TxError::NonceTooLow { expected: account.nonce, got: tx.nonce }.into());
        }
        let run_end = self.run_end(&tx.from, account.nonce);
        if tx.nonce > run_end.saturating_add(NONCE_WINDOW) {
            return Err(TxError::NonceGap { expected: run_end, got: tx.nonce }.into());
        }
        let queued = tx.nonce > run_end;
        let sender = self.by_sender.get(&tx.from);
        let replaced = sender.and_then(|s| s.txs.get(&tx.nonce)).copied();
        let mut replacements = 0;
        if let Some(old) = replaced.and_then(|h| self.by_hash.get(&h)) {
            let needed = replacement_fee(old.stx.tx.fee);
            if tx.fee < needed {
                return Err(AdmitError::ReplacementUnderpriced { fee: tx.fee, pooled_fee: old.stx.tx.fee, needed });
            }
            if old.replacements >= REPLACEMENTS_MAX {
                return Err(AdmitError::ReplacementLimit { replacements_max: REPLACEMENTS_MAX });
            }
            replacements = old.replacements + 1;
        } else {
            if sender.map_or(0, |s| s.txs.len()) >= self.limits.per_sender_max {
                return Err(AdmitError::SenderLimit { per_sender_max: self.limits.per_sender_max });
            }
            if queued && sender.map_or(0, |s| s.queued) >= self.limits.queued_per_sender_max {
                return Err(AdmitError::QueuedLimit {
                    queued_per_sender_max: self.limits.queued_per_sender_max,
                    next_nonce: run_end,
                });
            }
        }
        if tx.action.is_some() && !state.governance().is_validator(&tx.from) {
            // Votes on the set pay no fee floor: only its members may send them (G1).
            return Err(TxError::Governance("only a validator of the current set may vote on the set".into()).into());
        }
        let spent_by_others = self.pending_spend(&tx.from, replaced, account.nonce);
        let needed = tx.amount.checked_add(tx.fee).ok_or(TxError::Overflow)?;
        let total = spent_by_others.checked_add(needed).ok_or(TxError::Overflow)?;
        if total > account.balance {
            return Err(TxError::InsufficientBalance { needed: total, available: account.balance }.into());
        }
        crate::state::check_account_creation(state, tx, self.limits.fee_floor)?;
        if replaced.is_none() {
            self.make_room(queued, tx.fee, bytes)?;
        }
        let nonce = tx.nonce;
        let from = tx.from;
        let fee = tx.fee;
        if let Some(old) = replaced {
            self.remove_entry(&old, true);
            self.drops.push(Dropped {
                hash: old,
                expired: false,
                reason: "replaced".into(),
                message: format!("replaced by {hash}, which has the same sender and nonce and pays fee {fee}"),
                replaced_by: Some(hash),
            });
        }
        self.insert(stx, hash, bytes, queued, replacements);
        if let Some(sender) = self.by_sender.get_mut(&from) {
            // Removing the replaced one may have emptied and forgotten the sender's record.
            sender.run_end = sender.run_end.max(run_end);
        }
        if queued {
            return Ok(Admitted::Queued);
        }
        if nonce == run_end {
            self.promote_after(&from, nonce);
        }
        Ok(replaced.map_or(Admitted::New, Admitted::Replaced))
    }

    /// Evicts the cheapest queued transactions until a new one (queued or not, paying `fee`,
    /// of `bytes`) fits. A queued newcomer must pay more than what it evicts; a pending one
    /// outranks any queued one. Pending transactions are never evicted: they pay when proposed.
    fn make_room(&mut self, queued: bool, fee: u128, bytes: usize) -> Result<(), AdmitError> {
        let full = AdmitError::PoolFull { txs_max: self.limits.txs_max };
        loop {
            let queue_full = queued && self.queued.len() >= self.limits.queued_max;
            let pool_full =
                self.by_hash.len() >= self.limits.txs_max || self.bytes.saturating_add(bytes) > self.limits.bytes_max;
            if !queue_full && !pool_full {
                return Ok(());
            }
            let Some(&(cheapest, _, victim)) = self.queued.get_min() else { return Err(full) };
            if queued && fee <= cheapest {
                return Err(full);
            }
            self.evict(&victim);
        }
    }

    /// Evicts a queued transaction. Evictions cost the evicted sender nothing and the evictor
    /// only a higher fee it never pays, so they are announced but neither written to disk nor
    /// remembered as leaving: the transaction is forgotten (`tx_not_found`).
    fn evict(&mut self, victim: &Hash) {
        let Some(entry) = self.by_hash.get(victim) else {
            // Never expected: a key without its entry. Drop the key so the caller's loop ends.
            let stale: Vec<_> = self.queued.iter().filter(|k| k.2 == *victim).copied().collect();
            for key in stale {
                self.queued.remove(&key);
            }
            return;
        };
        let fee = entry.stx.tx.fee;
        self.remove_entry(victim, false);
        self.drops.push(Dropped {
            hash: *victim,
            expired: false,
            reason: EVICTED.into(),
            message: format!(
                "evicted from a full pool while it waited behind a nonce gap, by a transaction paying more than its fee {fee}"
            ),
            replaced_by: None,
        });
    }

    /// Transactions replaced or evicted since the last call, for the owner to record (all but
    /// [`EVICTED`]) and announce. An owner that does not take them loses at most the newest
    /// evictions beyond [`RECENT_MAX`]; a commit takes the rest into its records.
    pub fn take_drops(&mut self) -> Vec<Dropped> {
        std::mem::take(&mut self.drops)
    }

    /// Queued transactions that became pending since the last call (their gap filled), for the
    /// owner to gossip now.
    pub fn take_promoted(&mut self) -> Vec<Arc<SignedTransaction>> {
        let promoted = std::mem::take(&mut self.promoted);
        let mut seen = std::collections::HashSet::with_capacity(promoted.len());
        // In promotion order (each sender's in nonce order), each once, and only if still pending.
        promoted
            .iter()
            .filter(|h| seen.insert(**h))
            .filter_map(|h| self.by_hash.get(h))
            .filter(|e| !e.queued)
            .map(|e| e.stx.clone())
            .collect()
    }

    fn note_promoted(&mut self, hash: Hash) {
        if self.promoted.len() < RECENT_MAX {
            self.promoted.push(hash);
        }
    }

    /// What the sender's pooled transactions at or above `committed_nonce` spend.
    fn pending_spend(&self, sender: &Address, except: Option<Hash>, committed_nonce: u64) -> u128 {
        self.by_sender.get(sender).map_or(0, |s| {
            s.txs
                .range(committed_nonce..)
                .map(|(_, h)| h)
                .filter(|h| Some(**h) != except)
                .filter_map(|h| self.by_hash.get(h))
                .map(|e| e.stx.tx.amount.saturating_add(e.stx.tx.fee))
                .fold(0u128, u128::saturating_add)
        })
    }

    fn insert(&mut self, stx: SignedTransaction, hash: Hash, bytes: usize, queued: bool, replacements: u8) {
        self.arrivals += 1;
        let from = stx.tx.from;
        let entry = Entry {
            stx: Arc::new(stx),
            bytes,
            arrival: self.arrivals,
            queued_since: self.next_height,
            queued,
            replacements,
        };
        let sender = self.by_sender.entry(from).or_default();
        sender.txs.insert(entry.stx.tx.nonce, hash);
        if queued {
            sender.queued += 1;
            self.queued.insert(entry.queue_key(hash));
        }
        self.bytes += bytes;
        self.by_hash.insert(hash, entry);
    }

    /// After the sender's pending `nonce` was added at the end of its run: the queued ones
    /// right after it join the run.
    fn promote_after(&mut self, from: &Address, nonce: u64) {
        let Some(sender) = self.by_sender.get_mut(from) else { return };
        let mut next = nonce.saturating_add(1);
        let joining: Vec<Hash> = sender
            .txs
            .range(next..)
            .map_while(|(n, h)| {
                let joins = *n == next;
                next = next.saturating_add(1);
                joins.then_some(*h)
            })
            .collect();
        sender.run_end = nonce.saturating_add(1).saturating_add(joining.len() as u64);
        sender.queued = sender.queued.saturating_sub(joining.len());
        for h in joining {
            if let Some(e) = self.by_hash.get_mut(&h) {
                e.queued = false;
                self.queued.remove(&e.queue_key(h));
                self.note_promoted(h);
            }
        }
    }

    /// A transaction that left the pool a moment ago (included in a block or dropped) whose
    /// block or drop record the store may not show yet: a reader that finds it in neither the
    /// pool nor the store reads the store again, and otherwise reports it pending.
    pub fn leaving(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.recent_bodies.get(hash).map(|stx| &**stx)
    }

    /// The sender's committed nonce: the state's, or past a transaction this pool saw committed
    /// a moment ago whose block the state may not show yet.
    fn nonce_of(&self, addr: &Address, state: &(impl StateReader + ?Sized)) -> u64 {
        let recent = self.committed_next.iter().filter_map(|m| m.get(addr)).max().copied().unwrap_or(0);
        state.account(addr).nonce.max(recent)
    }

    /// Keeps the newest [`RECENT_MAX`] of the recent transactions.
    fn forget_old(&mut self) {
        while self.recent.len() > RECENT_MAX {
            if let Some(old) = self.recent.pop_front() {
                self.recent_included.remove(&old);
                self.recent_bodies.remove(&old);
            }
        }
    }

    /// Removes a transaction without reclassifying its sender's others: for a replacement
    /// (same nonce), a queued one, or before the caller reclassifies the sender. `remember`
    /// keeps it among the recently left ([`Mempool::leaving`]) until its record is written.
    fn remove_entry(&mut self, hash: &Hash, remember: bool) -> Option<Arc<SignedTransaction>> {
        let entry = self.by_hash.remove(hash)?;
        if remember {
            if !self.recent_included.contains(hash) {
                self.recent.push_back(*hash);
            }
            self.recent_bodies.insert(*hash, entry.stx.clone());
        }
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        if entry.queued {
            self.queued.remove(&entry.queue_key(*hash));
        }
        let from = entry.stx.tx.from;
        if let Some(s) = self.by_sender.get_mut(&from) {
            s.txs.remove(&entry.stx.tx.nonce);
            if entry.queued {
                s.queued = s.queued.saturating_sub(1);
            }
            if s.txs.is_empty() {
                self.by_sender.remove(&from);
            }
        }
        Some(entry.stx)
    }

    /// Sorts the sender's transactions into its gap-free run from `committed` (pending) and
    /// the rest (queued).
    fn reclassify(&mut self, from: &Address, committed: u64) {
        let Some(sender) = self.by_sender.get_mut(from) else { return };
        let mut run_end = committed;
        let mut queued = 0;
        let mut changed = Vec::new();
        for (nonce, h) in sender.txs.iter() {
            let pending = *nonce == run_end;
            if pending {
                run_end = run_end.saturating_add(1);
            } else {
                queued += 1;
            }
            changed.push((*h, !pending));
        }
        sender.run_end = run_end;
        sender.queued = queued;
        for (h, queued) in changed {
            let Some(e) = self.by_hash.get_mut(&h) else { continue };
            if e.queued == queued {
                continue;
            }
            e.queued = queued;
            let key = e.queue_key(h);
            if queued {
                e.queued_since = self.next_height;
                self.queued.insert(key);
            } else {
                self.queued.remove(&key);
                self.note_promoted(h);
            }
        }
    }

    /// Up to `max` transactions for a proposal on `state`: each sender's gap-free run from its
    /// nonce in `state`, in nonce order, senders interleaved by arrival, so one busy sender
    /// cannot starve the others.
    pub fn candidates(&self, max: usize, state: &(impl StateReader + ?Sized)) -> Vec<SignedTransaction> {
        let mut keyed: Vec<(usize, u64, &SignedTransaction)> = Vec::with_capacity(self.by_hash.len().min(max * 2));
        for (sender, pooled) in self.by_sender.iter() {
            let mut next = state.account(sender).nonce;
            let run: Vec<&Entry> = pooled
                .txs
                .range(next..)
                .map_while(|(n, h)| {
                    let e = (*n == next).then(|| self.by_hash.get(h)).flatten()?;
                    next = next.saturating_add(1);
                    Some(e)
                })
                .collect();
            let first_arrival = run.iter().map(|e| e.arrival).min().unwrap_or(0);
            for (pos, e) in run.into_iter().enumerate() {
                keyed.push((pos, first_arrival, &e.stx));
            }
        }
        keyed.sort_by_key(|(pos, arrival, _)| (*pos, *arrival));
        keyed.into_iter().take(max).map(|(_, _, stx)| stx.clone()).collect()
    }

    /// Removes transactions the proposer found invalid, with their reasons. The sender's
    /// transactions after a removed pending one wait behind the gap it leaves.
    pub fn reject(&mut self, refused: &[(Hash, TxError)]) -> Vec<Dropped> {
        let mut out = Vec::new();
        for (h, e) in refused {
            let queued = self.is_queued(h);
            if let Some(stx) = self.remove_entry(h, true) {
                out.push(dropped(*h, e));
                if !queued {
                    self.demote_from(&stx.tx.from, stx.tx.nonce);
                }
            }
        }
        self.forget_old();
        out
    }

    /// After the sender's pending `nonce` left the pool: the run ends there, and those after
    /// it are queued.
    fn demote_from(&mut self, from: &Address, nonce: u64) {
        let Some(sender) = self.by_sender.get_mut(from) else { return };
        if sender.run_end <= nonce {
            return;
        }
        sender.run_end = nonce;
        let demoted: Vec<Hash> = sender.txs.range(nonce..).map(|(_, h)| *h).collect();
        for h in demoted {
            let Some(e) = self.by_hash.get_mut(&h) else { continue };
            if !e.queued {
                e.queued = true;
                e.queued_since = self.next_height;
                self.queued.insert(e.queue_key(h));
                sender.queued += 1;
            }
        }
    }

    /// After a block commits: removes its transactions, then drops what the new state makes
    /// invalid (nonce taken, expired, balance no longer covers the run, waited too long behind
    /// a gap), with reasons.
    pub fn on_commit(
        &mut self,
        included: &[Hash],
        state: &(impl StateReader + ?Sized),
        next_height: u64,
    ) -> Vec<Dropped> {
        self.next_height = self.next_height.max(next_height);
        let [newer, older] = &mut self.committed_next;
        std::mem::swap(newer, older);
        newer.clear();
        for h in included {
            if let Some(stx) = self.remove_entry(h, true) {
                let next = stx.tx.nonce.saturating_add(1);
                let entry = self.committed_next[0].entry(stx.tx.from).or_insert(next);
                *entry = (*entry).max(next);
            }
            // `imbl` answers the value it replaced: `None` when newly recorded.
            if self.recent_included.insert(*h).is_none() && !self.recent_bodies.contains_key(h) {
                self.recent.push_back(*h);
            }
        }
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        let mut out = Vec::new();
        for sender in senders {
            out.extend(self.revalidate_sender(&sender, state, next_height));
        }
        // Demotions since the last commit may have overfilled the queued room.
        while self.queued.len() > self.limits.queued_max {
            let Some(&(_, _, victim)) = self.queued.get_min() else { break };
            self.evict(&victim);
        }
        // Admission drops not taken yet go into this commit's records, except for what it
        // included after all; evictions stay for the owner to announce (they are not recorded).
        let (evicted, recorded): (Vec<Dropped>, Vec<Dropped>) =
            std::mem::take(&mut self.drops).into_iter().partition(|d| d.reason == EVICTED);
        self.drops = evicted;
        self.drops.truncate(RECENT_MAX);
        let (evicted, kept): (Vec<Dropped>, Vec<Dropped>) = out.into_iter().partition(|d| d.reason == EVICTED);
        let room = RECENT_MAX.saturating_sub(self.drops.len());
        self.drops.extend(evicted.into_iter().take(room));
        let mut out = kept;
        out.extend(recorded.into_iter().filter(|d| !self.recent_included.contains(&d.hash)));
        self.forget_old();
        out
    }

    /// Drops the sender's transactions the new state makes invalid: nonces already taken,
    /// expired ones, in the gap-free run the unaffordable, and after it those past the window,
    /// past their lifetime, or over the sender's queued cap (the highest nonces). The rest
    /// after a gap (or after a dropped one) stay queued until the gap fills.
    fn revalidate_sender(
        &mut self,
        sender: &Address,
        state: &(impl StateReader + ?Sized),
        next_height: u64,
    ) -> Vec<Dropped> {
        let account = state.account(sender);
        let pooled: Vec<Hash> =
            self.by_sender.get(sender).map(|s| s.txs.values().copied().collect()).unwrap_or_default();
        let mut out = Vec::new();
        let mut run_end = account.nonce;
        let mut in_run = true;
        let mut spend: u128 = 0;
        let mut queued = 0;
        for h in pooled {
            let Some((tx, queued_since)) = self.by_hash.get(&h).map(|e| (e.stx.tx.clone(), e.queued_since)) else {
                continue;
            };
            let extends_run = in_run && tx.nonce == run_end;
            let drop = if tx.nonce < account.nonce {
                Some(dropped(h, &TxError::NonceTooLow { expected: account.nonce, got: tx.nonce }))
            } else if let Some(until) = tx.valid_until_height.filter(|u| *u < next_height) {
                Some(dropped(h, &TxError::Expired { valid_until: until, height: next_height }))
            } else if let Some(Err(e)) =
                tx.action.as_ref().filter(|_| tx.nonce == account.nonce).map(|a| state.governance().precheck(a, sender))
            {
                // The sender's next vote, refused by the committed set (voted already, passed,
                // not a validator): no block will take it, and it would hold its nonce until it
                // expired. (Later ones may depend on it, so only the next is judged here.)
                Some(dropped(h, &e))
            } else if extends_run {
                spend = spend.saturating_add(tx.amount.saturating_add(tx.fee));
                (spend > account.balance)
                    .then(|| dropped(h, &TxError::InsufficientBalance { needed: spend, available: account.balance }))
            } else if tx.nonce > run_end.saturating_add(NONCE_WINDOW) {
                Some(dropped(h, &TxError::NonceGap { expected: run_end, got: tx.nonce }))
            } else if next_height.saturating_sub(queued_since) > QUEUED_LIFETIME_BLOCKS {
                Some(Dropped {
                    hash: h,
                    expired: true,
                    reason: "expired".into(),
                    message: format!(
                        "waited {QUEUED_LIFETIME_BLOCKS} blocks behind a nonce gap; nonce {run_end} was never sent"
                    ),
                    replaced_by: None,
                })
            } else if queued >= self.limits.queued_per_sender_max {
                Some(Dropped {
                    hash: h,
                    expired: false,
                    reason: EVICTED.into(),
                    message: format!(
                        "the sender has more than {} transactions behind a nonce gap (nonce {run_end} is missing)",
                        self.limits.queued_per_sender_max
                    ),
                    replaced_by: None,
                })
            } else {
                None
            };
            match drop {
                Some(d) => {
                    // The rest cannot apply until this nonce is sent again.
                    in_run = in_run && tx.nonce < account.nonce;
                    self.remove_entry(&h, d.reason != EVICTED);
                    out.push(d);
                }
                None if extends_run => run_end = run_end.saturating_add(1),
                None => {
                    in_run = false;
                    queued += 1;
                }
            }
        }
        self.reclassify(sender, account.nonce);
        out
    }
}

/// The pool as the chain core reaches it. Its owner (the node's chain actor, a simulated node)
/// keeps it in a [`RefCell`] and lends it to each step.
pub trait PoolAccess {
    /// Whether the transaction is pooled (its signature was checked on admission).
    fn contains(&self, hash: &Hash) -> bool;
    /// See [`Mempool::candidates`].
    fn candidates(&self, max: usize, state: &dyn StateReader) -> Vec<SignedTransaction>;
    /// See [`Mempool::reject`].
    fn reject(&self, refused: &[(Hash, TxError)]) -> Vec<Dropped>;
    /// See [`Mempool::on_commit`].
    fn on_commit(&self, included: &[Hash], state: &dyn StateReader, next_height: u64) -> Vec<Dropped>;
}

impl PoolAccess for RefCell<Mempool> {
    fn contains(&self, hash: &Hash) -> bool {
        self.borrow().contains(hash)
    }
    fn candidates(&self, max: usize, state: &dyn StateReader) -> Vec<SignedTransaction> {
        self.borrow().candidates(max, state)
    }
    fn reject(&self, refused: &[(Hash, TxError)]) -> Vec<Dropped> {
        self.borrow_mut().reject(refused)
    }
    fn on_commit(&self, included: &[Hash], state: &dyn StateReader, next_height: u64) -> Vec<Dropped> {
        self.borrow_mut().on_commit(included, state, next_height)
    }
}

fn dropped(hash: Hash, e: &TxError) -> Dropped {
    Dropped {
        hash,
        expired: matches!(e, TxError::Expired { .. }),
        reason: e.reason().to_owned(),
        message: e.to_string(),
        replaced_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Account, Keypair, Transaction};
    use std::collections::BTreeMap;

    const CHAIN: &str = "t";

    fn tx(key: &Keypair, to: u8, amount: u128, fee: u128, nonce: u64) -> (SignedTransaction, Hash) {
        let stx = Transaction {
            chain_id: CHAIN.into(),
            from: Address(key.public()),
            to: Address(Keypair::from_seed(&[to; 32]).public()),
            amount,
            fee,
            nonce,
            valid_until_height: None,
            memo: None,
            action: None,
        }
        .sign(key, &Hash::ZERO);
        let h = stx.hash();
        (stx, h)
    }

    fn state(key: &Keypair, balance: u128, nonce: u64) -> BTreeMap<Address, Account> {
        BTreeMap::from([(Address(key.public()), Account { balance, nonce })])
    }

    #[test]
    fn a_clone_is_a_snapshot_that_later_changes_do_not_touch() {
        let key = Keypair::from_seed(&[1; 32]);
        let sender = Address(key.public());
        let mut pool = Mempool::new(Limits::default());
        let (a, ha) = tx(&key, 2, 10, 1, 0);
        pool.admit(a, ha, 100, &state(&key, 1000, 0), 1).expect("admitted");
        let snapshot = pool.clone();
        let (b, hb) = tx(&key, 2, 10, 1, 1);
        pool.admit(b, hb, 100, &state(&key, 1000, 0), 1).expect("admitted");
        pool.on_commit(&[ha], &state(&key, 989, 1), 2);
        assert!(snapshot.contains(&ha) && !snapshot.contains(&hb), "the snapshot keeps its moment");
        assert_eq!((snapshot.len(), snapshot.bytes()), (1, 100));
        assert_eq!(snapshot.next_nonce(&sender, &state(&key, 1000, 0)), 1);
        assert!(snapshot.leaving(&ha).is_none());
        assert!(!pool.contains(&ha) && pool.contains(&hb), "the pool moved on");
        assert!(pool.leaving(&ha).is_some());
        assert_eq!(pool.next_nonce(&sender, &state(&key, 989, 1)), 2);
    }

    #[test]
    fn votes_on_the_set_come_only_from_validators_and_leave_once_the_set_refuses_them() {
        use crate::governance::{Action, Change, Governance, Validator};
        use crate::state::MemState;
        let v = Keypair::from_seed(&[1; 32]);
        let newcomer = Address(Keypair::from_seed(&[9; 32]).public());
        let vote = |key: &Keypair, nonce: u64| {
            let add = Action::Vote(Change::Add { key: newcomer, name: "n".into() });
            let stx = Transaction::vote(CHAIN, Address(key.public()), nonce, add).sign(key, &Hash::ZERO);
            let h = stx.hash();
            (stx, h)
        };
        let set = |members: Vec<Address>| {
            Governance::genesis(members.into_iter().map(|address| Validator { address, name: "v".into() }).collect())
        };
        let before = MemState::new([], set(vec![Address(v.public())]));
        let mut pool = Mempool::new(Limits::default());
        let (outsider, ho) = vote(&Keypair::from_seed(&[2; 32]), 0);
        assert!(matches!(pool.admit(outsider, ho, 100, &before, 1), Err(AdmitError::Rejected(TxError::Governance(_)))));
        let (mine, hm) = vote(&v, 0);
        assert_eq!(pool.admit(mine, hm, 100, &before, 1), Ok(Admitted::New), "no fee floor for a vote");
        // Another block applied the same change: this vote can never be included.
        let after = MemState::new([], set(vec![Address(v.public()), newcomer]));
        let dropped = pool.on_commit(&[], &after, 2);
        assert_eq!(dropped.iter().map(|d| (d.hash, d.reason.as_str())).collect::<Vec<_>>(), vec![(hm, "governance")]);
        assert!(!pool.contains(&hm));
    }

    #[test]
    fn resubmitting_the_same_bytes_is_idempotent() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (stx, h) = tx(&k, 2, 10, 1, 0);
        assert_eq!(pool.admit(stx.clone(), h, 100, &s, 1), Ok(Admitted::New));
        assert_eq!(pool.admit(stx, h, 100, &s, 1), Ok(Admitted::AlreadyPending));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn a_transaction_committed_a_moment_ago_is_not_admitted_again_while_the_store_lags() {
        let k = Keypair::from_seed(&[1; 32]);
        let before = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (stx, h) = tx(&k, 2, 10, 1, 0);
        assert_eq!(pool.admit(stx.clone(), h, 100, &before, 1), Ok(Admitted::New));
        let after = state(&k, 989, 1);
        assert!(pool.on_commit(&[h], &after, 2).is_empty());
        // Gossip brings it back before the committed state is visible to admission.
        assert_eq!(pool.admit(stx.clone(), h, 100, &before, 1), Err(AdmitError::Committed));
        assert_eq!(pool.len(), 0);
        // A reader that does not find it in the store yet still learns of it.
        assert_eq!(pool.leaving(&h), Some(&stx));
        // And a wallet asking for its next nonce is not handed the one just used.
        assert_eq!(pool.next_nonce(&Address(k.public()), &before), 1);
        let (reuse, hr) = tx(&k, 3, 10, 1, 0);
        assert!(matches!(
            pool.admit(reuse, hr, 100, &before, 1),
            Err(AdmitError::Rejected(TxError::NonceTooLow { expected: 1, got: 0 }))
        ));
    }

    #[test]
    fn pending_spends_count_against_the_balance() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 100, 0);
        let mut pool = Mempool::new(Limits::default());
        let (a, ha) = tx(&k, 2, 60, 1, 0);
        let (b, hb) = tx(&k, 2, 60, 1, 1);
        assert!(pool.admit(a, ha, 100, &s, 1).is_ok());
        let err = pool.admit(b, hb, 100, &s, 1);
        assert!(matches!(err, Err(AdmitError::Rejected(TxError::InsufficientBalance { needed: 122, available: 100 }))));
    }

    #[test]
    fn what_is_refused_before_the_signature_the_pool_refuses_whatever_it_holds() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut refused = 0;
        for (balance, committed_nonce) in [(0, 0), (100, 0), (100, 3), (u128::MAX, 2)] {
            let s = state(&k, balance, committed_nonce);
            let account = s.get(&Address(k.public())).copied().unwrap_or_default();
            for pending in [false, true] {
                for (amount, fee, nonce) in
                    [(0, 1, 0), (50, 1, 3), (99, 1, 3), (100, 1, 3), (1, 1, 2), (u128::MAX, 1, 3)]
                {
                    let mut pool = Mempool::new(Limits::default());
                    if pending {
                        let (p, hp) = tx(&k, 2, 10, 1, committed_nonce);
                        let _ = pool.admit(p, hp, 100, &s, 1);
                    }
                    let (t, h) = tx(&k, 2, amount, fee, nonce);
                    if let Some(why) = refusal_before_signature(&t.tx, &account) {
                        refused += 1;
                        assert!(pool.admit(t, h, 100, &s, 1).is_err(), "{why} refused early, so the pool must refuse");
                    }
                }
            }
        }
        assert!(refused >= 10, "the grid exercises refusals: {refused}");
        let s = state(&k, 100, 3);
        let (ok, _) = tx(&k, 2, 99, 1, 3);
        assert_eq!(refusal_before_signature(&ok.tx, &s[&Address(k.public())]), None, "an affordable next nonce passes");
    }

    #[test]
    fn used_and_far_nonces_are_refused_and_next_nonce_counts_the_gap_free_run() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1000, 5);
        let mut pool = Mempool::new(Limits::default());
        let (low, hl) = tx(&k, 2, 1, 1, 4);
        assert!(matches!(pool.admit(low, hl, 10, &s, 1), Err(AdmitError::Rejected(TxError::NonceTooLow { .. }))));
        let (far, hf) = tx(&k, 2, 1, 1, 5 + NONCE_WINDOW + 1);
        assert!(matches!(
            pool.admit(far, hf, 10, &s, 1),
            Err(AdmitError::Rejected(TxError::NonceGap { expected: 5, .. }))
        ));
        let (gap, hg) = tx(&k, 2, 1, 1, 7);
        assert_eq!(pool.admit(gap, hg, 10, &s, 1), Ok(Admitted::Queued), "queued behind a gap");
        let (ok, ho) = tx(&k, 2, 1, 1, 5);
        assert!(pool.admit(ok, ho, 10, &s, 1).is_ok());
        assert_eq!(pool.next_nonce(&Address(k.public()), &s), 6, "7 waits for 6");
    }

    #[test]
    fn out_of_order_arrivals_are_proposed_once_the_gap_fills() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (t2, h2) = tx(&k, 2, 1, 1, 2);
        let (t0, h0) = tx(&k, 2, 1, 1, 0);
        let (t1, h1) = tx(&k, 2, 1, 1, 1);
        pool.admit(t2, h2, 10, &s, 1).expect("2");
        pool.admit(t0, h0, 10, &s, 1).expect("0");
        let nonces = |pool: &Mempool| pool.candidates(10, &s).iter().map(|t| t.tx.nonce).collect::<Vec<_>>();
        assert_eq!(nonces(&pool), vec![0], "2 is not proposed while 1 is missing");
        assert!(pool.on_commit(&[], &s, 2).is_empty(), "a queued transaction is not dropped");
        pool.admit(t1, h1, 10, &s, 1).expect("1");
        assert_eq!(nonces(&pool), vec![0, 1, 2]);
        assert_eq!(pool.next_nonce(&Address(k.public()), &s), 3);
    }

    #[test]
    fn same_nonce_replacement_needs_a_higher_fee() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (a, ha) = tx(&k, 2, 10, 100, 0);
        pool.admit(a, ha, 10, &s, 1).expect("admitted");
        let (cheap, hc) = tx(&k, 3, 10, 105, 0);
        assert_eq!(
            pool.admit(cheap, hc, 10, &s, 1),
            Err(AdmitError::ReplacementUnderpriced { fee: 105, pooled_fee: 100, needed: 111 }),
            "data.fee is the submitted fee"
        );
        let (rich, hr) = tx(&k, 3, 10, 111, 0);
        assert_eq!(pool.admit(rich, hr, 10, &s, 1), Ok(Admitted::Replaced(ha)));
        assert!(!pool.contains(&ha) && pool.contains(&hr) && pool.len() == 1);
        let drops = pool.take_drops();
        assert_eq!(drops.len(), 1, "{drops:?}");
        assert_eq!((drops[0].hash, drops[0].reason.as_str(), drops[0].replaced_by), (ha, "replaced", Some(hr)));
        assert_eq!(drops[0].record(7).replaced_by, Some(hr), "storage keeps the replacing hash");
        assert!(pool.take_drops().is_empty(), "taken once");
        let sender = Address(k.public());
        assert_eq!(pool.next_nonce(&sender, &s), 1, "the replacement keeps the sender's run");
        let (next, hn) = tx(&k, 3, 10, 1, 1);
        assert_eq!(pool.admit(next, hn, 10, &s, 1), Ok(Admitted::New), "and the next nonce extends it");
    }

    #[test]
    fn a_transfer_that_creates_an_account_must_pay_the_creation_fee_to_be_admitted() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1_000_000, 0);
        let mut pool = Mempool::new(Limits { fee_floor: 10, ..Limits::default() });
        // `tx` sends to a key with no account in `s`.
        let (cheap, hc) = tx(&k, 2, 10, 999, 0);
        assert_eq!(
            pool.admit(cheap, hc, 10, &s, 1),
            Err(AdmitError::Rejected(TxError::AccountCreationFee { fee: 999, needed: 1000 }))
        );
        let (paid, hp) = tx(&k, 2, 10, 1000, 0);
        assert_eq!(pool.admit(paid, hp, 10, &s, 1), Ok(Admitted::New));
    }

    #[test]
    fn a_nonce_may_be_replaced_a_bounded_number_of_times() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1_000_000, 0);
        let mut pool = Mempool::new(Limits::default());
        let mut fee = 100;
        let (first, h) = tx(&k, 2, 10, fee, 0);
        pool.admit(first, h, 10, &s, 1).expect("admitted");
        for _ in 0..REPLACEMENTS_MAX {
            fee = replacement_fee(fee);
            let (bump, hb) = tx(&k, 2, 10, fee, 0);
            assert!(matches!(pool.admit(bump, hb, 10, &s, 1), Ok(Admitted::Replaced(_))));
        }
        let (more, hm) = tx(&k, 2, 10, replacement_fee(fee), 0);
        assert_eq!(
            pool.admit(more, hm, 10, &s, 1),
            Err(AdmitError::ReplacementLimit { replacements_max: REPLACEMENTS_MAX })
        );
        assert_eq!(pool.take_drops().len(), usize::from(REPLACEMENTS_MAX), "one record per replacement");
    }

    /// A cheaply made transaction: the pool trusts its caller to have checked signatures.
    fn unsigned(from: Address, nonce: u64, fee: u128) -> (SignedTransaction, Hash) {
        let stx = SignedTransaction {
            tx: Transaction {
                chain_id: CHAIN.into(),
                from,
                to: Address(crate::crypto::PublicKey([7; 32])),
                amount: 1,
                fee,
                nonce,
                valid_until_height: None,
                memo: None,
                action: None,
            },
            signature: crate::crypto::Signature([0; 64]),
        };
        let h = stx.hash();
        (stx, h)
    }

    fn sender_address(i: u32) -> Address {
        let mut a = [0xa5; 32];
        a[..4].copy_from_slice(&i.to_le_bytes());
        Address(crate::crypto::PublicKey(a))
    }

    #[test]
    fn a_sender_may_have_200_consecutive_transfers_in_flight() {
        let k = Keypair::from_seed(&[1; 32]);
        let sender = Address(k.public());
        let s = state(&k, 1_000_000, 0);
        let mut pool = Mempool::new(Limits::default());
        for n in 0..200 {
            let (t, h) = unsigned(sender, n, 1);
            assert_eq!(pool.admit(t, h, 100, &s, 1), Ok(Admitted::New), "nonce {n}");
        }
        assert_eq!(pool.next_nonce(&sender, &s), 200);
        assert_eq!(pool.queued_len(), 0);
        assert_eq!(pool.candidates(1000, &s).len(), 200, "all of the run is proposable");
        // Past the run the window applies, and the error agrees with itself.
        let (far, hf) = unsigned(sender, 200 + NONCE_WINDOW + 1, 1);
        let err = pool.admit(far, hf, 100, &s, 1).expect_err("beyond the window");
        assert_eq!(err, AdmitError::Rejected(TxError::NonceGap { expected: 200, got: 265 }));
        assert_eq!(err.to_string(), "nonce 265 leaves a gap: the account's next nonce is 200");
        let (gap, hg) = unsigned(sender, 200 + NONCE_WINDOW, 1);
        assert_eq!(pool.admit(gap, hg, 100, &s, 1), Ok(Admitted::Queued), "within the window after the run");
    }

    #[test]
    fn queued_transactions_cannot_clog_the_pool() {
        // About 1,563 accounts with 64 transactions each behind a gap filled the 100,000 slots.
        let senders = 1_563u32;
        let mut s = BTreeMap::new();
        for i in 0..senders {
            s.insert(sender_address(i), Account { balance: 1_000_000, nonce: 0 });
        }
        let honest = Keypair::from_seed(&[9; 32]);
        s.insert(Address(honest.public()), Account { balance: 1_000_000, nonce: 0 });
        let limits = Limits::default();
        let mut pool = Mempool::new(limits.clone());
        let mut held = 0;
        for i in 0..senders {
            for nonce in 1..=64 {
                let (t, h) = unsigned(sender_address(i), nonce, 1);
                match pool.admit(t, h, 200, &s, 1) {
                    Ok(Admitted::Queued) => held += 1,
                    Err(AdmitError::QueuedLimit { next_nonce: 0, .. } | AdmitError::PoolFull { .. }) => {}
                    other => panic!("sender {i} nonce {nonce}: {other:?}"),
                }
            }
        }
        assert_eq!(held, limits.queued_max, "the queued room fills, and no more");
        assert_eq!(pool.queued_len(), limits.queued_max);
        assert!(pool.by_sender.values().all(|s| s.queued <= limits.queued_per_sender_max));
        let (t, h) = tx(&honest, 2, 10, 1, 0);
        assert_eq!(pool.admit(t, h, 200, &s, 1), Ok(Admitted::New), "an honest transfer still gets in");
        let proposed = pool.candidates(BLOCK_TXS_MAX, &s);
        assert_eq!(proposed.iter().map(|t| t.hash()).collect::<Vec<_>>(), vec![h], "queued ones are never proposed");
    }

    #[test]
    fn the_cheapest_queued_transaction_is_evicted_first_and_pending_ones_never() {
        let limits = Limits { txs_max: 4, queued_max: 2, ..Limits::default() };
        let mut s = BTreeMap::new();
        for i in 0..5 {
            s.insert(sender_address(i), Account { balance: 1_000_000, nonce: 0 });
        }
        let mut pool = Mempool::new(limits);
        let (q1, h1) = unsigned(sender_address(0), 1, 5);
        let (q2, h2) = unsigned(sender_address(1), 1, 3);
        assert_eq!(pool.admit(q1, h1, 100, &s, 1), Ok(Admitted::Queued));
        assert_eq!(pool.admit(q2, h2, 100, &s, 1), Ok(Admitted::Queued));
        let (same, hs) = unsigned(sender_address(2), 1, 3);
        assert_eq!(pool.admit(same, hs, 100, &s, 1), Err(AdmitError::PoolFull { txs_max: 4 }), "must pay more");
        let (more, hm) = unsigned(sender_address(2), 1, 4);
        assert_eq!(pool.admit(more, hm, 100, &s, 1), Ok(Admitted::Queued));
        assert!(!pool.contains(&h2) && pool.contains(&h1), "the cheapest went");
        let drops = pool.take_drops();
        assert_eq!((drops.len(), drops[0].hash, drops[0].reason.as_str()), (1, h2, EVICTED));
        assert!(pool.leaving(&h2).is_none(), "an eviction is forgotten, not reported pending");
        // Pending transactions fill the rest, then outrank queued ones of any fee.
        for i in 3..5 {
            let (p, hp) = unsigned(sender_address(i), 0, 1);
            assert_eq!(pool.admit(p, hp, 100, &s, 1), Ok(Admitted::New));
        }
        let (p, hp) = unsigned(sender_address(1), 0, 1);
        assert_eq!(pool.admit(p, hp, 100, &s, 1), Ok(Admitted::New), "evicts a queued one");
        assert_eq!(pool.queued_len(), 1);
        assert!(!pool.contains(&hm), "the cheaper of the two queued went");
        let (p, hp) = unsigned(sender_address(2), 0, 1);
        assert_eq!(pool.admit(p, hp, 100, &s, 1), Ok(Admitted::New));
        assert_eq!(pool.queued_len(), 0, "the last queued one made room");
        let (p, hp) = unsigned(sender_address(0), 0, 1_000);
        assert_eq!(
            pool.admit(p, hp, 100, &s, 1),
            Err(AdmitError::PoolFull { txs_max: 4 }),
            "pending ones are never evicted"
        );
    }

    #[test]
    fn queued_transactions_are_gossiped_only_once_their_gap_fills() {
        let k = Keypair::from_seed(&[1; 32]);
        let sender = Address(k.public());
        let s = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (t2, h2) = tx(&k, 2, 1, 1, 2);
        let (t1, h1) = tx(&k, 2, 1, 1, 1);
        let (t0, h0) = tx(&k, 2, 1, 1, 0);
        assert!(!pool.admit(t2, h2, 10, &s, 1).expect("2").gossip());
        assert!(!pool.admit(t1, h1, 10, &s, 1).expect("1").gossip());
        assert!(pool.take_promoted().is_empty());
        assert!(pool.is_queued(&h1) && pool.is_queued(&h2));
        assert!(pool.admit(t0, h0, 10, &s, 1).expect("0").gossip());
        let promoted: Vec<Hash> = pool.take_promoted().iter().map(|t| t.hash()).collect();
        assert_eq!(promoted, vec![h1, h2], "the gap filled: now peers may hear of them");
        assert_eq!((pool.queued_len(), pool.next_nonce(&sender, &s)), (0, 3));
        // A pending one the proposer refuses leaves a gap again.
        pool.reject(&[(h1, TxError::InsufficientBalance { needed: 2, available: 1 })]);
        assert!(pool.is_queued(&h2) && !pool.is_queued(&h0));
        assert_eq!(pool.next_nonce(&sender, &s), 1);
    }

    #[test]
    fn a_queued_transfer_expires_at_its_height_or_after_its_lifetime() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1000, 0);
        let mut pool = Mempool::new(Limits::default());
        let (mut t, _) = tx(&k, 2, 1, 1, 1);
        t.tx.valid_until_height = Some(5);
        let h = t.hash();
        let (old, ho) = tx(&k, 2, 1, 1, 2);
        assert_eq!(pool.admit(t, h, 10, &s, 1), Ok(Admitted::Queued));
        assert_eq!(pool.admit(old, ho, 10, &s, 1), Ok(Admitted::Queued));
        assert!(pool.on_commit(&[], &s, 5).is_empty(), "valid through height 5");
        let dropped = pool.on_commit(&[], &s, 6);
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].hash, dropped[0].expired), (h, true));
        assert_eq!(dropped[0].record(5).reason, "expired");
        assert!(pool.on_commit(&[], &s, 1 + QUEUED_LIFETIME_BLOCKS).is_empty(), "within its lifetime");
        let dropped = pool.on_commit(&[], &s, 2 + QUEUED_LIFETIME_BLOCKS);
        assert_eq!((dropped.len(), dropped[0].hash, dropped[0].expired), (1, ho, true));
        assert!(dropped[0].message.contains("behind a nonce gap"), "{}", dropped[0].message);
        assert!(pool.is_empty() && pool.queued_len() == 0);
    }

    #[test]
    fn per_sender_and_pool_limits_hold() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1_000_000, 0);
        let mut pool = Mempool::new(Limits { txs_max: 10, bytes_max: 1 << 20, per_sender_max: 3, ..Limits::default() });
        for n in 0..3 {
            let (t, h) = tx(&k, 2, 1, 1, n);
            pool.admit(t, h, 10, &s, 1).expect("under the cap");
        }
        let (t, h) = tx(&k, 2, 1, 1, 3);
        assert_eq!(pool.admit(t, h, 10, &s, 1), Err(AdmitError::SenderLimit { per_sender_max: 3 }));
    }

    #[test]
    fn commit_removes_included_and_drops_what_became_invalid() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut pool = Mempool::new(Limits::default());
        let s0 = state(&k, 1000, 0);
        let (a, ha) = tx(&k, 2, 10, 1, 0);
        let (b, hb) = tx(&k, 2, 10, 1, 1);
        pool.admit(a, ha, 10, &s0, 1).expect("a");
        pool.admit(b, hb, 10, &s0, 1).expect("b");
        // Block 1 includes a; meanwhile the account was drained by another node's tx.
        let s1 = state(&k, 5, 1);
        let dropped = pool.on_commit(&[ha], &s1, 2);
        assert_eq!(pool.len(), 0);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].hash, hb);
        assert_eq!(dropped[0].reason, "insufficient_balance");
    }

    #[test]
    fn candidates_keep_each_senders_nonce_order() {
        let k1 = Keypair::from_seed(&[1; 32]);
        let k2 = Keypair::from_seed(&[2; 32]);
        let mut s = state(&k1, 1000, 0);
        s.insert(Address(k2.public()), Account { balance: 1000, nonce: 0 });
        let mut pool = Mempool::new(Limits::default());
        for n in 0..3 {
            let (t, h) = tx(&k1, 9, 1, 1, n);
            pool.admit(t, h, 10, &s, 1).expect("k1");
            let (t, h) = tx(&k2, 9, 1, 1, n);
            pool.admit(t, h, 10, &s, 1).expect("k2");
        }
        let c = pool.candidates(6, &s);
        for sender in [Address(k1.public()), Address(k2.public())] {
            let nonces: Vec<u64> = c.iter().filter(|t| t.tx.from == sender).map(|t| t.tx.nonce).collect();
            assert_eq!(nonces, vec![0, 1, 2]);
        }
        assert_eq!(c[0].tx.nonce, 0);
        assert_eq!(c[1].tx.nonce, 0);
    }
}
