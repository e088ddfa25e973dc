//! Golden bytes: the encodings of a transaction, a header and a vote are fixed. Changing a
//! fixture is a deliberate, reviewed act: regenerate with `TAKSA_UPDATE_GOLDEN=1 cargo test -p
//! taksa-consensus --test it golden` and explain the change in the commit.

use std::path::PathBuf;

use taksa_consensus::{codec, Address, Certificate, Domain, Hash, Header, Keypair, Transaction, Vote, VoteKind};

fn check(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.hex"));
    let hex_now = hex::encode(bytes);
    if std::env::var_os("TAKSA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, format!("{hex_now}\n")).expect("write fixture");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing fixture {}; see this file's docs", path.display()));
    assert_eq!(hex_now, want.trim(), "encoding of {name} changed");
}

fn key() -> Keypair {
    Keypair::from_seed(&[0x11; 32])
}

#[test]
fn golden_transaction_bytes() {
    let tx = Transaction {
        chain_id: "taksa-dev".into(),
        from: Address(key().public()),
        to: Address(Keypair::from_seed(&[0x22; 32]).public()),
        amount: 1_500_000_000,
        fee: 1000,
        nonce: 7,
        valid_until_height: Some(100),
        memo: Some("lunch".into()),
        action: None,
    };
    let stx = tx.sign(&key(), &Hash([0x33; 32]));
    check("transaction", &stx.encode());
    check("transaction_hash", &stx.hash().0);
}

#[test]
fn golden_header_bytes() {
    let domain = Domain { chain_id: "taksa-dev".into(), genesis_hash: Hash([0x33; 32]), epoch: 0 };
    let vote = Vote::sign(&domain, &key(), VoteKind::Notarize, 4, Some(Hash([0x44; 32])));
    let set = taksa_consensus::ValidatorSet::new(vec![Address(key().public())]);
    let cert = Certificate::from_votes(&set, 0, VoteKind::Notarize, 4, Some(Hash([0x44; 32])), [&vote]);
    let header = Header {
        chain_id: "taksa-dev".into(),
        height: 5,
        view: 5,
        parent_hash: Hash([0x44; 32]),
        proposer: Address(key().public()),
        timestamp_ms: 1_767_225_600_000,
        tx_root: Hash([0x55; 32]),
        evidence_root: Hash([0x77; 32]),
        state_root: Hash([0x66; 32]),
        validator_set_hash: set.hash(),
        parent_cert: Some(cert),
    };
    check("header", &codec::encode(&header));
    check("header_hash", &header.hash().0);
}

#[test]
fn golden_vote_bytes() {
    let domain = Domain { chain_id: "taksa-dev".into(), genesis_hash: Hash([0x33; 32]), epoch: 0 };
    for (name, kind, hash) in [
        ("vote_notarize", VoteKind::Notarize, Some(Hash([0x44; 32]))),
        ("vote_nullify", VoteKind::Nullify, None),
        ("vote_finalize", VoteKind::Finalize, Some(Hash([0x44; 32]))),
    ] {
        check(name, &codec::encode(&Vote::sign(&domain, &key(), kind, 9, hash)));
    }
}
