//! Reads of what the commit path derives from each block: events by cursor (all, an address's,
//! blocks only), block summaries, address history in either order, totals and validator
//! statistics, and the operator probes (size on disk, a test write).

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};
use taksa_consensus::event::transfer_event;
use taksa_consensus::state::Receipt;
use taksa_consensus::{Address, BlockEvent, Cursor, Event, Hash};

use crate::check::hex;
use crate::schema::{
    decode_receipts, height_key, history_key, parse_height_key, parse_history_key, receipt_at, HistoryItem,
    ValidatorStats, CF_EVENTS, CF_HISTORY, CF_META, CF_SUMMARIES, FLAG_RECEIVED, FLAG_SENT, STORED_EVENT_BYTES_MAX,
};
use crate::{StorageError, Store};

/// The most events one read returns.
pub const EVENTS_LIMIT_MAX: usize = 10_000;

/// meta key of the readiness probe's test write.
const META_PROBE: &[u8] = b"probe";

/// Which of an address's history entries a read lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryFilter {
    /// Sent or received.
    #[default]
    Any,
    /// Only those it sent.
    Sent,
    /// Only those it received.
    Received,
}

impl HistoryFilter {
    fn admits(self, item: &HistoryItem) -> bool {
        match self {
            HistoryFilter::Any => true,
            HistoryFilter::Sent => item.sent,
            HistoryFilter::Received => item.received,
        }
    }
}

impl Store {
    /// Up to `limit` events (capped at [`EVENTS_LIMIT_MAX`]) strictly after `after`, from the
    /// first event when `None`, in cursor order. Each transfer event is derived again from the
    /// block and its receipts by the function that made the live feed's
    /// (`taksa_consensus::event::transfer_event`), and the block's own event is its stored
    /// summary, so they are the same; a test compares them.
    pub fn events_after(&self, after: Option<Cursor>, limit: usize) -> Result<Vec<(Cursor, Event)>, StorageError> {
        let limit = limit.min(EVENTS_LIMIT_MAX);
        let mut out = Vec::new();
        let head = self.head().height;
        let mut height = after.map_or(1, |c| c.height.max(1));
        while out.len() < limit && height <= head {
            let summary =
                self.summary(height)?.ok_or_else(|| self.db().corrupt(format!("block {height} has no summary")))?;
            // The first transfer of this block still to deliver.
            let first = match after {
                Some(a) if a.height == height => a.index.saturating_add(1),
                _ => 0,
            };
            if first < summary.tx_count {
                let block = self
                    .block_by_height(height)?
                    .ok_or_else(|| self.db().corrupt(format!("block {height} is missing")))?;
                let receipts = self.receipts(height, block.txs.len())?;
                // Only the events this page takes are made: a subscriber catching up through a
                // full block in pages must not pay for the whole block on every page.
                let skip = usize::try_from(first).unwrap_or(usize::MAX);
                for (i, (stx, receipt)) in block.txs.iter().zip(receipts).enumerate().skip(skip) {
                    if out.len() >= limit {
                        break;
                    }
                    let event = transfer_event(stx, receipt, summary.hash, summary.timestamp_ms);
                    let index = u32::try_from(i).unwrap_or(u32::MAX);
                    out.push((Cursor::new(height, index), Event::Transfer(event)));
                }
            }
            if out.len() < limit && after.is_none_or(|a| Cursor::new(height, summary.tx_count) > a) {
                out.push((Cursor::new(height, summary.tx_count), Event::Block(summary)));
            }
            height = height.saturating_add(1);
        }
        Ok(out)
    }

    /// The receipts of the block at `height`, which holds `count` transactions.
    fn receipts(&self, height: u64, count: usize) -> Result<Vec<Receipt>, StorageError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let receipts = self.db().with_pinned(CF_EVENTS, &height_key(height), decode_receipts)?.flatten();
        match receipts {
            Some(r) if r.len() == count => Ok(r),
            _ => Err(self.db().corrupt(format!("the receipts of block {height} are missing or not {count}"))),
        }
    }

    /// Up to `limit` transfers that `addr` sent or received, strictly after `after`, in cursor
    /// order (found through the history index, so the cost does not depend on other traffic).
    pub fn address_events_after(
        &self,
        addr: &Address,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, Event)>, StorageError> {
        let items = self.history_page(addr, after.map(|c| (c.height, c.index)), false, HistoryFilter::Any, limit)?;
        let mut out = Vec::with_capacity(items.len());
        let mut summary: Option<BlockEvent> = None;
        for item in items {
            let cursor = Cursor::new(item.height, item.index);
            let missing = || self.db().corrupt(format!("history lists {cursor} but no transfer is stored there"));
            if summary.as_ref().is_none_or(|s| s.height != item.height) {
                summary = Some(self.summary(item.height)?.ok_or_else(missing)?);
            }
            let (block_hash, timestamp_ms) = summary.as_ref().map_or((Hash::ZERO, 0), |s| (s.hash, s.timestamp_ms));
            let tx = self.tx_at(item.height, item.index, item.span)?.ok_or_else(missing)?;
            let index = usize::try_from(item.index).map_err(|_| missing())?;
            let receipt =
                self.db().with_pinned(CF_EVENTS, &height_key(item.height), |bytes| receipt_at(bytes, index))?;
            let receipt = receipt.flatten().ok_or_else(missing)?;
            out.push((cursor, Event::Transfer(transfer_event(&tx, receipt, block_hash, timestamp_ms))));
        }
        Ok(out)
    }

    /// Up to `limit` block events strictly after `after`, in cursor order.
    pub fn block_events_after(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, Event)>, StorageError> {
        let limit = limit.min(EVENTS_LIMIT_MAX);
        let mut out = Vec::new();
        let from = after.map_or(0, |c| c.height);
        let iter = self
            .db()
            .db
            .iterator_cf(self.db().cf(CF_SUMMARIES)?, IteratorMode::From(&height_key(from), Direction::Forward));
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (_, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
            let summary: BlockEvent = self.db().decode(&value, STORED_EVENT_BYTES_MAX, || "a block summary".into())?;
            let cursor = Cursor::new(summary.height, summary.tx_count);
            if after.is_none_or(|a| cursor > a) {
                out.push((cursor, Event::Block(summary)));
            }
        }
        Ok(out)
    }

    /// The summary of the block at `height` (genesis has none).
    pub fn summary(&self, height: u64) -> Result<Option<BlockEvent>, StorageError> {
        self.db().get_decoded(CF_SUMMARIES, &height_key(height), STORED_EVENT_BYTES_MAX, || {
            format!("the summary of block {height}")
        })
    }

    /// Up to `limit` block summaries (capped at [`EVENTS_LIMIT_MAX`]), newest first, strictly
    /// below `below_height` (from the head when `None`).
    pub fn summaries_before(&self, below_height: Option<u64>, limit: usize) -> Result<Vec<BlockEvent>, StorageError> {
        let limit = limit.min(EVENTS_LIMIT_MAX);
        let mut out = Vec::new();
        let Some(top) = below_height.map_or(Some(u64::MAX), |h| h.checked_sub(1)) else { return Ok(out) };
        let iter = self
            .db()
            .db
            .iterator_cf(self.db().cf(CF_SUMMARIES)?, IteratorMode::From(&height_key(top), Direction::Reverse));
        for item in iter.take(limit) {
            let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
            let height = parse_height_key(&key)
                .ok_or_else(|| self.db().corrupt(format!("summaries key 0x{} is not 8 bytes", hex(&key))))?;
            out.push(self.db().decode(&value, STORED_EVENT_BYTES_MAX, || format!("the summary of block {height}"))?);
        }
        Ok(out)
    }

    /// The cursor of the newest event: the head block's own (0:0 at genesis, which has none).
    pub fn last_cursor(&self) -> Result<Cursor, StorageError> {
        let head = self.head().height;
        Ok(self.summary(head)?.map_or(Cursor::new(head, 0), |s| Cursor::new(s.height, s.tx_count)))
    }

    /// Up to `limit` (capped at [`crate::HISTORY_LIMIT_MAX`]) history entries of `addr` that
    /// `filter` admits, strictly beyond `after` in the listing's order: newest first when
    /// `newest_first`, else oldest first.
    pub fn history_page(
        &self,
        addr: &Address,
        after: Option<(u64, u32)>,
        newest_first: bool,
        filter: HistoryFilter,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, StorageError> {
        let limit = limit.min(crate::HISTORY_LIMIT_MAX);
        let mut out = Vec::with_capacity(limit);
        if limit == 0 {
            return Ok(out);
        }
        let (start, direction) = if newest_first {
            let (h, i) = after.unwrap_or((u64::MAX, u32::MAX));
            (history_key(addr, h, i), Direction::Reverse)
        } else {
            let (h, i) = after.unwrap_or((0, 0));
            (history_key(addr, h, i), Direction::Forward)
        };
        let mut opts = ReadOptions::default();
        if newest_first {
            opts.set_iterate_lower_bound(addr.as_bytes().to_vec());
        }
        let iter = self.db().db.iterator_cf_opt(self.db().cf(CF_HISTORY)?, opts, IteratorMode::From(&start, direction));
        for item in iter {
            let (key, value) = item.map_err(|source| StorageError::Db { op: "read", source })?;
            if !key.starts_with(addr.as_bytes()) {
                break;
            }
            let (h, i) = parse_history_key(&key)
                .ok_or_else(|| self.db().corrupt(format!("history key 0x{} has the wrong length", hex(&key))))?;
            if after == Some((h, i)) {
                continue;
            }
            // The flags, then (since spans are kept) the transaction's offset and length in its
            // block, both u32 big-endian.
            let (flags, span) = match *value {
                [f, ..] if f & !(FLAG_SENT | FLAG_RECEIVED) != 0 || f == 0 => (0, None),
                [f] => (f, None),
                [f, o0, o1, o2, o3, l0, l1, l2, l3] => {
                    (f, Some((u32::from_be_bytes([o0, o1, o2, o3]), u32::from_be_bytes([l0, l1, l2, l3]))))
                }
                _ => (0, None),
            };
            if flags == 0 {
                return Err(self.db().corrupt(format!("history entry 0x{} has value 0x{}", hex(&key), hex(&value))));
            }
            let entry = HistoryItem {
                height: h,
                index: i,
                sent: flags & FLAG_SENT != 0,
                received: flags & FLAG_RECEIVED != 0,
                span,
            };
            if filter.admits(&entry) {
                out.push(entry);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Transactions committed since genesis.
    pub fn txs_total(&self) -> u64 {
        self.hot().txs_total
    }

    /// The signing record of every validator that signed, missed or proposed since genesis, in
    /// the order each first did.
    pub fn validator_stats(&self) -> Vec<(Address, ValidatorStats)> {
        self.hot().validator_stats.clone()
    }

    /// The bytes the database's files take on disk.
    pub fn size_bytes(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(self.path()) else { return 0 };
        entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
    }

    /// Writes a small record, to prove the database still accepts writes (for readiness).
    pub fn probe_write(&self, now_ms: u64) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db().cf(CF_META)?, META_PROBE, now_ms.to_be_bytes());
        self.db().write(batch, false)
    }
}
