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
        .with_context(|| format!("{} is not a Taksa receipt (taksa-receipt/v3 JSON)", args.receipt.display()))?;
    let paid = match receipt::verify(&receipt, &genesis) {
        Ok(p) => p,
        Err(e) => bail!("the receipt does not prove its payment: {e}"),
    };
    print!("{}", describe(&paid, &genesis));
    Ok(())
}

/// What a valid receipt proves, as printed: every field the payer chose (the memo) escaped.
fn describe(paid: &receipt::Payment, genesis: &Genesis) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(which) = public_keys_chain(genesis) {
        let _ = writeln!(
            out,
            "WARNING: the validator keys of {which} are public; anyone can sign receipts for it. Valid here proves \
             nothing about money."
        );
    }
    let hrp = &genesis.address_hrp;
    let tx = &paid.tx.tx;
    let _ = writeln!(out, "valid: a final payment on {} (genesis {})", genesis.chain_id, genesis.hash());
    let _ = writeln!(out, "  transaction  {}", paid.hash);
    let _ = writeln!(out, "  from         {}", tx.from.to_bech32(hrp));
    let _ = writeln!(out, "  to           {}", tx.to.to_bech32(hrp));
    let _ = writeln!(out, "  amount       {} TKS ({} base units)", format_tks(tx.amount), tx.amount);
    let _ = writeln!(out, "  fee          {} TKS", format_tks(tx.fee));
    if let Some(memo) = &tx.memo {
        // The payer wrote it: escaped, so that no control sequence can redraw the lines above.
        let _ = writeln!(out, "  memo         \"{}\"", memo.escape_debug());
    }
    let _ =
        writeln!(out, "  block        {} at height {}, {}", paid.block_hash, paid.height, utc_date(paid.timestamp_ms));
    if paid.epoch == 0 {
        let _ = writeln!(out, "  finalized by a quorum of the genesis validators at height {}", paid.final_height);
    } else {
        let _ = writeln!(
            out,
            "  finalized by a quorum of epoch {}'s validators at height {} (their set followed from genesis through {} epoch ends)",
            paid.epoch, paid.final_height, paid.epoch
        );
    }
    out
}

/// The name of the chain when `genesis` is the dev chain's or the public testnet's, whose
/// validator keys derive from mnemonics published in the source.
fn public_keys_chain(genesis: &Genesis) -> Option<&'static str> {
    if genesis.validators == devnet::dev_genesis(BLOCK_TIME_ANY_MS).validators {
        return Some("the dev chain");
    }
    (genesis.validators == devnet::testnet_genesis().validators).then_some("the public testnet")
}

/// Any block time: the dev validators do not depend on it.
const BLOCK_TIME_ANY_MS: u64 = 200;

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

#[cfg(test)]
mod tests {
    use taksa_consensus::{Address, Transaction};

    use super::*;

    #[test]
    fn a_memo_cannot_redraw_the_report_and_public_chains_are_flagged() {
        let genesis = devnet::dev_genesis(100);
        let key = devnet::dev_account(0);
        let tx = Transaction {
            chain_id: genesis.chain_id.clone(),
            from: Address(key.public()),
            to: Address(devnet::dev_account(1).public()),
            amount: 1,
            fee: 1000,
            nonce: 0,
            valid_until_height: None,
            memo: Some("ok\x1b[1A\x1b[2K  amount       1000000 TKS\n".to_owned()),
            action: None,
        }
        .sign(&key, &genesis.hash());
        let paid = receipt::Payment {
            hash: tx.hash(),
            tx,
            height: 5,
            block_hash: taksa_consensus::Hash([1; 32]),
            timestamp_ms: 0,
            final_height: 5,
            epoch: 0,
        };
        let text = describe(&paid, &genesis);
        assert!(!text.contains('\x1b'), "no raw escape reaches the terminal: {text:?}");
        assert_eq!(text.lines().filter(|l| l.starts_with("  amount")).count(), 1, "{text}");
        assert!(text.starts_with("WARNING: the validator keys of the dev chain are public"), "{text}");
        assert!(describe(&paid, &devnet::testnet_genesis()).contains("the public testnet are public"));
    }
}
