//! A deterministic chain for the tests: a genesis with funded keys and a builder that makes
//! valid child blocks with real signed transfers and the changes they produce.

use std::collections::BTreeMap;
use std::path::Path;

use taksa_consensus::block::tx_root;
use taksa_consensus::state::{next_tree, MemState, Outcome, Overlay, Receipt, Rules, StateReader};
use taksa_consensus::{
    Account, Address, Block, Certificate, Domain, Genesis, Header, Keypair, SignedTransaction, Transaction, Vote,
    VoteKind,
};
use taksa_storage::Store;

/// Balance of every funded test key.
pub(crate) const FUNDS: u128 = 1_000_000_000;
/// The fee every test transfer pays.
pub(crate) const FEE: u128 = 10;

/// A chain being built in memory, mirroring what a store should hold.
pub(crate) struct Chain {
    pub(crate) genesis: Genesis,
    pub(crate) keys: Vec<Keypair>,
    pub(crate) validator: Keypair,
    pub(crate) head: Header,
    pub(crate) state: MemState,
}

/// The genesis of chain `chain_id` with `n` funded keys (seeds 1..=n) and one validator.
pub(crate) fn genesis(chain_id: &str, n: u8) -> (Genesis, Vec<Keypair>, Keypair) {
    let keys: Vec<Keypair> = (1..=n).map(|i| Keypair::from_seed(&[i; 32])).collect();
    let validator = Keypair::from_seed(&[200; 32]);
    let mut allocations: Vec<(Address, u128)> = keys.iter().map(|k| (Address(k.public()), FUNDS)).collect();
    allocations.sort();
    let genesis = Genesis {
        chain_id: chain_id.to_owned(),
        address_hrp: "tks".to_owned(),
        genesis_time_ms: 1_700_000_000_000,
        block_time_ms: 1000,
        fee_floor: 1,
        epoch_length: 1_000_000,
        validators: vec![Address(validator.public())],
        validator_names: vec!["v0".to_owned()],
        allocations,
    };
    (genesis, keys, validator)
}

impl Chain {
    /// A chain at genesis with four funded keys.
    pub(crate) fn new() -> Chain {
        Chain::with_id("taksa-test")
    }

    /// A chain at genesis with chain id `chain_id`.
    pub(crate) fn with_id(chain_id: &str) -> Chain {
        let (genesis, keys, validator) = genesis(chain_id, 4);
        let head = genesis.header();
        let state = MemState::genesis(&genesis);
        Chain { genesis, keys, validator, head, state }
    }

    /// The address of key `i`.
    pub(crate) fn addr(&self, i: usize) -> Address {
        Address(self.keys[i].public())
    }

    /// Opens a store for this chain's genesis at `path`.
    pub(crate) fn open(&self, path: &Path) -> Store {
        Store::open(path, &self.genesis).expect("store opens")
    }

    /// A signed transfer of `amount` from key `from` to key `to` with the sender's next nonce.
    pub(crate) fn transfer(&self, from: usize, to: usize, amount: u128, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: self.genesis.chain_id.clone(),
            from: self.addr(from),
            to: self.addr(to),
            amount,
            fee: FEE,
            nonce,
            valid_until_height: None,
            memo: None,
            action: None,
        }
        .sign(&self.keys[from], &self.genesis.hash())
    }

    /// Builds the next block from `transfers` (from, to, amount) and advances the chain; returns
    /// the block and its execution outcome (changed accounts and receipts).
    pub(crate) fn next_block(&mut self, transfers: &[(usize, usize, u128)]) -> (Block, Outcome) {
        self.next_block_with(transfers, BTreeMap::new())
    }

    /// [`Chain::next_block`], with `extra` account changes beside the transfers' (a store does
    /// not re-execute blocks, so this is how a test makes many accounts in one block).
    pub(crate) fn next_block_with(
        &mut self,
        transfers: &[(usize, usize, u128)],
        extra: BTreeMap<Address, Account>,
    ) -> (Block, Outcome) {
        let height = self.head.height + 1;
        let proposer = Address(self.validator.public());
        // The account-creation fee is not under test here.
        let rules = Rules {
            chain_id: self.genesis.chain_id.clone(),
            genesis_hash: self.genesis.hash(),
            fee_floor: 0,
            epochs: self.genesis.epochs(),
        };
        let mut overlay = Overlay::new(&self.state, &rules);
        let mut txs = Vec::new();
        let mut receipts = Vec::new();
        for &(from, to, amount) in transfers {
            let nonce = overlay.account(&self.addr(from)).nonce;
            let stx = self.transfer(from, to, amount, nonce);
            overlay.apply(&stx, height, &proposer).expect("test transfer applies");
            receipts.push(Receipt {
                from_balance: overlay.account(&self.addr(from)).balance,
                to_balance: overlay.account(&self.addr(to)).balance,
            });
            txs.push(stx);
        }
        let (mut changes, governance) = overlay.into_changes();
        changes.extend(extra);
        let tree = next_tree(&self.state, &changes, governance.as_deref()).expect("the test state's tree is whole");
        let header = Header {
            chain_id: self.genesis.chain_id.clone(),
            height,
            view: height,
            parent_hash: self.head.hash(),
            proposer,
            timestamp_ms: self.genesis.genesis_time_ms + height * 1000,
            tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: tree.root,
            validator_set_hash: self.genesis.validator_set().hash(),
            parent_cert: None,
        };
        self.state.apply(&changes, governance.as_ref(), &tree.nodes);
        self.head = header.clone();
        let state_root = header.state_root;
        (
            Block { header, evidence: Vec::new(), txs },
            Outcome { changes, governance, state_root, tree: tree.nodes, receipts },
        )
    }

    /// Builds the next block and commits it to `store` with its finalization certificate.
    pub(crate) fn commit_next(&mut self, store: &Store, transfers: &[(usize, usize, u128)]) -> Block {
        let (block, outcome) = self.next_block(transfers);
        let cert = self.finalization(&block);
        store.commit_block(&block, Some(&cert), &outcome, &[]).expect("commit succeeds");
        block
    }

    /// The validator's finalization certificate for `block`.
    pub(crate) fn finalization(&self, block: &Block) -> Certificate {
        let domain = Domain { chain_id: self.genesis.chain_id.clone(), genesis_hash: self.genesis.hash(), epoch: 0 };
        let view = block.header.view;
        let vote = Vote::sign(&domain, &self.validator, VoteKind::Finalize, view, Some(block.hash()));
        Certificate::from_votes(&self.genesis.validator_set(), 0, VoteKind::Finalize, view, Some(block.hash()), [&vote])
    }

    /// The non-zero accounts the store should hold.
    pub(crate) fn expected_accounts(&self) -> BTreeMap<Address, Account> {
        self.state.accounts.iter().filter(|(_, a)| **a != Account::default()).map(|(k, v)| (*k, *v)).collect()
    }

    /// Asserts that `store` holds exactly this chain's head and accounts.
    pub(crate) fn assert_matches(&self, store: &Store) {
        assert_eq!(store.head(), self.head, "head header");
        assert_eq!(store.head_hash(), self.head.hash(), "head hash");
        let expected = self.expected_accounts();
        assert_eq!(store.account_count(), expected.len() as u64, "account count");
        for (addr, account) in &expected {
            assert_eq!(store.account(addr), *account, "account {addr:?}");
        }
    }
}
