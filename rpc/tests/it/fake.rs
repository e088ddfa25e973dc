//! An in-memory backend: a short chain, accounts, a pool, transaction records, peers, consensus
//! progress and signed evidence, enough to exercise every method's happy path and the mapping of
//! every kind of backend answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use taksa_consensus::block::tx_root;
use taksa_consensus::event::block_events;
use taksa_consensus::governance::{Change, Governance, Passed, Validator};
use taksa_consensus::receipt::PaymentReceipt;
use taksa_consensus::state::{MemState, Receipt};
use taksa_consensus::tree;
use taksa_consensus::{
    Account, Address, Block, BlockEvent, Certificate, Cursor, Domain, Epochs, Event, Evidence, Hash, Header, Keypair,
    SignedTransaction, Transaction, TxError, ValidatorSet, Vote, VoteKind,
};
use taksa_rpc::{
    AccountInfo, AccountProof, Backend, BackendError, BlockId, BlockRecord, ChainInfo, ChainStats, ConsensusStatus,
    EventFilter, FeedItem, HealthInfo, HistoryEntry, HistoryFilter, HistoryOrder, HistoryPage, HistoryQuery, NodeInfo,
    NodeMetrics, NodeRole, PeerRecord, Readiness, SubmitError, SyncInfo, TxProof, TxRecord, TxStatus, ValidatorRecord,
};
use tokio::sync::broadcast;

/// The live feed's capacity in the fake.
pub(crate) const FEED_CAPACITY: usize = 64;

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
    Domain { chain_id: CHAIN_ID.to_owned(), genesis_hash: GENESIS_HASH, epoch: 0 }
}

pub(crate) fn validator_set() -> ValidatorSet {
    ValidatorSet::new(vec![addr(&validator())])
}

/// Heights per epoch of the fake chain.
pub(crate) const EPOCH_LENGTH: u64 = 1000;

/// The fake chain's governance entry: its one validator, whose vote passed an add at height 2.
pub(crate) fn governance() -> Governance {
    let mut g = Governance::genesis(vec![Validator { address: addr(&validator()), name: "validator-0".into() }]);
    g.passed.push(Passed {
        change: Change::Add { key: addr(&Keypair::from_seed(&[77; 32])), name: "newcomer".into() },
        height: 2,
    });
    g
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
        action: None,
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
    /// Events beyond the blocks' own, appended by tests with [`Fake::publish`].
    extra_events: Mutex<Vec<(Cursor, Event)>>,
    feed: broadcast::Sender<FeedItem>,
    dropped: Mutex<HashMap<Hash, TxStatus>>,
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
        evidence_root: taksa_consensus::block::evidence_root(&[]),
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
            blocks.push(Block { header, evidence: Vec::new(), txs });
        }
        let mut accounts = HashMap::new();
        accounts.insert(addr(&a), Account { balance: 1_000_000 - 100 + 5 - 7 - 3 * FEE_FLOOR, nonce: 3 });
        accounts.insert(addr(&b), Account { balance: 100 - 5 + 7 - FEE_FLOOR, nonce: 1 });
        // The head commits to the accounts for real, so that account proofs verify.
        if let Some(head) = blocks.last_mut() {
            head.header.state_root =
                MemState::new(accounts.iter().map(|(k, v)| (*k, *v)), Governance::default()).root();
        }
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
            extra_events: Mutex::new(Vec::new()),
            feed: broadcast::channel(FEED_CAPACITY).0,
            dropped: Mutex::new(HashMap::new()),
        }
    }

    /// Every stored event, in cursor order: the blocks' own (genesis yields none), then the
    /// published ones.
    pub(crate) fn all_events(&self) -> Vec<(Cursor, Event)> {
        let mut out: Vec<(Cursor, Event)> = Vec::new();
        for b in self.blocks.iter().skip(1) {
            out.extend(block_events(b, &vec![Receipt { from_balance: 1, to_balance: 2 }; b.txs.len()]));
        }
        out.extend(self.extra_events.lock().expect("events lock").iter().cloned());
        out
    }

    /// Stores `events` (which must follow every stored one) and announces them on the feed, as
    /// the node does after a commit.
    pub(crate) fn publish(&self, events: Vec<(Cursor, Event)>) {
        self.extra_events.lock().expect("events lock").extend(events.iter().cloned());
        // No receiver is fine: nobody is subscribed yet.
        let _ = self.feed.send(FeedItem::Committed(Arc::new(events)));
    }

    /// Sends `item` on the feed without storing anything (a replay, or a notarized head).
    pub(crate) fn announce(&self, item: FeedItem) {
        let _ = self.feed.send(item);
    }

    /// Drops a pooled transaction with `status`, as the node's pool does, and announces it.
    pub(crate) fn drop_tx(&self, hash: Hash, status: TxStatus) {
        self.pool.lock().expect("pool lock").remove(&hash);
        self.dropped.lock().expect("dropped lock").insert(hash, status.clone());
        let _ = self.feed.send(FeedItem::Dropped { hash, status });
    }

    /// The same chain on a full node without p2p (the dev chain's shape) that is catching up.
    pub(crate) fn syncing_full_node() -> Fake {
        let node = NodeInfo { peer_id: None, listen_addrs: vec![], role: NodeRole::Full, version: VERSION.to_owned() };
        let sync = SyncInfo { syncing: true, target_height: Some(40), blocks_per_second: Some(12.5) };
        Fake { node, peers: vec![], evidence: vec![], sync, ..Fake::new() }
    }

    /// The validator's finalization of the head.
    pub(crate) fn head_finalization(&self) -> Option<Certificate> {
        let head = self.blocks.last()?;
        let domain = Domain { chain_id: CHAIN_ID.to_owned(), genesis_hash: GENESIS_HASH, epoch: 0 };
        let (view, hash) = (head.header.view, head.hash());
        let vote = Vote::sign(&domain, &validator(), VoteKind::Finalize, view, Some(hash));
        let set = ValidatorSet::new(vec![addr(&validator())]);
        Some(Certificate::from_votes(&set, 0, VoteKind::Finalize, view, Some(hash), [&vote]))
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
        evidence_root: taksa_consensus::block::evidence_root(&[]),
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
            account_creation_fee: 100 * FEE_FLOOR,
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

    /// The fake's state cache holds the accounts whose key starts with an even byte; the server
    /// reads the others through [`Backend::account`] on its blocking pool.
    fn account_cached(&self, address: &Address) -> Option<AccountInfo> {
        address.as_bytes()[0].is_multiple_of(2).then(|| self.account(address))
    }

    fn account(&self, address: &Address) -> AccountInfo {
        let account = self.committed(address);
        let pending = self.pooled_from(address);
        AccountInfo { account, next_nonce: account.nonce + pending as u64, pending }
    }

    /// The fake proves its head only.
    fn account_proof(&self, address: &Address, height: Option<u64>) -> Result<AccountProof, BackendError> {
        let head = self.blocks.last().map_or(0, |b| b.header.height);
        if let Some(height) = height.filter(|h| *h != head) {
            return Err(BackendError::ProofUnavailable { height, oldest: head, head });
        }
        let state = MemState::new(self.accounts.iter().map(|(k, v)| (*k, *v)), Governance::default());
        let proof = tree::prove(&state, &tree::account_key(address))
            .map_err(|e| BackendError::Internal { message: e.to_string() })?;
        let header = self.blocks.last().map(|b| b.header.clone()).unwrap_or_else(dummy_parent);
        Ok(AccountProof { header, account: self.committed(address), proof, finalization: self.head_finalization() })
    }

    fn tx_proof(&self, hash: &Hash) -> Result<TxProof, BackendError> {
        let Some((height, index, block, tx)) = self.find(hash) else { return Ok(TxProof::NotFinal) };
        let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
        // Only the head carries a finalization here; the headers between lead to it.
        let later: Vec<Header> =
            self.blocks.iter().filter(|b| b.header.height > height).map(|b| b.header.clone()).collect();
        let cert = self.head_finalization().ok_or_else(|| BackendError::Internal { message: "no head".into() })?;
        let r = PaymentReceipt::new(&GENESIS_HASH, tx, &block.header, &hashes, index as usize, &later, &cert);
        Ok(TxProof::Receipt(Box::new(r)))
    }

    fn history(&self, address: &Address, query: &HistoryQuery) -> Result<HistoryPage, BackendError> {
        let mut all: Vec<HistoryEntry> = Vec::new();
        let newest_first = query.order == HistoryOrder::NewestFirst;
        let wanted = |sent: bool, received: bool| match query.filter {
            HistoryFilter::All => sent || received,
            HistoryFilter::Sent => sent,
            HistoryFilter::Received => received,
        };
        for b in self.blocks.iter() {
            for (i, t) in b.txs.iter().enumerate() {
                let (sent, received) = (t.tx.from == *address, t.tx.to == *address);
                let pos = (b.header.height, i as u32);
                let beyond = query.after.is_none_or(|c| if newest_first { pos < c } else { pos > c });
                if wanted(sent, received) && beyond {
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
        if newest_first {
            all.reverse();
        }
        let more = all.len() > query.limit;
        all.truncate(query.limit);
        let next = if more { all.last().map(|e| (e.height, e.index)) } else { None };
        let prev = if query.after.is_some() { all.first().map(|e| (e.height, e.index)) } else { None };
        Ok(HistoryPage { entries: all, next, prev })
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
        if let Some(status) = self.dropped.lock().expect("dropped lock").get(hash) {
            return Ok(Some(TxRecord { hash: *hash, tx: None, status: status.clone() }));
        }
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

    fn events(
        &self,
        after: Option<Cursor>,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<(Cursor, Event)>, BackendError> {
        Ok(self
            .all_events()
            .into_iter()
            .filter(|(c, _)| after.is_none_or(|a| *c > a))
            .filter(|(_, e)| match filter {
                EventFilter::All => true,
                EventFilter::Blocks => matches!(e, Event::Block(_)),
                EventFilter::Address(a) => e.touches(a),
            })
            .take(limit)
            .collect())
    }

    fn last_cursor(&self) -> Cursor {
        self.all_events().last().map(|(c, _)| *c).unwrap_or_default()
    }

    fn feed(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    fn block_summaries(&self, below_height: Option<u64>, limit: usize) -> Result<Vec<BlockEvent>, BackendError> {
        let mut out: Vec<BlockEvent> = self
            .all_events()
            .into_iter()
            .filter_map(|(_, e)| match e {
                Event::Block(b) if below_height.is_none_or(|h| b.height < h) => Some(b),
                _ => None,
            })
            .collect();
        out.reverse();
        out.truncate(limit);
        Ok(out)
    }

    fn stats(&self, window_blocks: usize) -> Result<ChainStats, BackendError> {
        let blocks: Vec<&Block> = self.blocks.iter().skip(1).rev().take(window_blocks).collect();
        let window_txs: u64 = blocks.iter().map(|b| b.txs.len() as u64).sum();
        let (newest, oldest) =
            (blocks.first().map(|b| b.header.timestamp_ms), blocks.last().map(|b| b.header.timestamp_ms));
        let span_ms = newest.zip(oldest).map_or(0, |(n, o)| n - o);
        let gaps = blocks.len().saturating_sub(1) as f64;
        Ok(ChainStats {
            window_blocks: blocks.len() as u64,
            window_txs,
            tps: if span_ms > 0 { window_txs as f64 * 1000.0 / span_ms as f64 } else { 0.0 },
            block_time_ms: if gaps > 0.0 { span_ms as f64 / gaps } else { 0.0 },
            finality_lag_ms: Some(150.0),
            head_height: self.blocks.len() as u64 - 1,
            finalized_height: self.blocks.len() as u64 - 1,
            total_txs: self.blocks.iter().map(|b| b.txs.len() as u64).sum(),
            total_accounts: self.accounts.len() as u64,
            validators: validator_set().len(),
            mempool_txs: self.pool.lock().expect("pool lock").len(),
        })
    }

    fn validators(&self) -> Vec<ValidatorRecord> {
        let proposer = addr(&validator());
        validator_set()
            .addresses()
            .iter()
            .enumerate()
            .map(|(i, a)| ValidatorRecord {
                name: format!("validator-{i}"),
                address: *a,
                signed: 3 - (i as u64 % 2),
                missed: i as u64 % 2,
                proposed: if *a == proposer { 3 } else { 0 },
                last_signed_height: Some(3),
                last_seen_ms: (i == 0).then_some(1_700_000_003_000),
            })
            .collect()
    }

    fn epochs(&self) -> Epochs {
        Epochs::new(EPOCH_LENGTH)
    }

    fn governance(&self) -> (u64, Arc<Governance>) {
        (self.blocks.len() as u64 - 1, Arc::new(governance()))
    }

    fn validator_set(&self, epoch: u64) -> Result<Option<Vec<Validator>>, BackendError> {
        let current = self.epochs().after(self.blocks.len() as u64 - 1);
        Ok((epoch <= current).then(|| governance().validators))
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            syncing: self.sync.syncing,
            peers: self.peers.len(),
            needs_peers: self.node.peer_id.is_some(),
            storage: Ok(()),
        }
    }

    fn metrics(&self) -> NodeMetrics {
        let health = self.health();
        NodeMetrics {
            head_height: health.head_height,
            finalized_height: health.finalized_height,
            txs_finalized_total: self.blocks.iter().map(|b| b.txs.len() as u64).sum(),
            mempool_txs: health.mempool_txs,
            mempool_bytes: health.mempool_bytes,
            peers: health.peers,
            consensus_view: VIEW,
            epoch: 0,
            validator_set_size: 1,
            consensus_timeouts_total: 2,
            validators: self.validators(),
            storage_bytes: 123_456,
            accounts: self.accounts.len() as u64,
            state_cache_accounts: self.accounts.len(),
            state_cache_nodes: 2 * self.accounts.len(),
            state_cache_bytes: 4096,
            syncing: self.sync.syncing,
        }
    }
}
