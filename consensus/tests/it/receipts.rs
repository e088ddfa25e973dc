//! Payment receipts (`taksa_consensus::receipt`): a receipt built from a final block verifies
//! with only the genesis, and every way of lying in one is refused.

use taksa_consensus::block::tx_root;
use taksa_consensus::receipt::{verify, PaymentReceipt, ReceiptError, RECEIPT_HEADERS_MAX};
use taksa_consensus::{
    Address, Certificate, Domain, Genesis, Hash, Header, Keypair, SignedTransaction, Transaction, Vote, VoteKind,
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
        let domain = Domain { chain_id: CHAIN.to_owned(), genesis_hash: self.genesis.hash() };
        let votes: Vec<Vote> = self.validators[..signers]
            .iter()
            .map(|k| Vote::sign(&domain, k, VoteKind::Finalize, header.view, Some(header.hash())))
            .collect();
        Certificate::from_votes(
            &self.genesis.validator_set(),
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
