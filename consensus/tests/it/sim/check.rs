//! The invariants every run asserts: agreement, valid certificates, no honest equivocation,
//! evidence only against Byzantine validators.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use taksa_consensus::engine::{Config, Message};
use taksa_consensus::vote::VoteKind;
use taksa_consensus::{Address, Certificate, Evidence, Hash, ValidatorSet, Vote};

/// One verified signature: (epoch, signer index, kind, view, block, signature).
type SignatureKey = (u64, usize, VoteKind, u64, Option<Hash>, [u8; 64]);

pub(crate) struct Checker {
    cfg: Config,
    honest: BTreeSet<Address>,
    /// Signatures already verified in some certificate: (signer, kind, view, block, signature).
    verified: HashSet<SignatureKey>,
    /// Every vote honest validators sent: (signer, epoch, view, kind) -> block.
    votes: BTreeMap<(Address, u64, u64, VoteKind), Option<Hash>>,
    /// The validator set of each epoch known so far (epoch 0's from the configuration).
    sets: BTreeMap<u64, ValidatorSet>,
    /// The first block finalized at each height, by any node.
    finalized: BTreeMap<u64, Hash>,
    /// Conflicting votes each Byzantine node sent to every other node.
    equivocations: BTreeMap<usize, u64>,
}

impl Checker {
    pub(crate) fn new(cfg: Config, honest: BTreeSet<Address>) -> Checker {
        let sets = BTreeMap::from([(0, cfg.validators.clone())]);
        Checker {
            cfg,
            sets,
            honest,
            verified: HashSet::new(),
            votes: BTreeMap::new(),
            finalized: BTreeMap::new(),
            equivocations: BTreeMap::new(),
        }
    }

    /// Every certificate an engine emits or an honest node sends verifies. The crate's
    /// `Certificate::verify` is the judge; a certificate whose every signature it already
    /// accepted (in another certificate) only gets the shape checks again.
    /// The set of `epoch`, as the honest chain decided it (the simulation tells the checker
    /// when an honest node starts an epoch; agreement is checked apart).
    pub(crate) fn learn_epoch(&mut self, epoch: u64, set: ValidatorSet) -> Result<(), String> {
        let known = self.sets.entry(epoch).or_insert_with(|| set.clone());
        if *known != set {
            return Err(format!("AGREEMENT VIOLATED: two validator sets for epoch {epoch}"));
        }
        Ok(())
    }

    pub(crate) fn certificate(&mut self, cert: &Certificate) -> Result<(), String> {
        let key =
            |i: usize, s: &taksa_consensus::Signature| (cert.epoch, i, cert.kind, cert.view, cert.block_hash, s.0);
        let Some(set) = self.sets.get(&cert.epoch) else {
            return Err(format!("a certificate of epoch {}, whose set no honest node knows", cert.epoch));
        };
        let indices = cert.signer_indices();
        let n = set.len();
        let shape_ok = (cert.kind == VoteKind::Nullify) == cert.block_hash.is_none()
            && cert.signers.len() == n.div_ceil(8)
            && indices.len() == cert.signatures.len()
            && indices.len() >= set.quorum();
        if shape_ok && indices.iter().zip(&cert.signatures).all(|(&i, s)| self.verified.contains(&key(i, s))) {
            return Ok(());
        }
        cert.verify(&self.cfg.domain.at_epoch(cert.epoch), set)
            .map_err(|e| format!("certificate for view {} of epoch {} does not verify: {e}", cert.view, cert.epoch))?;
        for (&i, s) in indices.iter().zip(&cert.signatures) {
            self.verified.insert(key(i, s));
        }
        Ok(())
    }

    pub(crate) fn finalized(&mut self, cert: &Certificate, hash: Hash) -> Result<(), String> {
        if cert.kind != VoteKind::Finalize || cert.block_hash != Some(hash) {
            return Err(format!("finalized {hash} with a certificate for {:?} {:?}", cert.kind, cert.block_hash));
        }
        self.certificate(cert)
    }

    /// Agreement: one block per height across all nodes and restarts.
    pub(crate) fn agree(&mut self, height: u64, hash: Hash) -> Result<(), String> {
        let first = *self.finalized.entry(height).or_insert(hash);
        if first != hash {
            return Err(format!("AGREEMENT VIOLATED at height {height}: {first} and {hash} both finalized"));
        }
        Ok(())
    }

    /// No honest validator signs conflicting votes, across restarts.
    pub(crate) fn sent_by_honest(&mut self, msg: &Message) -> Result<(), String> {
        match msg {
            Message::Vote(v) => self.honest_vote(v),
            Message::Proposal { leader_vote, .. } => self.honest_vote(leader_vote),
            Message::Certificate(c) => self.certificate(c),
        }
    }

    fn honest_vote(&mut self, v: &Vote) -> Result<(), String> {
        if !self.honest.contains(&v.signer) {
            return Err(format!("honest node sent a vote signed by {:?}", v.signer));
        }
        let prev = *self.votes.entry((v.signer, v.epoch, v.view, v.kind)).or_insert(v.block_hash);
        let clash = match v.kind {
            VoteKind::Nullify => self.votes.contains_key(&(v.signer, v.epoch, v.view, VoteKind::Finalize)),
            VoteKind::Finalize => self.votes.contains_key(&(v.signer, v.epoch, v.view, VoteKind::Nullify)),
            VoteKind::Notarize => false,
        };
        if prev != v.block_hash || clash {
            return Err(format!(
                "HONEST EQUIVOCATION by {:?} in epoch {} view {} ({:?})",
                v.signer, v.epoch, v.view, v.kind
            ));
        }
        Ok(())
    }

    /// Evidence is valid and accuses a Byzantine validator.
    pub(crate) fn evidence(&mut self, e: &Evidence) -> Result<(), String> {
        let set = self.sets.get(&e.a.epoch).ok_or_else(|| format!("evidence of unknown epoch {}", e.a.epoch))?;
        e.verify(&self.cfg.domain.at_epoch(e.a.epoch), set).map_err(|err| format!("invalid evidence: {err}"))?;
        if self.honest.contains(&e.a.signer) {
            return Err(format!("evidence against honest validator {:?} in view {}", e.a.signer, e.a.view));
        }
        Ok(())
    }

    pub(crate) fn equivocated_to_all(&mut self, node: usize) {
        *self.equivocations.entry(node).or_insert(0) += 1;
    }

    pub(crate) fn equivocations_to_all(&self, node: usize) -> u64 {
        self.equivocations.get(&node).copied().unwrap_or(0)
    }
}
