//! A replay flood against real validators (issue 9, finding 5): a libp2p peer in the test
//! process records every valid consensus message the 4 validators gossip (votes, certificates,
//! proposals) and publishes the most recent ones again under fresh send stamps, as fast as it
//! can. Each copy is a new gossipsub message, so only the p2p guard stands between the flood and
//! the nodes: one delivery per payload per replay window, a rate budget per peer, and consensus
//! traffic in a queue of its own. The chain must keep finalizing at about its usual rate, the
//! nodes must accept (and so forward) hardly more consensus messages than without the flood, and
//! the copies must be dropped as replays or over the peer's budget. Without the replay
//! suppression (the rate budget alone) each node accepts and forwards about a thousand copies a
//! second, its consensus queue overflows, and finality stops within seconds.
//!
//! Sending the very same wire bytes again is no attack: gossipsub's message id is the hash of
//! the bytes, so the replayer's own gossipsub refuses to publish them twice and a receiver's
//! seen-cache drops them before the node sees them. The stamp is what a replayer must change.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use taksa_consensus::engine::Message;
use taksa_consensus::Hash;
use taksa_node::devnet;
use taksa_p2p::{Config, Event, Handle, Topic, Verdict};

use crate::support::{call, params};
use crate::testnet::{exclusive, Testnet};

const BLOCK_MS: u64 = 500;
/// The nodes log every gossip copy their p2p layer ignores (`p2p` at debug) and every consensus
/// message they accept, which is every one they forward (`consensus` at debug: "received").
const NODE_LOG: &str = "info,p2p=debug,consensus=debug";
const ACCEPTED_LINE: &str = " consensus: received";
const REPLAY_LINE: &str = "gossip ignored: payload delivered just now";
const RATE_LINE: &str = "gossip ignored: peer over its rate";
/// The most recent distinct payloads the replayer cycles through: all within the last few views,
/// so the nodes would still check their signatures and pass them on if nothing stopped them.
const REPLAYED_MAX: usize = 64;
/// `p2p`'s replay window: a payload reaches a node at most once per window, whoever sends it.
const REPLAY_WINDOW_MS: u64 = 750;
const BASELINE: Duration = Duration::from_secs(10);
const FLOOD: Duration = Duration::from_secs(25);
/// Every node must finalize at least [`BLOCKS_PER_WINDOW_MIN`] blocks in each window of the flood.
const WINDOW: Duration = Duration::from_secs(5);
const BLOCKS_PER_WINDOW_MIN: u64 = 2;

/// What the replayer heard: the latest distinct consensus payloads, and how many of each kind.
#[derive(Default)]
struct Recorded {
    recent: Mutex<VecDeque<Vec<u8>>>,
    votes: AtomicU64,
    certificates: AtomicU64,
    proposals: AtomicU64,
}

impl Recorded {
    fn record(&self, data: Vec<u8>) {
        let counter = match Message::decode(&data) {
            Ok(Message::Vote(_)) => &self.votes,
            Ok(Message::Certificate(_)) => &self.certificates,
            Ok(Message::Proposal { .. }) => &self.proposals,
            Err(_) => return,
        };
        let mut recent = self.recent.lock().expect("recorder lock");
        if recent.contains(&data) {
            return;
        }
        counter.fetch_add(1, Ordering::Relaxed);
        if recent.len() == REPLAYED_MAX {
            recent.pop_front();
        }
        recent.push_back(data);
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.recent.lock().expect("recorder lock").iter().cloned().collect()
    }

    fn total(&self) -> u64 {
        [&self.votes, &self.certificates, &self.proposals].iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn kinds(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!("{} votes, {} certificates, {} proposals", n(&self.votes), n(&self.certificates), n(&self.proposals))
    }
}

/// A peer connected to every validator that records their consensus gossip and forwards
/// nothing (it answers every message `Ignore`).
async fn replayer(net: &Testnet, genesis_hash: Hash) -> (Handle, Arc<Recorded>) {
    let mut config = Config::new("127.0.0.1:0", devnet::TESTNET_CHAIN_ID, genesis_hash, [68; 32]);
    config.bootnodes = (0..net.len()).map(|i| net.p2p(i)).collect();
    let (handle, mut events) = taksa_p2p::start(config).await.expect("the replayer starts");
    let recorded = Arc::new(Recorded::default());
    let (reporter, recorder) = (handle.clone(), recorded.clone());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Gossip { topic, from, id, data } = event {
                if topic == Topic::Consensus {
                    recorder.record(data);
                }
                reporter.report(id, from, Verdict::Ignore);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.peers().await.len() < net.len() {
        assert!(Instant::now() < deadline, "the replayer could not connect to every validator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (handle, recorded)
}

/// Publishes the recorded payloads round and round until `until`; returns how many copies
/// were queued for publishing. Each gets a fresh send stamp from `Handle::publish`.
async fn flood(handle: Handle, recorded: Arc<Recorded>, until: Instant) -> u64 {
    let mut queued = 0u64;
    let mut payloads = Vec::new();
    let mut refreshed = Instant::now();
    while Instant::now() < until {
        if payloads.is_empty() || refreshed.elapsed() >= Duration::from_millis(100) {
            payloads = recorded.snapshot();
            refreshed = Instant::now();
        }
        for data in &payloads {
            match handle.publish(Topic::Consensus, data.clone()) {
                Ok(()) => queued += 1,
                // Our own command queue is full: the swarm task is sending as fast as it can.
                Err(taksa_p2p::Error::Busy) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => panic!("the replayer cannot publish: {e}"),
            }
        }
        tokio::task::yield_now().await;
    }
    queued
}

/// Lines of node `i`'s log that contain every one of `words`.
fn log_lines(net: &Testnet, i: usize, words: &[&str]) -> u64 {
    let log = net.log(i);
    let n = log.lines().filter(|line| words.iter().all(|w| line.contains(w))).count();
    u64::try_from(n).expect("fits")
}

/// CPU seconds node `i` has used so far (Linux `/proc`; `None` elsewhere).
fn node_cpu_s(net: &Testnet, i: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", net.pid(i)?)).ok()?;
    // Fields after the command name, which is in parentheses: utime and stime are 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ, the unit of /proc's times, is 100 on Linux.
    Some(ticks as f64 / 100.0)
}

fn per_s(count: u64, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64()
}

/// The nodes' figures at one moment.
struct Snapshot {
    at: Instant,
    finalized: Vec<u64>,
    /// Consensus messages accepted (and so forwarded) so far.
    accepted: Vec<u64>,
    cpu_s: Vec<f64>,
}

impl Snapshot {
    async fn take(net: &Testnet) -> Snapshot {
        let at = Instant::now();
        let mut finalized = Vec::with_capacity(net.len());
        for i in 0..net.len() {
            finalized.push(net.finalized(i).await);
        }
        let accepted = (0..net.len()).map(|i| log_lines(net, i, &[ACCEPTED_LINE])).collect();
        let cpu_s = (0..net.len()).map(|i| node_cpu_s(net, i).unwrap_or(0.0)).collect();
        Snapshot { at, finalized, accepted, cpu_s }
    }

    fn elapsed_since(&self, before: &Snapshot) -> Duration {
        self.at.duration_since(before.at)
    }

    /// Blocks finalized since `before` by the slowest node.
    fn blocks_since(&self, before: &Snapshot) -> u64 {
        self.finalized.iter().zip(&before.finalized).map(|(now, then)| now.saturating_sub(*then)).min().unwrap_or(0)
    }

    /// Consensus messages accepted since `before` by the busiest node.
    fn accepted_since(&self, before: &Snapshot) -> u64 {
        self.accepted.iter().zip(&before.accepted).map(|(now, then)| now.saturating_sub(*then)).max().unwrap_or(0)
    }

    fn report(&self, before: &Snapshot, when: &str) -> String {
        let over = self.elapsed_since(before);
        let (blocks, accepted) = (self.blocks_since(before), self.accepted_since(before));
        let cpu: Vec<String> =
            self.cpu_s.iter().zip(&before.cpu_s).map(|(now, then)| format!("{:.1}", now - then)).collect();
        format!(
            "{when}: {blocks} blocks finalized in {over:.1?} ({:.2}/s); at most {:.1} consensus messages/s accepted \
             by a node; node cpu [{}] s",
            per_s(blocks, over),
            per_s(accepted, over),
            cpu.join(", "),
        )
    }
}

/// Waits out the flood from `started`, window by window; returns what each node finalized in
/// each window.
async fn watch_windows(net: &Testnet, started: Instant, mut last: Vec<u64>) -> Vec<Vec<u64>> {
    let mut windows = Vec::new();
    for w in 1..=(FLOOD.as_secs() / WINDOW.as_secs()) {
        tokio::time::sleep_until((started + WINDOW * u32::try_from(w).expect("small")).into()).await;
        let mut now = Vec::with_capacity(net.len());
        for i in 0..net.len() {
            now.push(net.finalized(i).await);
        }
        let gained: Vec<u64> = now.iter().zip(&last).map(|(n, l)| n.saturating_sub(*l)).collect();
        eprintln!("flood window {w}: finalized {now:?}, gained {gained:?}");
        windows.push(gained);
        last = now;
    }
    windows
}

/// The ends of the nodes' logs without the lines about single messages, for failure messages
/// (the flood's would bury the rest).
fn info_logs(net: &Testnet) -> String {
    let mut out = String::new();
    for i in 0..net.len() {
        let log = net.log(i);
        let lines: Vec<&str> =
            log.lines().filter(|l| !l.contains(" DEBUG ") && !l.contains("gossip ignored")).collect();
        out.push_str(&format!("\n--- node {i} ---\n"));
        for line in &lines[lines.len().saturating_sub(20)..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Nobody lost score (ignoring costs none), the replayer is still connected, and the nodes
/// hold one chain up to `height`.
async fn no_penalty_and_one_chain(net: &Testnet, replayer_id: &str, height: u64) {
    for i in 0..net.len() {
        let peers = call(&net.client(i), "node_peers", params(&[])).await.expect("node_peers");
        let peers = peers.as_array().cloned().unwrap_or_default();
        for p in &peers {
            assert!(p["score"].as_i64().unwrap_or(0) >= 0, "node {i} penalised a peer: {p}");
        }
        assert!(peers.iter().any(|p| p["peerId"] == json!(replayer_id)), "node {i} dropped the replayer");
    }
    for i in 1..net.len() {
        assert_eq!(net.hash_at(i, height).await, net.hash_at(0, height).await, "node {i} at height {height}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_flood_leaves_votes_flowing() {
    let _one = exclusive().await;
    let net = Testnet::start_logging(4, 0, BLOCK_MS, NODE_LOG);
    net.wait_finalized(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await;
    let info = net.info(0).await.expect("chain_getInfo");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash");
    let (replayer, recorded) = replayer(&net, genesis).await;
    let replayer_id = replayer.local_peer_id().to_string();

    // Before: the replayer listens and records, and the chain runs as usual.
    let s0 = Snapshot::take(&net).await;
    tokio::time::sleep(BASELINE).await;
    let s1 = Snapshot::take(&net).await;
    eprintln!("{}; the replayer recorded {}", s1.report(&s0, "before the flood"), recorded.kinds());
    assert!(
        s1.blocks_since(&s0) >= 2 * BLOCKS_PER_WINDOW_MIN,
        "the chain was slow before any flood{}",
        info_logs(&net)
    );

    let started = Instant::now();
    let flooding = tokio::spawn(flood(replayer.clone(), recorded.clone(), started + FLOOD));
    let windows = watch_windows(&net, started, s1.finalized.clone()).await;
    let queued = flooding.await.expect("the flood task");
    let s2 = Snapshot::take(&net).await;
    let dropped = |line: &str| (0..4).map(|i| log_lines(&net, i, &[line, &replayer_id])).sum::<u64>();
    let (replays, over_rate) = (dropped(REPLAY_LINE), dropped(RATE_LINE));
    eprintln!(
        "{}; the replayer queued {queued} copies ({:.0}/s) of its latest {REPLAYED_MAX} payloads; the nodes \
         dropped {replays} as replays and {over_rate} over the replayer's rate",
        s2.report(&s1, "during the flood"),
        per_s(queued, s2.elapsed_since(&s1)),
    );

    // (a) Votes kept flowing: every node finalized in every window, at no less than half the rate.
    for (w, gained) in windows.iter().enumerate() {
        let least = gained.iter().copied().min().unwrap_or(0);
        let w = w + 1;
        assert!(least >= BLOCKS_PER_WINDOW_MIN, "flood window {w} finalized only {gained:?}{}", info_logs(&net));
    }
    let (base_s, flood_s) = (s1.elapsed_since(&s0), s2.elapsed_since(&s1));
    let (base_blocks, flood_blocks) = (s1.blocks_since(&s0), s2.blocks_since(&s1));
    assert!(
        per_s(flood_blocks, flood_s) * 2.0 >= per_s(base_blocks, base_s),
        "finality slowed from {base_blocks} blocks in {base_s:?} to {flood_blocks} in {flood_s:?}"
    );
    // (b) The replays were not passed on. A node accepts, and so forwards, each payload at most
    // once per replay window: over a payload's time in the replayer's set, at most one more than
    // that time in windows. While fewer new payloads arrive per window than the set holds, the
    // flood adds at most two set's worth per window to a node's usual traffic.
    let per_window = REPLAYED_MAX as f64 * 1000.0 / REPLAY_WINDOW_MS as f64;
    let recorded_per_s = per_s(recorded.total(), s2.elapsed_since(&s0));
    assert!(recorded_per_s < per_window, "{recorded_per_s:.1} new payloads/s: the set turns over too fast");
    let bound = per_s(s1.accepted_since(&s0), base_s) + 2.0 * per_window;
    let flood_accepted = s2.accepted_since(&s1);
    assert!(
        per_s(flood_accepted, flood_s) <= bound,
        "a node accepted and forwarded {flood_accepted} consensus messages in {flood_s:?} (bound {bound:.1}/s)"
    );
    // (c) The copies died in the nodes' p2p layer, mostly as replays.
    assert!(replays >= 1000, "only {replays} copies were dropped as replays ({over_rate} over the rate)");
    assert!(
        replays + over_rate >= queued / 2,
        "of {queued} copies only {replays} were dropped as replays and {over_rate} over the rate"
    );
    let height = s2.finalized.iter().copied().min().unwrap_or(0);
    no_penalty_and_one_chain(&net, &replayer_id, height).await;
    replayer.shutdown().await;
}
