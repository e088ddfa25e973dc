//! Reading method parameters: by position or by name, strictly, with a specific error for each
//! kind of bad input.

use std::collections::HashMap;

use serde_json::Value;
use taksa_consensus::codec::TX_BYTES_MAX;
use taksa_consensus::{Address, Hash, SignedTransaction};

use crate::backend::{BlockId, HistoryFilter, HistoryOrder, HistoryQuery};
use crate::cursor;
use crate::error::{ApiError, ErrorCode};

/// The history page size when the client names none.
pub(crate) const HISTORY_LIMIT_DEFAULT: usize = 20;
/// The largest history page; larger requests are served this many.
pub(crate) const HISTORY_LIMIT_MAX: usize = 100;

/// The evidence page size when the client names none.
pub(crate) const EVIDENCE_LIMIT_DEFAULT: usize = 100;
/// The most evidence one call may ask for; more is refused rather than clamped, so a client
/// never mistakes a clamped page for all there is.
pub(crate) const EVIDENCE_LIMIT_MAX: usize = 1000;

/// Each method's parameter list as `openrpc.json` documents it, checked before the method runs:
/// at most that many by position, only those names by name, and each required one given and not
/// null. A misspelt option is an error rather than ignored.
pub(crate) struct Signatures {
    /// Method name to its parameters' (name, required), in order.
    methods: HashMap<String, Vec<(String, bool)>>,
}

impl Signatures {
    /// Reads the methods of an OpenRPC document. Methods whose parameters are by position only
    /// (the unsubscribe methods, which jsonrpsee reads itself) are not checked.
    pub(crate) fn from_openrpc(doc: &Value) -> Signatures {
        let mut methods = HashMap::new();
        for m in doc["methods"].as_array().into_iter().flatten() {
            let (Some(name), Some(params)) = (m["name"].as_str(), m["params"].as_array()) else { continue };
            if m["paramStructure"] == "by-position" {
                continue;
            }
            let list = params
                .iter()
                .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["required"].as_bool().unwrap_or(false))))
                .collect();
            methods.insert(name.to_owned(), list);
        }
        Signatures { methods }
    }

    /// Checks the parameters of a call to `method`; a method it does not describe passes.
    pub(crate) fn check(&self, method: &str, params: Option<&str>) -> Result<(), ApiError> {
        let Some(list) = self.methods.get(method) else { return Ok(()) };
        let value = match params {
            None => Value::Null,
            Some(raw) => serde_json::from_str(raw).map_err(|e| ApiError::invalid_params(e.to_string()))?,
        };
        let given = |name: &str, index: usize| match &value {
            Value::Array(items) => items.get(index).is_some_and(|v| !v.is_null()),
            Value::Object(map) => map.get(name).is_some_and(|v| !v.is_null()),
            _ => false,
        };
        match &value {
            Value::Null => {}
            Value::Array(items) if items.len() > list.len() => {
                return Err(ApiError::invalid_params(format!(
                    "expected at most {} params, got {}",
                    list.len(),
                    items.len()
                )));
            }
            Value::Array(_) => {}
            Value::Object(map) => {
                if let Some(unknown) = map.keys().find(|k| !list.iter().any(|(n, _)| n == *k)) {
                    let expected: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(
                        ApiError::invalid_params(format!("unknown param `{unknown}`")).with("expected", expected)
                    );
                }
            }
            _ => return Err(ApiError::invalid_params("params must be an array or an object")),
        }
        match list.iter().enumerate().find(|(i, (name, required))| *required && !given(name, *i)) {
            Some((_, (name, _))) => {
                Err(ApiError::invalid_params(format!("missing param `{name}`")).with("param", name.as_str()))
            }
            None => Ok(()),
        }
    }
}

fn expect_str<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| ApiError::invalid_params(format!("`{name}` must be a string")).with("param", name))
}

/// A bech32m address of this network.
pub(crate) fn address(v: &Value, hrp: &str) -> Result<Address, ApiError> {
    let s = expect_str(v, "address")?;
    Address::parse(s, hrp).map_err(|e| ApiError::new(ErrorCode::BadAddress, e.to_string()).with("hrp", hrp))
}

/// A 32-byte hash as 64 hex digits, with or without `0x`.
pub(crate) fn hash(v: &Value, name: &str) -> Result<Hash, ApiError> {
    let s = expect_str(v, name)?;
    Hash::from_hex(s).map_err(|e| ApiError::new(ErrorCode::BadHash, e.to_string()).with("param", name))
}

/// A block height (a number, or a string of decimal digits) or a block hash.
pub(crate) fn block_id(v: &Value) -> Result<BlockId, ApiError> {
    let bad = || {
        ApiError::new(ErrorCode::BadBlockId, "block id must be a height (number) or a block hash (0x + 64 hex digits)")
    };
    match v {
        Value::Number(n) => n.as_u64().map(BlockId::Height).ok_or_else(bad),
        Value::String(s) if s.starts_with("0x") || s.len() == 64 => hash(v, "id").map(BlockId::Hash),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map(BlockId::Height).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// A block height: a non-negative integer.
pub(crate) fn height(v: &Value, name: &str) -> Result<u64, ApiError> {
    v.as_u64().ok_or_else(|| {
        ApiError::invalid_params(format!("`{name}` must be a block height (a non-negative integer)"))
            .with("param", name)
    })
}

/// A signed transaction as the hex of its canonical bytes, with or without `0x`.
pub(crate) fn signed_tx(v: &Value) -> Result<SignedTransaction, ApiError> {
    let s = expect_str(v, "tx")?;
    let digits = s.strip_prefix("0x").unwrap_or(s);
    // Refuse before decoding the hex, so an oversized input costs nothing to reject.
    let len = digits.len().div_ceil(2);
    if len > TX_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::TxTooLarge,
            format!("transaction is {len} bytes; the limit is {TX_BYTES_MAX}"),
        )
        .with("bytes", len)
        .with("bytesMax", TX_BYTES_MAX));
    }
    let bytes = hex::decode(digits)
        .map_err(|e| ApiError::new(ErrorCode::BadEncoding, format!("transaction is not hex: {e}")))?;
    SignedTransaction::decode(&bytes).map_err(|e| ApiError::from_decode(&e))
}

/// Reads `{cursor?, limit?, order?, direction?}`; absent means the newest page of the default
/// size. A cursor carries its own order and direction; naming a different one beside it is
/// refused rather than silently ignored.
pub(crate) fn history_query(v: Option<&Value>) -> Result<HistoryQuery, ApiError> {
    let mut query = HistoryQuery {
        after: None,
        order: HistoryOrder::NewestFirst,
        filter: HistoryFilter::All,
        limit: HISTORY_LIMIT_DEFAULT,
    };
    let Some(v) = v else { return Ok(query) };
    let map = v.as_object().ok_or_else(|| ApiError::invalid_params("`options` must be an object"))?;
    let (mut cursor, mut order, mut filter) = (None, None, None);
    for (key, value) in map {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("cursor", Value::String(s)) => cursor = Some(cursor::decode_history(s)?),
            ("cursor", _) => return Err(ApiError::invalid_params("`cursor` must be a string").with("param", "cursor")),
            ("limit", value) => query.limit = history_limit(value)?,
            ("order", value) => order = Some(history_order(value)?),
            ("direction", value) => filter = Some(history_filter(value)?),
            (other, _) => {
                return Err(ApiError::invalid_params(format!("unknown option `{other}`"))
                    .with("expected", vec!["cursor", "limit", "order", "direction"]));
            }
        }
    }
    if let Some(c) = cursor {
        if order.is_some_and(|o| o != c.order) || filter.is_some_and(|f| f != c.filter) {
            return Err(ApiError::invalid_params(
                "the cursor continues its own listing; drop `order` and `direction` or start without a cursor",
            )
            .with("param", "cursor"));
        }
        (query.after, query.order, query.filter) = (Some(c.after), c.order, c.filter);
    } else {
        query.order = order.unwrap_or_default();
        query.filter = filter.unwrap_or_default();
    }
    Ok(query)
}

fn history_order(v: &Value) -> Result<HistoryOrder, ApiError> {
    match v.as_str() {
        Some("newest") => Ok(HistoryOrder::NewestFirst),
        Some("oldest") => Ok(HistoryOrder::OldestFirst),
        _ => Err(ApiError::invalid_params("`order` must be \"newest\" or \"oldest\"").with("param", "order")),
    }
}

fn history_filter(v: &Value) -> Result<HistoryFilter, ApiError> {
    match v.as_str() {
        Some("all") => Ok(HistoryFilter::All),
        Some("sent") => Ok(HistoryFilter::Sent),
        Some("received") => Ok(HistoryFilter::Received),
        _ => Err(ApiError::invalid_params("`direction` must be \"all\", \"sent\" or \"received\"")
            .with("param", "direction")),
    }
}

/// A page size: a positive integer, served at most [`HISTORY_LIMIT_MAX`].
fn history_limit(v: &Value) -> Result<usize, ApiError> {
    match v.as_u64() {
        Some(0) | None => Err(ApiError::invalid_params("`limit` must be a positive integer").with("param", "limit")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(HISTORY_LIMIT_MAX).min(HISTORY_LIMIT_MAX)),
    }
}

/// The `limit` of `consensus_getEvidence`: absent means the default; otherwise an integer from 1
/// to [`EVIDENCE_LIMIT_MAX`].
pub(crate) fn evidence_limit(v: Option<&Value>) -> Result<usize, ApiError> {
    let Some(v) = v else { return Ok(EVIDENCE_LIMIT_DEFAULT) };
    let bad = || {
        ApiError::invalid_params(format!("`limit` must be an integer from 1 to {EVIDENCE_LIMIT_MAX}"))
            .with("param", "limit")
            .with("limitMax", EVIDENCE_LIMIT_MAX)
    };
    match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if (1..=EVIDENCE_LIMIT_MAX).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn block_id_accepts_number_numeric_string_and_hash() {
        let h = Hash([0xab; 32]);
        assert_eq!(block_id(&json!(5)).ok(), Some(BlockId::Height(5)));
        assert_eq!(block_id(&json!("42")).ok(), Some(BlockId::Height(42)));
        assert_eq!(block_id(&json!(h.to_hex())).ok(), Some(BlockId::Hash(h)));
        assert_eq!(block_id(&json!(-1)).map_err(|e| e.code()), Err(ErrorCode::BadBlockId));
        assert_eq!(block_id(&json!(1.5)).map_err(|e| e.code()), Err(ErrorCode::BadBlockId));
        assert_eq!(block_id(&json!("latest")).map_err(|e| e.code()), Err(ErrorCode::BadBlockId));
        assert_eq!(block_id(&json!("99999999999999999999")).map_err(|e| e.code()), Err(ErrorCode::BadBlockId));
        assert_eq!(block_id(&json!("0x12")).map_err(|e| e.code()), Err(ErrorCode::BadHash));
    }

    #[test]
    fn history_limit_defaults_clamps_and_refuses_zero() {
        let default = history_query(None).ok();
        assert_eq!(default.map(|q| (q.after, q.limit, q.order)), Some((None, 20, HistoryOrder::NewestFirst)));
        let big = json!({"limit": 1000});
        assert_eq!(history_query(Some(&big)).map(|o| o.limit).ok(), Some(HISTORY_LIMIT_MAX));
        let zero = json!({"limit": 0});
        assert_eq!(history_query(Some(&zero)).map_err(|e| e.code()).err(), Some(ErrorCode::InvalidParams));
        let typo = json!({"limt": 5});
        assert_eq!(history_query(Some(&typo)).map_err(|e| e.code()).err(), Some(ErrorCode::InvalidParams));
    }

    #[test]
    fn history_cursor_overrides_nothing_silently() {
        let c = cursor::encode_history(cursor::HistoryCursor {
            after: (3, 1),
            order: HistoryOrder::OldestFirst,
            filter: HistoryFilter::Sent,
        });
        let q = history_query(Some(&json!({"cursor": c}))).ok();
        assert_eq!(
            q.map(|q| (q.after, q.order, q.filter)),
            Some((Some((3, 1)), HistoryOrder::OldestFirst, HistoryFilter::Sent))
        );
        let same = json!({"cursor": c, "order": "oldest", "direction": "sent"});
        assert!(history_query(Some(&same)).is_ok());
        let clash = json!({"cursor": c, "order": "newest"});
        assert_eq!(history_query(Some(&clash)).map_err(|e| e.code()).err(), Some(ErrorCode::InvalidParams));
        let bad_dir = json!({"direction": "up"});
        assert_eq!(history_query(Some(&bad_dir)).map_err(|e| e.code()).err(), Some(ErrorCode::InvalidParams));
        let received = history_query(Some(&json!({"direction": "received", "order": "oldest"}))).ok();
        assert_eq!(received.map(|q| (q.filter, q.order)), Some((HistoryFilter::Received, HistoryOrder::OldestFirst)));
    }

    #[test]
    fn evidence_limit_defaults_and_refuses_out_of_range() {
        assert_eq!(evidence_limit(None).ok(), Some(EVIDENCE_LIMIT_DEFAULT));
        assert_eq!(evidence_limit(Some(&json!(1))).ok(), Some(1));
        assert_eq!(evidence_limit(Some(&json!(EVIDENCE_LIMIT_MAX))).ok(), Some(EVIDENCE_LIMIT_MAX));
        for bad in [json!(0), json!(EVIDENCE_LIMIT_MAX + 1), json!(u64::MAX), json!(-1), json!(2.5), json!("10")] {
            let e = evidence_limit(Some(&bad)).err();
            assert_eq!(e.as_ref().map(ApiError::code), Some(ErrorCode::InvalidParams), "{bad}");
        }
    }

    #[test]
    fn oversized_tx_hex_is_refused_before_decoding() {
        let hex = "00".repeat(TX_BYTES_MAX + 1);
        assert_eq!(signed_tx(&json!(hex)).map_err(|e| e.code()).err(), Some(ErrorCode::TxTooLarge));
        assert_eq!(signed_tx(&json!("0xzz")).map_err(|e| e.code()).err(), Some(ErrorCode::BadEncoding));
        assert_eq!(signed_tx(&json!("0x0102")).map_err(|e| e.code()).err(), Some(ErrorCode::BadEncoding));
    }
}
