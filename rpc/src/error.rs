//! Errors: the stable codes clients see, and the crate's own error type.
//!
//! Every failure a method returns is a JSON-RPC error whose `code` is one of [`ErrorCode`] and
//! whose `data` is an object with a snake_case `reason` plus context. Codes and reasons never
//! change meaning; new ones may be added. `openrpc.json` and `docs/rpc.md` list the same table,
//! and a test keeps the three in step.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Map, Value};
use taksa_consensus::{Error as ConsensusError, TxError};

use crate::backend::{BackendError, SubmitError};

/// A stable error code with its machine-readable reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request body is not JSON (produced by jsonrpsee, without `data.reason`).
    ParseError,
    /// The request is JSON but not a JSON-RPC request (produced by jsonrpsee).
    InvalidRequest,
    /// No method of that name.
    MethodNotFound,
    /// A parameter is missing, extra, or of the wrong JSON type.
    InvalidParams,
    /// The request is larger than the server accepts (produced by jsonrpsee).
    RequestTooLarge,
    /// The response would be larger than the server sends.
    ResponseTooLarge,
    /// The batch has more calls than the server accepts (produced by jsonrpsee).
    BatchTooLarge,
    /// The transaction is not hex, or its bytes do not decode.
    BadEncoding,
    /// The signature does not verify.
    BadSignature,
    /// The transaction is for another network.
    WrongChain,
    /// The nonce was already used.
    NonceTooLow,
    /// The nonce leaves a gap.
    NonceGap,
    /// The sender cannot pay amount plus fee.
    InsufficientBalance,
    /// The fee is below the network's floor.
    FeeBelowFloor,
    /// Amount plus fee, or a resulting balance, overflows.
    Overflow,
    /// The transaction's `valid_until_height` has passed.
    Expired,
    /// The memo is too long.
    MemoTooLong,
    /// The encoded transaction is longer than the limit.
    TxTooLarge,
    /// The pool is full.
    PoolFull,
    /// The sender has too many pending transactions.
    SenderLimit,
    /// A pooled transaction with the same nonce pays as much or more.
    ReplacementUnderpriced,
    /// The node's admission queue is full; nothing was decided.
    Busy,
    /// The sender has the most transactions allowed behind a nonce gap.
    QueuedLimit,
    /// The recipient is not a valid ed25519 public key.
    BadRecipient,
    /// A transfer that creates an account pays less than the creation fee.
    AccountCreationFee,
    /// A vote on the validator set that its rules refuse.
    Governance,
    /// A pooled transaction with the same sender and nonce was replaced too often.
    ReplacementLimit,
    /// No block with that height or hash.
    BlockNotFound,
    /// No transaction with that hash.
    TxNotFound,
    /// The node cannot prove state at the height asked for (it keeps the tree after its head).
    ProofUnavailable,
    /// The address does not parse or is for another network.
    BadAddress,
    /// The hash is not 32 bytes of hex.
    BadHash,
    /// The history cursor is not one this server issued.
    BadCursor,
    /// The block id is neither a height nor a hash.
    BadBlockId,
    /// A subscription's start cursor or height lies beyond this node's newest event.
    CursorAhead,
    /// The connection already has the most subscriptions one connection may hold.
    TooManySubscriptions,
    /// A subscription was asked for over plain HTTP, which cannot carry notifications.
    WebSocketRequired,
    /// The node failed; the request may succeed later.
    Internal,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 38] = [
        ErrorCode::ParseError,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::RequestTooLarge,
        ErrorCode::ResponseTooLarge,
        ErrorCode::BatchTooLarge,
        ErrorCode::BadEncoding,
        ErrorCode::BadSignature,
        ErrorCode::WrongChain,
        ErrorCode::NonceTooLow,
        ErrorCode::NonceGap,
        ErrorCode::InsufficientBalance,
        ErrorCode::FeeBelowFloor,
        ErrorCode::Overflow,
        ErrorCode::Expired,
        ErrorCode::MemoTooLong,
        ErrorCode::TxTooLarge,
        ErrorCode::PoolFull,
        ErrorCode::SenderLimit,
        ErrorCode::ReplacementUnderpriced,
        ErrorCode::Busy,
        ErrorCode::QueuedLimit,
        ErrorCode::BadRecipient,
        ErrorCode::AccountCreationFee,
        ErrorCode::Governance,
        ErrorCode::ReplacementLimit,
        ErrorCode::BlockNotFound,
        ErrorCode::TxNotFound,
        ErrorCode::ProofUnavailable,
        ErrorCode::BadAddress,
        ErrorCode::BadHash,
        ErrorCode::BadCursor,
        ErrorCode::BadBlockId,
        ErrorCode::CursorAhead,
        ErrorCode::TooManySubscriptions,
        ErrorCode::WebSocketRequired,
        ErrorCode::Internal,
    ];

    /// The numeric JSON-RPC code.
    pub fn code(self) -> i32 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::RequestTooLarge => -32007,
            ErrorCode::ResponseTooLarge => -32008,
            ErrorCode::BatchTooLarge => -32010,
            ErrorCode::BadEncoding => 1001,
            ErrorCode::BadSignature => 1002,
            ErrorCode::WrongChain => 1003,
            ErrorCode::NonceTooLow => 1004,
            ErrorCode::NonceGap => 1005,
            ErrorCode::InsufficientBalance => 1006,
            ErrorCode::FeeBelowFloor => 1007,
            ErrorCode::Overflow => 1008,
            ErrorCode::Expired => 1009,
            ErrorCode::MemoTooLong => 1010,
            ErrorCode::TxTooLarge => 1011,
            ErrorCode::PoolFull => 1101,
            ErrorCode::SenderLimit => 1102,
            ErrorCode::ReplacementUnderpriced => 1103,
            ErrorCode::Busy => 1104,
            ErrorCode::QueuedLimit => 1105,
            ErrorCode::BadRecipient => 1012,
            ErrorCode::AccountCreationFee => 1013,
            ErrorCode::Governance => 1014,
            ErrorCode::ReplacementLimit => 1106,
            ErrorCode::BlockNotFound => 2001,
            ErrorCode::TxNotFound => 2002,
            ErrorCode::ProofUnavailable => 2003,
            ErrorCode::BadAddress => 3001,
            ErrorCode::BadHash => 3002,
            ErrorCode::BadCursor => 3003,
            ErrorCode::BadBlockId => 3004,
            ErrorCode::CursorAhead => 3005,
            ErrorCode::TooManySubscriptions => -32006,
            ErrorCode::WebSocketRequired => -32011,
            ErrorCode::Internal => 5000,
        }
    }

    /// The stable snake_case name found in `error.data.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MethodNotFound => "method_not_found",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::ResponseTooLarge => "response_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::BadEncoding => "bad_encoding",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::WrongChain => "wrong_chain",
            ErrorCode::NonceTooLow => "nonce_too_low",
            ErrorCode::NonceGap => "nonce_gap",
            ErrorCode::InsufficientBalance => "insufficient_balance",
            ErrorCode::FeeBelowFloor => "fee_below_floor",
            ErrorCode::Overflow => "overflow",
            ErrorCode::Expired => "expired",
            ErrorCode::MemoTooLong => "memo_too_long",
            ErrorCode::TxTooLarge => "too_large",
            ErrorCode::PoolFull => "pool_full",
            ErrorCode::SenderLimit => "sender_limit",
            ErrorCode::ReplacementUnderpriced => "replacement_underpriced",
            ErrorCode::Busy => "busy",
            ErrorCode::QueuedLimit => "queued_limit",
            ErrorCode::BadRecipient => "bad_recipient",
            ErrorCode::AccountCreationFee => "account_creation_fee",
            ErrorCode::Governance => "governance",
            ErrorCode::ReplacementLimit => "replacement_limit",
            ErrorCode::BlockNotFound => "block_not_found",
            ErrorCode::TxNotFound => "tx_not_found",
            ErrorCode::ProofUnavailable => "proof_unavailable",
            ErrorCode::BadAddress => "bad_address",
            ErrorCode::BadHash => "bad_hash",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::BadBlockId => "bad_block_id",
            ErrorCode::CursorAhead => "cursor_ahead",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::WebSocketRequired => "websocket_required",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether jsonrpsee itself produces this error, before any method runs; such errors carry
    /// jsonrpsee's own `data` (a string or nothing), not a `reason` object.
    pub fn is_transport(self) -> bool {
        matches!(
            self,
            ErrorCode::ParseError | ErrorCode::InvalidRequest | ErrorCode::RequestTooLarge | ErrorCode::BatchTooLarge
        )
    }

    /// The code that a transaction rule breach maps to.
    pub fn of_tx_error(e: &TxError) -> ErrorCode {
        match e {
            TxError::BadSignature => ErrorCode::BadSignature,
            TxError::BadRecipient => ErrorCode::BadRecipient,
            TxError::AccountCreationFee { .. } => ErrorCode::AccountCreationFee,
            TxError::Governance(_) => ErrorCode::Governance,
            TxError::WrongChain { .. } => ErrorCode::WrongChain,
            TxError::MemoTooLong { .. } => ErrorCode::MemoTooLong,
            TxError::FeeBelowFloor { .. } => ErrorCode::FeeBelowFloor,
            TxError::Overflow => ErrorCode::Overflow,
            TxError::NonceTooLow { .. } => ErrorCode::NonceTooLow,
            TxError::NonceGap { .. } => ErrorCode::NonceGap,
            TxError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            TxError::Expired { .. } => ErrorCode::Expired,
        }
    }
}

/// A method's failure, ready to become a JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
    context: Map<String, Value>,
}

impl ApiError {
    /// An error with a message and no context beyond the reason.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), context: Map::new() }
    }

    /// Adds one context field to `data`.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    /// The error's code.
    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParams, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// A decoding failure of submitted transaction bytes.
    pub(crate) fn from_decode(e: &ConsensusError) -> ApiError {
        match e {
            ConsensusError::TooLarge { len, max } => {
                ApiError::new(ErrorCode::TxTooLarge, e.to_string()).with("bytes", *len).with("bytesMax", *max)
            }
            _ => ApiError::new(ErrorCode::BadEncoding, e.to_string()),
        }
    }

    /// A rule breach, with the numbers a wallet needs to fix the transaction.
    pub(crate) fn from_tx_error(e: &TxError) -> ApiError {
        let err = ApiError::new(ErrorCode::of_tx_error(e), e.to_string());
        match e {
            TxError::WrongChain { expected, got } => err.with("expected", expected.as_str()).with("got", got.as_str()),
            TxError::MemoTooLong { max_bytes } => err.with("bytesMax", *max_bytes),
            TxError::FeeBelowFloor { fee, floor } => err.with("fee", fee.to_string()).with("floor", floor.to_string()),
            TxError::NonceTooLow { expected, got } | TxError::NonceGap { expected, got } => {
                err.with("expected", *expected).with("got", *got)
            }
            TxError::InsufficientBalance { needed, available } => {
                err.with("needed", needed.to_string()).with("available", available.to_string())
            }
            TxError::Expired { valid_until, height } => {
                err.with("validUntilHeight", *valid_until).with("height", *height)
            }
            TxError::AccountCreationFee { fee, needed } => {
                err.with("fee", fee.to_string()).with("needed", needed.to_string())
            }
            TxError::BadSignature | TxError::BadRecipient | TxError::Overflow | TxError::Governance(_) => err,
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        let message = e.to_string();
        match e {
            SubmitError::Rejected(tx) => ApiError::from_tx_error(&tx),
            SubmitError::PoolFull { txs_max } => ApiError::new(ErrorCode::PoolFull, message).with("txsMax", txs_max),
            SubmitError::SenderLimit { per_sender_max } => {
                ApiError::new(ErrorCode::SenderLimit, message).with("perSenderMax", per_sender_max)
            }
            SubmitError::ReplacementUnderpriced { fee, pooled_fee, needed } => {
                ApiError::new(ErrorCode::ReplacementUnderpriced, message)
                    .with("fee", fee.to_string())
                    .with("pooledFee", pooled_fee.to_string())
                    .with("needed", needed.to_string())
            }
            SubmitError::ReplacementLimit { replacements_max } => {
                ApiError::new(ErrorCode::ReplacementLimit, message).with("replacementsMax", replacements_max)
            }
            SubmitError::QueuedLimit { queued_per_sender_max, next_nonce } => {
                ApiError::new(ErrorCode::QueuedLimit, message)
                    .with("queuedPerSenderMax", queued_per_sender_max)
                    .with("nextNonce", next_nonce)
            }
            SubmitError::Busy => ApiError::new(ErrorCode::Busy, message),
            SubmitError::Internal(_) => ApiError::internal(message),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> ApiError {
        match e {
            BackendError::Internal { .. } => ApiError::internal(e.to_string()),
            BackendError::ProofUnavailable { height, oldest, head } => {
                ApiError::new(ErrorCode::ProofUnavailable, e.to_string())
                    .with("height", height)
                    .with("oldestHeight", oldest)
                    .with("headHeight", head)
            }
        }
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> ErrorObjectOwned {
        let mut data = Map::with_capacity(e.context.len() + 1);
        data.insert("reason".to_owned(), Value::from(e.code.reason()));
        data.extend(e.context);
        ErrorObjectOwned::owned(e.code.code(), e.message, Some(Value::Object(data)))
    }
}

/// Why the server could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A method could not be registered (a duplicate name: a bug in this crate).
    #[error("cannot register method `{method}`: {message}")]
    Register {
        /// The method.
        method: &'static str,
        /// jsonrpsee's explanation.
        message: String,
    },
    /// The embedded OpenRPC document is not valid JSON (a bug in this crate).
    #[error("the embedded OpenRPC document is invalid: {0}")]
    OpenRpc(#[from] serde_json::Error),
    /// `stop` was called on a server that had already stopped.
    #[error("the RPC server has already stopped")]
    AlreadyStopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_are_unique() {
        let mut codes: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        let mut reasons: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.reason()).collect();
        codes.sort_unstable();
        codes.dedup();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(reasons.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn tx_error_reasons_match_the_consensus_names() {
        let cases = [
            TxError::BadSignature,
            TxError::BadRecipient,
            TxError::WrongChain { expected: "a".into(), got: "b".into() },
            TxError::MemoTooLong { max_bytes: 1 },
            TxError::FeeBelowFloor { fee: 1, floor: 2 },
            TxError::Overflow,
            TxError::NonceTooLow { expected: 2, got: 1 },
            TxError::NonceGap { expected: 1, got: 3 },
            TxError::InsufficientBalance { needed: 2, available: 1 },
            TxError::Expired { valid_until: 1, height: 2 },
            TxError::AccountCreationFee { fee: 1, needed: 100 },
            TxError::Governance("no".into()),
        ];
        for e in cases {
            assert_eq!(ErrorCode::of_tx_error(&e).reason(), e.reason(), "{e:?}");
        }
    }

    #[test]
    fn error_object_carries_reason_and_context() {
        let e = ApiError::from_tx_error(&TxError::NonceGap { expected: 4, got: 9 });
        let obj = ErrorObjectOwned::from(e);
        assert_eq!(obj.code(), 1005);
        let data: Value = serde_json::from_str(obj.data().map(|d| d.get()).unwrap_or("null")).unwrap_or_default();
        assert_eq!(data["reason"], "nonce_gap");
        assert_eq!(data["expected"], 4);
        assert_eq!(data["got"], 9);
    }
}
