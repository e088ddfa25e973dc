//! `taksa export postgres`: follows `events_subscribe` and writes every finalized block and its
//! transfers into PostgreSQL, exactly once, resuming from the cursor stored in the database.
//!
//! The loop: read the position from the database, subscribe after it on one of the nodes, turn
//! the stream into whole blocks ([`assemble`]), and write them with the new cursor in one
//! transaction ([`postgres`]). Any failure drops the subscription and starts over from the
//! database's cursor, which is the truth: a node that fails or lies is left for the next one
//! (cursors are the same on every node of a chain), and a database that went away is waited for.
//! A write whose commit was lost on the wire is settled by reading the cursor again.

mod assemble;
mod postgres;

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use jsonrpsee::core::client::{Subscription, SubscriptionCloseReason};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use taksa_rpc::api::{Param, StreamOptions, TaksaApiClient as _};
use taksa_rpc::json::NotificationJson;

use assemble::{Assembler, ExportBlock};
use postgres::{Database, Position};

/// The longest message accepted from a node: a block summary or a transfer is well under 2 KiB.
const MESSAGE_BYTES_MAX: u32 = 1 << 20;
/// A write holds at most this many rows (blocks and transfers): one database transaction stays
/// short, and a backlog is written in large batches rather than one transaction per block.
const BATCH_ROWS_MAX: usize = 10_000;
/// Notifications the WebSocket client holds while the database writes, about 1 KiB each: two
/// full blocks. Past it the client drops the subscription and the exporter resumes from its cursor.
const BUFFERED_NOTIFICATIONS_MAX: usize = 2 * (taksa_consensus::block::BLOCK_TXS_MAX + 1);
/// Waits between attempts when every node or the database is unreachable, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
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
    /// docs/export.md) and follows the node's events from the cursor stored there. Each batch of
    /// whole blocks and the new cursor commit in one database transaction, so killing the
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
    /// Without TLS: run the exporter beside the database or through a tunnel.
    #[arg(long, env = "TAKSA_EXPORT_DATABASE")]
    database: String,
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
    /// The node told us we read too slowly: subscribe again after the stored cursor.
    Lagged,
    /// The node failed or misbehaved: go on with the next.
    Node(anyhow::Error),
    /// The database failed: reconnect, read the cursor again.
    Database(anyhow::Error),
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

async fn run_postgres(args: PostgresArgs) -> anyhow::Result<()> {
    let urls: Vec<String> = args.rpc.iter().map(|u| ws_url(u)).collect::<anyhow::Result<_>>()?;
    let mut progress = Progress::new();
    let mut node = 0usize;
    let mut retry = RETRY_FIRST;
    // Nodes that failed since the last block written: once every node has, wait before the next round.
    let mut failed_in_a_row = 0usize;
    loop {
        let mut db = match Database::connect(&args.database).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("export: {e:#}; retrying in {} ms", retry.as_millis());
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        let url = &urls[node % urls.len()];
        let ended = session(&mut db, url, args.stop_at_height, &mut progress).await;
        match ended {
            Ended::Done => return Ok(()),
            Ended::Lagged => {
                eprintln!(
                    "export: this exporter read {url}'s events too slowly (lagged); resuming from the stored cursor"
                );
            }
            Ended::Node(e) => {
                eprintln!("export: node {url}: {e:#}");
                node += 1;
                failed_in_a_row += 1;
                if failed_in_a_row >= urls.len() {
                    failed_in_a_row = 0;
                    eprintln!("export: no node answered; retrying in {} ms", retry.as_millis());
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
                continue;
            }
            Ended::Database(e) => {
                eprintln!("export: database: {e:#}; reconnecting in {} ms", retry.as_millis());
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        }
        failed_in_a_row = 0;
        retry = RETRY_FIRST;
    }
}

/// One subscription on one node, writing until something fails.
async fn session(db: &mut Database, url: &str, stop_at: Option<u64>, progress: &mut Progress) -> Ended {
    let client = match connect(url).await {
        Ok(c) => c,
        Err(e) => return Ended::Node(e),
    };
    let info = match client.chain_get_info().await {
        Ok(info) => info,
        Err(e) => return Ended::Node(anyhow::Error::new(e).context("chain_getInfo")),
    };
    let (mut position, chain) = match db.open(&info.genesis_hash, &info.chain_id).await {
        Ok(opened) => opened,
        Err(e) => return Ended::Database(e),
    };
    if chain.genesis_hash != info.genesis_hash {
        return Ended::Node(anyhow::anyhow!(
            "it serves chain {} (genesis {}), but the database holds {} (genesis {}): export each chain into \
             its own database",
            info.chain_id,
            info.genesis_hash,
            chain.chain_id,
            chain.genesis_hash
        ));
    }
    if reached(&position, stop_at) {
        progress.wrote(&[], &position, true);
        return Ended::Done;
    }
    let options = match &position.cursor {
        Some(after) => StreamOptions { after: Some(after.clone()), from_height: None },
        None => StreamOptions { after: None, from_height: Some(0) },
    };
    let mut sub = match client.subscribe_events(Some(Param::new(options))).await {
        Ok(s) => s,
        Err(e) => return Ended::Node(anyhow::Error::new(e).context("events_subscribe")),
    };
    let mut assembler = Assembler::new(position.tip.clone());
    let mut batch: Vec<ExportBlock> = Vec::new();
    let mut rows = 0usize;
    loop {
        // Write what is whole when the stream pauses or the batch is full; while events keep
        // coming (a backlog), gather them into one transaction.
        let next = if batch.is_empty() { Some(sub.next().await) } else { ready(&mut sub).await };
        let Some(next) = next else {
            if let Err(e) = flush(db, &mut position, &mut batch, &mut rows, progress).await {
                return Ended::Database(e);
            }
            if reached(&position, stop_at) {
                progress.wrote(&[], &position, true);
                return Ended::Done;
            }
            continue;
        };
        let notification = match next {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                return Ended::Node(anyhow::Error::new(e).context("a notification the exporter cannot read"))
            }
            None => {
                if matches!(sub.close_reason(), Some(SubscriptionCloseReason::Lagged)) {
                    // This side's buffer filled while the database wrote: go on from the cursor.
                    if let Err(e) = flush(db, &mut position, &mut batch, &mut rows, progress).await {
                        return Ended::Database(e);
                    }
                    return Ended::Lagged;
                }
                return Ended::Node(anyhow::anyhow!("the subscription closed"));
            }
        };
        match notification {
            NotificationJson::Transfer(t) => {
                if let Err(e) = assembler.transfer(t) {
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
                        if let Err(e) = flush(db, &mut position, &mut batch, &mut rows, progress).await {
                            return Ended::Database(e);
                        }
                    }
                    if stop {
                        progress.wrote(&[], &position, true);
                        return Ended::Done;
                    }
                }
                Err(e) => return Ended::Node(e.into()),
            },
            NotificationJson::Lagged(_) => {
                // Whole blocks already read are still good; the rest comes again after them.
                if let Err(e) = flush(db, &mut position, &mut batch, &mut rows, progress).await {
                    return Ended::Database(e);
                }
                return Ended::Lagged;
            }
            other => return Ended::Node(anyhow::anyhow!("events_subscribe sent a {other:?}")),
        }
    }
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

async fn flush(
    db: &mut Database,
    position: &mut Position,
    batch: &mut Vec<ExportBlock>,
    rows: &mut usize,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    *position = db.write(position, batch).await?;
    progress.wrote(batch, position, false);
    batch.clear();
    *rows = 0;
    Ok(())
}

fn reached(position: &Position, stop_at: Option<u64>) -> bool {
    matches!((stop_at, &position.tip), (Some(s), Some(t)) if t.height >= s)
}

async fn connect(url: &str) -> anyhow::Result<WsClient> {
    WsClientBuilder::default()
        .max_response_size(MESSAGE_BYTES_MAX)
        .max_buffer_capacity_per_subscription(BUFFERED_NOTIFICATIONS_MAX)
        .max_request_size(MESSAGE_BYTES_MAX)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
        .build(url)
        .await
        .with_context(|| format!("cannot open a WebSocket to {url}"))
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
    fn rpc_urls_become_websocket_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8545").expect("http"), "ws://127.0.0.1:8545");
        assert_eq!(ws_url("ws://node:1").expect("ws"), "ws://node:1");
        assert!(ws_url("127.0.0.1:8545").is_err());
    }
}
