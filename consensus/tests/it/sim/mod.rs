//! A deterministic simulation: N engines on an in-memory network with a virtual clock and one
//! seeded RNG. Faults (drops, latency, reordering, duplicates, partitions, crash-restart that
//! loses unpersisted effects) run for a while, then stop; the checker asserts agreement, valid
//! certificates and no honest equivocation throughout, and liveness afterwards. Every executed
//! effect goes into a trace hash, so one seed replays to one hash.

pub(crate) mod app;
mod byzantine;
pub(crate) mod check;

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use taksa_consensus::engine::{Config, Effect, Engine, Input, Message, SafetyRecord, Tip};
use taksa_consensus::vote::Domain;
use taksa_consensus::{codec, Address, Block, Hash, Keypair, ValidatorSet};

pub(crate) use byzantine::Byzantine;
pub(crate) use check::Checker;

/// The virtual clock's origin (a realistic Unix time in milliseconds).
pub(crate) const T0: u64 = 1_700_000_000_000;
/// The simulated chain's genesis hash.
pub(crate) const GENESIS_HASH: Hash = Hash([0x6E; 32]);
/// The simulated chain id.
pub(crate) const CHAIN_ID: &str = "taksa-sim";
/// A run that needs more steps than this is stuck in a loop.
const STEPS_MAX: u64 = 3_000_000;

/// The faults of the fault phase.
#[derive(Clone, Debug)]
pub(crate) struct Faults {
    /// Percent of messages dropped.
    pub(crate) drop_pct: u32,
    /// Percent of messages delivered twice.
    pub(crate) duplicate_pct: u32,
    /// Partition episodes (random two-way splits of 0.5 to 5 s).
    pub(crate) partitions: u32,
    /// Crash-restart episodes of honest nodes; half of them tear a step (effects after a random
    /// point are lost, as unsynced writes would be).
    pub(crate) crashes: u32,
}

/// One simulated run's setup.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) n: usize,
    pub(crate) faults: Faults,
    /// Message latency range, milliseconds, throughout the run (reordering follows from it).
    pub(crate) latency_ms: (u64, u64),
    /// How long the faults last, virtual milliseconds.
    pub(crate) fault_ms: u64,
    /// Byzantine nodes: index and behaviour.
    pub(crate) byzantine: Vec<(usize, Byzantine)>,
    /// Finalizations every honest node must see after the faults stop...
    pub(crate) finalizations_needed: u64,
    /// ...within this many virtual milliseconds.
    pub(crate) heal_ms_max: u64,
}

impl Scenario {
    /// A scenario with random faults drawn from `rng`.
    pub(crate) fn random(n: usize, rng: &mut ChaCha8Rng) -> Scenario {
        let multi = n > 1;
        let faults = Faults {
            drop_pct: if multi { *[0u32, 10, 25, 50].choose(rng).unwrap_or(&0) } else { 0 },
            duplicate_pct: if multi { rng.gen_range(0..=20) } else { 0 },
            partitions: if multi { rng.gen_range(0..=2) } else { 0 },
            crashes: rng.gen_range(0..=3),
        };
        Scenario {
            n,
            faults,
            latency_ms: (10, 500),
            fault_ms: rng.gen_range(3_000..=15_000),
            byzantine: Vec::new(),
            finalizations_needed: 20,
            heal_ms_max: 60_000,
        }
    }

    fn is_byzantine(&self, i: usize) -> Option<Byzantine> {
        self.byzantine.iter().find(|(j, _)| *j == i).map(|(_, b)| *b)
    }
}

/// What a successful run reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// SHA-256 over every step's time, node and executed effects.
    pub(crate) trace_hash: [u8; 32],
    /// The lowest finalized height among honest nodes at the end.
    pub(crate) height: u64,
    /// Engine steps run.
    pub(crate) steps: u64,
    /// Virtual milliseconds from the end of the faults to the last needed finalization.
    pub(crate) heal_ms: u64,
    /// Evidence items each node emitted.
    pub(crate) evidence: Vec<usize>,
}

enum Event {
    Deliver { to: usize, bytes: Rc<Vec<u8>> },
    Timer { node: usize, incarnation: u64, view: u64 },
    App { node: usize, incarnation: u64, input: Box<Input> },
    Crash { node: usize, torn: bool },
    Restart { node: usize },
    Partition { groups: Vec<bool> },
    Heal,
    FaultsEnd,
}

struct Node {
    cfg: Config,
    engine: Option<Engine>,
    incarnation: u64,
    /// The durable state: the last persisted record and the committed tip.
    record: Option<SafetyRecord>,
    tip: Tip,
    torn_next: bool,
    byzantine: Option<Byzantine>,
    /// Messages received, for the replaying mock (bounded).
    heard: Vec<Rc<Vec<u8>>>,
    evidence: usize,
}

struct Sim<'a> {
    sc: &'a Scenario,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    /// Every block anyone built: stands in for block sync.
    blocks: BTreeMap<Hash, Block>,
    checker: Checker,
    trace: Sha256,
    faults_on: bool,
    groups: Option<Vec<bool>>,
    steps: u64,
    failure: Option<String>,
    /// `TAKSA_SIM_DEBUG` set: print every step (for replaying one seed).
    debug: bool,
}

/// The validators' keys: deterministic, distinct per index.
pub(crate) fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed(&Hash::of(&[b"sim/key", &i.to_le_bytes()]).0)).collect()
}

/// The engine configuration of validator `i` of `keys`.
pub(crate) fn config(keys: &[Keypair], i: usize) -> Config {
    Config {
        domain: Domain { chain_id: CHAIN_ID.into(), genesis_hash: GENESIS_HASH, epoch: 0 },
        validators: ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect()),
        epochs: taksa_consensus::Epochs::new(u64::MAX),
        key: keys.get(i).cloned(),
        block_time_ms: 200,
        timeout_base_ms: 1000,
        timeout_max_ms: 8000,
        future_timestamp_ms_max: 2000,
        on_demand: false,
    }
}

/// Runs one seed; `Err` describes the first violated invariant.
pub(crate) fn run(seed: u64, sc: &Scenario) -> Result<Outcome, String> {
    let mut sim = Sim::new(seed, sc);
    let mut target: Option<(u64, u64)> = None;
    let mut faults_end = T0;
    while let Some(((t, _), event)) = sim.queue.pop_first() {
        sim.now = t;
        if let Some((height, deadline)) = target {
            if t > deadline {
                return Err(format!(
                    "liveness: honest nodes reached heights {:?}, needed {height} within {} ms after the faults stopped",
                    sim.honest_heights(),
                    sc.heal_ms_max
                ));
            }
        }
        if matches!(event, Event::FaultsEnd) {
            let top = sim.honest_heights().into_iter().max().unwrap_or(0);
            target = Some((top + sc.finalizations_needed, t + sc.heal_ms_max));
            faults_end = t;
        }
        sim.handle(event);
        if let Some(f) = sim.failure.take() {
            return Err(format!("at {} ms: {f}", t - T0));
        }
        if sim.steps > STEPS_MAX {
            return Err(format!("more than {STEPS_MAX} steps"));
        }
        if let Some((height, _)) = target {
            if sim.honest_heights().into_iter().all(|h| h >= height) {
                sim.check_end()?;
                let height = sim.honest_heights().into_iter().min().unwrap_or(0);
                return Ok(Outcome {
                    trace_hash: sim.trace.finalize().into(),
                    height,
                    steps: sim.steps,
                    heal_ms: t - faults_end,
                    evidence: sim.nodes.iter().map(|n| n.evidence).collect(),
                });
            }
        }
    }
    Err("the event queue ran dry".into())
}

impl<'a> Sim<'a> {
    fn new(seed: u64, sc: &'a Scenario) -> Sim<'a> {
        let keys = keys(sc.n);
        let genesis = Tip { height: 0, view: 0, hash: GENESIS_HASH, timestamp_ms: T0 };
        let nodes = (0..sc.n)
            .map(|i| Node {
                cfg: config(&keys, i),
                engine: None,
                incarnation: 0,
                record: None,
                tip: genesis,
                torn_next: false,
                byzantine: sc.is_byzantine(i),
                heard: Vec::new(),
                evidence: 0,
            })
            .collect();
        let honest = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| sc.is_byzantine(*i).is_none())
            .map(|(_, k)| Address(k.public()))
            .collect();
        let mut sim = Sim {
            sc,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: T0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            blocks: BTreeMap::new(),
            checker: Checker::new(config(&keys, 0), honest),
            trace: Sha256::new(),
            faults_on: true,
            groups: None,
            steps: 0,
            failure: None,
            debug: std::env::var_os("TAKSA_SIM_DEBUG").is_some(),
        };
        sim.schedule_start();
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.byzantine.is_none())
    }

    fn honest_heights(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.byzantine.is_none()).map(|n| n.tip.height).collect()
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    /// Boot times, the fault episodes and the end of the faults.
    fn schedule_start(&mut self) {
        let (n, fault_ms) = (self.sc.n, self.sc.fault_ms);
        for node in 0..n {
            let at = T0 + self.rng.gen_range(0..50);
            self.schedule(at, Event::Restart { node });
        }
        for _ in 0..self.sc.faults.partitions {
            let start = self.rng.gen_range(0..fault_ms);
            let len = self.rng.gen_range(500..5_000);
            let groups: Vec<bool> = (0..n).map(|_| self.rng.gen_bool(0.5)).collect();
            self.schedule(T0 + start, Event::Partition { groups });
            self.schedule(T0 + (start + len).min(fault_ms), Event::Heal);
        }
        let honest: Vec<usize> = (0..n).filter(|&i| self.honest(i)).collect();
        for _ in 0..self.sc.faults.crashes {
            let Some(&node) = honest.choose(&mut self.rng) else { break };
            let at = self.rng.gen_range(100..fault_ms.max(101));
            let torn = self.rng.gen_bool(0.5);
            let down = self.rng.gen_range(200..4_000);
            self.schedule(T0 + at, Event::Crash { node, torn });
            self.schedule(T0 + at + down, Event::Restart { node });
        }
        self.schedule(T0 + fault_ms, Event::FaultsEnd);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, bytes } => self.deliver(to, bytes),
            Event::Timer { node, incarnation, view } => {
                if self.nodes[node].incarnation == incarnation {
                    self.step(node, Input::Timer { view });
                }
            }
            Event::App { node, incarnation, input } => {
                if self.nodes[node].incarnation == incarnation {
                    self.step(node, *input);
                }
            }
            Event::Crash { node, torn } => {
                if torn {
                    self.nodes[node].torn_next = true;
                } else {
                    self.crash(node);
                }
            }
            Event::Restart { node } => {
                if self.nodes[node].engine.is_some() && !self.faults_on {
                    return;
                }
                if self.nodes[node].engine.is_some() {
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
                    self.nodes[node].torn_next = false;
                    if self.nodes[node].engine.is_none() {
                        self.start(node);
                    }
                }
            }
        }
    }

    /// The node loses everything but its persisted record and committed tip.
    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.engine = None;
        n.torn_next = false;
        n.incarnation += 1;
    }

    fn start(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.engine = Some(Engine::new(n.cfg.clone(), n.tip, n.record.clone()));
        self.step(node, Input::Start);
    }

    fn deliver(&mut self, to: usize, bytes: Rc<Vec<u8>>) {
        if self.nodes[to].engine.is_none() {
            return;
        }
        // Bytes from a Byzantine node may not decode; the engine never sees those.
        let Ok(msg) = Message::decode(&bytes) else { return };
        if let Some(b) = self.nodes[to].byzantine {
            self.byzantine_received(to, b, &msg, bytes);
        }
        self.step(to, Input::Message(msg));
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.now;
        let Some(engine) = self.nodes[node].engine.as_mut() else { return };
        let shown = if self.debug { format!("{input:?}").chars().take(160).collect::<String>() } else { String::new() };
        let effects = engine.step(input, now);
        if self.debug {
            let st = engine.status();
            eprintln!("{:>7} node {node} view {} fin {} <- {shown}", now - T0, st.view, st.finalized_height);
            for e in &effects {
                eprintln!("        -> {}", format!("{e:?}").chars().take(160).collect::<String>());
            }
        }
        self.steps += 1;
        self.trace.update(now.to_le_bytes());
        self.trace.update((node as u64).to_le_bytes());
        let torn = self.nodes[node].torn_next;
        let keep = if torn { self.rng.gen_range(0..=effects.len()) } else { effects.len() };
        for effect in effects.into_iter().take(keep) {
            trace_effect(&mut self.trace, &effect);
            self.execute(node, effect);
        }
        if torn {
            self.crash(node);
        }
    }

    fn execute(&mut self, node: usize, effect: Effect) {
        let now = self.now;
        let incarnation = self.nodes[node].incarnation;
        match effect {
            Effect::Propose { view, parent, parent_height, parent_cert } => {
                let cfg = &self.nodes[node].cfg;
                let me = cfg.key.as_ref().map(|k| Address(k.public())).unwrap_or_default();
                let request = app::Request { view, parent, parent_height, parent_cert };
                match app::build(&self.blocks, cfg, me, request, now) {
                    Ok(block) => {
                        self.blocks.insert(block.hash(), block.clone());
                        let at = now + self.rng.gen_range(1..=5);
                        self.schedule(at, Event::App { node, incarnation, input: Box::new(Input::Built(block)) });
                    }
                    Err(e) => self.fail(format!("node {node}: {e}")),
                }
            }
            Effect::Verify { block } => {
                let valid = app::verify(&self.blocks, &self.nodes[node].cfg, &block);
                let block_hash = block.hash();
                self.blocks.entry(block_hash).or_insert(block);
                let at = now + self.rng.gen_range(1..=10);
                self.schedule(
                    at,
                    Event::App { node, incarnation, input: Box::new(Input::Verified { block_hash, valid }) },
                );
            }
            Effect::Persist(record) => {
                let bytes = codec::encode(&record);
                match codec::decode::<SafetyRecord>(&bytes, codec::MESSAGE_BYTES_MAX) {
                    Ok(stored) if stored == record => self.nodes[node].record = Some(stored),
                    _ => {
                        self.fail(format!("node {node}: the record does not survive the disk ({} bytes)", bytes.len()))
                    }
                }
            }
            Effect::Broadcast(msg) => self.broadcast(node, msg),
            Effect::SetTimer { view, at_ms } => {
                self.schedule(at_ms.max(now), Event::Timer { node, incarnation, view });
            }
            Effect::Notarized { certificate } => {
                if let Err(e) = self.checker.certificate(&certificate) {
                    self.fail(format!("node {node} notarized: {e}"));
                }
            }
            Effect::Finalized { block_hash, height, certificate } => {
                if let Err(e) = self.checker.finalized(&certificate, block_hash) {
                    self.fail(format!("node {node} finalized: {e}"));
                }
                self.commit(node, block_hash, height);
            }
            Effect::Evidence(e) => {
                if let Err(why) = self.checker.evidence(&e) {
                    self.fail(format!("node {node} evidence: {why}"));
                }
                self.nodes[node].evidence += 1;
            }
        }
    }

    /// Commits a finalized block and its ancestors, checking agreement at every height.
    fn commit(&mut self, node: usize, hash: Hash, height: u64) {
        let tip = self.nodes[node].tip;
        if height <= tip.height {
            return self.fail(format!("node {node}: finalized height {height} after {}", tip.height));
        }
        let mut chain = Vec::new();
        let mut at = hash;
        while chain.len() < usize::try_from(height - tip.height).unwrap_or(usize::MAX) {
            let Some(b) = self.blocks.get(&at) else {
                return self.fail(format!("node {node}: finalized block {at} was never built"));
            };
            chain.push((b.header.height, at, b.header.view, b.header.timestamp_ms));
            at = b.header.parent_hash;
        }
        if at != tip.hash || chain.first().map(|c| c.0) != Some(height) {
            return self.fail(format!("node {node}: finalized {hash} at {height} does not extend its tip {tip:?}"));
        }
        for &(h, block_hash, _, _) in chain.iter().rev() {
            if let Err(e) = self.checker.agree(h, block_hash) {
                return self.fail(format!("node {node}: {e}"));
            }
        }
        if let Some(&(height, hash, view, timestamp_ms)) = chain.first() {
            self.nodes[node].tip = Tip { height, view, hash, timestamp_ms };
        }
    }

    fn broadcast(&mut self, from: usize, msg: Message) {
        let outgoing = match self.nodes[from].byzantine {
            None => {
                if let Err(e) = self.checker.sent_by_honest(&msg) {
                    return self.fail(format!("node {from}: {e}"));
                }
                vec![(None, msg)]
            }
            Some(b) => self.byzantine_outgoing(from, b, msg),
        };
        for (targets, msg) in outgoing {
            let bytes = Rc::new(msg.encode());
            for to in 0..self.nodes.len() {
                if to != from && targets.as_ref().is_none_or(|t: &Vec<usize>| t.contains(&to)) {
                    self.send(from, to, &bytes);
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, bytes: &Rc<Vec<u8>>) {
        let (lo, hi) = self.sc.latency_ms;
        if self.faults_on {
            if self.groups.as_ref().is_some_and(|g| g.get(from) != g.get(to)) {
                return;
            }
            if self.rng.gen_range(0..100) < self.sc.faults.drop_pct {
                return;
            }
            if self.rng.gen_range(0..100) < self.sc.faults.duplicate_pct {
                let at = self.now + self.rng.gen_range(lo..=hi * 2);
                self.schedule(at, Event::Deliver { to, bytes: Rc::clone(bytes) });
            }
        }
        let at = self.now + self.rng.gen_range(lo..=hi);
        self.schedule(at, Event::Deliver { to, bytes: Rc::clone(bytes) });
    }

    /// What must hold when the run ends: evidence against every Byzantine node that sent
    /// conflicting votes to everyone reached every honest node when no message was lost, and at
    /// least one honest node otherwise.
    fn check_end(&self) -> Result<(), String> {
        let f = &self.sc.faults;
        let lossless = f.drop_pct == 0 && f.partitions == 0 && f.crashes == 0;
        let honest: Vec<usize> = (0..self.nodes.len()).filter(|&j| self.honest(j)).collect();
        for (i, b) in &self.sc.byzantine {
            if self.checker.equivocations_to_all(*i) == 0 {
                continue;
            }
            let without: Vec<usize> = honest.iter().copied().filter(|&j| self.nodes[j].evidence == 0).collect();
            if (lossless && !without.is_empty()) || without.len() == honest.len() {
                return Err(format!("honest nodes {without:?} hold no evidence against byzantine node {i} ({b:?})"));
            }
        }
        Ok(())
    }
}

/// Feeds an executed effect into the trace hash.
fn trace_effect(trace: &mut Sha256, effect: &Effect) {
    match effect {
        Effect::Propose { view, parent, parent_height, .. } => {
            trace.update([0]);
            trace.update(view.to_le_bytes());
            trace.update(parent.0);
            trace.update(parent_height.to_le_bytes());
        }
        Effect::Verify { block } => {
            trace.update([1]);
            trace.update(block.hash().0);
        }
        Effect::Persist(r) => {
            trace.update([2]);
            trace.update(codec::encode(r));
        }
        Effect::Broadcast(m) => {
            trace.update([3]);
            trace.update(m.encode());
        }
        Effect::SetTimer { view, at_ms } => {
            trace.update([4]);
            trace.update(view.to_le_bytes());
            trace.update(at_ms.to_le_bytes());
        }
        Effect::Notarized { certificate } => {
            trace.update([5]);
            trace.update(certificate.encode());
        }
        Effect::Finalized { block_hash, height, .. } => {
            trace.update([6]);
            trace.update(block_hash.0);
            trace.update(height.to_le_bytes());
        }
        Effect::Evidence(e) => {
            trace.update([7]);
            trace.update(codec::encode(e));
        }
    }
}
