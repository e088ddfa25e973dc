//! Offline looks at a stopped node's database: `taksa db-stats` (what it takes on disk, by column
//! family and per committed transaction) and `taksa db-check` (every stored height linked).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use taksa_storage::DiskUsage;

/// `taksa db-stats`.
#[derive(Args, Debug)]
pub(crate) struct DbStatsArgs {
    /// The stopped node's data folder (its --data-dir); a running node holds the database's lock.
    #[arg(long, env = "TAKSA_DATA_DIR", default_value_os_t = crate::cli::default_dev_dir())]
    data_dir: PathBuf,
    /// First flush every memtable and compact every column family (what a long-running node's
    /// tables converge to). Writes to the folder; the chain's content does not change.
    #[arg(long)]
    compact: bool,
    /// Write the figures to this file as JSON as well.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// `taksa db-check`.
#[derive(Args, Debug)]
pub(crate) struct DbCheckArgs {
    /// The stopped node's data folder (its --data-dir); a running node holds the database's lock.
    #[arg(long, env = "TAKSA_DATA_DIR", default_value_os_t = crate::cli::default_dev_dir())]
    data_dir: PathBuf,
}

/// Walks every height, rebuilds the state tree, and says what it found.
pub(crate) fn check(args: DbCheckArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    println!("db-check: checking {}", args.data_dir.display());
    let mut progress = |step: &str| println!("db-check: {step} ({:.1} s)", started.elapsed().as_secs_f64());
    let head = taksa_storage::verify_chain(&args.data_dir, &mut progress)
        .with_context(|| format!("the chain in {} did not check out", args.data_dir.display()))?;
    println!(
        "db-check: heights 0..={head} are present, each block hashes to its key and links to its parent, and the \
         state tree is the one the stored accounts give ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints the table and writes the JSON.
pub(crate) fn stats(args: DbStatsArgs) -> anyhow::Result<()> {
    let usage = DiskUsage::measure(&args.data_dir, args.compact)
        .with_context(|| format!("cannot measure the database in {}", args.data_dir.display()))?;
    let per_tx = |bytes: u64| if usage.txs_total == 0 { 0.0 } else { bytes as f64 / usage.txs_total as f64 };
    println!(
        "db-stats: {} at height {}, {} transactions{}",
        args.data_dir.display(),
        usage.head_height,
        usage.txs_total,
        if args.compact { " (flushed and compacted first)" } else { "" }
    );
    println!("{:<12} {:>14} {:>14} {:>12} {:>10}", "column", "tables (B)", "memtables (B)", "keys (est.)", "B/tx");
    let mut sst_total = 0u64;
    for c in &usage.columns {
        sst_total = sst_total.saturating_add(c.sst_bytes);
        println!(
            "{:<12} {:>14} {:>14} {:>12} {:>10.1}",
            c.name,
            c.sst_bytes,
            c.memtable_bytes,
            c.keys_estimate,
            per_tx(c.sst_bytes)
        );
    }
    println!("{:<12} {:>14} {:>14} {:>12} {:>10.1}", "all tables", sst_total, "", "", per_tx(sst_total));
    println!("{:<12} {:>14} {:>14} {:>12} {:>10.1}", "write log", usage.wal_bytes, "", "", per_tx(usage.wal_bytes));
    println!(
        "{:<12} {:>14} {:>14} {:>12} {:>10.1}",
        "other files",
        usage.other_bytes,
        "",
        "",
        per_tx(usage.other_bytes)
    );
    println!("{:<12} {:>14} {:>14} {:>12} {:>10.1}", "folder", usage.folder_bytes, "", "", per_tx(usage.folder_bytes));
    if let Some(path) = args.json_out {
        let columns: serde_json::Map<String, serde_json::Value> = usage
            .columns
            .iter()
            .map(|c| {
                let v = serde_json::json!({
                    "sstBytes": c.sst_bytes, "memtableBytes": c.memtable_bytes, "keysEstimate": c.keys_estimate,
                });
                (c.name.to_owned(), v)
            })
            .collect();
        let figures = serde_json::json!({
            "headHeight": usage.head_height,
            "txsTotal": usage.txs_total,
            "compacted": args.compact,
            "columns": columns,
            "sstBytes": sst_total,
            "walBytes": usage.wal_bytes,
            "otherBytes": usage.other_bytes,
            "folderBytes": usage.folder_bytes,
            "folderBytesPerTx": per_tx(usage.folder_bytes),
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
