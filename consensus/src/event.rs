//! Events: what each finalized block tells the world, in one total order.
//!
//! Every finalized block yields one [`Event::Transfer`] per transaction, at cursor
//! `(height, index)` where `index` is the transaction's position in the block, and then one
//! [`Event::Block`] at `(height, tx_count)` that closes the block. Cursors order events like a
//! Kafka offset: a consumer that remembers the last cursor it saw can resume strictly after it
//! and miss nothing, on any node, since every node derives the same events from the same blocks.

use bincode::{Decode, Encode};

use crate::block::Block;
use crate::crypto::Hash;
use crate::state::Receipt;
use crate::tx::SignedTransaction;
use crate::Address;

/// The position of an event: `(height, index)`, ordered by height, then index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Cursor {
    /// The block height.
    pub height: u64,
    /// The position in the block: a transaction's index, or the transaction count for the
    /// block's own event.
    pub index: u32,
}

impl Cursor {
    /// The cursor at `(height, index)`.
    pub const fn new(height: u64, index: u32) -> Cursor {
        Cursor { height, index }
    }

    /// The cursor just before every event at `height` and above: resuming after it starts with
    /// the first event of `height`. `None` for height 0 (there is nothing before genesis).
    pub fn before_height(height: u64) -> Option<Cursor> {
        height.checked_sub(1).map(|h| Cursor { height: h, index: u32::MAX })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.height, self.index)
    }
}

/// A transfer in a finalized block, with both parties' balances right after it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TransferEvent {
    /// The transaction's hash.
    pub hash: Hash,
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// The amount moved, in base units.
    pub amount: u128,
    /// The fee paid to the block's proposer, in base units.
    pub fee: u128,
    /// The sender's nonce this transaction used.
    pub nonce: u64,
    /// The memo, if any.
    pub memo: Option<String>,
    /// The sender's balance after the transaction.
    pub from_balance: u128,
    /// The recipient's balance after the transaction.
    pub to_balance: u128,
    /// The block's hash.
    pub block_hash: Hash,
    /// The block's timestamp, in Unix milliseconds.
    pub timestamp_ms: u64,
}

/// A finalized block, after all of its transfers.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockEvent {
    /// The block's hash.
    pub hash: Hash,
    /// The block's height.
    pub height: u64,
    /// The consensus view it was proposed in.
    pub view: u64,
    /// The parent's hash.
    pub parent_hash: Hash,
    /// The validator that proposed it.
    pub proposer: Address,
    /// Its timestamp, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// How many transactions it holds.
    pub tx_count: u32,
    /// The sum of its transactions' fees, in base units (saturating).
    pub fees: u128,
    /// The state digest after it.
    pub state_root: Hash,
}

/// One event of the finalized chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Event {
    /// A transaction was finalized.
    Transfer(TransferEvent),
    /// A block was finalized; it follows the block's transfers.
    Block(BlockEvent),
}

impl Event {
    /// Whether `address` sent or received this event's transfer.
    pub fn touches(&self, address: &Address) -> bool {
        match self {
            Event::Transfer(t) => t.from == *address || t.to == *address,
            Event::Block(_) => false,
        }
    }
}

/// The event of one committed transfer: `stx` with its `receipt`, in the block `block_hash`
/// stamped `timestamp_ms`. [`block_events`] makes every transfer event with it, so an event read
/// back one at a time is the one the live feed sent.
pub fn transfer_event(stx: &SignedTransaction, receipt: Receipt, block_hash: Hash, timestamp_ms: u64) -> TransferEvent {
    let tx = &stx.tx;
    TransferEvent {
        hash: stx.hash(),
        from: tx.from,
        to: tx.to,
        amount: tx.amount,
        fee: tx.fee,
        nonce: tx.nonce,
        memo: tx.memo.clone(),
        from_balance: receipt.from_balance,
        to_balance: receipt.to_balance,
        block_hash,
        timestamp_ms,
    }
}

/// The events of a finalized `block`, in cursor order. `receipts` are its execution receipts,
/// one per transaction; a missing receipt (which execution never produces) reads as zero
/// balances rather than dropping the event.
pub fn block_events(block: &Block, receipts: &[Receipt]) -> Vec<(Cursor, Event)> {
    let h = &block.header;
    let block_hash = block.hash();
    let mut out = Vec::with_capacity(block.txs.len().saturating_add(1));
    let mut fees: u128 = 0;
    let mut index: u32 = 0;
    for (stx, receipt) in block.txs.iter().zip(receipts.iter().copied().chain(std::iter::repeat(Receipt::default()))) {
        fees = fees.saturating_add(stx.tx.fee);
        let event = transfer_event(stx, receipt, block_hash, h.timestamp_ms);
        out.push((Cursor::new(h.height, index), Event::Transfer(event)));
        index = index.saturating_add(1);
    }
    let summary = BlockEvent {
        hash: block_hash,
        height: h.height,
        view: h.view,
        parent_hash: h.parent_hash,
        proposer: h.proposer,
        timestamp_ms: h.timestamp_ms,
        tx_count: index,
        fees,
        state_root: h.state_root,
    };
    out.push((Cursor::new(h.height, index), Event::Block(summary)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Header;
    use crate::{Keypair, Transaction};

    fn block_with(txs: usize) -> Block {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let txs = (0..txs)
            .map(|n| {
                Transaction {
                    chain_id: "t".into(),
                    from: Address(alice.public()),
                    to: Address(bob.public()),
                    amount: 10,
                    fee: 3,
                    nonce: n as u64,
                    valid_until_height: None,
                    memo: None,
                    action: None,
                }
                .sign(&alice, &Hash::ZERO)
            })
            .collect();
        let header = Header {
            chain_id: "t".into(),
            height: 5,
            view: 9,
            parent_hash: Hash([1; 32]),
            proposer: Address(bob.public()),
            timestamp_ms: 77,
            tx_root: Hash::ZERO,
            evidence_root: crate::block::evidence_root(&[]),
            state_root: Hash([2; 32]),
            validator_set_hash: Hash::ZERO,
            parent_cert: None,
        };
        Block { header, evidence: Vec::new(), txs }
    }

    #[test]
    fn transfers_take_their_block_index_and_the_block_event_closes_the_block() {
        let block = block_with(3);
        let receipts = [Receipt { from_balance: 87, to_balance: 13 }; 3];
        let events = block_events(&block, &receipts);
        let cursors: Vec<Cursor> = events.iter().map(|(c, _)| *c).collect();
        assert_eq!(cursors, vec![Cursor::new(5, 0), Cursor::new(5, 1), Cursor::new(5, 2), Cursor::new(5, 3)]);
        let Event::Transfer(first) = &events[0].1 else { panic!("a transfer comes first") };
        assert_eq!((first.hash, first.from_balance, first.to_balance), (block.txs[0].hash(), 87, 13));
        assert_eq!(first.block_hash, block.hash());
        let Event::Block(summary) = &events[3].1 else { panic!("the block event comes last") };
        assert_eq!((summary.tx_count, summary.fees, summary.hash), (3, 9, block.hash()));
    }

    #[test]
    fn an_empty_block_yields_only_its_block_event_at_index_zero() {
        let events = block_events(&block_with(0), &[]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, Cursor::new(5, 0));
        assert!(matches!(events[0].1, Event::Block(_)));
    }

    #[test]
    fn cursors_order_by_height_then_index() {
        assert!(Cursor::new(1, u32::MAX) < Cursor::new(2, 0));
        assert!(Cursor::new(2, 0) < Cursor::new(2, 1));
        assert_eq!(Cursor::before_height(0), None);
        assert!(Cursor::before_height(3).is_some_and(|c| c < Cursor::new(3, 0) && c > Cursor::new(2, 1_000)));
    }

    #[test]
    fn touches_names_both_parties_and_never_a_block() {
        let block = block_with(1);
        let events = block_events(&block, &[Receipt::default()]);
        let from = block.txs[0].tx.from;
        assert!(events[0].1.touches(&from));
        assert!(events[0].1.touches(&block.txs[0].tx.to));
        assert!(!events[1].1.touches(&from));
    }
}
