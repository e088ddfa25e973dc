//! Property tests of the state transition and the codec.

use std::collections::BTreeMap;

use proptest::prelude::*;
use taksa_consensus::block::tx_root;
use taksa_consensus::state::{execute_block, select_transactions, StateDigest};
use taksa_consensus::{Account, Address, Block, Hash, Header, Keypair, Rules, SignedTransaction, Transaction, TxError};

const CHAIN: &str = "taksa-prop";

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed(&[i + 1; 32])).collect()
}

fn rules() -> Rules {
    Rules { chain_id: CHAIN.into(), genesis_hash: Hash([7; 32]), fee_floor: 1 }
}

fn genesis_state(keys: &[Keypair], balance: u128) -> BTreeMap<Address, Account> {
    keys.iter().map(|k| (Address(k.public()), Account { balance, nonce: 0 })).collect()
}

fn digest_of(state: &BTreeMap<Address, Account>) -> Hash {
    let mut d = StateDigest::default();
    for (a, acct) in state {
        d.add(a, acct);
    }
    d.root()
}

fn signed(k: &Keypair, to: Address, amount: u128, fee: u128, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN.into(),
        from: Address(k.public()),
        to,
        amount,
        fee,
        nonce,
        valid_until_height: None,
        memo: None,
    }
    .sign(k, &rules().genesis_hash)
}

fn parent(state: &BTreeMap<Address, Account>) -> Header {
    Header {
        chain_id: CHAIN.into(),
        height: 0,
        view: 0,
        parent_hash: Hash::ZERO,
        proposer: Address::default(),
        timestamp_ms: 0,
        tx_root: tx_root(&[]),
        state_root: digest_of(state),
        validator_set_hash: Hash::ZERO,
        parent_cert: None,
    }
}

/// Builds a block from candidates the way a proposer does.
fn build(
    state: &BTreeMap<Address, Account>,
    parent: &Header,
    proposer: Address,
    cands: Vec<SignedTransaction>,
) -> Block {
    let (txs, outcome, _) = select_transactions(state, &parent.state_root, 1, &proposer, cands, 10_000);
    let header = Header {
        height: 1,
        parent_hash: parent.hash(),
        proposer,
        tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
        state_root: outcome.state_root,
        ..parent.clone()
    };
    Block { header, txs, evidence: vec![] }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn total_supply_is_conserved_over_random_transfers(
        moves in prop::collection::vec((0u8..5, 0u8..6, 0u128..2_000, 1u128..50), 1..60)
    ) {
        let ks = keys(6);
        let state = genesis_state(&ks[..5], 10_000);
        let supply: u128 = state.values().map(|a| a.balance).sum();
        let mut nonces = [0u64; 5];
        let cands: Vec<SignedTransaction> = moves.iter().map(|&(f, t, amount, fee)| {
            let n = nonces[f as usize];
            nonces[f as usize] += 1;
            signed(&ks[f as usize], Address(ks[t as usize].public()), amount, fee, n)
        }).collect();
        let p = parent(&state);
        let block = build(&state, &p, Address(ks[5].public()), cands);
        let outcome = execute_block(&rules(), &state, &p, &block, &|_| false).expect("a built block is valid");
        let mut after = state.clone();
        after.extend(outcome.changes);
        prop_assert_eq!(after.values().map(|a| a.balance).sum::<u128>(), supply);
        prop_assert_eq!(outcome.state_root, digest_of(&after), "incremental digest equals recomputed digest");
    }

    #[test]
    fn decode_of_encode_is_identity_for_transactions(
        amount in any::<u128>(), fee in any::<u128>(), nonce in any::<u64>(),
        until in proptest::option::of(any::<u64>()), memo in proptest::option::of("[ -~]{0,64}")
    ) {
        let k = Keypair::from_seed(&[3; 32]);
        let tx = Transaction { chain_id: CHAIN.into(), from: Address(k.public()), to: Address::default(), amount, fee, nonce, valid_until_height: until, memo };
        let stx = tx.sign(&k, &Hash::ZERO);
        prop_assert_eq!(SignedTransaction::decode(&stx.encode()).expect("decodes"), stx);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedTransaction::decode(&bytes);
        let _ = Block::decode(&bytes);
    }
}

#[test]
fn a_replayed_transaction_is_rejected() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let t = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let p = parent(&state);
    let block = build(&state, &p, Address(ks[1].public()), vec![t.clone(), t.clone()]);
    assert_eq!(block.txs.len(), 1, "the proposer keeps only the first copy");
    let mut after = state.clone();
    after.extend(execute_block(&rules(), &state, &p, &block, &|_| false).expect("valid").changes);
    // Block 2 carries the same signed transaction again.
    let header = Header { height: 2, parent_hash: block.hash(), tx_root: tx_root(&[t.hash()]), ..block.header.clone() };
    let replay = Block { header, txs: vec![t], evidence: vec![] };
    let err = execute_block(&rules(), &after, &block.header, &replay, &|_| false);
    assert!(
        matches!(err, Err(taksa_consensus::state::BlockError::Tx { error: TxError::NonceTooLow { .. }, .. })),
        "{err:?}"
    );
}

#[test]
fn a_block_with_one_bad_transaction_applies_nothing() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let p = parent(&state);
    let good = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let mut block = build(&state, &p, Address(ks[1].public()), vec![good]);
    let mut forged = signed(&ks[0], Address(ks[1].public()), 10, 1, 1);
    forged.tx.amount = 999; // signature no longer matches
    block.txs.push(forged);
    block.header.tx_root = tx_root(&block.txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    let err = execute_block(&rules(), &state, &p, &block, &|_| false);
    assert!(
        matches!(err, Err(taksa_consensus::state::BlockError::Tx { index: 1, error: TxError::BadSignature, .. })),
        "{err:?}"
    );
}

#[test]
fn a_wrong_state_root_is_caught_at_the_first_divergent_block() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let p = parent(&state);
    let mut block = build(&state, &p, Address(ks[1].public()), vec![signed(&ks[0], Address(ks[1].public()), 10, 1, 0)]);
    block.header.state_root.0[0] ^= 1;
    let err = execute_block(&rules(), &state, &p, &block, &|_| false);
    assert!(matches!(err, Err(taksa_consensus::state::BlockError::StateRoot { .. })), "{err:?}");
}

#[test]
fn overflowing_and_underfunded_transfers_are_refused_without_changes() {
    let ks = keys(2);
    let mut state = genesis_state(&ks, 100);
    state.insert(Address(ks[1].public()), Account { balance: u128::MAX - 5, nonce: 0 });
    let p = parent(&state);
    let overflow = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let (kept, outcome, refused) =
        select_transactions(&state, &p.state_root, 1, &Address::default(), vec![overflow], 10);
    assert!(kept.is_empty() && outcome.changes.is_empty());
    assert_eq!(refused[0].1, TxError::Overflow);
    let broke = signed(&ks[0], Address::default(), 100, 1, 0);
    let (_, _, refused) = select_transactions(&state, &p.state_root, 1, &Address::default(), vec![broke], 10);
    assert_eq!(refused[0].1, TxError::InsufficientBalance { needed: 101, available: 100 });
}

#[test]
fn a_signature_for_another_genesis_does_not_verify() {
    let k = Keypair::from_seed(&[9; 32]);
    let stx = signed(&k, Address::default(), 1, 1, 0);
    assert!(stx.check_stateless(CHAIN, &rules().genesis_hash, 1).is_ok());
    assert_eq!(stx.check_stateless(CHAIN, &Hash([8; 32]), 1), Err(TxError::BadSignature));
    assert!(matches!(stx.check_stateless("other-chain", &rules().genesis_hash, 1), Err(TxError::WrongChain { .. })));
}
