//! The HTTP surface as a value: routes, plus the middleware every request
//! goes through. Tests call [`app`] with `tower::ServiceExt::oneshot`; the
//! listener serves the same value on a socket.
//!
//! Every request goes through one middleware, [`front`] (the index's `GET`
//! and `HEAD` through [`front_index`], the same steps before the router;
//! see [`App`]), which does in order:
//! 1. observe: a request id (the client's `X-Request-Id` if sane, else a
//!    new one; echoed in the response), the metrics of every request by
//!    route *template*, and one access line at `info` (`-v`).
//! 2. guard: no request body; no raw path that smuggles separators; on a
//!    socket, no HTTP/1.1 request without `Host`.
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
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::{Ready, ready};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use futures::future::Either;
use prometheus_client::metrics::gauge::Gauge;
use tower_service::Service;

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
pub fn app(state: Arc<ServeState>) -> App {
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
        // GET and HEAD never get here (`App` answers them first); the route
        // is kept for `OPTIONS` and other methods' 405, and makes the router
        // alone a complete service the fast path is tested against.
        .route(INDEX_PATH, get(index_api::index))
        .route(versions::SCRIPT_PATH, get(versions::script))
        .route(versions::STYLE_PATH, get(versions::style))
        .route(HEALTH_PATH, get(health::healthz))
        .route(READY_PATH, get(health::readyz))
        .merge(from_store);
    if state.metrics_on_main {
        router = router.route(METRICS_PATH, get(metrics::metrics));
    }
    let router =
        router.fallback(not_found).layer(from_fn_with_state(Arc::clone(&state), front)).with_state(Arc::clone(&state));
    App { state, router, host_required: false }
}

/// The service [`app`] builds: axum's router behind [`front`], and
/// `GET|HEAD /api/sdk/sri` answered before the router, by [`front_index`].
///
/// The index is nearly every request a busy service gets. Through the
/// router it cost a route lookup, a matched-path extension, a boxed future
/// and a clone of the router per request (BENCHMARKS.md, "serve"). The
/// answer is the same either way: `front_index` takes `front`'s steps in
/// the same order, and a test compares the two answers header by header.
#[derive(Clone)]
pub struct App {
    state: Arc<ServeState>,
    router: Router,
    /// Refuse HTTP/1.1 requests without `Host` (on a socket; see [`App::requiring_host`]).
    host_required: bool,
}

/// Marks a request that [`guard`] refuses for lacking `Host`.
#[derive(Clone, Copy)]
struct MissingHost;

impl App {
    /// The state it serves.
    pub(super) fn state(&self) -> &Arc<ServeState> {
        &self.state
    }

    /// The same service, refusing (400) HTTP/1.1 requests without `Host`
    /// (RFC 9112 §3.2). For the listener: hyper does not check it, and
    /// requests built in process (`oneshot`) carry no `Host`.
    pub(super) fn requiring_host(mut self) -> Self {
        self.host_required = true;
        self
    }
}

impl<B> Service<http::Request<B>> for App
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if self.host_required
            && request.version() == http::Version::HTTP_11
            && !request.headers().contains_key(header::HOST)
        {
            request.extensions_mut().insert(MissingHost);
        }
        let method = request.method();
        if request.uri().path() == INDEX_PATH && (method == Method::GET || method == Method::HEAD) {
            Either::Left(ready(Ok(front_index(&self.state, &request))))
        } else {
            Either::Right(self.router.call(request))
        }
    }
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

/// What [`front`] notes about a request before it is answered, to record
/// once it is: the route template, the request id, the method, the path
/// (only when the access line is written) and the start. Counts the
/// request in flight until it is recorded or dropped (a cancelled request).
struct Observation<'a> {
    route: &'static str,
    id: HeaderValue,
    method: Method,
    path: Option<String>,
    started: Instant,
    in_flight: &'a Gauge,
}

impl<'a> Observation<'a> {
    fn start<B>(state: &'a ServeState, route: &'static str, request: &http::Request<B>) -> Self {
        let in_flight = state.metrics.requests_in_flight();
        in_flight.inc();
        Observation {
            route,
            id: request_id(request.headers()),
            method: request.method().clone(),
            // The path only for the log line, and only when it is written.
            path: tracing::enabled!(tracing::Level::INFO).then(|| request.uri().path().to_string()),
            started: Instant::now(),
            in_flight,
        }
    }

    /// Finishes `response` (public headers, JSON errors, the request id),
    /// records it in the metrics and the access line.
    fn record(mut self, state: &ServeState, response: Response) -> Response {
        let mut response = finish(response);
        let took = self.started.elapsed();
        let status = response.status().as_u16();
        let bytes = if self.method == Method::HEAD || response.status() == StatusCode::NOT_MODIFIED {
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
        state.metrics.request(self.route, &self.method, status, took, bytes);
        if let Some(path) = &self.path {
            let method = &self.method;
            let latency_ms = (took.as_secs_f64() * 1e4).round() / 10.0;
            let request_id = self.id.to_str().unwrap_or_default();
            tracing::info!(%method, path, status, latency_ms, bytes, request_id, "{method} {path} {status} {latency_ms}ms");
        }
        // Taken, not cloned: cloning a fresh id would allocate its shared count.
        let id = std::mem::replace(&mut self.id, HeaderValue::from_static(""));
        response.headers_mut().insert(REQUEST_ID, id);
        response
    }
}

impl Drop for Observation<'_> {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

async fn front(State(state): State<Arc<ServeState>>, request: Request, next: Next) -> Response {
    let seen = Observation::start(&state, route_of(&request), &request);
    let response = if let Err(refused) = guard(&request) {
        refused.into_response()
    } else if request.method() == Method::OPTIONS && seen.route != UNMATCHED {
        preflight(request.headers())
    } else {
        next.run(request).await
    };
    seen.record(&state, response)
}

/// `GET|HEAD /api/sdk/sri` without the router: [`front`]'s steps around
/// [`index_api::index_response`] (no preflight: that is `OPTIONS`).
fn front_index<B>(state: &ServeState, request: &http::Request<B>) -> Response {
    let seen = Observation::start(state, INDEX_PATH, request);
    let response = match guard(request) {
        Err(refused) => refused.into_response(),
        Ok(()) => index_api::index_response(state, request.method(), request.headers()).into_response(),
    };
    let mut response = seen.record(state, response);
    // What axum's router does last to each answer: a Content-Length from a
    // body of known size, then no body for HEAD.
    if !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(size) = response.body().size_hint().exact()
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if request.method() == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
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
    // 16 hex digits, a dash, at most 20 decimal digits: one allocation.
    let mut id = String::with_capacity(37);
    let _ = write!(id, "{:016x}-{}", *PROCESS, NEXT.fetch_add(1, Ordering::Relaxed));
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

/// Refuses requests with a body, a raw path that smuggles separators, or
/// (on a socket) HTTP/1.1 without `Host`.
fn guard<B>(request: &http::Request<B>) -> Result<(), ApiError> {
    if request.extensions().get::<MissingHost>().is_some() {
        return Err(ApiError::bad_request("an HTTP/1.1 request must carry a Host header (RFC 9112 §3.2)"));
    }
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
            .http_client(crate::https::aws_client().expect("TLS trust roots"))
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

    /// `App` answers `GET|HEAD /api/sdk/sri` before the router; the router
    /// alone still has the route. Both must give the same answer, byte for
    /// byte and header for header, for each representation, a revalidation,
    /// a refused body, and with no index at all.
    #[tokio::test]
    async fn the_index_fast_path_answers_exactly_as_the_router() {
        use crate::integrity::Integrity;
        use crate::store::{Headers, LocalStore, PutMode, Store};
        use tower::ServiceExt;

        async fn both(app: &App, method: &Method, headers: &[(&str, &str)]) -> [(StatusCode, HeaderMap, Vec<u8>); 2] {
            let request = || {
                let mut request = Request::builder().method(method).uri(INDEX_PATH).header(REQUEST_ID, "same-id");
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.body(Body::empty()).unwrap()
            };
            let fast = app.clone().oneshot(request()).await.unwrap();
            let routed = app.router.clone().oneshot(request()).await.unwrap();
            let mut answers = Vec::new();
            for response in [fast, routed] {
                let (parts, body) = response.into_parts();
                answers.push((
                    parts.status,
                    parts.headers,
                    axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec(),
                ));
            }
            answers.try_into().unwrap()
        }

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().to_path_buf()));
        let empty = app(ServeState::new(Arc::clone(&store), &super::super::ServeOptions::default()).unwrap());
        let [fast, routed] = both(&empty, &Method::GET, &[]).await;
        assert_eq!(fast.0, StatusCode::SERVICE_UNAVAILABLE, "not loaded yet");
        assert_eq!(fast, routed, "before the first load");
        let [fast, routed] = both(&empty, &Method::HEAD, &[]).await;
        assert!(fast.2.is_empty(), "HEAD has no body");
        assert_eq!(fast, routed, "HEAD before the first load");

        // Entries enough for the gzip and br forms to be kept.
        let files: Vec<String> =
            (0..40u8).map(|n| format!(r#""1.0.0/c{n}.js":"{}""#, Integrity::of_bytes(&[n]))).collect();
        let index = format!(r#"{{"version":"1.0.0","files":{{{}}}}}"#, files.join(","));
        let headers = Headers { content_type: crate::headers::JSON_CONTENT_TYPE.into(), ..Headers::default() };
        let body = crate::store::Body::Bytes(index.into());
        store.put(&crate::layout::index(), body, &headers, PutMode::Overwrite).await.unwrap();
        let state = ServeState::new(store, &super::super::ServeOptions::default()).unwrap();
        state.refresh().await.unwrap();
        let app = app(state);
        let [plain, _] = both(&app, &Method::GET, &[]).await;
        let etag = plain.1[header::ETAG].to_str().unwrap().to_string();
        let cases: [(Method, &[(&str, &str)]); 8] = [
            (Method::GET, &[]),
            (Method::HEAD, &[]),
            (Method::GET, &[("accept-encoding", "br")]),
            (Method::GET, &[("accept-encoding", "GZIP;q=0.5, identity;q=0.1")]),
            (Method::GET, &[("if-none-match", &etag)]),
            (Method::HEAD, &[("if-none-match", "\"other\"")]),
            (Method::GET, &[("content-length", "3")]),
            (Method::GET, &[("transfer-encoding", "chunked")]),
        ];
        let mut statuses = Vec::new();
        for (method, headers) in &cases {
            let [fast, routed] = both(&app, method, headers).await;
            assert_eq!(fast, routed, "{method} {headers:?}");
            statuses.push(fast.0.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 304, 200, 413, 413]);
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
