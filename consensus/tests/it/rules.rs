//! Property tests of the state transition and the codec.

use std::collections::BTreeMap;

use proptest::prelude::*;
use taksa_consensus::block::{evidence_root, tx_bytes_max, tx_root, BLOCK_EVIDENCE_MAX, BLOCK_TXS_MAX};
use taksa_consensus::governance::{Governance, Validator};
use taksa_consensus::state::{
    execute_block, recipient_known_valid, select_transactions, BlockBudget, MemState, Selection,
};
use taksa_consensus::tree;
use taksa_consensus::tx::MEMO_BYTES_MAX;
use taksa_consensus::{
    Account, Address, Block, Certificate, Domain, Epochs, Evidence, Hash, Header, Keypair, Rules, SignedTransaction,
    Transaction, TxError, ValidatorSet, Vote, VoteKind,
};

const CHAIN: &str = "taksa-prop";

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed(&[i + 1; 32])).collect()
}

/// The one validator of these tests: it leads every view and certifies every parent.
fn validator() -> Keypair {
    Keypair::from_seed(&[200; 32])
}

fn rules() -> Rules {
    Rules { chain_id: CHAIN.into(), genesis_hash: Hash([7; 32]), fee_floor: 1, epochs: Epochs::new(1_000_000) }
}

/// The validator set of these tests.
fn validators() -> ValidatorSet {
    ValidatorSet::new(vec![Address(validator().public())])
}

/// The governance entry of these tests: the one validator.
fn governance() -> Governance {
    Governance::genesis(vec![Validator { address: Address(validator().public()), name: "v".into() }])
}

fn domain() -> Domain {
    Domain { chain_id: CHAIN.into(), genesis_hash: rules().genesis_hash, epoch: 0 }
}

fn genesis_state(keys: &[Keypair], balance: u128) -> MemState {
    MemState::new(keys.iter().map(|k| (Address(k.public()), Account { balance, nonce: 0 })), governance())
}

/// `state` with `addr` set to `acct`.
fn with_account(state: &MemState, addr: Address, acct: Account) -> MemState {
    let mut accounts = state.accounts.clone();
    accounts.insert(addr, acct);
    MemState::new(accounts, governance())
}

/// The state tree's root of `accounts` and the test's governance entry, built from nothing.
fn root_from_nothing(accounts: &BTreeMap<Address, Account>) -> Hash {
    let mut entries: Vec<(Hash, Hash)> = accounts
        .iter()
        .filter(|(_, a)| **a != Account::default())
        .map(|(addr, a)| (tree::account_key(addr), tree::account_value_hash(a)))
        .collect();
    entries.push((taksa_consensus::governance::governance_key(), governance().value_hash()));
    tree::root_of(&entries)
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
        action: None,
    }
    .sign(k, &rules().genesis_hash)
}

fn parent(state: &MemState) -> Header {
    Header {
        chain_id: CHAIN.into(),
        height: 0,
        view: 0,
        parent_hash: Hash::ZERO,
        proposer: Address::default(),
        timestamp_ms: 0,
        tx_root: tx_root(&[]),
        evidence_root: taksa_consensus::block::evidence_root(&[]),
        state_root: state.root(),
        validator_set_hash: Hash::ZERO,
        parent_cert: None,
    }
}

/// A budget of `txs_max` transactions with room for any bytes they take.
fn budget(txs_max: usize) -> BlockBudget {
    BlockBudget { txs_max, tx_bytes_max: usize::MAX }
}

/// Builds a block on `parent` from candidates the way the proposer (the validator) does.
fn build(state: &MemState, parent: &Header, cands: Vec<SignedTransaction>) -> Block {
    let proposer = Address(validator().public());
    let Selection { txs, outcome, .. } =
        select_transactions(&rules(), state, parent.height + 1, &proposer, vec![], cands, budget(10_000))
            .expect("the state tree is whole");
    Block { header: child_header(parent, &txs, outcome.state_root), evidence: Vec::new(), txs }
}

/// A valid header for a child of `parent` carrying `txs`: the next view, its leader, the parent's
/// notarization (none for a child of genesis).
fn child_header(parent: &Header, txs: &[SignedTransaction], state_root: Hash) -> Header {
    let view = parent.view + 1;
    let parent_cert = (parent.height > 0).then(|| {
        let vote = Vote::sign(&domain(), &validator(), VoteKind::Notarize, parent.view, Some(parent.hash()));
        Certificate::from_votes(&validators(), 0, VoteKind::Notarize, parent.view, Some(parent.hash()), &[vote])
    });
    Header {
        chain_id: CHAIN.into(),
        height: parent.height + 1,
        view,
        parent_hash: parent.hash(),
        proposer: validators().leader(view),
        timestamp_ms: parent.timestamp_ms + 1,
        tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
        evidence_root: taksa_consensus::block::evidence_root(&[]),
        state_root,
        validator_set_hash: validators().hash(),
        parent_cert,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn total_supply_is_conserved_over_random_transfers(
        moves in prop::collection::vec((0u8..5, 0u8..6, 0u128..2_000, 1u128..50), 1..60)
    ) {
        let ks = keys(6);
        let state = genesis_state(&ks[..5], 10_000);
        let supply: u128 = state.accounts.values().map(|a| a.balance).sum();
        let mut nonces = [0u64; 5];
        let cands: Vec<SignedTransaction> = moves.iter().map(|&(f, t, amount, fee)| {
            let n = nonces[f as usize];
            nonces[f as usize] += 1;
            signed(&ks[f as usize], Address(ks[t as usize].public()), amount, fee, n)
        }).collect();
        let p = parent(&state);
        let block = build(&state, &p, cands);
        let outcome = execute_block(&rules(), &state, &p, &block, &|_| false).expect("a built block is valid");
        let mut after = state.clone();
        after.apply_outcome(&outcome);
        prop_assert_eq!(after.accounts.values().map(|a| a.balance).sum::<u128>(), supply);
        prop_assert_eq!(outcome.state_root, root_from_nothing(&after.accounts), "incremental root equals the root built from nothing");
        prop_assert_eq!(after.root(), outcome.state_root, "the outcome's node changes lead to its root");
        prop_assert!(after == MemState::new(after.accounts.clone(), governance()), "and to exactly the nodes of the tree built from nothing");
    }

    #[test]
    fn decode_of_encode_is_identity_for_transactions(
        amount in any::<u128>(), fee in any::<u128>(), nonce in any::<u64>(),
        until in proptest::option::of(any::<u64>()), memo in proptest::option::of("[ -~]{0,64}")
    ) {
        let k = Keypair::from_seed(&[3; 32]);
        let tx = Transaction { chain_id: CHAIN.into(), from: Address(k.public()), to: Address::default(), amount, fee, nonce, valid_until_height: until, memo, action: None };
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
    let block = build(&state, &p, vec![t.clone(), t.clone()]);
    assert_eq!(block.txs.len(), 1, "the proposer keeps only the first copy");
    let mut after = state.clone();
    let outcome = execute_block(&rules(), &state, &p, &block, &|_| false).expect("valid");
    after.apply_outcome(&outcome);
    // Block 2 carries the same signed transaction again.
    let replay = Block {
        header: child_header(&block.header, std::slice::from_ref(&t), block.header.state_root),
        evidence: Vec::new(),
        txs: vec![t],
    };
    let err = execute_block(&rules(), &after, &block.header, &replay, &|_| false);
    assert!(
        matches!(err, Err(taksa_consensus::state::BlockError::Tx { error: TxError::NonceTooLow { .. }, .. })),
        "{err:?}"
    );
}

/// The validator's two notarizations of different blocks in `view`.
fn equivocation(view: u64) -> Evidence {
    Evidence {
        a: Vote::sign(&domain(), &validator(), VoteKind::Notarize, view, Some(Hash([1; 32]))),
        b: Vote::sign(&domain(), &validator(), VoteKind::Notarize, view, Some(Hash([2; 32]))),
    }
}

#[test]
fn a_block_records_the_equivocation_it_carries_once_before_its_transactions() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let p = parent(&state);
    let t = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let (e, other) = (equivocation(3), equivocation(4));
    let proposer = Address(validator().public());
    // The proposer keeps one item per validator per epoch: the second is of the same offender.
    let Selection { evidence, txs, outcome, .. } =
        select_transactions(&rules(), &state, 1, &proposer, vec![e.clone(), other.clone()], vec![t], budget(10))
            .expect("the state tree is whole");
    assert_eq!((evidence.clone(), txs.len()), (vec![e.clone()], 1));
    let mut header = child_header(&p, &txs, outcome.state_root);
    header.evidence_root = evidence_root(&evidence);
    let block = Block { header, evidence, txs };
    let executed = execute_block(&rules(), &state, &p, &block, &|_| false).expect("a block with evidence executes");
    let recorded = executed.governance.expect("the record changed").offences.clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].validator, recorded[0].view, recorded[0].height), (proposer, 3, 1));
    assert_eq!(recorded[0].evidence, e.hash());

    // The same offender twice in one block, or an evidence list its header does not name, is an
    // invalid block.
    let mut twice = block.clone();
    twice.evidence.push(other);
    twice.header.evidence_root = evidence_root(&twice.evidence);
    let err = execute_block(&rules(), &state, &p, &twice, &|_| false).expect_err("one offence per epoch");
    assert!(err.to_string().contains("evidence item 1"), "{err}");
    let mut unnamed = block.clone();
    unnamed.header.evidence_root = evidence_root(&[]);
    let err = execute_block(&rules(), &state, &p, &unnamed, &|_| false).expect_err("the root must match");
    assert!(err.to_string().contains("evidence_root"), "{err}");
    let mut flood = block;
    flood.evidence = vec![e; BLOCK_EVIDENCE_MAX + 1];
    flood.header.evidence_root = evidence_root(&flood.evidence);
    let err = execute_block(&rules(), &state, &p, &flood, &|_| false).expect_err("a bounded list");
    assert!(err.to_string().contains("evidence items"), "{err}");
}

#[test]
fn a_block_with_one_bad_transaction_applies_nothing() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let p = parent(&state);
    let good = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let mut block = build(&state, &p, vec![good]);
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
fn a_transfer_to_bytes_that_are_no_account_key_is_refused_in_a_block_and_on_admission() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    // The identity point decodes, but is of small order: no one can sign for it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let burn = signed(&ks[0], Address(taksa_consensus::crypto::PublicKey(identity)), 10, 1, 0);
    assert_eq!(burn.check_stateless(CHAIN, &rules().genesis_hash, 1), Err(TxError::BadRecipient));
    assert_block_refuses_recipient(&state, burn);
}

#[test]
fn only_a_funded_recipient_skips_the_account_key_check() {
    let ks = keys(2);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let burn_to = Address(taksa_consensus::crypto::PublicKey(identity));
    // A nonce without funds proves nothing (a zero fee floor lets any key send nothing).
    let state = with_account(&genesis_state(&ks, 1_000), burn_to, Account { balance: 0, nonce: 3 });
    let honest_to = Address(ks[1].public());
    assert!(!recipient_known_valid(&state, &burn_to));
    assert!(recipient_known_valid(&state, &honest_to));
    let burn = signed(&ks[0], burn_to, 10, 1, 0);
    let honest = signed(&ks[0], honest_to, 10, 1, 1);
    let known = |to: &Address| recipient_known_valid(&state, to);
    let verdicts =
        SignedTransaction::check_stateless_many(&[burn.clone(), honest], CHAIN, &rules().genesis_hash, 1, &known);
    assert_eq!(verdicts, vec![Err(TxError::BadRecipient), Ok(())]);
    assert_block_refuses_recipient(&state, burn);
}

/// A block on `state` whose only transaction is `tx` is refused for its recipient.
fn assert_block_refuses_recipient(state: &MemState, tx: SignedTransaction) {
    let p = parent(state);
    let mut block = build(state, &p, vec![]);
    block.txs.push(tx);
    block.header.tx_root = tx_root(&block.txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    let err = execute_block(&rules(), state, &p, &block, &|_| false);
    assert!(
        matches!(err, Err(taksa_consensus::state::BlockError::Tx { index: 0, error: TxError::BadRecipient, .. })),
        "{err:?}"
    );
}

#[test]
fn a_wrong_state_root_is_caught_at_the_first_divergent_block() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000);
    let p = parent(&state);
    let mut block = build(&state, &p, vec![signed(&ks[0], Address(ks[1].public()), 10, 1, 0)]);
    block.header.state_root.0[0] ^= 1;
    let err = execute_block(&rules(), &state, &p, &block, &|_| false);
    assert!(matches!(err, Err(taksa_consensus::state::BlockError::StateRoot { .. })), "{err:?}");
}

#[test]
fn overflowing_and_underfunded_transfers_are_refused_without_changes() {
    let ks = keys(2);
    let state =
        with_account(&genesis_state(&ks, 100), Address(ks[1].public()), Account { balance: u128::MAX - 5, nonce: 0 });
    let overflow = signed(&ks[0], Address(ks[1].public()), 10, 1, 0);
    let Selection { txs: kept, outcome, refused, .. } =
        select_transactions(&rules(), &state, 1, &Address::default(), vec![], vec![overflow], budget(10))
            .expect("the state tree is whole");
    assert!(kept.is_empty() && outcome.changes.is_empty());
    assert_eq!(refused[0].1, TxError::Overflow);
    let broke = signed(&ks[0], Address::default(), 100, 1, 0);
    let Selection { refused, .. } =
        select_transactions(&rules(), &state, 1, &Address::default(), vec![], vec![broke], budget(10))
            .expect("the state tree is whole");
    assert_eq!(refused[0].1, TxError::InsufficientBalance { needed: 101, available: 100 });
}

#[test]
fn a_signature_for_another_genesis_does_not_verify() {
    let k = Keypair::from_seed(&[9; 32]);
    let stx = signed(&k, Address(Keypair::from_seed(&[10; 32]).public()), 1, 1, 0);
    assert!(stx.check_stateless(CHAIN, &rules().genesis_hash, 1).is_ok());
    assert_eq!(stx.check_stateless(CHAIN, &Hash([8; 32]), 1), Err(TxError::BadSignature));
    assert!(matches!(stx.check_stateless("other-chain", &rules().genesis_hash, 1), Err(TxError::WrongChain { .. })));
}

#[test]
fn a_proposal_of_maximum_memo_transfers_stays_within_the_block_byte_limit() {
    // 10,000 transfers with 256-byte memos are about 4.4 MB: more than a block may hold. The
    // signatures do not matter here (the pool checked them), so one key signs all of them.
    let senders: Vec<Keypair> = (0..40u8).map(|i| Keypair::from_seed(&[i.wrapping_add(100); 32])).collect();
    let state = genesis_state(&senders, 1 << 60);
    let p = parent(&state);
    let memo = "m".repeat(MEMO_BYTES_MAX);
    let mut cands = Vec::new();
    for nonce in 0..250u64 {
        for k in &senders {
            // Into an existing account: no account-creation fee.
            let mut stx = signed(k, Address(senders[0].public()), 1, 1, nonce);
            stx.tx.memo = Some(memo.clone());
            cands.push(stx);
        }
    }
    assert_eq!(cands.len(), BLOCK_TXS_MAX);
    let mut header = child_header(&p, &[], Hash::ZERO);
    let all = Block { header: header.clone(), evidence: Vec::new(), txs: cands.clone() };
    assert!(codec_len(&all) > taksa_consensus::codec::BLOCK_BYTES_MAX, "the flood is over the limit");

    let room = BlockBudget { txs_max: BLOCK_TXS_MAX, tx_bytes_max: tx_bytes_max(&header, &[]) };
    let Selection { txs, outcome, refused, .. } =
        select_transactions(&rules(), &state, 1, &header.proposer, vec![], cands, room)
            .expect("the state tree is whole");
    assert!(refused.is_empty(), "what does not fit waits; nothing is refused");
    assert!(txs.len() < BLOCK_TXS_MAX && txs.len() > 9_000, "{} transfers fit", txs.len());
    header.tx_root = tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    header.state_root = outcome.state_root;
    let block = Block { header: header.clone(), evidence: Vec::new(), txs };
    let bytes = codec_len(&block);
    assert!(bytes <= taksa_consensus::codec::BLOCK_BYTES_MAX, "{bytes} bytes");
    assert!(bytes + 2 * 1024 > taksa_consensus::codec::BLOCK_BYTES_MAX, "the block is filled: {bytes} bytes");
    assert!(block.check_shape().is_ok());

    // The whole flood in one block is refused by the shape check every path runs.
    header.tx_root = tx_root(&all.txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    let oversize = Block { header, evidence: Vec::new(), txs: all.txs };
    let err = oversize.check_shape().expect_err("an oversize block is invalid");
    assert!(err.to_string().contains("bytes; the limit is"), "{err}");
}

fn codec_len(block: &Block) -> usize {
    block.encode().len()
}

#[test]
fn a_header_is_checked_against_its_real_parent() {
    let state = genesis_state(&keys(1), 1_000);
    let p = parent(&state);
    let one = build(&state, &p, vec![]);
    assert!(execute_block(&rules(), &state, &p, &one, &|_| false).is_ok());
    let two =
        Block { header: child_header(&one.header, &[], one.header.state_root), evidence: Vec::new(), txs: vec![] };
    assert!(execute_block(&rules(), &state, &one.header, &two, &|_| false).is_ok());

    let mut bad: Vec<(&str, Header)> = Vec::new();
    let mut h = two.header.clone();
    h.timestamp_ms = one.header.timestamp_ms - 1;
    bad.push(("timestamp before the parent's", h));
    let mut h = two.header.clone();
    h.view = one.header.view;
    bad.push(("view not after the parent's", h));
    let mut h = two.header.clone();
    h.proposer = Address(keys(1)[0].public());
    bad.push(("proposer not the leader", h));
    let mut h = two.header.clone();
    h.validator_set_hash = Hash([1; 32]);
    bad.push(("another validator set", h));
    let mut h = two.header.clone();
    h.parent_cert = None;
    bad.push(("no parent certificate", h));
    let mut h = two.header.clone();
    if let Some(c) = &mut h.parent_cert {
        c.signatures[0].0[0] ^= 1;
    }
    bad.push(("a forged parent certificate", h));
    let mut h = two.header.clone();
    if let Some(c) = &mut h.parent_cert {
        c.view += 1;
    }
    bad.push(("a parent certificate of another view", h));
    for (why, header) in bad {
        let block = Block { header, evidence: Vec::new(), txs: vec![] };
        let err = execute_block(&rules(), &state, &one.header, &block, &|_| false);
        assert!(err.is_err(), "{why} must be refused");
    }
}

#[test]
fn creating_an_account_costs_the_account_creation_fee_and_paying_into_one_only_the_floor() {
    let ks = keys(2);
    let state = genesis_state(&ks, 1_000_000);
    let p = parent(&state);
    let fresh = Address(Keypair::from_seed(&[0x77; 32]).public());
    let needed = taksa_consensus::state::account_creation_fee(rules().fee_floor);
    let cheap = signed(&ks[0], fresh, 10, needed - 1, 0);
    let proposer = Address(validator().public());
    let Selection { txs: kept, refused, .. } =
        select_transactions(&rules(), &state, 1, &proposer, vec![], vec![cheap.clone()], budget(10))
            .expect("the state tree is whole");
    assert!(kept.is_empty());
    assert_eq!(refused[0].1, TxError::AccountCreationFee { fee: needed - 1, needed });
    // Paid in full, it creates the account; a second transfer into it needs only the floor.
    let creating = signed(&ks[0], fresh, 10, needed, 0);
    let into = signed(&ks[1], fresh, 10, 1, 0);
    let block = build(&state, &p, vec![creating, into]);
    assert_eq!(block.txs.len(), 2, "both are kept");
    execute_block(&rules(), &state, &p, &block, &|_| false).expect("valid");
    // A block that carries the cheap one is refused by every node.
    let mut bad = build(&state, &p, vec![]);
    bad.txs.push(cheap);
    bad.header.tx_root = tx_root(&bad.txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    let err = execute_block(&rules(), &state, &p, &bad, &|_| false);
    assert!(
        matches!(err, Err(taksa_consensus::state::BlockError::Tx { error: TxError::AccountCreationFee { .. }, .. })),
        "{err:?}"
    );
    // Zero amounts and transfers to oneself create nothing.
    let zero = signed(&ks[0], fresh, 0, 1, 0);
    let own = signed(&ks[0], Address(ks[0].public()), 10, 1, 0);
    for tx in [zero, own] {
        assert!(taksa_consensus::state::check_account_creation(&state, &tx.tx, rules().fee_floor).is_ok());
    }
}
