//! Payment receipts (`taksa_consensus::receipt`): a receipt built from a final block verifies
//! with only the genesis, and every way of lying in one is refused.

use taksa_consensus::block::tx_root;
use taksa_consensus::governance::{governance_key, Governance, Validator};
use taksa_consensus::receipt::{verify, EpochLink, PaymentReceipt, ReceiptError, RECEIPT_HEADERS_MAX};
use taksa_consensus::state::MemState;
use taksa_consensus::tree;
use taksa_consensus::{
    Address, Certificate, Domain, Genesis, Hash, Header, Keypair, SignedTransaction, Transaction, ValidatorSet, Vote,
    VoteKind,
};

const CHAIN: &str = "taksa-receipts";

struct World {
    genesis: Genesis,
    validators: Vec<Keypair>,
    payer: Keypair,
}

fn world() -> World {
    let validators: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[100 + i; 32])).collect();
    let payer = Keypair::from_seed(&[1; 32]);
    let genesis = Genesis {
        chain_id: CHAIN.to_owned(),
        address_hrp: "tks".to_owned(),
        genesis_time_ms: 1_700_000_000_000,
        block_time_ms: 1000,
        fee_floor: 1,
        epoch_length: 1_000,
        validators: validators.iter().map(|k| Address(k.public())).collect(),
        validator_names: (0..4).map(|i| format!("v{i}")).collect(),
        allocations: vec![(Address(payer.public()), 1_000_000)],
    };
    World { genesis, validators, payer }
}

impl World {
    fn transfer(&self, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN.to_owned(),
            from: Address(self.payer.public()),
            to: Address(self.validators[0].public()),
            amount: 10 + u128::from(nonce),
            fee: 1,
            nonce,
            valid_until_height: None,
            memo: None,
            action: None,
        }
        .sign(&self.payer, &self.genesis.hash())
    }

    fn header(&self, parent: &Header, txs: &[SignedTransaction]) -> Header {
        Header {
            height: parent.height + 1,
            view: parent.view + 1,
            parent_hash: parent.hash(),
            tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
            parent_cert: None,
            ..parent.clone()
        }
    }

    /// A finalization of `header` signed by the first `signers` validators.
    fn finalization(&self, header: &Header, signers: usize) -> Certificate {
        let domain = Domain { chain_id: CHAIN.to_owned(), genesis_hash: self.genesis.hash(), epoch: 0 };
        let votes: Vec<Vote> = self.validators[..signers]
            .iter()
            .map(|k| Vote::sign(&domain, k, VoteKind::Finalize, header.view, Some(header.hash())))
            .collect();
        Certificate::from_votes(
            &self.genesis.validator_set(),
            0,
            VoteKind::Finalize,
            header.view,
            Some(header.hash()),
            &votes,
        )
    }
}

/// Block 1 with five transfers, and two empty descendants; the last one is finalized.
fn receipt_of(w: &World, index: usize, final_at_own_block: bool) -> PaymentReceipt {
    let txs: Vec<SignedTransaction> = (0..5).map(|n| w.transfer(n)).collect();
    let block = w.header(&w.genesis.header(), &txs);
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    if final_at_own_block {
        return PaymentReceipt::new(
            &w.genesis.hash(),
            &txs[index],
            &block,
            &hashes,
            index,
            &[],
            &w.finalization(&block, 3),
        );
    }
    let two = w.header(&block, &[]);
    let three = w.header(&two, &[]);
    let cert = w.finalization(&three, 3);
    PaymentReceipt::new(&w.genesis.hash(), &txs[index], &block, &hashes, index, &[two, three], &cert)
}

#[test]
fn a_receipt_verifies_with_only_the_genesis() {
    let w = world();
    for index in 0..5 {
        for own in [true, false] {
            let r = receipt_of(&w, index, own);
            let json = serde_json::to_string(&r).expect("serializes");
            let back: PaymentReceipt = serde_json::from_str(&json).expect("parses");
            let paid = verify(&back, &w.genesis).expect("verifies");
            assert_eq!((paid.height, paid.tx.tx.nonce), (1, index as u64));
            assert_eq!(paid.final_height, if own { 1 } else { 3 });
        }
    }
}

#[test]
fn a_receipt_with_another_transaction_or_position_is_refused() {
    let w = world();
    let r = receipt_of(&w, 2, false);
    let other = PaymentReceipt { tx: receipt_of(&w, 3, false).tx, ..r.clone() };
    assert!(matches!(verify(&other, &w.genesis), Err(ReceiptError::NotIncluded { .. })));
    let moved = PaymentReceipt { index: 3, ..r.clone() };
    assert!(matches!(verify(&moved, &w.genesis), Err(ReceiptError::NotIncluded { .. })));
    let beyond = PaymentReceipt { index: 9, ..r.clone() };
    assert!(matches!(verify(&beyond, &w.genesis), Err(ReceiptError::NotIncluded { .. })));
}

#[test]
fn a_receipt_whose_headers_do_not_link_or_whose_certificate_is_short_is_refused() {
    let w = world();
    let r = receipt_of(&w, 0, false);
    let skipped = PaymentReceipt { headers_to_final: r.headers_to_final[1..].to_vec(), ..r.clone() };
    assert!(matches!(verify(&skipped, &w.genesis), Err(ReceiptError::BrokenLink { index: 0 })));
    // A finalization of the block's sibling, not of its descendant.
    let own = receipt_of(&w, 0, true);
    let wrong_cert = PaymentReceipt { finalization: r.finalization.clone(), ..own.clone() };
    assert!(matches!(verify(&wrong_cert, &w.genesis), Err(ReceiptError::NotFinal(_))));
    // Two of four validators are not a quorum (three are).
    let txs: Vec<SignedTransaction> = (0..5).map(|n| w.transfer(n)).collect();
    let block = w.header(&w.genesis.header(), &txs);
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let short = PaymentReceipt::new(&w.genesis.hash(), &txs[0], &block, &hashes, 0, &[], &w.finalization(&block, 2));
    assert!(matches!(verify(&short, &w.genesis), Err(ReceiptError::NotFinal(_))));
    let too_many =
        PaymentReceipt { headers_to_final: vec![r.headers_to_final[0].clone(); RECEIPT_HEADERS_MAX + 1], ..r };
    assert!(matches!(verify(&too_many, &w.genesis), Err(ReceiptError::Malformed { field: "headersToFinal", .. })));
}

#[test]
fn a_receipt_of_another_chain_or_a_forged_transaction_is_refused() {
    let w = world();
    let r = receipt_of(&w, 1, true);
    let mut other = world().genesis;
    other.genesis_time_ms += 1;
    assert!(matches!(verify(&r, &other), Err(ReceiptError::OtherChain { .. })));
    // The transaction's amount changed after signing: its signature no longer verifies.
    let mut tx = w.transfer(1);
    tx.tx.amount += 1;
    let forged = PaymentReceipt { tx: format!("0x{}", hex::encode(tx.encode())), ..r.clone() };
    assert!(matches!(verify(&forged, &w.genesis), Err(ReceiptError::Tx(_))));
    let garbage = PaymentReceipt { header: "0x00".into(), ..r };
    assert!(matches!(verify(&garbage, &w.genesis), Err(ReceiptError::Malformed { field: "header", .. })));
}

/// A chain of epochs of two blocks whose validators all change at the end of epoch 0: epoch
/// 1 is run by `next`. Returns the receipt of a transfer in block 3 (epoch 1), with the link
/// that proves epoch 1's set, plus what an attacker needs to forge one.
struct Epochs {
    w: World,
    next: Vec<Keypair>,
    receipt: PaymentReceipt,
    block: Header,
    link: EpochLink,
}

fn certificate(genesis: &Genesis, keys: &[Keypair], epoch: u64, header: &Header) -> Certificate {
    let domain = Domain { chain_id: CHAIN.to_owned(), genesis_hash: genesis.hash(), epoch };
    let votes: Vec<Vote> =
        keys.iter().map(|k| Vote::sign(&domain, k, VoteKind::Finalize, header.view, Some(header.hash()))).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect());
    Certificate::from_votes(&set, epoch, VoteKind::Finalize, header.view, Some(header.hash()), &votes)
}

fn epochs_world() -> Epochs {
    let mut w = world();
    w.genesis.epoch_length = 2;
    let next: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[150 + i; 32])).collect();
    let governance = Governance::genesis(
        next.iter()
            .enumerate()
            .map(|(i, k)| Validator { address: Address(k.public()), name: format!("n{i}") })
            .collect(),
    );
    // The state after block 2 (epoch 0's last): the payer's account and the new set.
    let state = MemState::new(w.genesis.accounts(), governance.clone());
    let one = w.header(&w.genesis.header(), &[]);
    let mut two = w.header(&one, &[]);
    two.state_root = state.root();
    let proof = tree::prove(&state, &governance_key()).expect("whole tree");
    let link = EpochLink::new(&two, &certificate(&w.genesis, &w.validators[..3], 0, &two), &governance, &proof);
    let txs: Vec<SignedTransaction> = (0..3).map(|n| w.transfer(n)).collect();
    let mut block = w.header(&two, &txs);
    block.view = 1;
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let cert = certificate(&w.genesis, &next[..3], 1, &block);
    let receipt =
        PaymentReceipt::new(&w.genesis.hash(), &txs[1], &block, &hashes, 1, &[], &cert).with_epochs(vec![link.clone()]);
    Epochs { w, next, receipt, block, link }
}

#[test]
fn a_receipt_of_a_later_epoch_follows_the_validator_sets_from_genesis() {
    let e = epochs_world();
    let paid = verify(&e.receipt, &e.w.genesis).expect("verifies");
    assert_eq!((paid.height, paid.tx.tx.nonce), (3, 1));
    let json = serde_json::to_string(&e.receipt).expect("serializes");
    assert!(verify(&serde_json::from_str(&json).expect("parses"), &e.w.genesis).is_ok());
}

#[test]
fn epochs_whose_set_did_not_change_need_no_link() {
    // Epochs of two blocks, no change: block 7 (epoch 3) is final under the genesis set.
    let mut w = world();
    w.genesis.epoch_length = 2;
    let mut parent = w.genesis.header();
    for _ in 0..6 {
        parent = w.header(&parent, &[]);
    }
    let txs: Vec<SignedTransaction> = (0..2).map(|n| w.transfer(n)).collect();
    let mut block = w.header(&parent, &txs);
    block.view = 1;
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let cert = certificate(&w.genesis, &w.validators[..3], 3, &block);
    let receipt = PaymentReceipt::new(&w.genesis.hash(), &txs[0], &block, &hashes, 0, &[], &cert);
    let paid = verify(&receipt, &w.genesis).expect("verifies with no link");
    assert_eq!((paid.height, paid.epoch), (7, 3));
    // Signed for epoch 2 instead: refused.
    let wrong = certificate(&w.genesis, &w.validators[..3], 2, &block);
    let wrong = PaymentReceipt::new(&w.genesis.hash(), &txs[0], &block, &hashes, 0, &[], &wrong);
    assert!(matches!(verify(&wrong, &w.genesis), Err(ReceiptError::NotFinal(_))));
}

#[test]
fn a_later_epochs_receipt_signed_by_another_set_or_with_a_forged_link_is_refused() {
    let e = epochs_world();
    let genesis = &e.w.genesis;
    let hex = |bytes: Vec<u8>| format!("0x{}", hex::encode(bytes));
    // The genesis validators (who left) finalize the block in epoch 1.
    let old = certificate(genesis, &e.w.validators[..3], 1, &e.block);
    let by_old = PaymentReceipt { finalization: hex(old.encode()), ..e.receipt.clone() };
    assert!(matches!(verify(&by_old, genesis), Err(ReceiptError::NotFinal(_))));
    // No link: the genesis set would have to finalize the block, and it did not.
    let unlinked = PaymentReceipt { epochs: Vec::new(), ..e.receipt.clone() };
    assert!(matches!(verify(&unlinked, genesis), Err(ReceiptError::NotFinal(_))));
    // The same link twice: links go forward.
    let twice = PaymentReceipt { epochs: vec![e.link.clone(), e.link.clone()], ..e.receipt.clone() };
    assert!(matches!(verify(&twice, genesis), Err(ReceiptError::NotFinal(_))));
    // A link whose set is not the one the state holds: attackers name themselves.
    let attackers: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[210 + i; 32])).collect();
    let theirs = Governance::genesis(
        attackers.iter().map(|k| Validator { address: Address(k.public()), name: "x".into() }).collect(),
    );
    let forged_set = EpochLink { governance: hex(taksa_consensus::codec::encode(&theirs)), ..e.link.clone() };
    let forged_cert = certificate(genesis, &attackers[..3], 1, &e.block);
    let forged =
        PaymentReceipt { epochs: vec![forged_set], finalization: hex(forged_cert.encode()), ..e.receipt.clone() };
    assert!(matches!(verify(&forged, genesis), Err(ReceiptError::NotFinal(_))));
    // The epoch's last block finalized by the new set rather than its own epoch's.
    let mut two = taksa_consensus::codec::decode::<Header>(
        &hex::decode(e.link.header.trim_start_matches("0x")).expect("hex"),
        usize::MAX,
    )
    .expect("header");
    let by_next = certificate(genesis, &e.next[..3], 0, &two);
    let wrong_link = EpochLink { finalization: hex(by_next.encode()), ..e.link.clone() };
    let wrong = PaymentReceipt { epochs: vec![wrong_link], ..e.receipt.clone() };
    assert!(matches!(verify(&wrong, genesis), Err(ReceiptError::NotFinal(_))));
    // A block of epoch 0 presented as the last one of epoch 0 (height 1, not 2).
    two.height = 1;
    let early = EpochLink { header: hex(taksa_consensus::codec::encode(&two)), ..e.link.clone() };
    let early = PaymentReceipt { epochs: vec![early], ..e.receipt };
    assert!(matches!(verify(&early, genesis), Err(ReceiptError::NotFinal(_))));
}
