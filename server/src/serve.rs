//! Accepting connections and serving HTTP/1.1 on them, with every wait on a peer bounded.
//!
//! - At most [`Limits::max_connections`](crate::app::Limits) connections are open; beyond
//!   that the server stops accepting (the kernel's backlog holds the rest) instead of running
//!   out of file descriptors.
//! - An error from `accept` (out of file descriptors, a reset before accept) is logged at most
//!   once a second and backed off, so the loop never spins. Out of file descriptors, the
//!   connections with no request in flight (idle keep-alives, clients that sent half a
//!   request head) are closed first, the oldest first, so that new requests (`/health`, a
//!   clone) get in while they would otherwise hold every descriptor until their timeouts.
//! - A request's head must arrive within `header` (hyper's timer; the same timer closes idle
//!   keep-alive connections); a request body that stalls for `body_idle` fails its request;
//!   a response the client stops reading for `send_stall` closes the connection.
//! - On shutdown the listener closes, idle connections are closed at once, requests in flight
//!   get `shutdown` to finish (a push in flight completes or is refused cleanly), then
//!   background work gets what remains of it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    // So are upstream syncs that are due (timers, interrupted syncs).
    let poll = app.events.settings().poll;
    tokio::spawn(crate::upstreams::scheduler::run(
        app.clone(),
        poll,
        stop_events.clone(),
    ));
    // And deleted repositories past their retention are purged.
    tokio::spawn(crate::lifecycle::run_purger(
        app.clone(),
        poll,
        stop_events.clone(),
    ));
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch(stop_events.clone()));
    }
    app.events.wake();
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(app.config.limits.max_connections.max(1)));
    let open = Arc::new(OpenConnections::default());
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
                    if out_of_descriptors(&e) {
                        let shed = open.shed_idle();
                        if shed > 0 {
                            tracing::info!(shed, "out of file descriptors: closed idle connections");
                            backoff = Duration::ZERO;
                            continue;
                        }
                    }
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
        let conn = open.register();
        match &tls {
            None => {
                let served = serve_connection(app.clone(), io, peer, conn.clone());
                let watched = graceful.watch(served);
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        ended = watched => if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        },
                        _ = conn.shed.notified() => tracing::debug!(%peer, "idle connection shed"),
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
                    let served = watcher.watch(serve_connection(app, stream, peer, conn.clone()));
                    tokio::select! {
                        ended = served => if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        },
                        _ = conn.shed.notified() => tracing::debug!(%peer, "idle connection shed"),
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
    conn: Arc<Connection>,
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
            let (app, busy) = (app.clone(), Busy::start(&conn));
            async move {
                let resp = crate::http::handle(app, req).await;
                // Busy until the answer has been sent, not only until it was made.
                Ok::<_, Infallible>(resp.map(|body| crate::body::holding(body, busy)))
            }
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

/// Whether an accept failed for want of file descriptors (the process's or the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// One open connection: how many requests it has in flight, and how to close it.
#[derive(Debug)]
struct Connection {
    opened: Instant,
    busy: AtomicUsize,
    shed: tokio::sync::Notify,
}

/// A request in flight on a connection, until its answer has been sent.
struct Busy(Arc<Connection>);

impl Busy {
    fn start(conn: &Arc<Connection>) -> Self {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open connections, so that idle ones can be closed when descriptors run short.
#[derive(Debug, Default)]
struct OpenConnections {
    open: std::sync::Mutex<Vec<std::sync::Weak<Connection>>>,
}

impl OpenConnections {
    fn register(&self) -> Arc<Connection> {
        let conn = Arc::new(Connection {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            shed: tokio::sync::Notify::new(),
        });
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|c| c.strong_count() > 0);
        open.push(Arc::downgrade(&conn));
        conn
    }

    /// Close the oldest quarter (at least one) of the connections with no request in
    /// flight; how many.
    fn shed_idle(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut idle: Vec<Arc<Connection>> = open
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|c| c.busy.load(Ordering::Relaxed) == 0)
            .collect();
        idle.sort_by_key(|c| c.opened);
        let count = idle.len().div_ceil(4);
        for conn in &idle[..count] {
            conn.shed.notify_one();
        }
        count
    }
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
