//! The validator set: who votes, who leads which view, and how many make a quorum.

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::Hash;
use crate::Address;

/// The ordered validators of an epoch. With n validators, f = floor((n - 1) / 3) may be faulty
/// and a quorum is q = n - f.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ValidatorSet {
    validators: Vec<Address>,
}

impl ValidatorSet {
    /// A set in leader order.
    pub fn new(validators: Vec<Address>) -> ValidatorSet {
        ValidatorSet { validators }
    }

    /// n.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether the set has no validators (never true for a valid genesis).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// f = floor((n - 1) / 3): how many faulty validators the protocol tolerates.
    pub fn max_faulty(&self) -> usize {
        self.len().saturating_sub(1) / 3
    }

    /// q = n - f.
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    /// The validators in order.
    pub fn addresses(&self) -> &[Address] {
        &self.validators
    }

    /// Validator `i`.
    pub fn get(&self, i: usize) -> Option<&Address> {
        self.validators.get(i)
    }

    /// The position of `a`, if it is a validator.
    pub fn index_of(&self, a: &Address) -> Option<usize> {
        self.validators.iter().position(|v| v == a)
    }

    /// The leader of `view` of epoch 0: round-robin over the list ([`ValidatorSet::leader_in`]).
    pub fn leader(&self, view: u64) -> Address {
        self.leader_in(0, view)
    }

    /// The leader of `view` in `epoch`: round-robin over the list, shifted by the epoch. Views
    /// restart with each epoch; without the shift, epochs shorter than n views would never let
    /// the validators at the end of the list lead.
    pub fn leader_in(&self, epoch: u64, view: u64) -> Address {
        let n = self.validators.len().max(1) as u64;
        // The modulo is below len, which fits usize.
        let i = usize::try_from(view.wrapping_add(epoch % n) % n).unwrap_or(0);
        self.validators.get(i).copied().unwrap_or_default()
    }

    /// The hash headers commit to.
    pub fn hash(&self) -> Hash {
        Hash::of(&[b"taksa/validators/v1", &codec::encode(&self.validators)])
    }
}

/// The chain's epochs: epoch e covers heights `e * length + 1 ..= (e + 1) * length`; its last
/// height is its boundary. Each epoch has one validator set and runs its own consensus rounds
/// (views restart at 1); genesis counts as epoch 0's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epochs {
    /// Heights per epoch, at least 1 (`epoch_length_blocks` in genesis).
    pub length: u64,
}

impl Epochs {
    /// Epochs of `length` heights (0 is taken as 1).
    pub fn new(length: u64) -> Epochs {
        Epochs { length: length.max(1) }
    }

    /// The epoch of the block at `height` (genesis, height 0, is epoch 0's start).
    pub fn of_height(self, height: u64) -> u64 {
        height.saturating_sub(1) / self.length.max(1)
    }

    /// The last height of `epoch`, its boundary.
    pub fn last_height(self, epoch: u64) -> u64 {
        epoch.saturating_add(1).saturating_mul(self.length.max(1))
    }

    /// Whether `height` is an epoch's last (never genesis).
    pub fn is_last(self, height: u64) -> bool {
        height > 0 && height.is_multiple_of(self.length.max(1))
    }

    /// Whether the block at `height` is its epoch's first: its parent is genesis or the last
    /// epoch's boundary, which carries no certificate of this epoch's set.
    pub fn starts_epoch(self, height: u64) -> bool {
        height >= 1 && (height - 1).is_multiple_of(self.length.max(1))
    }

    /// The epoch of the block after `head`: the one a node at `head` runs.
    pub fn after(self, head: u64) -> u64 {
        self.of_height(head.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PublicKey;

    fn set(n: u8) -> ValidatorSet {
        ValidatorSet::new((0..n).map(|i| Address(PublicKey([i; 32]))).collect())
    }

    #[test]
    fn quorum_is_n_minus_f() {
        let q: Vec<(usize, usize)> =
            [1u8, 2, 3, 4, 5, 7, 10].iter().map(|&n| (set(n).max_faulty(), set(n).quorum())).collect();
        assert_eq!(q, vec![(0, 1), (0, 2), (0, 3), (1, 3), (1, 4), (2, 5), (3, 7)]);
    }

    #[test]
    fn epochs_cut_heights_after_genesis() {
        let e = Epochs::new(3);
        let of: Vec<u64> = (0..8).map(|h| e.of_height(h)).collect();
        assert_eq!(of, vec![0, 0, 0, 0, 1, 1, 1, 2]);
        assert_eq!((e.last_height(0), e.last_height(1)), (3, 6));
        let last: Vec<bool> = (0..7).map(|h| e.is_last(h)).collect();
        assert_eq!(last, vec![false, false, false, true, false, false, true]);
        let first: Vec<bool> = (0..8).map(|h| e.starts_epoch(h)).collect();
        assert_eq!(first, vec![false, true, false, false, true, false, false, true]);
        assert_eq!((e.after(0), e.after(2), e.after(3)), (0, 0, 1));
    }

    #[test]
    fn leaders_rotate_round_robin() {
        let s = set(4);
        let leaders: Vec<u8> = (0..6).map(|v| s.leader(v).as_bytes()[0]).collect();
        assert_eq!(leaders, vec![0, 1, 2, 3, 0, 1]);
        let epoch_5: Vec<u8> = (1..5).map(|v| s.leader_in(5, v).as_bytes()[0]).collect();
        assert_eq!(epoch_5, vec![2, 3, 0, 1], "shifted by the epoch");
    }
}
