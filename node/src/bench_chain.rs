//! `taksa bench-chain`: writes a long dev chain quickly, for the restart and sync benchmarks.
//!
//! The blocks are real: each is signed-for by the dev validator (a notarization of its parent in
//! its header and a finalization certificate beside it), links to its parent, and is committed
//! through the store's one commit path, so `taksa dev` continues the chain afterwards. They hold
//! no transactions: what a restart costs grows with the number of blocks, which is what this
//! varies.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use taksa_consensus::block::tx_root;
use taksa_consensus::codec;
use taksa_consensus::engine::{CertifiedBlock, SafetyRecord};
use taksa_consensus::state::Outcome;
use taksa_consensus::{Address, Block, Certificate, Domain, Header, Vote, VoteKind};
use taksa_storage::Store;

use crate::devnet::{dev_genesis, dev_validator_key};

/// `taksa bench-chain`.
#[derive(Args, Debug)]
pub(crate) struct BenchChainArgs {
    /// The data folder to write (a `taksa dev --data-dir`); a chain already there is extended.
    #[arg(long)]
    data_dir: PathBuf,
    /// The height the chain ends at.
    #[arg(long)]
    blocks: u64,
    /// The dev chain's block time, which names its genesis: `taksa dev` must be started with the
    /// same --block-time-ms to continue this chain.
    #[arg(long, default_value_t = 200)]
    block_time_ms: u64,
}

/// How often progress is printed, in blocks.
const PROGRESS_EVERY: u64 = 50_000;

/// Extends the chain in `args.data_dir` to `args.blocks` blocks.
pub(crate) fn run(args: BenchChainArgs) -> anyhow::Result<()> {
    let genesis = dev_genesis(args.block_time_ms);
    let key = dev_validator_key();
    let store = Store::open(&args.data_dir, &genesis)
        .with_context(|| format!("cannot open the dev chain in {}", args.data_dir.display()))?;
    let domain = Domain { chain_id: genesis.chain_id.clone(), genesis_hash: genesis.hash(), epoch: 0 };
    let set = genesis.validator_set();
    let proposer = Address::from_public_key(key.public());
    let epochs = genesis.epochs();
    let cert = |kind, view, block: &Block| {
        let epoch = epochs.of_height(block.header.height);
        let vote = Vote::sign(&domain.at_epoch(epoch), &key, kind, view, Some(block.hash()));
        Certificate::from_votes(&set, epoch, kind, view, Some(block.hash()), [&vote])
    };
    let start = store.head().height;
    if start >= args.blocks {
        println!("bench-chain: {} already holds {start} blocks", args.data_dir.display());
        return Ok(());
    }
    println!("bench-chain: writing blocks {}..={} to {}", start + 1, args.blocks, args.data_dir.display());
    let started = Instant::now();
    let mut parent = store.block_by_height(start)?.context("the head block is missing")?;
    // The validator never signs in a view below one it was in: the new blocks' views start above
    // both the head's and the stored record's of the same epoch (views restart with each).
    let record = crate::chain::stored_safety_record(&store)?;
    let now_ms = crate::chain::now_ms();
    let first_epoch = epochs.of_height(start + 1);
    let mut view = if epochs.starts_epoch(start + 1) { 0 } else { parent.header.view };
    if let Some(r) = record.filter(|r| r.epoch == first_epoch) {
        view = view.max(r.view);
    }
    for height in start + 1..=args.blocks {
        let ph = &parent.header;
        let parent_cert = if epochs.starts_epoch(height) {
            view = 0;
            None
        } else {
            Some(cert(VoteKind::Notarize, ph.view, &parent))
        };
        view += 1;
        let header = Header {
            chain_id: genesis.chain_id.clone(),
            height,
            view,
            parent_hash: parent.hash(),
            proposer,
            // One millisecond apart, ending about now.
            timestamp_ms: ph.timestamp_ms.saturating_add(1).max(now_ms.saturating_sub(args.blocks - height)),
            tx_root: tx_root(&[]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: ph.state_root,
            validator_set_hash: set.hash(),
            parent_cert,
        };
        let block = Block { header, evidence: Vec::new(), txs: Vec::new() };
        let outcome = Outcome {
            changes: Default::default(),
            governance: None,
            state_root: block.header.state_root,
            tree: Default::default(),
            receipts: Vec::new(),
        };
        let finalization = cert(VoteKind::Finalize, view, &block);
        store.commit_block(&block, Some(&finalization), &outcome, &[])?;
        if height % PROGRESS_EVERY == 0 {
            let done = height - start;
            let rate = done as f64 / started.elapsed().as_secs_f64();
            println!("bench-chain: {height}/{} ({rate:.0} blocks/s)", args.blocks);
        }
        parent = block;
    }
    // What the validator would have recorded after the last block: its notarization (the next
    // proposal's parent certificate) and finalization, and the view after it.
    let head = &parent.header;
    let certified = |kind| CertifiedBlock {
        certificate: cert(kind, head.view, &parent),
        height: head.height,
        timestamp_ms: head.timestamp_ms,
    };
    let record = SafetyRecord {
        epoch: epochs.of_height(head.height),
        view: head.view + 1,
        votes: Vec::new(),
        voted_blocks: Vec::new(),
        notarized: Some(certified(VoteKind::Notarize)),
        nullifications: Vec::new(),
        finalized: Some(certified(VoteKind::Finalize)),
    };
    store.put_safety_record(&codec::encode(&record))?;
    store.flush()?;
    let written = args.blocks - start;
    if store.head().height != args.blocks {
        bail!("the chain ends at {} instead of {}", store.head().height, args.blocks);
    }
    println!(
        "bench-chain: wrote {written} blocks in {:.1} s; the chain ends at height {}",
        started.elapsed().as_secs_f64(),
        args.blocks
    );
    Ok(())
}
