//! Accepting connections and serving HTTP/1.1 on them, with every wait on a peer bounded.
//!
//! - At most [`Limits::max_connections`](crate::app::Limits) connections are open; beyond
//!   that the server stops accepting (the kernel's backlog holds the rest) instead of running
//!   out of file descriptors.
//! - An error from `accept` (out of file descriptors, a reset before accept) is logged at most
//!   once a second and backed off, so the loop never spins.
//! - A request's head must arrive within `header` (hyper's timer; the same timer closes idle
//!   keep-alive connections); a request body that stalls for `body_idle` fails its request;
//!   a response the client stops reading for `send_stall` closes the connection.
//! - On shutdown the listener closes, idle connections are closed at once, requests in flight
//!   get `shutdown` to finish (a push in flight completes or is refused cleanly), then
//!   background work gets what remains of it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::App;
use crate::request::Peer;
use crate::tls::Tls;

/// Accept connections until `shutdown` resolves, then let in-flight requests finish. With
/// `tls`, every connection is HTTPS (its handshake bounded by the header timeout).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    // Push events are delivered by a worker that lives as long as the listener.
    let stop_events = tokio_util::sync::CancellationToken::new();
    let events = tokio::spawn(app.events.clone().run(stop_events.clone()));
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch(stop_events.clone()));
    }
    app.events.wake();
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.config.limits.max_connections.max(1)));
    let mut backoff = Duration::ZERO;
    let mut errors = ErrorLog::default();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    errors.report(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(app.config.timeouts.send_stall));
        let io = Box::pin(io);
        match &tls {
            None => {
                let watched = graceful.watch(serve_connection(app.clone(), io, peer));
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = watched.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(tls) => {
                let (acceptor, watcher, app) = (tls.acceptor(), graceful.watcher(), app.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake =
                        tokio::time::timeout(app.config.timeouts.header, acceptor.accept(io));
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    if let Err(e) = watcher.watch(serve_connection(app, stream, peer)).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    // An event being delivered is delivered again by whichever replica takes its lease next.
    stop_events.cancel();
    let _ = events.await;
    tracing::info!("shutting down: waiting for requests in flight");
    let deadline = Instant::now() + app.config.timeouts.shutdown;
    if tokio::time::timeout(app.config.timeouts.shutdown, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at the end of the shutdown timeout");
    }
    app.maintenance
        .wait(deadline.saturating_duration_since(Instant::now()))
        .await;
    Ok(())
}

/// One connection: hyper with a header timer, over a socket whose writes time out (plain,
/// or TLS over it). Requests carry the peer's address (for trusted proxies).
fn serve_connection<I>(
    app: Arc<App>,
    io: I,
    peer: SocketAddr,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = app.config.timeouts.header;
    let service = tower::ServiceBuilder::new()
        .layer(crate::layers::LogLayer)
        .map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            req
        })
        .layer(crate::layers::ContextLayer::new(app.clone()))
        .service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(crate::http::handle(app, req).await) }
        });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(io),
            hyper_util::service::TowerToHyperService::new(service),
        )
}

/// Logs accept errors at most once a second, with how many there were.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, e: &std::io::Error) {
        match self.last {
            Some(at) if at.elapsed() < Duration::from_secs(1) => self.suppressed += 1,
            _ => {
                tracing::warn!(error = %e, suppressed = self.suppressed, "accept failed; backing off");
                self.last = Some(Instant::now());
                self.suppressed = 0;
            }
        }
    }
}
