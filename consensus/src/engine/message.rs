//! What validators send each other: proposals, votes and certificates, in the canonical
//! encoding with a size limit per kind.

use bincode::{Decode, Encode};

use crate::codec;
use crate::vote::{Domain, VoteKind};
use crate::{Block, Certificate, Epochs, Error, ValidatorSet, Vote};

/// The bincode tag of [`Message::Proposal`]: the first four bytes (u32 LE) of its encoding.
const PROPOSAL_TAG: [u8; 4] = [0, 0, 0, 0];

/// The most bytes a decode may claim for containers before reading them. bincode only checks a
/// claimed length against this limit, never against the input, so without it a forged length
/// prefix makes `Vec::with_capacity` abort the process. Room for the in-memory size of a full
/// block's items, which exceeds their encoded size.
const DECODE_CLAIM_BYTES_MAX: usize = 4 * Message::PROPOSAL_BYTES_MAX;

/// A consensus message. Everything in it is checked by the engine before it is used.
// Messages are moved one at a time, never stored in bulk; boxing the block would only add an
// allocation per proposal and change the shape the node matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Message {
    /// A leader's block for its view, authenticated by the leader's notarize vote for it.
    Proposal {
        /// The proposed block.
        block: Block,
        /// The leader's notarize vote for `block.hash()` in `block.header.view`.
        leader_vote: Vote,
    },
    /// One validator's vote.
    Vote(Vote),
    /// A quorum certificate.
    Certificate(Certificate),
}

impl Message {
    /// The largest encoded proposal accepted, in bytes: a block and one vote.
    pub const PROPOSAL_BYTES_MAX: usize = codec::BLOCK_BYTES_MAX + codec::MESSAGE_BYTES_MAX;
    /// The largest encoded vote or certificate message accepted, in bytes.
    pub const OTHER_BYTES_MAX: usize = codec::MESSAGE_BYTES_MAX;

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes exactly `bytes`. Proposals may be up to [`Message::PROPOSAL_BYTES_MAX`] long,
    /// votes and certificates up to [`Message::OTHER_BYTES_MAX`]; the limit is chosen from the
    /// tag before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<Message, Error> {
        let limit = if bytes.get(..4) == Some(&PROPOSAL_TAG[..]) {
            Message::PROPOSAL_BYTES_MAX
        } else {
            Message::OTHER_BYTES_MAX
        };
        if bytes.len() > limit {
            return Err(Error::TooLarge { len: bytes.len(), max: limit });
        }
        // The canonical configuration of `codec`, plus the claim limit above.
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding()
            .with_limit::<DECODE_CLAIM_BYTES_MAX>();
        let (msg, used) =
            bincode::decode_from_slice::<Message, _>(bytes, config).map_err(|e| Error::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(Error::TrailingBytes { extra: bytes.len().saturating_sub(used) });
        }
        Ok(msg)
    }

    /// Checks everything that needs no chain state, so that gossip forwards nothing that no
    /// honest node could accept: the message is of `domain.epoch` and every signature verifies
    /// against `validators` (that epoch's set) over this chain's `domain`; for a proposal also
    /// that its view's leader proposed and signed it, its chain id, validator set and shape
    /// (counts, bytes, `tx_root`), a height inside the epoch, and that its `parent_cert` is a
    /// verifying notarization of its parent in an earlier view (absent exactly on the epoch's
    /// first height, whose parent is genesis or the last epoch's final block). A re-proposal
    /// (rule R1 of [`super`]) is the epoch's last block signed again by a later view's leader.
    /// The engine still checks a proposal against its own state (rule V1).
    pub fn verify(&self, domain: &Domain, validators: &ValidatorSet, epochs: Epochs) -> Result<(), Error> {
        match self {
            Message::Vote(vote) => vote.verify(domain, validators),
            Message::Certificate(cert) => cert.verify(domain, validators),
            Message::Proposal { block, leader_vote } => verify_proposal(block, leader_vote, domain, validators, epochs),
        }
    }

    /// The view the message is about (a proposal's is its leader's vote's view, which differs
    /// from the header's for a re-proposal).
    pub fn view(&self) -> u64 {
        match self {
            Message::Proposal { leader_vote, .. } => leader_vote.view,
            Message::Vote(v) => v.view,
            Message::Certificate(c) => c.view,
        }
    }

    /// The epoch the message claims: whose validators must have signed it.
    pub fn epoch(&self) -> u64 {
        match self {
            Message::Proposal { leader_vote, .. } => leader_vote.epoch,
            Message::Vote(v) => v.epoch,
            Message::Certificate(c) => c.epoch,
        }
    }
}

fn verify_proposal(
    block: &Block,
    leader_vote: &Vote,
    domain: &Domain,
    validators: &ValidatorSet,
    epochs: Epochs,
) -> Result<(), Error> {
    let h = &block.header;
    let view = leader_vote.view;
    let leader = validators.leader_in(domain.epoch, view);
    let reproposal = view != h.view;
    let signed_by_leader = leader_vote.kind == VoteKind::Notarize
        && leader_vote.signer == leader
        && leader_vote.block_hash == Some(block.hash())
        && h.proposer == validators.leader_in(domain.epoch, h.view);
    if !signed_by_leader {
        return Err(Error::BadBlock(format!("the proposal of view {view} is not signed by its leader")));
    }
    if h.chain_id != domain.chain_id || h.validator_set_hash != validators.hash() {
        return Err(Error::BadBlock("another chain id or validator set".into()));
    }
    if epochs.of_height(h.height) != domain.epoch || h.height == 0 {
        return Err(Error::BadBlock(format!("height {} is not in epoch {}", h.height, domain.epoch)));
    }
    if reproposal && (h.view > view || h.height != epochs.last_height(domain.epoch)) {
        return Err(Error::BadBlock(format!("view {view} re-proposes a block that is not its epoch's last")));
    }
    block.check_shape()?;
    match &h.parent_cert {
        None if epochs.starts_epoch(h.height) => {}
        None => return Err(Error::BadBlock(format!("block at height {} carries no parent certificate", h.height))),
        Some(_) if epochs.starts_epoch(h.height) => {
            return Err(Error::BadBlock(format!(
                "block at height {} starts its epoch but carries a parent certificate",
                h.height
            )))
        }
        Some(cert) => {
            if cert.kind != VoteKind::Notarize || cert.block_hash != Some(h.parent_hash) || cert.view >= h.view {
                return Err(Error::BadCertificate("the parent certificate is not a notarization of the parent".into()));
            }
            cert.verify(domain, validators)?;
        }
    }
    leader_vote.verify(domain, validators)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Hash, Keypair, Signature};
    use crate::{Address, Header};

    const EPOCHS: Epochs = Epochs { length: 1_000_000 };

    fn domain() -> Domain {
        Domain { chain_id: "taksa-test".into(), genesis_hash: Hash([7; 32]), epoch: 0 }
    }

    fn block() -> Block {
        Block {
            header: Header {
                chain_id: "taksa-test".into(),
                height: 1,
                view: 1,
                parent_hash: Hash([7; 32]),
                proposer: Address(Keypair::from_seed(&[1; 32]).public()),
                timestamp_ms: 1_700_000_000_000,
                tx_root: Hash([2; 32]),
                evidence_root: crate::block::evidence_root(&[]),
                state_root: Hash([3; 32]),
                validator_set_hash: Hash([4; 32]),
                parent_cert: None,
            },
            evidence: Vec::new(),
            txs: Vec::new(),
        }
    }

    #[test]
    fn vote_message_golden_bytes() {
        let key = Keypair::from_seed(&[1; 32]);
        let vote = Vote::sign(&domain(), &key, VoteKind::Nullify, 3, None);
        let bytes = Message::Vote(vote.clone()).encode();
        // tag u32 LE = 1, epoch u64 LE = 0, kind u32 LE = 1, view u64 LE = 3, Option None = 0,
        // signer 32 bytes, sig 64 bytes.
        let mut expected = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(vote.signer.as_bytes());
        expected.extend_from_slice(&vote.signature.0);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 121);
        assert_eq!(Message::decode(&bytes), Ok(Message::Vote(vote)));
    }

    #[test]
    fn proposal_round_trips_and_trailing_bytes_are_refused() {
        let key = Keypair::from_seed(&[1; 32]);
        let b = block();
        let leader_vote = Vote::sign(&domain(), &key, VoteKind::Notarize, 1, Some(b.hash()));
        let msg = Message::Proposal { block: b, leader_vote };
        let mut bytes = msg.encode();
        assert_eq!(Message::decode(&bytes), Ok(msg));
        bytes.push(0);
        assert!(matches!(Message::decode(&bytes), Err(Error::TrailingBytes { extra: 1 })));
    }

    #[test]
    fn oversized_vote_message_is_refused_before_decoding() {
        let mut bytes = vec![2, 0, 0, 0];
        bytes.resize(Message::OTHER_BYTES_MAX + 1, 0);
        assert!(matches!(Message::decode(&bytes), Err(Error::TooLarge { .. })));
        let mut proposal = PROPOSAL_TAG.to_vec();
        proposal.resize(Message::PROPOSAL_BYTES_MAX + 1, 0);
        assert!(matches!(Message::decode(&proposal), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn certificate_claiming_huge_signature_list_does_not_allocate() {
        let cert = Certificate {
            epoch: 0,
            kind: VoteKind::Nullify,
            view: 9,
            block_hash: None,
            signers: vec![0b111],
            signatures: vec![Signature([5; 64]); 3],
        };
        let mut bytes = Message::Certificate(cert.clone()).encode();
        assert_eq!(Message::decode(&bytes), Ok(Message::Certificate(cert)));
        // Overwrite the signature count (after tag 4, kind 4, view 8, option 1, bitmap len 8 + 1).
        let at = 4 + 4 + 8 + 1 + 8 + 1;
        for claimed in [u64::MAX, 1 << 40, 1 << 30, 1 << 20] {
            bytes[at..at + 8].copy_from_slice(&claimed.to_le_bytes());
            assert!(Message::decode(&bytes).is_err(), "claimed {claimed} signatures");
        }
    }

    #[test]
    fn truncated_messages_never_decode() {
        let key = Keypair::from_seed(&[1; 32]);
        let b = block();
        let leader_vote = Vote::sign(&domain(), &key, VoteKind::Notarize, 1, Some(b.hash()));
        let bytes = Message::Proposal { block: b, leader_vote }.encode();
        for len in 0..bytes.len() {
            assert!(Message::decode(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
    }

    /// Four validators with seeds 1..=4; view 1 is led by the second (seed 2).
    fn four() -> (Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect());
        (keys, set)
    }

    /// A proposal for `view` by its leader, at `height` on `parent` with `parent_cert`.
    fn signed_proposal(
        keys: &[Keypair],
        set: &ValidatorSet,
        view: u64,
        height: u64,
        parent_cert: Option<Certificate>,
    ) -> Message {
        let mut b = block();
        b.header.view = view;
        b.header.height = height;
        b.header.parent_hash = parent_cert.as_ref().and_then(|c| c.block_hash).unwrap_or(domain().genesis_hash);
        b.header.proposer = set.leader(view);
        b.header.validator_set_hash = set.hash();
        b.header.tx_root = crate::block::tx_root(&[]);
        b.header.parent_cert = parent_cert;
        let key = keys.iter().find(|k| Address(k.public()) == set.leader(view)).expect("leader key");
        let leader_vote = Vote::sign(&domain(), key, VoteKind::Notarize, view, Some(b.hash()));
        Message::Proposal { block: b, leader_vote }
    }

    fn notarization(keys: &[Keypair], set: &ValidatorSet, view: u64, hash: Hash) -> Certificate {
        let votes: Vec<Vote> =
            keys.iter().map(|k| Vote::sign(&domain(), k, VoteKind::Notarize, view, Some(hash))).collect();
        Certificate::from_votes(set, 0, VoteKind::Notarize, view, Some(hash), &votes)
    }

    #[test]
    fn a_proposal_verifies_only_with_a_quorum_certificate_of_its_parent() {
        let (keys, set) = four();
        let child_of_genesis = signed_proposal(&keys, &set, 1, 1, None);
        assert_eq!(child_of_genesis.verify(&domain(), &set, EPOCHS), Ok(()));
        let parent = Hash([0x55; 32]);
        let good = signed_proposal(&keys, &set, 5, 2, Some(notarization(&keys[..3], &set, 1, parent)));
        assert_eq!(good.verify(&domain(), &set, EPOCHS), Ok(()));

        let one_signer = signed_proposal(&keys, &set, 5, 2, Some(notarization(&keys[1..2], &set, 1, parent)));
        assert!(matches!(one_signer.verify(&domain(), &set, EPOCHS), Err(Error::BadCertificate(_))));
        let not_earlier = signed_proposal(&keys, &set, 5, 2, Some(notarization(&keys[..3], &set, 5, parent)));
        assert!(matches!(not_earlier.verify(&domain(), &set, EPOCHS), Err(Error::BadCertificate(_))));
        let orphan = signed_proposal(&keys, &set, 5, 2, None);
        assert!(matches!(orphan.verify(&domain(), &set, EPOCHS), Err(Error::BadBlock(_))));
    }

    #[test]
    fn a_proposal_signed_by_another_than_the_leader_does_not_verify() {
        let (keys, set) = four();
        let Message::Proposal { block, .. } = signed_proposal(&keys, &set, 1, 1, None) else { unreachable!() };
        let not_leader = &keys[0];
        assert_ne!(Address(not_leader.public()), set.leader(1));
        let leader_vote = Vote::sign(&domain(), not_leader, VoteKind::Notarize, 1, Some(block.hash()));
        let forged = Message::Proposal { block, leader_vote };
        assert!(matches!(forged.verify(&domain(), &set, EPOCHS), Err(Error::BadBlock(_))));
    }

    #[test]
    fn only_the_epochs_last_block_may_be_re_proposed_and_only_its_first_lacks_a_parent_certificate() {
        let (keys, set) = four();
        let epochs = Epochs::new(4);
        let parent = Hash([0x55; 32]);
        let repropose = |height: u64| {
            let Message::Proposal { block, .. } =
                signed_proposal(&keys, &set, 3, height, Some(notarization(&keys[..3], &set, 2, parent)))
            else {
                unreachable!()
            };
            let leader = keys.iter().find(|k| Address(k.public()) == set.leader(7)).expect("leader key");
            let leader_vote = Vote::sign(&domain(), leader, VoteKind::Notarize, 7, Some(block.hash()));
            Message::Proposal { block, leader_vote }
        };
        assert_eq!(repropose(4).verify(&domain(), &set, epochs), Ok(()), "the last block of epoch 0, in view 7");
        assert!(matches!(repropose(3).verify(&domain(), &set, epochs), Err(Error::BadBlock(_))), "not the last");
        assert!(matches!(repropose(5).verify(&domain(), &set, epochs), Err(Error::BadBlock(_))), "epoch 1's");
        let first_of_epoch_1 = signed_proposal(&keys, &set, 1, 5, None);
        let epoch_1 = domain().at_epoch(1);
        assert!(matches!(first_of_epoch_1.verify(&domain(), &set, epochs), Err(Error::BadBlock(_))), "wrong epoch");
        let Message::Proposal { mut block, .. } = first_of_epoch_1 else { unreachable!() };
        // Leaders shift by one per epoch: view 1 of epoch 1 is led by validator 2.
        block.header.proposer = set.leader_in(1, 1);
        assert_eq!(block.header.proposer, Address(keys[2].public()));
        let leader = keys.iter().find(|k| Address(k.public()) == set.leader_in(1, 1)).expect("leader key");
        let leader_vote = Vote::sign(&epoch_1, leader, VoteKind::Notarize, 1, Some(block.hash()));
        let signed_in_epoch_1 = Message::Proposal { block, leader_vote };
        assert_eq!(signed_in_epoch_1.verify(&epoch_1, &set, epochs), Ok(()), "epoch 1's first block, no certificate");
        assert!(
            matches!(signed_in_epoch_1.verify(&domain(), &set, epochs), Err(Error::BadBlock(_))),
            "an epoch 1 proposal is nothing in epoch 0"
        );
        let with_cert = signed_proposal(&keys, &set, 2, 5, Some(notarization(&keys[..3], &set, 1, parent)));
        assert!(matches!(with_cert.verify(&domain(), &set, epochs), Err(Error::BadBlock(_))));
    }
}
