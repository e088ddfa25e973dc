//! The chain service driven by hand, on a real store in a temporary folder.

use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use taksa_consensus::block::tx_root;
use taksa_consensus::engine::Message;
use taksa_consensus::{Address, Block, Certificate, Genesis, Hash, Header, Keypair, Vote, VoteKind};
use taksa_storage::Store;

use super::{now_ms, Alone, Chain, ChainMsg, Shared};
use taksa_consensus::chain::Input;
use taksa_consensus::pool::{Limits, Mempool};

/// Four validators whose keys the test holds, and a full node (no key) following them.
struct Net {
    keys: Vec<Keypair>,
    genesis: Genesis,
    _dir: tempfile::TempDir,
    chain: Chain,
}

fn net() -> Net {
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed(&[i + 1; 32])).collect();
    let genesis = Genesis {
        chain_id: "taksa-chain-test".into(),
        address_hrp: "tt".into(),
        genesis_time_ms: now_ms().saturating_sub(10_000),
        block_time_ms: 1000,
        fee_floor: 1,
        validators: keys.iter().map(|k| Address(k.public())).collect(),
        validator_names: (0..4).map(|i| format!("v{i}")).collect(),
        allocations: vec![],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &genesis).expect("opens");
    let (shared, publisher) = Shared::new(genesis.clone(), store, Mempool::new(Limits::default()), None);
    let (_tx, rx) = sync_channel(16);
    let chain = Chain::new(Arc::new(shared), None, Box::new(Alone), rx, publisher).expect("chain");
    Net { keys, genesis, _dir: dir, chain }
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
            state_root,
            validator_set_hash: validators.hash(),
            parent_cert: None,
        };
        let block = Block { header, txs: vec![] };
        let leader = self.key_of(validators.leader(1));
        let leader_vote = Vote::sign(&self.chain.shared.domain, leader, VoteKind::Notarize, 1, Some(block.hash()));
        (block.clone(), Message::Proposal { block, leader_vote })
    }

    fn key_of(&self, a: Address) -> &Keypair {
        self.keys.iter().find(|k| Address(k.public()) == a).expect("a validator key")
    }

    /// A certificate of `kind` for `hash` in view 1, signed by a quorum.
    fn certificate(&self, kind: VoteKind, hash: Hash) -> Message {
        let domain = &self.chain.shared.domain;
        let votes: Vec<Vote> = self.keys[..3].iter().map(|k| Vote::sign(domain, k, kind, 1, Some(hash))).collect();
        Message::Certificate(Certificate::from_votes(&self.genesis.validator_set(), kind, 1, Some(hash), &votes))
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
