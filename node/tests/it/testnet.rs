//! Starting a network of real `taksa node` processes on loopback for tests, with the library
//! `taksa testnet` runs on: validators from the published testnet mnemonic, optional full nodes,
//! each killed by pid when dropped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;
pub(crate) use taksa_node::devnet::TESTNET_MNEMONIC;
use taksa_node::testnet::Options;
pub(crate) use taksa_node::testnet::TESTNET_PASSWORD;

use crate::support::{bin, call, params};

/// Network tests run one at a time: each starts several processes, and their timing assertions
/// mean little when four networks share two cores.
static ONE_NETWORK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_NETWORK_AT_A_TIME.lock().await
}

/// A network of [`taksa_node::testnet::Testnet`] in a temporary folder, every node killed by
/// pid when dropped: the same library `taksa testnet` runs on, with the tests' conveniences.
pub(crate) struct Testnet {
    net: taksa_node::testnet::Testnet,
    /// Each node's p2p address (with its peer id) at its latest start.
    p2p: Vec<String>,
    _root: tempfile::TempDir,
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for i in 0..self.net.nodes().len() {
            self.net.kill(i);
        }
    }
}

impl Testnet {
    /// Nodes that log at `TAKSA_TEST_NODE_LOG`'s level, `info` by default.
    pub(crate) fn start(validators: usize, full: usize, block_time_ms: u64) -> Testnet {
        let log_filter = std::env::var("TAKSA_TEST_NODE_LOG").unwrap_or_else(|_| "info".to_owned());
        Testnet::start_logging(validators, full, block_time_ms, &log_filter)
    }

    /// As [`Testnet::start`], with the nodes' `TAKSA_LOG` filter (for a test that counts log lines).
    pub(crate) fn start_logging(validators: usize, full: usize, block_time_ms: u64, log_filter: &str) -> Testnet {
        Testnet::start_epochs(validators, full, block_time_ms, None, log_filter)
    }

    /// As [`Testnet::start_logging`], on a genesis with `epoch_length_blocks` heights per epoch
    /// (the root genesis's when `None`).
    pub(crate) fn start_epochs(
        validators: usize,
        full: usize,
        block_time_ms: u64,
        epoch_length_blocks: Option<u64>,
        log_filter: &str,
    ) -> Testnet {
        let root = tempfile::tempdir().expect("tempdir");
        let options = Options {
            validators,
            full,
            genesis: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../genesis.json").into()),
            block_time_ms: Some(block_time_ms),
            epoch_length_blocks,
            ports: None,
            binary: bin().into(),
            log_filter: log_filter.to_owned(),
        };
        let net = taksa_node::testnet::Testnet::init(&root.path().join("net"), &options).expect("testnet init");
        let mut net = Testnet { p2p: vec![String::new(); net.nodes().len()], net, _root: root };
        for i in 0..validators + full {
            net.spawn(i);
        }
        net
    }

    /// Starts node `i` and waits for its ready file.
    fn spawn(&mut self, i: usize) {
        match self.net.start(i) {
            Ok(ready) => self.p2p[i] = ready.p2p_addrs.first().cloned().unwrap_or_default(),
            Err(e) => panic!("node {i} did not start: {e:#}"),
        }
    }

    /// Starts another node, with validator key `key` of the testnet mnemonic (which need not be
    /// in the genesis set) or as a full node; returns its index.
    pub(crate) fn add_node(&mut self, key: Option<usize>) -> usize {
        let keys = key.map(|k| vec![u32::try_from(k).expect("key index")]).unwrap_or_default();
        let i = self.net.add_node(keys).expect("add a node");
        self.p2p.push(String::new());
        self.spawn(i);
        i
    }

    /// How many nodes.
    pub(crate) fn len(&self) -> usize {
        self.net.nodes().len()
    }

    /// Node `i`'s RPC URL.
    pub(crate) fn url(&self, i: usize) -> String {
        self.net.rpc_url(i)
    }

    /// Node `i`'s p2p address, `/ip4/…/tcp/…/p2p/PEER_ID`.
    pub(crate) fn p2p(&self, i: usize) -> String {
        self.p2p[i].clone()
    }

    /// Node `i`'s log since its latest start.
    pub(crate) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.net.log_path(i)).unwrap_or_default()
    }

    /// Node `i`'s process id while it runs.
    pub(crate) fn pid(&self, i: usize) -> Option<u32> {
        self.net.pid(i)
    }

    pub(crate) fn is_running(&self, i: usize) -> bool {
        self.net.pid(i).is_some()
    }

    /// The network's genesis file.
    pub(crate) fn genesis_file(&self) -> PathBuf {
        self.net.genesis_file()
    }

    /// A folder for the test's own files, removed with the network.
    pub(crate) fn scratch(&self) -> PathBuf {
        let dir = self._root.path().join("scratch");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Validator key `k`'s file, imported into node `i`'s keystore (the file `--validator-key`
    /// and `taksa validator --key` take; its password is [`TESTNET_PASSWORD`]).
    pub(crate) fn key_file(&self, i: usize, k: usize) -> PathBuf {
        self.net.key_file(i, u32::try_from(k).expect("key index")).expect("import the key")
    }

    /// Node `i` also holds validator key `k` from its next start on (it signs, in each epoch,
    /// with the first of its keys the set holds).
    pub(crate) fn add_validator_key(&mut self, i: usize, k: usize) {
        self.net.add_key(i, u32::try_from(k).expect("key index")).expect("add the key");
    }

    pub(crate) fn kill_9(&mut self, i: usize) {
        self.net.kill(i);
    }

    pub(crate) fn restart(&mut self, i: usize) {
        self.net.kill(i);
        self.spawn(i);
    }

    /// Stops node `i` and deletes its chain data (not its key or identity's folder).
    pub(crate) fn wipe(&mut self, i: usize) {
        self.net.wipe(i).expect("wipe");
    }

    /// Node `i` talks only to the listed nodes from now on (its `--reserved-peers-file`).
    pub(crate) fn reserve(&self, i: usize, peers: &[usize]) {
        let ids: Vec<String> =
            peers.iter().filter_map(|&j| self.p2p[j].split("/p2p/").nth(1).map(str::to_owned)).collect();
        self.reserve_ids(i, &ids);
    }

    /// Node `i` talks only to the peers with these ids (for peers that are not testnet nodes).
    pub(crate) fn reserve_ids(&self, i: usize, ids: &[String]) {
        std::fs::write(self.net.reserved_peers_file(i), ids.join("\n") + "\n").expect("write reserved peers");
    }

    /// Node `i` starts from these bootnodes (multiaddrs) from its next start on.
    pub(crate) fn set_bootnodes(&mut self, i: usize, addrs: &[String]) {
        self.net.set_bootnodes(i, addrs.to_vec()).expect("set bootnodes");
    }

    /// Node `i` talks to anyone again (`*`: an emptied or deleted file keeps the last set).
    pub(crate) fn unreserve(&self, i: usize) {
        std::fs::write(self.net.reserved_peers_file(i), "*\n").expect("write reserved peers");
    }

    pub(crate) fn client(&self, i: usize) -> HttpClient {
        HttpClientBuilder::default().request_timeout(Duration::from_secs(5)).build(self.url(i)).expect("client")
    }

    /// `chain_getInfo` of node `i`, or `None` if it does not answer.
    pub(crate) async fn info(&self, i: usize) -> Option<Value> {
        call(&self.client(i), "chain_getInfo", ArrayParams::new()).await.ok()
    }

    pub(crate) async fn finalized(&self, i: usize) -> u64 {
        self.info(i).await.and_then(|v| v["finalizedHeight"].as_u64()).unwrap_or(0)
    }

    /// The hash of the block at `height` on node `i`.
    pub(crate) async fn hash_at(&self, i: usize, height: u64) -> Option<String> {
        let block = call(&self.client(i), "chain_getBlock", params(&[height.into()])).await.ok()?;
        block["hash"].as_str().map(str::to_owned)
    }

    /// Waits until every listed node has finalized at least `height`.
    pub(crate) async fn wait_finalized(&self, nodes: &[usize], height: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let mut lowest = u64::MAX;
            for &i in nodes {
                lowest = lowest.min(self.finalized(i).await);
            }
            if lowest >= height {
                return;
            }
            if Instant::now() > deadline {
                let mut status = String::new();
                for &i in nodes {
                    let st = call(&self.client(i), "consensus_getStatus", ArrayParams::new()).await;
                    status.push_str(&format!("\nnode {i} consensus: {st:?}"));
                }
                panic!(
                    "nodes {nodes:?} did not all reach height {height} in {timeout:?} (lowest {lowest}){status}{}",
                    self.logs(nodes)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the listed nodes' logs, for failure messages.
    pub(crate) fn logs(&self, nodes: &[usize]) -> String {
        let mut out = String::new();
        for &i in nodes {
            let log = self.log(i);
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            out.push_str(&format!("\n--- node {i} ---\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}
