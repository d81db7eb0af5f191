//! The service (`serve::app`) driven in process (`tower::ServiceExt::oneshot`):
//! statuses, headers and bodies without a socket, for the tests where the
//! network does not matter; and the builds and waits the serve suites share.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use sdk_cdn::serve::{self, App, ServeOptions, ServeState};
use sdk_cdn::store::{Key, Store};
use serde_json::Value;
use tower::ServiceExt;

use super::fixtures::{Files, sri_of};

/// The first release the serve suites publish: a script, a stylesheet, a
/// source map and a WebAssembly module in a subdirectory.
pub const V1: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:1};"),
    ("haloagents.css", b".ha-launcher{color:red}"),
    ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\"\"}"),
    ("chunks/worker.wasm", b"\0asm\x01\0\0\0"),
];

/// The next release: one file.
pub const V2: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:2};")];

/// How long a test waits for the service to see a change.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One response, its body read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, `""` when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().expect("ASCII header value"))
    }

    /// The body as JSON; panics showing the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A JSON error `{"error": "...", "status": N}` and nothing else.
    #[track_caller]
    pub fn assert_json_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), "application/json");
        let json = self.json();
        let keys: Vec<&String> = json.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["error", "status"], "{json}");
        assert_eq!(json["status"], status);
        assert!(!json["error"].as_str().expect("a message").is_empty());
    }
}

/// Sends one request with `headers` through `app`.
pub async fn send(app: &App, method: Method, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body").to_vec();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// `GET target` without headers.
pub async fn get(app: &App, target: &str) -> Reply {
    send(app, Method::GET, target, &[]).await
}

/// The headers every answer carries so any origin can load it safely.
#[track_caller]
pub fn assert_public_headers(reply: &Reply, what: &str) {
    assert_eq!(reply.header("access-control-allow-origin"), "*", "{what}");
    assert_eq!(reply.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(reply.header("cross-origin-resource-policy"), "cross-origin", "{what}");
}

/// Options that revalidate the index every 100 ms.
pub fn fast_refresh() -> ServeOptions {
    ServeOptions { refresh: Duration::from_millis(100), ..ServeOptions::default() }
}

/// The service over `store`, its index loaded once.
pub async fn loaded(store: &Arc<dyn Store>, options: &ServeOptions) -> (Arc<ServeState>, App) {
    let state = ServeState::new(Arc::clone(store), options).expect("serve options");
    state.refresh().await.expect("first refresh");
    (Arc::clone(&state), serve::app(state))
}

/// The bytes stored under `key`.
pub async fn stored(store: &Arc<dyn Store>, key: &str) -> Vec<u8> {
    store.get(&Key::new(key).expect("key")).await.expect("get").expect("object exists").0.to_vec()
}

/// Polls `check` every 50 ms until it holds; fails after `DEADLINE`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < until, "timed out after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The index entries `{"<dir>/<path>": "sha384-…"}` of `files` under `dir`.
pub fn entries(dir: &str, files: Files) -> Value {
    files
        .iter()
        .map(|(p, b)| (format!("{dir}/{p}"), Value::String(sri_of(b))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `/healthz`: its status and JSON body; it is never cached.
pub async fn health(app: &App) -> (StatusCode, Value) {
    let reply = get(app, "/healthz").await;
    assert_eq!(reply.header("cache-control"), "no-store");
    (reply.status, reply.json())
}
