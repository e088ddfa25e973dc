//! Votes, certificates and evidence of the Simplex-style protocol (see [`crate::engine`]).
//!
//! What a validator signs: `encode(chain_id) || genesis_hash || b"taksa/consensus/v2" || epoch
//! (u64 LE) || kind (1 byte) || view (u64 LE) || encode(Option<block_hash>)`. The epoch names the
//! validator set whose round this is ([`crate::governance`]): a vote or certificate of one epoch
//! never counts in another.

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::{self, Hash, Keypair, Signature};
use crate::{Address, Error, ValidatorSet};

/// The domain tag inside every vote's signed bytes.
pub const VOTE_DOMAIN: &[u8] = b"taksa/consensus/v2";

/// The three kinds of vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum VoteKind {
    /// "This block is the first valid proposal I saw for this view."
    Notarize,
    /// "Skip this view": timeout, invalid proposal or equivocating leader.
    Nullify,
    /// "I saw this block notarized and did not nullify the view."
    Finalize,
}

impl VoteKind {
    fn tag(self) -> u8 {
        match self {
            VoteKind::Notarize => 0,
            VoteKind::Nullify => 1,
            VoteKind::Finalize => 2,
        }
    }
}

/// The network identity every vote commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash.
    pub genesis_hash: Hash,
    /// The epoch whose validators sign (0 from genesis).
    pub epoch: u64,
}

impl Domain {
    /// This network's domain in another epoch.
    pub fn at_epoch(&self, epoch: u64) -> Domain {
        Domain { epoch, ..self.clone() }
    }

    /// The bytes a validator signs for a vote of this domain's epoch.
    pub fn vote_bytes(&self, kind: VoteKind, view: u64, block_hash: Option<Hash>) -> Vec<u8> {
        let mut out = Vec::with_capacity(136);
        codec::encode_into(&self.chain_id, &mut out);
        out.extend_from_slice(&self.genesis_hash.0);
        out.extend_from_slice(VOTE_DOMAIN);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.push(kind.tag());
        out.extend_from_slice(&view.to_le_bytes());
        codec::encode_into(&block_hash, &mut out);
        out
    }
}

/// One validator's signed vote.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Vote {
    /// The epoch: whose set this vote counts in.
    pub epoch: u64,
    /// What kind.
    pub kind: VoteKind,
    /// The view voted on.
    pub view: u64,
    /// The block, for notarize and finalize; `None` for nullify.
    pub block_hash: Option<Hash>,
    /// The validator.
    pub signer: Address,
    /// The signature over [`Domain::vote_bytes`].
    pub signature: Signature,
}

impl Vote {
    /// Signs a vote.
    pub fn sign(domain: &Domain, key: &Keypair, kind: VoteKind, view: u64, block_hash: Option<Hash>) -> Vote {
        let signature = key.sign(&domain.vote_bytes(kind, view, block_hash));
        Vote { epoch: domain.epoch, kind, view, block_hash, signer: Address(key.public()), signature }
    }

    /// Checks epoch, shape, membership and signature: `validators` must be the set of
    /// `domain.epoch`.
    pub fn verify(&self, domain: &Domain, validators: &ValidatorSet) -> Result<(), Error> {
        if self.epoch != domain.epoch {
            return Err(Error::BadVote(format!("a vote of epoch {}, expected {}", self.epoch, domain.epoch)));
        }
        if (self.kind == VoteKind::Nullify) != self.block_hash.is_none() {
            return Err(Error::BadVote("nullify votes carry no block hash; the others carry one".into()));
        }
        if validators.index_of(&self.signer).is_none() {
            return Err(Error::BadVote(format!("signer {:?} is not a validator", self.signer)));
        }
        crypto::verify(&self.signer.0, &domain.vote_bytes(self.kind, self.view, self.block_hash), &self.signature)
            .map_err(|_| Error::BadSignature)
    }

    /// Whether `other` is a vote by the same signer that conflicts with this one: two
    /// different blocks notarized (or finalized) in one view, or a nullify and a finalize.
    pub fn conflicts_with(&self, other: &Vote) -> bool {
        if self.signer != other.signer || self.view != other.view || self.epoch != other.epoch {
            return false;
        }
        use VoteKind::*;
        match (self.kind, other.kind) {
            (Notarize, Notarize) | (Finalize, Finalize) => self.block_hash != other.block_hash,
            (Nullify, Finalize) | (Finalize, Nullify) => true,
            _ => false,
        }
    }
}

/// A quorum of votes of one kind for one (view, block): the proof that moves the chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Certificate {
    /// The epoch: whose set signed.
    pub epoch: u64,
    /// What kind of votes.
    pub kind: VoteKind,
    /// The view.
    pub view: u64,
    /// The block, for notarization and finalization certificates.
    pub block_hash: Option<Hash>,
    /// Bit i (little-endian within each byte) set when validator i signed.
    pub signers: Vec<u8>,
    /// The signatures, in validator order of the set bits.
    pub signatures: Vec<Signature>,
}

impl Certificate {
    /// Builds a certificate of `validators` (the set of `epoch`) from the votes that match
    /// `epoch`, `kind`, `view` and `block_hash`; votes of non-validators and repeated signers are
    /// skipped. Does not check the quorum.
    pub fn from_votes<'a>(
        validators: &ValidatorSet,
        epoch: u64,
        kind: VoteKind,
        view: u64,
        block_hash: Option<Hash>,
        votes: impl IntoIterator<Item = &'a Vote>,
    ) -> Certificate {
        let mut by_index: Vec<Option<Signature>> = vec![None; validators.len()];
        for v in votes {
            if v.epoch == epoch && v.kind == kind && v.view == view && v.block_hash == block_hash {
                if let Some(slot) = validators.index_of(&v.signer).and_then(|i| by_index.get_mut(i)) {
                    *slot = Some(v.signature);
                }
            }
        }
        let mut signers = vec![0u8; validators.len().div_ceil(8)];
        let mut signatures = Vec::new();
        for (i, sig) in by_index.iter().enumerate() {
            if let (Some(sig), Some(byte)) = (sig, signers.get_mut(i / 8)) {
                *byte |= 1 << (i % 8);
                signatures.push(*sig);
            }
        }
        Certificate { epoch, kind, view, block_hash, signers, signatures }
    }

    /// The indices of the validators that signed.
    pub fn signer_indices(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (byte_i, byte) in self.signers.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    out.push(byte_i * 8 + bit);
                }
            }
        }
        out
    }

    /// Checks that this is a verifying finalization of the block with `header`: kind and block
    /// hash name it, its view is the block's (or later: an epoch's last block may be finalized
    /// in the view of its re-proposal, rule R1 of [`crate::engine`]), and the quorum's
    /// signatures verify. `domain` and `validators` are the block's epoch's.
    pub fn verify_finalizes(
        &self,
        header: &crate::Header,
        domain: &Domain,
        validators: &ValidatorSet,
    ) -> Result<(), Error> {
        if !self.names_final(header) {
            return Err(Error::BadCertificate(format!("not a finalization of block {}", header.hash())));
        }
        self.verify(domain, validators)
    }

    /// The part of [`Certificate::verify_finalizes`] that needs no validator set: a
    /// finalization of the block with `header`, in its view or a later one.
    pub fn names_final(&self, header: &crate::Header) -> bool {
        self.kind == VoteKind::Finalize && self.block_hash == Some(header.hash()) && self.view >= header.view
    }

    /// Checks the epoch, the bitmap, the quorum and every signature (on every core):
    /// `validators` must be the set of `domain.epoch`.
    pub fn verify(&self, domain: &Domain, validators: &ValidatorSet) -> Result<(), Error> {
        if self.epoch != domain.epoch {
            return Err(Error::BadCertificate(format!(
                "a certificate of epoch {}, expected {}",
                self.epoch, domain.epoch
            )));
        }
        if (self.kind == VoteKind::Nullify) != self.block_hash.is_none() {
            return Err(Error::BadCertificate("nullifications carry no block hash; the others carry one".into()));
        }
        if self.signers.len() != validators.len().div_ceil(8) {
            return Err(Error::BadCertificate(format!(
                "signer bitmap is {} bytes for {} validators",
                self.signers.len(),
                validators.len()
            )));
        }
        let indices = self.signer_indices();
        if indices.iter().any(|&i| i >= validators.len()) {
            return Err(Error::BadCertificate("signer bitmap names a validator beyond the set".into()));
        }
        if indices.len() != self.signatures.len() {
            return Err(Error::BadCertificate(format!(
                "{} signers but {} signatures",
                indices.len(),
                self.signatures.len()
            )));
        }
        if indices.len() < validators.quorum() {
            return Err(Error::BadCertificate(format!("{} signers, quorum is {}", indices.len(), validators.quorum())));
        }
        let msg = domain.vote_bytes(self.kind, self.view, self.block_hash);
        let keys: Vec<_> = indices.iter().filter_map(|&i| validators.get(i)).map(|a| a.0).collect();
        let items: Vec<crypto::VerifyItem<'_>> =
            keys.iter().zip(&self.signatures).map(|(k, s)| (k, msg.as_slice(), s)).collect();
        crypto::verify_many(&items).map_err(|i| Error::BadCertificate(format!("signature {i} does not verify")))
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// Two conflicting votes signed by one validator for one view: proof of misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Evidence {
    /// The first vote.
    pub a: Vote,
    /// The vote that conflicts with it.
    pub b: Vote,
}

impl Evidence {
    /// Its hash: SHA-256 of its canonical bytes (the leaves of a block's `evidence_root`).
    pub fn hash(&self) -> Hash {
        Hash::of(&[&codec::encode(self)])
    }

    /// Checks that both votes are valid, by the same validator, and conflict.
    pub fn verify(&self, domain: &Domain, validators: &ValidatorSet) -> Result<(), Error> {
        self.a.verify(domain, validators)?;
        self.b.verify(domain, validators)?;
        if !self.a.conflicts_with(&self.b) {
            return Err(Error::BadVote("evidence votes do not conflict".into()));
        }
        Ok(())
    }
}
