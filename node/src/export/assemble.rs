//! Turns the `events_subscribe` stream into whole blocks, and refuses a stream no honest node
//! sends. Pure: no IO, no clock; the exporter feeds it notifications and writes what it returns.
//!
//! A node sends a block's transfers, then the block's own event (its cursor comes after theirs).
//! The assembler holds the transfers until their block arrives, so the exporter only ever writes
//! whole blocks: a crash between two events loses nothing that was written and writes nothing
//! twice, because the cursor written with a block is that block's own.

use taksa_consensus::block::BLOCK_TXS_MAX;
use taksa_rpc::json::{BlockSummaryJson, TransferNoticeJson};

/// A finalized block with every transfer in it, as the events stream delivered them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExportBlock {
    /// The block's summary; its `cursor` is where a stream resumes after it.
    pub(crate) block: BlockSummaryJson,
    /// Its transfers, by index.
    pub(crate) transfers: Vec<TransferNoticeJson>,
}

/// The last block written: the next one must extend it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tip {
    /// Its height.
    pub(crate) height: u64,
    /// Its hash (`0x…`), which the next block names as its parent.
    pub(crate) hash: String,
}

/// Why a stream was refused: the node is broken, lying or serves another chain. The exporter
/// drops it and goes on from its own cursor with the next node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum StreamError {
    #[error("block {got} does not follow height {tip}: the node skipped or repeated a block")]
    NotNext { tip: u64, got: u64 },
    #[error("block {height} names parent {got}, but block {} is {want}: the node serves another chain", height - 1)]
    WrongParent { height: u64, want: String, got: String },
    #[error("the first block is {0}: a stream from the start begins at height 0 or 1")]
    LateStart(u64),
    #[error("a transfer at {height}:{index} arrived in block {block}")]
    WrongHeight { height: u64, index: u32, block: u64 },
    #[error("transfer {height}:{index} is out of order (after index {after})")]
    OutOfOrder { height: u64, index: u32, after: u32 },
    #[error("transfer {height}:{index} names block {got}, but block {height} is {want}")]
    WrongBlock { height: u64, index: u32, want: String, got: String },
    #[error("transfer {height}:{index} lies beyond the block's {tx_count} transactions")]
    BeyondBlock { height: u64, index: u32, tx_count: u32 },
    #[error("more than {BLOCK_TXS_MAX} transfers before their block's event")]
    TooManyTransfers,
}

/// Collects transfers until their block's event, checking that every block extends the last.
#[derive(Debug)]
pub(crate) struct Assembler {
    tip: Option<Tip>,
    pending: Vec<TransferNoticeJson>,
}

impl Assembler {
    /// Resuming after `tip` (`None`: from the chain's start).
    pub(crate) fn new(tip: Option<Tip>) -> Assembler {
        Assembler { tip, pending: Vec::new() }
    }

    /// A transfer: held until its block's event.
    pub(crate) fn transfer(&mut self, t: TransferNoticeJson) -> Result<(), StreamError> {
        if self.pending.len() >= BLOCK_TXS_MAX {
            return Err(StreamError::TooManyTransfers);
        }
        if let Some(first) = self.pending.first() {
            if t.height != first.height {
                return Err(StreamError::WrongHeight { height: t.height, index: t.index, block: first.height });
            }
        }
        if let Some(last) = self.pending.last() {
            if t.index <= last.index {
                return Err(StreamError::OutOfOrder { height: t.height, index: t.index, after: last.index });
            }
        }
        self.pending.push(t);
        Ok(())
    }

    /// A block's own event: the block with the transfers held for it.
    pub(crate) fn block(&mut self, block: BlockSummaryJson) -> Result<ExportBlock, StreamError> {
        match &self.tip {
            Some(tip) if block.height != tip.height + 1 => {
                return Err(StreamError::NotNext { tip: tip.height, got: block.height })
            }
            Some(tip) if block.parent_hash != tip.hash => {
                return Err(StreamError::WrongParent {
                    height: block.height,
                    want: tip.hash.clone(),
                    got: block.parent_hash.clone(),
                })
            }
            None if block.height > 1 => return Err(StreamError::LateStart(block.height)),
            _ => {}
        }
        for t in &self.pending {
            if t.height != block.height {
                return Err(StreamError::WrongHeight { height: t.height, index: t.index, block: block.height });
            }
            if t.index >= block.tx_count {
                return Err(StreamError::BeyondBlock { height: t.height, index: t.index, tx_count: block.tx_count });
            }
            if t.transfer.block_hash != block.hash {
                return Err(StreamError::WrongBlock {
                    height: t.height,
                    index: t.index,
                    want: block.hash.clone(),
                    got: t.transfer.block_hash.clone(),
                });
            }
        }
        self.tip = Some(Tip { height: block.height, hash: block.hash.clone() });
        Ok(ExportBlock { block, transfers: std::mem::take(&mut self.pending) })
    }
}

#[cfg(test)]
mod tests {
    use taksa_rpc::json::TransferJson;

    use super::*;

    fn block(height: u64, tx_count: u32) -> BlockSummaryJson {
        BlockSummaryJson {
            hash: format!("0x{height:02}"),
            height,
            view: height,
            parent_hash: format!("0x{:02}", height.saturating_sub(1)),
            proposer: "tdev1proposer".into(),
            timestamp_ms: 1_000 * height,
            tx_count,
            fees: "0".into(),
            state_root: "0xroot".into(),
            cursor: format!("c{height}:{tx_count}"),
        }
    }

    fn transfer(height: u64, index: u32) -> TransferNoticeJson {
        TransferNoticeJson {
            cursor: format!("c{height}:{index}"),
            height,
            index,
            transfer: TransferJson {
                hash: format!("0xt{height}_{index}"),
                from: "tdev1a".into(),
                to: "tdev1b".into(),
                amount: "5".into(),
                fee: "1".into(),
                nonce: u64::from(index),
                memo: None,
                from_balance: "10".into(),
                to_balance: "5".into(),
                block_hash: format!("0x{height:02}"),
                timestamp_ms: 1_000 * height,
            },
        }
    }

    fn tip(height: u64) -> Option<Tip> {
        Some(Tip { height, hash: format!("0x{height:02}") })
    }

    #[test]
    fn a_block_carries_the_transfers_sent_before_it_and_the_next_starts_empty() {
        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(5, 0)).expect("first");
        a.transfer(transfer(5, 2)).expect("a gap in indices is another kind of transaction");
        let b = a.block(block(5, 3)).expect("block 5");
        assert_eq!(b.transfers.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 2]);
        let empty = a.block(block(6, 0)).expect("block 6");
        assert!(empty.transfers.is_empty());
    }

    #[test]
    fn a_stream_from_the_start_begins_at_height_0_or_1() {
        assert!(Assembler::new(None).block(block(1, 0)).is_ok());
        assert!(Assembler::new(None).block(block(0, 0)).is_ok());
        assert_eq!(Assembler::new(None).block(block(2, 0)), Err(StreamError::LateStart(2)));
    }

    #[test]
    fn a_skipped_or_repeated_block_is_refused() {
        let mut a = Assembler::new(tip(4));
        assert_eq!(a.block(block(6, 0)), Err(StreamError::NotNext { tip: 4, got: 6 }));
        assert_eq!(a.block(block(4, 0)), Err(StreamError::NotNext { tip: 4, got: 4 }));
    }

    #[test]
    fn a_block_of_another_chain_is_refused_by_its_parent() {
        let mut a = Assembler::new(Some(Tip { height: 4, hash: "0xother".into() }));
        assert!(matches!(a.block(block(5, 0)), Err(StreamError::WrongParent { height: 5, .. })));
    }

    #[test]
    fn transfers_out_of_order_of_another_height_or_block_are_refused() {
        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(5, 1)).expect("first");
        assert!(matches!(a.transfer(transfer(5, 1)), Err(StreamError::OutOfOrder { .. })));
        assert!(matches!(a.transfer(transfer(6, 2)), Err(StreamError::WrongHeight { .. })));

        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(5, 3)).expect("first");
        assert!(matches!(a.block(block(5, 3)), Err(StreamError::BeyondBlock { .. })));

        let mut a = Assembler::new(tip(4));
        a.transfer(transfer(6, 0)).expect("held");
        assert!(matches!(a.block(block(5, 1)), Err(StreamError::WrongHeight { .. })));

        let mut a = Assembler::new(tip(4));
        let mut t = transfer(5, 0);
        t.transfer.block_hash = "0xelsewhere".into();
        a.transfer(t).expect("held");
        assert!(matches!(a.block(block(5, 1)), Err(StreamError::WrongBlock { .. })));
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
