//! Starting and stopping a node: `taksa dev` and `taksa node`.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{bail, Context as _};
use taksa_consensus::{Genesis, Keypair, Rules};
use taksa_storage::Store;

use crate::backend::{NodeBackend, TOKEN_DECIMALS, TOKEN_SYMBOL};
use crate::chain::{Alone, Chain, ChainMsg, Shared};
use crate::cli::{CommonArgs, DevArgs, NodeArgs};
use crate::mempool::{Limits, Mempool};
use crate::{devnet, wallet};

/// `taksa dev`: a one-validator chain from the embedded dev genesis.
pub(crate) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    init_logs(args.common.log_json);
    if args.reset && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot remove {} for --reset", args.data_dir.display()))?;
    }
    let genesis = devnet::dev_genesis(args.block_time_ms);
    let key = devnet::dev_validator_key();
    let banner = dev_banner(&genesis);
    let hint = "a dev chain's genesis depends on --block-time-ms: start with the same value, or add --reset \
                to start a fresh dev chain in this --data-dir";
    run_node(genesis, Some(key), &args.data_dir, &args.common, Some(banner), Some(hint)).await
}

/// `taksa node`: a validator (with a key) or a full node.
pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    init_logs(args.common.log_json);
    let text = std::fs::read_to_string(&args.genesis)
        .with_context(|| format!("cannot read the genesis file {}", args.genesis.display()))?;
    let genesis = Genesis::from_json(&text).with_context(|| format!("in {}", args.genesis.display()))?;
    let key = match &args.validator_key {
        Some(path) => {
            let password = wallet::keystore::read_password(args.password_file.as_deref(), false)?;
            Some(wallet::keystore::load_keypair(path, &password)?)
        }
        None => None,
    };
    if genesis.validators.len() > 1 || args.p2p_addr.is_some() || !args.bootnode.is_empty() {
        bail!(
            "this genesis has {} validators, but this build has no peer-to-peer networking yet \
             (the validator network is the next milestone); use a single-validator genesis or `taksa dev`",
            genesis.validators.len()
        );
    }
    if let Some(k) = &key {
        if genesis.validator_set().index_of(&taksa_consensus::Address(k.public())).is_none() {
            bail!("the key in {:?} is not a validator of this genesis", args.validator_key);
        }
    }
    run_node(genesis, key, &args.data_dir, &args.common, None, None).await
}

async fn run_node(
    genesis: Genesis,
    key: Option<Keypair>,
    data_dir: &Path,
    common: &CommonArgs,
    banner: Option<String>,
    open_hint: Option<&str>,
) -> anyhow::Result<()> {
    let store = match Store::open(data_dir, &genesis) {
        Ok(store) => store,
        Err(e @ taksa_storage::StorageError::GenesisMismatch { .. }) if open_hint.is_some() => {
            return Err(anyhow::Error::new(e).context(open_hint.unwrap_or_default().to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    let genesis_hash = genesis.hash();
    let rules = Rules { chain_id: genesis.chain_id.clone(), genesis_hash, fee_floor: genesis.fee_floor };
    let block_time_ms = genesis.block_time_ms;
    let head = store.head();
    tracing::info!(target: "storage", path = %data_dir.display(), height = head.height, hash = %head.hash(), "opened chain data");
    let shared = Arc::new(Shared {
        genesis,
        genesis_hash,
        rules,
        store,
        mempool: Mutex::new(Mempool::new(Limits::default())),
        evidence: RwLock::new(Vec::new()),
    });
    let (chain, inbox) = Chain::new(shared.clone(), key, Box::new(Alone), block_time_ms)?;
    let chain_thread = std::thread::Builder::new().name("chain".into()).spawn(move || chain.run())?;

    let rpc_config = taksa_rpc::Config::new(common.rpc_addr);
    let server =
        taksa_rpc::start(rpc_config, Arc::new(NodeBackend { shared: shared.clone() })).await.with_context(|| {
            format!("cannot serve JSON-RPC on {} (is another node using it? pick --rpc-addr)", common.rpc_addr)
        })?;
    let url = format!("http://{}", server.local_addr);
    tracing::info!(target: "rpc", %url, "JSON-RPC listening (HTTP and WebSocket)");
    if let Some(b) = banner {
        println!("{}", b.replace("{RPC_URL}", &url));
    }

    let stop_reason = tokio::select! {
        r = shutdown_signal() => r,
        () = wait_thread(&chain_thread) => "the chain service stopped",
    };
    tracing::info!(target: "node", reason = stop_reason, "shutting down");
    let _ = inbox.try_send(ChainMsg::Shutdown);
    let _ = server.stop();
    let result = tokio::task::spawn_blocking(move || chain_thread.join()).await;
    match result {
        Ok(Ok(Ok(()))) => {
            tracing::info!(target: "node", "stopped cleanly");
            Ok(())
        }
        Ok(Ok(Err(e))) => {
            Err(e.context("the chain service failed; the data on disk is consistent up to the last committed block"))
        }
        _ => bail!("the chain service panicked"),
    }
}

async fn wait_thread(t: &std::thread::JoinHandle<anyhow::Result<()>>) {
    while !t.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
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

fn dev_banner(genesis: &Genesis) -> String {
    let mut s = String::new();
    s.push_str("\nTaksa dev chain\n");
    s.push_str("  RPC URL:      {RPC_URL}  (HTTP and WebSocket)\n");
    s.push_str(&format!("  chain id:     {}\n", genesis.chain_id));
    s.push_str(&format!("  genesis hash: {}\n", genesis.hash()));
    s.push_str(&format!("  block time:   {} ms, fee floor {} base units\n", genesis.block_time_ms, genesis.fee_floor));
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
    let filter = EnvFilter::try_from_env("TAKSA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
