//! What validators send each other: proposals, votes and certificates, in the canonical
//! encoding with a size limit per kind.

use bincode::{Decode, Encode};

use crate::codec;
use crate::{Block, Certificate, Error, Vote};

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

    /// The view the message is about.
    pub fn view(&self) -> u64 {
        match self {
            Message::Proposal { block, .. } => block.header.view,
            Message::Vote(v) => v.view,
            Message::Certificate(c) => c.view,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Hash, Keypair, Signature};
    use crate::vote::{Domain, VoteKind};
    use crate::{Address, Header};

    fn domain() -> Domain {
        Domain { chain_id: "taksa-test".into(), genesis_hash: Hash([7; 32]) }
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
                state_root: Hash([3; 32]),
                validator_set_hash: Hash([4; 32]),
                parent_cert: None,
            },
            txs: Vec::new(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn vote_message_golden_bytes() {
        let key = Keypair::from_seed(&[1; 32]);
        let vote = Vote::sign(&domain(), &key, VoteKind::Nullify, 3, None);
        let bytes = Message::Vote(vote.clone()).encode();
        // tag u32 LE = 1, kind u32 LE = 1, view u64 LE = 3, Option None = 0, signer 32 bytes, sig 64 bytes.
        let mut expected = vec![1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(vote.signer.as_bytes());
        expected.extend_from_slice(&vote.signature.0);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 113);
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
}
