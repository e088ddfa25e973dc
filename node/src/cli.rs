//! The command line: `taksa dev | node | wallet | bench`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{bench, bench_chain, bench_state, bench_tree, db_tools, export, receipt_cmd, run, validator_cmd, wallet};

/// Taksa: a proof-of-authority BFT chain with an embedded wallet.
#[derive(Parser, Debug)]
#[command(name = "taksa", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a local single-validator dev chain with funded, publicly known test accounts.
    ///
    /// The dev mnemonic and its accounts are printed at start; they are public: never use them
    /// for real money. Data persists in --data-dir across restarts (use --reset to start over).
    Dev(DevArgs),
    /// Run a validator or full node from a genesis file.
    Node(NodeArgs),
    /// Create, import and use wallets (keys stay encrypted on this machine; the node never
    /// sees them).
    Wallet(wallet::cli::WalletArgs),
    /// Drive a running node with many pre-signed transfers and print throughput and latency.
    Bench(bench::BenchArgs),
    /// Measure how many ed25519 signatures this machine verifies per second, in batches on every
    /// core and one at a time: the ceiling of a node's throughput here.
    BenchVerify(bench::VerifyArgs),
    /// Write a long dev chain of empty finalized blocks into a data folder, for the restart and
    /// sync benchmarks (`taksa dev --data-dir` continues it).
    BenchChain(bench_chain::BenchChainArgs),
    /// Measure the state tree at N accounts: memory, the cost of a block's update, and the size
    /// and verification time of proofs.
    BenchTree(bench_tree::BenchTreeArgs),
    /// Measure the store's state at N accounts with the state on disk behind its bounded cache:
    /// memory, restart time, a block's update and reads of accounts not in the cache.
    BenchState(bench_state::BenchStateArgs),
    /// Show what a stopped node's database takes on disk, by column family and per transaction.
    DbStats(db_tools::DbStatsArgs),
    /// Check every stored height of a stopped node's chain (present, hashing to its key and
    /// linked to its parent) and rebuild its state tree from the accounts. A start checks only
    /// the newest 1024 heights and the tree's root, so that it stays fast.
    DbCheck(db_tools::DbCheckArgs),
    /// Check a payment receipt (`taksa wallet receipt HASH > receipt.json`) with no node: the
    /// transaction is in a block that a quorum of the genesis validators finalized.
    VerifyReceipt(receipt_cmd::VerifyReceiptArgs),
    /// Vote on the validator set with a validator's key: add, remove, rotate a key, or list the
    /// set and the pending votes (a change passes with a quorum and applies when its epoch ends).
    Validator(validator_cmd::ValidatorArgs),
    /// Config files for `taksa node --config FILE`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy the chain's finalized blocks and transfers into a database, exactly once, following
    /// a node's events (`taksa export postgres --rpc URL --database URL`).
    Export(export::ExportArgs),
    /// A local network of validators and full nodes on 127.0.0.1 from the public testnet genesis:
    /// `taksa testnet up`, `status`, `demo`, `kill I`, `restart I`, `wipe I`, `logs I`, `down`.
    Testnet(crate::testnet::cli::TestnetArgs),
}

/// `taksa config`.
#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print a config file with every key of `taksa node`, its help and its default (commented
    /// out): `taksa config default > node.toml`, edit, then `taksa node --config node.toml`.
    Default,
}

/// Options shared by `dev` and `node`.
#[derive(Args, Debug, Clone)]
pub(crate) struct CommonArgs {
    /// JSON-RPC listen address (HTTP and WebSocket on one port).
    #[arg(long, env = "TAKSA_RPC_ADDR", default_value = "127.0.0.1:8545")]
    pub(crate) rpc_addr: SocketAddr,
    /// The kernel send buffer per RPC connection, in bytes. By default the kernel sizes it (up to
    /// net.ipv4.tcp_wmem's maximum, often 4 MiB). Smaller holds less memory per slow WebSocket
    /// client and tells a subscriber that stopped reading `lagged` sooner.
    #[arg(long, env = "TAKSA_RPC_SEND_BUFFER_BYTES", value_parser = clap::value_parser!(u32).range(4096..))]
    pub(crate) rpc_send_buffer_bytes: Option<u32>,
    /// Web origins (`https://wallet.example`, comma-separated) whose pages may call the RPC from
    /// a browser, besides the node's own explorer and pages on localhost; `*` allows any site,
    /// which lets every web page you visit drive this node.
    #[arg(long, env = "TAKSA_RPC_CORS", value_name = "ORIGINS", value_delimiter = ',')]
    pub(crate) rpc_cors: Vec<String>,
    /// Host names (comma-separated) under which the RPC may be reached, besides IP addresses and
    /// localhost names: the names in front of a reverse proxy, for example. Other names are
    /// refused, which stops DNS-rebinding attacks from a web page; `*` allows any.
    #[arg(long, env = "TAKSA_RPC_ALLOWED_HOSTS", value_name = "NAMES", value_delimiter = ',')]
    pub(crate) rpc_allowed_hosts: Vec<String>,
    /// The most WebSocket sessions from one client address (further upgrades get HTTP 429).
    #[arg(long, env = "TAKSA_RPC_WS_PER_IP_MAX", value_name = "N", default_value_t = taksa_rpc::WS_PER_IP_MAX_DEFAULT)]
    pub(crate) rpc_ws_per_ip_max: u32,
    /// Time between the server's WebSocket pings, in milliseconds.
    #[arg(long, env = "TAKSA_RPC_WS_PING_INTERVAL_MS", value_name = "MS", default_value_t = taksa_rpc::WS_PING_INTERVAL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(100..))]
    pub(crate) rpc_ws_ping_interval_ms: u64,
    /// How long a WebSocket may send nothing, not even a pong to a ping, before the server
    /// closes it, in milliseconds.
    #[arg(long, env = "TAKSA_RPC_WS_INACTIVE_MS", value_name = "MS", default_value_t = taksa_rpc::WS_INACTIVE_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(100..))]
    pub(crate) rpc_ws_inactive_ms: u64,
    /// How long an HTTP connection may stay open with no request in flight, in milliseconds.
    #[arg(long, env = "TAKSA_RPC_IDLE_TIMEOUT_MS", value_name = "MS", default_value_t = taksa_rpc::IDLE_TIMEOUT_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(100..))]
    pub(crate) rpc_idle_timeout_ms: u64,
    /// Memory for the state cache, in MiB: the accounts and state-tree nodes used lately. The
    /// rest of the state stays on disk and is read when used, so a node's memory does not grow
    /// with its accounts; a cache that holds every account (about 700 bytes each) serves every
    /// read from memory.
    #[arg(long, env = "TAKSA_STATE_CACHE_MB", value_name = "MIB", default_value_t = taksa_storage::STATE_CACHE_BYTES_DEFAULT / (1024 * 1024), value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub(crate) state_cache_mb: u64,
    /// How many heights below the finalized head `account_getProof` can prove accounts at. Each
    /// block then also writes the state it changed as it was before (about 1 KB per changed
    /// account), kept for this many heights; 0 proves the head only. Takes effect from the
    /// head at start: the heights before it are not filled in.
    #[arg(long, env = "TAKSA_STATE_HISTORY_BLOCKS", value_name = "N", default_value_t = 0)]
    pub(crate) state_history_blocks: u64,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub(crate) log_json: bool,
    /// Once the node serves JSON-RPC (and listens for peers), write FILE: JSON with its pid, RPC
    /// URL, p2p addresses, chain id and genesis hash, for scripts and supervisors to wait on
    /// instead of reading the log. Written whole (renamed into place); removed at a clean stop.
    /// It says the node started, not that it caught up: that is `GET /ready`.
    #[arg(long, env = "TAKSA_READY_FILE", value_name = "FILE")]
    pub(crate) ready_file: Option<PathBuf>,
}

/// `taksa dev`.
#[derive(Args, Debug)]
pub(crate) struct DevArgs {
    /// Where the chain's RocksDB data lives.
    #[arg(long, env = "TAKSA_DATA_DIR", default_value_os_t = default_dev_dir())]
    pub(crate) data_dir: PathBuf,
    /// Target time between blocks, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub(crate) block_time_ms: u64,
    /// Delete the data folder first and start a fresh chain.
    #[arg(long)]
    pub(crate) reset: bool,
    /// Seal a block as soon as transactions wait, and none while idle (like Hardhat's automine,
    /// with finality): lowest latency, nothing written while idle. Blocks may then follow
    /// each other faster than --block-time-ms, which still names the genesis.
    #[arg(long)]
    pub(crate) instant: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `taksa node`.
#[derive(Args, Debug)]
pub(crate) struct NodeArgs {
    /// A TOML file of these flags by their long names (`data-dir = "/var/lib/taksa"`,
    /// `bootnode = ["…"]`); a flag given here or its environment variable wins over the file.
    /// `taksa config default` prints one with every key.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The network's genesis file.
    #[arg(long, env = "TAKSA_GENESIS")]
    pub(crate) genesis: PathBuf,
    /// Where this node's RocksDB data lives.
    #[arg(long, env = "TAKSA_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// Encrypted validator key (keystore format); without it the node runs as a full node.
    /// The password comes from --password-file or TAKSA_PASSWORD. Repeatable (same password):
    /// in each epoch the node signs with the first key the validator set holds, so a node given
    /// its old and new key moves to the new one when a rotation takes effect, with no restart.
    #[arg(long, env = "TAKSA_VALIDATOR_KEY", value_delimiter = ',')]
    pub(crate) validator_key: Vec<PathBuf>,
    /// File whose first line is the validator key's password.
    #[arg(long, env = "TAKSA_PASSWORD_FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Peer-to-peer listen address: `IP:PORT` or a multiaddr (`/ip4/IP/tcp/PORT`). Port 0 picks
    /// a free port. Listen on 0.0.0.0 to accept peers from other machines.
    #[arg(long, env = "TAKSA_P2P_ADDR", default_value = "127.0.0.1:30333")]
    pub(crate) p2p_addr: String,
    /// A peer to connect to at start, `IP:PORT` or a multiaddr (optionally ending in
    /// `/p2p/PEER_ID`); repeatable. Other peers are then found through it. A running node logs
    /// its own addresses ("p2p listening") and answers them over `node_info`.
    #[arg(long, value_name = "ADDR", env = "TAKSA_BOOTNODE", value_delimiter = ',')]
    pub(crate) bootnode: Vec<String>,
    /// Talk only to the peers listed in FILE: one peer id per line (`#` comments and blank lines
    /// allowed).
    ///
    /// While the file lists any peer, the node connects to and accepts connections from those
    /// peers only, and drops every other connection: for validators that should talk only to
    /// each other, or for tests that partition a network. A peer id is the part after `/p2p/`
    /// of a node's address (logged as "p2p listening" and shown by `node_info`). The file is
    /// read at start (an invalid line stops the node) and looked at again every second: edit it
    /// to change the set; write a line `*` alone to lift the restriction, after which the node
    /// reconnects to the other peers by itself. The node fails closed: a later version that is
    /// invalid, unreadable, empty or deleted is ignored with a warning and the previous set
    /// stays. At start, a missing or empty file means no restriction. Peers banned for
    /// misbehaviour stay banned whether listed or not.
    #[arg(long, value_name = "FILE")]
    pub(crate) reserved_peers_file: Option<PathBuf>,
    /// A peer that always gets a connection slot and is re-dialed whenever it is not connected,
    /// however many other peers fill the node's slots: its peer id (the part after `/p2p/` of
    /// its address); repeatable. Validators should list each other. Bootnodes and reserved peers
    /// are priority peers already.
    #[arg(long, value_name = "PEER_ID")]
    pub(crate) priority_peer: Vec<String>,
    /// The most inbound p2p connections (default 50); priority peers do not count.
    #[arg(long, env = "TAKSA_P2P_INBOUND_MAX", value_name = "N")]
    pub(crate) p2p_inbound_max: Option<usize>,
    /// The most outbound p2p connections (default 20); priority peers do not count.
    #[arg(long, env = "TAKSA_P2P_OUTBOUND_MAX", value_name = "N")]
    pub(crate) p2p_outbound_max: Option<usize>,
    /// The most inbound peers from one IP address (an IPv6 /64 counts as one; default 4);
    /// priority peers do not count, and loopback addresses are exempt, so a local testnet is
    /// unaffected.
    #[arg(long, env = "TAKSA_P2P_INBOUND_PER_IP_MAX", value_name = "N")]
    pub(crate) p2p_inbound_per_ip_max: Option<usize>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

pub(crate) fn default_dev_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from(".taksa/dev"), |h| PathBuf::from(h).join(".taksa/dev"))
}

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => run::dev(args).await,
        Command::Node(args) => run::node(args).await,
        Command::Wallet(args) => wallet::cli::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchVerify(args) => tokio::task::spawn_blocking(move || bench::verify_rate(args)).await?,
        Command::BenchChain(args) => tokio::task::spawn_blocking(move || bench_chain::run(args)).await?,
        Command::BenchTree(args) => tokio::task::spawn_blocking(move || bench_tree::run(args)).await?,
        Command::BenchState(args) => tokio::task::spawn_blocking(move || bench_state::run(args)).await?,
        Command::DbStats(args) => tokio::task::spawn_blocking(move || db_tools::stats(args)).await?,
        Command::DbCheck(args) => tokio::task::spawn_blocking(move || db_tools::check(args)).await?,
        Command::VerifyReceipt(args) => receipt_cmd::run(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", crate::config::default_file());
            Ok(())
        }
        Command::Validator(args) => validator_cmd::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Testnet(args) => crate::testnet::cli::run(args).await,
    }
}
