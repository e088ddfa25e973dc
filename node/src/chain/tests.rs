//! The chain service driven by hand, on a real store in a temporary folder.

use std::sync::Arc;

use taksa_consensus::block::tx_root;
use taksa_consensus::engine::Message;
use taksa_consensus::pool::{AdmitError, Admitted};
use taksa_consensus::{
    Address, Block, Certificate, Genesis, Hash, Header, Keypair, SignedTransaction, Transaction, Vote, VoteKind,
};
use taksa_storage::Store;

use super::{
    now_ms, Alone, Candidate, Chain, ChainMsg, NoVerdict, Shared, INBOX_STREAK_MAX, QUEUED_TXS_MAX, SUBMIT_WAIT,
};
use taksa_consensus::chain::Input;
use taksa_consensus::tx::encode_gossip_batch;

/// Four validators whose keys the test holds, and a full node (no key) following them.
struct Net {
    keys: Vec<Keypair>,
    genesis: Genesis,
    _dir: tempfile::TempDir,
    chain: Chain,
    inbox: crossbeam_channel::Sender<ChainMsg>,
    /// A funded account.
    wallet: Keypair,
}

fn net() -> Net {
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[i + 1; 32])).collect();
    let wallet = Keypair::from_seed(&[42; 32]);
    let genesis = Genesis {
        chain_id: "taksa-chain-test".into(),
        address_hrp: "tt".into(),
        genesis_time_ms: now_ms().saturating_sub(10_000),
        block_time_ms: 1000,
        fee_floor: 1,
        epoch_length: 1_000,
        validators: keys.iter().map(|k| Address(k.public())).collect(),
        validator_names: (0..4).map(|i| format!("v{i}")).collect(),
        allocations: vec![(Address(wallet.public()), 1_000_000)],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &genesis).expect("opens");
    let (shared, ends) = Shared::new(genesis.clone(), store, None);
    let (inbox, rx) = crossbeam_channel::bounded(256);
    let chain = Chain::new(Arc::new(shared), Vec::new(), false, Box::new(Alone), rx, ends).expect("chain");
    Net { keys, genesis, _dir: dir, chain, inbox, wallet }
}

impl Net {
    /// A child of genesis proposed and signed by view 1's leader.
    fn block_one(&self, state_root: Hash) -> (Block, Message) {
        let validators = self.genesis.validator_set();
        let header = Header {
            chain_id: self.genesis.chain_id.clone(),
            height: 1,
            view: 1,
            parent_hash: self.genesis.hash(),
            proposer: validators.leader(1),
            timestamp_ms: self.genesis.genesis_time_ms + 1,
            tx_root: tx_root(&[]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root,
            validator_set_hash: validators.hash(),
            parent_cert: None,
        };
        let block = Block { header, evidence: Vec::new(), txs: vec![] };
        let leader = self.key_of(validators.leader(1));
        let leader_vote = Vote::sign(&self.chain.shared.domain, leader, VoteKind::Notarize, 1, Some(block.hash()));
        (block.clone(), Message::Proposal { block, leader_vote })
    }

    /// A transfer from the funded wallet, with its hash and length.
    fn transfer(&self, nonce: u64, fee: u128) -> (SignedTransaction, Hash, usize) {
        let tx = Transaction {
            chain_id: self.genesis.chain_id.clone(),
            from: Address(self.wallet.public()),
            // To itself: no account is created, so the fee floor is enough.
            to: Address(self.wallet.public()),
            amount: 10,
            fee,
            nonce,
            valid_until_height: None,
            memo: None,
            action: None,
        }
        .sign(&self.wallet, &self.genesis.hash());
        let (hash, bytes) = (tx.hash(), tx.encode().len());
        (tx, hash, bytes)
    }

    fn key_of(&self, a: Address) -> &Keypair {
        self.keys.iter().find(|k| Address(k.public()) == a).expect("a validator key")
    }

    /// A certificate of `kind` for `hash` in view 1, signed by a quorum.
    fn certificate(&self, kind: VoteKind, hash: Hash) -> Message {
        let domain = &self.chain.shared.domain;
        let votes: Vec<Vote> = self.keys[..3].iter().map(|k| Vote::sign(domain, k, kind, 1, Some(hash))).collect();
        Message::Certificate(Certificate::from_votes(&self.genesis.validator_set(), 0, kind, 1, Some(hash), &votes))
    }
}

#[test]
fn a_finalized_block_that_does_not_execute_here_stops_the_chain() {
    let mut net = net();
    let (block, proposal) = net.block_one(Hash([9; 32]));
    net.chain.handle(ChainMsg::Core(Input::Consensus(proposal))).expect("a proposal is only remembered");
    let finalization = net.certificate(VoteKind::Finalize, block.hash());
    let err =
        net.chain.handle(ChainMsg::Core(Input::Consensus(finalization))).expect_err("following on would be unsafe");
    assert!(err.to_string().contains("does not execute on this node's state"), "{err}");
    assert_eq!(net.chain.shared.store.head().height, 0, "nothing was committed");
}

#[test]
fn a_finalized_block_that_executes_is_committed() {
    let mut net = net();
    let (block, proposal) = net.block_one(net.genesis.header().state_root);
    net.chain.handle(ChainMsg::Core(Input::Consensus(proposal))).expect("remembered");
    let finalization = net.certificate(VoteKind::Finalize, block.hash());
    net.chain.handle(ChainMsg::Core(Input::Consensus(finalization))).expect("committed");
    assert_eq!(net.chain.shared.store.head().hash(), block.hash());
}

#[test]
fn a_submitter_hears_its_verdict_only_once_readers_see_it() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let sender = Address(net.wallet.public());
    let submissions: Vec<_> = (0..20).map(|nonce| net.transfer(nonce, 1)).collect();
    let underpriced = net.transfer(3, 1);
    let Net { chain, inbox, .. } = net;
    let actor = std::thread::spawn(move || chain.run());
    for (nonce, (tx, hash, bytes)) in (1..).zip(submissions) {
        let verdict = shared.submit_and_wait(tx, hash, bytes).expect("the queue has room");
        assert_eq!(verdict, Ok(Admitted::New));
        // Read right after the answer, as a wallet does: the snapshot already holds it.
        let snapshot = shared.chain();
        assert_eq!(snapshot.pool.get(&hash).map(SignedTransaction::hash), Some(hash));
        assert_eq!(snapshot.pool.next_nonce(&sender, &shared.store), nonce);
    }
    // The same bytes again, and a same-nonce replacement that does not pay more.
    let (tx, hash, bytes) = underpriced;
    assert_eq!(shared.submit_and_wait(tx.clone(), hash, bytes).expect("room"), Ok(Admitted::AlreadyPending));
    let mut cheaper = tx;
    cheaper.tx.amount = 11;
    let cheaper = cheaper.tx.sign(&Keypair::from_seed(&[42; 32]), &shared.genesis_hash);
    let verdict = shared.submit_and_wait(cheaper.clone(), cheaper.hash(), cheaper.encode().len()).expect("room");
    assert!(matches!(verdict, Err(AdmitError::ReplacementUnderpriced { .. })), "{verdict:?}");
    inbox.send(ChainMsg::Shutdown).expect("the actor runs");
    actor.join().expect("no panic").expect("a clean stop");
}

#[test]
fn consensus_waiting_in_the_inbox_is_read_before_queued_transactions() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let verdicts: Vec<_> = (0..64)
        .map(|nonce| {
            let (tx, hash, bytes) = net.transfer(nonce, 1);
            shared.submit(tx, hash, bytes).expect("the queue has room")
        })
        .collect();
    // The inbox's message is a shutdown: had the actor admitted first, the pool would hold some.
    net.inbox.send(ChainMsg::Shutdown).expect("room");
    net.chain.run().expect("a clean stop");
    assert_eq!(shared.chain().pool.len(), 0, "the inbox is read first");
    for verdict in verdicts {
        assert!(verdict.blocking_recv().is_err(), "what the actor never took is never answered");
    }
}

#[test]
fn a_full_admission_queue_answers_busy_at_once_instead_of_waiting_without_end() {
    let net = net();
    let shared = &net.chain.shared;
    let (tx, hash, bytes) = net.transfer(0, 1);
    // Nobody admits (the actor is not running): the queue fills at its bound in transactions.
    let mut held = Vec::new();
    while let Ok(verdict) = shared.submit(tx.clone(), hash, bytes) {
        held.push(verdict);
        assert!(held.len() <= QUEUED_TXS_MAX, "the queue is bounded");
    }
    assert_eq!(held.len(), QUEUED_TXS_MAX);
    let started = std::time::Instant::now();
    assert_eq!(shared.submit_and_wait(tx, hash, bytes), Err(NoVerdict::Busy));
    assert!(started.elapsed() < SUBMIT_WAIT, "refused at once");
}

#[test]
fn queued_batches_are_bounded_in_transactions_not_only_in_messages() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let (tx, hash, bytes) = net.transfer(0, 1);
    let batch = || vec![Candidate { tx: tx.clone(), hash, bytes }; taksa_rpc::TX_SUBMIT_BATCH_MAX];
    // Nobody admits (the actor is not running): eight full batches wait in the queue, their
    // submitters told `busy` after a while; a ninth is refused at once.
    // On the runtime's blocking pool, as the RPC server calls it (so the wait for a verdict ends).
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let waiting: Vec<_> = (0..QUEUED_TXS_MAX / taksa_rpc::TX_SUBMIT_BATCH_MAX)
        .map(|_| {
            let (shared, txs) = (Arc::clone(&shared), batch());
            runtime.spawn_blocking(move || shared.submit_many_and_wait(txs))
        })
        .collect();
    for w in waiting {
        assert_eq!(runtime.block_on(w).expect("no panic"), Err(NoVerdict::Busy));
    }
    let started = std::time::Instant::now();
    let ninth_batch = batch();
    let ninth = runtime.spawn_blocking(move || shared.submit_many_and_wait(ninth_batch));
    assert_eq!(runtime.block_on(ninth).expect("no panic"), Err(NoVerdict::Busy));
    assert!(started.elapsed() < SUBMIT_WAIT, "refused without waiting: the queue holds its bound of transactions");
}

#[test]
fn a_submitter_that_gave_up_is_not_admitted_behind_its_back() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let (tx, hash, bytes) = net.transfer(0, 1);
    let verdict = shared.submit(tx, hash, bytes).expect("room");
    drop(verdict); // told "busy": its wallet may now sign something else for that nonce
    let (kept, kept_hash, kept_bytes) = net.transfer(1, 1);
    let waiting = shared.submit(kept, kept_hash, kept_bytes).expect("room");
    let Net { chain, inbox, .. } = net;
    let actor = std::thread::spawn(move || chain.run());
    assert!(waiting.blocking_recv().expect("answered")[0].is_ok(), "the second is admitted (queued past nonce 0)");
    inbox.send(ChainMsg::Shutdown).expect("the actor runs");
    actor.join().expect("no panic").expect("a clean stop");
    let pool = &shared.chain().pool;
    assert!(!pool.contains(&hash), "admitted although nobody waited for the verdict");
    assert!(pool.contains(&kept_hash), "the one still waited for is admitted");
}

#[test]
fn a_busy_inbox_does_not_starve_admission() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let (tx, hash, bytes) = net.transfer(0, 1);
    let _waiting = shared.submit(tx, hash, bytes).expect("room");
    for _ in 0..INBOX_STREAK_MAX {
        net.inbox.send(ChainMsg::Core(Input::Tick)).expect("room");
    }
    net.inbox.send(ChainMsg::Shutdown).expect("room");
    net.chain.run().expect("a clean stop");
    assert!(shared.chain().pool.contains(&hash), "admitted after {INBOX_STREAK_MAX} inbox messages");
}

#[test]
fn a_gossiped_batch_is_forwarded_whole_only_when_all_new_and_one_bad_transaction_keeps_all_of_it_out() {
    let net = net();
    let shared = Arc::clone(&net.chain.shared);
    let good: Vec<SignedTransaction> = (0..3).map(|nonce| net.transfer(nonce, 1).0).collect();
    let mut forged = net.transfer(3, 1).0;
    forged.tx.amount += 1;
    let fresh: Vec<SignedTransaction> = (3..6).map(|nonce| net.transfer(nonce, 1).0).collect();
    // Signed for this chain, but from a key with no funds: the pool refuses it, no one is at fault.
    let broke = Keypair::from_seed(&[77; 32]);
    let junk = Transaction {
        chain_id: net.genesis.chain_id.clone(),
        from: Address(broke.public()),
        to: Address(net.wallet.public()),
        amount: 5,
        fee: 1,
        nonce: 0,
        valid_until_height: None,
        memo: None,
        action: None,
    }
    .sign(&broke, &net.genesis.hash());
    let Net { chain, inbox, .. } = net;
    let actor = std::thread::spawn(move || chain.run());
    // On the runtime's blocking pool, as the network task runs it.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let gossip = |data: Vec<u8>| {
        let shared = Arc::clone(&shared);
        runtime
            .block_on(runtime.spawn_blocking(move || crate::network::admit_gossiped(&shared, &data)))
            .expect("no panic")
    };
    let first = vec![good[0].clone(), forged.clone()];
    assert!(gossip(encode_gossip_batch(&first)).is_err(), "one forged signature makes the sender at fault");
    assert!(!shared.chain().pool.contains(&good[0].hash()), "nothing of a refused message enters the pool");

    let mut carrier = good.clone();
    carrier.push(junk.clone());
    assert_eq!(gossip(encode_gossip_batch(&carrier)), Ok(false), "not forwarded as it came");
    for tx in &good {
        assert!(shared.chain().pool.contains(&tx.hash()), "admitted");
    }
    assert!(!shared.chain().pool.contains(&junk.hash()));
    assert_eq!(shared.tx_gossip.take(), Some(good.clone()), "only what the pool took goes on, junk stays here");

    assert_eq!(gossip(encode_gossip_batch(&good)), Ok(false), "known again: nothing wrong, nothing to forward");
    assert_eq!(shared.tx_gossip.take(), None, "and nothing to pass on");
    assert_eq!(gossip(encode_gossip_batch(&fresh)), Ok(true), "all new here: forwarded as it came");
    assert_eq!(shared.tx_gossip.take(), None, "and not sent a second time in our own message");
    assert!(gossip(vec![1, 2, 3]).is_err(), "garbage");
    inbox.send(ChainMsg::Shutdown).expect("the actor runs");
    actor.join().expect("no panic").expect("a clean stop");
}
