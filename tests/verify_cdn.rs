//! `verify --base-url`: checking what browsers get through the CDN, against
//! `sdk-cdn serve` (which sends the right headers) and against a plain static
//! server that does not (no CORS, no cache headers, generic content type).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use support::backends::{self, Backend};
use support::cli::{build_dir, run};
use support::serve::Served;

/// A static file server over the local store's directory with none of the
/// headers SRI and caching need: what a misconfigured CDN looks like.
fn bare_static_server(root: std::path::PathBuf) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let rt = backends::runtime();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/{*path}",
                axum::routing::get(move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let root = root.clone();
                    async move {
                        match std::fs::read(root.join(&path)) {
                            Ok(bytes) => {
                                (axum::http::StatusCode::OK, [("content-type", "application/octet-stream")], bytes)
                            }
                            Err(_) => (axum::http::StatusCode::NOT_FOUND, [("content-type", "text/plain")], Vec::new()),
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), axum::serve(listener, app)).await;
        });
    });
    (format!("http://{addr}"), handle)
}

#[test]
fn verify_through_serve_is_clean_and_a_bare_static_server_is_caught() {
    let backend = backends::local();
    let Backend::Local(root) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    run(&backend, cwd.path(), &["publish", dist.to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={};"), ("dir with space/a b.css", b"x{}")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "0.2.0"]).expect_code(0);

    let served = Served::start(&backend, cwd.path(), &[]);
    let out = run(&backend, cwd.path(), &["verify", "--base-url", &served.base_url(), "--json"]);
    let report = out.expect_code(0).json();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    served.terminate();

    let (bare, _server) = bare_static_server(root.path().to_path_buf());
    let out = run(&backend, cwd.path(), &["verify", "0.1.0", "--base-url", &bare, "--json"]);
    let report = out.expect_code(3).json()["report"].clone();
    let findings = report["findings"].as_array().unwrap();
    let http: Vec<&str> =
        findings.iter().filter(|f| f["problem"] == "http").map(|f| f["detail"].as_str().unwrap()).collect();
    // 3 files of 0.1.0 and the 2 of latest/ (0.2.0, one under a path with spaces).
    assert_eq!(http.len(), 5, "{findings:#?}");
    for detail in &http {
        assert!(detail.contains("Access-Control-Allow-Origin"), "{detail}");
        assert!(detail.contains("Cache-Control"), "{detail}");
        assert!(detail.contains("Content-Type"), "{detail}");
        assert!(!detail.contains("hashing to"), "the bytes themselves are right: {detail}");
    }
}

#[test]
fn verify_reports_bytes_the_cdn_serves_that_differ_from_the_manifest() {
    let backend = backends::local();
    let Backend::Local(root) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"original")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    // The origin is compromised: the bytes on disk behind the CDN change.
    std::fs::write(root.path().join("sdk/1.0.0/a.js"), b"tampered").unwrap();
    let (bare, _server) = bare_static_server(root.path().to_path_buf());
    let out = run(&backend, cwd.path(), &["verify", "1.0.0", "--base-url", &bare]);
    out.expect_code(3);
    assert!(out.stderr.contains("the CDN serves bytes hashing to"), "{}", out.stderr);
    let out = run(&backend, cwd.path(), &["verify", "--base-url", "not-a-url"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--base-url"), "{}", out.stderr);
}
