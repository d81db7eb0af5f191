//! `sdk-cdn serve` over HTTP: every header and status of DESIGN.md "The
//! service", against every backend (local, in-process S3, moto in CI).
//!
//! Headers and statuses are checked in process with `oneshot` against
//! `serve::app`; the real binary on a socket is used where the network
//! matters (the announced address, graceful shutdown, hyper's limits, raw
//! request targets). Fixtures are published by running the binary.

mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use futures::StreamExt;
use sdk_cdn::serve::{self, RefreshError, Refreshed, ServeOptions, ServeState};
use sdk_cdn::store::{Body as StoreBody, Headers, Key, PutMode, S3Store, Store};
use serde_json::{Value, json};
use support::backends::{self, Backend};
use support::cli::{build_dir, run, run_without_store};
use support::serve::{Served, exchange, get as http_get};
use support::sri_of;
use tower::ServiceExt;

type Files = &'static [(&'static str, &'static [u8])];

const V1: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:1};"),
    ("haloagents.css", b".ha-launcher{color:red}"),
    ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\"\"}"),
    ("chunks/worker.wasm", b"\0asm\x01\0\0\0"),
];
const V2: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:2};")];
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const DEADLINE: Duration = Duration::from_secs(30);

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A JSON error `{"error": "...", "status": N}` and nothing else.
    #[track_caller]
    fn assert_json_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), "application/json");
        let json = self.json();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "status"], "{json}");
        assert_eq!(json["status"], status);
        assert!(!json["error"].as_str().unwrap().is_empty());
    }
}

async fn send(app: &Router, method: Method, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    Reply { status: parts.status, headers: parts.headers, body }
}

async fn get(app: &Router, target: &str) -> Reply {
    send(app, Method::GET, target, &[]).await
}

#[track_caller]
fn assert_public_headers(reply: &Reply, what: &str) {
    assert_eq!(reply.header("access-control-allow-origin"), "*", "{what}");
    assert_eq!(reply.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(reply.header("cross-origin-resource-policy"), "cross-origin", "{what}");
}

fn publish(backend: &Backend, files: Files, version: &str) {
    let (build, cwd) = (build_dir(files), tempfile::tempdir().unwrap());
    run(backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", version]).expect_code(0);
}

fn fast_refresh() -> ServeOptions {
    ServeOptions { refresh: Duration::from_millis(100), ..ServeOptions::default() }
}

async fn loaded(store: &Arc<dyn Store>, options: &ServeOptions) -> (Arc<ServeState>, Router) {
    let state = ServeState::new(Arc::clone(store), options).unwrap();
    state.refresh().await.unwrap();
    (Arc::clone(&state), serve::app(state))
}

async fn stored(store: &Arc<dyn Store>, key: &str) -> Vec<u8> {
    store.get(&Key::new(key).unwrap()).await.unwrap().expect("object exists").0.to_vec()
}

/// Polls `check` every 50 ms until it holds; fails after `DEADLINE`.
async fn eventually<F, Fut>(what: &str, mut check: F)
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

fn entries(dir: &str, files: Files) -> Value {
    files
        .iter()
        .map(|(p, b)| (format!("{dir}/{p}"), Value::String(sri_of(b))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn index_is_served_byte_for_byte_with_etag_cache_and_cors_headers() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let bytes = stored(&store, "api/sdk/sri").await;
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let reply = get(&app, "/api/sdk/sri").await;
            assert_eq!(reply.status, 200, "{name}");
            assert_eq!(reply.body, bytes, "{name}: the index is served exactly as stored");
            assert_eq!(reply.header("content-type"), "application/json", "{name}");
            assert_eq!(reply.header("cache-control"), "public, max-age=60", "{name}");
            assert_eq!(reply.header("vary"), "Accept-Encoding", "{name}");
            assert_eq!(reply.header("content-length"), bytes.len().to_string(), "{name}");
            assert_eq!(reply.header("content-encoding"), "", "{name}");
            assert_public_headers(&reply, name);
            let etag = reply.header("etag").to_string();
            assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'), "{name}: strong etag {etag}");

            let head = send(&app, Method::HEAD, "/api/sdk/sri", &[]).await;
            assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0), "{name}");
            for h in ["etag", "content-length", "content-type", "cache-control", "vary"] {
                assert_eq!(head.header(h), reply.header(h), "{name}: HEAD {h}");
            }

            for condition in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".into()] {
                let revalidated = send(&app, Method::GET, "/api/sdk/sri", &[("if-none-match", &condition)]).await;
                assert_eq!(revalidated.status, 304, "{name}: If-None-Match: {condition}");
                assert!(revalidated.body.is_empty(), "{name}");
                assert_eq!(revalidated.header("etag"), etag, "{name}");
                assert_eq!(revalidated.header("cache-control"), "public, max-age=60", "{name}");
                assert_eq!(revalidated.header("vary"), "Accept-Encoding", "{name}");
                assert_public_headers(&revalidated, name);
            }
            let changed = send(&app, Method::GET, "/api/sdk/sri", &[("if-none-match", "\"stale\"")]).await;
            assert_eq!((changed.status, changed.body), (StatusCode::OK, bytes), "{name}");
        });
    }
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap(),
        "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out).unwrap(),
        _ => return body.to_vec(),
    };
    out
}

#[test]
fn index_is_compressed_on_request_with_a_distinct_etag_per_encoding() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let identity = get(&app, "/api/sdk/sri").await;
            let mut etags = vec![identity.header("etag").to_string()];
            let mut by_coding = std::collections::HashMap::new();
            for (accept, coding) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br, zstd", "br"), ("deflate", "")]
            {
                let reply = send(&app, Method::GET, "/api/sdk/sri", &[("accept-encoding", accept)]).await;
                let what = format!("{name}: Accept-Encoding: {accept}");
                assert_eq!(reply.status, 200, "{what}");
                assert_eq!(reply.header("content-encoding"), coding, "{what}");
                assert_eq!(decode(coding, &reply.body), identity.body, "{what}: decodes to the stored bytes");
                assert_eq!(reply.header("content-length"), reply.body.len().to_string(), "{what}");
                assert_eq!(reply.header("vary"), "Accept-Encoding", "{what}");
                assert_public_headers(&reply, &what);
                let etag = reply.header("etag").to_string();
                if coding.is_empty() {
                    assert_eq!(etag, etags[0], "{what}");
                    continue;
                }
                assert!(reply.body.len() < identity.body.len(), "{what}: smaller");
                match by_coding.get(coding) {
                    Some(seen) => assert_eq!(&etag, seen, "{what}: one etag per representation"),
                    None => {
                        assert!(!etags.contains(&etag), "{what}: {etag} is shared with another representation");
                        etags.push(etag.clone());
                        by_coding.insert(coding, etag.clone());
                    }
                }
                let conditional = [("accept-encoding", accept), ("if-none-match", etag.as_str())];
                assert_eq!(send(&app, Method::GET, "/api/sdk/sri", &conditional).await.status, 304, "{what}");
                // The identity etag does not validate the compressed representation.
                let stale = [("accept-encoding", accept), ("if-none-match", etags[0].as_str())];
                assert_eq!(send(&app, Method::GET, "/api/sdk/sri", &stale).await.status, 200, "{what}");
            }
        });
    }
}

#[test]
fn index_cache_control_is_configurable() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let options = ServeOptions { index_cache_control: "public, max-age=5".into(), ..ServeOptions::default() };
        let (_, app) = loaded(&store, &options).await;
        assert_eq!(get(&app, "/api/sdk/sri").await.header("cache-control"), "public, max-age=5");
        assert_eq!(get(&app, "/api/sdk/sri/latest").await.header("cache-control"), "public, max-age=5");
        assert_eq!(get(&app, "/api/sdk/sri/0.1.0").await.header("cache-control"), IMMUTABLE);
    });
}

#[test]
fn nothing_published_yet_is_a_json_404_and_healthz_is_ok() {
    for backend in backends::all() {
        let name = backend.name();
        let store = backend.store();
        backends::runtime().block_on(async {
            let state = ServeState::new(Arc::clone(&store), &ServeOptions::default()).unwrap();
            assert_eq!(state.refresh().await.unwrap(), Refreshed::NoIndex, "{name}");
            let app = serve::app(state);
            let reply = get(&app, "/api/sdk/sri").await;
            reply.assert_json_error(404);
            assert!(reply.json()["error"].as_str().unwrap().contains("nothing is published"), "{name}");
            assert_eq!(reply.header("cache-control"), "no-store", "{name}: a 404 must not be cached");
            assert_public_headers(&reply, name);
            assert_eq!(send(&app, Method::HEAD, "/api/sdk/sri", &[]).await.status, 404, "{name}");
            for target in ["/api/sdk/sri/latest", "/api/sdk/sri/0.1.0", "/sdk/0.1.0/haloagents.umd.js"] {
                get(&app, target).await.assert_json_error(404);
            }
            let health = get(&app, "/healthz").await;
            assert_eq!(health.status, 200, "{name}");
            assert_eq!(health.json()["status"], "ok", "{name}");
            assert_eq!(health.json()["index"], json!({ "published": false }), "{name}");
        });
    }
}

#[test]
fn version_entries_are_served_for_sealed_versions_with_a_long_cache() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        publish(&backend, V2, "0.2.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let reply = get(&app, "/api/sdk/sri/0.1.0").await;
            assert_eq!(reply.status, 200, "{name}");
            assert_eq!(reply.json(), json!({ "version": "0.1.0", "files": entries("0.1.0", V1) }), "{name}");
            assert_eq!(reply.header("content-type"), "application/json", "{name}");
            assert_eq!(reply.header("cache-control"), IMMUTABLE, "{name}");
            assert_public_headers(&reply, name);
            let etag = reply.header("etag");
            assert_eq!(send(&app, Method::GET, "/api/sdk/sri/0.1.0", &[("if-none-match", etag)]).await.status, 304);
            let head = send(&app, Method::HEAD, "/api/sdk/sri/0.1.0", &[]).await;
            assert_eq!((head.status, head.body.len(), head.header("etag")), (StatusCode::OK, 0, etag), "{name}");

            let latest = get(&app, "/api/sdk/sri/latest").await;
            assert_eq!(latest.json(), json!({ "version": "0.2.0", "files": entries("latest", V2) }), "{name}");
            assert_eq!(latest.header("cache-control"), "public, max-age=60", "{name}: latest moves");

            get(&app, "/api/sdk/sri/9.9.9").await.assert_json_error(404);
            for malformed in ["v0.1.0", "0.1", "01.0.0", "1.0.0+build.1", "latest2"] {
                let reply = get(&app, &format!("/api/sdk/sri/{malformed}")).await;
                reply.assert_json_error(400);
                assert!(reply.json()["error"].as_str().unwrap().contains("not a valid version"), "{name}");
            }
            let hinted = get(&app, "/api/sdk/sri/v0.1.0").await.json();
            assert!(hinted["error"].as_str().unwrap().contains("drop the leading 'v'"), "{name}: {hinted}");
        });
    }
}

fn content_type_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") => "application/json",
        Some("wasm") => "application/wasm",
        other => panic!("no expectation for {other:?}"),
    }
}

#[test]
fn files_are_served_with_their_stored_headers_etag_and_cors() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            for (path, bytes) in V1 {
                for (dir, cache) in [("0.1.0", IMMUTABLE), ("latest", "public, max-age=300")] {
                    let target = format!("/sdk/{dir}/{path}");
                    let what = format!("{name}: {target}");
                    let reply = get(&app, &target).await;
                    assert_eq!(reply.status, 200, "{what}");
                    assert_eq!(reply.body, *bytes, "{what}");
                    assert_eq!(reply.header("content-type"), content_type_of(path), "{what}");
                    assert_eq!(reply.header("cache-control"), cache, "{what}");
                    assert_eq!(reply.header("content-length"), bytes.len().to_string(), "{what}");
                    assert_public_headers(&reply, &what);
                    let stored_etag = store.head(&Key::new(&target[1..]).unwrap()).await.unwrap().unwrap().etag;
                    let etag = reply.header("etag");
                    assert_eq!(etag.trim_matches('"'), stored_etag.trim_matches('"'), "{what}: the store's etag");

                    let head = send(&app, Method::HEAD, &target, &[]).await;
                    assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0), "{what}");
                    for h in ["etag", "content-length", "content-type", "cache-control", "access-control-allow-origin"]
                    {
                        assert_eq!(head.header(h), reply.header(h), "{what}: HEAD {h}");
                    }
                    let revalidated = send(&app, Method::GET, &target, &[("if-none-match", etag)]).await;
                    assert_eq!(revalidated.status, 304, "{what}");
                    assert!(revalidated.body.is_empty(), "{what}");
                    assert_eq!(revalidated.header("etag"), etag, "{what}");
                    assert_eq!(revalidated.header("cache-control"), cache, "{what}");
                    assert_public_headers(&revalidated, &what);
                    let changed = send(&app, Method::GET, &target, &[("if-none-match", "\"old\"")]).await;
                    assert_eq!(changed.body, *bytes, "{what}");
                }
            }
        });
    }
}

#[test]
fn partial_versions_and_unlisted_files_are_never_served() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let headers = Headers {
                content_type: "text/javascript; charset=utf-8".into(),
                cache_control: IMMUTABLE.into(),
                sri: None,
                signed: None,
            };
            for key in ["sdk/0.3.0/haloagents.umd.js", "sdk/0.1.0/extra.js", "sdk/latest/extra.js"] {
                let body = StoreBody::Bytes(bytes::Bytes::from_static(b"window.Evil=1;"));
                store.put(&Key::new(key).unwrap(), body, &headers, PutMode::Create).await.unwrap();
            }
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            for target in
                ["/sdk/0.3.0/haloagents.umd.js", "/sdk/0.1.0/extra.js", "/sdk/latest/extra.js", "/api/sdk/sri/0.3.0"]
            {
                let reply = get(&app, target).await;
                reply.assert_json_error(404);
                assert_eq!(send(&app, Method::HEAD, target, &[]).await.status, 404, "{name}: HEAD {target}");
            }
            assert!(!String::from_utf8(get(&app, "/api/sdk/sri").await.body).unwrap().contains("0.3.0"), "{name}");
        });
    }
}

#[test]
fn a_version_sealed_after_the_last_refresh_is_served_from_its_manifest() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let before = get(&app, "/api/sdk/sri").await.body;
            get(&app, "/sdk/0.2.0/haloagents.umd.js").await.assert_json_error(404);
            publish(&backend, V2, "0.2.0");
            // No refresh runs here: the sealed manifest is found on a miss
            // (after the short negative-cache window).
            eventually("0.2.0 to be served from its manifest", || async {
                get(&app, "/sdk/0.2.0/haloagents.umd.js").await.status == 200
            })
            .await;
            assert_eq!(get(&app, "/sdk/0.2.0/haloagents.umd.js").await.body, V2[0].1, "{name}");
            let version = get(&app, "/api/sdk/sri/0.2.0").await;
            assert_eq!(version.json(), json!({ "version": "0.2.0", "files": entries("0.2.0", V2) }), "{name}");
            assert_eq!(get(&app, "/api/sdk/sri").await.body, before, "{name}: the index changes at the next refresh");
        });
    }
}

#[test]
fn a_publish_after_startup_appears_after_a_refresh() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (state, app) = loaded(&store, &fast_refresh()).await;
            let refresher = state.spawn_refresh();
            publish(&backend, V2, "0.2.0");
            let expected = stored(&store, "api/sdk/sri").await;
            eventually("the new index to be served", || async { get(&app, "/api/sdk/sri").await.body == expected })
                .await;
            assert_eq!(get(&app, "/api/sdk/sri").await.json()["version"], "0.2.0", "{name}");
            assert_eq!(get(&app, "/sdk/latest/haloagents.umd.js").await.body, V2[0].1, "{name}");
            refresher.abort();
        });
    }
}

async fn health(app: &Router) -> (StatusCode, Value) {
    let reply = get(app, "/healthz").await;
    assert_eq!(reply.header("cache-control"), "no-store");
    (reply.status, reply.json())
}

#[test]
fn a_local_store_outage_keeps_the_last_good_index_and_healthz_reports_it() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let Backend::Local(dir) = &backend else { unreachable!() };
    let (root, moved) = (dir.path().to_path_buf(), dir.path().with_extension("moved"));
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = loaded(&store, &fast_refresh()).await;
        let good = get(&app, "/api/sdk/sri").await.body;
        let refresher = state.spawn_refresh();
        std::fs::rename(&root, &moved).unwrap();
        eventually("healthz to report the outage", || async { health(&app).await.1["status"] == "degraded" }).await;
        let (status, report) = health(&app).await;
        assert_eq!(status, 200, "degraded still serves: {report}");
        assert!(report["consecutive_failures"].as_u64().unwrap() >= 1, "{report}");
        assert!(report["last_error"].as_str().unwrap().contains("disappeared"), "{report}");
        assert_eq!(report["index"]["latest"], "0.1.0", "{report}");
        assert_eq!(get(&app, "/api/sdk/sri").await.body, good, "the last good index is still served");
        assert_eq!(get(&app, "/api/sdk/sri/0.1.0").await.status, 200);

        std::fs::rename(&moved, &root).unwrap();
        eventually("healthz to recover", || async { health(&app).await.1["status"] == "ok" }).await;
        assert_eq!(health(&app).await.1["last_error"], Value::Null);
        refresher.abort();
    });
}

#[test]
fn an_s3_outage_keeps_the_last_good_index_and_healthz_reports_it() {
    let backend = backends::in_process();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    let runtime = backends::runtime();
    let (state, app, good) = runtime.block_on(async {
        let (state, app) = loaded(&store, &fast_refresh()).await;
        let good = get(&app, "/api/sdk/sri").await.body;
        (state, app, good)
    });
    drop(backend); // stops the S3 server
    runtime.block_on(async {
        let refresher = state.spawn_refresh();
        eventually("healthz to report the outage", || async { health(&app).await.1["status"] == "degraded" }).await;
        let (status, report) = health(&app).await;
        assert_eq!(status, 200, "{report}");
        assert!(report["last_error"].is_string(), "{report}");
        assert_eq!(get(&app, "/api/sdk/sri").await.body, good, "the last good index is still served");
        // Files need the store: a clean JSON error, not a hang.
        let file = get(&app, "/sdk/0.1.0/haloagents.umd.js").await;
        file.assert_json_error(file.status.as_u16());
        assert!(matches!(file.status.as_u16(), 502 | 504), "{}", file.status);
        refresher.abort();
    });
}

#[test]
fn a_store_that_never_answered_makes_the_service_unavailable() {
    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{closed}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new("k", "s", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    let store: Arc<dyn Store> = Arc::new(S3Store::from_client(aws_sdk_s3::Client::from_conf(config), "nope", ""));
    backends::runtime().block_on(async {
        let state = ServeState::new(store, &ServeOptions::default()).unwrap();
        assert!(matches!(state.refresh().await, Err(RefreshError::Read(_))));
        let app = serve::app(state);
        get(&app, "/api/sdk/sri").await.assert_json_error(503);
        let (status, report) = health(&app).await;
        assert_eq!((status, &report["status"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")), "{report}");
    });
}

#[test]
fn an_unparseable_index_is_refused_and_the_last_good_one_kept() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (state, app) = loaded(&store, &ServeOptions::default()).await;
            let good = get(&app, "/api/sdk/sri").await.body;
            let key = Key::new("api/sdk/sri").unwrap();
            let headers = Headers {
                content_type: "application/json".into(),
                cache_control: "public, max-age=60".into(),
                sri: None,
                signed: None,
            };
            let garbage = StoreBody::Bytes(bytes::Bytes::from_static(b"{\"version\": \"0.1.0\", \"files\": "));
            store.put(&key, garbage, &headers, PutMode::Overwrite).await.unwrap();
            let error = state.refresh().await.unwrap_err();
            assert!(error.to_string().contains("not a valid SRI index"), "{name}: {error}");
            assert_eq!(get(&app, "/api/sdk/sri").await.body, good, "{name}: the last good index is kept");
            let (status, report) = health(&app).await;
            assert_eq!((status, &report["status"]), (StatusCode::OK, &json!("degraded")), "{name}: {report}");
            assert!(report["last_error"].as_str().unwrap().contains("not a valid SRI index"), "{name}: {report}");

            let restored = StoreBody::Bytes(bytes::Bytes::from(good.clone()));
            store.put(&key, restored, &headers, PutMode::Overwrite).await.unwrap();
            state.refresh().await.unwrap();
            assert_eq!(health(&app).await.1["status"], "ok", "{name}");
        });
    }
}

/// Targets that try to leave `sdk/` (or smuggle separators); none may be served.
const ESCAPES: &[&str] = &[
    "/sdk/0.1.0/../../manifests/0.1.0.json",
    "/sdk/0.1.0/%2e%2e/%2e%2e/manifests/0.1.0.json",
    "/sdk/0.1.0/%2E%2E/%2E%2E/api/sdk/sri",
    "/sdk/0.1.0/%2e%2e%2f%2e%2e%2fmanifests%2f0.1.0.json",
    "/sdk/0.1.0%2f..%2f..%2fmanifests%2f0.1.0.json",
    "/sdk/0.1.0/..%5c..%5cmanifests%5c0.1.0.json",
    "/sdk/0.1.0/haloagents.umd.js%00.png",
    "/sdk/0.1.0/%00",
    "/sdk//etc/passwd",
    "/sdk/0.1.0//etc/passwd",
    "/sdk/0.1.0/./haloagents.umd.js",
    "/sdk/%2e%2e/manifests/0.1.0.json",
    "/sdk/latest/../../.sdk-cdn/meta/api/sdk/sri.json",
    "/sdk/latest/%2e%2e/%2e%2e/.sdk-cdn/meta/api/sdk/sri.json",
    "/sdk/0.1.0/%252e%252e/%252e%252e/manifests/0.1.0.json",
    "/sdk/0.1.0/C:/Windows/win.ini",
    "/sdk/0.1.0/%ff%fe",
    "/api/sdk/sri/..%2f..%2fmanifests%2f0.1.0.json",
    "/api/sdk/sri/%2e%2e",
    "/manifests/0.1.0.json",
    "/.sdk-cdn/meta/api/sdk/sri.json",
];

#[test]
fn request_paths_cannot_escape_the_sdk_tree() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            for target in ESCAPES {
                let reply = get(&app, target).await;
                assert!(matches!(reply.status.as_u16(), 400 | 404), "{name}: {target} gave {}", reply.status);
                reply.assert_json_error(reply.status.as_u16());
                assert_eq!(send(&app, Method::HEAD, target, &[]).await.status, reply.status, "{name}: HEAD {target}");
            }
            // Encoded separators and NUL are refused before decoding.
            for target in ["/sdk/0.1.0%2fhaloagents.umd.js", "/sdk/0.1.0/a%5Cb.js", "/sdk/0.1.0/a.js%00"] {
                get(&app, target).await.assert_json_error(400);
            }
        });
    }
}

#[test]
fn unknown_routes_are_json_404s_and_other_methods_405_with_allow() {
    for backend in backends::all() {
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            // `/` and `/sdk/` are the versions page (tests/versions_page.rs).
            for target in ["/api", "/api/sdk", "/sdk", "/api/sdk/sri/0.1.0/x", "/healthz/x", "/favicon.ico"] {
                let reply = get(&app, target).await;
                reply.assert_json_error(404);
                assert_public_headers(&reply, target);
            }
            let targets = ["/api/sdk/sri", "/api/sdk/sri/0.1.0", "/sdk/0.1.0/haloagents.umd.js", "/healthz"];
            // OPTIONS is a CORS preflight (204, tests/serve_ops.rs), so it is allowed.
            for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                for target in targets {
                    let reply = send(&app, method.clone(), target, &[]).await;
                    reply.assert_json_error(405);
                    assert_eq!(reply.header("allow"), "GET, HEAD, OPTIONS", "{method} {target}");
                }
            }
        });
    }
}

#[test]
fn request_bodies_are_refused() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        for headers in [[("content-length", "5")], [("transfer-encoding", "chunked")]] {
            let request = Request::get("/api/sdk/sri").header(headers[0].0, headers[0].1).body(Body::from("hello"));
            let response = app.clone().oneshot(request.unwrap()).await.unwrap();
            assert_eq!(response.status(), 413, "{headers:?}");
        }
    });
}

/// Deterministic, incompressible-looking bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn large_files_are_streamed_in_bounded_chunks() {
    const SIZE: usize = 12 * 1024 * 1024;
    let big = noise(SIZE);
    for backend in backends::all() {
        let name = backend.name();
        let (build, cwd) = (build_dir(&[("big.bin", &big)]), tempfile::tempdir().unwrap());
        run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "3.0.0"]).expect_code(0);
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let request = Request::get("/sdk/3.0.0/big.bin").body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            assert_eq!(response.headers()["content-length"], SIZE.to_string().as_str(), "{name}");
            let mut chunks = response.into_body().into_data_stream();
            let (mut received, mut count, mut largest) = (Vec::with_capacity(SIZE), 0, 0);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.unwrap();
                largest = largest.max(chunk.len());
                count += 1;
                received.extend_from_slice(&chunk);
            }
            assert!(largest <= 64 * 1024, "{name}: a {largest}-byte chunk; bodies must be streamed");
            assert!(count >= SIZE / (64 * 1024), "{name}: {count} chunks");
            assert!(received == big, "{name}: the bytes arrive intact");
        });
    }
}

#[test]
fn healthz_reports_the_index_in_service() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let store = backend.store();
        backends::runtime().block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let (status, report) = health(&app).await;
            assert_eq!(status, 200, "{name}");
            assert_eq!(report["status"], "ok", "{name}: {report}");
            assert_eq!(report["index"]["published"], true, "{name}");
            assert_eq!(report["index"]["latest"], "0.1.0", "{name}");
            assert_eq!(report["index"]["files"], V1.len() * 2, "{name}");
            assert_eq!(report["index"]["etag"], get(&app, "/api/sdk/sri").await.header("etag"), "{name}");
            assert_eq!((report["consecutive_failures"].as_u64(), &report["last_error"]), (Some(0), &Value::Null));
            assert_eq!(send(&app, Method::HEAD, "/healthz", &[]).await.status, 200, "{name}");
        });
    }
}

// --- The real binary on a socket -------------------------------------------------------------

#[test]
fn the_binary_announces_its_address_even_when_quiet_and_serves_over_tcp() {
    for backend in backends::all() {
        let name = backend.name();
        publish(&backend, V1, "0.1.0");
        let cwd = tempfile::tempdir().unwrap();
        let served = Served::start(&backend, cwd.path(), &["-q"]);
        let expected = backend.read("api/sdk/sri").unwrap();
        let reply = http_get(served.addr, "/api/sdk/sri", &[]);
        assert_eq!((reply.status, &reply.body), (200, &expected), "{name}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"), "{name}");
        let file = http_get(served.addr, "/sdk/0.1.0/haloagents.umd.js", &[("Accept-Encoding", "gzip, br")]);
        assert_eq!((file.status, file.body.as_slice()), (200, V1[0].1), "{name}");
        assert_eq!(http_get(served.addr, "/healthz", &[]).json()["status"], "ok", "{name}");
    }
}

#[test]
fn sigterm_lets_an_in_flight_download_finish_then_exits_0() {
    const SIZE: usize = 24 * 1024 * 1024;
    let big = noise(SIZE);
    let backend = backends::local();
    let (build, cwd) = (build_dir(&[("big.bin", &big)]), tempfile::tempdir().unwrap());
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "3.0.0"]).expect_code(0);
    let mut served = Served::start(&backend, cwd.path(), &[]);

    let mut download = TcpStream::connect(served.addr).unwrap();
    download.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    download.write_all(b"GET /sdk/3.0.0/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut first = vec![0u8; 64 * 1024];
    download.read_exact(&mut first).unwrap();

    served.terminate();
    // Shutdown has begun once new connections are refused; the download is
    // still in flight (the server cannot finish writing until we read).
    let until = Instant::now() + DEADLINE;
    while TcpStream::connect(served.addr).is_ok() {
        assert!(Instant::now() < until, "the listener was not closed after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    first.extend_from_slice(&rest);
    let response = support::serve::parse(&first);
    assert_eq!(response.status, 200);
    assert!(response.body == big, "the in-flight download completed intact ({} bytes)", response.body.len());
    let status = served.wait(DEADLINE).expect("serve exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", served.stderr());
}

#[test]
fn oversized_request_heads_are_refused_with_431() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &[]);
    let huge = "a".repeat(20 * 1024);
    assert_eq!(http_get(served.addr, "/api/sdk/sri", &[("X-Huge", &huge)]).status, 431);
    let many: Vec<(String, String)> = (0..100).map(|i| (format!("X-H{i}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(http_get(served.addr, "/api/sdk/sri", &many).status, 431);
    assert_eq!(http_get(served.addr, "/api/sdk/sri", &[]).status, 200, "the server is still fine");
}

#[test]
fn raw_request_targets_over_tcp_cannot_escape_the_sdk_tree() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &[]);
    let manifest = backend.read("manifests/0.1.0.json").unwrap();
    let mut targets: Vec<&str> = ESCAPES.to_vec();
    targets.extend([
        "/sdk/0.1.0/..\\..\\manifests\\0.1.0.json",
        "/sdk/0.1.0/a\\b.js",
        "//sdk/0.1.0/haloagents.umd.js",
        "//manifests/0.1.0.json",
        "http://127.0.0.1/sdk/0.1.0/../../manifests/0.1.0.json",
        "/sdk/0.1.0/../../manifests/0.1.0.json?x=1",
    ]);
    for target in targets {
        let reply =
            exchange(served.addr, format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        assert!(matches!(reply.status, 400 | 404), "{target} gave {}", reply.status);
        assert!(!reply.body.windows(manifest.len()).any(|w| w == manifest.as_slice()), "{target} leaked the manifest");
    }
}

#[test]
fn bad_serve_flags_exit_2_and_a_busy_port_exits_1() {
    let cwd = tempfile::tempdir().unwrap();
    for bad in [
        &["serve", "--refresh", "0"][..],
        &["serve", "--refresh", "soon"],
        &["serve", "--addr", "localhost"],
        &["serve", "--index-cache-control", "public, max-age=60, immutable"],
    ] {
        let mut args = vec!["--store", "cdn"];
        args.extend_from_slice(bad);
        run_without_store(cwd.path(), &args).expect_code(2);
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run_without_store(cwd.path(), &["--store", "cdn", "serve", "--addr", &addr]);
    out.expect_code(1);
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
}
