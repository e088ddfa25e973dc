//! A local network of `taksa node` processes on 127.0.0.1: the library behind `taksa testnet`
//! and the integration tests' networks, so both start, kill, wipe and check nodes one way.
//!
//! A testnet is a folder: `testnet.json` (the nodes, their keys, ports and extra flags),
//! `genesis.json`, and per node `nodeI/` with its chain data, keystore, logs (one per start), the
//! pid of its last start and the ready file the node writes once it serves (see [`Ready`]).
//! Processes are found again by pid, checked against their command line (a pid the kernel gave to
//! another program is never signalled), so one command can start the network and a later one stop
//! it. The validator keys and funded accounts derive from the published testnet mnemonic and the
//! keystores use a published password: nothing in the folder is secret.

mod ops;
mod ready;

pub mod cli;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use taksa_consensus::Genesis;

pub use ops::{DemoReport, NodeStatus};
pub use ready::Ready;

use crate::devnet;
use crate::wallet::keys::DerivationPath;
use crate::wallet::keystore::{KdfParams, Keystore};

/// The keystores' password: public, like the keys.
pub const TESTNET_PASSWORD: &str = "taksa-public-testnet-password-not-secret";
/// Public keys need no costly key derivation; this is still the RFC 9106 algorithm.
const TESTNET_KDF: KdfParams = KdfParams { m_kib: 8 * 1024, t: 1, p: 1 };
/// How long a start waits for the node's ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const MANIFEST: &str = "testnet.json";
const MANIFEST_VERSION: u32 = 1;

/// How to lay out a new testnet.
#[derive(Clone, Debug)]
pub struct Options {
    /// Validators: keys 0..N of the testnet mnemonic, which the genesis must list.
    pub validators: usize,
    /// Full nodes besides.
    pub full: usize,
    /// The genesis: the embedded testnet genesis (the root `genesis.json`) when `None`.
    pub genesis: Option<PathBuf>,
    /// Another block time (a different chain with the same keys and funds).
    pub block_time_ms: Option<u64>,
    /// Another epoch length.
    pub epoch_length_blocks: Option<u64>,
    /// The first RPC and p2p ports tried (busy ones are skipped); `None`: any free port, kept
    /// from the first start on.
    pub ports: Option<(u16, u16)>,
    /// The `taksa` binary the nodes run.
    pub binary: PathBuf,
    /// The nodes' `TAKSA_LOG` filter.
    pub log_filter: String,
}

/// What `testnet.json` records of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    /// The validator keys (indices of the testnet mnemonic) in its keystore; none: a full node.
    pub keys: Vec<u32>,
    /// Its RPC port; 0 until its first start picked one.
    pub rpc_port: u16,
    /// Its p2p port; 0 until its first start picked one.
    pub p2p_port: u16,
    /// Its bootnodes; `None`: node 0 (and none for node 0 itself).
    pub bootnodes: Option<Vec<String>>,
    /// How many times it was started (each start logs to `node.N.log`).
    pub starts: u32,
}

impl NodeEntry {
    /// "validator" or "full".
    pub fn role(&self) -> &'static str {
        if self.keys.is_empty() {
            "full"
        } else {
            "validator"
        }
    }
}

/// `testnet.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    version: u32,
    binary: PathBuf,
    log_filter: String,
    nodes: Vec<NodeEntry>,
}

/// A testnet folder and the nodes this process started from it.
pub struct Testnet {
    dir: PathBuf,
    manifest: Manifest,
    genesis: Genesis,
    /// The processes this value started, reaped when they stop.
    children: std::sync::Mutex<Vec<Option<Child>>>,
}

impl Testnet {
    /// Creates the folder: genesis, keystores, and the nodes' entries. Refuses a folder that
    /// holds a testnet already.
    pub fn init(dir: &Path, options: &Options) -> anyhow::Result<Testnet> {
        if dir.join(MANIFEST).exists() {
            bail!(
                "{} holds a testnet already: use it, or delete it first (taksa testnet down --delete)",
                dir.display()
            );
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // One spelling of the folder: processes are recognised by the paths in their command line.
        let dir = &fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
        let text = match &options.genesis {
            Some(path) => fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
            None => devnet::testnet_genesis_json()?,
        };
        let mut g: serde_json::Value = serde_json::from_str(&text).context("the genesis is not JSON")?;
        if let Some(ms) = options.block_time_ms {
            g["block_time_ms"] = ms.into();
        }
        if let Some(length) = options.epoch_length_blocks {
            g["epoch_length_blocks"] = length.into();
        }
        let text = serde_json::to_string_pretty(&g)? + "\n";
        let genesis = Genesis::from_json(&text).context("the genesis is not valid")?;
        if options.validators == 0 || options.validators > genesis.validators.len() {
            bail!(
                "the genesis has {} validators: a testnet runs 1 to {} of them (add full nodes for more nodes)",
                genesis.validators.len(),
                genesis.validators.len()
            );
        }
        let quorum = genesis.validator_set().quorum();
        if options.validators < quorum {
            bail!(
                "{} of the genesis's {} validators cannot finalize anything: a quorum is {quorum}",
                options.validators,
                genesis.validators.len()
            );
        }
        for i in 0..options.validators {
            let key = devnet::testnet_validator_key(u32::try_from(i)?);
            if genesis.validators[i] != taksa_consensus::Address(key.public()) {
                bail!("the genesis's validator {i} is not key {i} of the testnet mnemonic: a testnet needs its keys");
            }
        }
        fs::write(dir.join("genesis.json"), text)?;
        let mut net = Testnet {
            dir: dir.to_owned(),
            manifest: Manifest {
                version: MANIFEST_VERSION,
                binary: options.binary.clone(),
                log_filter: options.log_filter.clone(),
                nodes: Vec::new(),
            },
            genesis,
            children: std::sync::Mutex::new(Vec::new()),
        };
        let total = options.validators + options.full;
        let mut taken = Vec::new();
        for i in 0..total {
            let keys = if i < options.validators { vec![u32::try_from(i)?] } else { Vec::new() };
            let (rpc_port, p2p_port) = match options.ports {
                Some((rpc, p2p)) => {
                    let r = free_port_from(rpc, &taken)?;
                    taken.push(r);
                    let p = free_port_from(p2p, &taken)?;
                    taken.push(p);
                    (r, p)
                }
                None => (0, 0),
            };
            net.push_node(NodeEntry { keys, rpc_port, p2p_port, bootnodes: None, starts: 0 })?;
        }
        net.save()?;
        Ok(net)
    }

    /// Opens a testnet folder that [`Testnet::init`] made.
    pub fn open(dir: &Path) -> anyhow::Result<Testnet> {
        let dir = &fs::canonicalize(dir).map_err(|_| {
            anyhow::anyhow!("no testnet in {}: create one with taksa testnet init (or up)", dir.display())
        })?;
        let path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no testnet in {} (no {MANIFEST}): create one with taksa testnet init (or up)", dir.display())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("{} is not a testnet manifest", path.display()))?;
        if manifest.version != MANIFEST_VERSION {
            bail!("{} is version {}; this taksa reads version {MANIFEST_VERSION}", path.display(), manifest.version);
        }
        let genesis_text = fs::read_to_string(dir.join("genesis.json"))?;
        let genesis = Genesis::from_json(&genesis_text).context("the testnet's genesis.json is not valid")?;
        let children = std::sync::Mutex::new(manifest.nodes.iter().map(|_| None).collect());
        Ok(Testnet { dir: dir.to_owned(), manifest, genesis, children })
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<Option<Child>>> {
        self.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The genesis the nodes run.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis file.
    pub fn genesis_file(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// The nodes, by index.
    pub fn nodes(&self) -> &[NodeEntry] {
        &self.manifest.nodes
    }

    /// Node `i`'s folder.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

    /// Node `i`'s log of its latest start.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join(format!("node.{}.log", self.manifest.nodes[i].starts.max(1)))
    }

    /// Node `i`'s reserved-peers file (`--reserved-peers-file`; absent: no restriction).
    pub fn reserved_peers_file(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("reserved-peers")
    }

    /// The keystore file of validator key `k` in node `i`'s folder, imported if needed.
    pub fn key_file(&self, i: usize, k: u32) -> anyhow::Result<PathBuf> {
        import_validator_key(&self.node_dir(i), k)
    }

    /// Adds a node (not started) holding validator keys `keys` (empty: a full node).
    pub fn add_node(&mut self, keys: Vec<u32>) -> anyhow::Result<usize> {
        self.push_node(NodeEntry { keys, rpc_port: 0, p2p_port: 0, bootnodes: None, starts: 0 })?;
        self.save()?;
        Ok(self.manifest.nodes.len() - 1)
    }

    /// Node `i` also holds validator key `k` from its next start on.
    pub fn add_key(&mut self, i: usize, k: u32) -> anyhow::Result<()> {
        self.key_file(i, k)?;
        if !self.manifest.nodes[i].keys.contains(&k) {
            self.manifest.nodes[i].keys.push(k);
        }
        self.save()
    }

    /// Node `i` starts from these bootnodes from its next start on.
    pub fn set_bootnodes(&mut self, i: usize, addrs: Vec<String>) -> anyhow::Result<()> {
        self.manifest.nodes[i].bootnodes = Some(addrs);
        self.save()
    }

    fn push_node(&mut self, entry: NodeEntry) -> anyhow::Result<()> {
        let i = self.manifest.nodes.len();
        let dir = self.node_dir(i);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::write(dir.join("password"), format!("{TESTNET_PASSWORD}\n"))?;
        for &k in &entry.keys {
            import_validator_key(&dir, k)?;
        }
        self.manifest.nodes.push(entry);
        self.children().push(None);
        Ok(())
    }

    fn save(&self) -> anyhow::Result<()> {
        let path = self.dir.join(MANIFEST);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(&self.manifest)? + "\n")?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The command line of node `i`'s next start.
    fn args(&self, i: usize) -> anyhow::Result<Vec<String>> {
        let node = &self.manifest.nodes[i];
        let dir = self.node_dir(i);
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut args = vec![
            "node".to_owned(),
            "--genesis".into(),
            path(self.genesis_file()),
            "--data-dir".into(),
            path(dir.join("data")),
            "--rpc-addr".into(),
            format!("127.0.0.1:{}", node.rpc_port),
            "--p2p-addr".into(),
            format!("127.0.0.1:{}", node.p2p_port),
            "--reserved-peers-file".into(),
            path(self.reserved_peers_file(i)),
            "--ready-file".into(),
            path(dir.join("ready.json")),
        ];
        if !node.keys.is_empty() {
            args.extend(["--password-file".into(), path(dir.join("password"))]);
        }
        for &k in &node.keys {
            args.extend(["--validator-key".into(), path(import_validator_key(&dir, k)?)]);
        }
        let bootnodes = match &node.bootnodes {
            Some(b) => b.clone(),
            None if i == 0 => Vec::new(),
            None => {
                let first = &self.manifest.nodes[0];
                if first.p2p_port == 0 {
                    bail!("node 0 has not started yet, so node {i} has no bootnode: start node 0 first");
                }
                vec![format!("127.0.0.1:{}", first.p2p_port)]
            }
        };
        for b in bootnodes {
            args.extend(["--bootnode".into(), b]);
        }
        Ok(args)
    }

    /// Starts node `i` (which must not be running) without waiting for it.
    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt as _;
        if self.pid(i).is_some() {
            bail!("node {i} is running already");
        }
        let args = self.args(i)?;
        let dir = self.node_dir(i);
        match fs::remove_file(dir.join("ready.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove node {i}'s old ready file"))
            }
            _ => {}
        }
        self.manifest.nodes[i].starts += 1;
        self.save()?;
        let log_path = self.log_path(i);
        let log = fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(&self.manifest.binary)
            .args(&args)
            .env("TAKSA_LOG", &self.manifest.log_filter)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the command that started it does not
            // reach the node.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot run {}", self.manifest.binary.display()))?;
        // The pid and the process's start time: a pid the kernel hands to another process later
        // does not match both.
        let start = start_time(child.id()).unwrap_or(0);
        let tmp = dir.join("pid.tmp");
        fs::write(&tmp, format!("{} {start}\n", child.id()))?;
        fs::rename(&tmp, dir.join("pid"))?;
        self.children()[i] = Some(child);
        Ok(())
    }

    /// Waits for node `i`'s ready file, and records the ports it picked.
    fn wait_ready(&mut self, i: usize, timeout: Duration) -> anyhow::Result<Ready> {
        let deadline = Instant::now() + timeout;
        let path = self.node_dir(i).join("ready.json");
        loop {
            // Only the file of this start: its pid is the process just spawned.
            if let Some(ready) = Ready::read(&path)?.filter(|r| Some(r.pid) == self.pid(i)) {
                let node = &mut self.manifest.nodes[i];
                node.rpc_port = ready.rpc_port().unwrap_or(node.rpc_port);
                node.p2p_port = ready.p2p_port().unwrap_or(node.p2p_port);
                self.save()?;
                return Ok(ready);
            }
            if self.pid(i).is_none() {
                let tail = self.log_tail(i, 20);
                let node = &self.manifest.nodes[i];
                let hint = if tail.contains("cannot serve JSON-RPC") || tail.contains("cannot start the p2p network") {
                    format!(
                        "\n(its port {} or {} is taken by another program: stop that, or edit the ports in {})",
                        node.rpc_port,
                        node.p2p_port,
                        self.dir.join(MANIFEST).display()
                    )
                } else {
                    String::new()
                };
                bail!("node {i} exited before it was ready; the end of its log:\n{tail}{hint}");
            }
            if Instant::now() >= deadline {
                bail!("node {i} was not ready within {timeout:?}; the end of its log:\n{}", self.log_tail(i, 20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `i` and waits until it serves.
    pub fn start(&mut self, i: usize) -> anyhow::Result<Ready> {
        self.spawn(i)?;
        self.wait_ready(i, READY_TIMEOUT)
    }

    /// Starts every node that is not running (node 0 first when the others need its port) and
    /// waits until all serve.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        let stopped: Vec<usize> = (0..self.manifest.nodes.len()).filter(|&i| self.pid(i).is_none()).collect();
        let mut waiting = Vec::new();
        for &i in &stopped {
            self.spawn(i)?;
            if i == 0 && self.manifest.nodes[0].p2p_port == 0 {
                self.wait_ready(0, READY_TIMEOUT)?;
            } else {
                waiting.push(i);
            }
        }
        for i in waiting {
            self.wait_ready(i, READY_TIMEOUT)?;
        }
        Ok(())
    }

    /// Node `i`'s process id while it runs (a process this value started, or the one its pid
    /// file names if that process still runs this node's command line).
    pub fn pid(&self, i: usize) -> Option<u32> {
        let mut children = self.children();
        if let Some(child) = &mut children[i] {
            return match child.try_wait() {
                Ok(None) => Some(child.id()),
                _ => {
                    children[i] = None;
                    None
                }
            };
        }
        drop(children);
        let (pid, start) = self.pid_file(i)?;
        is_ours(pid, start, &self.node_dir(i).join("data")).then_some(pid)
    }

    /// Node `i`'s ready file, while it runs.
    pub fn ready(&self, i: usize) -> Option<Ready> {
        let pid = self.pid(i)?;
        Ready::read(&self.node_dir(i).join("ready.json")).ok().flatten().filter(|r| r.pid == pid)
    }

    /// Node `i`'s RPC URL (from its recorded port, so also while it is stopped).
    pub fn rpc_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.manifest.nodes[i].rpc_port)
    }

    /// The pid file of node `i`'s latest start: pid and start time (0: unknown).
    fn pid_file(&self, i: usize) -> Option<(u32, u64)> {
        let text = fs::read_to_string(self.node_dir(i).join("pid")).ok()?;
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let start = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        Some((pid, start))
    }

    /// SIGKILL: a crash. Returns whether it is gone (it was not running, or it stopped within
    /// 10 s).
    pub fn kill(&self, i: usize) -> bool {
        let child = self.children()[i].take();
        if let Some(mut child) = child {
            let _ = child.kill();
            return child.wait().is_ok();
        }
        let Some(pid) = self.pid(i) else { return true };
        signal(pid, Signal::SIGKILL);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.pid(i).is_some() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s. Returns whether it stopped cleanly.
    pub fn stop(&self, i: usize) -> bool {
        let Some(pid) = self.pid(i) else { return true };
        signal(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.pid(i).is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill(i);
        false
    }

    /// Stops node `i` (SIGKILL) and deletes its chain data, keeping its keys and identity: its
    /// next start syncs from genesis.
    pub fn wipe(&self, i: usize) -> anyhow::Result<()> {
        if !self.kill(i) {
            bail!("node {i} did not stop: its data is left alone");
        }
        let data = self.node_dir(i).join("data");
        match fs::remove_dir_all(&data) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot delete {}", data.display()))
            }
            _ => Ok(()),
        }
    }

    /// The last `n` lines of node `i`'s latest log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let log = fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Imports validator key `k` of the testnet mnemonic into `dir/keystore` (if not there yet) and
/// returns its file.
fn import_validator_key(dir: &Path, k: u32) -> anyhow::Result<PathBuf> {
    let keystore = Keystore::new(dir.join("keystore"));
    let name = format!("validator-{k}");
    let file = keystore.file_of(&name)?;
    if !file.exists() {
        let key = devnet::testnet_validator_key(k);
        let path = DerivationPath::validator(k).to_string();
        keystore.create(&name, &key, Some(&path), devnet::TESTNET_HRP, TESTNET_PASSWORD, TESTNET_KDF)?;
    }
    Ok(file)
}

/// Whether `pid` is the node started with this start time (0: not recorded) whose command line
/// names `data`: a recycled pid, or another program, is not ours.
fn is_ours(pid: u32, start: u64, data: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = fs::read_to_string(proc.join("stat")) else { return false };
    // The fields after the command name (which may hold spaces and parentheses).
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // A zombie has exited; its parent has not reaped it yet.
    if fields.first() == Some(&"Z") {
        return false;
    }
    // Field 22 of /proc/PID/stat, the start time; the 20th after the command name.
    if start != 0 && fields.get(19).and_then(|f| f.parse::<u64>().ok()) != Some(start) {
        return false;
    }
    let Ok(cmdline) = fs::read(proc.join("cmdline")) else { return false };
    let want = data.to_string_lossy();
    cmdline.split(|&b| b == 0).any(|arg| arg == want.as_bytes())
}

/// The start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // The pid was checked to be this testnet's node just before; a failure (it exited
        // meanwhile) is seen by the caller, which checks again.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// The first port at or above `from` that is free on 127.0.0.1 and not in `taken`.
fn free_port_from(from: u16, taken: &[u16]) -> anyhow::Result<u16> {
    (from..=u16::MAX)
        .filter(|p| !taken.contains(p))
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .with_context(|| format!("no free port at or above {from}"))
}
