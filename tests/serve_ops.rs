//! `sdk-cdn serve` run as a production service (issue 18): metrics a real
//! Prometheus parser reads, JSON logs, liveness vs readiness, replicas that
//! agree byte for byte, CORS preflight, the index size cap, the headers a
//! CDN in front relies on, and no failed request while releases land.
//!
//! Readiness, preflight and headers are checked in process against
//! `serve::app`; metrics, logs, replicas and load drive the real binary.

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

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use sdk_cdn::serve::{self, App, RefreshError, Refreshed, ServeOptions, ServeState};
use sdk_cdn::store::{Key, Store};
use serde_json::Value;
use support::app::send;
use support::backends::{self, Backend, backend_test};
use support::cli::{build_dir, run};
use support::fixtures::{Files, published as publish};
use support::serve::{HttpResponse, Served, get as http_get};
use support::tools::which;

const V1: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:1};"),
    ("haloagents.css", b".ha-launcher{color:red}"),
    ("chunks/worker.wasm", b"\0asm\x01\0\0\0"),
];
const DEADLINE: Duration = Duration::from_secs(30);
/// The route templates `/metrics` may label requests with (bounded cardinality).
const ROUTES: [&str; 7] =
    ["/api/sdk/sri", "/api/sdk/sri/{version}", "/sdk/{*path}", "/healthz", "/readyz", "/metrics", "unmatched"];

fn service(store: &Arc<dyn Store>, options: &ServeOptions) -> (Arc<ServeState>, App) {
    let state = ServeState::new(Arc::clone(store), options).unwrap();
    (Arc::clone(&state), serve::app(state))
}

/// Polls `check` every 20 ms until it holds; fails after `DEADLINE`.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < until, "timed out after {DEADLINE:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- Readiness ---------------------------------------------------------------------------------

#[test]
fn readyz_is_503_with_the_reason_until_an_index_is_loaded_and_fresh() {
    let backend = backends::local();
    let store = backend.store();
    backends::runtime().block_on(async {
        let options = ServeOptions { ready_max_age: Duration::from_millis(300), ..ServeOptions::default() };
        let (state, app) = service(&store, &options);
        let never = send(&app, Method::GET, "/readyz", &[]).await;
        assert_eq!(never.status, 503);
        assert_eq!(never.header("cache-control"), "no-store");
        assert!(never.json()["reason"].as_str().unwrap().starts_with("no SRI index loaded yet"), "{}", never.json());

        assert_eq!(state.refresh().await.unwrap(), Refreshed::NoIndex);
        let empty = send(&app, Method::GET, "/readyz", &[]).await;
        assert_eq!(empty.status, 503);
        assert!(empty.json()["reason"].as_str().unwrap().contains("nothing is published"), "{}", empty.json());
        let health = send(&app, Method::GET, "/healthz", &[]).await;
        assert_eq!((health.status, health.json()["status"].as_str()), (StatusCode::OK, Some("ok")));

        let cwd = tempfile::tempdir().unwrap();
        let build = build_dir(V1);
        let published = tokio::task::spawn_blocking({
            let args = backend.args();
            move || {
                let status = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
                    .current_dir(cwd.path())
                    .args(&args)
                    .args(["-q", "publish", build.path().to_str().unwrap(), "--version", "1.0.0"])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                status.success()
            }
        });
        assert!(published.await.unwrap());
        assert!(matches!(state.refresh().await.unwrap(), Refreshed::Updated(Some(_))));
        let ready = send(&app, Method::GET, "/readyz", &[]).await;
        assert_eq!(ready.status, 200, "{}", ready.json());
        assert_eq!(ready.json()["ready"], true);
        assert_eq!(ready.json()["latest"], "1.0.0");

        // No revalidation for longer than the bound (the refresh task is not running here).
        let until = Instant::now() + DEADLINE;
        loop {
            let stale = send(&app, Method::GET, "/readyz", &[]).await;
            if stale.status == 503 {
                let reason = stale.json()["reason"].as_str().unwrap().to_string();
                assert!(reason.contains("--ready-max-age"), "{reason}");
                break;
            }
            assert!(Instant::now() < until, "readyz never went stale");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        state.refresh().await.unwrap();
        assert_eq!(send(&app, Method::GET, "/readyz", &[]).await.status, 200);
    });
}

backend_test!(a_lost_index_with_sealed_versions_is_neither_healthy_nor_ready, [local, s3], |backend| {
    let name = backend.name();
    publish(&backend, V1, "1.0.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        store.delete(&Key::new("api/sdk/sri").unwrap()).await.unwrap();
        let (state, app) = service(&store, &ServeOptions::default());
        assert_eq!(state.refresh().await.unwrap(), Refreshed::Missing(1), "{name}");

        let health = send(&app, Method::GET, "/healthz", &[]).await;
        let body = health.json();
        assert_eq!(health.status, 200, "{name}: liveness stays 200");
        assert_eq!(body["status"], "degraded", "{name}: {body}");
        assert_eq!(body["index"]["missing"], true, "{name}: {body}");
        assert_eq!(body["index"]["sealed_versions"], 1, "{name}: {body}");

        let ready = send(&app, Method::GET, "/readyz", &[]).await;
        assert_eq!(ready.status, 503, "{name}");
        let reason = ready.json()["reason"].as_str().unwrap().to_string();
        assert!(reason.contains("api/sdk/sri is missing") && reason.contains("sdk-cdn reindex"), "{name}: {reason}");

        let index = send(&app, Method::GET, "/api/sdk/sri", &[]).await;
        assert_eq!(index.status, 503, "{name}: not a cacheable 404 'nothing published'");
        assert_eq!(index.header("cache-control"), "no-store", "{name}");

        // Once rebuilt, everything is fine again.
        let cwd = tempfile::tempdir().unwrap();
        let rebuilt = tokio::task::spawn_blocking({
            let (args, env) = (backend.args(), backend.env());
            move || {
                Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
                    .current_dir(cwd.path())
                    .args(&args)
                    .envs(env)
                    .args(["-q", "reindex"])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success()
            }
        });
        assert!(rebuilt.await.unwrap(), "{name}: reindex");
        assert!(matches!(state.refresh().await.unwrap(), Refreshed::Updated(_)), "{name}");
        assert_eq!(send(&app, Method::GET, "/readyz", &[]).await.status, 200, "{name}");
        assert_eq!(send(&app, Method::GET, "/healthz", &[]).await.json()["status"], "ok", "{name}");
    });
});

// --- Index size cap ----------------------------------------------------------------------------

#[test]
fn an_index_over_the_cap_is_refused_and_readyz_says_why() {
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let store = backend.store();
    let size = backend.read("api/sdk/sri").unwrap().len() as u64;
    backends::runtime().block_on(async {
        let options = ServeOptions { max_index_bytes: size - 1, ..ServeOptions::default() };
        let (state, app) = service(&store, &options);
        match state.refresh().await {
            Err(RefreshError::TooLarge { size: got, max }) => assert_eq!((got, max), (size, size - 1)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let ready = send(&app, Method::GET, "/readyz", &[]).await;
        assert_eq!(ready.status, 503);
        let reason = ready.json()["reason"].as_str().unwrap().to_string();
        assert!(reason.contains(&format!("{size} bytes")) && reason.contains("--max-index-bytes"), "{reason}");
        assert_eq!(send(&app, Method::GET, "/api/sdk/sri", &[]).await.status, 503);

        // A good index stays in service when the next one grows over the cap.
        let options = ServeOptions { max_index_bytes: size + 10, ..ServeOptions::default() };
        let (state, app) = service(&store, &options);
        state.refresh().await.unwrap();
        let before = send(&app, Method::GET, "/api/sdk/sri", &[]).await.body;
        let cwd = tempfile::tempdir().unwrap();
        // latest/ moves to 1.1.0 too: keep its file list, add a file.
        let mut files = V1.to_vec();
        files.push(("another-file-with-a-long-name.js", b"x"));
        let build = build_dir(&files);
        let args = backend.args();
        let ok = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
                .current_dir(cwd.path())
                .args(&args)
                .args(["-q", "publish", build.path().to_str().unwrap(), "--version", "1.1.0"])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        assert!(ok.await.unwrap());
        assert!(matches!(state.refresh().await, Err(RefreshError::TooLarge { .. })));
        let still = send(&app, Method::GET, "/api/sdk/sri", &[]).await;
        assert_eq!((still.status, still.body), (StatusCode::OK, before), "the last good index is still served");
        assert_eq!(send(&app, Method::GET, "/readyz", &[]).await.status, 503);
        assert_eq!(send(&app, Method::GET, "/healthz", &[]).await.json()["status"], "degraded");
    });
}

/// Resident memory of `pid` in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_binary_never_reads_an_oversized_index_and_stays_small() {
    // Over the cap given below. (The 64 MiB default works the same way; a
    // smaller cap keeps the test fast: the local store hashes an object
    // written behind its back on every `head`.)
    const HUGE: usize = 4 * 1024 * 1024;
    const CAP: &str = "1048576";
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let Backend::Local(dir) = &backend else { unreachable!() };
    let mut huge = String::with_capacity(HUGE + 64);
    huge.push_str("{\"version\":null,\"files\":{");
    let mut n = 0;
    while huge.len() < HUGE {
        huge.push_str(&format!("\"1.0.0/f{n}.js\":\"sha384-x\","));
        n += 1;
    }
    huge.push_str("\"last\":\"x\"}}");
    std::fs::write(dir.path().join("api/sdk/sri"), &huge).unwrap();
    drop(huge);

    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &["--refresh", "0.1", "--max-index-bytes", CAP]);
    let ready = http_get(served.addr, "/readyz", &[]);
    assert_eq!(ready.status, 503);
    let reason = ready.json()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&format!(
            "is {} bytes, over the {CAP}-byte limit",
            std::fs::metadata(dir.path().join("api/sdk/sri")).unwrap().len()
        )),
        "{reason}"
    );
    // Many refreshes later (each one refuses from the size alone), memory is still small.
    let polls = Instant::now();
    while polls.elapsed() < Duration::from_secs(1) {
        let health = http_get(served.addr, "/healthz", &[]);
        assert_eq!(health.status, 503, "nothing was ever loaded");
        assert!(health.json()["last_error"].as_str().unwrap().contains("--max-index-bytes"));
    }
    let rss = rss_kib(served.pid());
    assert!(rss < 48 * 1024, "serve holds {rss} KiB after refusing a 4 MiB index");
}

// --- CORS preflight ----------------------------------------------------------------------------

#[test]
fn options_preflight_on_files_and_the_index_is_204_with_cors_headers() {
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = service(&store, &ServeOptions::default());
        state.refresh().await.unwrap();
        for target in
            ["/sdk/1.0.0/haloagents.umd.js", "/sdk/latest/haloagents.css", "/api/sdk/sri", "/api/sdk/sri/1.0.0"]
        {
            let reply = send(
                &app,
                Method::OPTIONS,
                target,
                &[
                    ("origin", "https://customer.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "If-None-Match, x-trace-id, bad header"),
                ],
            )
            .await;
            assert_eq!(reply.status, 204, "{target}: {}", String::from_utf8_lossy(&reply.body));
            assert!(reply.body.is_empty(), "{target}");
            assert_eq!(reply.header("access-control-allow-origin"), "*", "{target}");
            assert_eq!(reply.header("access-control-allow-methods"), "GET, HEAD, OPTIONS", "{target}");
            assert_eq!(reply.header("access-control-allow-headers"), "if-none-match, x-trace-id", "{target}");
            assert_eq!(reply.header("access-control-max-age"), "86400", "{target}");
            assert_eq!(reply.header("vary"), "Access-Control-Request-Headers", "{target}");
        }
        let bare = send(&app, Method::OPTIONS, "/api/sdk/sri", &[]).await;
        assert_eq!(bare.status, 204);
        assert_eq!(bare.header("allow"), "GET, HEAD, OPTIONS");
        assert_eq!(bare.header("access-control-allow-headers"), "");
        assert_eq!(send(&app, Method::OPTIONS, "/nowhere", &[]).await.status, 404);
        // Other methods are still refused.
        assert_eq!(send(&app, Method::DELETE, "/api/sdk/sri", &[]).await.status, 405);
    });
}

// --- Headers for a CDN in front ----------------------------------------------------------------

#[test]
fn every_path_class_has_the_cache_headers_a_cdn_needs() {
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = service(&store, &ServeOptions::default());
        state.refresh().await.unwrap();
        // (target, Cache-Control, compressible: negotiates Content-Encoding, so Vary)
        let classes = [
            ("/api/sdk/sri", "public, max-age=60", true),
            ("/api/sdk/sri/latest", "public, max-age=60", false),
            ("/api/sdk/sri/1.0.0", "public, max-age=31536000, immutable", false),
            ("/sdk/1.0.0/haloagents.umd.js", "public, max-age=31536000, immutable", false),
            ("/sdk/latest/haloagents.umd.js", "public, max-age=300", false),
        ];
        for (target, cache_control, negotiated) in classes {
            for coding in ["identity", "gzip", "br"] {
                let reply = send(&app, Method::GET, target, &[("accept-encoding", coding)]).await;
                let what = format!("{target} ({coding})");
                assert_eq!(reply.status, 200, "{what}");
                assert_eq!(reply.header("cache-control"), cache_control, "{what}");
                let etag = reply.header("etag").to_string();
                assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{what}: strong ETag {etag}");
                if negotiated {
                    assert_eq!(reply.header("vary"), "Accept-Encoding", "{what}");
                } else {
                    assert_eq!(reply.header("content-encoding"), "", "{what}: served as stored");
                    assert_eq!(reply.header("vary"), "", "{what}: one representation, nothing to vary on");
                }
                let again =
                    send(&app, Method::GET, target, &[("accept-encoding", coding), ("if-none-match", &etag)]).await;
                assert_eq!(again.status, 304, "{what}");
                assert_eq!(again.header("cache-control"), cache_control, "{what}: 304 keeps the policy");
                assert_eq!(again.header("etag"), etag, "{what}");
            }
        }
        let gzip = send(&app, Method::GET, "/api/sdk/sri", &[("accept-encoding", "gzip")]).await;
        assert_eq!(gzip.header("content-encoding"), "gzip");
        for target in ["/healthz", "/readyz", "/metrics", "/sdk/9.9.9/x.js", "/api/sdk/sri/9.9.9"] {
            let reply = send(&app, Method::GET, target, &[]).await;
            assert_eq!(reply.header("cache-control"), "no-store", "{target}: never cached by a CDN");
        }
    });
}

// --- Replicas ----------------------------------------------------------------------------------

/// Everything a client or a cache compares between two answers.
fn fingerprint(reply: &HttpResponse) -> (u16, Vec<u8>, Vec<Option<String>>) {
    let headers = ["etag", "content-encoding", "content-type", "cache-control", "vary", "content-length"];
    (reply.status, reply.body.clone(), headers.iter().map(|h| reply.header(h).map(str::to_string)).collect())
}

backend_test!(
    replicas_over_one_store_answer_the_same_bytes_and_etags_and_revalidate_each_other,
    [local, s3],
    |backend| {
        let name = backend.name();
        publish(&backend, V1, "1.0.0");
        publish(&backend, &[("haloagents.umd.js", b"window.HaloAgents={v:2};")], "1.1.0");
        let cwd = tempfile::tempdir().unwrap();
        let replicas: Vec<Served> = (0..3).map(|_| Served::start(&backend, cwd.path(), &[])).collect();
        let targets = [
            "/api/sdk/sri",
            "/api/sdk/sri/1.0.0",
            "/api/sdk/sri/latest",
            "/sdk/1.0.0/haloagents.umd.js",
            "/sdk/1.0.0/chunks/worker.wasm",
            "/sdk/latest/haloagents.umd.js",
        ];
        for target in targets {
            for coding in ["identity", "gzip", "br", "gzip, br"] {
                let what = format!("{name} {target} ({coding})");
                let answers: Vec<HttpResponse> =
                    replicas.iter().map(|r| http_get(r.addr, target, &[("Accept-Encoding", coding)])).collect();
                assert_eq!(answers[0].status, 200, "{what}");
                for other in &answers[1..] {
                    assert_eq!(fingerprint(other), fingerprint(&answers[0]), "{what}: replicas differ");
                }
                let etag = answers[0].header("etag").expect("an ETag").to_string();
                assert!(!etag.starts_with("W/"), "{what}: strong ETag");
                for replica in &replicas {
                    let revalidated =
                        http_get(replica.addr, target, &[("Accept-Encoding", coding), ("If-None-Match", &etag)]);
                    assert_eq!(revalidated.status, 304, "{what}: another replica revalidates");
                    assert!(revalidated.body.is_empty(), "{what}");
                }
            }
        }
    }
);

// --- Metrics -----------------------------------------------------------------------------------

/// Whether python3 with `prometheus_client` is installed; fails instead of
/// skipping when `SDK_CDN_REQUIRE_TOOLS=1` (CI).
fn prometheus_parser_present() -> bool {
    let present = which("python3").is_some()
        && Command::new("python3")
            .args(["-c", "import prometheus_client.parser, prometheus_client.openmetrics.parser"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if present {
        return true;
    }
    if std::env::var("SDK_CDN_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!(
            "SDK_CDN_REQUIRE_TOOLS=1 but python3 with prometheus_client is not installed (pip install prometheus_client)"
        );
    }
    eprintln!(
        "skipped: python3 with prometheus_client not installed (set SDK_CDN_REQUIRE_TOOLS=1 to make this a failure)"
    );
    false
}

/// Parses `text` with Python's Prometheus and OpenMetrics parsers; returns
/// the samples as `(name, labels, value)`.
fn parse_metrics(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families as prometheus
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
text = sys.stdin.read()
strict = [s for f in openmetrics(text) for s in f.samples]
samples = [[s.name, s.labels, s.value if math.isfinite(s.value) else str(s.value)] for f in prometheus(text) for s in f.samples]
assert len(strict) == len(samples), (len(strict), len(samples))
print(json.dumps(samples))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parsers refused /metrics:\n{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<(String, serde_json::Map<String, Value>, Value)> = serde_json::from_slice(&output.stdout).unwrap();
    samples.into_iter().map(|(name, labels, value)| (name, labels, value.as_f64().unwrap_or(f64::NAN))).collect()
}

fn sample(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v)))
        .map(|(_, _, v)| *v)
}

#[test]
fn metrics_parse_with_prometheus_client_and_label_routes_not_paths() {
    if !prometheus_parser_present() {
        return;
    }
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &[]);
    for n in 0..5 {
        assert_eq!(http_get(served.addr, "/sdk/1.0.0/haloagents.umd.js", &[]).status, 200);
        assert_eq!(http_get(served.addr, &format!("/sdk/1.0.0/missing-{n}.js"), &[]).status, 404);
        assert_eq!(http_get(served.addr, &format!("/random/{n}"), &[]).status, 404);
    }
    assert_eq!(http_get(served.addr, "/api/sdk/sri", &[]).status, 200);
    let scraped = http_get(served.addr, "/metrics", &[]);
    assert_eq!(scraped.status, 200);
    assert!(scraped.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = String::from_utf8(scraped.body).unwrap();
    let samples = parse_metrics(&text);

    let routes: BTreeSet<&str> =
        samples.iter().filter_map(|(_, labels, _)| labels.get("route").and_then(Value::as_str)).collect();
    assert!(routes.iter().all(|r| ROUTES.contains(r)), "raw paths leaked into labels: {routes:?}");
    let requests = "sdk_cdn_http_requests_total";
    let files = [("route", "/sdk/{*path}"), ("method", "GET")];
    assert_eq!(sample(&samples, requests, &[files[0], files[1], ("status", "200")]), Some(5.0), "{text}");
    assert_eq!(sample(&samples, requests, &[files[0], files[1], ("status", "404")]), Some(5.0), "{text}");
    assert_eq!(sample(&samples, requests, &[("route", "unmatched"), ("status", "404")]), Some(5.0), "{text}");
    let body = V1[0].1.len() as f64;
    assert!(sample(&samples, "sdk_cdn_http_response_body_bytes_total", &[files[0]]).unwrap() >= 5.0 * body);
    assert_eq!(sample(&samples, "sdk_cdn_http_request_duration_seconds_count", &[files[0]]), Some(10.0), "{text}");
    assert_eq!(sample(&samples, "sdk_cdn_latest_version", &[("version", "1.0.0")]), Some(1.0), "{text}");
    assert!(sample(&samples, "sdk_cdn_index_refreshes_total", &[("outcome", "success")]).unwrap() >= 1.0);
    assert!(sample(&samples, "sdk_cdn_index_age_seconds", &[]).unwrap() >= 0.0, "{text}");
    assert!(sample(&samples, "sdk_cdn_index_size_bytes", &[]).unwrap() > 0.0, "{text}");
    assert!(sample(&samples, "sdk_cdn_http_connections_open", &[]).unwrap() >= 1.0, "the scrape itself: {text}");
    assert!(sample(&samples, "sdk_cdn_store_errors_total", &[]).is_some(), "{text}");

    // On its own address, /metrics leaves the public port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let separate = Served::start(&backend, cwd.path(), &["--metrics-addr", &port.to_string()]);
    assert_eq!(http_get(separate.addr, "/metrics", &[]).status, 404);
    let scraped = http_get(port, "/metrics", &[]);
    assert_eq!(scraped.status, 200);
    parse_metrics(&String::from_utf8(scraped.body).unwrap());
}

// --- Logs --------------------------------------------------------------------------------------

#[test]
fn json_logs_are_one_object_per_line_with_request_fields_and_no_escapes() {
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let cwd = tempfile::tempdir().unwrap();
    let log = cwd.path().join("serve.log");
    let mut served = Served::start_logging_to(&backend, cwd.path(), &["-v", "--log-format", "json"], &log);
    let given = http_get(served.addr, "/sdk/1.0.0/haloagents.umd.js", &[("X-Request-Id", "req-0001.a_b:c")]);
    assert_eq!(given.header("x-request-id"), Some("req-0001.a_b:c"), "a sane id is honoured and echoed");
    let odd = http_get(served.addr, "/api/sdk/sri", &[("X-Request-Id", "<script>alert(1)</script>")]);
    let generated = odd.header("x-request-id").unwrap().to_string();
    assert!(!generated.contains('<') && !generated.is_empty(), "{generated}");
    assert_eq!(http_get(served.addr, "/nowhere", &[]).status, 404);
    served.terminate();
    assert!(served.wait(DEADLINE).expect("exits after SIGTERM").success());

    let text = std::fs::read(&log).unwrap();
    assert!(!text.contains(&0x1b), "ANSI escapes in a log file");
    let text = String::from_utf8(text).unwrap();
    let mut access = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with("listening on ")) {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(object["timestamp"].is_string() && object["level"].is_string(), "{line}");
        if object.get("method").is_some() {
            access.push(object);
        }
    }
    assert_eq!(access.len(), 3, "one access line per request:\n{text}");
    for line in &access {
        for field in ["method", "path", "status", "latency_ms", "bytes", "request_id"] {
            assert!(line.get(field).is_some_and(|v| !v.is_null()), "{field} missing: {line}");
        }
        assert_eq!(line["level"], "INFO", "{line}");
    }
    assert_eq!(access[0]["request_id"], "req-0001.a_b:c");
    assert_eq!(access[0]["path"], "/sdk/1.0.0/haloagents.umd.js");
    assert_eq!(access[0]["status"], 200);
    assert_eq!(access[0]["bytes"], V1[0].1.len());
    assert_eq!(access[1]["request_id"], generated.as_str());
    assert_eq!(access[2]["status"], 404);
    assert!(access[2]["bytes"].as_u64().unwrap() > 0, "the JSON error body is counted: {}", access[2]);
}

#[test]
fn text_logs_in_a_file_have_no_colour_even_without_no_color() {
    let backend = backends::local();
    publish(&backend, V1, "1.0.0");
    let cwd = tempfile::tempdir().unwrap();
    let log = cwd.path().join("serve.log");
    // A warning (the index vanishes) and access lines, written to a file.
    let served = Served::start_logging_to(&backend, cwd.path(), &["-v", "--refresh", "0.1"], &log);
    assert_eq!(http_get(served.addr, "/api/sdk/sri", &[]).status, 200);
    let Backend::Local(dir) = &backend else { unreachable!() };
    std::fs::remove_file(dir.path().join("api/sdk/sri")).unwrap();
    eventually("a warning about the vanished index", || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("disappeared")
    });
    let text = std::fs::read(&log).unwrap();
    assert!(!text.contains(&0x1b), "ANSI escapes in a log file:\n{}", String::from_utf8_lossy(&text));
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("GET /api/sdk/sri 200"), "{text}");
    assert!(!text.contains("{ ") && !text.contains("Some("), "a debug dump in the log:\n{text}");
}

// --- Releases landing under load ---------------------------------------------------------------

/// What the load loop saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    failures: Mutex<Vec<String>>,
}

fn is_valid_index(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v["files"].is_object() && v.get("version").is_some())
}

fn load_loop(addr: std::net::SocketAddr, file: &str, stop: &AtomicBool, seen: &Seen, bodies: &[&[u8]]) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let target = ["/api/sdk/sri", file, "/api/sdk/sri/latest"][(n % 3) as usize];
        n += 1;
        let reply = http_get(addr, target, &[]);
        seen.requests.fetch_add(1, Ordering::Relaxed);
        let ok = match (reply.status, target) {
            (200, "/api/sdk/sri") => is_valid_index(&reply.body),
            (200, t) if t == file => bodies.contains(&reply.body.as_slice()),
            (200 | 304, _) => true,
            _ => false,
        };
        if !ok {
            seen.failures.lock().unwrap().push(format!(
                "{target}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body).chars().take(200).collect::<String>()
            ));
        }
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

backend_test!(no_request_fails_while_releases_land, [local, s3], |backend| {
    const RELEASES: usize = 3;
    let bodies: Vec<Vec<u8>> = (0..=RELEASES).map(|i| format!("window.HaloAgents={{v:{i}}};").into_bytes()).collect();
    let name = backend.name();
    let publish_body = |i: usize| {
        let (build, cwd) = (build_dir(&[("haloagents.umd.js", &bodies[i])]), tempfile::tempdir().unwrap());
        let version = format!("1.{i}.0");
        run(&backend, cwd.path(), &["-q", "publish", build.path().to_str().unwrap(), "--version", &version])
            .expect_code(0);
        version
    };
    publish_body(0);
    let cwd = tempfile::tempdir().unwrap();
    let served = Served::start(&backend, cwd.path(), &["--refresh", "0.2"]);
    let (stop, seen) = (AtomicBool::new(false), Seen::default());
    let all: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    // s3s-fs (the in-process S3 server) promotes with `fs::copy` onto the
    // destination file in place, truncating the inode a concurrent
    // GetObject is still streaming from; real S3 (and the local store,
    // which renames) serve a GET from a snapshot. So over s3s the moving
    // file is not a fair target; an immutable one is.
    let file = match backend {
        Backend::Local(_) => "/sdk/latest/haloagents.umd.js",
        _ => "/sdk/1.0.0/haloagents.umd.js",
    };
    std::thread::scope(|scope| {
        // Stops the load loops also when an assertion below fails (the scope joins them).
        let _stop = StopOnDrop(&stop);
        for _ in 0..4 {
            scope.spawn(|| load_loop(served.addr, file, &stop, &seen, &all));
        }
        for i in 1..=RELEASES {
            let version = publish_body(i);
            let entry = format!("{version}/haloagents.umd.js");
            eventually(&format!("{name}: {version} in the served index"), || {
                let reply = http_get(served.addr, "/api/sdk/sri", &[]);
                reply.status == 200 && reply.json()["files"].get(&entry).is_some()
            });
        }
    });
    let failures = seen.failures.into_inner().unwrap();
    let requests = seen.requests.load(Ordering::Relaxed);
    assert!(requests >= 10, "{name}: only {requests} requests");
    assert!(failures.is_empty(), "{name}: {} of {requests} requests failed: {failures:#?}", failures.len());
    let last = http_get(served.addr, "/sdk/latest/haloagents.umd.js", &[]);
    assert_eq!(last.body, bodies[RELEASES], "{name}: latest serves the last release");
});
