//! `sdk-cdn serve`: the SRI manifest service and a local CDN over any store.
//!
//! ```text
//! GET|HEAD /api/sdk/sri              the index, byte for byte (gzip/br on request), ETag + 304
//! GET|HEAD /api/sdk/sri/<v|latest>   one sealed version's entries
//! GET|HEAD /sdk/<v|latest>/<path>    the files, streamed from the store, with CORS for SRI
//! GET|HEAD /healthz                  liveness, and whether the index is fresh (see `health`)
//! GET|HEAD /readyz                   readiness: 200 only with a current index, else 503 + reason
//! GET      /metrics                  Prometheus/OpenMetrics text (or on `--metrics-addr` only)
//! OPTIONS  any of the above          CORS preflight: 204
//! ```
//!
//! How the pieces fit:
//! - [`ServeState`] (state.rs) holds the index in memory and revalidates it
//!   against the store every `refresh` (cheap `head` first); a failed check
//!   keeps the last good index and is reported by `/healthz` and `/readyz`
//!   (health.rs); an index over `max_index_bytes` is never loaded.
//! - [`Metrics`](metrics.rs) counts what the middleware and the listener see.
//! - [`app`] (routes.rs) is the whole HTTP surface as a value: routes, JSON
//!   errors, common headers, request guards and timeouts. Tests drive it
//!   with `tower::ServiceExt::oneshot`.
//! - [`Server`] (listener.rs) owns the socket: hyper's HTTP/1 connections
//!   with bounded headers, a connection limit, and graceful shutdown.
//!
//! Invariants: only what a sealed manifest (or, for `latest/`, the index)
//! lists is served, so a partial upload is never visible; a file's bytes
//! are served whole only if they hash to their published SRI (files.rs,
//! checked.rs), and `/api/sdk/sri/<version>` is its sealed manifest's; no request path can name a key
//! outside `sdk/` and `api/sdk/sri` (request_path.rs); memory does not grow
//! with file size (files are streamed in 64 KiB chunks).

mod checked;
mod error;
mod files;
mod health;
mod index_api;
mod listener;
mod metrics;
mod negotiate;
mod prepare;
mod request_path;
mod routes;
mod signatures;
mod snapshot;
mod state;
mod versions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::ServeError;
pub(crate) use listener::{Server, shutdown_signal};
pub use prepare::PrepareError;
pub use routes::{App, app};
pub use state::{RefreshError, Refreshed, ServeState};

use crate::headers::INDEX_CACHE_CONTROL;
use crate::store::Store;

/// Default listening address: loopback only; expose it deliberately.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Default interval between index revalidations.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// Default cap on the size of `api/sdk/sri` the service loads: about 200,000
/// files' entries, far beyond any real SDK history, and small enough that a
/// load (parse + gzip + brotli) stays within seconds and tens of MiB.
pub(crate) const DEFAULT_MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// Default bound on how long ago the index was confirmed for `/readyz` to say ready.
pub(crate) const DEFAULT_READY_MAX_AGE: Duration = Duration::from_secs(60);

/// How to run the service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// How often the in-memory index is revalidated against the store.
    pub refresh: Duration,
    /// `Cache-Control` of `/api/sdk/sri` (and of `/api/sdk/sri/latest`).
    pub index_cache_control: String,
    /// Bounds on connections, headers and time.
    pub limits: Limits,
    /// Serve `/metrics` on this address only (not on `addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// The largest `api/sdk/sri` the service loads.
    pub max_index_bytes: u64,
    /// `/readyz` is 503 once the index was confirmed longer ago than this.
    pub ready_max_age: Duration,
    /// The base URL the versions page (`/`) writes into its tags; `None`:
    /// `http://` and the request's `Host`.
    pub public_base_url: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            refresh: DEFAULT_REFRESH,
            index_cache_control: INDEX_CACHE_CONTROL.to_string(),
            limits: Limits::default(),
            metrics_addr: None,
            max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
            ready_max_age: DEFAULT_READY_MAX_AGE,
            public_base_url: None,
        }
    }
}

/// Resource bounds, so that no client can hold the server's memory, sockets
/// or time without limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; further clients wait in the listen backlog.
    /// With HTTP/1 (one request at a time per connection) this also bounds
    /// requests in flight.
    pub(crate) max_connections: u32,
    /// Time to receive a request's headers; also how long an idle keep-alive
    /// connection is kept (hyper starts this timer whenever it waits for a head).
    pub(crate) header_read_timeout: Duration,
    /// Bytes of request line + headers a connection may buffer (hyper's
    /// `max_buf_size`, at least 8,192); larger requests get 431.
    pub(crate) max_header_bytes: usize,
    /// Time from a request's arrival to its response head (store calls
    /// included); then 504.
    pub(crate) request_timeout: Duration,
    /// Longest wait for the next chunk of a file from the store while
    /// streaming a body; then the response is aborted.
    pub(crate) body_idle_timeout: Duration,
    /// A connection is asked to close (after its current response) once it
    /// is this old, so slow or stuck clients cannot hold a slot forever.
    pub(crate) max_connection_age: Duration,
    /// How long in-flight responses may take to finish after shutdown (or
    /// after `max_connection_age`) before their connections are dropped.
    pub(crate) shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `store` until SIGTERM or Ctrl-C, then lets in-flight requests finish.
///
/// Prints `listening on http://ADDR` on stderr as soon as the socket is bound
/// (always, also with `-q`: scripts and tests read the port from it when
/// `addr` has port 0).
pub(crate) async fn run(store: Arc<dyn Store>, options: ServeOptions) -> Result<(), ServeError> {
    let server = Server::bind(store, options).await?;
    eprintln!("listening on http://{}", server.local_addr());
    if let Some(metrics) = server.metrics_addr() {
        eprintln!("metrics on http://{metrics}/metrics");
    }
    server.run_until(shutdown_signal()).await
}
