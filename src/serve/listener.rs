//! The socket side: accept connections, serve each with hyper's HTTP/1
//! implementation under the [`Limits`], and shut down gracefully.
//!
//! axum's own `serve` does not expose hyper's limits, so connections are
//! driven here:
//! - a semaphore of `max_connections` permits: the accept loop takes a
//!   permit before accepting, so excess clients wait in the kernel backlog
//!   instead of costing memory; each connection task holds its permit;
//! - hyper's `max_buf_size` and its 100 fields bound a request head (431 beyond),
//!   and `header_read_timeout` bounds both a slow head and an idle
//!   keep-alive connection;
//! - a connection older than `max_connection_age` is asked to close after
//!   its current response.
//!
//! `/metrics` on its own address (`--metrics-addr`) is a second, plain axum
//! listener: scrapes are few and come from inside the cluster.
//!
//! Shutdown: stop accepting, ask every connection to finish its in-flight
//! response and close, wait for all permits to come back (at most
//! `shutdown_grace`), then stop the refresh task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::routes::metrics_app;
use super::{App, Limits, ServeError, ServeOptions, ServeState, app};
use crate::store::Store;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound, not yet serving, service.
#[derive(Debug)]
pub(crate) struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: Arc<ServeState>,
    limits: Limits,
}

impl Server {
    /// Binds `options.addr` and prepares the state (nothing is read from the store yet).
    pub(crate) async fn bind(store: Arc<dyn Store>, options: ServeOptions) -> Result<Self, ServeError> {
        if options.limits.max_connections == 0 || options.limits.max_header_bytes < 8192 {
            return Err(ServeError::Options("max_connections must be positive and max_header_bytes >= 8192".into()));
        }
        let state = ServeState::new(store, &options)?;
        let listener =
            TcpListener::bind(options.addr).await.map_err(|source| ServeError::Bind { addr: options.addr, source })?;
        let metrics_listener = match options.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?),
            None => None,
        };
        Ok(Server { listener, metrics_listener, state, limits: options.limits })
    }

    /// The bound address (the real port when 0 was asked for).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound `/metrics` address, when it has its own.
    pub(crate) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Loads the index, then serves until `shutdown` completes and in-flight
    /// requests have finished (or `shutdown_grace` ran out).
    pub(crate) async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server { listener, metrics_listener, state, limits } = self;
        // Clients that connect meanwhile wait in the backlog: they never see
        // a half-started service.
        let _ = state.refresh().await;
        let refresher = state.spawn_refresh();
        let (stop, stopping) = watch::channel(false);
        let metrics_server = metrics_listener.map(|listener| {
            let mut stopping = stopping.clone();
            let metrics = axum::serve(listener, metrics_app(Arc::clone(&state)))
                .with_graceful_shutdown(async move { drop(stopping.wait_for(|stop| *stop).await) });
            tokio::spawn(async move {
                if let Err(e) = metrics.await {
                    tracing::warn!("the /metrics listener failed: {e}");
                }
            })
        });
        let app = app(Arc::clone(&state));
        let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let (app, limits, stopping, state) = (app.clone(), limits.clone(), stopping.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                state.metrics.connections().inc();
                connection(stream, app, &limits, stopping).await;
                state.metrics.connections().dec();
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: letting in-flight requests finish");
        let _ = stop.send(true);
        let all = limits.max_connections;
        if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all)).await.is_err() {
            tracing::warn!(
                "some connections did not finish within {}s; closing them",
                limits.shutdown_grace.as_secs_f64()
            );
        }
        refresher.abort();
        if let Some(metrics) = metrics_server {
            metrics.abort();
        }
        Ok(())
    }
}

/// Serves one connection until the client leaves, it grows too old, or the
/// server stops; the last two let the in-flight response finish first.
async fn connection(stream: TcpStream, app: App, limits: &Limits, mut stopping: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    // Header fields: hyper's own bound, 100 (431 beyond), kept in a table on
    // the stack. Setting any bound, even a lower one, makes hyper build and
    // fill a table of that size for every request (2% of the index's CPU).
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return log_end(result),
        _ = stopping.wait_for(|stop| *stop) => {}
        () = tokio::time::sleep(limits.max_connection_age) => {}
    }
    // Finishes the response in flight (if any), then closes.
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.shutdown_grace, conn).await {
        Ok(result) => log_end(result),
        Err(_) => tracing::debug!("dropping a connection whose response did not finish in time"),
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!("connection ended with an error: {e}");
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
