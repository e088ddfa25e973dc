//! Starting a network of real `taksa node` processes on loopback for tests: validators from the
//! published testnet mnemonic, optional full nodes, each killed by pid when dropped.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;

use crate::support::{bin, call, params, PASSWORD};

pub(crate) const TESTNET_MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// Network tests run one at a time: each starts several processes, and their timing assertions
/// mean little when four networks share two cores.
static ONE_NETWORK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_NETWORK_AT_A_TIME.lock().await
}

/// One node of a [`Testnet`].
pub(crate) struct NetNode {
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<OsString>,
    /// The node's `TAKSA_LOG` filter.
    log_filter: String,
    pub(crate) url: String,
    pub(crate) p2p: String,
    starts: u32,
}

impl NetNode {
    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("node.{}.log", self.starts))
    }

    /// Starts the process and waits for its banner (RPC URL and p2p address).
    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let mut child = Command::new(bin())
            .arg("node")
            .args(&self.args)
            .env("TAKSA_LOG", &self.log_filter)
            .env("TAKSA_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn taksa node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut url = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let word = |prefix: &str| line.split_whitespace().find(|w| w.starts_with(prefix)).map(str::to_owned);
                if line.contains("RPC URL:") {
                    url = word("http://");
                }
                if line.contains("p2p address:") {
                    if let (Some(u), Some(p)) = (url.clone(), word("/ip4/")) {
                        let _ = tx.send((u, p));
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((url, p2p)) => {
                self.url = url;
                self.p2p = p2p;
            }
            Err(_) => {
                let _ = child.kill();
                panic!("taksa node did not print its addresses; log:\n{}", self.log());
            }
        }
        self.child = Some(child);
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub(crate) fn client(&self) -> HttpClient {
        HttpClientBuilder::default().request_timeout(Duration::from_secs(5)).build(&self.url).expect("client")
    }

    /// The process id while the node runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Validators 0..v of the root genesis (with the block time changed) and `full` full nodes.
pub(crate) struct Testnet {
    pub(crate) nodes: Vec<NetNode>,
    genesis: PathBuf,
    log_filter: String,
    _root: tempfile::TempDir,
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
        let genesis = write_genesis(root.path(), block_time_ms, epoch_length_blocks);
        let mut net = Testnet { nodes: Vec::new(), genesis, log_filter: log_filter.to_owned(), _root: root };
        for i in 0..validators + full {
            net.add_node((i < validators).then_some(i));
        }
        net
    }

    /// Starts another node, with validator key `key` of the testnet mnemonic (which need not be
    /// in the genesis set) or as a full node; returns its index.
    pub(crate) fn add_node(&mut self, key: Option<usize>) -> usize {
        let i = self.nodes.len();
        let dir = self._root.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        let mut args: Vec<OsString> = vec!["--genesis".into(), self.genesis.clone().into()];
        args.extend(["--data-dir".into(), dir.join("data").into_os_string()]);
        args.extend(["--rpc-addr".into(), "127.0.0.1:0".into(), "--p2p-addr".into(), "127.0.0.1:0".into()]);
        args.extend(["--reserved-peers-file".into(), dir.join("reserved-peers").into_os_string()]);
        if let Some(k) = key {
            args.extend(["--validator-key".into(), import_validator_key(&dir, k).into_os_string()]);
        }
        if let Some(first) = self.nodes.first() {
            args.extend(["--bootnode".into(), first.p2p.clone().into()]);
        }
        let log_filter = self.log_filter.clone();
        let mut node =
            NetNode { child: None, dir, args, log_filter, url: String::new(), p2p: String::new(), starts: 0 };
        node.spawn();
        // Restarts reuse the ports, so the others' address books stay right.
        let port = |s: &str| s.trim_start_matches("http://").to_owned();
        let rpc = port(&node.url);
        let p2p_listen = node.p2p.split("/p2p/").next().unwrap_or_default().to_owned();
        set_arg(&mut node.args, "--rpc-addr", &rpc);
        set_arg(&mut node.args, "--p2p-addr", &p2p_listen);
        self.nodes.push(node);
        i
    }

    /// The network's genesis file.
    pub(crate) fn genesis_file(&self) -> &Path {
        &self.genesis
    }

    /// A folder for the test's own files, removed with the network.
    pub(crate) fn scratch(&self) -> PathBuf {
        let dir = self._root.path().join("scratch");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Validator key `k`'s file, imported into node `i`'s keystore (the file `--validator-key`
    /// and `taksa validator --key` take).
    pub(crate) fn key_file(&self, i: usize, k: usize) -> PathBuf {
        let file = self.nodes[i].dir.join("keystore").join(format!("validator-{k}.json"));
        if !file.exists() {
            import_validator_key(&self.nodes[i].dir, k);
        }
        file
    }

    /// Node `i` also holds validator key `k` from its next start on (it signs, in each epoch,
    /// with the first of its keys the set holds).
    pub(crate) fn add_validator_key(&mut self, i: usize, k: usize) {
        let file = self.key_file(i, k);
        self.nodes[i].args.extend(["--validator-key".into(), file.into_os_string()]);
    }

    pub(crate) fn kill_9(&mut self, i: usize) {
        self.nodes[i].kill_9();
    }

    pub(crate) fn restart(&mut self, i: usize) {
        self.nodes[i].kill_9();
        self.nodes[i].spawn();
    }

    /// Stops node `i` and deletes its chain data (not its key or identity's folder).
    pub(crate) fn wipe(&mut self, i: usize) {
        self.nodes[i].kill_9();
        std::fs::remove_dir_all(self.nodes[i].dir.join("data")).expect("wipe data");
    }

    /// Node `i` talks only to the listed nodes from now on (its `--reserved-peers-file`).
    pub(crate) fn reserve(&self, i: usize, peers: &[usize]) {
        let ids: Vec<&str> = peers.iter().filter_map(|&j| self.nodes[j].p2p.split("/p2p/").nth(1)).collect();
        std::fs::write(self.nodes[i].dir.join("reserved-peers"), ids.join("\n") + "\n").expect("write reserved peers");
    }

    /// Node `i` talks only to the peers with these ids (for peers that are not testnet nodes).
    pub(crate) fn reserve_ids(&self, i: usize, ids: &[String]) {
        std::fs::write(self.nodes[i].dir.join("reserved-peers"), ids.join("\n") + "\n").expect("write reserved peers");
    }

    /// Node `i` starts from these bootnodes (multiaddrs) from its next start on.
    pub(crate) fn set_bootnodes(&mut self, i: usize, addrs: &[String]) {
        let args = &mut self.nodes[i].args;
        while let Some(pos) = args.iter().position(|a| a == "--bootnode") {
            args.drain(pos..(pos + 2).min(args.len()));
        }
        for addr in addrs {
            args.extend(["--bootnode".into(), addr.into()]);
        }
    }

    /// Node `i` talks to anyone again (`*`: an emptied or deleted file keeps the last set).
    pub(crate) fn unreserve(&self, i: usize) {
        std::fs::write(self.nodes[i].dir.join("reserved-peers"), "*\n").expect("write reserved peers");
    }

    pub(crate) fn client(&self, i: usize) -> HttpClient {
        self.nodes[i].client()
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
            let log = self.nodes[i].log();
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

fn set_arg(args: &mut [OsString], name: &str, value: &str) {
    if let Some(pos) = args.iter().position(|a| a == name) {
        if let Some(slot) = args.get_mut(pos + 1) {
            *slot = value.into();
        }
    }
}

/// The root genesis with another block time and maybe epoch length (a different chain, same
/// keys and funds).
fn write_genesis(dir: &Path, block_time_ms: u64, epoch_length_blocks: Option<u64>) -> PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../genesis.json");
    let mut g: Value = serde_json::from_str(&std::fs::read_to_string(root).expect("genesis.json")).expect("json");
    g["block_time_ms"] = block_time_ms.into();
    if let Some(length) = epoch_length_blocks {
        g["epoch_length_blocks"] = length.into();
    }
    let path = dir.join("genesis.json");
    std::fs::write(&path, serde_json::to_string_pretty(&g).expect("json")).expect("write genesis");
    path
}

/// Imports validator key `i` of the testnet mnemonic into `dir/keystore`.
fn import_validator_key(dir: &Path, i: usize) -> PathBuf {
    let keystore = dir.join("keystore");
    let name = format!("validator-{i}");
    let (ok, _, err) = crate::support::wallet(
        "http://127.0.0.1:1",
        &keystore,
        &["import", "--name", &name, "--index", &i.to_string(), "--validator", "--hrp", "tks"],
        Some(TESTNET_MNEMONIC),
    );
    assert!(ok, "importing the validator key failed: {err}");
    keystore.join(format!("{name}.json"))
}
