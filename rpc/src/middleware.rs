//! Call middleware: [`Metered`] counts and times every call for `/metrics`, and [`Reasons`] checks
//! each call's parameter list against the documented signature and gives jsonrpsee's own
//! per-call errors the same `data.reason` shape as ours (an unknown method, a response over the
//! size limit, one subscription too many).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use jsonrpsee::server::middleware::rpc::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::{ErrorObjectOwned, Request};

use crate::error::{ApiError, ErrorCode};
use crate::metrics::RpcMetrics;
use crate::params::Signatures;

/// Records each call's method, outcome and duration; sits outside [`Reasons`], so unknown
/// methods are counted too.
#[derive(Clone)]
pub(crate) struct Metered<S> {
    pub(crate) inner: S,
    pub(crate) metrics: Arc<RpcMetrics>,
    /// The largest batch response, in bytes, as the server is configured.
    pub(crate) response_bytes_max: u32,
}

impl<S> RpcServiceT for Metered<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        let method = metrics.label(&req.method);
        async move {
            let started = Instant::now();
            let rp = inner.call(req).await;
            metrics.record(method, rp.is_success(), started.elapsed());
            rp
        }
    }

    /// Answers a batch call by call through [`Metered::call`], as jsonrpsee's own service does
    /// (whose batch handling would bypass every middleware's `call`), so each call is counted.
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let mut answers = BatchResponseBuilder::new_with_limit(this.response_bytes_max as usize);
            let mut got_notification = false;
            for entry in batch {
                let answer = match entry {
                    Ok(BatchEntry::Call(req)) => this.call(req).await,
                    Ok(BatchEntry::Notification(n)) => {
                        got_notification = true;
                        this.inner.notification(n).await;
                        continue;
                    }
                    Err(e) => {
                        let (err, id) = e.into_parts();
                        MethodResponse::error(id, err)
                    }
                };
                if let Err(too_large) = answers.append(answer) {
                    return too_large;
                }
            }
            if answers.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                // An empty batch becomes jsonrpsee's "invalid request" answer here.
                MethodResponse::from_batch(answers.finish())
            }
        }
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// Wraps the inner call service.
#[derive(Clone)]
pub(crate) struct Reasons<S> {
    pub(crate) inner: S,
    pub(crate) methods: Arc<HashSet<&'static str>>,
    /// Each method's documented parameters.
    pub(crate) signatures: Arc<Signatures>,
    pub(crate) response_bytes_max: u32,
    pub(crate) subscriptions_max: u32,
}

fn method_not_found(method: &str) -> ErrorObjectOwned {
    let shown: String = method.chars().take(64).collect();
    ApiError::new(ErrorCode::MethodNotFound, format!("no method `{shown}`; `rpc.discover` lists them"))
        .with("method", shown)
        .into()
}

impl<S> RpcServiceT for Reasons<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let known = self.methods.contains(req.method.as_ref());
        let shape = self.signatures.check(&req.method, req.params().as_str());
        let response_bytes_max = self.response_bytes_max;
        let subscriptions_max = self.subscriptions_max;
        async move {
            let id = req.id.clone().into_owned();
            if !known {
                return MethodResponse::error(id, method_not_found(&req.method)).with_extensions(req.extensions);
            }
            if let Err(e) = shape {
                return MethodResponse::error(id, ErrorObjectOwned::from(e)).with_extensions(req.extensions);
            }
            let method = req.method.to_string();
            let rp = inner.call(req).await;
            if rp.as_error_code() == Some(ErrorCode::ResponseTooLarge.code()) {
                let err = ApiError::new(
                    ErrorCode::ResponseTooLarge,
                    format!("the response is larger than {response_bytes_max} bytes"),
                )
                .with("bytesMax", response_bytes_max);
                let extensions = rp.extensions().clone();
                return MethodResponse::error(id, ErrorObjectOwned::from(err)).with_extensions(extensions);
            }
            // jsonrpsee answers a subscription over plain HTTP with a bare "internal error".
            if rp.as_error_code() == Some(jsonrpsee::types::error::INTERNAL_ERROR_CODE) && method.contains("ubscribe") {
                let err = ApiError::new(
                    ErrorCode::WebSocketRequired,
                    format!("`{method}` needs a WebSocket connection (ws://…): plain HTTP cannot carry notifications"),
                )
                .with("method", method.clone());
                let extensions = rp.extensions().clone();
                return MethodResponse::error(id, ErrorObjectOwned::from(err)).with_extensions(extensions);
            }
            if rp.as_error_code() == Some(ErrorCode::TooManySubscriptions.code()) {
                let err = ApiError::new(
                    ErrorCode::TooManySubscriptions,
                    format!(
                        "this connection already holds {subscriptions_max} subscriptions; unsubscribe one or open \
                         another connection"
                    ),
                )
                .with("subscriptionsMax", subscriptions_max);
                let extensions = rp.extensions().clone();
                return MethodResponse::error(id, ErrorObjectOwned::from(err)).with_extensions(extensions);
            }
            rp
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        // The inner service answers each call of a batch itself, bypassing `call` above, so
        // unknown methods are turned into error entries here.
        for entry in batch.iter_mut() {
            if let Ok(BatchEntry::Call(req)) = entry {
                if !self.methods.contains(req.method.as_ref()) {
                    let err = method_not_found(&req.method);
                    *entry = Err(BatchEntryErr::new(req.id.clone(), err));
                }
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
