//! `taksa export postgres`: follows `events_subscribe` and writes every finalized block and its
//! transfers into PostgreSQL, exactly once, resuming from the position stored in the database.
//!
//! The loop: read the position from the database, subscribe from the next height on one of the
//! nodes, turn the stream into whole, checked blocks ([`assemble`]), and write them with the new
//! cursor in one transaction ([`postgres`]). Any failure drops the subscription and starts over
//! from the database's position, which is the truth: a node that fails, stalls, withholds events
//! or sends what no honest node sends is left for the next one (heights and cursors are the same
//! on every node of a chain), and a database that went away is waited for. A write whose commit
//! was lost on the wire is settled by reading the position again.
//!
//! What the exporter checks of a node: that every block extends the last one written (height and
//! parent hash, from the genesis on), comes with exactly its transactions, and holds well-formed
//! fields; with `--genesis`, that the node's genesis is that file's. It does not verify block
//! hashes or finality certificates itself: a node that forges a whole consistent chain is
//! trusted, so name nodes you run (see docs/export.md).

mod assemble;
mod postgres;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use jsonrpsee::core::client::{Subscription, SubscriptionCloseReason};
use jsonrpsee::ws_client::{PingConfig, WsClient, WsClientBuilder};
use taksa_rpc::api::{Param, StreamOptions, TaksaApiClient as _};
use taksa_rpc::json::NotificationJson;

use assemble::{Assembler, ExportBlock, Tip};
use postgres::{Database, Fatal, Position, WriteError};

/// The longest message accepted from a node: an honest block summary or transfer is under 2 KiB.
const MESSAGE_BYTES_MAX: u32 = 16 * 1024;
/// A write holds at most this many rows (blocks and transfers): one database transaction stays
/// short, and a backlog is written in large batches rather than one transaction per block.
const BATCH_ROWS_MAX: usize = 10_000;
/// Notifications the WebSocket client holds while the database writes (at most 16 KiB each, about
/// 1 KiB from an honest node): two full blocks. Past it the client drops the subscription and the
/// exporter resumes from its position.
const BUFFERED_NOTIFICATIONS_MAX: usize = 2 * (taksa_consensus::block::BLOCK_TXS_MAX + 1);
/// Waits between attempts when every node or the database is unreachable, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// With nothing from the node for this long, ask it how far the chain is: a node that has
/// finalized past what it sent is withholding events and is left. (A chain may be idle: a dev
/// chain with `--instant` makes no block without transactions.)
const QUIET_CHECK: Duration = Duration::from_secs(20);
/// WebSocket pings find a dead connection: one unanswered for this long ends the session.
const PING_EVERY: Duration = Duration::from_secs(10);
const PING_INACTIVE_LIMIT: Duration = Duration::from_secs(30);
/// The longest a database write may take before the connection is dropped and made anew.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `taksa export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    #[command(subcommand)]
    target: ExportTarget,
}

#[derive(Subcommand, Debug)]
enum ExportTarget {
    /// Write every finalized block and transfer into PostgreSQL, exactly once.
    ///
    /// Creates the tables in the schema `taksa` (blocks, transfers, export_state; see
    /// docs/export.md) and follows the node's events from the position stored there. Each batch
    /// of whole blocks and the new cursor commit in one database transaction, so killing the
    /// exporter, the node or the database at any moment loses and doubles nothing. Runs until
    /// stopped (Ctrl-C), or until --stop-at-height.
    Postgres(PostgresArgs),
}

#[derive(Args, Debug)]
struct PostgresArgs {
    /// A node's JSON-RPC URL (http:// or ws://; the events arrive over WebSocket on the same
    /// port). Repeat it to name other nodes of the same chain: when one fails, stalls or sends a
    /// stream that does not extend the exported chain, the exporter goes on with the next.
    #[arg(long = "rpc", env = "TAKSA_EXPORT_RPC", value_delimiter = ',', required = true)]
    rpc: Vec<String>,
    /// The database: postgres://user:password@host:port/dbname (or `host=… user=… dbname=…`).
    /// Without TLS: run the exporter beside the database or through a tunnel. Prefer the
    /// environment variable to the flag: a command line is visible to every user of the machine.
    #[arg(long, env = "TAKSA_EXPORT_DATABASE", hide_env_values = true)]
    database: String,
    /// The chain's genesis file: nodes of another chain are refused, and an empty database is
    /// started on this chain whichever node answers first. Without it, the first node that
    /// answers names the chain.
    #[arg(long, env = "TAKSA_EXPORT_GENESIS", value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Exit (status 0) once this height is written: for back-fills and benchmarks.
    #[arg(long)]
    stop_at_height: Option<u64>,
}

/// Runs `taksa export …`.
pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    match args.target {
        ExportTarget::Postgres(args) => run_postgres(args).await,
    }
}

/// Why a session with one node ended.
enum Ended {
    /// `--stop-at-height` was written.
    Done,
    /// The node (or our own buffer) said we read too slowly: subscribe again after the position.
    Lagged,
    /// The node failed or misbehaved: go on with the next.
    Node(anyhow::Error),
    /// The database failed: reconnect, read the position again.
    Database(anyhow::Error),
    /// The operator has to act: stop.
    Fatal(anyhow::Error),
}

/// What has been written since the start, for the progress line.
struct Progress {
    started: Instant,
    printed: Instant,
    blocks: u64,
    transfers: u64,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress { started: now, printed: now, blocks: 0, transfers: 0 }
    }

    fn wrote(&mut self, blocks: &[ExportBlock], position: &Position, force: bool) {
        self.blocks += blocks.len() as u64;
        self.transfers += blocks.iter().map(|b| b.transfers.len() as u64).sum::<u64>();
        if force || self.printed.elapsed() >= PROGRESS_EVERY {
            self.printed = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            let height = position.tip.as_ref().map_or(0, |t| t.height);
            println!(
                "exported to height {height}: {} blocks and {} transfers since start, {:.0} rows/s",
                self.blocks,
                self.transfers,
                (self.blocks + self.transfers) as f64 / secs
            );
        }
    }
}

/// Shared between the loop and a session's writer task.
type SharedProgress = std::sync::Arc<std::sync::Mutex<Progress>>;

fn lock(progress: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run_postgres(args: PostgresArgs) -> anyhow::Result<()> {
    let urls: Vec<String> = args.rpc.iter().map(|u| ws_url(u)).collect::<anyhow::Result<_>>()?;
    let genesis = match &args.genesis {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read the genesis {}", path.display()))?;
            let g = taksa_consensus::Genesis::from_json(&text).with_context(|| format!("in {}", path.display()))?;
            Some((g.hash().to_string(), g.chain_id))
        }
        None => None,
    };
    let progress: SharedProgress = std::sync::Arc::new(std::sync::Mutex::new(Progress::new()));
    let mut db: Option<Database> = None;
    let mut node = 0usize;
    let mut retry = RETRY_FIRST;
    // Sessions in a row that wrote nothing: after a round of every node, wait before the next.
    let mut fruitless = 0usize;
    loop {
        let conn = match db.take() {
            Some(conn) => conn,
            None => match Database::connect(&args.database).await {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("export: {e:#}; retrying in {} ms", retry.as_millis());
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            },
        };
        let url = &urls[node % urls.len()];
        let written = lock(&progress).blocks;
        let (ended, conn) = session(conn, url, genesis.as_ref(), args.stop_at_height, &progress).await;
        db = conn;
        let wrote = lock(&progress).blocks > written;
        match ended {
            Ended::Done => return Ok(()),
            Ended::Fatal(e) => return Err(e),
            Ended::Lagged if wrote => {
                eprintln!("export: read {} too slowly (lagged); resuming from the stored position", redact(url));
            }
            Ended::Lagged => {
                // Lagged before anything was written: not this side's slowness. The next node.
                eprintln!("export: node {} said lagged before sending a block; trying the next", redact(url));
                node += 1;
            }
            Ended::Node(e) => {
                eprintln!("export: node {}: {e:#}", redact(url));
                node += 1;
            }
            Ended::Database(e) => {
                eprintln!("export: database: {e:#}; reconnecting");
                db = None;
            }
        }
        if wrote {
            fruitless = 0;
            retry = RETRY_FIRST;
            continue;
        }
        fruitless += 1;
        if fruitless >= urls.len() {
            // A full round without progress (every node failed, or the database is away, or a
            // node keeps saying lagged): wait, longer each time.
            fruitless = 0;
            eprintln!("export: no progress; retrying in {} ms", retry.as_millis());
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}

/// One subscription on one node, until something fails; gives the database connection back
/// unless the database failed.
async fn session(
    mut db: Database,
    url: &str,
    genesis: Option<&(String, String)>,
    stop_at: Option<u64>,
    progress: &SharedProgress,
) -> (Ended, Option<Database>) {
    let client = match connect(url).await {
        Ok(c) => c,
        Err(e) => return (Ended::Node(e), Some(db)),
    };
    let info = match client.chain_get_info().await {
        Ok(info) => info,
        Err(e) => return (Ended::Node(anyhow::Error::new(e).context("chain_getInfo")), Some(db)),
    };
    if let Some((hash, chain_id)) = genesis {
        if info.genesis_hash != *hash {
            let e = anyhow::anyhow!(
                "it serves genesis {:?}, not --genesis's {hash} ({chain_id})",
                info.genesis_hash.chars().take(80).collect::<String>()
            );
            return (Ended::Node(e), Some(db));
        }
    }
    let (genesis_hash, chain_id) =
        genesis.cloned().unwrap_or_else(|| (info.genesis_hash.clone(), info.chain_id.clone()));
    let (position, chain) = match db.open(&genesis_hash, &chain_id).await {
        Ok(opened) => opened,
        Err(e) if e.is::<Fatal>() => return (Ended::Fatal(e), Some(db)),
        Err(e) => return (Ended::Database(e), None),
    };
    if chain.genesis_hash != info.genesis_hash {
        let e = anyhow::anyhow!(
            "the database holds chain {} (genesis {}), but the node serves another: export each chain into its own \
             database",
            chain.chain_id,
            chain.genesis_hash
        );
        return (if genesis.is_some() { Ended::Fatal(e) } else { Ended::Node(e) }, Some(db));
    }
    if reached(&position, stop_at) {
        lock(progress).wrote(&[], &position, true);
        return (Ended::Done, Some(db));
    }
    // Before the first block, the genesis: block 1 must name it as its parent.
    let tip = position.tip.clone().unwrap_or(Tip { height: 0, hash: chain.genesis_hash.clone() });
    // From the next height rather than after the stored cursor: the position is ours, the
    // cursor's bytes are the node's.
    let options = StreamOptions { after: None, from_height: Some(tip.height + 1) };
    let sub = match client.subscribe_events(Some(Param::new(options))).await {
        Ok(s) => s,
        Err(e) => return (Ended::Node(anyhow::Error::new(e).context("events_subscribe")), Some(db)),
    };
    // The database writes in a task of its own while the stream is read on: a backlog does not
    // wait on commits, and the node's buffer does not fill meanwhile.
    let (batches, writer) = spawn_writer(db, position, progress.clone());
    let read = read_stream(&client, sub, Assembler::new(tip), stop_at, &batches, &writer.failed).await;
    drop(batches);
    let (db, written) = match writer.done.await {
        Ok(result) => result,
        Err(e) => return (Ended::Database(anyhow::anyhow!("the writer task failed: {e}")), None),
    };
    match written {
        // What the writer says comes first: the reading stopped because of it, or after it.
        Err(ended @ Ended::Database(_)) => (ended, None),
        Err(ended) => (ended, Some(db)),
        Ok(position) if reached(&position, stop_at) => {
            lock(progress).wrote(&[], &position, true);
            (Ended::Done, Some(db))
        }
        Ok(_) => (read, Some(db)),
    }
}

/// A session's database writer: batches in, in order, each with the cursor in one transaction.
struct Writer {
    /// Finishes when the batches channel closes (the position written last) or at the first
    /// failure, with the connection.
    done: tokio::task::JoinHandle<(Database, Result<Position, Ended>)>,
    /// Fires if the writer stopped on a failure, so that reading stops too.
    failed: tokio::sync::watch::Receiver<bool>,
}

fn spawn_writer(
    mut db: Database,
    mut position: Position,
    progress: SharedProgress,
) -> (tokio::sync::mpsc::Sender<Vec<ExportBlock>>, Writer) {
    // One batch queued while one is written: reading runs at most two batches ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ExportBlock>>(1);
    let (failed_tx, failed) = tokio::sync::watch::channel(false);
    let done = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let ended = match tokio::time::timeout(WRITE_TIMEOUT, db.write(&position, &batch)).await {
                Ok(Ok(p)) => {
                    position = p;
                    lock(&progress).wrote(&batch, &position, false);
                    continue;
                }
                Ok(Err(WriteError::Data(e))) => Ended::Node(e.context("the database refused what the node sent")),
                Ok(Err(WriteError::Database(e))) => Ended::Database(e),
                Err(_) => Ended::Database(anyhow::anyhow!("a write took over {} s", WRITE_TIMEOUT.as_secs())),
            };
            let _ = failed_tx.send(true);
            return (db, Err(ended));
        }
        (db, Ok(position))
    });
    (tx, Writer { done, failed })
}

/// Reads the stream into whole, checked blocks and hands them to the writer in batches, until
/// the stream ends, fails, reaches `stop_at` or the writer fails. Why reading stopped.
async fn read_stream(
    client: &WsClient,
    mut sub: Subscription<NotificationJson>,
    mut assembler: Assembler,
    stop_at: Option<u64>,
    batches: &tokio::sync::mpsc::Sender<Vec<ExportBlock>>,
    failed: &tokio::sync::watch::Receiver<bool>,
) -> Ended {
    let mut failed = failed.clone();
    let mut batch: Vec<ExportBlock> = Vec::new();
    let mut rows = 0usize;
    // Hands the batch over; false if the writer has stopped.
    async fn hand_over(batches: &tokio::sync::mpsc::Sender<Vec<ExportBlock>>, batch: &mut Vec<ExportBlock>) -> bool {
        batch.is_empty() || batches.send(std::mem::take(batch)).await.is_ok()
    }
    loop {
        // Hand over what is whole when the stream pauses or the batch is full; while events
        // keep coming (a backlog), gather them into one transaction.
        let next = if batch.is_empty() {
            tokio::select! {
                n = tokio::time::timeout(QUIET_CHECK, sub.next()) => match n {
                    Ok(n) => Some(n),
                    Err(_) => {
                        if let Err(e) = withholding(client, assembler.tip().height).await {
                            return Ended::Node(e);
                        }
                        continue;
                    }
                },
                _ = failed.changed() => return Ended::Lagged,
            }
        } else {
            ready(&mut sub).await
        };
        let Some(next) = next else {
            if !hand_over(batches, &mut batch).await {
                return Ended::Lagged;
            }
            rows = 0;
            continue;
        };
        let notification = match next {
            Some(Ok(n)) => n,
            Some(Err(_)) => return Ended::Node(anyhow::anyhow!("it sent a notification that is not an event")),
            None => {
                // Whole blocks already read are good, whatever ended the stream.
                hand_over(batches, &mut batch).await;
                if matches!(sub.close_reason(), Some(SubscriptionCloseReason::Lagged)) {
                    // This side's buffer filled while the writer was behind.
                    return Ended::Lagged;
                }
                return Ended::Node(anyhow::anyhow!("the subscription closed"));
            }
        };
        match notification {
            NotificationJson::Transfer(t) => {
                if let Err(e) = assembler.transfer(t) {
                    hand_over(batches, &mut batch).await;
                    return Ended::Node(e.into());
                }
            }
            NotificationJson::Block(b) => match assembler.block(b.block) {
                Ok(block) => {
                    rows += 1 + block.transfers.len();
                    let height = block.block.height;
                    batch.push(block);
                    let stop = stop_at.is_some_and(|s| height >= s);
                    if rows >= BATCH_ROWS_MAX || stop {
                        if !hand_over(batches, &mut batch).await {
                            return Ended::Lagged;
                        }
                        rows = 0;
                    }
                    if stop {
                        return Ended::Done;
                    }
                }
                Err(e) => {
                    hand_over(batches, &mut batch).await;
                    return Ended::Node(e.into());
                }
            },
            NotificationJson::Lagged(_) => {
                hand_over(batches, &mut batch).await;
                return Ended::Lagged;
            }
            _ => {
                hand_over(batches, &mut batch).await;
                return Ended::Node(anyhow::anyhow!("events_subscribe sent a notification of another subscription"));
            }
        }
    }
}

/// After a quiet spell: an error if the node has finalized past what it sent.
async fn withholding(client: &WsClient, received: u64) -> anyhow::Result<()> {
    let info = client.chain_get_info().await.context("chain_getInfo after a quiet spell")?;
    if info.finalized_height > received {
        bail!(
            "it finalized height {} but sent no event past {received} for {} s: it is withholding events",
            info.finalized_height,
            QUIET_CHECK.as_secs()
        );
    }
    Ok(())
}

/// The next notification if one is already waiting, `None` if the stream has paused.
async fn ready(
    sub: &mut Subscription<NotificationJson>,
) -> Option<Option<Result<NotificationJson, serde_json::Error>>> {
    tokio::select! {
        biased;
        n = sub.next() => Some(n),
        () = std::future::ready(()) => None,
    }
}

fn reached(position: &Position, stop_at: Option<u64>) -> bool {
    matches!((stop_at, &position.tip), (Some(s), Some(t)) if t.height >= s)
}

async fn connect(url: &str) -> anyhow::Result<WsClient> {
    WsClientBuilder::default()
        .max_response_size(MESSAGE_BYTES_MAX)
        .max_request_size(MESSAGE_BYTES_MAX)
        .max_buffer_capacity_per_subscription(BUFFERED_NOTIFICATIONS_MAX)
        .enable_ws_ping(PingConfig::new().ping_interval(PING_EVERY).inactive_limit(PING_INACTIVE_LIMIT))
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
        .build(url)
        .await
        .with_context(|| format!("cannot open a WebSocket to {}", redact(url)))
}

/// The URL without a password it may hold (`ws://user:secret@host` → `ws://user:…@host`).
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:…{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The WebSocket URL of a node's RPC URL.
fn ws_url(url: &str) -> anyhow::Result<String> {
    if let Some(rest) = url.strip_prefix("http://") {
        Ok(format!("ws://{rest}"))
    } else if let Some(rest) = url.strip_prefix("https://") {
        Ok(format!("wss://{rest}"))
    } else if url.starts_with("ws://") || url.starts_with("wss://") {
        Ok(url.to_owned())
    } else {
        bail!("--rpc {url}: give a URL such as http://127.0.0.1:8545")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_node_url_is_not_printed() {
        assert_eq!(redact("ws://ops:hunter2@node:8545"), "ws://ops:…@node:8545");
        assert_eq!(redact("ws://node:8545"), "ws://node:8545");
    }

    #[test]
    fn rpc_urls_become_websocket_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8545").expect("http"), "ws://127.0.0.1:8545");
        assert_eq!(ws_url("ws://node:1").expect("ws"), "ws://node:1");
        assert!(ws_url("127.0.0.1:8545").is_err());
    }
}
