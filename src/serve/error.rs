//! Errors of the service: [`ServeError`] stops `sdk-cdn serve` (exit code in
//! `main`), [`ApiError`] is one failed request, always answered as JSON
//! `{"error": "...", "status": N}`.
//!
//! Error bodies never carry store internals (paths, endpoints, SDK
//! messages): those are logged; the client gets what it can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be bound (address in use, permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The threads that serve could not be started (out of threads or file
    /// descriptors).
    #[error("cannot start serving: {0}; free threads or file descriptors (ulimit -u, ulimit -n) and retry")]
    Start(#[source] std::io::Error),
    /// The options are unusable (e.g. a Cache-Control value that is not a header value).
    #[error("{0}")]
    Options(String),
}

/// `Cache-Control` of errors and `/healthz`: a 404 for a version about to be
/// published, or a health report, must not be cached by a CDN in front of us.
pub(super) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// One request's failure, rendered as JSON.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The store failed while answering; details go to the log only.
    pub(super) fn store(error: &dyn std::fmt::Display) -> Self {
        super::metrics::store_error();
        tracing::warn!("store error while serving a request: {error}");
        Self::new(StatusCode::BAD_GATEWAY, "the store could not be read; try again later")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "status": self.status.as_u16() });
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::store(&e)
    }
}
