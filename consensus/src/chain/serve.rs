//! Answering a peer's sync request from the committed chain: one implementation for the node
//! (over RocksDB) and the simulation (over its in-memory store), so the simulation's honest
//! peers serve exactly what real ones do.

use super::{FinalizedBlock, Request, Response, BLOCKS_PER_REQUEST_MAX};
use crate::{Block, Certificate, Hash, Header};

/// How far below its head a node looks for a stored finalization to show as its status. The
/// head has one except for a moment while a run of blocks commits one batch at a time (only the
/// run's last block carries the certificate).
const CERTIFIED_HEAD_SEARCH_BLOCKS: u64 = 256;

/// Where served blocks come from.
pub trait BlockSource {
    /// A failed read.
    type Error;
    /// The committed head.
    fn head(&self) -> Header;
    /// The stored finalization of the committed block at `height`, if any.
    fn finalization(&self, height: u64) -> Result<Option<Certificate>, Self::Error>;
    /// The committed block at `height`.
    fn block_by_height(&self, height: u64) -> Result<Option<Block>, Self::Error>;
    /// Committed blocks `from..=to`, stopping before their encoding passes `bytes_max`.
    fn blocks_range(&self, from: u64, to: u64, bytes_max: usize) -> Result<Vec<Block>, Self::Error>;
    /// A committed or stored pending block by hash.
    fn block(&self, hash: &Hash) -> Result<Option<Block>, Self::Error>;
}

/// The answer to `request`, with at most `bytes_max` bytes of blocks; `None` when there is
/// nothing honest to say (no stored finalization near the head), so the asker sees a failure,
/// never a false or empty claim. An `Err` (a read failed) is answered the same way by the
/// caller.
pub fn serve<S: BlockSource>(source: &S, request: Request, bytes_max: usize) -> Result<Option<Response>, S::Error> {
    Ok(Some(match request {
        Request::Status => match certified_head(source)? {
            Some((head, finalization)) => Response::Status { head, finalization },
            None => return Ok(None),
        },
        Request::Blocks { from_height, count } => {
            let count = u64::from(count.clamp(1, BLOCKS_PER_REQUEST_MAX));
            let to = from_height.saturating_add(count - 1).min(source.head().height);
            let blocks = if from_height > to { Vec::new() } else { source.blocks_range(from_height, to, bytes_max)? };
            let mut out = Vec::with_capacity(blocks.len());
            for block in blocks {
                let finalization = source.finalization(block.header.height)?;
                out.push(FinalizedBlock { block, finalization });
            }
            Response::Blocks(out)
        }
        Request::Block { hash } => Response::Block(source.block(&hash)?),
    }))
}

/// The highest committed block whose finalization is stored, with it (genesis has none).
pub fn certified_head<S: BlockSource>(source: &S) -> Result<Option<(Header, Option<Certificate>)>, S::Error> {
    let head = source.head();
    if head.height == 0 {
        return Ok(Some((head, None)));
    }
    let lowest = head.height.saturating_sub(CERTIFIED_HEAD_SEARCH_BLOCKS).max(1);
    for height in (lowest..=head.height).rev() {
        if let Some(cert) = source.finalization(height)? {
            let header = if height == head.height {
                head
            } else {
                match source.block_by_height(height)? {
                    Some(b) => b.header,
                    None => return Ok(None),
                }
            };
            return Ok(Some((header, Some(cert))));
        }
    }
    Ok(None)
}
