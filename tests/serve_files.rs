//! `sdk-cdn serve`'s files (`/sdk/<version>/…`, `/sdk/latest/…`): stored
//! headers, ETags, CORS, streaming, and no path that escapes the SDK tree,
//! against every backend (local, in-process S3, moto in CI).
/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod app;
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::StreamExt;
use sdk_cdn::serve::ServeOptions;
use sdk_cdn::store::{Body as StoreBody, Headers, Key, PutMode};
use serde_json::json;
use support::app::{V1, V2, assert_public_headers, entries, eventually, get, loaded, send};
use support::backends::{self, backend_test};
use support::cli::{build_dir, run};
use support::fixtures::{IMMUTABLE, noise, published as publish};
use support::serve::{Served, exchange};
use tower::ServiceExt;

fn content_type_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") => "application/json",
        Some("wasm") => "application/wasm",
        other => panic!("no expectation for {other:?}"),
    }
}

backend_test!(files_are_served_with_their_stored_headers_etag_and_cors, |backend| {
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
                for h in ["etag", "content-length", "content-type", "cache-control", "access-control-allow-origin"] {
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
});

backend_test!(partial_versions_and_unlisted_files_are_never_served, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let headers = Headers {
            content_type: "text/javascript; charset=utf-8".into(),
            cache_control: IMMUTABLE.into(),
            ..Default::default()
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
});

backend_test!(a_version_sealed_after_the_last_refresh_is_served_from_its_manifest, |backend| {
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
});

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

backend_test!(request_paths_cannot_escape_the_sdk_tree, |backend| {
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
});

backend_test!(large_files_are_streamed_in_bounded_chunks, |backend| {
    const SIZE: usize = 12 * 1024 * 1024;
    let big = noise(SIZE);
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
});

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

// --- Bytes that are not what was published ----------------------------------------------------

/// A response whose body is read until it ends or fails.
struct Streamed {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    /// The bytes that arrived before the body ended or failed.
    received: Vec<u8>,
    /// Whether the body failed instead of ending.
    aborted: bool,
}

async fn stream(app: &sdk_cdn::serve::App, target: &str, headers: &[(&str, &str)]) -> Streamed {
    let mut request = Request::get(target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let mut chunks = body.into_data_stream();
    let (mut received, mut aborted) = (Vec::new(), false);
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(_) => {
                aborted = true;
                break;
            }
        }
    }
    Streamed { status: parts.status, headers: parts.headers, received, aborted }
}

/// `sdk_cdn_integrity_failures_total` as `/metrics` renders it.
async fn integrity_failures(app: &sdk_cdn::serve::App) -> f64 {
    let text = String::from_utf8(get(app, "/metrics").await.body).unwrap();
    // Absent (a build without the counter) reads as 0, so the behaviour is what fails first.
    let line = text.lines().find(|l| l.starts_with("sdk_cdn_integrity_failures_total"));
    line.map_or(0.0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

backend_test!(bytes_changed_behind_the_store_are_never_served_whole, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    // Same length, other bytes, written past the tool (an operator's hand in
    // the bucket): what the store records about them names no integrity.
    let (path, bytes) = V1[0];
    let mut changed = bytes.to_vec();
    changed[7] ^= 1;
    for dir in ["0.1.0", "latest"] {
        backend.put_raw(&format!("sdk/{dir}/{path}"), &changed);
    }
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let before = integrity_failures(&app).await;
        for dir in ["0.1.0", "latest"] {
            let what = format!("{name}: {dir}");
            let reply = stream(&app, &format!("/sdk/{dir}/{path}"), &[]).await;
            assert_eq!(reply.status, 200, "{what}: the head is sent before the bytes are read");
            assert_eq!(reply.headers["content-length"], bytes.len().to_string().as_str(), "{what}");
            assert!(reply.aborted, "{what}: the body must fail, not end");
            assert!(reply.received.len() < bytes.len(), "{what}: {} bytes arrived whole", reply.received.len());
        }
        assert!(integrity_failures(&app).await >= before + 2.0, "{name}: each abort is counted");
        // The untouched files are still served whole.
        let (path, bytes) = V1[1];
        let reply = stream(&app, &format!("/sdk/0.1.0/{path}"), &[]).await;
        assert_eq!((reply.status, reply.aborted, reply.received.as_slice()), (StatusCode::OK, false, bytes), "{name}");
    });
});

// Probe finding: a `latest/` file was checked against the integrity
// recorded beside it, so a writer of the store who recorded one to match
// other bytes (or an older version's) had them served whole. Only the
// sealed bytes of the version the index names, or during a promotion the
// version the pointer names, are served.
backend_test!(latest_serves_only_the_sealed_bytes_of_the_version_it_may_hold, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let older_index = backend.read("api/sdk/sri").unwrap();
    publish(&backend, V2, "0.2.0");
    let (path, v2) = V2[0];
    let v1 = V1.iter().find(|(p, _)| *p == path).unwrap().1;
    let store = backend.store();
    let rt = backends::runtime();
    let key = Key::new(format!("sdk/latest/{path}")).unwrap();
    let recorded = rt.block_on(store.head(&key)).unwrap().unwrap().headers.unwrap();

    // A promotion in flight: the pointer names 0.2.0 and latest/ holds its
    // bytes, the index still names 0.1.0. Served whole, no false 502.
    backend.put_raw("api/sdk/sri", &older_index);
    rt.block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let reply = stream(&app, &format!("/sdk/latest/{path}"), &[]).await;
        assert_eq!((reply.status, reply.aborted, reply.received.as_slice()), (StatusCode::OK, false, v2), "{name}");
    });

    // Other bytes with an integrity recorded to match them.
    for (what, bytes) in [("arbitrary bytes", &b"/* not published */"[..]), ("0.1.0's bytes, a rollback", v1)] {
        let headers = Headers { sri: Some(support::fixtures::sri_of(bytes)), signed: None, ..recorded.clone() };
        let body = StoreBody::Bytes(bytes.to_vec().into());
        rt.block_on(store.put(&key, body, &headers, PutMode::Overwrite)).unwrap();
        // Whichever index is in service (0.1.0's, then 0.2.0's), only the pointer's
        // version (0.2.0) or the index's may be served: 0.1.0's bytes pass only
        // while the index names 0.1.0, so that case uses the current index.
        if what.starts_with("0.1.0") {
            backend.put_raw("api/sdk/sri", &serde_json::to_vec(&index_naming(&backend, "0.2.0")).unwrap());
        }
        rt.block_on(async {
            let (_, app) = loaded(&store, &ServeOptions::default()).await;
            let reply = stream(&app, &format!("/sdk/latest/{path}"), &[]).await;
            assert!(
                reply.status == StatusCode::BAD_GATEWAY || (reply.aborted && reply.received.len() < bytes.len()),
                "{name}: {what}: {} with {} bytes",
                reply.status,
                reply.received.len()
            );
        });
    }
});

/// The index as `sdk-cdn reindex` would write it with latest/ at `version`
/// (the store's pointer already names it).
fn index_naming(backend: &backends::Backend, version: &str) -> serde_json::Value {
    let index: serde_json::Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
    assert_ne!(index["version"], version, "the test expects an older index in service");
    let mut files = index["files"].as_object().unwrap().clone();
    files.retain(|k, _| !k.starts_with("latest/"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&backend.read(&format!("manifests/{version}.json")).unwrap()).unwrap();
    for (path, entry) in manifest["files"].as_object().unwrap() {
        files.insert(format!("latest/{path}"), entry["integrity"].clone());
    }
    json!({"version": version, "files": files})
}

/// The local store's data file of `key`.
fn data_file(backend: &backends::Backend, key: &str) -> std::path::PathBuf {
    match backend {
        backends::Backend::Local(dir) => dir.path().join(key),
        _ => unreachable!("a local store"),
    }
}

#[test]
fn a_file_replaced_on_disk_is_refused_with_a_502_that_is_not_cached() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let target = "/sdk/0.1.0/haloagents.css";
        let etag = get(&app, target).await.header("etag").to_string();
        // The prober's `cp f x; echo … >> x; mv x f`: a new inode with other bytes.
        let file = data_file(&backend, &target[1..]);
        let tampered = file.with_extension("tampered");
        std::fs::copy(&file, &tampered).unwrap();
        let mut bytes = std::fs::read(&tampered).unwrap();
        bytes.extend_from_slice(b"body{background:red}\n");
        std::fs::write(&tampered, &bytes).unwrap();
        std::fs::rename(&tampered, &file).unwrap();

        let before = integrity_failures(&app).await;
        for (method, headers) in
            [(Method::GET, &[][..]), (Method::HEAD, &[][..]), (Method::GET, &[("if-none-match", etag.as_str())][..])]
        {
            let what = format!("{method} {headers:?}");
            let reply = send(&app, method.clone(), target, headers).await;
            assert_eq!(reply.status, 502, "{what}");
            assert_eq!(reply.header("cache-control"), "no-store", "{what}");
            assert_eq!(reply.header("etag"), "", "{what}: no ETag for bytes nobody vouches for");
            if method == Method::GET {
                reply.assert_json_error(502);
                let message = reply.json()["error"].as_str().unwrap().to_string();
                assert!(message.contains("0.1.0/haloagents.css") && message.contains("sdk-cdn verify"), "{message}");
            }
        }
        assert!(integrity_failures(&app).await >= before + 3.0, "each refusal is counted");
    });
}

#[test]
fn a_file_changed_in_place_is_aborted_before_its_last_chunk() {
    const SIZE: usize = 200 * 1024;
    let big = noise(SIZE);
    let backend = backends::local();
    let (build, cwd) = (build_dir(&[("big.bin", &big)]), tempfile::tempdir().unwrap());
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "3.0.0"]).expect_code(0);
    // One byte flipped in the same inode: size and inode unchanged, so the
    // store's record still claims the published bytes.
    let file = data_file(&backend, "sdk/3.0.0/big.bin");
    let mut changed = big.clone();
    changed[SIZE - 1] ^= 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &changed))
        .unwrap();
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        for target in ["/sdk/3.0.0/big.bin", "/sdk/latest/big.bin"] {
            let reply = stream(&app, target, &[]).await;
            assert_eq!(reply.status, 200, "{target}");
            assert!(reply.aborted, "{target}: the body must fail, not end");
            assert!(reply.received.len() < SIZE, "{target}: the changed bytes arrived whole");
            assert!(reply.received.len() >= SIZE - 64 * 1024, "{target}: only the last chunk is held back");
        }
    });
    // Over TCP, the client sees the connection end short of Content-Length.
    let served = Served::start(&backend, cwd.path(), &[]);
    let raw = raw_exchange(served.addr, "GET /sdk/3.0.0/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains(&format!("content-length: {SIZE}")), "{head}");
    assert!(raw.len() - split < SIZE, "the whole changed body arrived over TCP");
    // The operator is told: an error line naming the key (polled: the log
    // line may land just after the connection closes).
    let until = std::time::Instant::now() + support::app::DEADLINE;
    while !served.stderr().contains("sdk/3.0.0/big.bin was not served whole") {
        assert!(std::time::Instant::now() < until, "no error logged:\n{}", served.stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends `request` and reads until the server closes or resets the connection.
fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let (mut raw, mut buf) = (Vec::new(), [0u8; 64 * 1024]);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return raw,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
}
