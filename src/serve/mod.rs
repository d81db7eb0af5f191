//! `sdk-cdn serve`: the SRI manifest service and a local CDN over any store.
//!
//! ```text
//! GET|HEAD /api/sdk/sri              the index, byte for byte (gzip/br on request), ETag + 304
//! GET|HEAD /api/sdk/sri/<v|latest>   one sealed version's entries
//! GET|HEAD /sdk/<v|latest>/<path>    the files, streamed from the store, with CORS for SRI
//! GET|HEAD /healthz                  whether the index is fresh (see `health`)
//! ```
//!
//! How the pieces fit:
//! - [`ServeState`] (state.rs) holds the index in memory and revalidates it
//!   against the store every `refresh` (cheap `head` first); a failed check
//!   keeps the last good index and is reported by `/healthz` (health.rs).
//! - [`app`] (routes.rs) is the whole HTTP surface as a value: routes, JSON
//!   errors, common headers, request guards and timeouts. Tests drive it
//!   with `tower::ServiceExt::oneshot`.
//! - [`Server`] (listener.rs) owns the socket: hyper's HTTP/1 connections
//!   with bounded headers, a connection limit, and graceful shutdown.
//!
//! Invariants: only what the index (or a sealed manifest) lists is served,
//! so a partial upload is never visible; no request path can name a key
//! outside `sdk/` and `api/sdk/sri` (request_path.rs); memory does not grow
//! with file size (files are streamed in 64 KiB chunks).

mod error;
mod files;
mod health;
mod index_api;
mod listener;
mod negotiate;
mod request_path;
mod routes;
mod snapshot;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::ServeError;
pub use listener::{Server, shutdown_signal};
pub use routes::app;
pub use state::{RefreshError, Refreshed, ServeState};

use crate::headers::INDEX_CACHE_CONTROL;
use crate::store::Store;

/// Default listening address: loopback only; expose it deliberately.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Default interval between index revalidations.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);

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
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            refresh: DEFAULT_REFRESH,
            index_cache_control: INDEX_CACHE_CONTROL.to_string(),
            limits: Limits::default(),
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
    pub max_connections: u32,
    /// Time to receive a request's headers; also how long an idle keep-alive
    /// connection is kept (hyper starts this timer whenever it waits for a head).
    pub header_read_timeout: Duration,
    /// Bytes of request line + headers a connection may buffer (hyper's
    /// `max_buf_size`, at least 8,192); larger requests get 431.
    pub max_header_bytes: usize,
    /// Header fields per request; more get 431.
    pub max_headers: usize,
    /// Time from a request's arrival to its response head (store calls
    /// included); then 504.
    pub request_timeout: Duration,
    /// Longest wait for the next chunk of a file from the store while
    /// streaming a body; then the response is aborted.
    pub body_idle_timeout: Duration,
    /// A connection is asked to close (after its current response) once it
    /// is this old, so slow or stuck clients cannot hold a slot forever.
    pub max_connection_age: Duration,
    /// How long in-flight responses may take to finish after shutdown (or
    /// after `max_connection_age`) before their connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
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
pub async fn run(store: Arc<dyn Store>, options: ServeOptions) -> Result<(), ServeError> {
    let server = Server::bind(store, options).await?;
    eprintln!("listening on http://{}", server.local_addr());
    server.run_until(shutdown_signal()).await
}
