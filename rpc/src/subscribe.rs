//! WebSocket subscriptions that nobody misses: every stream is read from storage from the
//! subscriber's cursor, then follows the live feed, with no gap and no duplicate at the seam.
//!
//! How the seam works: a subscription takes a feed receiver *before* it reads the backlog, so an
//! event committed while the backlog is read is both stored and on the feed; events at or before
//! the last delivered cursor are skipped. If the feed itself overflows (the receiver lagged the
//! broadcast channel), the stream simply reads storage again from its cursor. Nothing is lost by
//! the node; only a client that stops reading is cut off: when its connection's buffer stays full
//! for the lag timeout, it is sent `{"type":"lagged","resumeCursor":...}` and the subscription
//! ends. It can subscribe again with `after` set to that cursor.

use std::sync::Arc;

use jsonrpsee::core::server::{PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink};
use jsonrpsee::server::SendTimeoutError;
use serde_json::Value;
use taksa_consensus::{Address, Cursor, Event, Hash, Header};
use tokio::sync::broadcast::error::RecvError;

use crate::backend::{EventFilter, FeedItem, TxRecord, TxStatus};
use crate::cursor;
use crate::error::{ApiError, ErrorCode};
use crate::json::{
    ActivityJson, BlockNoticeJson, BlockSummaryJson, HeadBlockJson, HeadJson, HeadStatusJson, HeaderJson, LaggedJson,
    NotificationJson, TransferJson, TransferNoticeJson, TxStatusJson,
};
use crate::methods::Ctx;

/// Events read from storage per backlog page.
const BACKLOG_PAGE: usize = 256;
/// How long the `lagged` notice waits for room in a stalled client's buffer; a client that
/// reads nothing for this long after being cut off never sees it (its connection buffer is
/// all it costs meanwhile).
const LAGGED_NOTICE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// (subscribe, notification, unsubscribe) method names, as [`crate::api::TaksaApi`] declares
/// them; the docs are checked against this list.
#[cfg(test)]
pub(crate) const SUBSCRIPTIONS: [(&str, &str, &str); 5] = [
    ("chain_subscribeNewHeads", "chain_newHead", "chain_unsubscribeNewHeads"),
    ("chain_subscribeFinalized", "chain_finalized", "chain_unsubscribeFinalized"),
    ("account_subscribe", "account_activity", "account_unsubscribe"),
    ("tx_subscribeStatus", "tx_status", "tx_unsubscribeStatus"),
    ("events_subscribe", "events_event", "events_unsubscribe"),
];

/// What a stream delivers.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    /// Notarized heads live, and every finalized block (with its cursor).
    Heads,
    /// Finalized blocks.
    Finalized,
    /// Transfers touching the address, from its point of view.
    Account(Address),
    /// Every event.
    All,
}

impl Stream {
    fn filter(self) -> EventFilter {
        match self {
            Stream::Heads | Stream::Finalized => EventFilter::Blocks,
            Stream::Account(a) => EventFilter::Address(a),
            Stream::All => EventFilter::All,
        }
    }
}

/// Runs a backend call on the blocking pool, bounded like method calls.
async fn blocking<T: Send + 'static>(
    ctx: &Arc<Ctx>,
    f: impl FnOnce(&Ctx) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = ctx.calls.clone().acquire_owned().await.map_err(|_| ApiError::internal("the server is stopping"))?;
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&ctx)
    })
    .await
    .map_err(|_| ApiError::internal("the subscription failed inside the node"))?
}

/// Where a stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Only events committed from now on.
    Live,
    /// Strictly after this cursor.
    After(Cursor),
    /// From the first event at this height.
    Height(u64),
}

/// Reads `{after?, fromHeight?}`.
pub(crate) fn start_options(v: Option<&Value>) -> Result<Start, ApiError> {
    let Some(v) = v else { return Ok(Start::Live) };
    let map = v.as_object().ok_or_else(|| ApiError::invalid_params("`options` must be an object"))?;
    let mut start = Start::Live;
    for (key, value) in map {
        let next = match (key.as_str(), value) {
            (_, Value::Null) => continue,
            ("after", Value::String(s)) => Start::After(cursor::decode_event(s, "after")?),
            ("after", _) => {
                return Err(ApiError::invalid_params("`after` must be a cursor string").with("param", "after"))
            }
            ("fromHeight", v) => Start::Height(v.as_u64().ok_or_else(|| {
                ApiError::invalid_params("`fromHeight` must be a non-negative integer").with("param", "fromHeight")
            })?),
            (other, _) => {
                return Err(ApiError::invalid_params(format!("unknown option `{other}`"))
                    .with("expected", vec!["after", "fromHeight"]))
            }
        };
        if start != Start::Live {
            return Err(ApiError::invalid_params("give `after` or `fromHeight`, not both"));
        }
        start = next;
    }
    Ok(start)
}

/// Resolves `start` against the chain: a cursor or height beyond the head is refused.
fn resolve(ctx: &Ctx, start: Start) -> Result<Option<Cursor>, ApiError> {
    let last = ctx.backend.last_cursor();
    match start {
        Start::Live => Ok(Some(last)),
        Start::After(c) if c > last => Err(ApiError::new(
            ErrorCode::CursorAhead,
            format!(
                "cursor {c} is beyond the newest event {last}; this node has not seen it (is it from another chain?)"
            ),
        )
        .with("newest", cursor::encode_event(last))),
        Start::After(c) => Ok(Some(c)),
        Start::Height(h) if h > last.height.saturating_add(1) => Err(ApiError::new(
            ErrorCode::CursorAhead,
            format!("height {h} does not exist yet; the head is {}", last.height),
        )
        .with("headHeight", last.height)),
        Start::Height(h) => Ok(Cursor::before_height(h)),
    }
}

pub(crate) async fn run_stream(
    pending: PendingSubscriptionSink,
    ctx: Arc<Ctx>,
    stream: Stream,
    start: Result<Start, ApiError>,
) {
    let start = match start {
        Ok(s) => s,
        Err(e) => return pending.reject(e).await,
    };
    // The feed is joined before the backlog is read: see the module docs.
    let mut feed = ctx.backend.feed();
    let after = match blocking(&ctx, move |ctx| resolve(ctx, start)).await {
        Ok(a) => a,
        Err(e) => return pending.reject(e).await,
    };
    let Ok(sink) = pending.accept().await else { return };
    let mut out = Out { sink, ctx: ctx.clone(), stream, after };
    loop {
        if out.catch_up().await.is_err() {
            return;
        }
        loop {
            let item = tokio::select! {
                item = feed.recv() => item,
                _ = out.sink.closed() => return,
            };
            let done = match item {
                Ok(FeedItem::Committed(events)) => out.live(&events).await,
                Ok(FeedItem::Notarized(header)) => out.notarized(&header).await,
                Ok(FeedItem::Dropped { .. }) => Ok(()),
                // Fell behind the feed: storage has everything, read it from the cursor.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            };
            if done.is_err() {
                return;
            }
        }
    }
}

/// Why a stream stopped delivering.
struct Stop;

/// One subscriber's stream and where it is.
struct Out {
    sink: SubscriptionSink,
    ctx: Arc<Ctx>,
    stream: Stream,
    /// The newest cursor delivered (or skipped as not wanted).
    after: Option<Cursor>,
}

impl Out {
    /// Delivers every stored event after the cursor.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let (after, filter) = (self.after, self.stream.filter());
            let page = blocking(&self.ctx, move |ctx| Ok(ctx.backend.events(after, &filter, BACKLOG_PAGE)?))
                .await
                .map_err(|_| Stop)?;
            if page.is_empty() {
                return Ok(());
            }
            for (c, e) in page.iter() {
                self.deliver(*c, e).await?;
            }
        }
    }

    /// Delivers the live events not yet delivered.
    async fn live(&mut self, events: &[(Cursor, Event)]) -> Result<(), Stop> {
        for (c, e) in events {
            if self.after.is_some_and(|a| *c <= a) {
                continue;
            }
            self.deliver(*c, e).await?;
        }
        Ok(())
    }

    async fn notarized(&mut self, header: &Header) -> Result<(), Stop> {
        if !matches!(self.stream, Stream::Heads) || self.after.is_some_and(|a| header.height <= a.height) {
            return Ok(());
        }
        let block = HeadBlockJson::Notarized(HeaderJson::new(header, &self.ctx.hrp));
        self.send(NotificationJson::Head(HeadJson { status: HeadStatusJson::Notarized, cursor: None, block })).await
    }

    async fn deliver(&mut self, c: Cursor, e: &Event) -> Result<(), Stop> {
        let hrp = &self.ctx.hrp;
        let cur = cursor::encode_event(c);
        let msg = match (self.stream, e) {
            (Stream::Heads, Event::Block(b)) => NotificationJson::Head(HeadJson {
                status: HeadStatusJson::Finalized,
                cursor: Some(cur),
                block: HeadBlockJson::Finalized(BlockSummaryJson::new(b, hrp)),
            }),
            (Stream::Finalized | Stream::All, Event::Block(b)) => {
                NotificationJson::Block(BlockNoticeJson { cursor: cur, block: BlockSummaryJson::new(b, hrp) })
            }
            (Stream::Account(a), Event::Transfer(t)) if e.touches(&a) => {
                NotificationJson::Activity(ActivityJson::new(&a, c, t, hrp))
            }
            (Stream::All, Event::Transfer(t)) => NotificationJson::Transfer(TransferNoticeJson {
                cursor: cur,
                height: c.height,
                index: c.index,
                transfer: TransferJson::new(t, hrp),
            }),
            // Not for this stream: passed over, but the cursor moves past it.
            _ => {
                self.after = Some(c);
                return Ok(());
            }
        };
        self.send(msg).await?;
        self.after = Some(c);
        Ok(())
    }

    async fn send_status(&mut self, record: &TxRecord) -> Result<(), Stop> {
        self.send(NotificationJson::Status(TxStatusJson::new(record, &self.ctx.hrp))).await
    }

    /// Sends, or tells the subscriber it lagged and stops.
    async fn send(&mut self, msg: NotificationJson) -> Result<(), Stop> {
        let lag = self.ctx.lag_timeout;
        match self.sink.send_timeout(message(&msg)?, lag).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(Stop),
            Err(SendTimeoutError::Timeout(_)) => {
                let resume = self.after.map(cursor::encode_event);
                tracing::info!(target: "rpc", method = self.sink.method_name(), resume = ?resume, "subscriber lagged: closing its subscription");
                self.ctx.lagged.inc(self.sink.method_name());
                let notice = NotificationJson::Lagged(LaggedJson {
                    resume_cursor: resume,
                    message: format!(
                        "this subscription was closed because the client read nothing for {} ms while events were waiting; \
                         subscribe again with {{\"after\": resumeCursor}} to continue without a gap",
                        lag.as_millis()
                    ),
                });
                // The buffer is full: the notice waits for room behind the events already queued.
                let _ = self.sink.send_timeout(message(&notice)?, LAGGED_NOTICE_WAIT).await;
                Err(Stop)
            }
        }
    }
}

fn message(v: &NotificationJson) -> Result<SubscriptionMessage, Stop> {
    serde_json::value::to_raw_value(v).map(SubscriptionMessage::from).map_err(|_| Stop)
}

/// `tx_subscribeStatus`: `[hash]`. The first notification is the current status (the status is
/// a state, so the current one is the whole backlog); then each change, until a final one.
pub(crate) async fn follow_tx(pending: PendingSubscriptionSink, ctx: Arc<Ctx>, hash: Hash) {
    let mut feed = ctx.backend.feed();
    let record = match blocking(&ctx, move |ctx| Ok(ctx.backend.tx(&hash)?)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let e = ApiError::new(ErrorCode::TxNotFound, "this node does not know that transaction; submit it first")
                .with("hash", hash.to_hex());
            return pending.reject(e).await;
        }
        Err(e) => return pending.reject(e).await,
    };
    let Ok(sink) = pending.accept().await else { return };
    let mut out = Out { sink, ctx: ctx.clone(), stream: Stream::All, after: None };
    if out.send_status(&record).await.is_err() || record.status != TxStatus::Pending {
        return;
    }
    loop {
        let item = tokio::select! {
            item = feed.recv() => item,
            _ = out.sink.closed() => return,
        };
        let changed = match item {
            Ok(FeedItem::Committed(events)) => {
                events.iter().any(|(_, e)| matches!(e, Event::Transfer(t) if t.hash == hash))
            }
            Ok(FeedItem::Dropped { hash: h, .. }) => h == hash,
            Ok(FeedItem::Notarized(_)) => false,
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return,
        };
        if !changed {
            continue;
        }
        let Ok(Some(record)) = blocking(&ctx, move |ctx| Ok(ctx.backend.tx(&hash)?)).await else { return };
        if record.status != TxStatus::Pending {
            let _ = out.send_status(&record).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn start_options_read_cursor_height_or_nothing() {
        assert_eq!(start_options(None).ok(), Some(Start::Live));
        let c = cursor::encode_event(Cursor::new(4, 2));
        assert_eq!(start_options(Some(&json!({"after": c}))).ok(), Some(Start::After(Cursor::new(4, 2))));
        assert_eq!(start_options(Some(&json!({"fromHeight": 9}))).ok(), Some(Start::Height(9)));
        let code = |v: Value| start_options(Some(&v)).map_err(|e| e.code()).err();
        assert_eq!(code(json!({"after": "nope"})), Some(ErrorCode::BadCursor));
        assert_eq!(code(json!({"after": 5})), Some(ErrorCode::InvalidParams));
        assert_eq!(code(json!({"fromHeight": -1})), Some(ErrorCode::InvalidParams));
        assert_eq!(code(json!({"after": c, "fromHeight": 1})), Some(ErrorCode::InvalidParams));
        assert_eq!(code(json!({"from": 1})), Some(ErrorCode::InvalidParams));
    }
}
