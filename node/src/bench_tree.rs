//! `taksa bench-tree`: what the state tree costs at a given number of accounts, in memory and
//! per block, and what its proofs weigh, measured on this machine.
//!
//! It builds the tree of N random accounts (the shape the node's store holds), applies blocks
//! that each change `--changes` accounts (a full block of 10,000 transfers changes about 20,000:
//! senders and recipients, fees to the proposer), and proves and verifies random accounts. The
//! node keeps the same nodes in its hot state, so the memory figure is what the tree adds to a
//! node at N accounts.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use rand::{Rng as _, SeedableRng as _};
use taksa_consensus::state::{next_tree, MemState};
use taksa_consensus::tree;
use taksa_consensus::{codec, Account, Address, PublicKey};

/// `taksa bench-tree`.
#[derive(Args, Debug)]
pub(crate) struct BenchTreeArgs {
    /// How many accounts the tree holds.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// How many accounts each measured block changes.
    #[arg(long, default_value_t = 20_000)]
    changes: u64,
    /// How many blocks to measure.
    #[arg(long, default_value_t = 10)]
    blocks: u64,
    /// How many accounts to prove and verify.
    #[arg(long, default_value_t = 10_000)]
    proofs: u64,
}

/// Builds, updates, proves and verifies, printing each figure as it is measured.
pub(crate) fn run(args: BenchTreeArgs) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut random_address = || {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        Address(PublicKey(b))
    };
    let started = Instant::now();
    let accounts: BTreeMap<Address, Account> = (0..args.accounts)
        .map(|i| (random_address(), Account { balance: 1_000 + u128::from(i), nonce: i % 7 }))
        .collect();
    let addresses: Vec<Address> = accounts.keys().copied().collect();
    let mut state = MemState::default();
    let built = next_tree(&state, &accounts, None)?;
    state.apply(&accounts, None, &built.nodes);
    drop(built);
    let build_s = started.elapsed().as_secs_f64();
    let nodes = state.tree.len();
    let per_account = |n: usize| n as f64 / args.accounts.max(1) as f64;
    println!(
        "bench-tree: {} accounts, {nodes} tree nodes ({:.2} per account), built in {build_s:.1} s",
        args.accounts,
        per_account(nodes)
    );
    // The node holds the same map (`Hot::tree`): its table is its capacity times an entry and a
    // control byte (hashbrown), whatever the allocator keeps around it.
    // hashbrown fills at most 7 of every 8 buckets, and its bucket count is a power of two.
    let entry = std::mem::size_of::<(tree::NodeKey, tree::Node)>() + 1;
    let buckets = (state.tree.capacity() * 8 / 7).next_power_of_two();
    println!(
        "bench-tree: the tree's map holds {:.0} B per account in memory ({buckets} buckets of {entry} B for {nodes} \
         nodes); this process's peak RSS is {} MiB",
        per_account(buckets * entry),
        crate::bench_state::proc_status_kib("VmHWM:") / 1024
    );
    let disk: usize = state.tree.iter().map(|(k, n)| k.to_bytes().len() + n.encode().len()).sum();
    println!(
        "bench-tree: the tree's keys and values take {:.0} B per account before RocksDB's compression",
        disk as f64 / args.accounts.max(1) as f64
    );
    measure_blocks(&args, &mut state, &addresses, &mut rng_from(11))?;
    measure_proofs(&args, &state, &addresses, &mut rng_from(13))?;
    Ok(())
}

fn rng_from(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Blocks that each change `changes` accounts (three in four existing, one in four new).
fn measure_blocks(
    args: &BenchTreeArgs,
    state: &mut MemState,
    addresses: &[Address],
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<()> {
    let mut total_s = 0.0;
    let mut written = 0usize;
    for _ in 0..args.blocks {
        let mut changes = BTreeMap::new();
        for i in 0..args.changes {
            let addr = if i % 4 == 3 {
                let mut b = [0u8; 32];
                rng.fill(&mut b);
                Address(PublicKey(b))
            } else {
                addresses[rng.gen_range(0..addresses.len())]
            };
            changes.insert(addr, Account { balance: rng.gen_range(1..1_000_000), nonce: i });
        }
        let started = Instant::now();
        let update = next_tree(&state.tree, &changes, None)?;
        total_s += started.elapsed().as_secs_f64();
        written += update.nodes.len();
        state.apply(&changes, None, &update.nodes);
    }
    let per_block_ms = total_s * 1000.0 / args.blocks.max(1) as f64;
    println!(
        "bench-tree: a block changing {} accounts: {per_block_ms:.1} ms of tree update ({:.2} µs per changed account), \
         {} node writes ({:.1} per changed account)",
        args.changes,
        per_block_ms * 1000.0 / args.changes.max(1) as f64,
        written / args.blocks.max(1) as usize,
        written as f64 / (args.blocks * args.changes).max(1) as f64
    );
    Ok(())
}

/// Proves random accounts and absent addresses, and verifies each proof.
fn measure_proofs(
    args: &BenchTreeArgs,
    state: &MemState,
    addresses: &[Address],
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<()> {
    let n = args.proofs.max(1);
    let keys: Vec<(tree::Proof, taksa_consensus::Hash, Option<taksa_consensus::Hash>)> = (0..n)
        .map(|_| {
            let addr = addresses[rng.gen_range(0..addresses.len())];
            let key = tree::account_key(&addr);
            let value = state.accounts.get(&addr).map(tree::account_value_hash);
            tree::prove(&state.tree, &key).map(|p| (p, key, value))
        })
        .collect::<Result<_, _>>()?;
    let root = state.root();
    let started = Instant::now();
    for (proof, key, value) in &keys {
        proof.verify(&root, key, value.as_ref())?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let siblings: usize = keys.iter().map(|(p, _, _)| p.siblings.len()).sum();
    let bytes: usize = keys.iter().map(|(p, _, _)| codec::encoded_len(p)).sum();
    let deepest = keys.iter().map(|(p, _, _)| p.siblings.len()).max().unwrap_or(0);
    println!(
        "bench-tree: a proof: {:.1} siblings on average (deepest {deepest}), {:.0} bytes encoded, verified in \
         {verify_us:.2} µs",
        siblings as f64 / n as f64,
        bytes as f64 / n as f64
    );
    Ok(())
}
