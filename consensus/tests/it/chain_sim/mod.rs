//! The deterministic simulation of the chain layer: each node is the real chain core
//! ([`taksa_consensus::chain::ChainCore`], which owns the engine) with the real pool on a
//! [`store::FakeStore`], on an in-memory network with a virtual clock and one seeded RNG.
//! Wallets send signed transfers all along. Blocks missing on a node are fetched by hash from
//! peers; a node that is far behind catches up by height through the core's own sync (its
//! status and blocks requests answered from peers' stores), with hostile peers among them. Faults (drops, partitions, crashes that lose unsynced
//! writes) run for a while, then stop.
//!
//! Checked throughout: agreement at every height across nodes and restarts, certificates that
//! verify, no honest equivocation, every commit accepted by the store's own checks (it extends
//! the head, its state root matches, no transaction twice), every store passes the open check
//! after a crash, no honest peer is ever blamed by sync and no honest node halts, and the core's
//! bounds hold. After the faults: every honest node, the late joiner too, reaches the target
//! height.

pub(crate) mod store;

use std::cell::RefCell;
use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use taksa_consensus::block::{tx_root, BLOCK_TXS_MAX};
use taksa_consensus::chain::{serve, ChainCore, Config, Effect, Input, Peer, Request, Response};
use taksa_consensus::engine::{self, Message};
use taksa_consensus::governance::{rotation_bytes, Action, Change, Governance};
use taksa_consensus::pool::{Limits, Mempool};
use taksa_consensus::state::StateReader as _;
use taksa_consensus::vote::{Domain, VoteKind};
use taksa_consensus::{codec, Address, Block, Genesis, Hash, Keypair, Rules, Transaction, ValidatorSet, Vote};

use crate::sim::{keys, Checker, T0};
use store::FakeStore;

/// A run that needs more steps than this is stuck in a loop.
const STEPS_MAX: u64 = 2_000_000;
/// Funded wallets that send transfers.
const WALLETS: usize = 16;
/// How often a node tells its core which peers are connected (as the node's sync loop).
const PEERS_INTERVAL_MS: u64 = 1000;

/// A peer that lies to nodes that sync from it. It is not a validator; it knows the honest
/// chain (it reads an honest node's store) and bends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liar {
    /// Claims a far higher head, with a real certificate of another block.
    InflatedStatus,
    /// Tells the truth about its head, then serves nothing.
    Withholder,
    /// Tells the truth about its head, then serves the chain from height 1 whatever is asked.
    Replayer,
    /// Tells the truth about its head, then serves blocks with a changed state root.
    Poisoner,
    /// Tells the truth about its head, then serves valid-looking blocks of a branch it made.
    Forker,
}

impl Liar {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Liar::InflatedStatus => "inflated status",
            Liar::Withholder => "withholder",
            Liar::Replayer => "replayer",
            Liar::Poisoner => "poisoner",
            Liar::Forker => "forker",
        }
    }

    pub(crate) const ALL: [Liar; 5] =
        [Liar::InflatedStatus, Liar::Withholder, Liar::Replayer, Liar::Poisoner, Liar::Forker];
}

/// A change to the validator set that the honest validators vote for during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetChange {
    /// Add a validator whose node runs from the start as a full node with its key.
    Add,
    /// Remove a validator that crashed for good.
    Remove,
    /// Rotate a validator's key; its node restarts on the new key once the change is in force.
    Rotate,
}

/// One simulated run's setup.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    /// Validators.
    pub(crate) n: usize,
    /// A full node that starts this late (virtual ms), so it must catch up by sync.
    pub(crate) late_joiner_ms: Option<u64>,
    /// Hostile sync peers.
    pub(crate) liars: Vec<Liar>,
    /// A Byzantine validator that proposes blocks that do not execute (index).
    pub(crate) poisoning_leader: Option<usize>,
    /// Percent of messages dropped during the faults.
    pub(crate) drop_pct: u32,
    /// Partition episodes during the faults.
    pub(crate) partitions: u32,
    /// Crash-restart episodes of honest validators (half tear a step).
    pub(crate) crashes: u32,
    /// How long the faults last, virtual ms.
    pub(crate) fault_ms: u64,
    /// Finalizations every honest node must see after the faults stop, within `heal_ms_max`.
    pub(crate) finalizations_needed: u64,
    pub(crate) heal_ms_max: u64,
    /// Heights per epoch (each epoch's last block must be finalized, re-proposed if need be,
    /// before the next starts).
    pub(crate) epoch_length: u64,
    /// Changes to the validator set voted during the faults; each must be in force on every
    /// honest node before the run counts as live.
    pub(crate) changes: Vec<SetChange>,
}

impl Scenario {
    /// The epoch of the block at `height`.
    pub(crate) fn epoch_length_epoch(&self, height: u64) -> u64 {
        taksa_consensus::Epochs::new(self.epoch_length).of_height(height)
    }

    pub(crate) fn random(n: usize, rng: &mut ChaCha8Rng) -> Scenario {
        let multi = n > 1;
        Scenario {
            n,
            late_joiner_ms: None,
            liars: Vec::new(),
            poisoning_leader: None,
            drop_pct: if multi { *[0u32, 10, 25].choose(rng).unwrap_or(&0) } else { 0 },
            partitions: if multi { rng.gen_range(0..=2) } else { 0 },
            crashes: rng.gen_range(0..=2),
            fault_ms: rng.gen_range(3_000..=10_000),
            finalizations_needed: 10,
            heal_ms_max: 60_000,
            epoch_length: *[3u64, 5, 8, 20, 1_000_000].choose(rng).unwrap_or(&20),
            changes: Vec::new(),
        }
    }
}

/// What a successful run reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) trace_hash: [u8; 32],
    pub(crate) height: u64,
    pub(crate) steps: u64,
    pub(crate) txs_committed: usize,
    pub(crate) blamed_liars: usize,
    /// Epochs' last blocks committed under the finalization of a later view's re-proposal.
    pub(crate) reproposed: usize,
    /// Epochs started (by the first honest node to reach each).
    pub(crate) epochs: u64,
    /// Changes to the validator set in force at the end.
    pub(crate) changes_applied: usize,
    /// Penalties each kind of liar earned.
    pub(crate) caught: BTreeMap<&'static str, usize>,
    /// Invalid proposals the Byzantine leader sent, by kind.
    pub(crate) invalid_proposals: BTreeMap<&'static str, usize>,
    /// Evidence items in the committed chain (every one names the Byzantine leader).
    pub(crate) offences: usize,
}

enum Event {
    Consensus {
        to: usize,
        bytes: std::rc::Rc<Vec<u8>>,
    },
    Tx {
        to: usize,
        tx: taksa_consensus::SignedTransaction,
    },
    Wallet,
    Tick {
        node: usize,
        incarnation: u64,
        at: u64,
    },
    Fetched {
        to: usize,
        incarnation: u64,
        block: Block,
    },
    Peers {
        node: usize,
        incarnation: u64,
    },
    Answer {
        to: usize,
        incarnation: u64,
        id: u64,
        answer: Option<Response>,
    },
    Crash {
        node: usize,
        torn: bool,
    },
    Restart {
        node: usize,
    },
    /// The node crashes for good (a validator the others then vote out).
    Retire {
        node: usize,
    },
    /// Honest validators vote for the planned changes they have not voted for.
    Vote,
    Partition {
        groups: Vec<bool>,
    },
    Heal,
    FaultsEnd,
}

struct Node {
    cfg: Config,
    core: Option<ChainCore>,
    store: FakeStore,
    pool: RefCell<Mempool>,
    incarnation: u64,
    tick_at: Option<u64>,
    torn_next: bool,
    poisoner: bool,
    /// A node that has not started yet (the late joiner).
    dormant: bool,
}

struct Sim<'a> {
    sc: &'a Scenario,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    liars: Vec<Liar>,
    genesis: Genesis,
    wallets: Vec<Keypair>,
    checker: Checker,
    agreed: BTreeMap<u64, Hash>,
    trace: Sha256,
    faults_on: bool,
    groups: Option<Vec<bool>>,
    steps: u64,
    blamed_liars: usize,
    reproposed: std::collections::BTreeSet<u64>,
    /// The planned changes to the validator set.
    plan: Plan,
    /// Nodes crashed for good.
    retired: Vec<bool>,
    /// Each validator's last vote, sent again until it is committed.
    inflight: BTreeMap<Address, taksa_consensus::SignedTransaction>,
    caught: BTreeMap<&'static str, usize>,
    /// The Byzantine leader's invalid proposals: no honest node may vote for one.
    invalid_blocks: std::collections::HashSet<Hash>,
    invalid_proposals: BTreeMap<&'static str, usize>,
    failure: Option<String>,
}

/// The simulated chain's genesis: `n` validators and funded wallets.
pub(crate) fn genesis(validators: &[Keypair], wallets: &[Keypair], epoch_length: u64) -> Genesis {
    let mut allocations: Vec<(Address, u128)> = wallets.iter().map(|k| (Address(k.public()), 1_000_000_000)).collect();
    allocations.sort();
    Genesis {
        chain_id: "taksa-chain-sim".into(),
        address_hrp: "ts".into(),
        genesis_time_ms: T0,
        block_time_ms: 200,
        fee_floor: 1,
        epoch_length,
        validators: validators.iter().map(|k| Address(k.public())).collect(),
        validator_names: (0..validators.len()).map(|i| format!("v{i}")).collect(),
        allocations,
    }
}

pub(crate) fn config(genesis: &Genesis, key: Option<Keypair>) -> Config {
    let genesis_hash = genesis.hash();
    let engine = engine::Config {
        domain: Domain { chain_id: genesis.chain_id.clone(), genesis_hash, epoch: 0 },
        validators: genesis.validator_set(),
        epochs: genesis.epochs(),
        key,
        block_time_ms: genesis.block_time_ms,
        timeout_base_ms: 1000,
        timeout_max_ms: 8000,
        future_timestamp_ms_max: 2000,
        on_demand: false,
    };
    let rules = Rules {
        chain_id: genesis.chain_id.clone(),
        genesis_hash,
        fee_floor: genesis.fee_floor,
        epochs: genesis.epochs(),
    };
    Config { engine, rules, more_keys: Vec::new() }
}

/// Runs one seed; `Err` describes the first violated invariant.
pub(crate) fn run(seed: u64, sc: &Scenario) -> Result<Outcome, String> {
    let mut sim = Sim::new(seed, sc);
    let mut target: Option<(u64, u64)> = None;
    while let Some(((t, _), event)) = sim.queue.pop_first() {
        sim.now = t;
        if let Some((height, deadline)) = target {
            if t > deadline {
                return Err(format!(
                    "liveness: honest nodes reached heights {:?}, needed {height} within {} ms after the faults stopped \
                     ({} of {:?} set changes in force)",
                    sim.honest_heights(),
                    sc.heal_ms_max,
                    sim.changes_in_force(),
                    sc.changes
                ) + &if std::env::var_os("TAKSA_SIM_DEBUG").is_some() { sim.set_changes_state() } else { String::new() });
            }
        }
        if matches!(event, Event::FaultsEnd) {
            let top = sim.honest_heights().into_iter().max().unwrap_or(0);
            target = Some((top + sc.finalizations_needed, t + sc.heal_ms_max));
        }
        sim.handle(event);
        if let Some(f) = sim.failure.take() {
            return Err(format!("at {} ms: {f}", t - T0));
        }
        if sim.steps > STEPS_MAX {
            return Err(format!("more than {STEPS_MAX} steps"));
        }
        if let Some((height, _)) = target {
            let changed = sim.changes_in_force() == sc.changes.len();
            if changed && sim.honest_heights().into_iter().all(|h| h >= height) {
                let changes_applied = sim.changes_in_force();
                let offences = sim.check_offences()?;
                let txs_committed = sim.nodes[0].store.committed_txs();
                let height = sim.honest_heights().into_iter().min().unwrap_or(0);
                return Ok(Outcome {
                    trace_hash: sim.trace.finalize().into(),
                    height,
                    steps: sim.steps,
                    txs_committed,
                    blamed_liars: sim.blamed_liars,
                    reproposed: sim.reproposed.len(),
                    changes_applied,
                    epochs: sim.nodes.iter().map(|n| sc.epoch_length_epoch(n.store.head_height())).max().unwrap_or(0),
                    caught: sim.caught.clone(),
                    invalid_proposals: sim.invalid_proposals.clone(),
                    offences,
                });
            }
        }
    }
    Err("the event queue ran dry".into())
}

impl<'a> Sim<'a> {
    fn new(seed: u64, sc: &'a Scenario) -> Sim<'a> {
        let keys = keys(sc.n);
        let wallets: Vec<Keypair> =
            (0..WALLETS).map(|i| Keypair::from_seed(&Hash::of(&[b"sim/wallet", &i.to_le_bytes()]).0)).collect();
        let genesis = genesis(&keys, &wallets, sc.epoch_length);
        let mut nodes: Vec<Node> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Node::new(config(&genesis, Some(k.clone())), &genesis, sc.poisoning_leader == Some(i)))
            .collect();
        if sc.late_joiner_ms.is_some() {
            let mut full = Node::new(config(&genesis, None), &genesis, false);
            full.dormant = true;
            nodes.push(full);
        }
        // Keys no genesis names: a validator to add, a key to rotate to.
        let extra: Vec<Keypair> = crate::sim::keys(sc.n + 2).split_off(sc.n);
        let mut honest: std::collections::BTreeSet<Address> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| sc.poisoning_leader != Some(*i))
            .map(|(_, k)| Address(k.public()))
            .collect();
        honest.extend(extra.iter().map(|k| Address(k.public())));
        let mut plan_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5E7C_4A96);
        let plan = Plan::new(sc, &genesis, &keys, &extra, &mut plan_rng);
        if let Some((node, key)) = plan.add.as_ref().map(|(i, _)| (*i, extra[0].clone())) {
            debug_assert_eq!(node, nodes.len());
            nodes.push(Node::new(config(&genesis, Some(key)), &genesis, false));
        }
        let retired = vec![false; nodes.len()];
        let checker = Checker::new(config(&genesis, None).engine, honest);
        let mut sim = Sim {
            sc,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: T0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            liars: sc.liars.clone(),
            genesis,
            wallets,
            checker,
            agreed: BTreeMap::new(),
            trace: Sha256::new(),
            faults_on: true,
            groups: None,
            steps: 0,
            blamed_liars: 0,
            reproposed: std::collections::BTreeSet::new(),
            plan,
            retired,
            inflight: BTreeMap::new(),
            caught: BTreeMap::new(),
            invalid_blocks: std::collections::HashSet::new(),
            invalid_proposals: BTreeMap::new(),
            failure: None,
        };
        sim.schedule_start();
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    /// Peers are the nodes, then the liars.
    fn peers(&self) -> usize {
        self.nodes.len() + self.liars.len()
    }

    /// G7 against honest nodes is impossible: every evidence item any honest node committed
    /// names the Byzantine leader (whose signatures are the only conflicting ones). Returns how
    /// many items the longest honest chain holds.
    fn check_offences(&self) -> Result<usize, String> {
        let byzantine: Vec<Address> = self
            .nodes
            .iter()
            .filter(|n| n.poisoner)
            .filter_map(|n| n.cfg.engine.key.as_ref().map(|k| Address(k.public())))
            .collect();
        let mut most = 0;
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| !n.poisoner) {
            let offenders = n.store.committed_offenders();
            if let Some(honest) = offenders.iter().find(|a| !byzantine.contains(a)) {
                return Err(format!("node {i} committed evidence against {honest:?}, which never equivocated"));
            }
            most = most.max(offenders.len());
        }
        Ok(most)
    }

    fn honest_heights(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .zip(&self.retired)
            .filter(|(n, retired)| !n.poisoner && !**retired)
            .map(|(n, _)| n.store.head_height())
            .collect()
    }

    /// Where the planned set changes stand (for `TAKSA_SIM_DEBUG` failure reports): node 0's
    /// governance entry, each voter's last vote and committed nonce, node 0's own votes pooled.
    fn set_changes_state(&self) -> String {
        let me = self.nodes[0].cfg.engine.key.as_ref().map(|k| Address(k.public()));
        let own: Vec<_> = self.nodes[0]
            .pool
            .borrow()
            .candidates(1000, &self.nodes[0].store)
            .into_iter()
            .filter(|t| Some(t.tx.from) == me)
            .map(|t| (t.tx.nonce, t.tx.action))
            .collect();
        let votes: Vec<_> =
            self.inflight.iter().map(|(a, t)| (*a, t.tx.nonce, self.nodes[0].store.account(a).nonce)).collect();
        format!(
            "\nnode 0 governance: {:?}\nlast votes (voter, nonce, committed nonce): {votes:?}\nnode 0's own pooled: {own:?}",
            self.nodes[0].store.governance()
        )
    }

    /// How many planned changes are in force on every running honest node.
    fn changes_in_force(&self) -> usize {
        let live = |i: &usize| !self.nodes[*i].poisoner && !self.retired[*i];
        let nodes: Vec<usize> = (0..self.nodes.len()).filter(live).collect();
        self.plan
            .changes()
            .filter(|c| nodes.iter().all(|&i| self.plan.in_force(c, &self.nodes[i].store.governance())))
            .count()
    }

    /// Each running honest validator sends one vote for the first planned change it has not
    /// voted for yet (a lost vote is sent again next time: the same bytes while its nonce is
    /// free). A node whose key was rotated away restarts on the new key.
    fn vote(&mut self) {
        if let Some((node, _, new)) = &self.plan.rotate {
            let node = *node;
            let new_addr = Address(new.public());
            let on_old = self.nodes[node].cfg.engine.key.as_ref().is_some_and(|k| Address(k.public()) != new_addr);
            if on_old && self.nodes[node].core.is_some() && self.nodes[node].store.governance().is_validator(&new_addr)
            {
                self.nodes[node].cfg.engine.key = Some(new.clone());
                self.crash(node);
                self.start(node);
            }
        }
        for v in 0..self.nodes.len() {
            let n = &self.nodes[v];
            let Some(key) = n.cfg.engine.key.clone() else { continue };
            if n.poisoner || n.core.is_none() {
                continue;
            }
            let me = Address(key.public());
            let g = n.store.governance();
            if !g.is_validator(&me) {
                continue;
            }
            // Like `taksa validator`, one vote at a time: until the last one is committed (or
            // the pool forgot it), it is sent again as it was.
            let committed = n.store.account(&me).nonce;
            let wants = |c: &Change| {
                !self.plan.in_force(c, &g)
                    && !g.passed.iter().any(|p| p.change == *c)
                    && !g.pending.iter().any(|p| p.change == *c && p.voters.contains(&me))
            };
            // Sent again only while it can still be included: its nonce not used, and no gap
            // before it (an earlier vote refused at execution leaves one).
            let next = n.pool.borrow().next_nonce(&me, &n.store);
            let again = self.inflight.get(&me).filter(|tx| {
                let change = match &tx.tx.action {
                    Some(Action::Vote(c)) => Some(c),
                    _ => None,
                };
                (committed..=next).contains(&tx.tx.nonce) && change.is_some_and(wants)
            });
            if let Some(tx) = again.cloned() {
                self.send_tx(v, tx);
                continue;
            }
            let wanted = self.plan.changes().find(wants);
            let Some(change) = wanted else { continue };
            let nonce = n.pool.borrow().next_nonce(&me, &n.store);
            let tx = Transaction::vote(&self.genesis.chain_id, me, nonce, Action::Vote(change))
                .sign(&key, &self.genesis.hash());
            self.inflight.insert(me, tx.clone());
            self.send_tx(v, tx);
        }
    }

    /// A transaction enters node `via`'s pool and is gossiped to the peers it reaches.
    fn send_tx(&mut self, via: usize, tx: taksa_consensus::SignedTransaction) {
        self.admit(via, tx.clone());
        for peer in 0..self.nodes.len() {
            if peer != via && self.connected(via, peer) && !self.lost() {
                let at = self.now + self.latency();
                self.schedule(at, Event::Tx { to: peer, tx: tx.clone() });
            }
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        !(self.faults_on && self.groups.as_ref().is_some_and(|g| g.get(a) != g.get(b)))
    }

    fn latency(&mut self) -> u64 {
        self.rng.gen_range(10..=300)
    }

    fn lost(&mut self) -> bool {
        self.faults_on && self.rng.gen_range(0..100) < self.sc.drop_pct
    }

    fn schedule_start(&mut self) {
        let n = self.sc.n;
        for node in 0..n {
            let at = T0 + self.rng.gen_range(0..50);
            self.schedule(at, Event::Restart { node });
        }
        if let Some(late) = self.sc.late_joiner_ms {
            self.schedule(T0 + late, Event::Restart { node: n });
        }
        let fault_ms = self.sc.fault_ms;
        if let Some((node, _)) = self.plan.add {
            let at = T0 + self.rng.gen_range(0..50);
            self.schedule(at, Event::Restart { node });
        }
        if let Some((node, _)) = self.plan.remove {
            let at = self.rng.gen_range(100..fault_ms.max(101));
            self.schedule(T0 + at, Event::Retire { node });
        }
        if !self.sc.changes.is_empty() {
            let at = self.rng.gen_range(200..fault_ms.max(201));
            self.schedule(T0 + at, Event::Vote);
        }
        for _ in 0..self.sc.partitions {
            let start = self.rng.gen_range(0..fault_ms);
            let len = self.rng.gen_range(500..4_000);
            let groups: Vec<bool> = (0..self.peers()).map(|_| self.rng.gen_bool(0.5)).collect();
            self.schedule(T0 + start, Event::Partition { groups });
            self.schedule(T0 + (start + len).min(fault_ms), Event::Heal);
        }
        let honest: Vec<usize> = (0..n).filter(|&i| self.sc.poisoning_leader != Some(i)).collect();
        for _ in 0..self.sc.crashes {
            let Some(&node) = honest.choose(&mut self.rng) else { break };
            let at = self.rng.gen_range(100..fault_ms.max(101));
            let torn = self.rng.gen_bool(0.5);
            let down = self.rng.gen_range(200..3_000);
            self.schedule(T0 + at, Event::Crash { node, torn });
            self.schedule(T0 + at + down, Event::Restart { node });
        }
        self.schedule(T0 + 100, Event::Wallet);
        self.schedule(T0 + fault_ms, Event::FaultsEnd);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Consensus { to, bytes } => self.deliver(to, &bytes),
            Event::Tx { to, tx } => self.admit(to, tx),
            Event::Wallet => self.wallet(),
            Event::Tick { node, incarnation, at } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].tick_at == Some(at) {
                    self.nodes[node].tick_at = None;
                    self.step(node, Input::Tick);
                }
            }
            Event::Fetched { to, incarnation, block } => {
                if self.nodes[to].incarnation == incarnation {
                    self.step(to, Input::Fetched(block));
                }
            }
            Event::Peers { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation {
                    let peers = (0..self.peers())
                        .filter(|&p| p != node && self.connected(node, p) && self.is_up(p))
                        .map(|p| Peer(p as u64))
                        .collect();
                    self.step(node, Input::Peers(peers));
                    let at = self.now + PEERS_INTERVAL_MS;
                    self.schedule(at, Event::Peers { node, incarnation });
                }
            }
            Event::Answer { to, incarnation, id, answer } => {
                if self.nodes[to].incarnation == incarnation {
                    self.step(to, Input::Response { id, answer });
                }
            }
            Event::Crash { node, torn } => {
                if self.retired[node] {
                    return;
                }
                if torn {
                    self.nodes[node].torn_next = true;
                } else {
                    self.crash(node);
                }
            }
            Event::Retire { node } => {
                if self.nodes[node].core.is_some() {
                    self.crash(node);
                }
                self.retired[node] = true;
            }
            Event::Vote => {
                self.vote();
                let at = self.now + self.rng.gen_range(500..1500);
                self.schedule(at, Event::Vote);
            }
            Event::Restart { node } => {
                if self.retired[node] {
                    return;
                }
                if self.nodes[node].core.is_some() {
                    if !self.faults_on {
                        return;
                    }
                    self.crash(node);
                }
                self.start(node);
            }
            Event::Partition { groups } => self.groups = Some(groups),
            Event::Heal => self.groups = None,
            Event::FaultsEnd => {
                self.faults_on = false;
                self.groups = None;
                for node in 0..self.nodes.len() {
                    let late = self.sc.late_joiner_ms.is_some() && node == self.sc.n;
                    if late || self.retired[node] {
                        continue;
                    }
                    self.nodes[node].torn_next = false;
                    if self.nodes[node].core.is_none() {
                        self.start(node);
                    }
                }
            }
        }
    }
}

impl Node {
    fn new(cfg: Config, genesis: &Genesis, poisoner: bool) -> Node {
        Node {
            cfg,
            core: None,
            store: FakeStore::new(genesis),
            pool: RefCell::new(Mempool::new(Limits::default())),
            incarnation: 0,
            tick_at: None,
            torn_next: false,
            poisoner,
            dormant: false,
        }
    }
}

impl Sim<'_> {
    /// The node loses its memory (the pool too) and its unsynced writes.
    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.core = None;
        n.torn_next = false;
        n.incarnation += 1;
        n.tick_at = None;
        n.store.crash();
        n.pool = RefCell::new(Mempool::new(Limits::default()));
        if let Err(e) = n.store.check_open() {
            self.fail(format!("node {node} would not open after a crash: {e}"));
        }
    }

    fn start(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.dormant = false;
        let core = ChainCore::new(n.cfg.clone(), &n.store, n.store.record.clone(), n.store.pending_blocks());
        n.core = Some(core);
        let incarnation = n.incarnation;
        self.step(node, Input::Start);
        let at = self.now + self.rng.gen_range(0..PEERS_INTERVAL_MS);
        self.schedule(at, Event::Peers { node, incarnation });
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.now;
        let n = &mut self.nodes[node];
        let Some(core) = n.core.as_mut() else { return };
        let effects = core.step(&n.store, &n.pool, input, now);
        let (seen, pending, fetching, staged) = core.held();
        let deadline = core.next_deadline_ms();
        self.steps += 1;
        self.trace.update(now.to_le_bytes());
        self.trace.update((node as u64).to_le_bytes());
        if seen > 512 || fetching > 64 || staged > 129 || pending > 4096 {
            self.fail(format!(
                "node {node}: bounds broken: seen {seen}, pending {pending}, fetching {fetching}, staged {staged}"
            ));
        }
        let torn = self.nodes[node].torn_next;
        let keep = if torn { self.rng.gen_range(0..=effects.len()) } else { effects.len() };
        for effect in effects.into_iter().take(keep) {
            self.execute(node, effect);
        }
        if torn {
            self.crash(node);
            return;
        }
        if let Some(at) = deadline {
            let n = &mut self.nodes[node];
            if n.tick_at.is_none_or(|t| at < t) {
                n.tick_at = Some(at);
                let incarnation = n.incarnation;
                self.schedule(at.max(now), Event::Tick { node, incarnation, at });
            }
        }
    }

    fn execute(&mut self, node: usize, effect: Effect) {
        let honest = !self.nodes[node].poisoner;
        match effect {
            Effect::Persist(record) => {
                self.trace.update([2]);
                self.trace.update(codec::encode(&record));
                self.nodes[node].store.put_record(record);
            }
            Effect::StorePending(block) => self.nodes[node].store.put_pending(block),
            Effect::Commit(batch) => {
                let h = &batch.block.header;
                let hash = batch.block.hash();
                self.trace.update([6]);
                self.trace.update(hash.0);
                if let Some(fin) = &batch.finalization {
                    if let Err(e) = self.checker.finalized(fin, hash) {
                        return self.fail(format!("node {node} committed under a bad finalization: {e}"));
                    }
                    if fin.view > h.view {
                        if !self.genesis.epochs().is_last(h.height) {
                            return self.fail(format!(
                                "node {node} committed block {hash} at {} finalized in view {} above its own {}",
                                h.height, fin.view, h.view
                            ));
                        }
                        self.reproposed.insert(h.height);
                    }
                }
                let first = *self.agreed.entry(h.height).or_insert(hash);
                if first != hash {
                    return self.fail(format!("AGREEMENT VIOLATED at height {}: {first} and {hash}", h.height));
                }
                if let Err(e) = self.nodes[node].store.commit(&batch) {
                    self.fail(format!("node {node}: the store refused a commit: {e}"));
                }
            }
            Effect::Broadcast(msg) => {
                let msg = *msg;
                self.trace.update([3]);
                self.trace.update(msg.encode());
                if honest {
                    if let Err(e) = self.checker.sent_by_honest(&msg) {
                        return self.fail(format!("node {node}: {e}"));
                    }
                    if let Message::Vote(v) = &msg {
                        if v.block_hash.is_some_and(|h| self.invalid_blocks.contains(&h)) {
                            return self.fail(format!("honest node {node} voted {:?} for an invalid proposal", v.kind));
                        }
                    }
                    self.broadcast(node, &msg);
                } else {
                    // Half its proposals it also sends as built: two leader votes for two blocks
                    // in one view, which every honest node must record as evidence (G7).
                    if matches!(msg, Message::Proposal { .. }) && self.rng.gen_bool(0.5) {
                        *self.invalid_proposals.entry("equivocation").or_insert(0) += 1;
                        self.broadcast(node, &msg);
                    }
                    let poisoned = self.poison(node, msg);
                    self.broadcast(node, &poisoned);
                }
            }
            Effect::Fetch(hash) => self.fetch(node, hash),
            Effect::Dropped(items) => self.nodes[node].store.put_dropped(&items),
            Effect::Notarized(_) | Effect::Invalid { .. } => {}
            Effect::Evidence(e) => {
                if let Err(why) = self.checker.evidence(&e) {
                    self.fail(format!("node {node} evidence: {why}"));
                }
            }
            Effect::Request { peer, id, request } => self.answer(node, peer, id, &request),
            Effect::Penalize { peer, penalty, detail } => {
                self.blame(node, usize::try_from(peer.0).unwrap_or(usize::MAX), &format!("{penalty:?} {detail}"));
            }
            Effect::SyncStopped { .. } => {}
            Effect::EpochStarted { epoch, validators } => {
                if honest {
                    if let Err(e) = self.checker.learn_epoch(epoch, ValidatorSet::clone(&validators)) {
                        self.fail(format!("node {node}: {e}"));
                    }
                }
            }
            Effect::Halt(why) => {
                if honest {
                    self.fail(format!("honest node {node} halted: {why}"));
                }
            }
        }
    }

    /// A Byzantine leader's proposals, with a valid leader vote, carry a state root that no
    /// execution gives, or (one in four) more transactions than a block may hold: every honest
    /// node must refuse to vote for them.
    fn poison(&mut self, node: usize, msg: Message) -> Message {
        let Message::Proposal { mut block, leader_vote } = msg else { return msg };
        let Some(key) = self.nodes[node].cfg.engine.key.clone() else {
            return Message::Proposal { block, leader_vote };
        };
        let kind = if self.rng.gen_bool(0.25) {
            // Copies of one signed transfer: the count alone breaks the block's shape.
            let filler = Transaction {
                chain_id: self.genesis.chain_id.clone(),
                from: Address(self.wallets[0].public()),
                to: Address(self.wallets[1].public()),
                amount: 1,
                fee: 1,
                nonce: 0,
                valid_until_height: None,
                memo: None,
                action: None,
            }
            .sign(&self.wallets[0], &self.genesis.hash());
            block.txs = vec![filler; BLOCK_TXS_MAX + 1];
            "oversize"
        } else {
            block.header.state_root = Hash::of(&[b"poison", &block.header.state_root.0]);
            "bad state root"
        };
        *self.invalid_proposals.entry(kind).or_insert(0) += 1;
        block.header.tx_root = tx_root(&block.txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
        self.invalid_blocks.insert(block.hash());
        let domain = &self.nodes[node].cfg.engine.domain;
        let leader_vote = Vote::sign(domain, &key, VoteKind::Notarize, leader_vote.view, Some(block.hash()));
        Message::Proposal { block, leader_vote }
    }

    fn broadcast(&mut self, from: usize, msg: &Message) {
        let bytes = std::rc::Rc::new(msg.encode());
        for to in 0..self.nodes.len() {
            if to == from || !self.connected(from, to) || self.lost() {
                continue;
            }
            let at = self.now + self.latency();
            self.schedule(at, Event::Consensus { to, bytes: std::rc::Rc::clone(&bytes) });
        }
    }

    /// The bytes decode with the node's limits, then go to the core. (The node's gossip also
    /// runs `Message::verify` first, to spare the chain thread; the engine checks the same
    /// signatures again, so the simulation leaves the first pass out: it halves the
    /// signature work.)
    fn deliver(&mut self, to: usize, bytes: &[u8]) {
        if self.nodes[to].core.is_none() {
            return;
        }
        let Ok(msg) = Message::decode(bytes) else { return };
        self.step(to, Input::Consensus(msg));
    }

    /// Asks one random connected peer that has the block; the answer may be lost.
    fn fetch(&mut self, node: usize, hash: Hash) {
        let mut holders: Vec<usize> = (0..self.nodes.len())
            .filter(|&p| p != node && self.nodes[p].core.is_some() && self.connected(node, p))
            .collect();
        holders.shuffle(&mut self.rng);
        let Some(&peer) = holders.first() else { return };
        let Some(Response::Block(Some(mut block))) = self.answer_of(peer, Request::Block { hash }) else { return };
        if self.nodes[peer].poisoner {
            // A wrong answer to a fetch: the core keeps only what it asked for by hash.
            block.header.timestamp_ms += 1;
        }
        if self.lost() {
            return;
        }
        let at = self.now + self.latency();
        let incarnation = self.nodes[node].incarnation;
        self.schedule(at, Event::Fetched { to: node, incarnation, block });
    }

    /// A wallet sends a transfer through one node (which gossips it to the others). Sometimes
    /// it sends the same bytes again, or a nonce already used.
    fn wallet(&mut self) {
        let at = self.now + self.rng.gen_range(50..250);
        self.schedule(at, Event::Wallet);
        let live: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].core.is_some()).collect();
        let Some(&via) = live.choose(&mut self.rng) else { return };
        let from = self.rng.gen_range(0..WALLETS);
        let to = self.rng.gen_range(0..WALLETS);
        let key = self.wallets[from].clone();
        let sender = Address(key.public());
        let next = self.nodes[via].pool.borrow().next_nonce(&sender, &self.nodes[via].store);
        let nonce = if self.rng.gen_bool(0.05) { next.saturating_sub(1) } else { next };
        let tx = Transaction {
            chain_id: self.genesis.chain_id.clone(),
            from: sender,
            to: Address(self.wallets[to].public()),
            amount: self.rng.gen_range(1..1000),
            fee: self.rng.gen_range(1..5),
            nonce,
            valid_until_height: self.rng.gen_bool(0.1).then(|| self.nodes[via].store.head_height() + 3),
            memo: None,
            action: None,
        }
        .sign(&key, &self.genesis.hash());
        let copies = if self.rng.gen_bool(0.05) { 2 } else { 1 };
        for _ in 0..copies {
            self.admit(via, tx.clone());
            for peer in 0..self.nodes.len() {
                if peer != via && self.connected(via, peer) && !self.lost() {
                    let at = self.now + self.latency();
                    self.schedule(at, Event::Tx { to: peer, tx: tx.clone() });
                }
            }
        }
    }

    /// The node's admission path: stateless checks, then the pool on the committed state.
    fn admit(&mut self, node: usize, tx: taksa_consensus::SignedTransaction) {
        let n = &self.nodes[node];
        if n.core.is_none() {
            return;
        }
        let rules = &n.cfg.rules;
        if tx.check_stateless(&rules.chain_id, &rules.genesis_hash, rules.fee_floor).is_err() {
            return;
        }
        let (hash, bytes) = (tx.hash(), tx.encode().len());
        let next_height = n.store.head_height() + 1;
        let _ = n.pool.borrow_mut().admit(tx, hash, bytes, &n.store, next_height);
    }
}

impl Sim<'_> {
    /// The honest node furthest ahead: what liars read the true chain from.
    fn oracle(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].poisoner)
            .max_by_key(|&i| self.nodes[i].store.head_height())
            .unwrap_or(0)
    }

    /// What `peer` answers to `request`: an honest node serves its store with the node's own
    /// code (`chain::serve`); a liar bends the truth as it read it from the oracle. `None` when
    /// it does not answer.
    fn answer_of(&self, peer: usize, request: Request) -> Option<Response> {
        let served = |store: &FakeStore, request: Request| match serve(store, request, usize::MAX) {
            Ok(answer) => answer,
            Err(never) => match never {},
        };
        if let Some(n) = self.nodes.get(peer) {
            return n.core.as_ref().and_then(|_| served(&n.store, request));
        }
        let oracle = &self.nodes[self.oracle()].store;
        let liar = self.liars[peer - self.nodes.len()];
        let request = match (liar, request) {
            (Liar::Replayer, Request::Blocks { count, .. }) => Request::Blocks { from_height: 1, count },
            (Liar::Forker, Request::Blocks { from_height, .. }) => Request::Blocks { from_height, count: 1 },
            (_, request) => request,
        };
        let mut answer = served(oracle, request)?;
        match (liar, &mut answer) {
            (Liar::InflatedStatus, Response::Status { head, .. }) => head.height += 1000,
            (Liar::Withholder, Response::Blocks(blocks)) => blocks.clear(),
            (Liar::Poisoner, Response::Blocks(blocks)) => {
                if let Some(first) = blocks.first_mut() {
                    first.block.header.state_root = Hash::of(&[b"poison", &first.block.header.state_root.0]);
                }
            }
            (Liar::Forker, Response::Blocks(blocks)) => {
                // One block of its own on our head: valid-looking, final nowhere.
                for b in blocks {
                    b.block.header.timestamp_ms += 1;
                    b.finalization = None;
                }
            }
            _ => {}
        }
        Some(answer)
    }

    fn honest_peer(&self, peer: usize) -> bool {
        peer < self.nodes.len() && !self.nodes[peer].poisoner
    }

    /// The core penalised `peer`: only a liar may be.
    fn blame(&mut self, node: usize, peer: usize, why: &str) {
        if self.honest_peer(peer) {
            return self.fail(format!("HONEST PEER BLAMED: node {node} penalised peer {peer}: {why}"));
        }
        self.blamed_liars += 1;
        if let Some(liar) = peer.checked_sub(self.nodes.len()).and_then(|k| self.liars.get(k)) {
            *self.caught.entry(liar.name()).or_insert(0) += 1;
        }
    }

    fn is_up(&self, peer: usize) -> bool {
        peer >= self.nodes.len() || self.nodes[peer].core.is_some()
    }

    /// `peer` answers a sync request, after a while; the answer may be lost or withheld, and
    /// then the core's deadline for it passes.
    fn answer(&mut self, node: usize, peer: Peer, id: u64, request: &Request) {
        let peer = usize::try_from(peer.0).unwrap_or(usize::MAX);
        if peer >= self.peers() || !self.connected(node, peer) || self.lost() {
            return;
        }
        let answer = self.answer_of(peer, request.clone());
        let Some(answer) = answer else { return };
        let at = self.now + self.latency();
        let incarnation = self.nodes[node].incarnation;
        self.schedule(at, Event::Answer { to: node, incarnation, id, answer: Some(answer) });
    }
}

/// The changes to the validator set a run votes for, with who they concern.
struct Plan {
    /// The node (running from the start as a full node with the key) and the change.
    add: Option<(usize, Change)>,
    /// The validator's node (crashed for good during the faults) and the change.
    remove: Option<(usize, Change)>,
    /// The validator's node, the change, and the new key its node moves to once it is in force.
    rotate: Option<(usize, Change, Keypair)>,
}

impl Plan {
    fn new(sc: &Scenario, genesis: &Genesis, keys: &[Keypair], extra: &[Keypair], rng: &mut ChaCha8Rng) -> Plan {
        let mut honest: Vec<usize> = (0..sc.n).filter(|i| sc.poisoning_leader != Some(*i)).collect();
        honest.shuffle(rng);
        let mut plan = Plan { add: None, remove: None, rotate: None };
        let first_free = sc.n + usize::from(sc.late_joiner_ms.is_some());
        for change in &sc.changes {
            match change {
                SetChange::Add => {
                    let key = Address(extra[0].public());
                    plan.add = Some((first_free, Change::Add { key, name: "newcomer".into() }));
                }
                SetChange::Remove => {
                    if let Some(i) = honest.pop() {
                        plan.remove = Some((i, Change::Remove { key: Address(keys[i].public()) }));
                    }
                }
                SetChange::Rotate => {
                    if let Some(i) = honest.pop() {
                        let old = Address(keys[i].public());
                        let new = extra[1].clone();
                        let proof = new.sign(&rotation_bytes(&genesis.hash(), &old));
                        plan.rotate = Some((i, Change::Rotate { old, new: Address(new.public()), proof }, new));
                    }
                }
            }
        }
        plan
    }

    fn changes(&self) -> impl Iterator<Item = Change> + '_ {
        let add = self.add.iter().map(|(_, c)| c.clone());
        let remove = self.remove.iter().map(|(_, c)| c.clone());
        add.chain(remove).chain(self.rotate.iter().map(|(_, c, _)| c.clone()))
    }

    /// Whether `change` is in the set `g` holds.
    fn in_force(&self, change: &Change, g: &Governance) -> bool {
        match change {
            Change::Add { key, .. } => g.is_validator(key),
            Change::Remove { key } => !g.is_validator(key),
            Change::Rotate { old, new, .. } => g.is_validator(new) && !g.is_validator(old),
        }
    }
}
