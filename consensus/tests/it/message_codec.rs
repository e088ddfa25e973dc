//! Properties and limits of the consensus message codec: decode(encode(m)) == m, hostile bytes
//! never panic or allocate without bound, the size limits hold, and golden bytes stay put.

use proptest::prelude::*;
use taksa_consensus::codec;
use taksa_consensus::engine::Message;
use taksa_consensus::vote::VoteKind;
use taksa_consensus::{
    Address, Block, Certificate, Error, Hash, Header, Keypair, PublicKey, Signature, SignedTransaction, Transaction,
    Vote,
};

fn hash() -> impl Strategy<Value = Hash> {
    prop::array::uniform32(any::<u8>()).prop_map(Hash)
}

fn signature() -> impl Strategy<Value = Signature> {
    (prop::array::uniform32(any::<u8>()), prop::array::uniform32(any::<u8>())).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn kind() -> impl Strategy<Value = VoteKind> {
    prop_oneof![Just(VoteKind::Notarize), Just(VoteKind::Nullify), Just(VoteKind::Finalize)]
}

fn vote() -> impl Strategy<Value = Vote> {
    (kind(), any::<u64>(), prop::option::of(hash()), prop::array::uniform32(any::<u8>()), signature(), any::<u64>())
        .prop_map(|(kind, view, block_hash, signer, signature, epoch)| Vote {
            epoch,
            kind,
            view,
            block_hash,
            signer: Address(PublicKey(signer)),
            signature,
        })
}

fn certificate() -> impl Strategy<Value = Certificate> {
    (
        kind(),
        any::<u64>(),
        prop::option::of(hash()),
        prop::collection::vec(any::<u8>(), 0..4),
        prop::collection::vec(signature(), 0..8),
    )
        .prop_map(|(kind, view, block_hash, signers, signatures)| Certificate {
            epoch: view % 7,
            kind,
            view,
            block_hash,
            signers,
            signatures,
        })
}

fn block() -> impl Strategy<Value = Block> {
    ("[a-z0-9-]{0,20}", any::<u64>(), any::<u64>(), hash(), any::<u64>(), prop::option::of(certificate())).prop_map(
        |(chain_id, height, view, parent_hash, timestamp_ms, parent_cert)| Block {
            header: Header {
                chain_id,
                height,
                view,
                parent_hash,
                proposer: Address(PublicKey([3; 32])),
                timestamp_ms,
                tx_root: Hash([4; 32]),
                evidence_root: taksa_consensus::block::evidence_root(&[]),
                state_root: Hash([5; 32]),
                validator_set_hash: Hash([6; 32]),
                parent_cert,
            },
            evidence: Vec::new(),
            txs: Vec::new(),
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        vote().prop_map(Message::Vote),
        certificate().prop_map(Message::Certificate),
        (block(), vote()).prop_map(|(block, leader_vote)| Message::Proposal { block, leader_vote }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn message_decode_inverts_encode(m in message()) {
        let bytes = m.encode();
        prop_assert_eq!(Message::decode(&bytes), Ok(m.clone()));
        prop_assert_eq!(bytes, codec::encode(&m), "one canonical encoding");
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(tag in 0u32..4, body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = tag.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes, "whatever decodes is canonical");
        }
    }

    #[test]
    fn a_changed_byte_never_panics_the_decoder(m in message(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bytes = m.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert_ne!(decoded, m);
        }
    }
}

#[test]
fn certificate_over_the_message_limit_is_refused() {
    let cert = Certificate {
        epoch: 0,
        kind: VoteKind::Nullify,
        view: 1,
        block_hash: None,
        signers: vec![0xFF; 150],
        signatures: vec![Signature([1; 64]); 1100],
    };
    let bytes = Message::Certificate(cert).encode();
    assert!(bytes.len() > Message::OTHER_BYTES_MAX);
    assert_eq!(Message::decode(&bytes), Err(Error::TooLarge { len: bytes.len(), max: Message::OTHER_BYTES_MAX }));
}

#[test]
fn large_proposal_within_the_block_limit_round_trips() {
    let key = Keypair::from_seed(&[8; 32]);
    let tx = Transaction {
        chain_id: "taksa-test".into(),
        from: Address(key.public()),
        to: Address(PublicKey([2; 32])),
        amount: 5,
        fee: 1,
        nonce: 0,
        valid_until_height: Some(9),
        memo: Some("m".repeat(250)),
        action: None,
    }
    .sign(&key, &Hash([1; 32]));
    let txs: Vec<SignedTransaction> = vec![tx; 8_000];
    let header = Header {
        chain_id: "taksa-test".into(),
        height: 1,
        view: 1,
        parent_hash: Hash([1; 32]),
        proposer: Address(key.public()),
        timestamp_ms: 1,
        tx_root: Hash([0; 32]),
        evidence_root: taksa_consensus::block::evidence_root(&[]),
        state_root: Hash([0; 32]),
        validator_set_hash: Hash([0; 32]),
        parent_cert: None,
    };
    let leader_vote = Vote::sign(
        &taksa_consensus::Domain { chain_id: "taksa-test".into(), genesis_hash: Hash([1; 32]), epoch: 0 },
        &key,
        VoteKind::Notarize,
        1,
        Some(Hash([7; 32])),
    );
    let m = Message::Proposal { block: Block { header, evidence: Vec::new(), txs }, leader_vote };
    let bytes = m.encode();
    assert!(bytes.len() > 3 * 1024 * 1024 && bytes.len() < Message::PROPOSAL_BYTES_MAX, "{} bytes", bytes.len());
    assert_eq!(Message::decode(&bytes), Ok(m));
}

#[test]
fn certificate_message_golden_bytes() {
    let cert = Certificate {
        epoch: 3,
        kind: VoteKind::Finalize,
        view: 0x0102,
        block_hash: Some(Hash([0xAB; 32])),
        signers: vec![0b0000_0101],
        signatures: vec![Signature([0x11; 64]), Signature([0x22; 64])],
    };
    let bytes = Message::Certificate(cert.clone()).encode();
    let mut expected = Vec::new();
    expected.extend_from_slice(&2u32.to_le_bytes()); // Message::Certificate
    expected.extend_from_slice(&3u64.to_le_bytes()); // epoch
    expected.extend_from_slice(&2u32.to_le_bytes()); // VoteKind::Finalize
    expected.extend_from_slice(&0x0102u64.to_le_bytes()); // view
    expected.push(1); // Some(block_hash)
    expected.extend_from_slice(&[0xAB; 32]);
    expected.extend_from_slice(&1u64.to_le_bytes()); // signers bitmap: 1 byte
    expected.push(0b0000_0101);
    expected.extend_from_slice(&2u64.to_le_bytes()); // 2 signatures
    expected.extend_from_slice(&[0x11; 64]);
    expected.extend_from_slice(&[0x22; 64]);
    assert_eq!(bytes, expected);
    assert_eq!(Message::decode(&expected), Ok(Message::Certificate(cert)));
}
