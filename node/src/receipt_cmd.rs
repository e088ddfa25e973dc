//! `taksa verify-receipt`: checks a payment receipt against a genesis, with no node.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use taksa_consensus::receipt::{self, PaymentReceipt};
use taksa_consensus::Genesis;

use crate::devnet;
use crate::wallet::amount::format_tks;
use crate::wallet::cli::utc_date;

/// The largest receipt file read: 64 descendant headers with their certificates fit well below.
const RECEIPT_FILE_BYTES_MAX: u64 = 8 << 20;

/// `taksa verify-receipt`.
#[derive(Args, Debug)]
pub(crate) struct VerifyReceiptArgs {
    /// The receipt (`taksa wallet receipt HASH > receipt.json`); `-` reads standard input.
    receipt: PathBuf,
    /// The chain's genesis file: the receipt must be final under its validators.
    #[arg(long, conflicts_with = "dev", required_unless_present = "dev")]
    genesis: Option<PathBuf>,
    /// Check against the dev chain's built-in genesis instead (`taksa dev`).
    #[arg(long)]
    dev: bool,
    /// The dev chain's --block-time-ms, which is part of its genesis.
    #[arg(long, default_value_t = 200, requires = "dev")]
    block_time_ms: u64,
}

/// Reads, checks and describes the receipt; an error (exit 1) says which check failed.
pub(crate) fn run(args: VerifyReceiptArgs) -> anyhow::Result<()> {
    let genesis = match &args.genesis {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the genesis file {}", path.display()))?;
            Genesis::from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => devnet::dev_genesis(args.block_time_ms),
    };
    let text = read_limited(&args.receipt)?;
    let receipt: PaymentReceipt = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Taksa receipt (taksa-receipt/v1 JSON)", args.receipt.display()))?;
    let paid = match receipt::verify(&receipt, &genesis) {
        Ok(p) => p,
        Err(e) => bail!("the receipt does not prove its payment: {e}"),
    };
    let hrp = &genesis.address_hrp;
    let tx = &paid.tx.tx;
    println!("valid: a final payment on {} (genesis {})", genesis.chain_id, genesis.hash());
    println!("  transaction  {}", paid.hash);
    println!("  from         {}", tx.from.to_bech32(hrp));
    println!("  to           {}", tx.to.to_bech32(hrp));
    println!("  amount       {} TKS ({} base units)", format_tks(tx.amount), tx.amount);
    println!("  fee          {} TKS", format_tks(tx.fee));
    if let Some(memo) = &tx.memo {
        println!("  memo         {memo}");
    }
    println!("  block        {} at height {}, {}", paid.block_hash, paid.height, utc_date(paid.timestamp_ms));
    println!("  finalized by a quorum of the genesis validators at height {}", paid.final_height);
    Ok(())
}

fn read_limited(path: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(RECEIPT_FILE_BYTES_MAX + 1).read_to_string(&mut text)
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        f.take(RECEIPT_FILE_BYTES_MAX + 1).read_to_string(&mut text)
    };
    read.with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > RECEIPT_FILE_BYTES_MAX {
        bail!("{} is larger than {RECEIPT_FILE_BYTES_MAX} bytes: not a receipt", path.display());
    }
    Ok(text)
}
