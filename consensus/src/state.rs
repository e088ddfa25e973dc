//! The state transition: accounts, the rules a transfer must pass, and block execution.
//!
//! A block applies all or nothing: execution works on an [`Overlay`] over the parent state and
//! returns the changed accounts and the state tree's changed nodes ([`crate::tree`]); nothing is
//! written unless every transaction passes. Fees go to the block's proposer. No arithmetic here
//! can overflow unchecked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bincode::{Decode, Encode};

use crate::block::{Block, Header};
use crate::codec;
use crate::crypto::{self, Hash};
use crate::governance::Governance;
use crate::tree::{self, MissingNode, Node, NodeChanges, NodeKey, TreeReader};
use crate::tx::{SignedTransaction, TxError};
use crate::vote::{Domain, Evidence, VoteKind};
use crate::{Address, Epochs, Error, ValidatorSet};

/// An account: what the chain knows of an address. Every address starts at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    /// Spendable balance, base units.
    pub balance: u128,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
}

/// Read access to the state that a block builds on.
pub trait StateReader {
    /// The account at `addr` (zero if never touched).
    fn account(&self, addr: &Address) -> Account;

    /// The validator set and the votes on changing it ([`crate::governance`]).
    fn governance(&self) -> Arc<Governance>;
}

/// A map of accounts is a state with no validators (for tests of account rules).
impl StateReader for BTreeMap<Address, Account> {
    fn account(&self, addr: &Address) -> Account {
        self.get(addr).copied().unwrap_or_default()
    }

    fn governance(&self) -> Arc<Governance> {
        Arc::default()
    }
}

/// A map of accounts is a state with no validators (for tests of account rules).
impl StateReader for std::collections::HashMap<Address, Account> {
    fn account(&self, addr: &Address) -> Account {
        self.get(addr).copied().unwrap_or_default()
    }

    fn governance(&self) -> Arc<Governance> {
        Arc::default()
    }
}

/// How many fee floors a transfer pays when it creates its recipient's account. Every account
/// lives in every node's memory for good (673 bytes each with its state-tree nodes at 10^6
/// accounts, measured by `scripts/accounts-bench.sh`), so creating one costs a real fee, paid to
/// the proposer.
pub const ACCOUNT_CREATION_FEE_FLOORS: u128 = 100;

/// The least fee of a transfer that creates an account, on a chain with this fee floor.
pub const fn account_creation_fee(fee_floor: u128) -> u128 {
    fee_floor.saturating_mul(ACCOUNT_CREATION_FEE_FLOORS)
}

/// The account-creation rule: a transfer of a non-zero amount to an account that does not
/// exist in `state` pays at least [`account_creation_fee`]. Block execution applies it on the
/// state before each transfer; the pool, on the committed state (so it may ask for the fee
/// where an earlier pending transfer would have created the account).
pub fn check_account_creation(
    state: &(impl StateReader + ?Sized),
    tx: &crate::Transaction,
    fee_floor: u128,
) -> Result<(), TxError> {
    if tx.amount == 0 || tx.to == tx.from || state.account(&tx.to) != Account::default() {
        return Ok(());
    }
    let needed = account_creation_fee(fee_floor);
    if tx.fee < needed {
        return Err(TxError::AccountCreationFee { fee: tx.fee, needed });
    }
    Ok(())
}

/// Whether `to` is known, from `state`, to be an account key ([`crypto::is_account_key`]), so
/// that its check (about one signature verification) can be skipped: funds reach only checked
/// recipients, genesis allocations and validators, each refused unless it is an account key, so
/// an address holding funds in any state of the chain is one. (A zero balance proves nothing:
/// with a zero fee floor any key that verifies can send nothing and bump its nonce.) Skipping
/// changes no verdict, so nodes that skip and nodes that check agree.
pub fn recipient_known_valid(state: &(impl StateReader + ?Sized), to: &Address) -> bool {
    state.account(to).balance > 0
}

/// Pending changes over a base state.
pub struct Overlay<'a, R: StateReader + ?Sized> {
    base: &'a R,
    changes: BTreeMap<Address, Account>,
    /// The governance entry, once an action changed it.
    governance: Option<Governance>,
    rules: &'a Rules,
}

impl<R: StateReader + ?Sized> StateReader for Overlay<'_, R> {
    fn account(&self, addr: &Address) -> Account {
        self.changes.get(addr).copied().unwrap_or_else(|| self.base.account(addr))
    }

    fn governance(&self) -> Arc<Governance> {
        match &self.governance {
            Some(g) => Arc::new(g.clone()),
            None => self.base.governance(),
        }
    }
}

impl<'a, R: StateReader + ?Sized> Overlay<'a, R> {
    /// An empty overlay over `base`, on a chain with these rules.
    pub fn new(base: &'a R, rules: &'a Rules) -> Self {
        Overlay { base, changes: BTreeMap::new(), governance: None, rules }
    }

    /// Applies one transfer at `height` with fees to `proposer`, or changes nothing and says
    /// why. Signature and stateless checks are the caller's (see
    /// [`SignedTransaction::check_stateless`]).
    pub fn apply(&mut self, stx: &SignedTransaction, height: u64, proposer: &Address) -> Result<(), TxError> {
        let tx = &stx.tx;
        if let Some(until) = tx.valid_until_height {
            if height > until {
                return Err(TxError::Expired { valid_until: until, height });
            }
        }
        let mut from = self.account(&tx.from);
        if tx.nonce < from.nonce {
            return Err(TxError::NonceTooLow { expected: from.nonce, got: tx.nonce });
        }
        if tx.nonce > from.nonce {
            return Err(TxError::NonceGap { expected: from.nonce, got: tx.nonce });
        }
        let needed = tx.amount.checked_add(tx.fee).ok_or(TxError::Overflow)?;
        from.balance =
            from.balance.checked_sub(needed).ok_or(TxError::InsufficientBalance { needed, available: from.balance })?;
        check_account_creation(self, tx, self.rules.fee_floor)?;
        from.nonce = from.nonce.checked_add(1).ok_or(TxError::Overflow)?;
        // Stage the three writes in order on copies so that aliasing (to == from, proposer ==
        // to) is handled and an overflow leaves the overlay untouched.
        let mut staged: Vec<(Address, Account)> = vec![(tx.from, from)];
        credit(self, &mut staged, tx.to, tx.amount)?;
        credit(self, &mut staged, *proposer, tx.fee)?;
        if let Some(action) = &tx.action {
            // Last, when nothing else can refuse the transaction; in place: a refused action
            // changes nothing (G1 to G4), and a block of many votes copies the entry once.
            let base = self.base;
            let g = self.governance.get_or_insert_with(|| (*base.governance()).clone());
            g.apply_action(action, &tx.from, height, &self.rules.genesis_hash)?;
        }
        self.changes.extend(staged);
        Ok(())
    }

    /// G7 of [`crate::governance`]: records `evidence` carried by the block at `height`, or
    /// changes nothing and says why.
    pub fn record_evidence(&mut self, evidence: &Evidence, height: u64) -> Result<(), String> {
        let epoch = self.rules.epochs.of_height(height);
        let domain = self.rules.domain(epoch);
        let base = self.base;
        let g = self.governance.get_or_insert_with(|| (*base.governance()).clone());
        g.record_offence(evidence, height, epoch, &domain)
    }

    /// G5 of [`crate::governance`]: after the transactions of the block at `height`, the end
    /// of its epoch when it is the last.
    pub fn end_block(&mut self, height: u64) {
        let epochs = self.rules.epochs;
        if epochs.is_last(height) {
            let mut g = self.governance.take().unwrap_or_else(|| (*self.base.governance()).clone());
            g.end_epoch(epochs.of_height(height), epochs);
            self.governance = Some(g);
        }
    }

    /// The changed accounts and, if it changed, the governance entry.
    pub fn into_changes(self) -> (BTreeMap<Address, Account>, Option<Arc<Governance>>) {
        let base = self.base;
        let governance = self.governance.filter(|g| *g != *base.governance()).map(Arc::new);
        (self.changes, governance)
    }
}

fn credit<R: StateReader + ?Sized>(
    overlay: &Overlay<'_, R>,
    staged: &mut Vec<(Address, Account)>,
    to: Address,
    amount: u128,
) -> Result<(), TxError> {
    let current = staged.iter().rev().find(|(a, _)| *a == to).map(|(_, acct)| *acct);
    let mut acct = current.unwrap_or_else(|| overlay.account(&to));
    acct.balance = acct.balance.checked_add(amount).ok_or(TxError::Overflow)?;
    staged.push((to, acct));
    Ok(())
}

/// The result of executing a block on its parent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every account the block changed, with its new value.
    pub changes: BTreeMap<Address, Account>,
    /// The governance entry after the block, if the block changed it.
    pub governance: Option<Arc<Governance>>,
    /// The state tree's root after the block.
    pub state_root: Hash,
    /// The state tree's nodes the block wrote or removed.
    pub tree: NodeChanges,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
}

/// What one applied transaction left behind: the balances of its two parties just after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The sender's balance after the transaction (amount and fee paid).
    pub from_balance: u128,
    /// The recipient's balance after the transaction.
    pub to_balance: u128,
}

impl<R: StateReader + ?Sized> Overlay<'_, R> {
    /// The receipt of `stx` right after it was applied to this overlay.
    fn receipt(&self, stx: &SignedTransaction) -> Receipt {
        Receipt { from_balance: self.account(&stx.tx.from).balance, to_balance: self.account(&stx.tx.to).balance }
    }
}

/// The state tree after `changes` to the accounts of the state `base` holds and, if it
/// changed, the new governance entry: its root and the nodes to write.
pub fn next_tree(
    base: &(impl TreeReader + ?Sized),
    changes: &BTreeMap<Address, Account>,
    governance: Option<&Governance>,
) -> Result<tree::TreeUpdate, MissingNode> {
    let mut entries = tree::account_changes(changes);
    if let Some(g) = governance {
        entries.push((crate::governance::governance_key(), Some(g.value_hash())));
    }
    tree::update(base, &entries)
}

/// A whole state in memory: the accounts, the governance entry and the state tree's nodes.
/// What tests and the simulation keep where the node keeps its store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemState {
    /// Every non-zero account.
    pub accounts: BTreeMap<Address, Account>,
    /// The validator set and its votes.
    pub governance: Arc<Governance>,
    /// The state tree's nodes.
    pub tree: HashMap<NodeKey, Node>,
}

impl MemState {
    /// The state holding `accounts` (zero accounts are left out) and `governance`.
    pub fn new(accounts: impl IntoIterator<Item = (Address, Account)>, governance: Governance) -> MemState {
        let mut state = MemState::default();
        let changes: BTreeMap<Address, Account> = accounts.into_iter().collect();
        // An empty tree has every node it names (none), so the update cannot miss one.
        if let Ok(update) = next_tree(&state.tree, &changes, Some(&governance)) {
            state.apply(&changes, Some(&Arc::new(governance)), &update.nodes);
        }
        state
    }

    /// The state a genesis starts from.
    pub fn genesis(genesis: &crate::Genesis) -> MemState {
        MemState::new(genesis.accounts(), genesis.governance())
    }

    /// Applies a block's outcome.
    pub fn apply_outcome(&mut self, outcome: &Outcome) {
        self.apply(&outcome.changes, outcome.governance.as_ref(), &outcome.tree);
    }

    /// Applies a block's account, governance and node changes.
    pub fn apply(
        &mut self,
        changes: &BTreeMap<Address, Account>,
        governance: Option<&Arc<Governance>>,
        nodes: &NodeChanges,
    ) {
        if let Some(g) = governance {
            self.governance = g.clone();
        }
        for (addr, acct) in changes {
            if *acct == Account::default() {
                self.accounts.remove(addr);
            } else {
                self.accounts.insert(*addr, *acct);
            }
        }
        tree::apply_changes(&mut self.tree, nodes);
    }

    /// The state tree's root.
    pub fn root(&self) -> Hash {
        self.tree.get(&NodeKey::ROOT).map_or(Hash::ZERO, Node::hash)
    }
}

impl StateReader for MemState {
    fn account(&self, addr: &Address) -> Account {
        self.accounts.get(addr).copied().unwrap_or_default()
    }

    fn governance(&self) -> Arc<Governance> {
        self.governance.clone()
    }
}

impl TreeReader for MemState {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        self.tree.get(at).copied()
    }
}

/// The network constants block execution needs.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash.
    pub genesis_hash: Hash,
    /// The fee floor, base units.
    pub fee_floor: u128,
    /// The epochs: each has the validator set the state before it holds.
    pub epochs: Epochs,
}

impl Rules {
    /// The domain votes of `epoch` sign over.
    pub fn domain(&self, epoch: u64) -> Domain {
        Domain { chain_id: self.chain_id.clone(), genesis_hash: self.genesis_hash, epoch }
    }
}

/// Why a block is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block's shape or header is wrong.
    #[error(transparent)]
    Shape(#[from] Error),
    /// Transaction `index` fails.
    #[error("transaction {index} ({hash}) is invalid: {error}")]
    Tx {
        /// Its position in the block.
        index: usize,
        /// Its hash.
        hash: Hash,
        /// Why.
        error: TxError,
    },
    /// The header's state root is not what the transactions produce.
    #[error("state_root {claimed} does not match the executed state {computed}")]
    StateRoot {
        /// In the header.
        claimed: Hash,
        /// Computed.
        computed: Hash,
    },
    /// This node's state tree lacks a node: its store is damaged, whatever the block.
    #[error(transparent)]
    Store(#[from] MissingNode),
}

/// Executes `block` on `base` (the state after its parent, whose header is `parent`) and checks
/// that it is a valid child: its header against the real parent ([`check_header`]), its shape,
/// every transaction (signatures of those for which `sig_known_valid` is false are verified on
/// every core) and the state root. Every block this node stores or votes for passes here,
/// whether it came as a proposal, by fetch or by sync. [`BlockError::Store`] says nothing of the
/// block: the caller stops.
pub fn execute_block<R: StateReader + TreeReader + ?Sized>(
    rules: &Rules,
    base: &R,
    parent: &Header,
    block: &Block,
    sig_known_valid: &dyn Fn(&Hash) -> bool,
) -> Result<Outcome, BlockError> {
    let h = &block.header;
    check_header(rules, &base.governance().set(), parent, h)?;
    block.check_shape()?;
    // G7: the evidence is recorded before the transactions apply.
    let mut overlay = Overlay::new(base, rules);
    for (index, evidence) in block.evidence.iter().enumerate() {
        overlay
            .record_evidence(evidence, h.height)
            .map_err(|why| Error::BadBlock(format!("evidence item {index}: {why}")))?;
    }
    let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
    let mut seen = HashSet::with_capacity(hashes.len());
    for (index, (stx, hash)) in block.txs.iter().zip(&hashes).enumerate() {
        if !seen.insert(*hash) {
            return Err(Error::BadBlock(format!("transaction {hash} appears twice")).into());
        }
        stx.check_fields(&rules.chain_id, rules.fee_floor).map_err(|error| BlockError::Tx {
            index,
            hash: *hash,
            error,
        })?;
    }
    verify_signatures(rules, base, block, &hashes, sig_known_valid)?;
    let mut receipts = Vec::with_capacity(block.txs.len());
    for (index, (stx, hash)) in block.txs.iter().zip(&hashes).enumerate() {
        overlay.apply(stx, h.height, &h.proposer).map_err(|error| BlockError::Tx { index, hash: *hash, error })?;
        receipts.push(overlay.receipt(stx));
    }
    overlay.end_block(h.height);
    let (changes, governance) = overlay.into_changes();
    let tree = next_tree(base, &changes, governance.as_deref())?;
    if tree.root != h.state_root {
        return Err(BlockError::StateRoot { claimed: h.state_root, computed: tree.root });
    }
    Ok(Outcome { changes, governance, state_root: tree.root, tree: tree.nodes, receipts })
}

/// The header rules between a block and its parent, checked against the parent's real header
/// (never a cached summary) and `set`, the validators of the block's epoch (the set in the
/// parent's state): chain id, height and parent hash, a later view (any view from 1 when the
/// block starts an epoch, whose views restart), the view's leader as proposer, the set's hash, a
/// timestamp not before the parent's, and a `parent_cert` that is a verifying notarization of
/// the parent in the parent's own view (absent exactly on an epoch's first block, whose parent
/// is genesis or the last epoch's final boundary). Only "not too far in the future" needs a
/// clock; the engine checks that for live proposals.
pub fn check_header(rules: &Rules, set: &ValidatorSet, parent: &Header, h: &Header) -> Result<(), Error> {
    let bad = |why: String| Err(Error::BadBlock(why));
    if h.chain_id != rules.chain_id {
        return bad(format!("chain id `{}`", h.chain_id));
    }
    let parent_hash = parent.hash();
    if Some(h.height) != parent.height.checked_add(1) || h.parent_hash != parent_hash {
        return bad(format!("height {} does not extend parent {parent_hash} at {}", h.height, parent.height));
    }
    let starts = rules.epochs.starts_epoch(h.height);
    if h.view == 0 || (!starts && h.view <= parent.view) {
        return bad(format!("view {} is not after its parent's view {}", h.view, parent.view));
    }
    if h.proposer != set.leader_in(rules.epochs.of_height(h.height), h.view) {
        return bad(format!("proposer {:?} does not lead view {}", h.proposer, h.view));
    }
    if h.validator_set_hash != set.hash() {
        return bad(format!("validator set {} is not the set of this block's epoch", h.validator_set_hash));
    }
    if h.timestamp_ms < parent.timestamp_ms {
        return bad(format!("timestamp {} is before its parent's {}", h.timestamp_ms, parent.timestamp_ms));
    }
    match &h.parent_cert {
        None if starts => Ok(()),
        None => bad(format!("block at height {} carries no certificate of its parent", h.height)),
        Some(_) if starts => {
            bad(format!("block at height {} starts its epoch but carries a parent certificate", h.height))
        }
        Some(c) => {
            if c.kind != VoteKind::Notarize || c.block_hash != Some(parent_hash) || c.view != parent.view {
                return bad(format!(
                    "the parent certificate of height {} is not a notarization of its parent",
                    h.height
                ));
            }
            c.verify(&rules.domain(rules.epochs.of_height(h.height)), set)
        }
    }
}

/// Checks the keys of the transactions not `known` valid: each recipient can own an account
/// (on every core, unless `base` shows it is one: [`recipient_known_valid`]) and each signature
/// verifies (in batches on every core). The first failing transaction in block order is
/// reported, a bad recipient before a bad signature.
fn verify_signatures<R: StateReader + ?Sized>(
    rules: &Rules,
    base: &R,
    block: &Block,
    hashes: &[Hash],
    known: &dyn Fn(&Hash) -> bool,
) -> Result<(), BlockError> {
    let todo: Vec<(usize, &SignedTransaction, Vec<u8>)> = block
        .txs
        .iter()
        .zip(hashes)
        .enumerate()
        .filter(|(_, (_, h))| !known(h))
        .map(|(i, (stx, _))| (i, stx, stx.tx.signing_bytes(&rules.genesis_hash)))
        .collect();
    let recipients: Vec<(usize, &crypto::PublicKey)> = todo
        .iter()
        .enumerate()
        .filter(|(_, (_, stx, _))| !recipient_known_valid(base, &stx.tx.to))
        .map(|(at, (_, stx, _))| (at, &stx.tx.to.0))
        .collect();
    let bad_recipient = crypto::check_many(&recipients, |(_, to)| crypto::is_account_key(to))
        .err()
        .and_then(|r| recipients.get(r).map(|(at, _)| *at));
    let items: Vec<crypto::VerifyItem<'_>> =
        todo.iter().map(|(_, stx, msg)| (&stx.tx.from.0, msg.as_slice(), &stx.signature)).collect();
    let bad_signature = crypto::verify_many(&items).err();
    let (bad, error) = match (bad_recipient, bad_signature) {
        (None, None) => return Ok(()),
        (Some(r), Some(s)) if s < r => (s, TxError::BadSignature),
        (Some(r), _) => (r, TxError::BadRecipient),
        (None, Some(s)) => (s, TxError::BadSignature),
    };
    let index = todo.get(bad).map_or(0, |(i, _, _)| *i);
    Err(BlockError::Tx { index, hash: hashes.get(index).copied().unwrap_or_default(), error })
}

/// How much of a block a proposal may fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockBudget {
    /// The most transactions.
    pub txs_max: usize,
    /// The most encoded bytes of transactions and evidence items (see
    /// [`crate::block::tx_bytes_max`], with no evidence).
    pub tx_bytes_max: usize,
}

/// What [`select_transactions`] returns.
#[derive(Debug)]
pub struct Selection {
    /// The evidence kept, in order.
    pub evidence: Vec<Evidence>,
    /// The transactions kept, in order.
    pub txs: Vec<SignedTransaction>,
    /// Their outcome.
    pub outcome: Outcome,
    /// The transactions refused, with their reasons.
    pub refused: Vec<(Hash, TxError)>,
}

/// Builds the body of a proposal on `base`: records each item of `evidence` that G7 accepts (at
/// most [`crate::block::BLOCK_EVIDENCE_MAX`]; the others are left out), then takes `candidates`
/// in order, keeping each that applies (its signature already checked by the caller) until the
/// budget, less the evidence's bytes, is spent. Candidates left over when the budget runs out
/// are neither kept nor refused: they wait for the next block. Fails only when `base`'s state
/// tree is damaged.
pub fn select_transactions<R: StateReader + TreeReader + ?Sized>(
    rules: &Rules,
    base: &R,
    height: u64,
    proposer: &Address,
    evidence: Vec<Evidence>,
    candidates: Vec<SignedTransaction>,
    budget: BlockBudget,
) -> Result<Selection, MissingNode> {
    let mut overlay = Overlay::new(base, rules);
    let mut kept_evidence = Vec::new();
    for item in evidence {
        if kept_evidence.len() < crate::block::BLOCK_EVIDENCE_MAX && overlay.record_evidence(&item, height).is_ok() {
            kept_evidence.push(item);
        }
    }
    let evidence_bytes: usize = kept_evidence.iter().map(codec::encoded_len).sum();
    let budget = BlockBudget { tx_bytes_max: budget.tx_bytes_max.saturating_sub(evidence_bytes), ..budget };
    let mut kept = Vec::new();
    let mut kept_bytes = 0usize;
    let mut receipts = Vec::new();
    let mut refused = Vec::new();
    for stx in candidates {
        let bytes = codec::encoded_len(&stx);
        if kept.len() >= budget.txs_max || kept_bytes.saturating_add(bytes) > budget.tx_bytes_max {
            break;
        }
        match overlay.apply(&stx, height, proposer) {
            Ok(()) => {
                receipts.push(overlay.receipt(&stx));
                kept.push(stx);
                kept_bytes = kept_bytes.saturating_add(bytes);
            }
            Err(e) => refused.push((stx.hash(), e)),
        }
    }
    overlay.end_block(height);
    let (changes, governance) = overlay.into_changes();
    let tree = next_tree(base, &changes, governance.as_deref())?;
    let outcome = Outcome { changes, governance, state_root: tree.root, tree: tree.nodes, receipts };
    Ok(Selection { evidence: kept_evidence, txs: kept, outcome, refused })
}
