//! An in-memory backend: a short chain, accounts, a pool, transaction records, peers, consensus
//! progress and signed evidence, enough to exercise every method's happy path and the mapping of
//! every kind of backend answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use taksa_consensus::block::tx_root;
use taksa_consensus::{
    Account, Address, Block, Domain, Evidence, Hash, Header, Keypair, SignedTransaction, Transaction, TxError,
    ValidatorSet, Vote, VoteKind,
};
use taksa_rpc::{
    AccountInfo, Backend, BackendError, BlockId, BlockRecord, ChainInfo, ConsensusStatus, HealthInfo, HistoryEntry,
    HistoryPage, NodeInfo, NodeRole, PeerRecord, SubmitError, SyncInfo, TxRecord, TxStatus,
};

pub(crate) const CHAIN_ID: &str = "taksa-test";
pub(crate) const HRP: &str = "tks";
pub(crate) const FEE_FLOOR: u128 = 10;
pub(crate) const POOL_TXS_MAX: usize = 8;
pub(crate) const GENESIS_HASH: Hash = Hash([7; 32]);
/// A hash the backend reports as expired.
pub(crate) const EXPIRED_HASH: Hash = Hash([0xee; 32]);
/// The view consensus is in.
pub(crate) const VIEW: u64 = 12;
/// The version the node reports.
pub(crate) const VERSION: &str = "0.1.0-test";
pub(crate) const PEER_ID: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

pub(crate) fn alice() -> Keypair {
    Keypair::from_seed(&[1; 32])
}
pub(crate) fn bob() -> Keypair {
    Keypair::from_seed(&[2; 32])
}
pub(crate) fn validator() -> Keypair {
    Keypair::from_seed(&[9; 32])
}
pub(crate) fn addr(k: &Keypair) -> Address {
    Address::from_public_key(k.public())
}

pub(crate) fn domain() -> Domain {
    Domain { chain_id: CHAIN_ID.to_owned(), genesis_hash: GENESIS_HASH }
}

pub(crate) fn validator_set() -> ValidatorSet {
    ValidatorSet::new(vec![addr(&validator())])
}

/// Two votes the validator signed for one view that conflict, newest view first: two blocks
/// notarized in view 9, a nullify and a finalize in view 5, two blocks finalized in view 2.
pub(crate) fn evidence() -> Vec<Evidence> {
    let (d, k) = (domain(), validator());
    let pair = |view: u64, a: (VoteKind, Option<Hash>), b: (VoteKind, Option<Hash>)| Evidence {
        a: Vote::sign(&d, &k, a.0, view, a.1),
        b: Vote::sign(&d, &k, b.0, view, b.1),
    };
    vec![
        pair(9, (VoteKind::Notarize, Some(Hash([0xa1; 32]))), (VoteKind::Notarize, Some(Hash([0xa2; 32])))),
        pair(5, (VoteKind::Nullify, None), (VoteKind::Finalize, Some(Hash([0xb1; 32])))),
        pair(2, (VoteKind::Finalize, Some(Hash([0xc1; 32]))), (VoteKind::Finalize, Some(Hash([0xc2; 32])))),
    ]
}

pub(crate) fn peers() -> Vec<PeerRecord> {
    vec![
        PeerRecord {
            peer_id: "12D3KooWA".to_owned(),
            address: "/ip4/10.0.0.2/tcp/30333".to_owned(),
            inbound: false,
            score: 40,
            agent: Some("taksa/0.1.0".to_owned()),
            connected_ms: 61_000,
        },
        PeerRecord {
            peer_id: "12D3KooWB".to_owned(),
            address: "/ip4/10.0.0.3/tcp/51012".to_owned(),
            inbound: true,
            score: -25,
            agent: None,
            connected_ms: 1_500,
        },
    ]
}

pub(crate) fn transfer(
    from: &Keypair,
    to: &Keypair,
    amount: u128,
    nonce: u64,
    memo: Option<&str>,
) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID.to_owned(),
        from: addr(from),
        to: addr(to),
        amount,
        fee: FEE_FLOOR,
        nonce,
        valid_until_height: None,
        memo: memo.map(str::to_owned),
    }
    .sign(from, &GENESIS_HASH)
}

pub(crate) struct Fake {
    pub(crate) blocks: Vec<Block>,
    accounts: HashMap<Address, Account>,
    pool: Mutex<BTreeMap<Hash, SignedTransaction>>,
    node: NodeInfo,
    peers: Vec<PeerRecord>,
    evidence: Vec<Evidence>,
    sync: SyncInfo,
}

fn header(height: u64, parent: &Header, txs: &[SignedTransaction]) -> Header {
    Header {
        chain_id: CHAIN_ID.to_owned(),
        height,
        view: height,
        parent_hash: parent.hash(),
        proposer: addr(&validator()),
        timestamp_ms: 1_700_000_000_000 + height * 1000,
        tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
        state_root: Hash([height as u8; 32]),
        validator_set_hash: Hash([3; 32]),
        parent_cert: None,
    }
}

impl Fake {
    /// Genesis, then block 1 (alice→bob, nonce 0), block 2 (bob→alice nonce 0, alice→alice
    /// nonce 1), block 3 (alice→bob nonce 2).
    pub(crate) fn new() -> Fake {
        let (a, b) = (alice(), bob());
        let bodies = vec![
            vec![],
            vec![transfer(&a, &b, 100, 0, Some("rent"))],
            vec![transfer(&b, &a, 5, 0, None), transfer(&a, &a, 1, 1, None)],
            vec![transfer(&a, &b, 7, 2, None)],
        ];
        let mut blocks: Vec<Block> = Vec::new();
        for (height, txs) in bodies.into_iter().enumerate() {
            let parent = blocks.last().map_or_else(dummy_parent, |b| b.header.clone());
            let header = header(height as u64, &parent, &txs);
            blocks.push(Block { header, txs, evidence: vec![] });
        }
        let mut accounts = HashMap::new();
        accounts.insert(addr(&a), Account { balance: 1_000_000 - 100 + 5 - 7 - 3 * FEE_FLOOR, nonce: 3 });
        accounts.insert(addr(&b), Account { balance: 100 - 5 + 7 - FEE_FLOOR, nonce: 1 });
        let node = NodeInfo {
            peer_id: Some(PEER_ID.to_owned()),
            listen_addrs: vec![format!("/ip4/127.0.0.1/tcp/30333/p2p/{PEER_ID}")],
            role: NodeRole::Validator { address: addr(&validator()) },
            version: VERSION.to_owned(),
        };
        Fake {
            blocks,
            accounts,
            pool: Mutex::new(BTreeMap::new()),
            node,
            peers: peers(),
            evidence: evidence(),
            sync: SyncInfo::default(),
        }
    }

    /// The same chain on a full node without p2p (the dev chain's shape) that is catching up.
    pub(crate) fn syncing_full_node() -> Fake {
        let node = NodeInfo { peer_id: None, listen_addrs: vec![], role: NodeRole::Full, version: VERSION.to_owned() };
        let sync = SyncInfo { syncing: true, target_height: Some(40), blocks_per_second: Some(12.5) };
        Fake { node, peers: vec![], evidence: vec![], sync, ..Fake::new() }
    }

    fn committed(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    fn pooled_from(&self, address: &Address) -> usize {
        self.pool.lock().expect("pool lock").values().filter(|t| t.tx.from == *address).count()
    }

    fn find(&self, hash: &Hash) -> Option<(u64, u32, &Block, &SignedTransaction)> {
        self.blocks.iter().find_map(|b| {
            b.txs.iter().enumerate().find(|(_, t)| t.hash() == *hash).map(|(i, t)| (b.header.height, i as u32, b, t))
        })
    }
}

fn dummy_parent() -> Header {
    Header {
        chain_id: CHAIN_ID.to_owned(),
        height: 0,
        view: 0,
        parent_hash: Hash::ZERO,
        proposer: Address::default(),
        timestamp_ms: 0,
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
        parent_cert: None,
    }
}

impl Backend for Fake {
    fn chain_info(&self) -> ChainInfo {
        let head = self.blocks.last().map(|b| b.header.clone()).unwrap_or_else(dummy_parent);
        ChainInfo {
            chain_id: CHAIN_ID.to_owned(),
            genesis_hash: GENESIS_HASH,
            address_hrp: HRP.to_owned(),
            finalized: head.clone(),
            head,
            validators: vec![("v0".to_owned(), addr(&validator()))],
            block_time_ms: 1000,
            fee_floor: FEE_FLOOR,
            token_symbol: "TKS".to_owned(),
            token_decimals: 9,
            sync: self.sync,
        }
    }

    fn block(&self, id: BlockId) -> Result<Option<BlockRecord>, BackendError> {
        let found = self.blocks.iter().find(|b| match id {
            BlockId::Height(h) => b.header.height == h,
            BlockId::Hash(h) => b.hash() == h,
        });
        Ok(found.map(|b| BlockRecord { block: b.clone(), finalized: true }))
    }

    fn account(&self, address: &Address) -> AccountInfo {
        let account = self.committed(address);
        let pending = self.pooled_from(address);
        AccountInfo { account, next_nonce: account.nonce + pending as u64, pending }
    }

    fn history(
        &self,
        address: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<HistoryPage, BackendError> {
        let mut all: Vec<HistoryEntry> = Vec::new();
        for b in self.blocks.iter().rev() {
            for (i, t) in b.txs.iter().enumerate().rev() {
                let (sent, received) = (t.tx.from == *address, t.tx.to == *address);
                let pos = (b.header.height, i as u32);
                if (sent || received) && before.is_none_or(|cursor| pos < cursor) {
                    let (height, index) = pos;
                    let timestamp_ms = b.header.timestamp_ms;
                    all.push(HistoryEntry {
                        height,
                        index,
                        timestamp_ms,
                        tx: t.clone(),
                        hash: t.hash(),
                        sent,
                        received,
                    });
                }
            }
        }
        let more = all.len() > limit;
        all.truncate(limit);
        let next_before = if more { all.last().map(|e| (e.height, e.index)) } else { None };
        Ok(HistoryPage { entries: all, next_before })
    }

    fn submit(&self, tx: SignedTransaction) -> Result<Hash, SubmitError> {
        tx.check_stateless(CHAIN_ID, &GENESIS_HASH, FEE_FLOOR)?;
        let hash = tx.hash();
        if self.pool.lock().expect("pool lock").contains_key(&hash) || self.find(&hash).is_some() {
            return Ok(hash);
        }
        let expected = self.account(&tx.tx.from).next_nonce;
        if tx.tx.nonce < expected {
            return Err(TxError::NonceTooLow { expected, got: tx.tx.nonce }.into());
        }
        if tx.tx.nonce > expected {
            return Err(TxError::NonceGap { expected, got: tx.tx.nonce }.into());
        }
        let mut pool = self.pool.lock().expect("pool lock");
        if pool.len() >= POOL_TXS_MAX {
            return Err(SubmitError::PoolFull { txs_max: POOL_TXS_MAX });
        }
        pool.insert(hash, tx);
        Ok(hash)
    }

    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, BackendError> {
        if *hash == EXPIRED_HASH {
            let status = TxStatus::Expired {
                reason: "expired".to_owned(),
                message: "expired: valid until height 2, chain is at height 3".to_owned(),
            };
            return Ok(Some(TxRecord { hash: *hash, tx: None, status }));
        }
        if let Some(t) = self.pool.lock().expect("pool lock").get(hash) {
            return Ok(Some(TxRecord { hash: *hash, tx: Some(t.clone()), status: TxStatus::Pending }));
        }
        Ok(self.find(hash).map(|(height, index, b, t)| TxRecord {
            hash: *hash,
            tx: Some(t.clone()),
            status: TxStatus::Finalized { height, index, block_hash: b.hash(), timestamp_ms: b.header.timestamp_ms },
        }))
    }

    fn health(&self) -> HealthInfo {
        let pool = self.pool.lock().expect("pool lock");
        HealthInfo {
            head_height: self.blocks.len() as u64 - 1,
            finalized_height: self.blocks.len() as u64 - 1,
            mempool_txs: pool.len(),
            mempool_bytes: pool.values().map(|t| t.encode().len()).sum(),
            peers: self.peers.len(),
            syncing: self.sync.syncing,
        }
    }

    fn node_info(&self) -> NodeInfo {
        self.node.clone()
    }

    fn peers(&self) -> Vec<PeerRecord> {
        self.peers.clone()
    }

    fn consensus_status(&self) -> ConsensusStatus {
        let set = validator_set();
        let head = self.blocks.last().map(|b| b.header.clone()).unwrap_or_else(dummy_parent);
        ConsensusStatus {
            view: VIEW,
            leader: set.leader(VIEW),
            is_validator: matches!(self.node.role, NodeRole::Validator { .. }),
            finalized_height: head.height,
            finalized_view: head.view,
            finalized_hash: head.hash(),
            // Notarized in view 9, then views 10 and 11 timed out.
            notarized_view: VIEW - 3,
            failed_views: 2,
            evidence_count: self.evidence.len(),
            validators: set.len(),
            quorum: set.quorum(),
        }
    }

    fn evidence(&self, limit: usize) -> Vec<Evidence> {
        self.evidence.iter().take(limit).cloned().collect()
    }
}
