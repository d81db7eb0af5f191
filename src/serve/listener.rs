//! The socket side: accept connections, serve each with hyper's HTTP/1
//! implementation under the [`Limits`], and shut down gracefully.
//!
//! axum's own `serve` does not expose hyper's limits, so connections are
//! driven here:
//! - one thread per core, each with its own single-threaded runtime,
//!   accepts from the one listening socket and serves the connections it
//!   accepted (see [`Worker`]);
//! - a semaphore of `max_connections` permits, shared by the threads: each
//!   takes a permit before accepting, so excess clients wait in the kernel
//!   backlog instead of costing memory; each connection task holds its permit;
//! - hyper's `max_buf_size` and its 100 fields bound a request head (431 beyond),
//!   and `header_read_timeout` bounds both a slow head and an idle
//!   keep-alive connection;
//! - a connection older than `max_connection_age` is asked to close after
//!   its current response.
//!
//! `/metrics` on its own address (`--metrics-addr`) is a second, plain axum
//! listener: scrapes are few and come from inside the cluster.
//!
//! The index refresh and `/metrics` on its own address run on the caller's
//! runtime.
//!
//! Shutdown: stop accepting, ask every connection to finish its in-flight
//! response and close, wait for all permits to come back (at most
//! `shutdown_grace`), then end the serving threads (dropping whatever
//! connection is left) and stop the refresh task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};

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
        let (stop, stopping) = watch::channel(false);
        let (done, finished) = watch::channel(false);
        let app = app(Arc::clone(&state)).requiring_host();
        let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
        let listener = listener.into_std().map_err(ServeError::Start)?;
        let mut workers = Vec::new();
        for n in 0..worker_count() {
            let worker = Worker {
                app: app.clone(),
                limits: limits.clone(),
                permits: Arc::clone(&permits),
                stopping: stopping.clone(),
                finished: finished.clone(),
            };
            let socket = listener.try_clone().map_err(ServeError::Start)?;
            let (ready, started) = oneshot::channel();
            // On an error, dropping `stop` and `done` ends the threads already started.
            let thread = std::thread::Builder::new().name(format!("sdk-cdn-serve-{n}"));
            workers.push(thread.spawn(move || worker.run(socket, ready)).map_err(ServeError::Start)?);
            match started.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ServeError::Start(e)),
                Err(_) => return Err(ServeError::Start(std::io::Error::other("a serving thread ended as it started"))),
            }
        }
        let refresher = state.spawn_refresh();
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
        drop(listener);
        shutdown.await;
        tracing::info!("shutting down: letting in-flight requests finish");
        let _ = stop.send(true);
        let all = limits.max_connections;
        if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all)).await.is_err() {
            tracing::warn!(
                "some connections did not finish within {}s; closing them",
                limits.shutdown_grace.as_secs_f64()
            );
        }
        // Each worker then drops its runtime, and with it any connection left.
        let _ = done.send(true);
        for worker in workers {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        refresher.abort();
        if let Some(metrics) = metrics_server {
            metrics.abort();
        }
        Ok(())
    }
}

/// Threads that accept and serve connections: one per core.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// One thread's share of the service: its own single-threaded runtime
/// accepts from the shared listening socket and serves each connection it
/// accepted to the end, on that thread.
///
/// One runtime per core rather than one runtime whose workers steal each
/// other's tasks: a connection's allocations are freed on the thread that
/// made them (no contention for the allocator's locks), and no worker wakes
/// another. The threads wait on the same socket; the kernel gives each
/// new connection to one of them. In alternated runs this served the index
/// about a tenth faster than one multi-threaded runtime (BENCHMARKS.md,
/// "serve").
struct Worker {
    app: App,
    limits: Limits,
    permits: Arc<Semaphore>,
    stopping: watch::Receiver<bool>,
    /// Set once in-flight requests have finished or had their grace.
    finished: watch::Receiver<bool>,
}

impl Worker {
    /// Starts a runtime and registers `socket` with it, says whether that
    /// worked on `ready`, then serves until the server is done.
    fn run(self, socket: std::net::TcpListener, ready: oneshot::Sender<std::io::Result<()>>) {
        let started = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
            if crate::pause::fails("serve-start") {
                // What registering the socket meets when file descriptors run out.
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
            let listener = {
                let _in = runtime.enter();
                TcpListener::from_std(socket)?
            };
            Ok((runtime, listener))
        });
        let (runtime, listener) = match started {
            Ok(started) => started,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let Worker { app, limits, permits, stopping, mut finished } = self;
        runtime.block_on(async move {
            let mut stop = stopping.clone();
            tokio::select! {
                () = accept(&listener, &app, &limits, &permits, &stopping) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
            drop(listener);
            // Keep serving what was accepted until the server is done waiting.
            let _ = finished.wait_for(|done| *done).await;
        });
    }
}

/// Accepts connections while permits last, and serves each on this thread.
async fn accept(
    listener: &TcpListener,
    app: &App,
    limits: &Limits,
    permits: &Arc<Semaphore>,
    stopping: &watch::Receiver<bool>,
) {
    loop {
        let Ok(permit) = Arc::clone(permits).acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (app, limits, stopping) = (app.clone(), limits.clone(), stopping.clone());
        tokio::spawn(async move {
            let state = Arc::clone(app.state());
            state.metrics.connections().inc();
            connection(stream, app, &limits, stopping).await;
            state.metrics.connections().dec();
            drop(permit);
        });
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
