//! Validator-set changes by on-chain vote (rules G1 to G6).
//!
//! The validator set is state: [`Governance`] holds the set of the current epoch, the changes
//! collecting votes and the changes that passed, and is one entry of the state tree (key
//! [`governance_key`], value the hash of its encoding), so it is proven like an account.
//!
//! - **G1 who votes.** An [`Action`] rides in a transaction from a validator of the current set
//!   to itself, with amount 0 (the fee floor does not apply; nonces do). Anyone else's is refused.
//! - **G2 a vote is a proposal.** [`Action::Vote`] names a whole [`Change`]; the first vote
//!   opens it, the same change from another validator adds a vote. A validator votes once per
//!   change and may [`Action::Withdraw`] its vote while the change is pending.
//! - **G3 validity.** A change is checked, at every vote, against the set as it will be once the
//!   changes that passed this epoch apply: an add names a new key of large order and a name of 1
//!   to [`NAME_BYTES_MAX`] bytes and keeps the set at most [`VALIDATORS_MAX`]; a removal names a
//!   member and leaves at least one; a rotation replaces a member by a new key, which signs
//!   [`rotation_bytes`] (so no one rotates to a key they do not hold).
//! - **G4 passing.** A change passes in the block whose vote brings it to q = n - f votes of the
//!   current set; it joins `passed` and stops collecting votes.
//! - **G5 epochs.** After the last block of an epoch executes, the passed changes apply in the
//!   order they passed; pending changes that the new, smaller quorum already reached pass; changes opened [`PENDING_LIFETIME_BLOCKS`] (or two epochs, if longer)
//!   before its end expire, and votes of validators who left are dropped. The set in the state after a block is therefore the set
//!   of the next block's epoch. Consensus starts that epoch only once the boundary block is
//!   final, so every honest node uses the same set ([`crate::engine`], rule R1).
//! - **G6 bounds.** At most [`PENDING_MAX`] changes are pending, one opened by each validator
//!   (the first voter of a change opened it), and [`PASSED_MAX`] pass per epoch, so the entry
//!   stays small and f validators cannot take every slot.
//! - **G7 offences.** A block carries at most [`crate::block::BLOCK_EVIDENCE_MAX`] items of
//!   equivocation [`Evidence`] (two conflicting votes of one validator in one view), recorded
//!   before its transactions apply. Each must be of the block's own epoch, verify against that
//!   epoch's set and domain, and name a validator with no [`Offence`] recorded in that epoch yet;
//!   a block with any other is invalid. The record keeps the offences of the current and the
//!   last epoch (older ones go at G5; the blocks keep every item), at most one per validator per
//!   epoch, so it is bounded by twice [`VALIDATORS_MAX`]. Every node holds the same record, which
//!   is what a vote to remove the offender cites; the vote itself is as any other (G2 to G4).

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::{self, Hash, Signature};
use crate::tx::TxError;
use crate::vote::{Domain, Evidence};
use crate::{Address, Epochs, ValidatorSet};

/// The most validators a set may hold: certificates carry one signature per signer.
pub const VALIDATORS_MAX: usize = 100;
/// The longest validator name, in bytes of UTF-8.
pub const NAME_BYTES_MAX: usize = 32;
/// The most changes collecting votes at once (G6).
pub const PENDING_MAX: usize = 16;
/// The most changes that may pass in one epoch (G6).
pub const PASSED_MAX: usize = 16;
/// The longest encoded [`Action`] a transaction may carry.
pub const ACTION_BYTES_MAX: usize = 256;
/// The domain tag of a rotation's proof.
pub const ROTATION_DOMAIN: &[u8] = b"taksa/validator/rotate/v1";

/// The state tree key of the governance entry (T1 of [`crate::tree`]): a domain of its own,
/// apart from every account key.
pub fn governance_key() -> Hash {
    Hash::of(&[b"taksa/state/validators"])
}

/// What a new key signs to consent to replace `old` on this network (G3).
pub fn rotation_bytes(genesis_hash: &Hash, old: &Address) -> Vec<u8> {
    let mut out = Vec::with_capacity(ROTATION_DOMAIN.len() + 64);
    out.extend_from_slice(ROTATION_DOMAIN);
    out.extend_from_slice(&genesis_hash.0);
    out.extend_from_slice(old.as_bytes());
    out
}

/// A validator: its key and display name.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Validator {
    /// Its key (address).
    pub address: Address,
    /// A display name.
    pub name: String,
}

/// A change to the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Change {
    /// Add a validator at the end of the leader order.
    Add {
        /// Its key.
        key: Address,
        /// Its display name.
        name: String,
    },
    /// Remove a validator.
    Remove {
        /// Its key.
        key: Address,
    },
    /// Replace a validator's key, keeping its place and name.
    Rotate {
        /// The key replaced.
        old: Address,
        /// The new key.
        new: Address,
        /// The new key's signature over [`rotation_bytes`].
        proof: Signature,
    },
}

impl Change {
    /// The change's id: what votes and withdrawals name.
    pub fn id(&self) -> Hash {
        Hash::of(&[b"taksa/validator/change", &codec::encode(self)])
    }
}

/// What a governance transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Action {
    /// Vote for a change, opening it if no one has yet (G2).
    Vote(Change),
    /// Take back our vote from a pending change.
    Withdraw(Hash),
}

/// How long a change may collect votes, in heights, at the least: validators vote by hand, so
/// short epochs must not make changes expire before they can gather a quorum.
pub const PENDING_LIFETIME_BLOCKS: u64 = 600;

/// A change collecting votes.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Pending {
    /// The change.
    pub change: Change,
    /// Who voted for it, in vote order (members of the current set).
    pub voters: Vec<Address>,
    /// The height of the block in which it was opened (it expires, G5, at the end of the
    /// first epoch ending [`Pending::lifetime`] heights after it).
    pub opened_height: u64,
}

impl Pending {
    /// The height from which it may expire: [`PENDING_LIFETIME_BLOCKS`] or two epochs after it
    /// opened, whichever is longer. It expires at the end of the epoch that reaches it.
    pub fn expires_at(&self, epochs: Epochs) -> u64 {
        let lifetime = PENDING_LIFETIME_BLOCKS.max(epochs.length.saturating_mul(2));
        self.opened_height.saturating_add(lifetime)
    }

    /// The last epoch in which it may still pass.
    pub fn last_epoch(&self, epochs: Epochs) -> u64 {
        epochs.of_height(self.expires_at(epochs))
    }
}

/// A change that passed, waiting for its epoch's end.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Passed {
    /// The change.
    pub change: Change,
    /// The height of the block in which it passed.
    pub height: u64,
}

/// A validator's proven equivocation, as a block recorded it (G7).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Offence {
    /// Who signed both votes.
    pub validator: Address,
    /// The epoch and view they were signed in.
    pub epoch: u64,
    /// The view.
    pub view: u64,
    /// The height of the block that carries the evidence.
    pub height: u64,
    /// The evidence's hash ([`Evidence::hash`]): the item in that block.
    pub evidence: Hash,
}

/// The validator set and the votes on changing it: one state entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Governance {
    /// The set of the epoch of the next block, in leader order.
    pub validators: Vec<Validator>,
    /// Changes collecting votes, oldest first.
    pub pending: Vec<Pending>,
    /// Changes that passed this epoch, in the order they passed.
    pub passed: Vec<Passed>,
    /// Offences of this epoch and the last, in the order they were recorded (G7).
    pub offences: Vec<Offence>,
}

impl Governance {
    /// The governance of a new chain: `validators`, nothing pending.
    pub fn genesis(validators: Vec<Validator>) -> Governance {
        Governance { validators, pending: Vec::new(), passed: Vec::new(), offences: Vec::new() }
    }

    /// G7: records `evidence`, carried by the block at `height` of `epoch`, whose votes sign
    /// under `domain` (that epoch's). Refuses, changing nothing, evidence of another epoch, that
    /// does not verify against the current set, or against a validator already recorded for
    /// the epoch.
    pub fn record_offence(
        &mut self,
        evidence: &Evidence,
        height: u64,
        epoch: u64,
        domain: &Domain,
    ) -> Result<(), String> {
        let (a, b) = (&evidence.a, &evidence.b);
        if a.epoch != epoch || b.epoch != epoch {
            return Err(format!("evidence of epoch {}; a block of epoch {epoch} records its own epoch's", a.epoch));
        }
        // The cheap check first: a proposer offers the evidence it holds at every proposal.
        if self.offences.iter().any(|o| o.validator == a.signer && o.epoch == epoch) {
            return Err(format!("{:?} already has an offence recorded in epoch {epoch}", a.signer));
        }
        evidence.verify(domain, &self.set()).map_err(|e| e.to_string())?;
        self.offences.push(Offence { validator: a.signer, epoch, view: a.view, height, evidence: evidence.hash() });
        Ok(())
    }

    /// The set, for consensus.
    pub fn set(&self) -> ValidatorSet {
        ValidatorSet::new(self.validators.iter().map(|v| v.address).collect())
    }

    /// The hash the state tree holds for this entry.
    pub fn value_hash(&self) -> Hash {
        Hash::of(&[&codec::encode(self)])
    }

    /// Whether `a` is in the current set.
    pub fn is_validator(&self, a: &Address) -> bool {
        self.validators.iter().any(|v| v.address == *a)
    }

    /// The set as it will be once the passed changes apply.
    pub fn projected(&self) -> Vec<Validator> {
        let mut set = self.validators.clone();
        for p in &self.passed {
            apply(&mut set, &p.change);
        }
        set
    }

    /// Whether `action` by `from` would be refused on this state whatever comes before it in a
    /// block: G1 to G4 but the rotation proof (checked at execution; it needs the genesis
    /// hash). The pool drops what fails here.
    pub fn precheck(&self, action: &Action, from: &Address) -> Result<(), TxError> {
        self.clone().apply(action, from, 0, None)
    }

    /// Applies `action` signed by `from` in the block at `height` (G1 to G4), or changes nothing
    /// and says why.
    pub fn apply_action(
        &mut self,
        action: &Action,
        from: &Address,
        height: u64,
        genesis_hash: &Hash,
    ) -> Result<(), TxError> {
        self.apply(action, from, height, Some(genesis_hash))
    }

    fn apply(
        &mut self,
        action: &Action,
        from: &Address,
        height: u64,
        genesis_hash: Option<&Hash>,
    ) -> Result<(), TxError> {
        let refuse = |why: String| Err(TxError::Governance(why));
        if !self.is_validator(from) {
            return refuse("only a validator of the current set may vote on the set".into());
        }
        match action {
            Action::Withdraw(id) => {
                let Some(at) = self.pending.iter().position(|p| p.change.id() == *id) else {
                    return refuse(format!("no pending change {id}"));
                };
                let Some(p) = self.pending.get_mut(at) else { return refuse(format!("no pending change {id}")) };
                let before = p.voters.len();
                p.voters.retain(|v| v != from);
                if p.voters.len() == before {
                    return refuse(format!("no vote of this validator on change {id}"));
                }
                if p.voters.is_empty() {
                    self.pending.remove(at);
                }
                Ok(())
            }
            Action::Vote(change) => {
                let id = change.id();
                if self.passed.len() >= PASSED_MAX {
                    return refuse(format!("{PASSED_MAX} changes passed this epoch already; vote in the next"));
                }
                if self.passed.iter().any(|p| p.change.id() == id) {
                    return refuse(format!("change {id} passed already; it applies at the end of this epoch"));
                }
                check_change(&self.projected(), change, genesis_hash).map_err(TxError::Governance)?;
                let at = match self.pending.iter().position(|p| p.change.id() == id) {
                    Some(at) => at,
                    None => {
                        if self.pending.len() >= PENDING_MAX {
                            return refuse(format!("{PENDING_MAX} changes are pending already"));
                        }
                        if self.pending.iter().any(|p| p.voters.first() == Some(from)) {
                            // One open change per validator, so that f of them cannot take
                            // every slot (withdrawing and reopening keeps to one too).
                            return refuse(
                                "this validator opened a change that is still pending; vote for others' changes, \
                                 or withdraw it first"
                                    .into(),
                            );
                        }
                        self.pending.push(Pending {
                            change: change.clone(),
                            voters: Vec::new(),
                            opened_height: height,
                        });
                        self.pending.len() - 1
                    }
                };
                let quorum = self.set().quorum();
                let Some(p) = self.pending.get_mut(at) else { return refuse("internal: pending change lost".into()) };
                if p.voters.contains(from) {
                    return refuse(format!("this validator voted for change {id} already"));
                }
                p.voters.push(*from);
                if p.voters.len() >= quorum {
                    let p = self.pending.remove(at);
                    self.passed.push(Passed { change: p.change, height });
                }
                Ok(())
            }
        }
    }

    /// G5: the end of `epoch` (after its last block's transactions): the passed changes apply,
    /// old changes expire, votes of validators who left are dropped.
    pub fn end_epoch(&mut self, epoch: u64, epochs: Epochs) {
        let mut set = std::mem::take(&mut self.validators);
        for p in std::mem::take(&mut self.passed) {
            apply(&mut set, &p.change);
        }
        self.validators = set;
        // G7: the next epoch keeps this one's offences, not older ones.
        self.offences.retain(|o| o.epoch >= epoch);
        let members: Vec<Address> = self.validators.iter().map(|v| v.address).collect();
        let last = epochs.last_height(epoch);
        self.pending.retain_mut(|p| {
            p.voters.retain(|v| members.contains(v));
            !p.voters.is_empty() && last < p.expires_at(epochs)
        });
        // A smaller set has a smaller quorum: changes that now have it pass here (they apply at
        // the end of the next epoch), if still valid on the set they would change.
        let quorum = self.set().quorum();
        let mut at = 0;
        while let Some(p) = self.pending.get(at) {
            let valid = check_change(&self.projected(), &p.change, None).is_ok();
            if p.voters.len() >= quorum && valid && self.passed.len() < PASSED_MAX {
                let p = self.pending.remove(at);
                self.passed.push(Passed { change: p.change, height: last });
            } else {
                at += 1;
            }
        }
    }
}

/// G3 against the set `set` (the projected one); the rotation proof only with `genesis_hash`.
fn check_change(set: &[Validator], change: &Change, genesis_hash: Option<&Hash>) -> Result<(), String> {
    let member = |a: &Address| set.iter().any(|v| v.address == *a);
    match change {
        Change::Add { key, name } => {
            if member(key) {
                return Err(format!("{key:?} is a validator already"));
            }
            if name.is_empty() || name.len() > NAME_BYTES_MAX {
                return Err(format!("a validator's name is 1 to {NAME_BYTES_MAX} bytes"));
            }
            if name.chars().any(char::is_control) {
                return Err("a validator's name has no control characters".into());
            }
            if !crypto::is_account_key(&key.0) {
                return Err("the new validator's key is not an ed25519 key of large order".into());
            }
            if set.len() >= VALIDATORS_MAX {
                return Err(format!("the set holds {VALIDATORS_MAX} validators, its most"));
            }
        }
        Change::Remove { key } => {
            if !member(key) {
                return Err(format!("{key:?} is not a validator"));
            }
            if set.len() <= 1 {
                return Err("the last validator cannot be removed: a chain needs one".into());
            }
        }
        Change::Rotate { old, new, proof } => {
            if !member(old) {
                return Err(format!("{old:?} is not a validator"));
            }
            if member(new) {
                return Err(format!("{new:?} is a validator already"));
            }
            if !crypto::is_account_key(&new.0) {
                return Err("the new key is not an ed25519 key of large order".into());
            }
            let signed = |g: &Hash| crypto::verify(&new.0, &rotation_bytes(g, old), proof).is_ok();
            if genesis_hash.is_some_and(|g| !signed(g)) {
                return Err("the new key did not sign the rotation".into());
            }
        }
    }
    Ok(())
}

/// Applies one checked change to `set`.
fn apply(set: &mut Vec<Validator>, change: &Change) {
    match change {
        Change::Add { key, name } => {
            if !set.iter().any(|v| v.address == *key) {
                set.push(Validator { address: *key, name: name.clone() });
            }
        }
        Change::Remove { key } => {
            if set.len() > 1 {
                set.retain(|v| v.address != *key);
            }
        }
        Change::Rotate { old, new, .. } => {
            if !set.iter().any(|v| v.address == *new) {
                if let Some(v) = set.iter_mut().find(|v| v.address == *old) {
                    v.address = *new;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    const G: Hash = Hash([9; 32]);

    fn key(i: u8) -> Keypair {
        Keypair::from_seed(&[i; 32])
    }

    fn addr(i: u8) -> Address {
        Address(key(i).public())
    }

    fn gov(n: u8) -> Governance {
        Governance::genesis((1..=n).map(|i| Validator { address: addr(i), name: format!("v{i}") }).collect())
    }

    fn add(i: u8) -> Action {
        Action::Vote(Change::Add { key: addr(i), name: format!("v{i}") })
    }

    const E: Epochs = Epochs { length: 10 };

    #[test]
    fn a_change_passes_at_a_quorum_and_applies_at_the_epochs_end() {
        let mut g = gov(4);
        assert_eq!(g.set().quorum(), 3);
        for voter in 1..=2 {
            g.apply_action(&add(5), &addr(voter), 3, &G).expect("vote");
        }
        assert_eq!((g.pending.len(), g.passed.len()), (1, 0));
        g.apply_action(&add(5), &addr(3), 4, &G).expect("third vote");
        assert_eq!((g.pending.len(), g.passed.len()), (0, 1));
        assert_eq!(g.validators.len(), 4, "nothing changes before the epoch ends");
        assert!(g.apply_action(&add(5), &addr(4), 5, &G).is_err(), "passed already");
        g.end_epoch(0, E);
        assert_eq!(g.set().addresses(), &[addr(1), addr(2), addr(3), addr(4), addr(5)]);
        assert!(g.passed.is_empty());
    }

    fn domain(epoch: u64) -> Domain {
        Domain { chain_id: "taksa-test".into(), genesis_hash: G, epoch }
    }

    /// Validator `i`'s two notarizations of different blocks in `view` of `epoch`.
    fn equivocation(i: u8, epoch: u64, view: u64) -> Evidence {
        use crate::vote::{Vote, VoteKind};
        let d = domain(epoch);
        Evidence {
            a: Vote::sign(&d, &key(i), VoteKind::Notarize, view, Some(Hash([1; 32]))),
            b: Vote::sign(&d, &key(i), VoteKind::Notarize, view, Some(Hash([2; 32]))),
        }
    }

    #[test]
    fn an_equivocation_of_the_epoch_is_recorded_once_and_kept_one_epoch_more() {
        let mut g = gov(4);
        let e = equivocation(2, 3, 7);
        g.record_offence(&e, 35, 3, &domain(3)).expect("recorded");
        assert_eq!(g.offences, vec![Offence { validator: addr(2), epoch: 3, view: 7, height: 35, evidence: e.hash() }]);
        let again = equivocation(2, 3, 8);
        assert!(g.record_offence(&again, 36, 3, &domain(3)).is_err(), "one offence per validator per epoch");
        g.record_offence(&equivocation(3, 3, 8), 36, 3, &domain(3)).expect("another validator's");
        g.end_epoch(3, E);
        assert_eq!(g.offences.len(), 2, "the next epoch keeps this one's offences");
        g.record_offence(&equivocation(2, 4, 1), 41, 4, &domain(4)).expect("a new epoch, a new record");
        g.end_epoch(4, E);
        assert_eq!(g.offences.iter().map(|o| o.epoch).collect::<Vec<_>>(), vec![4], "older epochs' go");
    }

    #[test]
    fn evidence_that_proves_nothing_here_is_refused_and_changes_nothing() {
        use crate::vote::{Vote, VoteKind};
        let mut g = gov(4);
        let before = g.clone();
        let other_epoch = equivocation(2, 2, 7);
        assert!(g.record_offence(&other_epoch, 35, 3, &domain(3)).is_err(), "evidence of another epoch");
        assert!(g.record_offence(&equivocation(9, 3, 7), 35, 3, &domain(3)).is_err(), "not a validator");
        let d = domain(3);
        let same = Evidence {
            a: Vote::sign(&d, &key(2), VoteKind::Notarize, 7, Some(Hash([1; 32]))),
            b: Vote::sign(&d, &key(2), VoteKind::Notarize, 7, Some(Hash([1; 32]))),
        };
        assert!(g.record_offence(&same, 35, 3, &d).is_err(), "votes that do not conflict");
        let mut forged = equivocation(2, 3, 7);
        forged.b.signature = forged.a.signature;
        assert!(g.record_offence(&forged, 35, 3, &d).is_err(), "a signature that does not verify");
        let elsewhere = Domain { chain_id: "another-chain".into(), ..domain(3) };
        assert!(g.record_offence(&equivocation(2, 3, 7), 35, 3, &elsewhere).is_err(), "another chain's votes");
        assert_eq!(g, before);
    }

    #[test]
    fn refused_actions_change_nothing() {
        let mut g = gov(4);
        let before = g.clone();
        assert!(g.apply_action(&add(6), &addr(9), 1, &G).is_err(), "not a validator");
        assert!(g.apply_action(&add(2), &addr(1), 1, &G).is_err(), "already a member");
        assert!(g.apply_action(&Action::Withdraw(Hash([1; 32])), &addr(1), 1, &G).is_err());
        let bad_rotation =
            Change::Rotate { old: addr(1), new: addr(7), proof: key(8).sign(&rotation_bytes(&G, &addr(1))) };
        assert!(g.apply_action(&Action::Vote(bad_rotation), &addr(1), 1, &G).is_err(), "wrong signer");
        assert_eq!(g, before);
        g.apply_action(&add(6), &addr(1), 1, &G).expect("vote");
        assert!(g.apply_action(&add(6), &addr(1), 1, &G).is_err(), "a second vote");
    }

    #[test]
    fn a_validator_opens_one_change_at_a_time() {
        let mut g = gov(4);
        g.apply_action(&add(5), &addr(1), 1, &G).expect("opens a change");
        assert!(g.apply_action(&add(6), &addr(1), 1, &G).is_err(), "a second open change");
        g.apply_action(&add(6), &addr(2), 1, &G).expect("another validator opens one");
        g.apply_action(&add(6), &addr(1), 1, &G).expect("and validator 1 may vote for it");
        g.apply_action(&Action::Withdraw(Change::Add { key: addr(5), name: "v5".into() }.id()), &addr(1), 2, &G)
            .expect("withdraws its own");
        g.apply_action(&add(7), &addr(1), 2, &G).expect("then may open another");
        assert_eq!(g.pending.len(), 2);
    }

    #[test]
    fn a_change_passes_at_the_end_of_an_epoch_when_a_smaller_set_reaches_its_quorum() {
        // Seven validators: quorum 5. Four vote to add 9 (validator 4 opens it); five pass the
        // removals of 5 and 6.
        let mut g = gov(7);
        for v in (1..=4).rev() {
            g.apply_action(&add(9), &addr(v), 1, &G).expect("vote");
        }
        for key in [5u8, 6] {
            for v in 1..=5 {
                g.apply_action(&Action::Vote(Change::Remove { key: addr(key) }), &addr(v), 2, &G).expect("vote");
            }
        }
        assert_eq!((g.pending.len(), g.passed.len()), (1, 2));
        g.end_epoch(0, E);
        // Five validators now: quorum 4, which the add had.
        assert_eq!(g.set().len(), 5);
        assert_eq!(
            g.passed.iter().map(|p| p.change.clone()).collect::<Vec<_>>(),
            vec![Change::Add { key: addr(9), name: "v9".into() }]
        );
        assert_eq!(g.passed[0].height, 10, "passed at the boundary");
        g.end_epoch(1, E);
        assert!(g.is_validator(&addr(9)));
    }

    #[test]
    fn the_last_validator_cannot_be_removed() {
        let mut g = gov(1);
        let remove = Action::Vote(Change::Remove { key: addr(1) });
        assert!(g.apply_action(&remove, &addr(1), 1, &G).is_err());
        let mut two = gov(2);
        for v in 1..=2 {
            two.apply_action(&Action::Vote(Change::Remove { key: addr(2) }), &addr(v), 1, &G).expect("vote");
        }
        assert!(
            two.apply_action(&Action::Vote(Change::Remove { key: addr(1) }), &addr(1), 2, &G).is_err(),
            "the projected set would be empty"
        );
    }

    #[test]
    fn rotation_replaces_the_key_in_place_and_withdrawal_takes_a_vote_back() {
        let mut g = gov(4);
        let rotate = Change::Rotate { old: addr(2), new: addr(7), proof: key(7).sign(&rotation_bytes(&G, &addr(2))) };
        g.apply_action(&Action::Vote(rotate.clone()), &addr(2), 1, &G).expect("vote");
        g.apply_action(&Action::Withdraw(rotate.id()), &addr(2), 1, &G).expect("withdraw");
        assert!(g.pending.is_empty(), "no voters left");
        for v in 1..=3 {
            g.apply_action(&Action::Vote(rotate.clone()), &addr(v), 2, &G).expect("vote");
        }
        g.end_epoch(0, E);
        assert_eq!(g.set().addresses(), &[addr(1), addr(7), addr(3), addr(4)]);
        assert_eq!(g.validators.get(1).map(|v| v.name.as_str()), Some("v2"));
    }

    #[test]
    fn pending_changes_expire_after_their_lifetime_and_lose_departed_voters() {
        // Epochs of 10: the lifetime is 600 heights.
        let mut g = gov(4);
        g.apply_action(&add(5), &addr(1), 5, &G).expect("vote at height 5");
        g.end_epoch(59, E);
        assert_eq!(g.pending.len(), 1, "epoch 59 ends at 600, below 605");
        g.end_epoch(60, E);
        assert!(g.pending.is_empty(), "epoch 60 ends at 610, past 605");
        // Long epochs: two of them.
        let long = Epochs::new(1000);
        let mut g = gov(4);
        g.apply_action(&add(5), &addr(1), 5, &G).expect("vote");
        g.end_epoch(1, long);
        assert_eq!(g.pending.len(), 1, "until height 2005");
        assert_eq!(g.pending[0].last_epoch(long), 2);
        g.end_epoch(2, long);
        assert!(g.pending.is_empty());
        // A voter who leaves the set takes its vote along.
        let mut g = gov(4);
        g.apply_action(&add(5), &addr(4), 1, &G).expect("vote");
        for v in 1..=3 {
            g.apply_action(&Action::Vote(Change::Remove { key: addr(4) }), &addr(v), 2, &G).expect("vote");
        }
        g.end_epoch(0, E);
        assert!(g.pending.is_empty(), "the only voter for the add left");
    }
}
