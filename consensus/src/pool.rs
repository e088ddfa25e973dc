//! The transaction pool: admission checks, bounded in count, bytes and per sender, with
//! same-nonce replacement by a higher fee and idempotent resubmission.
//!
//! Signatures are checked by the caller before it takes the pool's lock, so that admission
//! verifies on every core. Per sender the pool keeps nonces from the account's committed nonce
//! up to [`NONCE_WINDOW`] ahead: gossip delivers a sender's transactions in any order, so a
//! later nonce may arrive first and waits (queued) until the gap fills. Only the gap-free run
//! from the committed nonce is proposed, and its end is what `next_nonce` reports (Ethereum's
//! `pending`).
//!
//! The pool does no IO and has one owner: the node's chain actor, which admits transactions
//! and runs the chain core ([`crate::chain`]), which updates the pool when a block commits (in
//! the same step that makes the commit's batch, so the drop records go into that batch).
//! [`PoolAccess`] is what the core sees of it. Its maps are persistent (`imbl`): a clone costs
//! a few reference counts and shares everything, so the actor publishes a clone to readers
//! after each step, and later changes copy only the paths they touch.

use std::cell::RefCell;
use std::sync::Arc;

use imbl::{HashMap, HashSet, OrdMap, Vector};

use bincode::{Decode, Encode};

use crate::block::BLOCK_TXS_MAX;
use crate::state::StateReader;
use crate::{Address, Hash, SignedTransaction, TxError};

/// How many transactions that recently left the pool it remembers. The chain core takes them
/// out when it makes a block's commit batch, and the store shows them a moment later, when the
/// batch is written: meanwhile a transaction committed a moment ago must not come back from
/// gossip, and a wallet asking for one must not be told it is unknown.
const RECENT_MAX: usize = 2 * BLOCK_TXS_MAX;

/// How far past the committed nonce a sender's transaction may be held, waiting for the ones
/// before it.
pub const NONCE_WINDOW: u64 = 64;

/// The pool's bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most transactions held.
    pub txs_max: usize,
    /// Most encoded bytes held.
    pub bytes_max: usize,
    /// Most transactions held per sender.
    pub per_sender_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { txs_max: 100_000, bytes_max: 64 * 1024 * 1024, per_sender_max: 256 }
    }
}

/// Why the pool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The transaction breaks a rule.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool is full.
    #[error("the pool is full ({txs_max} transactions or its byte limit); retry later")]
    PoolFull {
        /// The pool's capacity.
        txs_max: usize,
    },
    /// The sender has too many pending transactions.
    #[error("the sender already has {per_sender_max} pending transactions; wait for some to finalize")]
    SenderLimit {
        /// The per-sender limit.
        per_sender_max: usize,
    },
    /// A replacement must pay more.
    #[error("a transaction with this nonce is pending with fee {fee}; a replacement must pay at least {needed}")]
    ReplacementUnderpriced {
        /// The pending transaction's fee.
        fee: u128,
        /// The least a replacement pays.
        needed: u128,
    },
    /// The transaction is in a block that was just committed.
    #[error("the transaction is already in a committed block")]
    Committed,
}

/// What admission did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Newly added.
    New,
    /// The same bytes were already pending.
    AlreadyPending,
    /// Replaced the pending transaction with this hash.
    Replaced(Hash),
}

/// A transaction that left the pool without being finalized, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The transaction.
    pub hash: Hash,
    /// "expired" for expiries, otherwise "rejected".
    pub expired: bool,
    /// The machine-readable reason ([`TxError::reason`]).
    pub reason: String,
    /// A message for humans.
    pub message: String,
}

impl Dropped {
    /// What storage keeps of a drop at head height `height`.
    pub fn record(&self, height: u64) -> DroppedTx {
        let reason = if self.expired { "expired".to_owned() } else { self.reason.clone() };
        DroppedTx { reason, message: self.message.clone(), height }
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
}

#[derive(Clone)]
struct Entry {
    stx: Arc<SignedTransaction>,
    bytes: usize,
    arrival: u64,
}

/// The pool. Cloning it is O(1): the clone is a snapshot that later changes do not touch.
#[derive(Clone)]
pub struct Mempool {
    limits: Limits,
    by_hash: HashMap<Hash, Entry>,
    by_sender: HashMap<Address, OrdMap<u64, Hash>>,
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
}

impl Mempool {
    /// An empty pool with these bounds.
    pub fn new(limits: Limits) -> Mempool {
        Mempool {
            limits,
            by_hash: HashMap::new(),
            by_sender: HashMap::new(),
            bytes: 0,
            arrivals: 0,
            recent: Vector::new(),
            recent_included: HashSet::new(),
            recent_bodies: HashMap::new(),
            committed_next: [HashMap::new(), HashMap::new()],
        }
    }

    /// How many transactions are pending.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Their encoded bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether this transaction is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The pending transaction with this hash.
    pub fn get(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.by_hash.get(hash).map(|e| &*e.stx)
    }

    /// How many transactions of `addr` are pending.
    pub fn pending_of(&self, addr: &Address) -> usize {
        self.by_sender.get(addr).map_or(0, OrdMap::len)
    }

    /// The nonce the sender's next transaction should use, counting the pool.
    pub fn next_nonce(&self, addr: &Address, state: &(impl StateReader + ?Sized)) -> u64 {
        let mut next = self.nonce_of(addr, state);
        if let Some(queue) = self.by_sender.get(addr) {
            for nonce in queue.range(next..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// Admits a transaction whose signature and stateless fields the caller has checked.
    /// `next_height` is the height of the next block (for expiry).
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
        if tx.nonce > account.nonce.saturating_add(NONCE_WINDOW) {
            let expected = self.next_nonce(&tx.from, state);
            return Err(TxError::NonceGap { expected, got: tx.nonce }.into());
        }
        let replaced = self.by_sender.get(&tx.from).and_then(|q| q.get(&tx.nonce)).copied();
        if let Some(old) = replaced.and_then(|h| self.by_hash.get(&h)) {
            let needed = old.stx.tx.fee.saturating_add(old.stx.tx.fee / 10).saturating_add(1);
            if tx.fee < needed {
                return Err(AdmitError::ReplacementUnderpriced { fee: old.stx.tx.fee, needed });
            }
        } else {
            if self.pending_of(&tx.from) >= self.limits.per_sender_max {
                return Err(AdmitError::SenderLimit { per_sender_max: self.limits.per_sender_max });
            }
            if self.by_hash.len() >= self.limits.txs_max || self.bytes.saturating_add(bytes) > self.limits.bytes_max {
                return Err(AdmitError::PoolFull { txs_max: self.limits.txs_max });
            }
        }
        let spent_by_others = self.pending_spend(&tx.from, replaced, account.nonce);
        let needed = tx.amount.checked_add(tx.fee).ok_or(TxError::Overflow)?;
        let total = spent_by_others.checked_add(needed).ok_or(TxError::Overflow)?;
        if total > account.balance {
            return Err(TxError::InsufficientBalance { needed: total, available: account.balance }.into());
        }
        if let Some(old) = replaced {
            self.remove(&old);
        }
        self.insert(stx, hash, bytes);
        Ok(replaced.map_or(Admitted::New, Admitted::Replaced))
    }

    /// What the sender's pending transactions at or above `committed_nonce` spend.
    fn pending_spend(&self, sender: &Address, except: Option<Hash>, committed_nonce: u64) -> u128 {
        self.by_sender.get(sender).map_or(0, |q| {
            q.range(committed_nonce..)
                .map(|(_, h)| h)
                .filter(|h| Some(**h) != except)
                .filter_map(|h| self.by_hash.get(h))
                .map(|e| e.stx.tx.amount.saturating_add(e.stx.tx.fee))
                .fold(0u128, u128::saturating_add)
        })
    }

    fn insert(&mut self, stx: SignedTransaction, hash: Hash, bytes: usize) {
        self.arrivals += 1;
        self.by_sender.entry(stx.tx.from).or_default().insert(stx.tx.nonce, hash);
        self.bytes += bytes;
        self.by_hash.insert(hash, Entry { stx: Arc::new(stx), bytes, arrival: self.arrivals });
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

    fn remove(&mut self, hash: &Hash) -> Option<Arc<SignedTransaction>> {
        let entry = self.by_hash.remove(hash)?;
        if !self.recent_included.contains(hash) {
            self.recent.push_back(*hash);
        }
        self.recent_bodies.insert(*hash, entry.stx.clone());
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        if let Some(q) = self.by_sender.get_mut(&entry.stx.tx.from) {
            q.remove(&entry.stx.tx.nonce);
            if q.is_empty() {
                self.by_sender.remove(&entry.stx.tx.from);
            }
        }
        Some(entry.stx)
    }

    /// Up to `max` transactions for a proposal on `state`: each sender's gap-free run from its
    /// nonce in `state`, in nonce order, senders interleaved by arrival, so one busy sender
    /// cannot starve the others.
    pub fn candidates(&self, max: usize, state: &(impl StateReader + ?Sized)) -> Vec<SignedTransaction> {
        let mut keyed: Vec<(usize, u64, &SignedTransaction)> = Vec::with_capacity(self.by_hash.len().min(max * 2));
        for (sender, queue) in self.by_sender.iter() {
            let mut next = state.account(sender).nonce;
            let run: Vec<&Entry> = queue
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

    /// Removes transactions the proposer found invalid, with their reasons.
    pub fn reject(&mut self, refused: &[(Hash, TxError)]) -> Vec<Dropped> {
        let out = refused.iter().filter_map(|(h, e)| self.remove(h).map(|_| dropped(*h, e))).collect();
        self.forget_old();
        out
    }

    /// After a block commits: removes its transactions, then drops what the new state makes
    /// invalid (nonce taken, expired, balance no longer covers the queue), with reasons.
    pub fn on_commit(
        &mut self,
        included: &[Hash],
        state: &(impl StateReader + ?Sized),
        next_height: u64,
    ) -> Vec<Dropped> {
        let [newer, older] = &mut self.committed_next;
        std::mem::swap(newer, older);
        newer.clear();
        for h in included {
            if let Some(stx) = self.remove(h) {
                let next = stx.tx.nonce.saturating_add(1);
                let entry = self.committed_next[0].entry(stx.tx.from).or_insert(next);
                *entry = (*entry).max(next);
            }
            // `imbl` answers the value it replaced: `None` when newly recorded.
            if self.recent_included.insert(*h).is_none() && !self.recent_bodies.contains_key(h) {
                self.recent.push_back(*h);
            }
        }
        let mut out = Vec::new();
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        for sender in senders {
            out.extend(self.revalidate_sender(&sender, state, next_height));
        }
        self.forget_old();
        out
    }

    /// Drops the sender's transactions the new state makes invalid: nonces already taken,
    /// nonces beyond the window, and in the gap-free run the expired and the unaffordable.
    /// Those after a gap (or after a dropped one) stay queued until the gap fills.
    fn revalidate_sender(
        &mut self,
        sender: &Address,
        state: &(impl StateReader + ?Sized),
        next_height: u64,
    ) -> Vec<Dropped> {
        let account = state.account(sender);
        let queue: Vec<Hash> = self.by_sender.get(sender).map(|q| q.values().copied().collect()).unwrap_or_default();
        let mut out = Vec::new();
        let mut expected = account.nonce;
        let mut spend: u128 = 0;
        let mut broken = false;
        for h in queue {
            let Some(tx) = self.by_hash.get(&h).map(|e| e.stx.tx.clone()) else { continue };
            let window_end = account.nonce.saturating_add(NONCE_WINDOW);
            let error = if tx.nonce < account.nonce {
                Some(TxError::NonceTooLow { expected: account.nonce, got: tx.nonce })
            } else if tx.nonce > window_end {
                Some(TxError::NonceGap { expected, got: tx.nonce })
            } else if broken || tx.nonce != expected {
                // Past a gap: queued until the transactions before it arrive.
                None
            } else if let Some(until) = tx.valid_until_height.filter(|u| *u < next_height) {
                Some(TxError::Expired { valid_until: until, height: next_height })
            } else {
                spend = spend.saturating_add(tx.amount.saturating_add(tx.fee));
                (spend > account.balance)
                    .then_some(TxError::InsufficientBalance { needed: spend, available: account.balance })
            };
            match error {
                Some(e) => {
                    // The rest cannot apply until this nonce is sent again.
                    broken = broken || tx.nonce >= account.nonce;
                    self.remove(&h);
                    out.push(dropped(h, &e));
                }
                None if tx.nonce == expected => expected = expected.saturating_add(1),
                None => {}
            }
        }
        out
    }
}

/// The pool as the chain core reaches it. Its owner (the node's chain actor, a simulated node)
/// keeps it in a [`RefCell`] and lends it to each step.
pub trait PoolAccess {
    /// Whether the transaction is pending (its signature was checked on admission).
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
        assert_eq!(pool.admit(gap, hg, 10, &s, 1), Ok(Admitted::New), "queued behind a gap");
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
        assert!(matches!(
            pool.admit(cheap, hc, 10, &s, 1),
            Err(AdmitError::ReplacementUnderpriced { needed: 111, .. })
        ));
        let (rich, hr) = tx(&k, 3, 10, 111, 0);
        assert_eq!(pool.admit(rich, hr, 10, &s, 1), Ok(Admitted::Replaced(ha)));
        assert!(!pool.contains(&ha) && pool.contains(&hr) && pool.len() == 1);
    }

    #[test]
    fn per_sender_and_pool_limits_hold() {
        let k = Keypair::from_seed(&[1; 32]);
        let s = state(&k, 1_000_000, 0);
        let mut pool = Mempool::new(Limits { txs_max: 10, bytes_max: 1 << 20, per_sender_max: 3 });
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
