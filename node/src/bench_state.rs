//! `taksa bench-state`: what a node's state costs at a given number of accounts with the state on
//! disk behind the store's bounded cache: memory while the accounts are made and after a
//! restart, how long the restart takes, a block's tree update over a tree mostly on disk, and
//! reads and proofs of accounts that are not in the cache.
//!
//! It writes a chain of its own (a genesis named `taksa-bench-state`) into a fresh folder: blocks
//! without transactions whose outcomes create `--per-block` random accounts each, committed
//! through the store's one commit path (tree update over the store, one atomic batch, the
//! cache's write-through), so the figures are the node's store's, not a model of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use rand::{Rng as _, SeedableRng as _};
use taksa_consensus::block::tx_root;
use taksa_consensus::state::{next_tree, Outcome};
use taksa_consensus::tree::{self, account_value_hash};
use taksa_consensus::{codec, Account, Address, Block, Genesis, Header, PublicKey};
use taksa_storage::{Store, StoreOptions};

/// `taksa bench-state`.
#[derive(Args, Debug)]
pub(crate) struct BenchStateArgs {
    /// How many accounts to make.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// Accounts made per block.
    #[arg(long, default_value_t = 20_000)]
    per_block: u64,
    /// The store's state cache, in MiB (what `taksa node --state-cache-mb` sets).
    #[arg(long, default_value_t = taksa_storage::STATE_CACHE_BYTES_DEFAULT / (1024 * 1024))]
    cache_mb: u64,
    /// An empty or missing folder to write the chain into (it is left there; delete it after).
    #[arg(long)]
    data_dir: PathBuf,
    /// Blocks measured after the build, each changing `--changes` accounts (three in four
    /// existing, one in four new).
    #[arg(long, default_value_t = 10)]
    blocks: u64,
    /// Accounts changed per measured block (a full block of 10,000 transfers changes about
    /// 20,000).
    #[arg(long, default_value_t = 20_000)]
    changes: u64,
    /// Random accounts read, and proven, after the restart.
    #[arg(long, default_value_t = 10_000)]
    reads: u64,
}

/// Prints progress this often, in accounts.
const PROGRESS_EVERY_ACCOUNTS: u64 = 1_000_000;

/// The bench chain's genesis: one validator, no funds, one epoch for good.
fn bench_genesis() -> Genesis {
    Genesis {
        chain_id: "taksa-bench-state".to_owned(),
        address_hrp: "tks".to_owned(),
        genesis_time_ms: 1_700_000_000_000,
        block_time_ms: 1000,
        fee_floor: 1,
        epoch_length: u64::MAX / 4,
        validators: vec![Address(PublicKey([1; 32]))],
        validator_names: vec!["bench".to_owned()],
        allocations: Vec::new(),
    }
}

/// The address of account `i` (random-looking, so the tree's shape is a real one).
fn address_of(i: u64) -> Address {
    let digest = taksa_consensus::Hash::of(&[b"bench-state", &i.to_be_bytes()]);
    Address(PublicKey(digest.0))
}

/// Builds, restarts and measures, printing each figure as it is measured.
pub(crate) fn run(args: BenchStateArgs) -> anyhow::Result<()> {
    let genesis = bench_genesis();
    let cache_bytes = args.cache_mb.saturating_mul(1024 * 1024);
    let open = || {
        Store::open_with(&args.data_dir, &genesis, StoreOptions { cache_bytes, history_blocks: 0 })
            .with_context(|| format!("cannot open {}", args.data_dir.display()))
    };
    let opened = Instant::now();
    let store = open()?;
    let open_ms = opened.elapsed().as_secs_f64() * 1000.0;
    let mut made = store.account_count();
    if made >= args.accounts {
        println!(
            "bench-state: opened {made} accounts in {open_ms:.0} ms; this process's RSS after open: {} MiB",
            proc_status_kib("VmRSS:") / 1024
        );
        return measure(&args, &store, &genesis);
    }
    println!(
        "bench-state: making accounts {made}..{} , {} per block, with a {} MiB state cache, in {}",
        args.accounts,
        args.per_block,
        args.cache_mb,
        args.data_dir.display()
    );
    let started = Instant::now();
    // The tree update's seconds and the blocks since the last progress line.
    let (mut update_s, mut blocks) = (0.0, 0u64);
    while made < args.accounts {
        let n = args.per_block.min(args.accounts - made);
        let changes: BTreeMap<Address, Account> =
            (made..made + n).map(|i| (address_of(i), Account { balance: u128::from(i) + 1, nonce: 0 })).collect();
        update_s += commit(&store, &genesis, changes)?;
        blocks += 1;
        let before = made;
        made += n;
        if made / PROGRESS_EVERY_ACCOUNTS != before / PROGRESS_EVERY_ACCOUNTS || made == args.accounts {
            let (accounts, nodes, (account_bytes, node_bytes)) = store.cache_usage();
            println!(
                "bench-state: {made} accounts after {:.0} s ({:.1} ms of tree update per block lately); RSS {} MiB; \
                 cache {accounts} accounts ({:.0} B each) + {nodes} nodes ({:.0} B each), {} MiB",
                started.elapsed().as_secs_f64(),
                update_s * 1000.0 / blocks.max(1) as f64,
                proc_status_kib("VmRSS:") / 1024,
                account_bytes as f64 / accounts.max(1) as f64,
                node_bytes as f64 / nodes.max(1) as f64,
                (account_bytes + node_bytes) / (1024 * 1024)
            );
            (update_s, blocks) = (0.0, 0);
        }
    }
    store.flush()?;
    println!(
        "bench-state: made; peak RSS {} MiB. Run the same command again to measure a restart in a fresh process",
        proc_status_kib("VmHWM:") / 1024
    );
    Ok(())
}

/// Reads and proves random accounts, then commits blocks over the store, printing each figure.
fn measure(args: &BenchStateArgs, store: &Store, genesis: &Genesis) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let reads = args.reads.max(1);
    let picks: Vec<u64> = (0..reads).map(|_| rng.gen_range(0..args.accounts)).collect();
    let timer = Instant::now();
    for &i in &picks {
        let account = store.account(&address_of(i));
        if account.balance != u128::from(i) + 1 {
            bail!("account {i} reads back as {account:?}");
        }
    }
    let read_us = timer.elapsed().as_secs_f64() * 1e6 / reads as f64;
    let timer = Instant::now();
    let mut proof_bytes = 0usize;
    for &i in &picks {
        let addr = address_of(i);
        let (header, account, proof) = store.account_proof(&addr, None)?;
        proof.verify(&header.state_root, &tree::account_key(&addr), Some(&account_value_hash(&account)))?;
        proof_bytes += codec::encoded_len(&proof);
    }
    let proof_us = timer.elapsed().as_secs_f64() * 1e6 / reads as f64;
    println!(
        "bench-state: {reads} random accounts after the restart: {read_us:.1} µs per read (cache, else disk), \
         {proof_us:.1} µs per proof read from a snapshot and verified, {:.0} bytes per proof",
        proof_bytes as f64 / reads as f64
    );

    let mut block_s = 0.0;
    for b in 0..args.blocks {
        let changes: BTreeMap<Address, Account> = (0..args.changes)
            .map(|c| {
                let i = if c % 4 == 3 { args.accounts + b * args.changes + c } else { rng.gen_range(0..args.accounts) };
                (address_of(i), Account { balance: rng.gen_range(1..1_000_000), nonce: c })
            })
            .collect();
        block_s += commit(store, genesis, changes)?;
    }
    let per_block_ms = block_s * 1000.0 / args.blocks.max(1) as f64;
    let usage = store.disk_usage()?;
    println!(
        "bench-state: a block changing {} accounts over the restarted store: {per_block_ms:.1} ms of tree update; \
         RSS {} MiB, peak {} MiB; data folder {} MiB ({:.0} B per account)",
        args.changes,
        proc_status_kib("VmRSS:") / 1024,
        proc_status_kib("VmHWM:") / 1024,
        usage.folder_bytes / (1024 * 1024),
        usage.folder_bytes as f64 / store.account_count().max(1) as f64
    );
    Ok(())
}

/// Commits a block without transactions whose outcome is `changes`; returns the seconds its
/// tree update took.
fn commit(store: &Store, genesis: &Genesis, changes: BTreeMap<Address, Account>) -> anyhow::Result<f64> {
    let head = store.head();
    let timer = Instant::now();
    let update = next_tree(store, &changes, None).context("the stored tree lacks a node")?;
    let update_s = timer.elapsed().as_secs_f64();
    let height = head.height + 1;
    let header = Header {
        chain_id: genesis.chain_id.clone(),
        height,
        view: height,
        parent_hash: head.hash(),
        proposer: genesis.validators[0],
        timestamp_ms: genesis.genesis_time_ms + height * genesis.block_time_ms,
        tx_root: tx_root(&[]),
        evidence_root: taksa_consensus::block::evidence_root(&[]),
        state_root: update.root,
        validator_set_hash: genesis.validator_set().hash(),
        parent_cert: None,
    };
    let outcome =
        Outcome { changes, governance: None, state_root: update.root, tree: update.nodes, receipts: Vec::new() };
    store.commit_block(&Block { header, evidence: Vec::new(), txs: Vec::new() }, None, &outcome, &[])?;
    Ok(update_s)
}

/// A figure of this process from /proc/self/status, KiB (0 elsewhere).
pub(crate) fn proc_status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
