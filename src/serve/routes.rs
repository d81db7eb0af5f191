//! The HTTP surface as a value: routes, plus the middleware every request
//! goes through. Tests call [`app`] with `tower::ServiceExt::oneshot`; the
//! listener serves the same value on a socket.
//!
//! Middleware, outermost first:
//! 1. `log`: one line per request at `info` (`-v`).
//! 2. `finish`: every error becomes JSON `{"error", "status"}` (including
//!    axum's own 404/405, whose `Allow` header is kept), and every response
//!    gets `Access-Control-Allow-Origin: *`, `X-Content-Type-Options:
//!    nosniff` and `Cross-Origin-Resource-Policy: cross-origin`. Everything
//!    served is public, read-only and meant for cross-origin `<script>`
//!    tags, so one policy for all routes is simpler than one per route.
//! 3. `deadline`: a response head within `request_timeout`, or 504.
//! 4. `guard`: no request body; no raw path that smuggles separators.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;
use super::state::ServeState;
use super::{files, health, index_api, request_path};

/// The SRI index.
pub(super) const INDEX_PATH: &str = "/api/sdk/sri";
/// One version's entries.
const VERSION_PATH: &str = "/api/sdk/sri/{version}";
/// Every file path starts with this.
pub(super) const FILES_PREFIX: &str = "/sdk/";
/// The files.
const FILES_PATH: &str = "/sdk/{*path}";
/// Health.
const HEALTH_PATH: &str = "/healthz";

const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");

/// The service for `state`.
pub fn app(state: Arc<ServeState>) -> Router {
    let timeout = state.request_timeout;
    Router::new()
        .route(INDEX_PATH, get(index_api::index))
        .route(VERSION_PATH, get(index_api::version))
        .route(FILES_PATH, get(files::file))
        .route(HEALTH_PATH, get(health::healthz))
        .fallback(not_found)
        .layer(from_fn(guard))
        .layer(from_fn_with_state(timeout, deadline))
        .layer(map_response(finish))
        .layer(from_fn(log))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource; the service serves /api/sdk/sri, /sdk/<version>/<path> and /healthz")
}

async fn log(request: Request, next: Next) -> Response {
    // Costs nothing per request unless `-v` asked for these lines.
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!("{method} {path} {} {}ms", response.status().as_u16(), started.elapsed().as_millis());
    response
}

async fn finish(response: Response) -> Response {
    let mut response = if is_plain_error(&response) { as_json_error(response) } else { response };
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(CORP, HeaderValue::from_static("cross-origin"));
    response
}

async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "the store did not answer in time").into_response(),
    }
}

async fn guard(request: Request, next: Next) -> Response {
    if let Err(e) = request_path::check_raw(request.uri().path()) {
        return e.into_response();
    }
    let headers = request.headers();
    let declared = headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes() != b"0");
    if headers.contains_key(header::TRANSFER_ENCODING) || declared == Some(true) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "this service accepts no request bodies").into_response();
    }
    next.run(request).await
}

/// An error response that did not come from [`ApiError`] (axum's 404/405).
fn is_plain_error(response: &Response) -> bool {
    let status = response.status();
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).map(str::to_string);
    let message = match (status, &allow) {
        (StatusCode::METHOD_NOT_ALLOWED, Some(allow)) => format!("method not allowed; this resource allows {allow}"),
        _ => status.canonical_reason().unwrap_or("request failed").to_ascii_lowercase(),
    };
    let mut json = ApiError::new(status, message).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_store_layout() {
        assert_eq!(INDEX_PATH, format!("/{}", crate::layout::INDEX_KEY));
        assert_eq!(FILES_PREFIX, format!("/{}", crate::layout::SDK_PREFIX));
        assert!(VERSION_PATH.starts_with(INDEX_PATH) && FILES_PATH.starts_with(FILES_PREFIX));
    }
}
