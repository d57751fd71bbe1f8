//! The tower layers around the request handler: request logging and the cap on concurrent
//! heavy operations. Each is a plain `tower::Layer`, testable alone.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::body::{full, ResponseBody};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Logs method, path, status and duration of every request. Never the query string or any
/// header: credentials travel there.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLayer;

impl<S> Layer<S> for LogLayer {
    type Service = Log<S>;
    fn layer(&self, inner: S) -> Log<S> {
        Log { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Log<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Log<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            tracing::info!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
            Ok(resp)
        })
    }
}

/// Caps the requests that build or index packs (clone, fetch and push bodies): beyond the cap
/// the client gets `503` with `Retry-After` at once, instead of every request slowing down and
/// memory growing. Discovery and the API are never held back.
#[derive(Debug, Clone)]
pub struct HeavyLimitLayer {
    permits: Arc<Semaphore>,
}

impl HeavyLimitLayer {
    pub fn new(max_concurrent: usize) -> Self {
        HeavyLimitLayer {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }
}

impl<S> Layer<S> for HeavyLimitLayer {
    type Service = HeavyLimit<S>;
    fn layer(&self, inner: S) -> HeavyLimit<S> {
        HeavyLimit {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeavyLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

fn is_heavy<B>(req: &Request<B>) -> bool {
    req.method() == Method::POST
        && (req.uri().path().ends_with("/git-upload-pack")
            || req.uri().path().ends_with("/git-receive-pack"))
}

impl<S, B> Service<Request<B>> for HeavyLimit<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !is_heavy(&req) {
            let fut = self.inner.call(req);
            return Box::pin(fut);
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("too many concurrent clones and pushes: answering 503");
            crate::metrics::inc(&crate::metrics::REJECTED_BUSY);
            return Box::pin(async {
                let mut resp = Response::new(full("the server is busy; retry in a few seconds\n"));
                *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                Ok(resp)
            });
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            // The permit lives as long as the response body, which is where the work happens.
            let body = std::mem::replace(resp.body_mut(), full(""));
            *resp.body_mut() = HoldPermit {
                body,
                _permit: permit,
            }
            .boxed();
            Ok(resp)
        })
    }
}

/// A body that keeps a permit until it is dropped.
struct HoldPermit {
    body: ResponseBody,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for HoldPermit {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn heavy_requests_beyond_the_cap_get_503() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
        let inner = tower::service_fn(move |_req: Request<()>| {
            let rx = rx.clone();
            async move {
                if let Some(rx) = rx.lock().await.take() {
                    let _ = rx.await;
                }
                Ok::<_, Infallible>(Response::new(full("ok")))
            }
        });
        let svc = HeavyLimitLayer::new(1).layer(inner);
        let post = || Request::post("/ws/git/a/git-upload-pack").body(()).unwrap();
        let first = tokio::spawn(svc.clone().oneshot(post()));
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let second = svc.clone().oneshot(post()).await.unwrap();
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        let discovery = svc
            .clone()
            .oneshot(Request::get("/ws/git/a/info/refs").body(()).unwrap());
        let _ = tx.send(());
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        assert_eq!(discovery.await.unwrap().status(), StatusCode::OK);
    }
}
