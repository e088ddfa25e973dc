//! `taksa bench`: funds many accounts, pre-signs transfers between them, submits them over
//! JSON-RPC with bounded concurrency, watches finalized blocks, and prints submitted/s,
//! finalized/s and submit-to-final latency percentiles.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use taksa_consensus::crypto::{verify, verify_many, PublicKey, Signature, VerifyItem};
use taksa_consensus::{Address, Hash, Keypair, SignedTransaction, Transaction};
use taksa_rpc::api::{BlockRef, Param, TaksaApiClient as _, TxStateJson};
use tokio::sync::Mutex;

use crate::devnet;

/// `taksa bench` options.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, env = "TAKSA_RPC", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// How many fresh sender accounts to fund and use.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// How many transfers to send in the measured phase.
    #[arg(long, default_value_t = 5000)]
    txs: usize,
    /// How many requests may be in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up waiting for finality this long after the last submission, in seconds.
    #[arg(long, default_value_t = 120)]
    finality_timeout_s: u64,
    /// Send each transfer to a new address instead of another bench account, so that every
    /// transfer creates an account: to measure how the node grows with its accounts
    /// (`scripts/accounts-bench.sh`).
    #[arg(long)]
    new_recipients: bool,
    /// Transfers per call: 1 sends each with `tx_submit`; more sends them with `tx_submitBatch`
    /// (at most 512), as a wallet backend with many transfers would.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=512))]
    batch: u16,
    /// Offer transfers at this many per second in all (spread evenly over the lanes) instead of
    /// as fast as the node takes them: for latency at a given load.
    #[arg(long, value_name = "TX_PER_S")]
    rate: Option<f64>,
    /// Write the figures to this file as JSON as well (`scripts/bench-report.sh` reads it).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

struct ChainFacts {
    chain_id: String,
    genesis_hash: Hash,
    fee_floor: u128,
    account_creation_fee: u128,
}

/// One call; an HTTP 429 (the node's per-address budget of calls in flight is spent: the
/// bench's own lanes and watcher share it) is back-pressure, retried for up to 30 s.
async fn call<T, F: std::future::Future<Output = Result<T, ClientError>>>(
    method: &str,
    mut request: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut tries = 0;
    loop {
        match request().await {
            Err(e) if tries < 600 && is_too_many(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answer => return answer.with_context(|| format!("{method} failed")),
        }
    }
}

/// Whether the node answered HTTP 429 (too many calls in flight from this address).
fn is_too_many(e: &ClientError) -> bool {
    e.to_string().contains("429")
}

async fn chain_facts(client: &HttpClient) -> anyhow::Result<ChainFacts> {
    let info = call("chain_getInfo", || client.chain_get_info()).await?;
    Ok(ChainFacts {
        genesis_hash: Hash::from_hex(&info.genesis_hash)?,
        fee_floor: info.fee_floor.parse().context("feeFloor is not a number")?,
        account_creation_fee: info.account_creation_fee.parse().context("accountCreationFee is not a number")?,
        chain_id: info.chain_id,
    })
}

fn bench_key(run: u64, i: usize) -> Keypair {
    let seed = Hash::of(&[b"taksa/bench/v1", &run.to_le_bytes(), &(i as u64).to_le_bytes()]);
    Keypair::from_seed(&seed.0)
}

/// A fresh recipient for `--new-recipients`: a real key (recipients must be valid keys) that no
/// other run or transfer uses.
fn new_recipient(run: u64, sender: usize, n: usize) -> Address {
    let seed = Hash::of(&[
        b"taksa/bench/recipient/v1",
        &run.to_le_bytes(),
        &(sender as u64).to_le_bytes(),
        &(n as u64).to_le_bytes(),
    ]);
    Address(Keypair::from_seed(&seed.0).public())
}

fn transfer(c: &ChainFacts, key: &Keypair, to: Address, amount: u128, fee: u128, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: c.chain_id.clone(),
        from: Address(key.public()),
        to,
        amount,
        fee,
        nonce,
        valid_until_height: None,
        memo: None,
        action: None,
    }
    .sign(key, &c.genesis_hash)
}

/// Runs the bench.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.accounts == 0 || args.txs == 0 || args.concurrency == 0 {
        bail!("--accounts, --txs and --concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of transfers per second");
    }
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(&args.rpc)
        .with_context(|| format!("bad --rpc URL {}", args.rpc))?;
    let facts = chain_facts(&client).await.with_context(|| format!("is a node serving JSON-RPC at {}?", args.rpc))?;
    let run_id = crate::chain::now_ms();
    let keys: Vec<Keypair> = (0..args.accounts).map(|i| bench_key(run_id, i)).collect();
    let per_account = args.txs.div_ceil(args.accounts);
    // Each transfer to a new address creates an account, which costs the account-creation fee.
    let fee = if args.new_recipients { facts.account_creation_fee } else { facts.fee_floor };
    println!("bench: {} accounts x {per_account} transfers against {}", args.accounts, args.rpc);
    fund(&client, &facts, &keys, per_account, fee).await?;

    // Pre-sign everything before the clock starts: the bench measures the node, not signing.
    let mut lanes: Vec<Vec<Pending>> = vec![Vec::new(); args.concurrency];
    let mut total = 0usize;
    for (i, key) in keys.iter().enumerate() {
        let ring = Address(keys[(i + 1) % keys.len()].public());
        for n in 0..per_account {
            if total == args.txs {
                break;
            }
            let to = if args.new_recipients { new_recipient(run_id, i, n) } else { ring };
            let stx = transfer(&facts, key, to, 1, fee, n as u64);
            lanes[i % args.concurrency].push(Pending {
                hash: stx.hash(),
                hex: format!("0x{}", hex::encode(stx.encode())),
                sender: i,
            });
            total += 1;
        }
    }
    println!("bench: pre-signed {total} transfers; submitting with concurrency {}", args.concurrency);
    let submitted: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::with_capacity(total)));
    // Read before the first submission: an instant chain may finalize one before the watcher runs.
    let first_height = call("chain_getInfo", || client.chain_get_info()).await?.finalized_height + 1;
    let watcher =
        tokio::spawn(watch_finality(client.clone(), submitted.clone(), first_height, total, args.finality_timeout_s));
    let start = Instant::now();
    let mut workers = Vec::new();
    let concurrency = args.concurrency;
    for (i, lane) in lanes.into_iter().enumerate() {
        let client = client.clone();
        let submitted = submitted.clone();
        // Lane i sends its k-th transfer at (k * lanes + i) / rate seconds after the start.
        let pace = args.rate.map(|rate| Pace { start, lane: i, lanes: concurrency, rate });
        let batch = usize::from(args.batch);
        workers.push(tokio::spawn(async move {
            if batch > 1 {
                submit_lane_batched(&client, lane, &submitted, pace, batch).await
            } else {
                submit_lane(&client, lane, &submitted, pace).await
            }
        }));
    }
    for w in workers {
        w.await.context("a submit worker panicked")??;
    }
    let submit_s = start.elapsed().as_secs_f64();
    println!("bench: submitted {total} in {submit_s:.2} s = {:.0} tx/s", total as f64 / submit_s);
    let report = watcher.await.context("the finality watcher panicked")??;
    let figures = report.print(start, total);
    if let Some(path) = args.json_out {
        let mut figures = figures;
        figures["submittedPerSecond"] = serde_json::json!((total as f64 / submit_s).round());
        std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The refusals that are back-pressure (a full pool, a sender's cap, a full admission queue):
/// wait and retry.
const BACK_PRESSURE: [&str; 3] = ["pool_full", "sender_limit", "busy"];

/// Whether a transfer refused for `reason` is sent again: back-pressure, or a nonce gap behind a
/// transfer of the same sender that back-pressure held back in the same call
/// (`sender_held_back`), which the retry closes.
fn retried(reason: &str, sender_held_back: bool) -> bool {
    BACK_PRESSURE.contains(&reason) || (reason == "nonce_gap" && sender_held_back)
}

/// A pre-signed transfer waiting to be submitted.
#[derive(Clone)]
struct Pending {
    hash: Hash,
    hex: String,
    /// The index of its sender among the bench's accounts.
    sender: usize,
}

/// A lane that sends `batch` transfers per `tx_submitBatch` call; each transfer's clock starts
/// when its call is sent. A sender's transfers go in nonce order, so when back-pressure holds
/// one back, its later nonces in the same call come back `nonce_gap` (past the pool's window):
/// those are retried with it, in order.
async fn submit_lane_batched(
    client: &HttpClient,
    lane: Vec<Pending>,
    submitted: &Mutex<HashMap<Hash, Instant>>,
    pace: Option<Pace>,
    batch: usize,
) -> anyhow::Result<()> {
    for (c, chunk) in lane.chunks(batch).enumerate() {
        if let Some(p) = pace {
            let due = (c * batch * p.lanes + p.lane) as f64 / p.rate;
            tokio::time::sleep_until((p.start + Duration::from_secs_f64(due)).into()).await;
        }
        let mut todo: Vec<&Pending> = chunk.iter().collect();
        let mut tries = 0;
        while !todo.is_empty() {
            let now = Instant::now();
            {
                // The first attempt's time: back-pressure waits count in the latency.
                let mut sub = submitted.lock().await;
                for p in &todo {
                    sub.entry(p.hash).or_insert(now);
                }
            }
            let hexes: Vec<String> = todo.iter().map(|p| p.hex.clone()).collect();
            let outcomes = match client.tx_submit_batch(Param::new(hexes)).await {
                Ok(outcomes) => outcomes,
                Err(e) if tries < 600 && is_too_many(&e) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => bail!("tx_submitBatch failed: {e}"),
            };
            let mut again = Vec::new();
            let mut held_back = HashSet::new();
            for (item, outcome) in todo.iter().zip(outcomes) {
                let Some(e) = outcome.error else { continue };
                let reason = e.data.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or_default().to_owned();
                if retried(&reason, held_back.contains(&item.sender)) && tries < 600 {
                    held_back.insert(item.sender);
                    again.push(*item);
                } else {
                    bail!("tx_submitBatch refused {}: {} ({reason})", item.hash, e.message);
                }
            }
            todo = again;
            if !todo.is_empty() {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

/// When a lane's transfers are due, at an offered rate.
#[derive(Clone, Copy)]
struct Pace {
    start: Instant,
    lane: usize,
    lanes: usize,
    rate: f64,
}

async fn submit_lane(
    client: &HttpClient,
    lane: Vec<Pending>,
    submitted: &Mutex<HashMap<Hash, Instant>>,
    pace: Option<Pace>,
) -> anyhow::Result<()> {
    for (k, Pending { hash, hex, .. }) in lane.into_iter().enumerate() {
        if let Some(p) = pace {
            let due = (k * p.lanes + p.lane) as f64 / p.rate;
            tokio::time::sleep_until((p.start + Duration::from_secs_f64(due)).into()).await;
        }
        let mut tries = 0;
        loop {
            // Noted before the call (on an instant chain it may be final before the answer), at
            // the first attempt: back-pressure waits count in the latency.
            submitted.lock().await.entry(hash).or_insert_with(Instant::now);
            match client.tx_submit(Param::new(hex.clone())).await {
                Ok(_) => break,
                // A full pool, sender cap, admission queue or per-address call budget is
                // back-pressure: wait and retry.
                Err(e)
                    if tries < 600 && (is_too_many(&e) || BACK_PRESSURE.iter().any(|r| e.to_string().contains(r))) =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => bail!("tx_submit {hash} failed: {e}"),
            }
        }
    }
    Ok(())
}

async fn fund(
    client: &HttpClient,
    facts: &ChainFacts,
    keys: &[Keypair],
    per_account: usize,
    fee: u128,
) -> anyhow::Result<()> {
    const FUNDERS: u32 = 10;
    const WAVE_PER_FUNDER: usize = 100;
    let amount = (per_account as u128 + 10) * (1 + fee);
    // The publicly known funded accounts of the dev chain or of the testnet (its genesis file
    // may change the block time, hence the chain id rather than the genesis hash).
    let funder: fn(u32) -> Keypair =
        if facts.chain_id == devnet::TESTNET_CHAIN_ID { devnet::testnet_account } else { devnet::dev_account };
    let funders: Vec<Keypair> = (0..FUNDERS).map(funder).collect();
    let started = Instant::now();
    for wave in keys.chunks(WAVE_PER_FUNDER * FUNDERS as usize) {
        let mut last = Vec::new();
        for (f_i, funder) in funders.iter().enumerate() {
            let addr_nonce = nonce_of(client, funder).await?;
            let mine: Vec<&Keypair> = wave.iter().skip(f_i).step_by(FUNDERS as usize).collect();
            for (k, key) in mine.iter().enumerate() {
                // Each funding transfer creates the bench account.
                let stx = transfer(
                    facts,
                    funder,
                    Address(key.public()),
                    amount,
                    facts.account_creation_fee,
                    addr_nonce + k as u64,
                );
                let hex = format!("0x{}", hex::encode(stx.encode()));
                let h = call("tx_submit", || client.tx_submit(Param::new(hex.clone()))).await.context(
                    "funding failed: bench funds its accounts from the public test accounts of `taksa dev` or of the \
                     testnet genesis; run it against one of those",
                )?;
                last.push(h);
            }
        }
        for h in last {
            wait_final(client, &h).await?;
        }
        println!("bench: funded {} accounts ({:.1} s)", wave.len(), started.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn nonce_of(client: &HttpClient, key: &Keypair) -> anyhow::Result<u64> {
    let hrp = call("chain_getInfo", || client.chain_get_info()).await?.address_hrp;
    let address = Address(key.public()).to_bech32(&hrp);
    call("account_getNonce", || client.account_get_nonce(Param::new(address.clone()))).await
}

async fn wait_final(client: &HttpClient, hash: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = call("tx_get", || client.tx_get(Param::new(hash.to_owned()))).await?;
        match r.status {
            TxStateJson::Finalized => return Ok(()),
            TxStateJson::Pending if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => bail!("funding transaction {hash} ended as {}: {r:?}", other.as_str()),
        }
    }
}

/// How often the watcher asks for the finalized height: the latency figures' resolution.
const WATCH_POLL_MS: u64 = 5;
/// The most blocks the watcher fetches at once.
const WATCH_FETCH_MAX: u64 = 32;

struct Report {
    latencies_ms: Vec<f64>,
    last_final: Option<Instant>,
    blocks: usize,
}

impl Report {
    /// Prints the figures, and returns them as JSON.
    fn print(mut self, start: Instant, total: usize) -> serde_json::Value {
        let done = self.latencies_ms.len();
        self.latencies_ms.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            let i = ((done as f64 - 1.0) * p).round() as usize;
            self.latencies_ms.get(i).copied().unwrap_or(f64::NAN)
        };
        let span_s = self.last_final.map_or(f64::NAN, |t| t.duration_since(start).as_secs_f64());
        println!(
            "bench: finalized {done}/{total} in {span_s:.2} s = {:.0} tx/s over {} blocks",
            done as f64 / span_s,
            self.blocks
        );
        println!(
            "bench: submit-to-final latency p50 {:.0} ms, p99 {:.0} ms (observed by polling every {WATCH_POLL_MS} ms)",
            pct(0.5),
            pct(0.99)
        );
        if done < total {
            println!("bench: WARNING {} transfers were not seen final before the timeout", total - done);
        }
        let finite =
            |x: f64| if x.is_finite() { serde_json::json!((x * 10.0).round() / 10.0) } else { serde_json::Value::Null };
        serde_json::json!({
            "txs": total,
            "finalized": done,
            "seconds": finite(span_s),
            "finalizedPerSecond": finite(done as f64 / span_s),
            "blocks": self.blocks,
            "p50Ms": finite(pct(0.5)),
            "p99Ms": finite(pct(0.99)),
        })
    }
}

/// Watches finalized blocks from `first_height` on until `total` submitted transfers are seen.
async fn watch_finality(
    client: HttpClient,
    submitted: Arc<Mutex<HashMap<Hash, Instant>>>,
    first_height: u64,
    total: usize,
    timeout_s: u64,
) -> anyhow::Result<Report> {
    let mut next = first_height;
    let mut report = Report { latencies_ms: Vec::with_capacity(total), last_final: None, blocks: 0 };
    let mut last_progress = Instant::now();
    while report.latencies_ms.len() < total {
        if last_progress.elapsed() > Duration::from_secs(timeout_s) {
            break;
        }
        let finalized = call("chain_getInfo", || client.chain_get_info()).await?.finalized_height;
        if finalized < next {
            tokio::time::sleep(Duration::from_millis(WATCH_POLL_MS)).await;
            continue;
        }
        let seen_at = Instant::now();
        // Fetched in parallel, so that a chain of many small blocks (`taksa dev --instant`)
        // does not make the watcher, and so the next `seen_at`, fall behind.
        let last = finalized.min(next + WATCH_FETCH_MAX - 1);
        let mut fetches = tokio::task::JoinSet::new();
        for height in next..=last {
            let client = client.clone();
            fetches.spawn(async move {
                call("chain_getBlock", || client.chain_get_block(Param::new(BlockRef::Height(height)))).await
            });
        }
        while let Some(block) = fetches.join_next().await {
            let block = block.context("a block fetch failed")??;
            let sub = submitted.lock().await;
            for tx in block.txs {
                let Ok(h) = Hash::from_hex(&tx.hash) else { continue };
                if let Some(t) = sub.get(&h) {
                    report.latencies_ms.push(seen_at.saturating_duration_since(*t).as_secs_f64() * 1000.0);
                    report.last_final = Some(seen_at);
                    last_progress = seen_at;
                }
            }
            report.blocks += 1;
        }
        next = last + 1;
    }
    Ok(report)
}

/// `taksa bench-verify` options.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Signatures per batch on each core (a block of that many transfers per core).
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Write the figures to this file as JSON as well.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// `taksa bench-verify`: how many ed25519 signatures this machine verifies per second on every
/// core, in batches, with the node's own function (`crypto::verify_many`), and one at a time on one
/// core. The first is the ceiling of any node's throughput on this machine.
pub(crate) fn verify_rate(args: VerifyArgs) -> anyhow::Result<()> {
    if args.seconds == 0 || args.batch == 0 {
        bail!("--seconds and --batch must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = args.batch * cores;
    // Transfer-sized messages, each signed by its own key, as a block of transfers from
    // distinct senders would bring.
    let keys: Vec<Keypair> =
        (0..n as u64).map(|i| Keypair::from_seed(&Hash::of(&[b"bench-verify", &i.to_le_bytes()]).0)).collect();
    let msgs: Vec<Vec<u8>> = (0..n as u64).map(|i| Hash::of(&[&i.to_le_bytes()]).0.repeat(5)).collect();
    let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
    let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items: Vec<VerifyItem<'_>> = pks.iter().zip(&msgs).zip(&sigs).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
    println!("bench-verify: {n} signatures ({} per core on {cores} cores), {} s each way", args.batch, args.seconds);

    let budget = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut batched = 0usize;
    while started.elapsed() < budget {
        if let Err(i) = verify_many(&items) {
            bail!("signature {i} did not verify: the bench's own signatures must");
        }
        batched += n;
    }
    let batch_rate = batched as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut single = 0usize;
    'outer: while started.elapsed() < budget {
        for (k, m, s) in &items {
            if verify(k, m, s).is_err() {
                bail!("a signature did not verify: the bench's own signatures must");
            }
            single += 1;
            if single.is_multiple_of(256) && started.elapsed() >= budget {
                break 'outer;
            }
        }
    }
    let single_rate = single as f64 / started.elapsed().as_secs_f64();
    println!("bench-verify: batch verification on {cores} cores: {batch_rate:.0} signatures/s");
    println!("bench-verify: single verification on 1 core:  {single_rate:.0} signatures/s");
    if let Some(path) = args.json_out {
        let figures = serde_json::json!({
            "cores": cores,
            "batchPerCore": args.batch,
            "batchSignaturesPerSecond": batch_rate.round(),
            "singleSignaturesPerSecondOneCore": single_rate.round(),
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_gap_is_retried_only_behind_a_held_back_transfer_of_the_same_sender() {
        for reason in BACK_PRESSURE {
            assert!(retried(reason, false), "{reason} is back-pressure");
        }
        assert!(retried("nonce_gap", true), "the gap our own held-back transfer left");
        assert!(!retried("nonce_gap", false), "a gap the bench did not cause is an error");
        assert!(!retried("bad_signature", true));
    }
}
