//! A call middleware that gives jsonrpsee's own per-call errors the same `data.reason` shape as
//! ours: an unknown method and a response over the size limit.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorObjectOwned, Request};

use crate::error::{ApiError, ErrorCode};

/// Wraps the inner call service.
#[derive(Clone)]
pub(crate) struct Reasons<S> {
    pub(crate) inner: S,
    pub(crate) methods: Arc<HashSet<&'static str>>,
    pub(crate) response_bytes_max: u32,
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
        let response_bytes_max = self.response_bytes_max;
        async move {
            let id = req.id.clone().into_owned();
            if !known {
                return MethodResponse::error(id, method_not_found(&req.method)).with_extensions(req.extensions);
            }
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
