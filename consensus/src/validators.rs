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

    /// The leader of `view`: round-robin over the list.
    pub fn leader(&self, view: u64) -> Address {
        let n = self.validators.len().max(1) as u64;
        // The modulo is below len, which fits usize.
        let i = usize::try_from(view % n).unwrap_or(0);
        self.validators.get(i).copied().unwrap_or_default()
    }

    /// The hash headers commit to.
    pub fn hash(&self) -> Hash {
        Hash::of(&[b"taksa/validators/v1", &codec::encode(&self.validators)])
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
    fn leaders_rotate_round_robin() {
        let s = set(4);
        let leaders: Vec<u8> = (0..6).map(|v| s.leader(v).as_bytes()[0]).collect();
        assert_eq!(leaders, vec![0, 1, 2, 3, 0, 1]);
    }
}
