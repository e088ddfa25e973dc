//! The explorer's methods: one search box, the newest blocks, throughput figures and the
//! validators' signing records, shaped for a web page that shows them without further lookups.
//!
//! Every answer comes from the [`Backend`](crate::backend::Backend) the other methods use, so the
//! node needs no separate indexer. A block appears as a [`BlockSummaryJson`]: its header
//! figures, its fees and the cursor of its block event, which a subscriber can resume after.

use serde_json::Value;
use taksa_consensus::event::block_events;
use taksa_consensus::{Address, Block, BlockEvent, Event, Hash};

use crate::backend::{BlockId, ChainStats};
use crate::error::{ApiError, ErrorCode};
use crate::json::{
    AccountJson, BlockSummaryJson, RecentBlocksJson, SearchJson, StatsJson, TxStatusJson, ValidatorStatsJson,
};
use crate::methods::Ctx;

/// The longest search query, in characters: longer than any hash or address, so anything
/// longer is refused before it is parsed.
pub(crate) const SEARCH_QUERY_CHARS_MAX: usize = 256;
/// The number of blocks `explorer_recentBlocks` lists when the client names none.
pub(crate) const RECENT_BLOCKS_LIMIT_DEFAULT: usize = 20;
/// The most blocks one `explorer_recentBlocks` call lists; more is refused, not clamped.
pub(crate) const RECENT_BLOCKS_LIMIT_MAX: usize = 100;
/// The blocks `explorer_getStats` covers when the client names no window.
pub(crate) const STATS_WINDOW_BLOCKS_DEFAULT: usize = 100;
/// The widest window `explorer_getStats` accepts, in blocks; wider is refused, not clamped.
pub(crate) const STATS_WINDOW_BLOCKS_MAX: usize = 1000;

/// What the search box accepts, for error messages.
const SEARCH_ACCEPTS: &str =
    "a block height (decimal digits), a block or transaction hash (0x + 64 hex digits), or an address of this network";

impl From<ChainStats> for StatsJson {
    fn from(s: ChainStats) -> StatsJson {
        StatsJson {
            window_blocks: s.window_blocks,
            window_txs: s.window_txs,
            // JSON has no NaN or infinity; a rate over no time is no rate.
            tps: round_2(s.tps).unwrap_or(0.0),
            block_time_ms: round_2(s.block_time_ms).unwrap_or(0.0),
            finality_lag_ms: s.finality_lag_ms.and_then(round_2),
            head_height: s.head_height,
            finalized_height: s.finalized_height,
            total_txs: s.total_txs,
            total_accounts: s.total_accounts,
            validators: s.validators,
            mempool_txs: s.mempool_txs,
        }
    }
}

/// `x` to two decimal places (a page shows no more); `None` if it is not finite.
fn round_2(x: f64) -> Option<f64> {
    x.is_finite().then(|| (x * 100.0).round() / 100.0)
}

/// What a search query names, before anything is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Query {
    /// A height; `None` when the digits exceed any height (so no block has it).
    Height(Option<u64>),
    /// A block or transaction hash.
    Hash(Hash),
    /// An address of this network.
    Address(Address),
}

fn unsearchable(why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_params(format!("{why}; search accepts {SEARCH_ACCEPTS}"))
        .with("param", "query")
        .with("accepts", vec!["height", "blockHash", "txHash", "address"])
}

/// Reads a trimmed query: a hash, a height, or an address. An address with another network's
/// prefix is `bad_address`, since it is well-formed but can never be found here.
fn classify(q: &str, hrp: &str) -> Result<Query, ApiError> {
    if q.is_empty() {
        return Err(unsearchable("the query is empty"));
    }
    let chars = q.chars().count();
    if chars > SEARCH_QUERY_CHARS_MAX {
        return Err(unsearchable(format!("the query is {chars} characters, more than {SEARCH_QUERY_CHARS_MAX}")));
    }
    let digits = q.strip_prefix("0x").or_else(|| q.strip_prefix("0X"));
    let hex = digits.unwrap_or(q);
    // Before heights: 64 decimal digits are a hash, never a height.
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Hash::from_hex(hex).map(Query::Hash).map_err(unsearchable);
    }
    if digits.is_some() {
        return Err(unsearchable(format!("`0x` starts a hash, which needs 64 hex digits, not {}", hex.len())));
    }
    if q.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Query::Height(q.parse().ok()));
    }
    address(q, hrp)
}

/// An address query: ours parses or is `bad_address`; a valid address of another network is
/// `bad_address` naming both prefixes; anything else is not a query at all.
fn address(q: &str, hrp: &str) -> Result<Query, ApiError> {
    // bech32 allows all-upper-case (QR codes); mixed case stays invalid.
    let text = if q.bytes().any(|b| b.is_ascii_lowercase()) { q.to_owned() } else { q.to_ascii_lowercase() };
    let ours = Address::parse(&text, hrp);
    let bad_address = |e: taksa_consensus::Error| ApiError::new(ErrorCode::BadAddress, e.to_string()).with("hrp", hrp);
    if text.starts_with(&format!("{hrp}1")) {
        return ours.map(Query::Address).map_err(bad_address);
    }
    let other_hrp = text.rfind('1').map(|i| &text[..i]).filter(|h| !h.is_empty());
    match (ours, other_hrp) {
        (Err(e), Some(other)) if Address::parse(&text, other).is_ok() => Err(bad_address(e).with("got", other)),
        _ => Err(unsearchable("the query is neither a number, a hash nor an address")),
    }
}

/// The summary of a stored block: the same [`BlockEvent`] its commit produced.
fn summary_of(block: &Block) -> Result<BlockEvent, ApiError> {
    // Receipts only fill transfer events' balances; the block event does not depend on them.
    block_events(block, &[])
        .into_iter()
        .rev()
        .find_map(|(_, e)| match e {
            Event::Block(b) => Some(b),
            Event::Transfer(_) => None,
        })
        .ok_or_else(|| ApiError::internal("a block yielded no block event"))
}

fn search_height(ctx: &Ctx, query: &str, height: Option<u64>) -> Result<SearchJson, ApiError> {
    let head = ctx.backend.chain_info().head.height;
    let not_found = |message| Ok(SearchJson::NotFound { query: query.to_owned(), message });
    let Some(height) = height.filter(|h| *h <= head) else {
        return not_found(format!("no block at height {query} yet; the head is at height {head}"));
    };
    match ctx.backend.block(BlockId::Height(height))? {
        Some(record) => Ok(SearchJson::Block { block: BlockSummaryJson::new(&summary_of(&record.block)?, &ctx.hrp) }),
        None => not_found(format!("this node does not have the block at height {height}; the head is at {head}")),
    }
}

fn search_hash(ctx: &Ctx, query: &str, hash: Hash) -> Result<SearchJson, ApiError> {
    if let Some(record) = ctx.backend.block(BlockId::Hash(hash))? {
        return Ok(SearchJson::Block { block: BlockSummaryJson::new(&summary_of(&record.block)?, &ctx.hrp) });
    }
    if let Some(record) = ctx.backend.tx(&hash)? {
        return Ok(SearchJson::Tx { tx: Box::new(TxStatusJson::new(&record, &ctx.hrp)) });
    }
    Ok(SearchJson::NotFound {
        query: query.to_owned(),
        message: format!("no block or transaction with hash {} is known to this node", hash.to_hex()),
    })
}

/// `explorer_search`.
pub(crate) fn search(ctx: &Ctx, raw: &Value) -> Result<SearchJson, ApiError> {
    let query =
        raw.as_str().ok_or_else(|| ApiError::invalid_params("`query` must be a string").with("param", "query"))?.trim();
    let found = match classify(query, &ctx.hrp)? {
        Query::Height(height) => search_height(ctx, query, height)?,
        Query::Hash(hash) => search_hash(ctx, query, hash)?,
        Query::Address(address) => {
            let shown = address.to_bech32(&ctx.hrp);
            let account = AccountJson::new(shown.clone(), &ctx.backend.account(&address));
            SearchJson::Address { address: shown, account }
        }
    };
    Ok(found)
}

/// The non-null entries of an options object whose keys must be among `keys`; none if absent.
fn options<'a>(v: Option<&'a Value>, keys: &[&str]) -> Result<Vec<(&'a str, &'a Value)>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let map = v.as_object().ok_or_else(|| ApiError::invalid_params("`options` must be an object"))?;
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        if !keys.contains(&key.as_str()) {
            return Err(ApiError::invalid_params(format!("unknown option `{key}`")).with("expected", keys.to_vec()));
        }
        if !value.is_null() {
            out.push((key.as_str(), value));
        }
    }
    Ok(out)
}

/// An integer from 1 to `max`, refused otherwise with `data.param` and `data.<max_key>`.
fn count_in_range(v: &Value, name: &str, max: usize, max_key: &str) -> Result<usize, ApiError> {
    match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_params(format!("`{name}` must be an integer from 1 to {max}"))
            .with("param", name)
            .with(max_key, max)),
    }
}

/// `explorer_recentBlocks`.
pub(crate) fn recent_blocks(ctx: &Ctx, opts: Option<&Value>) -> Result<RecentBlocksJson, ApiError> {
    let (mut limit, mut before_height) = (RECENT_BLOCKS_LIMIT_DEFAULT, None);
    for (key, value) in options(opts, &["limit", "beforeHeight"])? {
        if key == "limit" {
            limit = count_in_range(value, "limit", RECENT_BLOCKS_LIMIT_MAX, "limitMax")?;
        } else {
            let bad = || {
                ApiError::invalid_params("`beforeHeight` must be a non-negative integer").with("param", "beforeHeight")
            };
            before_height = Some(value.as_u64().ok_or_else(bad)?);
        }
    }
    let mut events = ctx.backend.block_summaries(before_height, limit)?;
    // The page is bounded here too, whatever the backend returns.
    events.truncate(limit);
    // Genesis has no block event, so nothing lies below height 1.
    let next_before_height = events.last().map(|e| e.height).filter(|h| *h > 1);
    let blocks = events.iter().map(|e| BlockSummaryJson::new(e, &ctx.hrp)).collect();
    Ok(RecentBlocksJson { blocks, next_before_height })
}

/// `explorer_getStats`.
pub(crate) fn stats(ctx: &Ctx, opts: Option<&Value>) -> Result<StatsJson, ApiError> {
    let mut window_blocks = STATS_WINDOW_BLOCKS_DEFAULT;
    for (_, value) in options(opts, &["window"])? {
        window_blocks = count_in_range(value, "window", STATS_WINDOW_BLOCKS_MAX, "windowMax")?;
    }
    Ok(StatsJson::from(ctx.backend.stats(window_blocks)?))
}

/// `explorer_getValidators`.
pub(crate) fn validators(ctx: &Ctx) -> Vec<ValidatorStatsJson> {
    ctx.backend.validators().into_iter().map(|v| ValidatorStatsJson::new(v, &ctx.hrp)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, to_value};
    use taksa_consensus::{Cursor, PublicKey};

    use crate::cursor;

    use super::*;

    const HRP: &str = "tks";

    fn code(r: Result<Query, ApiError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn heights_hashes_and_addresses_are_told_apart() {
        let h = Hash([0xab; 32]);
        let a = Address(PublicKey([4; 32]));
        assert_eq!(classify("42", HRP).ok(), Some(Query::Height(Some(42))));
        assert_eq!(classify("0", HRP).ok(), Some(Query::Height(Some(0))));
        assert_eq!(classify("99999999999999999999999", HRP).ok(), Some(Query::Height(None)));
        assert_eq!(classify(&h.to_hex(), HRP).ok(), Some(Query::Hash(h)));
        assert_eq!(classify(&h.to_hex()[2..], HRP).ok(), Some(Query::Hash(h)), "64 hex digits without 0x");
        assert_eq!(classify(&h.to_hex().to_uppercase().replacen("0X", "0x", 1), HRP).ok(), Some(Query::Hash(h)));
        let decimal_hash = "1".repeat(64);
        assert!(matches!(classify(&decimal_hash, HRP), Ok(Query::Hash(_))), "64 digits are a hash, not a height");
        assert_eq!(classify(&a.to_bech32(HRP), HRP).ok(), Some(Query::Address(a)));
        assert_eq!(classify(&a.to_bech32(HRP).to_uppercase(), HRP).ok(), Some(Query::Address(a)));
    }

    #[test]
    fn malformed_queries_are_invalid_params_and_foreign_addresses_bad_address() {
        let a = Address(PublicKey([4; 32]));
        for garbage in ["", "hello", "-1", "1.5", "0x12", "0xzz", "1e5", "tks", "x1qqqq", &"7".repeat(257)] {
            assert_eq!(code(classify(garbage, HRP)), Some(ErrorCode::InvalidParams), "{garbage:?}");
        }
        assert_eq!(code(classify(&a.to_bech32("tdev"), HRP)), Some(ErrorCode::BadAddress));
        let mut typo = a.to_bech32(HRP);
        typo.pop();
        typo.push(if typo.ends_with('q') { 'p' } else { 'q' });
        assert_eq!(code(classify(&typo, HRP)), Some(ErrorCode::BadAddress), "a checksum typo in our prefix");
    }

    #[test]
    fn stats_figures_round_to_two_places_and_non_finite_are_not_numbers() {
        let stats = ChainStats {
            tps: 1.0 / 3.0,
            block_time_ms: 1000.456,
            finality_lag_ms: Some(f64::NAN),
            ..ChainStats::default()
        };
        let v = to_value(StatsJson::from(stats)).expect("serializes");
        assert_eq!((v["tps"].as_f64(), v["blockTimeMs"].as_f64()), (Some(0.33), Some(1000.46)));
        assert_eq!(v["finalityLagMs"], Value::Null);
        let infinite = ChainStats { tps: f64::INFINITY, block_time_ms: f64::NAN, ..ChainStats::default() };
        let v = to_value(StatsJson::from(infinite)).expect("serializes");
        assert_eq!((v["tps"].as_f64(), v["blockTimeMs"].as_f64()), (Some(0.0), Some(0.0)));
    }

    #[test]
    fn block_summary_cursor_is_the_block_events_cursor() {
        let e = BlockEvent {
            hash: Hash([1; 32]),
            height: 7,
            view: 9,
            parent_hash: Hash([2; 32]),
            proposer: Address(PublicKey([3; 32])),
            timestamp_ms: 55,
            tx_count: 2,
            fees: u128::MAX,
            state_root: Hash([4; 32]),
        };
        let v = to_value(BlockSummaryJson::new(&e, HRP)).expect("serializes");
        assert_eq!(v["cursor"], cursor::encode_event(Cursor::new(7, 2)));
        assert_eq!(v["fees"], json!(u128::MAX.to_string()), "fees are a decimal string");
        assert_eq!(v["proposer"], e.proposer.to_bech32(HRP));
    }
}
