//! Signature checks with the validators' keys decompressed once, and certificates checked
//! without re-verifying signatures the engine already verified as votes.
//!
//! The rules are exactly [`crate::Vote::verify`] and [`crate::Certificate::verify`] (ZIP-215
//! ed25519, see [`crate::crypto::verify`]); only the work differs: decompressing a key costs
//! about a third of a verification, and a certificate usually repeats votes already checked.

use ed25519_zebra::VerificationKey;

use crate::vote::{Domain, VoteKind};
use crate::{Certificate, Signature, ValidatorSet, Vote};

/// The validators' keys, ready to verify with.
pub(crate) struct Verifier {
    keys: Vec<Option<VerificationKey>>,
}

impl Verifier {
    pub(crate) fn new(validators: &ValidatorSet) -> Verifier {
        let keys = validators.addresses().iter().map(|a| VerificationKey::try_from(a.0 .0).ok()).collect();
        Verifier { keys }
    }

    fn signature_ok(&self, index: usize, msg: &[u8], sig: &Signature) -> bool {
        let Some(Some(key)) = self.keys.get(index) else { return false };
        key.verify(&ed25519_zebra::Signature::from_bytes(&sig.0), msg).is_ok()
    }

    /// [`Vote::verify`] for the signer at `index` of the set.
    pub(crate) fn vote(&self, domain: &Domain, vote: &Vote, index: usize) -> bool {
        vote.epoch == domain.epoch
            && (vote.kind == VoteKind::Nullify) == vote.block_hash.is_none()
            && self.signature_ok(index, &domain.vote_bytes(vote.kind, vote.view, vote.block_hash), &vote.signature)
    }

    /// [`Certificate::verify`], skipping signatures for which `known(index, signature)` says
    /// the very same signature on the very same vote was verified already.
    pub(crate) fn certificate(
        &self,
        domain: &Domain,
        quorum: usize,
        cert: &Certificate,
        known: impl Fn(usize, &Signature) -> bool,
    ) -> bool {
        let n = self.keys.len();
        if cert.epoch != domain.epoch
            || (cert.kind == VoteKind::Nullify) != cert.block_hash.is_none()
            || cert.signers.len() != n.div_ceil(8)
        {
            return false;
        }
        let indices = cert.signer_indices();
        if indices.iter().any(|&i| i >= n) || indices.len() != cert.signatures.len() || indices.len() < quorum {
            return false;
        }
        let msg = domain.vote_bytes(cert.kind, cert.view, cert.block_hash);
        indices.iter().zip(&cert.signatures).all(|(&i, sig)| known(i, sig) || self.signature_ok(i, &msg, sig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Hash, Keypair};
    use crate::Address;

    #[test]
    fn verifier_agrees_with_the_crate_rules() {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect());
        let domain = Domain { chain_id: "t".into(), genesis_hash: Hash([1; 32]), epoch: 0 };
        let v = Verifier::new(&set);
        let votes: Vec<Vote> =
            keys.iter().map(|k| Vote::sign(&domain, k, VoteKind::Notarize, 3, Some(Hash([2; 32])))).collect();
        let mut cert = Certificate::from_votes(&set, 0, VoteKind::Notarize, 3, Some(Hash([2; 32])), &votes[..3]);
        assert!(v.vote(&domain, &votes[0], 0) && votes[0].verify(&domain, &set).is_ok());
        assert!(!v.vote(&domain, &votes[0], 1), "another validator's key");
        assert!(v.certificate(&domain, set.quorum(), &cert, |_, _| false));
        cert.signatures[1].0[3] ^= 1;
        assert!(!v.certificate(&domain, set.quorum(), &cert, |_, _| false));
        assert!(cert.verify(&domain, &set).is_err());
        let two = Certificate::from_votes(&set, 0, VoteKind::Notarize, 3, Some(Hash([2; 32])), &votes[..2]);
        assert!(!v.certificate(&domain, set.quorum(), &two, |_, _| true), "short of a quorum");
    }
}
