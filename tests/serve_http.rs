//! `sdk-cdn serve` over HTTP: every header and status of DESIGN.md "The
//! service", against every backend (local, in-process S3, moto in CI).
//!
//! Headers and statuses are checked in process with `oneshot` against
//! `serve::app`; the real binary on a socket is used where the network
//! matters (the announced address, graceful shutdown, hyper's limits, raw
//! request targets). Fixtures are published by running the binary.

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

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use sdk_cdn::serve::{self, RefreshError, ServeOptions, ServeState};
use sdk_cdn::store::{S3Store, Store};
use serde_json::{Value, json};
use support::app::{DEADLINE, V1, assert_public_headers, eventually, fast_refresh, get, health, loaded, send};
use support::backends::{self, Backend, backend_test};
use support::cli::{build_dir, run, run_without_store};
use support::fixtures::{noise, published as publish};
use support::serve::{Served, get as http_get};
use tower::ServiceExt;

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
        .http_client(sdk_cdn::https::aws_client().expect("TLS trust roots"))
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

backend_test!(unknown_routes_are_json_404s_and_other_methods_405_with_allow, |backend| {
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
});

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

backend_test!(healthz_reports_the_index_in_service, |backend| {
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
});

// --- The real binary on a socket -------------------------------------------------------------

backend_test!(the_binary_announces_its_address_even_when_quiet_and_serves_over_tcp, |backend| {
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
});

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

#[test]
fn serve_that_cannot_start_its_threads_exits_1_and_says_what_to_free() {
    let cwd = tempfile::tempdir().unwrap();
    let pauses = tempfile::tempdir().unwrap();
    // A serving thread fails as it starts (injected: file descriptors ran out).
    std::fs::write(pauses.path().join("serve-start.fail"), b"").unwrap();
    let log = cwd.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .current_dir(cwd.path())
        .args(["--store", "cdn", "serve", "--addr", "127.0.0.1:0"])
        .env(sdk_cdn::pause::PAUSE_DIR_ENV, pauses.path())
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("serve kept running: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot start serving: Too many open files"), "{stderr}");
    assert!(stderr.contains("ulimit -n"), "the fix is named: {stderr}");
}

backend_test!(head_answers_every_route_with_get_s_status_and_headers, |backend| {
    let name = backend.name();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path().to_str().unwrap();
    run_without_store(keys.path(), &["keygen", "--no-password", "--dir", dir, "--name", "release"]).expect_code(0);
    let key = keys.path().join("release.key").display().to_string();
    let cwd = tempfile::tempdir().unwrap();
    support::fixtures::publish_files(&backend, cwd.path(), V1, "0.1.0", &["--sign-key", &key]).expect_code(0);
    let index = backend.read("api/sdk/sri").unwrap();
    let copy = {
        use sha2::Digest;
        let hex: String = sha2::Sha384::digest(&index).iter().map(|b| format!("{b:02x}")).collect();
        format!("/api/sdk/sigs/sri-{hex}.minisig")
    };
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let targets = [
            "/",
            "/sdk/",
            "/versions.js",
            "/versions.css",
            "/api/sdk/sri",
            "/api/sdk/sri/0.1.0",
            "/api/sdk/sri/latest",
            "/api/sdk/sri/9.9.9",
            "/api/sdk/sri/v0.1.0",
            "/sdk/0.1.0/haloagents.umd.js",
            "/sdk/latest/haloagents.css",
            "/sdk/0.1.0/missing.js",
            "/sdk/v0.1.0/haloagents.umd.js",
            "/api/sdk/sri.minisig",
            copy.as_str(),
            "/api/sdk/sigs/sri-00.minisig",
            "/api/sdk/manifests/0.1.0.json",
            "/api/sdk/manifests/0.1.0.json.minisig",
            "/api/sdk/manifests/9.9.9.json",
            "/healthz",
            "/readyz",
            "/metrics",
            "/no/such/route",
        ];
        let same_id = [("x-request-id", "parity")];
        for target in targets {
            let what = format!("{name}: {target}");
            let got = send(&app, Method::GET, target, &same_id).await;
            let head = send(&app, Method::HEAD, target, &same_id).await;
            assert_eq!(head.status, got.status, "{what}");
            assert!(head.body.is_empty(), "{what}: HEAD has no body");
            // Reports and counters may change between the two requests; their length with them.
            let varies = ["/healthz", "/readyz", "/metrics"].contains(&target);
            let names: std::collections::BTreeSet<&str> =
                got.headers.keys().chain(head.headers.keys()).map(|h| h.as_str()).collect();
            for header in names {
                if varies && header == "content-length" {
                    continue;
                }
                assert_eq!(head.headers.get(header), got.headers.get(header), "{what}: {header}");
            }
            if !varies && got.status == 200 {
                assert_eq!(got.header("content-length"), got.body.len().to_string(), "{what}");
            }
        }
    });
});

backend_test!(if_match_naming_no_current_etag_is_412_on_every_tagged_route, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        for target in ["/sdk/0.1.0/haloagents.umd.js", "/sdk/latest/haloagents.css", "/api/sdk/sri/0.1.0"] {
            let what = format!("{name}: {target}");
            let reply = get(&app, target).await;
            let etag = reply.header("etag").to_string();
            for method in [Method::GET, Method::HEAD] {
                let failed = send(&app, method.clone(), target, &[("if-match", "\"nope\"")]).await;
                assert_eq!(failed.status, 412, "{what}: {method}");
                assert_eq!(failed.header("cache-control"), "no-store", "{what}: {method}");
                let weak = format!("W/{etag}");
                assert_eq!(send(&app, method.clone(), target, &[("if-match", &weak)]).await.status, 412, "{what}");
            }
            for holds in [etag.as_str(), "*", &format!("\"nope\", {etag}")] {
                let reply = send(&app, Method::GET, target, &[("if-match", holds)]).await;
                assert_eq!((reply.status, reply.header("etag")), (StatusCode::OK, etag.as_str()), "{what}: {holds}");
            }
            // If-Match is evaluated before If-None-Match (RFC 9110 §13.2.2).
            let both = [("if-match", "\"nope\""), ("if-none-match", etag.as_str())];
            assert_eq!(send(&app, Method::GET, target, &both).await.status, 412, "{what}");
        }
    });
});

#[test]
fn http_1_1_without_host_is_refused_with_400_on_the_socket() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &[]);
    for target in ["/api/sdk/sri", "/sdk/0.1.0/haloagents.umd.js", "/healthz"] {
        let without = support::serve::exchange(
            served.addr,
            format!("GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(without.status, 400, "{target}");
        assert!(without.json()["error"].as_str().unwrap().contains("Host"), "{target}");
        assert_eq!(without.header("cache-control"), Some("no-store"), "{target}");
        let with = http_get(served.addr, target, &[]);
        assert_eq!(with.status, 200, "{target}");
        // HTTP/1.0 has no Host requirement.
        let old = support::serve::exchange(served.addr, format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes());
        assert_eq!(old.status, 200, "{target}: HTTP/1.0");
    }
}
