//! Starting and stopping a node: `taksa dev` and `taksa node`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use taksa_consensus::{Genesis, Keypair};
use taksa_storage::Store;

use crate::backend::{NodeBackend, TOKEN_DECIMALS, TOKEN_SYMBOL};
use crate::chain::{Alone, Chain, ChainMsg, Network, Shared, INBOX_MAX};
use crate::cli::{CommonArgs, DevArgs, NodeArgs};
use crate::network::{self, P2pNetwork, PeerIds, Rejections};
use crate::supervise::Supervisor;
use crate::{devnet, reserved, wallet};

/// `taksa dev`: a one-validator chain from the embedded dev genesis.
pub(crate) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    init_logs(args.common.log_json);
    if args.reset && args.data_dir.exists() {
        // Only a Taksa data folder: `--reset --data-dir ~` must not delete a home folder.
        Store::check_resettable(&args.data_dir).context("--reset deletes only a Taksa data folder")?;
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot remove {} for --reset", args.data_dir.display()))?;
    }
    let genesis = devnet::dev_genesis(args.block_time_ms);
    let key = devnet::dev_validator_key();
    let dev = Dev {
        banner: dev_banner(&genesis, args.instant),
        open_hint: "a dev chain's genesis depends on --block-time-ms: start with the same value, or add --reset \
                    to start a fresh dev chain in this --data-dir",
        instant: args.instant,
    };
    run_node(genesis, vec![key], &args.data_dir, &args.common, None, Some(dev)).await
}

/// `taksa node`: a validator (with a key) or a full node, on the peer-to-peer network.
pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    init_logs(args.common.log_json);
    let text = std::fs::read_to_string(&args.genesis)
        .with_context(|| format!("cannot read the genesis file {}", args.genesis.display()))?;
    let genesis = Genesis::from_json(&text).with_context(|| format!("in {}", args.genesis.display()))?;
    let mut keys = Vec::new();
    if !args.validator_key.is_empty() {
        let password = wallet::keystore::read_password(args.password_file.as_deref(), false)?;
        for path in &args.validator_key {
            keys.push(wallet::keystore::load_keypair(path, &password)?);
        }
    }
    for (k, path) in keys.iter().zip(&args.validator_key) {
        if genesis.validator_set().index_of(&taksa_consensus::Address(k.public())).is_none() {
            // A validator added by vote, or a key rotated to, is in no genesis: this node
            // signs with it in the epochs whose set, changed by the validators' votes, holds it.
            tracing::warn!(
                target: "consensus",
                key = %taksa_consensus::Address(k.public()).to_bech32(&genesis.address_hrp),
                file = %path.display(),
                "the validator key is not in the genesis set: this node votes with it only in epochs whose set, \
                 changed by the validators' votes, holds it (`taksa validator votes`)"
            );
        }
    }
    let mut priority_peers = Vec::with_capacity(args.priority_peer.len());
    for peer in &args.priority_peer {
        priority_peers.push(peer.parse().with_context(|| format!("--priority-peer {peer}"))?);
    }
    let p2p = P2pArgs {
        listen_addr: args.p2p_addr.clone(),
        bootnodes: args.bootnode.clone(),
        reserved_peers_file: args.reserved_peers_file.clone(),
        priority_peers,
        inbound_max: args.p2p_inbound_max,
        outbound_max: args.p2p_outbound_max,
        inbound_per_ip_max: args.p2p_inbound_per_ip_max,
    };
    run_node(genesis, keys, &args.data_dir, &args.common, Some(p2p), None).await
}

/// What only the dev chain has: its banner (with `{RPC_URL}` to fill in), the hint for a data
/// folder of another dev genesis, and `--instant`.
struct Dev {
    banner: String,
    open_hint: &'static str,
    instant: bool,
}

/// Where to listen, whom to ask first, where the reserved peers are listed, who else has
/// priority, and the connection limits (the network's defaults where not given).
struct P2pArgs {
    listen_addr: String,
    bootnodes: Vec<String>,
    reserved_peers_file: Option<std::path::PathBuf>,
    priority_peers: Vec<taksa_p2p::PeerId>,
    inbound_max: Option<usize>,
    outbound_max: Option<usize>,
    inbound_per_ip_max: Option<usize>,
}

/// The node's libp2p identity: a random ed25519 seed kept in the data folder, so its peer id
/// stays the same across restarts (peers and bootnode lists name it).
fn p2p_identity(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join("p2p-identity.key");
    match std::fs::read(&path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key: delete it to get a new peer id", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            std::fs::create_dir_all(data_dir)?;
            write_private(&path, &seed).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(seed)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

async fn run_node(
    genesis: Genesis,
    keys: Vec<Keypair>,
    data_dir: &Path,
    common: &CommonArgs,
    p2p_args: Option<P2pArgs>,
    dev: Option<Dev>,
) -> anyhow::Result<()> {
    let options = taksa_storage::StoreOptions {
        cache_bytes: common.state_cache_mb.saturating_mul(1024 * 1024),
        history_blocks: common.state_history_blocks,
    };
    let store = match Store::open_with(data_dir, &genesis, options) {
        Ok(store) => store,
        Err(e @ taksa_storage::StorageError::GenesisMismatch { .. }) if dev.is_some() => {
            return Err(anyhow::Error::new(e).context(dev.as_ref().map_or("", |d| d.open_hint)));
        }
        Err(e) => return Err(e.into()),
    };
    let head = store.head();
    tracing::info!(target: "storage", path = %data_dir.display(), height = head.height, hash = %head.hash(), "opened chain data");
    let validator = keys.first().map(|k| taksa_consensus::Address(k.public()));
    let (mut shared, actor_ends) = Shared::new(genesis, store, validator);
    let mut sup = Supervisor::new();
    let (inbox_tx, inbox_rx) = crossbeam_channel::bounded(INBOX_MAX);
    let mut network: Box<dyn Network> = Box::new(Alone);
    let mut p2p_events = None;
    if let Some(args) = p2p_args {
        let mut config = taksa_p2p::Config::new(
            args.listen_addr.clone(),
            shared.genesis.chain_id.clone(),
            shared.genesis_hash,
            p2p_identity(data_dir)?,
        );
        config.bootnodes = args.bootnodes;
        config.priority_peers = args.priority_peers;
        config.inbound_connections_max = args.inbound_max.unwrap_or(config.inbound_connections_max);
        config.outbound_connections_max = args.outbound_max.unwrap_or(config.outbound_connections_max);
        config.inbound_peers_per_ip_max = args.inbound_per_ip_max.unwrap_or(config.inbound_peers_per_ip_max);
        // Read before the network starts, so that no other peer gets in meanwhile.
        let watcher = match args.reserved_peers_file {
            Some(path) => Some(reserved::Watcher::load(path).await?),
            None => None,
        };
        config.reserved = watcher.as_ref().and_then(reserved::Watcher::reserved);
        let (handle, events) = taksa_p2p::start(config).await.with_context(|| {
            format!("cannot start the p2p network on {} (is another node using it? pick --p2p-addr)", args.listen_addr)
        })?;
        if let Some(watcher) = watcher {
            let handle = handle.clone();
            sup.spawn_critical("reserved-peers", async move {
                watcher.run(handle).await;
                Ok(())
            });
        }
        let addrs = handle.listen_addrs().await;
        for addr in &addrs {
            tracing::info!(target: "p2p", %addr, "p2p listening");
        }
        shared.listen_addrs = addrs;
        let rejections = Arc::new(Rejections::default());
        let peer_ids = Arc::new(std::sync::Mutex::new(PeerIds::default()));
        network = Box::new(P2pNetwork {
            handle: handle.clone(),
            runtime: tokio::runtime::Handle::current(),
            inbox: inbox_tx.clone(),
            rejections: rejections.clone(),
            peer_ids: peer_ids.clone(),
        });
        shared.p2p = Some(handle.clone());
        // The network's sync task owns the peer list; everyone else reads it.
        let (peers_view, peers) = tokio::sync::watch::channel(Arc::from(Vec::new()));
        shared.peers = peers;
        p2p_events = Some((handle, events, rejections, peer_ids, peers_view));
    }
    let shared = Arc::new(shared);
    if let Some((handle, events, rejections, peer_ids, peers_view)) = p2p_events {
        let route = network::route(shared.clone(), handle.clone(), events, inbox_tx.clone(), rejections.clone());
        sup.spawn_critical("network-gossip", async move {
            route.await;
            Ok(())
        });
        let sync = network::sync(shared.clone(), handle, inbox_tx.clone(), peer_ids, peers_view);
        let flush = network::flush_tx_gossip(shared.clone());
        sup.spawn_critical("tx-gossip", async move {
            flush.await;
            Ok(())
        });
        sup.spawn_critical("network-sync", async move {
            sync.await;
            Ok(())
        });
    }
    let on_demand = dev.as_ref().is_some_and(|d| d.instant);
    let chain = Chain::new(shared.clone(), keys, on_demand, network, inbox_rx, actor_ends)?;
    sup.spawn_critical_thread(CHAIN_TASK, move || chain.run())?;

    let rpc_config = taksa_rpc::Config {
        send_buffer_bytes: common.rpc_send_buffer_bytes,
        ws_per_ip_max: common.rpc_ws_per_ip_max,
        ws_ping_interval_ms: common.rpc_ws_ping_interval_ms,
        ws_inactive_ms: common.rpc_ws_inactive_ms,
        idle_timeout_ms: common.rpc_idle_timeout_ms,
        access: taksa_rpc::AccessConfig {
            allowed_hosts: common.rpc_allowed_hosts.clone(),
            cors_origins: common.rpc_cors.clone(),
        },
        ..taksa_rpc::Config::new(common.rpc_addr)
    };
    let server =
        taksa_rpc::start(rpc_config, Arc::new(NodeBackend { shared: shared.clone() })).await.with_context(|| {
            format!("cannot serve JSON-RPC on {} (is another node using it? pick --rpc-addr)", common.rpc_addr)
        })?;
    let url = format!("http://{}", server.local_addr);
    tracing::info!(target: "rpc", %url, "JSON-RPC listening (HTTP and WebSocket)");
    if let Some(d) = &dev {
        println!("{}", d.banner.replace("{RPC_URL}", &url));
    } else {
        println!("{}", node_banner(&shared, &url));
    }
    if let Some(path) = &common.ready_file {
        let ready = crate::testnet::Ready {
            pid: std::process::id(),
            rpc_url: url.clone(),
            p2p_addrs: shared.listen_addrs.clone(),
            chain_id: shared.genesis.chain_id.clone(),
            genesis_hash: shared.genesis_hash.to_string(),
        };
        // A node that cannot say it is ready still serves: whoever waits on the file times out
        // and reads this in the log.
        if let Err(e) = ready.write(path) {
            tracing::error!(target: "node", error = %format!("{e:#}"), "could not write the ready file");
        }
    }

    let rpc_stopped = server.stopped();
    sup.spawn_critical("rpc", async move {
        rpc_stopped.await;
        Ok(())
    });

    // Runs until a signal, or until a critical task stops: the node does not run on without one.
    let first_exit = tokio::select! {
        reason = shutdown_signal() => {
            tracing::info!(target: "node", reason, "shutting down");
            None
        }
        exit = sup.next_exit() => Some(exit),
    };
    shared.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(path) = &common.ready_file {
        // Only our own: a node started since on the same file keeps its.
        if crate::testnet::Ready::read(path).ok().flatten().is_some_and(|r| r.pid == std::process::id()) {
            let _ = std::fs::remove_file(path);
        }
    }
    let _ = inbox_tx.try_send(ChainMsg::Shutdown);
    let _ = server.stop();
    if let Some(p2p) = &shared.p2p {
        p2p.shutdown().await;
    }
    let (first_task, mut first_result) = match first_exit {
        Some(exit) => (Some(exit.task), Some(exit.result)),
        None => (None, None),
    };
    let chain_exit = if first_task == Some(CHAIN_TASK) { first_result.take() } else { wait_chain(&mut sup).await };
    let height = shared.store.head().height;
    if let Some(Err(e)) = chain_exit {
        return Err(e.context(format!(
            "the chain service failed; the data on disk is consistent up to height {height}, where it restarts"
        )));
    }
    if let Some(task) = first_task {
        let reason = match first_result {
            Some(Err(e)) => format!("{e:#}"),
            _ => "it returned".to_owned(),
        };
        tracing::error!(target: "node", task, %reason, "a critical task stopped; the node stops");
        bail!(
            "the node's {task} task stopped ({reason}), so the node stopped; the data on disk is consistent up to \
             height {height}, where it restarts"
        );
    }
    if chain_exit.is_none() {
        bail!("the chain service did not stop within {} s", CHAIN_STOP_WAIT.as_secs());
    }
    // Everything is durable in the write-ahead log already; writing it into tables now leaves
    // the folder compact and the next start with nothing to replay.
    let flushed = std::time::Instant::now();
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.flush().map_err(|e| e.to_string())).await {
        Ok(Ok(())) => tracing::debug!(target: "storage", ms = flushed.elapsed().as_millis(), "flushed memtables"),
        Ok(Err(e)) => {
            tracing::warn!(target: "storage", error = %e, "could not flush memtables; the next start replays the log")
        }
        Err(e) => {
            tracing::warn!(target: "storage", error = %e, "the flush task failed; the next start replays the log")
        }
    }
    tracing::info!(target: "node", height, "stopped cleanly");
    Ok(())
}

/// The chain thread's critical task name.
const CHAIN_TASK: &str = "chain";
/// How long the node waits for the chain thread to finish its step at shutdown.
const CHAIN_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits for the chain thread to stop (other critical tasks stop meanwhile as the node shuts
/// down); `None` if it does not within [`CHAIN_STOP_WAIT`].
async fn wait_chain(sup: &mut Supervisor) -> Option<anyhow::Result<()>> {
    let wait = async {
        loop {
            let exit = sup.next_exit().await;
            if exit.task == CHAIN_TASK {
                return exit.result;
            }
        }
    };
    tokio::time::timeout(CHAIN_STOP_WAIT, wait).await.ok()
}

async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => "interrupt",
            () = term => "terminate signal",
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c.await;
        "interrupt"
    }
}

/// What `taksa node` prints once it serves: the addresses a wallet, a script or another node's
/// `--bootnode` need.
fn node_banner(shared: &Shared, url: &str) -> String {
    let g = &shared.genesis;
    let role = match &shared.validator {
        Some(a) => format!("validator {}", a.to_bech32(&g.address_hrp)),
        None => "full node (no validator key)".to_owned(),
    };
    let mut s = format!("\nTaksa node: {role}\n");
    s.push_str(&format!("  chain id:     {} ({} validators)\n", g.chain_id, g.validators.len()));
    s.push_str(&format!("  genesis hash: {}\n", shared.genesis_hash));
    s.push_str(&format!("  RPC URL:      {url}  (HTTP and WebSocket)\n"));
    for addr in &shared.listen_addrs {
        s.push_str(&format!("  p2p address:  {addr}\n"));
    }
    s
}

fn dev_banner(genesis: &Genesis, instant: bool) -> String {
    let mut s = String::new();
    s.push_str("\nTaksa dev chain\n");
    s.push_str("  RPC URL:      {RPC_URL}  (HTTP and WebSocket)\n");
    s.push_str(&format!("  chain id:     {}\n", genesis.chain_id));
    s.push_str(&format!("  genesis hash: {}\n", genesis.hash()));
    if instant {
        s.push_str(&format!(
            "  blocks:       instant (one as soon as transactions wait, none while idle), fee floor {} base units\n",
            genesis.fee_floor
        ));
    } else {
        s.push_str(&format!(
            "  block time:   {} ms, fee floor {} base units\n",
            genesis.block_time_ms, genesis.fee_floor
        ));
    }
    s.push_str("\n  Dev mnemonic (PUBLIC, UNSAFE: never use it for real money):\n");
    s.push_str(&format!("    {}\n\n  Funded accounts (m/44'/7331'/i'/0'):\n", devnet::DEV_MNEMONIC));
    let unit = 10u128.pow(u32::from(TOKEN_DECIMALS));
    for i in 0..10u32 {
        let addr = taksa_consensus::Address(devnet::dev_account(i).public());
        let bal = genesis.allocations.iter().find(|(a, _)| *a == addr).map_or(0, |(_, b)| *b);
        s.push_str(&format!("    ({i}) {}  {} {TOKEN_SYMBOL}\n", addr.to_bech32(&genesis.address_hrp), bal / unit));
    }
    s.push_str("\n  Import one:  echo \"<mnemonic>\" | taksa wallet import --name dev0 --index 0\n");
    s
}

fn init_logs(json: bool) {
    use tracing_subscriber::EnvFilter;
    let mut spec = std::env::var("TAKSA_LOG").unwrap_or_else(|_| "info".to_owned());
    if !spec.contains("libp2p") {
        // libp2p warns about routine events (a duplicate publish, a bootstrap before any peer);
        // our own `p2p` target reports what an operator must know.
        spec.push_str(",libp2p_gossipsub=error,libp2p_kad=error");
    }
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
