//! The HTTP surface as a value: routes, plus the middleware every request
//! goes through. Tests call [`app`] with `tower::ServiceExt::oneshot`; the
//! listener serves the same value on a socket.
//!
//! Every request goes through one middleware, [`front`], which does in order:
//! 1. observe: a request id (the client's `X-Request-Id` if sane, else a
//!    new one; echoed in the response), the metrics of every request by
//!    route *template*, and one access line at `info` (`-v`).
//! 2. guard: no request body; no raw path that smuggles separators.
//! 3. preflight: `OPTIONS` on any route is a CORS preflight, answered 204
//!    here (browsers send one before a cross-origin `fetch` with custom
//!    headers; without it they never make the real request).
//! 4. the route. Routes that call the store also have a `deadline`: a
//!    response head within `request_timeout`, or 504. Routes answered from
//!    memory (the index, health, metrics, the page's script and style)
//!    cannot wait on anything, so they pay for no timer.
//! 5. finish: every error becomes JSON `{"error", "status"}` (including
//!    axum's own 404/405, whose `Allow` header is kept), and every response
//!    gets `Access-Control-Allow-Origin: *`, `X-Content-Type-Options:
//!    nosniff` and `Cross-Origin-Resource-Policy: cross-origin`. Everything
//!    served is public, read-only and meant for cross-origin `<script>`
//!    tags, so one policy for all routes is simpler than one per route.
//!
//! One middleware rather than one layer per step: each axum layer boxes a
//! future and clones the service below it on every request, which cost a
//! fifth of the index's throughput (BENCHMARKS.md, "serve").

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;
use super::state::ServeState;
use super::{files, health, index_api, metrics, request_path, signatures, versions};

/// The SRI index.
pub(super) const INDEX_PATH: &str = "/api/sdk/sri";
/// One version's entries.
const VERSION_PATH: &str = "/api/sdk/sri/{version}";
/// The files.
const FILES_PATH: &str = "/sdk/{*path}";
/// The index's signature, its content-addressed copies, and the sealed
/// manifests with theirs.
const INDEX_SIGNATURE_PATH: &str = "/api/sdk/sri.minisig";
const SIGNATURE_COPY_PATH: &str = "/api/sdk/sigs/{name}";
const MANIFEST_PATH: &str = "/api/sdk/manifests/{name}";
/// Liveness and a health report.
const HEALTH_PATH: &str = "/healthz";
/// Readiness.
const READY_PATH: &str = "/readyz";
/// Prometheus metrics.
pub(super) const METRICS_PATH: &str = "/metrics";
/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";
/// Every route template, for bounded metric labels.
/// The versions page, and its script and stylesheet.
const PAGE_PATH: &str = "/";
const SDK_PAGE_PATH: &str = "/sdk/";
const ROUTES: [&str; 13] = [
    PAGE_PATH,
    SDK_PAGE_PATH,
    versions::SCRIPT_PATH,
    versions::STYLE_PATH,
    INDEX_PATH,
    VERSION_PATH,
    FILES_PATH,
    INDEX_SIGNATURE_PATH,
    SIGNATURE_COPY_PATH,
    MANIFEST_PATH,
    HEALTH_PATH,
    READY_PATH,
    METRICS_PATH,
];

const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");
/// Correlates a request across the load balancer, this service and its logs.
pub(super) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id kept; longer or odd ones are replaced.
const MAX_REQUEST_ID: usize = 128;
/// What a preflight allows.
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";
/// How long browsers may cache a preflight answer (one day: the policy never changes).
const PREFLIGHT_MAX_AGE: &str = "86400";
/// Request headers echoed in one preflight answer at most.
const MAX_PREFLIGHT_HEADERS: usize = 32;

/// The service for `state`, with `/metrics` unless it is served on its own address.
pub fn app(state: Arc<ServeState>) -> Router {
    let timeout = state.request_timeout;
    // Routes that call the store, each under the deadline.
    let from_store = Router::new()
        .route(VERSION_PATH, get(index_api::version))
        .route(FILES_PATH, get(files::file))
        .route(INDEX_SIGNATURE_PATH, get(signatures::index_signature))
        .route(SIGNATURE_COPY_PATH, get(signatures::signature_copy))
        .route(MANIFEST_PATH, get(signatures::manifest))
        // The versions page reads the sealed manifests it has not cached yet.
        .route(PAGE_PATH, get(versions::page))
        .route(SDK_PAGE_PATH, get(versions::page))
        .route_layer(from_fn_with_state(timeout, deadline));
    let mut router = Router::new()
        .route(INDEX_PATH, get(index_api::index))
        .route(versions::SCRIPT_PATH, get(versions::script))
        .route(versions::STYLE_PATH, get(versions::style))
        .route(HEALTH_PATH, get(health::healthz))
        .route(READY_PATH, get(health::readyz))
        .merge(from_store);
    if state.metrics_on_main {
        router = router.route(METRICS_PATH, get(metrics::metrics));
    }
    router.fallback(not_found).layer(from_fn_with_state(Arc::clone(&state), front)).with_state(state)
}

/// `/metrics` alone, for `--metrics-addr`.
pub(super) fn metrics_app(state: Arc<ServeState>) -> Router {
    Router::new()
        .route(METRICS_PATH, get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("this address serves /metrics only") })
        .layer(map_response(|response| async { finish(response) }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such resource; the service serves /api/sdk/sri, /sdk/<version>/<path>, /healthz, /readyz and /metrics",
    )
}

/// Decrements a gauge when dropped (also when a request is cancelled).
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn front(State(state): State<Arc<ServeState>>, request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let id = request_id(request.headers());
    let method = request.method().clone();
    // The path only for the log line, and only when it is written.
    let path = tracing::enabled!(tracing::Level::INFO).then(|| request.uri().path().to_string());
    let started = Instant::now();
    let response = {
        state.metrics.requests_in_flight().inc();
        let _in_flight = InFlight(state.metrics.requests_in_flight());
        if let Err(refused) = guard(&request) {
            refused.into_response()
        } else if request.method() == Method::OPTIONS && route != UNMATCHED {
            preflight(request.headers())
        } else {
            next.run(request).await
        }
    };
    let mut response = finish(response);
    let took = started.elapsed();
    let status = response.status().as_u16();
    let bytes = if method == Method::HEAD || response.status() == StatusCode::NOT_MODIFIED {
        0
    } else {
        // Streamed files declare Content-Length; in-memory bodies know their size.
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .or_else(|| response.body().size_hint().exact())
            .unwrap_or(0)
    };
    state.metrics.request(route, &method, status, took, bytes);
    if let Some(path) = path {
        let latency_ms = (took.as_secs_f64() * 1e4).round() / 10.0;
        let request_id = id.to_str().unwrap_or_default();
        tracing::info!(%method, path, status, latency_ms, bytes, request_id, "{method} {path} {status} {latency_ms}ms");
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The route template that matched, from a closed set (never the raw path).
fn route_of(request: &Request) -> &'static str {
    let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    ROUTES.into_iter().find(|route| Some(*route) == matched).unwrap_or(UNMATCHED)
}

/// The client's `X-Request-Id` when it is a plain token, otherwise a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(REQUEST_ID)
        && is_sane_request_id(id.as_bytes())
    {
        return id.clone();
    }
    new_request_id()
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// `<random per process>-<counter>`: unique across replicas and restarts
/// without a clock or a random number per request.
fn new_request_id() -> HeaderValue {
    static PROCESS: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(std::process::id()));
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("{:016x}-{}", *PROCESS, NEXT.fetch_add(1, Ordering::Relaxed));
    // Hex digits, a dash and decimal digits: always a valid header value
    // (taken over as it is, not copied).
    HeaderValue::from_maybe_shared(bytes::Bytes::from(id)).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The answer to a CORS preflight (`OPTIONS` on a route).
fn preflight(headers: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    out.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    // The answer depends on the request's header list: caches must key on it.
    out.insert(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    if let Some(allowed) = allowed_headers(headers) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    }
    response
}

/// The requested header names that are plain tokens, lower-cased, at most
/// [`MAX_PREFLIGHT_HEADERS`] of them; `None` when none are.
fn allowed_headers(headers: &HeaderMap) -> Option<HeaderValue> {
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS)?.to_str().ok()?;
    let names: Vec<String> = requested
        .split(',')
        .map(str::trim)
        .filter(|name| (1..=64).contains(&name.len()) && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        .map(str::to_ascii_lowercase)
        .take(MAX_PREFLIGHT_HEADERS)
        .collect();
    if names.is_empty() {
        return None;
    }
    HeaderValue::from_str(&names.join(", ")).ok()
}

fn finish(response: Response) -> Response {
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

/// Refuses requests with a body or a raw path that smuggles separators.
fn guard(request: &Request) -> Result<(), ApiError> {
    request_path::check_raw(request.uri().path())?;
    let headers = request.headers();
    let declared = headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes() != b"0");
    if headers.contains_key(header::TRANSFER_ENCODING) || declared == Some(true) {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "this service accepts no request bodies"));
    }
    Ok(())
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
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method not allowed; this resource allows {ALLOWED_METHODS}"),
        _ => status.canonical_reason().unwrap_or("request failed").to_ascii_lowercase(),
    };
    let mut json = ApiError::new(status, message).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum lists the routed methods; OPTIONS is answered by `preflight` on every route.
        json.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    }
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
        assert_eq!(request_path::FILES_PREFIX, format!("/{}", crate::layout::SDK_PREFIX));
        assert!(VERSION_PATH.starts_with(INDEX_PATH) && FILES_PATH.starts_with(request_path::FILES_PREFIX));
    }

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(is_sane_request_id(b"0f1e-2d3c_4b.5a:69"));
        for bad in [&b""[..], b"a b", b"a\"b", b"<script>", &[b'a'; MAX_REQUEST_ID + 1]] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        let fresh = request_id(&headers);
        assert_ne!(fresh, "has space");
        assert_ne!(request_id(&HeaderMap::new()), fresh, "ids are unique");
    }

    /// Routes that call the store keep their deadline now that the memory
    /// routes have none: a store that accepts and never answers costs a
    /// client `request_timeout`, then a JSON 504 with the public headers.
    #[tokio::test]
    async fn routes_that_call_a_silent_store_answer_504_at_the_deadline() {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        use tower::ServiceExt;

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .credentials_provider(Credentials::new("k", "s", None, None, "test"))
            .build();
        let store = Arc::new(crate::store::S3Store::from_client(aws_sdk_s3::Client::from_conf(config), "b", ""));
        let mut options = super::super::ServeOptions::default();
        options.limits.request_timeout = Duration::from_millis(300);
        let app = app(ServeState::new(store, &options).unwrap());
        for target in ["/sdk/1.0.0/a.js", "/api/sdk/sri/1.0.0", "/api/sdk/sri.minisig", "/api/sdk/manifests/1.0.0.json"]
        {
            let request = Request::builder().uri(target).body(Body::empty()).unwrap();
            // Bounded, so that a route without its deadline fails instead of hanging.
            let answered = tokio::time::timeout(Duration::from_secs(20), app.clone().oneshot(request)).await;
            let response = answered.unwrap_or_else(|_| panic!("{target}: no answer; the deadline is missing")).unwrap();
            assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT, "{target}");
            assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{target}");
            assert!(response.headers().contains_key(REQUEST_ID), "{target}");
        }
        held.abort();
    }

    #[test]
    fn preflight_echoes_only_plain_header_names() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("X-Custom, if-none-match ,bad header,evil\"x"),
        );
        assert_eq!(allowed_headers(&headers).unwrap(), "x-custom, if-none-match");
        headers.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("a b"));
        assert_eq!(allowed_headers(&headers), None);
    }
}
