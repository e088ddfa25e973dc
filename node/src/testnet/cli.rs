//! `taksa testnet`: a local network of validators (and full nodes) on 127.0.0.1, from the public
//! testnet genesis, in one folder.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

use super::{Options, Testnet};
use crate::wallet::amount::format_tks;

/// The demo's transfer: 1.5 TKS.
const DEMO_AMOUNT: u128 = 1_500_000_000;

/// `taksa testnet`.
#[derive(Args, Debug)]
pub(crate) struct TestnetArgs {
    /// The testnet's folder: its genesis, the nodes' data, keys and logs.
    #[arg(long, global = true, env = "TAKSA_TESTNET_DIR", default_value_os_t = default_dir())]
    dir: PathBuf,
    #[command(subcommand)]
    command: TestnetCommand,
}

#[derive(Subcommand, Debug)]
enum TestnetCommand {
    /// Create the testnet's folder (genesis, validator keys, ports) without starting it.
    Init(InitArgs),
    /// Start every node that is not running (creating the testnet first if the folder has none),
    /// wait until each serves and the chain finalizes, then show the status.
    Up(InitArgs),
    /// One line per node: role, pid, heights, head, peers, view, RPC URL.
    Status,
    /// SIGKILL node I: a crash.
    Kill {
        /// The node's index.
        node: usize,
    },
    /// Start node I again (stopping it first if it runs) and wait until it serves.
    Restart {
        /// The node's index.
        node: usize,
    },
    /// Stop node I and delete its chain data (its keys stay): `restart I` then syncs it from
    /// genesis.
    Wipe {
        /// The node's index.
        node: usize,
    },
    /// The end of node I's log (its latest start).
    Logs {
        /// The node's index.
        node: usize,
        /// How many lines.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        /// Keep printing what the node logs (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Send 1.5 TKS through different nodes (one transfer through each running node, at most
    /// five, at least two), wait until each is final, and check that every running node holds
    /// the same block and balances.
    Demo,
    /// Stop every node (SIGTERM, then SIGKILL after 10 s). The folder stays, so `up` resumes the
    /// chain.
    Down {
        /// Delete the folder too.
        #[arg(long)]
        delete: bool,
    },
}

#[derive(Args, Debug)]
struct InitArgs {
    /// Validators: keys 0..N of the published testnet mnemonic.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Full nodes besides the validators.
    #[arg(long, default_value_t = 0)]
    full: usize,
    /// Another genesis with the testnet's keys [default: the embedded testnet genesis, which
    /// is the checkout's genesis.json].
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Another block time, in milliseconds (the genesis's is 1000).
    #[arg(long)]
    block_time_ms: Option<u64>,
    /// The first RPC port tried: node I gets the first free one from here on.
    #[arg(long, env = "TAKSA_TESTNET_RPC_PORT", default_value_t = 8600)]
    rpc_port: u16,
    /// The first p2p port tried.
    #[arg(long, env = "TAKSA_TESTNET_P2P_PORT", default_value_t = 30400)]
    p2p_port: u16,
    /// The nodes' log filter (TAKSA_LOG).
    #[arg(long, env = "TAKSA_TESTNET_LOG", default_value = "info")]
    log: String,
    /// How long `up` waits for the chain to finalize, in seconds.
    #[arg(long, env = "TAKSA_TESTNET_TIMEOUT", default_value_t = 60)]
    timeout_s: u64,
}

fn default_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".taksa/testnet"), |h| PathBuf::from(h).join(".taksa/testnet"))
}

/// Runs `taksa testnet …`.
pub(crate) async fn run(args: TestnetArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir).context("the testnet folder")?;
    match args.command {
        TestnetCommand::Init(init) => {
            let net = tokio::task::block_in_place(|| Testnet::init(&dir, &options(&init)?))?;
            println!(
                "testnet: created {} ({} nodes); start it with taksa testnet up",
                dir.display(),
                net.nodes().len()
            );
            Ok(())
        }
        TestnetCommand::Up(init) => up(&dir, &init).await,
        TestnetCommand::Status => {
            let net = Testnet::open(&dir)?;
            print_status(&net).await;
            Ok(())
        }
        TestnetCommand::Kill { node } => {
            let net = open_node(&dir, node)?;
            match net.pid(node) {
                Some(pid) => {
                    if !net.kill(node) {
                        bail!("node {node} (pid {pid}) is still running 10 s after SIGKILL");
                    }
                    println!(
                        "testnet: node {node} (pid {pid}) killed; start it again with taksa testnet restart {node}"
                    );
                }
                None => println!("testnet: node {node} is not running"),
            }
            Ok(())
        }
        TestnetCommand::Restart { node } => {
            let mut net = open_node(&dir, node)?;
            let ready = tokio::task::block_in_place(|| {
                if !net.stop(node) {
                    eprintln!("testnet: node {node} did not stop within 10 s of SIGTERM; killed it");
                }
                net.start(node)
            })?;
            println!("testnet: node {node} serves on {} (pid {})", ready.rpc_url, ready.pid);
            Ok(())
        }
        TestnetCommand::Wipe { node } => {
            let net = open_node(&dir, node)?;
            net.wipe(node)?;
            println!(
                "testnet: node {node} stopped and its chain data deleted; taksa testnet restart {node} syncs it from genesis"
            );
            Ok(())
        }
        TestnetCommand::Logs { node, lines, follow } => {
            let net = open_node(&dir, node)?;
            println!("{}", net.log_tail(node, lines));
            if follow {
                follow_log(&net.log_path(node)).await?;
            }
            Ok(())
        }
        TestnetCommand::Demo => {
            let net = Testnet::open(&dir)?;
            let hrp = net.genesis().address_hrp.clone();
            let report = net.demo(DEMO_AMOUNT).await?;
            for (i, hash, height) in &report.transfers {
                println!("testnet: {} TKS via node {i}: {hash} final at height {height}", format_tks(DEMO_AMOUNT));
            }
            let to = taksa_consensus::Address(crate::devnet::testnet_account(1).public()).to_bech32(&hrp);
            println!(
                "testnet: nodes {:?} agree at height {}: block {}, {to} holds {} TKS",
                report.nodes,
                report.height,
                report.hash,
                format_tks(report.balance)
            );
            println!("testnet: demo ok");
            Ok(())
        }
        TestnetCommand::Down { delete } => {
            let net = match Testnet::open(&dir) {
                Ok(net) => net,
                Err(_) if delete && !dir.exists() => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut stopped = 0;
            tokio::task::block_in_place(|| {
                for i in 0..net.nodes().len() {
                    if net.pid(i).is_some() {
                        if !net.stop(i) {
                            eprintln!("testnet: node {i} did not stop within 10 s of SIGTERM; killed it");
                        }
                        stopped += 1;
                    }
                }
            });
            println!("testnet: stopped {stopped} node(s) of {}", dir.display());
            if let Some(i) = (0..net.nodes().len()).find(|&i| net.pid(i).is_some()) {
                bail!("node {i} is still running: {} is left in place", dir.display());
            }
            if delete {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot delete {}", dir.display()))?;
                println!("testnet: deleted {}", dir.display());
            }
            Ok(())
        }
    }
}

fn options(init: &InitArgs) -> anyhow::Result<Options> {
    Ok(Options {
        validators: init.validators,
        full: init.full,
        genesis: init.genesis.clone(),
        block_time_ms: init.block_time_ms,
        epoch_length_blocks: None,
        ports: Some((init.rpc_port, init.p2p_port)),
        binary: std::env::current_exe().context("cannot find this taksa binary")?,
        log_filter: init.log.clone(),
    })
}

fn open_node(dir: &std::path::Path, node: usize) -> anyhow::Result<Testnet> {
    let net = Testnet::open(dir)?;
    if node >= net.nodes().len() {
        bail!("the testnet has nodes 0 to {}; there is no node {node}", net.nodes().len() - 1);
    }
    Ok(net)
}

async fn up(dir: &std::path::Path, init: &InitArgs) -> anyhow::Result<()> {
    let mut net = if dir.join(super::MANIFEST).exists() {
        println!(
            "testnet: resuming {} (its nodes, genesis and ports are kept; init options are not applied)",
            dir.display()
        );
        Testnet::open(dir)?
    } else {
        println!("testnet: creating {} ({} validators, {} full nodes)", dir.display(), init.validators, init.full);
        tokio::task::block_in_place(|| Testnet::init(dir, &options(init)?))?
    };
    // The nodes run the binary that created the testnet; a rebuilt one at the same path is fine.
    let total = net.nodes().len();
    println!("testnet: starting the nodes that are not running");
    tokio::task::block_in_place(|| net.start_all())
        .context("the testnet did not start; `taksa testnet down` stops the nodes that did")?;
    let all: Vec<usize> = (0..total).collect();
    net.wait_finalized(&all, 1, Duration::from_secs(init.timeout_s)).await.with_context(|| {
        let tails: String = (0..total).map(|i| format!("\n--- node {i} ---\n{}", net.log_tail(i, 10))).collect();
        format!(
            "the testnet did not finalize a block; the ends of the logs:{tails}\n(`taksa testnet down` stops the nodes)"
        )
    })?;
    print_status(&net).await;
    let url = net.rpc_url(0);
    println!("\nThe keys are the PUBLISHED testnet mnemonic's: never use them for real money.");
    println!("  taksa wallet --rpc {url} balance <address>       # any node's RPC URL works");
    println!("  taksa testnet demo | status | logs I | kill I | restart I | down");
    Ok(())
}

async fn print_status(net: &Testnet) {
    let rows = net.status().await;
    println!("Taksa testnet in {}", net.dir().display());
    println!(
        "{:<4} {:<9} {:<16} {:>7} {:>7} {:<14} {:>5} {:>6}  RPC URL",
        "node", "role", "state", "height", "final", "head", "peers", "view"
    );
    let mut stopped = Vec::new();
    for r in rows {
        let state = match (r.pid, &r.chain) {
            (Some(pid), Some(_)) => format!("running {pid}"),
            (Some(pid), None) => format!("running {pid} (RPC silent)"),
            (None, _) => {
                stopped.push(r.index);
                "stopped".to_owned()
            }
        };
        let (head, fin, hash, peers, view) = match &r.chain {
            Some((h, f, hash, p, v)) => (
                h.to_string(),
                f.to_string(),
                format!("{}..", &hash[..hash.len().min(12)]),
                p.to_string(),
                v.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<4} {:<9} {:<16} {:>7} {:>7} {:<14} {:>5} {:>6}  {}",
            r.index, r.role, state, head, fin, hash, peers, view, r.rpc_url
        );
    }
    if !stopped.is_empty() {
        println!("stopped: {stopped:?} (start one with taksa testnet restart I, all with taksa testnet up)");
    }
}

/// Prints what is appended to `path` until Ctrl-C.
async fn follow_log(path: &std::path::Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.seek(std::io::SeekFrom::End(0))?;
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        buf.clear();
        file.read_to_end(&mut buf)?;
        std::io::stdout().write_all(&buf)?;
        std::io::stdout().flush()?;
    }
}
