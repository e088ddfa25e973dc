//! Opaque cursors: hex strings that only this server's code reads, versioned by their first byte
//! so the format can change without misreading old cursors.
//!
//! - Event cursors (version 1): an event's `(height, index)`; a history position is the same
//!   pair, so a version-1 history cursor from an older node still reads (newest first, all).
//! - History cursors (version 2): the position plus the page's order and direction filter, so
//!   a client continues a listing by passing the cursor alone, in either direction.

use taksa_consensus::Cursor;

use crate::backend::{HistoryFilter, HistoryOrder};
use crate::error::{ApiError, ErrorCode};

const EVENT_VERSION: u8 = 1;
const HISTORY_VERSION: u8 = 2;
/// Version, height (u64 BE), index (u32 BE).
const EVENT_BYTES: usize = 1 + 8 + 4;
/// Version, order, filter, height (u64 BE), index (u32 BE).
const HISTORY_BYTES: usize = 1 + 1 + 1 + 8 + 4;

/// Where a history listing continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HistoryCursor {
    pub(crate) after: (u64, u32),
    pub(crate) order: HistoryOrder,
    pub(crate) filter: HistoryFilter,
}

/// The cursor string of an event.
pub(crate) fn encode_event(c: Cursor) -> String {
    let mut bytes = Vec::with_capacity(EVENT_BYTES);
    bytes.push(EVENT_VERSION);
    bytes.extend_from_slice(&c.height.to_be_bytes());
    bytes.extend_from_slice(&c.index.to_be_bytes());
    hex::encode(bytes)
}

/// Reads an event cursor that [`encode_event`] wrote; `param` names the parameter in errors.
pub(crate) fn decode_event(s: &str, param: &'static str) -> Result<Cursor, ApiError> {
    let bytes = hex_bytes(s, param)?;
    match bytes.split_first() {
        Some((&EVENT_VERSION, rest)) if bytes.len() == EVENT_BYTES => {
            let (height, index) = position(rest).ok_or_else(|| bad(param, "truncated"))?;
            Ok(Cursor::new(height, index))
        }
        Some((&HISTORY_VERSION, _)) => Err(bad(param, "this is a history cursor, not an event cursor")),
        _ => Err(bad(param, "wrong length or unknown version")),
    }
}

/// The cursor string of a history position.
pub(crate) fn encode_history(c: HistoryCursor) -> String {
    let mut bytes = Vec::with_capacity(HISTORY_BYTES);
    bytes.push(HISTORY_VERSION);
    bytes.push(match c.order {
        HistoryOrder::NewestFirst => 0,
        HistoryOrder::OldestFirst => 1,
    });
    bytes.push(match c.filter {
        HistoryFilter::All => 0,
        HistoryFilter::Sent => 1,
        HistoryFilter::Received => 2,
    });
    bytes.extend_from_slice(&c.after.0.to_be_bytes());
    bytes.extend_from_slice(&c.after.1.to_be_bytes());
    hex::encode(bytes)
}

/// Reads a history cursor that [`encode_history`] (or an older node's version 1) wrote.
pub(crate) fn decode_history(s: &str) -> Result<HistoryCursor, ApiError> {
    const PARAM: &str = "cursor";
    let bytes = hex_bytes(s, PARAM)?;
    match bytes.as_slice() {
        [EVENT_VERSION, rest @ ..] if bytes.len() == EVENT_BYTES => {
            let after = position(rest).ok_or_else(|| bad(PARAM, "truncated"))?;
            Ok(HistoryCursor { after, order: HistoryOrder::NewestFirst, filter: HistoryFilter::All })
        }
        [HISTORY_VERSION, order, filter, rest @ ..] if bytes.len() == HISTORY_BYTES => {
            let order = match order {
                0 => HistoryOrder::NewestFirst,
                1 => HistoryOrder::OldestFirst,
                _ => return Err(bad(PARAM, "unknown order")),
            };
            let filter = match filter {
                0 => HistoryFilter::All,
                1 => HistoryFilter::Sent,
                2 => HistoryFilter::Received,
                _ => return Err(bad(PARAM, "unknown direction")),
            };
            let after = position(rest).ok_or_else(|| bad(PARAM, "truncated"))?;
            Ok(HistoryCursor { after, order, filter })
        }
        _ => Err(bad(PARAM, "wrong length or unknown version")),
    }
}

fn hex_bytes(s: &str, param: &'static str) -> Result<Vec<u8>, ApiError> {
    // Longer than any cursor: refuse before decoding.
    if s.len() > 2 * HISTORY_BYTES {
        return Err(bad(param, "too long"));
    }
    hex::decode(s).map_err(|_| bad(param, "not hex"))
}

fn position(bytes: &[u8]) -> Option<(u64, u32)> {
    let height = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    (bytes.len() == 12).then_some((height, index))
}

fn bad(param: &'static str, why: &str) -> ApiError {
    ApiError::new(ErrorCode::BadCursor, format!("`{param}` is not a cursor this server issued: {why}"))
        .with("param", param)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursor_roundtrips_and_rejects_tampering() {
        let c = Cursor::new(u64::MAX - 3, 7);
        let s = encode_event(c);
        assert_eq!(decode_event(&s, "after").ok(), Some(c));
        let code = |r: Result<Cursor, ApiError>| r.map_err(|e| e.code()).err();
        assert_eq!(code(decode_event(&s[..s.len() - 2], "after")), Some(ErrorCode::BadCursor));
        assert_eq!(code(decode_event(&format!("09{}", &s[2..]), "after")), Some(ErrorCode::BadCursor));
        assert_eq!(code(decode_event("zz", "after")), Some(ErrorCode::BadCursor));
        assert_eq!(code(decode_event(&"0".repeat(4096), "after")), Some(ErrorCode::BadCursor));
    }

    #[test]
    fn history_cursor_keeps_order_and_filter() {
        for (order, filter) in [
            (HistoryOrder::NewestFirst, HistoryFilter::All),
            (HistoryOrder::OldestFirst, HistoryFilter::Sent),
            (HistoryOrder::OldestFirst, HistoryFilter::Received),
        ] {
            let c = HistoryCursor { after: (9, 2), order, filter };
            assert_eq!(decode_history(&encode_history(c)).ok(), Some(c));
        }
        let event = encode_event(Cursor::new(4, 1));
        let legacy = decode_history(&event).ok();
        assert_eq!(legacy.map(|c| (c.after, c.order)), Some(((4, 1), HistoryOrder::NewestFirst)));
        let history = encode_history(HistoryCursor {
            after: (1, 1),
            order: HistoryOrder::NewestFirst,
            filter: HistoryFilter::All,
        });
        assert_eq!(decode_event(&history, "after").map_err(|e| e.code()).err(), Some(ErrorCode::BadCursor));
        let mut bad_order = history.clone();
        bad_order.replace_range(2..4, "07");
        assert_eq!(decode_history(&bad_order).map_err(|e| e.code()).err(), Some(ErrorCode::BadCursor));
    }
}
