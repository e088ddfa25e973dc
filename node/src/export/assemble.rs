//! Turns the `events_subscribe` stream into whole blocks, and refuses a stream no honest node
//! sends. Pure: no IO, no clock; the exporter feeds it notifications and writes what it returns.
//!
//! A node sends a block's transfers, then the block's own event (its cursor comes after theirs).
//! The assembler holds the transfers until their block arrives, so the exporter only ever writes
//! whole blocks: a crash between two events loses nothing that was written and writes nothing
//! twice, because the cursor written with a block is that block's own.

use taksa_consensus::block::BLOCK_TXS_MAX;
use taksa_consensus::tx::MEMO_BYTES_MAX;
use taksa_rpc::json::{BlockSummaryJson, TransferJson, TransferNoticeJson};

/// The latest block time a row may carry (the last millisecond of year 9999): PostgreSQL's
/// `timestamptz` holds it, and no honest chain gets near it.
const TIMESTAMP_MS_MAX: u64 = 253_402_300_799_999;
/// The longest address accepted: a bech32m string of a short prefix and a 32-byte key is ~64.
const ADDRESS_CHARS_MAX: usize = 128;
/// The longest cursor accepted (the node's are 26 hex digits).
const CURSOR_CHARS_MAX: usize = 128;

/// A finalized block with every transfer in it, as the events stream delivered them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExportBlock {
    /// The block's summary; its `cursor` is where a stream resumes after it.
    pub(crate) block: BlockSummaryJson,
    /// Its transfers, by index: one per transaction.
    pub(crate) transfers: Vec<TransferNoticeJson>,
}

/// The last block written: the next one must extend it. Before the first, the genesis (height
/// 0, whose hash block 1 names as its parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tip {
    /// Its height.
    pub(crate) height: u64,
    /// Its hash (`0x…`), which the next block names as its parent.
    pub(crate) hash: String,
}

/// Why a stream was refused: the node is broken, lying or serves another chain. The exporter
/// drops it and goes on from its own position with the next node. Node-sent text is only shown
/// once checked to be a hash, or cut short.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum StreamError {
    #[error("block {got} does not follow height {tip}: the node skipped or repeated a block")]
    NotNext { tip: u64, got: u64 },
    #[error("block {height} names parent {got}, but block {} is {want}: the node serves another chain", height - 1)]
    WrongParent { height: u64, want: String, got: String },
    #[error("a transfer at {height}:{index} arrived with block {block}'s")]
    WrongHeight { height: u64, index: u32, block: u64 },
    #[error("transfer {height}:{index} is not the block's next (index {want}): one is missing or repeated")]
    NotNextTransfer { height: u64, index: u32, want: u32 },
    #[error("transfer {height}:{index} names block {got}, but block {height} is {want}")]
    WrongBlock { height: u64, index: u32, want: String, got: String },
    #[error("block {height} holds {tx_count} transactions but came with {got} transfers: the node left some out")]
    Incomplete { height: u64, tx_count: u32, got: usize },
    #[error("more than {BLOCK_TXS_MAX} transfers in one block")]
    TooManyTransfers,
    #[error("the node sent {field} {value:?}, which no honest node sends")]
    Malformed { field: &'static str, value: String },
}

/// Collects transfers until their block's event, checking every field, that each block extends
/// the last, and that it comes with exactly its transactions.
#[derive(Debug)]
pub(crate) struct Assembler {
    tip: Tip,
    pending: Vec<TransferNoticeJson>,
}

impl Assembler {
    /// Resuming after `tip`.
    pub(crate) fn new(tip: Tip) -> Assembler {
        Assembler { tip, pending: Vec::new() }
    }

    /// The last whole block received.
    pub(crate) fn tip(&self) -> &Tip {
        &self.tip
    }

    /// A transfer: checked, then held until its block's event.
    pub(crate) fn transfer(&mut self, t: TransferNoticeJson) -> Result<(), StreamError> {
        if self.pending.len() >= BLOCK_TXS_MAX {
            return Err(StreamError::TooManyTransfers);
        }
        check_transfer(&t.transfer)?;
        cursor(&t.cursor)?;
        if t.height != self.tip.height.saturating_add(1) {
            return Err(StreamError::WrongHeight { height: t.height, index: t.index, block: self.tip.height + 1 });
        }
        let want = u32::try_from(self.pending.len()).map_err(|_| StreamError::TooManyTransfers)?;
        if t.index != want {
            return Err(StreamError::NotNextTransfer { height: t.height, index: t.index, want });
        }
        self.pending.push(t);
        Ok(())
    }

    /// A block's own event: the block with the transfers held for it.
    pub(crate) fn block(&mut self, block: BlockSummaryJson) -> Result<ExportBlock, StreamError> {
        check_block(&block)?;
        if block.height != self.tip.height.saturating_add(1) {
            return Err(StreamError::NotNext { tip: self.tip.height, got: block.height });
        }
        if block.parent_hash != self.tip.hash {
            return Err(StreamError::WrongParent {
                height: block.height,
                want: self.tip.hash.clone(),
                got: block.parent_hash.clone(),
            });
        }
        if self.pending.len() != block.tx_count as usize {
            return Err(StreamError::Incomplete {
                height: block.height,
                tx_count: block.tx_count,
                got: self.pending.len(),
            });
        }
        for t in &self.pending {
            if t.transfer.block_hash != block.hash {
                return Err(StreamError::WrongBlock {
                    height: t.height,
                    index: t.index,
                    want: block.hash.clone(),
                    got: t.transfer.block_hash.clone(),
                });
            }
        }
        self.tip = Tip { height: block.height, hash: block.hash.clone() };
        Ok(ExportBlock { block, transfers: std::mem::take(&mut self.pending) })
    }
}

fn malformed(field: &'static str, value: &str) -> StreamError {
    StreamError::Malformed { field, value: value.chars().take(80).collect() }
}

/// `0x` and 64 lowercase hex digits.
fn hash(field: &'static str, v: &str) -> Result<(), StreamError> {
    let ok = v.len() == 66
        && v.starts_with("0x")
        && v.bytes().skip(2).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(malformed(field, v))
    }
}

/// A bech32m address: lowercase letters and digits, one `1`, bounded.
fn address(field: &'static str, v: &str) -> Result<(), StreamError> {
    let ok = !v.is_empty()
        && v.len() <= ADDRESS_CHARS_MAX
        && v.contains('1')
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(malformed(field, v))
    }
}

/// Base units: decimal digits that fit a `u128`.
fn amount(field: &'static str, v: &str) -> Result<(), StreamError> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u128>().is_ok() {
        Ok(())
    } else {
        Err(malformed(field, v))
    }
}

/// Fits PostgreSQL's `bigint`.
fn bigint(field: &'static str, v: u64) -> Result<(), StreamError> {
    if i64::try_from(v).is_ok() {
        Ok(())
    } else {
        Err(malformed(field, &v.to_string()))
    }
}

fn timestamp(v: u64) -> Result<(), StreamError> {
    if v <= TIMESTAMP_MS_MAX {
        Ok(())
    } else {
        Err(malformed("timestampMs", &v.to_string()))
    }
}

fn cursor(v: &str) -> Result<(), StreamError> {
    if !v.is_empty() && v.len() <= CURSOR_CHARS_MAX && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(malformed("cursor", v))
    }
}

fn check_block(b: &BlockSummaryJson) -> Result<(), StreamError> {
    hash("block hash", &b.hash)?;
    hash("parentHash", &b.parent_hash)?;
    hash("stateRoot", &b.state_root)?;
    address("proposer", &b.proposer)?;
    amount("fees", &b.fees)?;
    bigint("height", b.height)?;
    bigint("view", b.view)?;
    timestamp(b.timestamp_ms)?;
    cursor(&b.cursor)?;
    if b.tx_count as usize > BLOCK_TXS_MAX {
        return Err(StreamError::TooManyTransfers);
    }
    Ok(())
}

fn check_transfer(t: &TransferJson) -> Result<(), StreamError> {
    hash("transfer hash", &t.hash)?;
    hash("blockHash", &t.block_hash)?;
    address("from", &t.from)?;
    address("to", &t.to)?;
    amount("amount", &t.amount)?;
    amount("fee", &t.fee)?;
    amount("fromBalance", &t.from_balance)?;
    amount("toBalance", &t.to_balance)?;
    timestamp(t.timestamp_ms)?;
    if t.memo.as_ref().is_some_and(|m| m.len() > MEMO_BYTES_MAX) {
        return Err(malformed("memo", t.memo.as_deref().unwrap_or_default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(tag: u64) -> String {
        format!("0x{tag:064x}")
    }

    fn block(height: u64, tx_count: u32) -> BlockSummaryJson {
        BlockSummaryJson {
            hash: h(height),
            height,
            view: height,
            parent_hash: h(height.saturating_sub(1)),
            proposer: "tdev1proposer".into(),
            timestamp_ms: 1_000 * height,
            tx_count,
            fees: "0".into(),
            state_root: h(7),
            cursor: format!("01{height:016x}{tx_count:08x}"),
        }
    }

    fn transfer(height: u64, index: u32) -> TransferNoticeJson {
        TransferNoticeJson {
            cursor: format!("01{height:016x}{index:08x}"),
            height,
            index,
            transfer: TransferJson {
                hash: h(1_000_000 + u64::from(index)),
                from: "tdev1a".into(),
                to: "tdev1b".into(),
                amount: "5".into(),
                fee: "1".into(),
                nonce: u64::from(index),
                memo: None,
                from_balance: "10".into(),
                to_balance: "5".into(),
                block_hash: h(height),
                timestamp_ms: 1_000 * height,
            },
        }
    }

    fn tip(height: u64) -> Tip {
        Tip { height, hash: h(height) }
    }

    #[test]
    fn a_block_carries_the_transfers_sent_before_it_and_the_next_starts_empty() {
        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(5, 0)).expect("first");
        a.transfer(transfer(5, 1)).expect("second");
        let b = a.block(block(5, 2)).expect("block 5");
        assert_eq!(b.transfers.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 1]);
        let empty = a.block(block(6, 0)).expect("block 6");
        assert!(empty.transfers.is_empty());
    }

    #[test]
    fn the_first_block_must_name_the_genesis_as_its_parent() {
        assert!(Assembler::new(tip(0)).block(block(1, 0)).is_ok());
        let other_genesis = Tip { height: 0, hash: h(99) };
        assert!(matches!(Assembler::new(other_genesis).block(block(1, 0)), Err(StreamError::WrongParent { .. })));
        assert!(matches!(Assembler::new(tip(0)).block(block(2, 0)), Err(StreamError::NotNext { .. })));
    }

    #[test]
    fn a_skipped_or_repeated_block_is_refused() {
        let mut a = Assembler::new(tip(4));
        assert_eq!(a.block(block(6, 0)), Err(StreamError::NotNext { tip: 4, got: 6 }));
        assert_eq!(a.block(block(4, 0)), Err(StreamError::NotNext { tip: 4, got: 4 }));
    }

    #[test]
    fn a_block_of_another_chain_is_refused_by_its_parent() {
        let mut a = Assembler::new(Tip { height: 4, hash: h(44) });
        assert!(matches!(a.block(block(5, 0)), Err(StreamError::WrongParent { height: 5, .. })));
    }

    #[test]
    fn a_block_whose_transfers_were_left_out_repeated_or_reordered_is_refused() {
        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(5, 0)).expect("first");
        assert!(matches!(a.block(block(5, 2)), Err(StreamError::Incomplete { tx_count: 2, got: 1, .. })));

        let mut a = Assembler::new(tip(4));
        assert!(matches!(a.transfer(transfer(5, 1)), Err(StreamError::NotNextTransfer { want: 0, .. })));
        a.transfer(transfer(5, 0)).expect("first");
        assert!(matches!(a.transfer(transfer(5, 0)), Err(StreamError::NotNextTransfer { want: 1, .. })));
        assert!(matches!(a.transfer(transfer(6, 1)), Err(StreamError::WrongHeight { .. })));

        let mut a = Assembler::new(tip(4));
        let mut t = transfer(5, 0);
        t.transfer.block_hash = h(55);
        a.transfer(t).expect("held");
        assert!(matches!(a.block(block(5, 1)), Err(StreamError::WrongBlock { .. })));
    }

    #[test]
    fn fields_no_honest_node_sends_are_refused_before_they_reach_the_database() {
        let bad_transfers: Vec<fn(&mut TransferJson)> = vec![
            |t| t.hash = "0xnothex".into(),
            |t| t.block_hash = h(5).to_uppercase(),
            |t| t.from = "TDEV1A".into(),
            |t| t.to = "x".repeat(200),
            |t| t.amount = "1.5".into(),
            |t| t.fee = "-1".into(),
            |t| t.from_balance = "340282366920938463463374607431768211456".into(),
            |t| t.to_balance = "NaN".into(),
            |t| t.timestamp_ms = u64::MAX,
            |t| t.memo = Some("m".repeat(MEMO_BYTES_MAX + 1)),
        ];
        for (i, spoil) in bad_transfers.into_iter().enumerate() {
            let mut t = transfer(5, 0);
            spoil(&mut t.transfer);
            assert!(matches!(Assembler::new(tip(4)).transfer(t), Err(StreamError::Malformed { .. })), "case {i}");
        }
        let bad_blocks: Vec<fn(&mut BlockSummaryJson)> = vec![
            |b| b.state_root = "0x12".into(),
            |b| b.proposer = "a b".into(),
            |b| b.fees = "1e3".into(),
            |b| b.view = u64::MAX,
            |b| b.cursor = "not a cursor".into(),
            |b| b.tx_count = u32::MAX,
        ];
        for (i, spoil) in bad_blocks.into_iter().enumerate() {
            let mut b = block(5, 0);
            spoil(&mut b);
            assert!(Assembler::new(tip(4)).block(b).is_err(), "case {i}");
        }
        let mut t = transfer(5, 0);
        t.transfer.memo = Some("a memo with a \u{0} byte is fine: the chain allows it".into());
        assert!(Assembler::new(tip(4)).transfer(t).is_ok());
    }

    #[test]
    fn a_node_that_never_ends_a_block_cannot_grow_the_exporter_without_bound() {
        let mut a = Assembler::new(tip(4));
        for i in 0..BLOCK_TXS_MAX {
            a.transfer(transfer(5, u32::try_from(i).expect("fits"))).expect("within a block's bound");
        }
        assert_eq!(a.transfer(transfer(5, u32::MAX)), Err(StreamError::TooManyTransfers));
    }
}
